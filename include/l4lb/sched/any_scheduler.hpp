// any_scheduler: a policy chosen at run time by the name ipvsadm's -s takes (or ours), the flags
// of -b and the policy's named options (scheduler_options.hpp), held by value in a std::variant.
// Dispatch once per burst with visit(); the policy types themselves stay plain and are usable
// directly where the choice is made at compile time.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "l4lb/expected.hpp"
#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/consistent_hash_ring.hpp"
#include "l4lb/sched/destination_hashing.hpp"
#include "l4lb/sched/ipvs_hash.hpp"
#include "l4lb/sched/least_connection.hpp"
#include "l4lb/sched/locality_least_connection.hpp"
#include "l4lb/sched/locality_least_connection_replicated.hpp"
#include "l4lb/sched/maglev.hpp"
#include "l4lb/sched/never_queue.hpp"
#include "l4lb/sched/overflow.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/round_robin.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"
#include "l4lb/sched/shortest_expected_delay.hpp"
#include "l4lb/sched/smooth_weighted_round_robin.hpp"
#include "l4lb/sched/source_hashing.hpp"
#include "l4lb/sched/two_choices.hpp"
#include "l4lb/sched/weighted_failover.hpp"
#include "l4lb/sched/weighted_least_connection.hpp"
#include "l4lb/sched/weighted_maglev.hpp"
#include "l4lb/sched/weighted_round_robin.hpp"

namespace l4lb::sched {

/// ipvsadm's -b flags as IPVS stores them in the service (IP_VS_SVC_F_SCHED1..3). sh and mh give
/// flag-1 and flag-2 their own names (sh-fallback/mh-fallback, sh-port/mh-port); no IPVS
/// scheduler uses flag-3.
struct scheduler_flags {
  static constexpr std::uint32_t flag_1 = 0x0008;
  static constexpr std::uint32_t flag_2 = 0x0010;
  static constexpr std::uint32_t flag_3 = 0x0020;
  static constexpr std::uint32_t mask = flag_1 | flag_2 | flag_3;

  std::uint32_t bits = 0;

  [[nodiscard]] constexpr bool has(std::uint32_t f) const noexcept { return (bits & f) == f; }
  friend constexpr scheduler_flags operator|(scheduler_flags a, scheduler_flags b) noexcept {
    return {a.bits | b.bits};
  }
  friend constexpr bool operator==(scheduler_flags, scheduler_flags) = default;
};

inline constexpr scheduler_flags sh_fallback{scheduler_flags::flag_1};
inline constexpr scheduler_flags sh_port{scheduler_flags::flag_2};
inline constexpr scheduler_flags mh_fallback{scheduler_flags::flag_1};
inline constexpr scheduler_flags mh_port{scheduler_flags::flag_2};

/// The flags a policy takes: its `accepted_flags` when it declares one; flag-1 and flag-2 for a
/// policy built from ipvs::hash_flags (sh, mh); none otherwise.
template <class S>
[[nodiscard]] consteval std::uint32_t accepted_flags() noexcept {
  if constexpr (requires { { S::accepted_flags } -> std::convertible_to<std::uint32_t>; }) {
    return static_cast<std::uint32_t>(S::accepted_flags);
  } else if constexpr (std::is_constructible_v<S, ipvs::hash_flags>) {
    return scheduler_flags::flag_1 | scheduler_flags::flag_2;
  } else {
    return 0;
  }
}

/// A policy built from flags already checked against accepted_flags<S>().
template <class S>
[[nodiscard]] S make_policy(scheduler_flags flags) {
  if constexpr (std::is_constructible_v<S, ipvs::hash_flags>) {
    return S(ipvs::hash_flags::from_svc_flags(flags.bits));
  } else if constexpr (std::is_constructible_v<S, scheduler_flags>) {
    return S(flags);
  } else {
    return S{};
  }
}

/// Parses ipvsadm's -b argument for scheduler `scheduler_name` (empty = ipvsadm's default, wlc):
/// comma-separated words flag-1, flag-2, flag-3, sh-fallback, sh-port, mh-fallback, mh-port;
/// empty words are skipped. Like ipvsadm: sh-* needs sh and mh-* needs mh (incompatible_flag),
/// any other word is unknown_flag.
[[nodiscard]] constexpr expected<scheduler_flags, scheduler_error> parse_sched_flags(
    std::string_view scheduler_name, std::string_view text) noexcept {
  if (scheduler_name.empty()) scheduler_name = "wlc";
  scheduler_flags out{};
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view word = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (word.empty()) continue;
    struct known {
      std::string_view word;
      std::uint32_t bit;
      std::string_view needs;  // empty: any scheduler
    };
    constexpr std::array<known, 7> words = {{
        {"flag-1", scheduler_flags::flag_1, {}},
        {"flag-2", scheduler_flags::flag_2, {}},
        {"flag-3", scheduler_flags::flag_3, {}},
        {"sh-fallback", scheduler_flags::flag_1, "sh"},
        {"sh-port", scheduler_flags::flag_2, "sh"},
        {"mh-fallback", scheduler_flags::flag_1, "mh"},
        {"mh-port", scheduler_flags::flag_2, "mh"},
    }};
    const known* hit = nullptr;
    for (const known& k : words) {
      if (k.word == word) hit = &k;
    }
    if (hit == nullptr) return unexpected{scheduler_error::unknown_flag};
    if (!hit->needs.empty() && hit->needs != scheduler_name)
      return unexpected{scheduler_error::incompatible_flag};
    out.bits |= hit->bit;
  }
  return out;
}

/// Renders flags the way ipvsadm lists them for a scheduler ("sh-fallback,sh-port", "flag-3").
[[nodiscard]] constexpr std::string_view flag_word(std::string_view scheduler_name,
                                                   std::uint32_t bit) noexcept {
  const bool is_sh = scheduler_name == "sh", is_mh = scheduler_name == "mh";
  switch (bit) {
    case scheduler_flags::flag_1: return is_sh ? "sh-fallback" : is_mh ? "mh-fallback" : "flag-1";
    case scheduler_flags::flag_2: return is_sh ? "sh-port" : is_mh ? "mh-port" : "flag-2";
    case scheduler_flags::flag_3: return "flag-3";
    default: return {};
  }
}

/// A policy that takes named options declares them next to its constructor:
/// - `static constexpr std::array<std::string_view, N> option_names`: every name it takes;
/// - `static Args read_options(option_reader&)`: reads them (option_reader's getters, defaults
///   for absent names) into what its constructor takes, S(Args) or S(ipvs::hash_flags, Args).
/// Ranges stay the constructor's: an option it refuses (rebuild's bad_option / bad_table_size)
/// is bad_option_value.
template <class S>
concept takes_options = requires(option_reader& r) {
  { S::option_names[0] } -> std::convertible_to<std::string_view>;
  S::read_options(r);
};

/// The option names a policy takes (none for a policy that declares none).
template <class S>
[[nodiscard]] constexpr std::span<const std::string_view> option_names() noexcept {
  if constexpr (takes_options<S>)
    return S::option_names;
  else
    return {};
}

/// A policy built from flags already checked against accepted_flags<S>() and `options` (any
/// names, checked here). `canonical`, when given, receives the options in the policy's order and
/// spelling. Errors: unknown_option, bad_option_value.
template <class S>
[[nodiscard]] expected<S, scheduler_error> make_policy(scheduler_flags flags,
                                                       const scheduler_options& options,
                                                       scheduler_options* canonical = nullptr) {
  const std::span<const std::string_view> names = option_names<S>();
  for (const scheduler_option& o : options)
    if (std::find(names.begin(), names.end(), o.name) == names.end())
      return unexpected{scheduler_error::unknown_option};
  if constexpr (takes_options<S>) {
    if (!options.empty()) {
      option_reader r(options);
      auto args = S::read_options(r);
      if (r.error() != scheduler_error::ok) return unexpected{r.error()};
      auto s = [&] {
        if constexpr (std::is_constructible_v<S, ipvs::hash_flags, decltype(args)>)
          return S(ipvs::hash_flags::from_svc_flags(flags.bits), std::move(args));
        else
          return S(std::move(args));
      }();
      // The constructor's own range checks: a policy that refused its options says so here.
      if constexpr (std::same_as<decltype(s.rebuild({}, dest_change{})), build_error>) {
        const build_error b = s.rebuild({}, {dest_change::kind::init, 0});
        if (b == build_error::bad_option || b == build_error::bad_table_size)
          return unexpected{scheduler_error::bad_option_value};
      }
      if (canonical != nullptr) *canonical = r.canonical();
      return s;
    }
  }
  if (canonical != nullptr) *canonical = {};
  return make_policy<S>(flags);
}

namespace detail {
template <class... Ps>
consteval bool names_unique() {
  constexpr std::array<std::string_view, sizeof...(Ps)> names{Ps::name...};
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j]) return false;
  return true;
}
}  // namespace detail

/// One of `Policies`, chosen at run time. Each alternative is a plain scheduler; a user-defined
/// policy joins by being listed (basic_any_scheduler<round_robin, my_policy>).
/// - per-call members (rebuild, pick, counts_changed) dispatch through the variant every time;
/// - visit(f) calls f with the concrete policy: run a whole burst inside it and the hot loop is
///   compiled per policy, with one dispatch per burst.
template <scheduler... Policies>
class basic_any_scheduler {
  static_assert(sizeof...(Policies) > 0);
  static_assert(detail::names_unique<Policies...>(), "two policies share a name");

 public:
  using variant_type = std::variant<Policies...>;

  /// The first policy, default-constructed.
  basic_any_scheduler() = default;
  template <class S>
    requires(std::same_as<std::remove_cvref_t<S>, Policies> || ...)
  basic_any_scheduler(S&& policy)  // NOLINT(google-explicit-constructor): any policy converts
      : v_(std::forward<S>(policy)) {}

  /// The policy for `name` with `flags` and named `options`, or why not (nothing is built on
  /// error). `canonical`, when given, receives the options as the policy reads them back: its
  /// order and spelling ("table-bits=012" -> "table-bits=12"), what listings and saves print.
  [[nodiscard]] static expected<basic_any_scheduler, scheduler_error> make(
      std::string_view name, scheduler_flags flags = {}, const scheduler_options& options = {},
      scheduler_options* canonical = nullptr) {
    scheduler_error err = scheduler_error::unknown_scheduler;
    variant_type v;
    // stops at the matching name
    (void)(try_make<Policies>(name, flags, options, canonical, v, err) || ...);
    if (err != scheduler_error::ok) return unexpected{err};
    return basic_any_scheduler(std::move(v));
  }

  /// `options` checked for the policy `name` and in its canonical form (see make()).
  [[nodiscard]] static expected<scheduler_options, scheduler_error> canonical_options(
      std::string_view name, const scheduler_options& options) {
    scheduler_options out;
    if (auto s = make(name, {}, options, &out); !s) return unexpected{s.error()};
    return out;
  }

  /// The option names the policy `name` takes, in its order (empty for an unknown name).
  [[nodiscard]] static constexpr std::span<const std::string_view> option_names_of(
      std::string_view name) noexcept {
    std::span<const std::string_view> out;
    (void)((name == Policies::name ? (out = option_names<Policies>(), true) : false) || ...);
    return out;
  }

  /// Every name make() accepts, in the order of Policies.
  static constexpr std::array<std::string_view, sizeof...(Policies)> names{Policies::name...};

  [[nodiscard]] std::string_view name() const noexcept {
    return std::visit([](const auto& s) -> std::string_view { return s.name; }, v_);
  }

  /// Control plane. Returns the policy's build_error, or ok for policies whose rebuild cannot fail.
  build_error rebuild(std::span<const real_server> dests, dest_change change) {
    return std::visit(
        [&](auto& s) -> build_error {
          if constexpr (std::same_as<decltype(s.rebuild(dests, change)), build_error>) {
            return s.rebuild(dests, change);
          } else {
            s.rebuild(dests, change);
            return build_error::ok;
          }
        },
        v_);
  }

  /// Data plane, one dispatch per call (prefer visit() for bursts).
  [[nodiscard]] dest_id pick(std::span<const real_server> dests, const pick_context& ctx) noexcept {
    return std::visit([&](auto& s) noexcept { return s.pick(dests, ctx); }, v_);
  }
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    std::visit([&](auto& s) noexcept { s.counts_changed(dests, id); }, v_);
  }
  /// What the held policy's counts_changed reads (count_use_of), without a dispatch: a caller
  /// skips the calls that cannot matter to it.
  [[nodiscard]] count_use counts_use() const noexcept {
    static constexpr std::array<count_use, sizeof...(Policies)> uses{count_use_of<Policies>()...};
    const std::size_t i = v_.index();
    return i < uses.size() ? uses[i] : count_use::load;
  }

  /// f(policy&) with the concrete policy type; returns what f returns.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), v_);
  }
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(std::forward<F>(f), v_);
  }

  template <class S>
  [[nodiscard]] S* get_if() noexcept {
    return std::get_if<S>(&v_);
  }
  template <class S>
  [[nodiscard]] const S* get_if() const noexcept {
    return std::get_if<S>(&v_);
  }
  [[nodiscard]] const variant_type& variant() const noexcept { return v_; }

 private:
  explicit basic_any_scheduler(variant_type&& v) : v_(std::move(v)) {}

  template <class S>
  static bool try_make(std::string_view name, scheduler_flags flags,
                       const scheduler_options& options, scheduler_options* canonical,
                       variant_type& out, scheduler_error& err) {
    if (name != S::name) return false;
    // name matched from here on: stop looking, report what is wrong
    if ((flags.bits & ~accepted_flags<S>()) != 0) {
      err = scheduler_error::flag_not_supported;
      return true;
    }
    auto s = make_policy<S>(flags, options, canonical);
    if (!s) {
      err = s.error();
      return true;
    }
    out.template emplace<S>(std::move(*s));
    err = scheduler_error::ok;
    return true;
  }

  variant_type v_;
};

/// Every policy l4lb ships. ipvsadm's names: wlc (first: ipvsadm's default), rr, wrr, lc, sed,
/// nq, dh, sh, mh, lblc, lblcr, fo, ovf, twos; ours: swrr (smooth weighted round robin), ring
/// (weighted consistent hash ring), wmh (weighted, order-independent Maglev).
using any_scheduler =
    basic_any_scheduler<weighted_least_connection, round_robin, weighted_round_robin,
                        least_connection, shortest_expected_delay, never_queue,
                        destination_hashing, source_hashing, maglev_hashing,
                        locality_least_connection, locality_least_connection_replicated,
                        weighted_failover, overflow, two_choices, smooth_weighted_round_robin,
                        consistent_hash_ring, weighted_maglev>;

/// any_scheduler (or another basic_any_scheduler) from a name, flag bits and named options.
template <class Set = any_scheduler>
[[nodiscard]] expected<Set, scheduler_error> make_scheduler(std::string_view name,
                                                            scheduler_flags flags = {},
                                                            const scheduler_options& options = {}) {
  return Set::make(name, flags, options);
}

/// any_scheduler (or another set) from ipvsadm's -s and -b arguments as text.
template <class Set = any_scheduler>
[[nodiscard]] expected<Set, scheduler_error> parse_scheduler(std::string_view name,
                                                             std::string_view sched_flags) {
  const auto flags = parse_sched_flags(name, sched_flags);
  if (!flags) return unexpected{flags.error()};
  return Set::make(name.empty() ? std::string_view{"wlc"} : name, *flags);
}

/// Runs f with the concrete policy held by `s` (the visit-once helper for a burst loop).
template <class Set, class F>
decltype(auto) visit_scheduler(Set& s, F&& f) {
  return s.visit(std::forward<F>(f));
}

}  // namespace l4lb::sched
