// A scheduler's named options ("table-bits=12,expiration=3600"): the text form a rule file or a
// caller gives, the errors for what a policy refuses, and the reader a policy declares its
// options with. Control plane only (it allocates); the policies take plain values.
#pragma once

#include <array>
#include <charconv>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "l4lb/expected.hpp"

namespace l4lb::sched {

/// Why a scheduler could not be made from a name, flags and options (control plane).
enum class scheduler_error : std::uint8_t {
  ok = 0,
  unknown_scheduler,   // not an ipvsadm -s name nor one of ours
  unknown_flag,        // a -b word that is not flag-1..3, sh-*, mh-* (ipvsadm: "invalid")
  incompatible_flag,   // sh-* for a scheduler other than sh, mh-* other than mh (as ipvsadm)
  flag_not_supported,  // a flag bit the chosen scheduler does not use (ipvsadm passes it on and
                       // the kernel ignores it; we refuse, so a typo does not go unnoticed)
  bad_option_syntax,   // an option that is not NAME=VALUE, or a name given twice
  unknown_option,      // an option name the chosen scheduler does not take
  bad_option_value,    // not a number, out of range, not prime, not one of the words
};

[[nodiscard]] constexpr std::string_view to_string(scheduler_error e) noexcept {
  switch (e) {
    case scheduler_error::ok: return "ok";
    case scheduler_error::unknown_scheduler: return "unknown_scheduler";
    case scheduler_error::unknown_flag: return "unknown_flag";
    case scheduler_error::incompatible_flag: return "incompatible_flag";
    case scheduler_error::flag_not_supported: return "flag_not_supported";
    case scheduler_error::bad_option_syntax: return "bad_option_syntax";
    case scheduler_error::unknown_option: return "unknown_option";
    case scheduler_error::bad_option_value: return "bad_option_value";
  }
  return "unknown";
}

/// One NAME=VALUE.
struct scheduler_option {
  std::string name;
  std::string value;
  friend bool operator==(const scheduler_option&, const scheduler_option&) = default;
};

/// An ordered list of options, each name at most once. Equality is of the list as written; a
/// policy's canonical form (basic_any_scheduler::canonical_options) makes equal settings equal.
class scheduler_options {
 public:
  scheduler_options() = default;

  /// "NAME=VALUE[,NAME=VALUE...]"; empty text (or empty items, as in "a=1,,b=2") is skipped.
  /// Errors: bad_option_syntax (an item without '=' or with an empty name, a name twice).
  [[nodiscard]] static expected<scheduler_options, scheduler_error> parse(std::string_view text) {
    scheduler_options out;
    while (!text.empty()) {
      const std::size_t comma = text.find(',');
      const std::string_view item = text.substr(0, comma);
      text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
      if (item.empty()) continue;
      const std::size_t eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0 || out.find(item.substr(0, eq)) != nullptr)
        return unexpected{scheduler_error::bad_option_syntax};
      out.items_.push_back({std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))});
    }
    return out;
  }

  /// The value given for `name`, or nullptr.
  [[nodiscard]] const std::string* find(std::string_view name) const noexcept {
    for (const scheduler_option& o : items_)
      if (o.name == name) return &o.value;
    return nullptr;
  }
  /// Sets `name` (replacing its value in place, or appending it).
  void set(std::string_view name, std::string_view value) {
    for (scheduler_option& o : items_)
      if (o.name == name) {
        o.value = value;
        return;
      }
    items_.push_back({std::string(name), std::string(value)});
  }

  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] auto begin() const noexcept { return items_.begin(); }
  [[nodiscard]] auto end() const noexcept { return items_.end(); }

  friend bool operator==(const scheduler_options&, const scheduler_options&) = default;

 private:
  std::vector<scheduler_option> items_;
};

/// "NAME=VALUE,NAME=VALUE" in list order (what parse() reads back); "" for no options.
[[nodiscard]] inline std::string to_string(const scheduler_options& o) {
  std::string out;
  for (const scheduler_option& x : o) {
    if (!out.empty()) out += ',';
    ((out += x.name) += '=') += x.value;
  }
  return out;
}

/// What a policy's `read_options(option_reader&)` reads its options with. Each getter returns the
/// value given (or `fallback` when the name is absent), checking only that the text is a value
/// of the type; ranges are the policy constructor's business. The first bad value is kept as
/// error() and later getters still answer (with their fallback), so a policy reads straight
/// through. canonical() collects every option given, in the order the policy reads them and in
/// one spelling (decimal numbers, yes/no, the first word of a choice): the form listings and
/// saves print. A value equal to the default is kept, not dropped: an explicit setting can
/// override a director-wide one (lblc's expiration over net.ipv4.vs.lblc_expiration).
class option_reader {
 public:
  explicit option_reader(const scheduler_options& given) : given_(given) {}

  /// A decimal number (digits only) that fits T.
  template <std::unsigned_integral T>
  T number(std::string_view name, T fallback) {
    const std::string* v = given_.find(name);
    if (v == nullptr) return fallback;
    T out{};
    if (!parse_decimal(*v, out)) return refuse(fallback);
    canonical_.set(name, std::to_string(out));
    return out;
  }

  /// Whole seconds given, nanoseconds returned (for times the kernel's sysctls take in seconds).
  std::int64_t seconds_as_ns(std::string_view name, std::int64_t fallback_ns) {
    constexpr std::int64_t ns = 1'000'000'000;
    const std::string* v = given_.find(name);
    if (v == nullptr) return fallback_ns;
    std::uint64_t s = 0;
    if (!parse_decimal(*v, s) ||
        s > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / ns))
      return refuse(fallback_ns);
    const std::int64_t out = static_cast<std::int64_t>(s) * ns;
    canonical_.set(name, std::to_string(s));
    return out;
  }

  /// One of `words`: a range of {word, value} (the first word naming a value is its spelling).
  template <class E, class Words>
  E choice(std::string_view name, E fallback, const Words& words) {
    const std::string* v = given_.find(name);
    if (v == nullptr) return fallback;
    for (const auto& w : words) {
      if (w.word != *v) continue;
      for (const auto& c : words)
        if (c.value == w.value) {
          canonical_.set(name, c.word);
          break;
        }
      return w.value;
    }
    return refuse(fallback);
  }

  /// yes / no.
  bool yes_no(std::string_view name, bool fallback) {
    struct word {
      std::string_view word;
      bool value;
    };
    static constexpr std::array<word, 2> words{{{"yes", true}, {"no", false}}};
    return choice(name, fallback, words);
  }

  [[nodiscard]] scheduler_error error() const noexcept { return error_; }
  [[nodiscard]] const scheduler_options& canonical() const noexcept { return canonical_; }

 private:
  template <class T>
  T refuse(T fallback) {
    if (error_ == scheduler_error::ok) error_ = scheduler_error::bad_option_value;
    return fallback;
  }
  template <std::unsigned_integral T>
  static bool parse_decimal(const std::string& v, T& out) noexcept {
    const char* last = v.data() + v.size();
    const auto r = std::from_chars(v.data(), last, out);
    return !v.empty() && r.ec == std::errc{} && r.ptr == last;
  }

  const scheduler_options& given_;
  scheduler_options canonical_;
  scheduler_error error_ = scheduler_error::ok;
};

}  // namespace l4lb::sched
