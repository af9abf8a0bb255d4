// twos: IPVS's power-of-two-choices scheduler (net/netfilter/ipvs/ip_vs_twos.c, newer kernels):
// draw two servers at random in proportion to their weights, keep the less loaded one. Random,
// so "exact" here means the kernel's rule driven by a generator the policy owns and a caller seeds.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"

namespace l4lb::sched {

/// PCG32 (O'Neill's PCG-XSH-RR, 64-bit state, 32-bit output): small, fast, seedable, and the same
/// stream on every platform.
class pcg32 {
 public:
  static constexpr std::uint64_t default_seed = 0x853c49e6748fea9bULL;
  static constexpr std::uint64_t default_stream = 0xda3e39cb94b95bdbULL;

  explicit constexpr pcg32(std::uint64_t seed = default_seed,
                           std::uint64_t stream = default_stream) noexcept
      : inc_((stream << 1) | 1u) {
    (*this)();
    state_ += seed;
    (*this)();
  }

  constexpr std::uint32_t operator()() noexcept {
    const std::uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const auto xorshifted = static_cast<std::uint32_t>(((old >> 18) ^ old) >> 27);
    const auto rot = static_cast<unsigned>(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
  }

 private:
  std::uint64_t state_ = 0;
  std::uint64_t inc_;
};

/// A uniform value in [0, bound) from 32-bit draws, the way the kernel's get_random_u32_below()
/// does it (multiply-shift, redrawing the rare biased products). Bounds above 2^32 (impossible
/// with the kernel's int weights) use two draws per value.
template <class Gen>
[[nodiscard]] constexpr std::uint64_t uniform_below(Gen& gen, std::uint64_t bound) noexcept {
  if (bound <= 1) return 0;
  if (bound <= 0xffffffffULL) {
    const auto ceil = static_cast<std::uint32_t>(bound);
    std::uint64_t mult = std::uint64_t{ceil} * gen();
    if (static_cast<std::uint32_t>(mult) < ceil) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-ceil) % ceil;
      while (static_cast<std::uint32_t>(mult) < threshold) mult = std::uint64_t{ceil} * gen();
    }
    return mult >> 32;
  }
  for (;;) {  // rejection on 64-bit draws: unbiased, expected < 2 rounds
    const std::uint64_t x = (std::uint64_t{gen()} << 32) | gen();
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
    if (x < limit) return x % bound;
  }
}

/// IPVS twos. The kernel's rule (ip_vs_twos_schedule):
/// 1. W = sum of the weights of servers that are not overloaded and have weight > 0; none -> no
///    destination.
/// 2. r1 and r2 are drawn independently and uniformly from [0, W] (W + 1 values, r1 first).
/// 3. Walking the list over those eligible servers, subtracting each weight from r1 and r2: the
///    first server at which r1 <= 0 is choice 1, likewise choice 2 -- i.e. the first eligible
///    server whose running weight sum reaches r (r = 0 selects the first eligible server).
/// 4. choice 2 wins only when w2 * overhead1 > w1 * overhead2 (overhead = 256 * active +
///    inactive), so choice 1 keeps ties.
/// Ours: the draw of step 3 is a prefix-sum tree search, O(log n) instead of the list walk; the
/// products are exact in 128 bits; the generator is `Gen` (pcg32 by default) seeded at
/// construction, where the kernel uses its own get_random_u32_below().
template <class Gen = pcg32>
class basic_two_choices {
 public:
  static constexpr std::string_view name = "twos";
  static constexpr count_use uses_counts = count_use::availability;

  /// Named options (any_scheduler): seed, the generator's seed (decimal), for a generator that
  /// is seeded from a number.
  static constexpr std::array<std::string_view, 1> option_names{"seed"};
  [[nodiscard]] static std::uint64_t read_options(option_reader& r)
    requires std::constructible_from<Gen, std::uint64_t>
  {
    return r.number("seed", pcg32::default_seed);
  }

  basic_two_choices() = default;
  explicit basic_two_choices(Gen gen) : gen_(gen) {}
  explicit basic_two_choices(std::uint64_t seed)
    requires std::constructible_from<Gen, std::uint64_t>
      : gen_(seed) {}

  /// Control plane: the tree of eligible weights follows the list.
  void rebuild(std::span<const real_server> dests, dest_change) {
    weights_.reset(dests.size());
    for (std::size_t i = 0; i < dests.size(); ++i) weights_.set(i, eligible_weight(dests[i]));
  }

  /// Data plane: two draws, two O(log n) searches, one comparison.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests, const pick_context&) noexcept {
    if (dests.size() != weights_.size()) return no_dest;
    const std::uint64_t total = weights_.total();
    if (total == 0) return no_dest;
    const std::uint64_t r1 = uniform_below(gen_, total + 1);
    const std::uint64_t r2 = uniform_below(gen_, total + 1);
    const dest_id c1 = weights_.first_reaching(r1 == 0 ? 1 : r1);
    const dest_id c2 = weights_.first_reaching(r2 == 0 ? 1 : r2);
    const real_server& d1 = dests[c1];
    const real_server& d2 = dests[c2];
    // w2 * oh1 > w1 * oh2  <=>  w1 * oh2 < w2 * oh1
    return detail::product_less(d1.weight, d2.overhead(), d2.weight, d1.overhead()) ? c2 : c1;
  }

  /// Data plane: only the overload flag changes eligibility (O(log n) when it flips).
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    if (id < dests.size()) weights_.set(id, eligible_weight(dests[id]));
  }

  [[nodiscard]] Gen& generator() noexcept { return gen_; }

 private:
  static std::uint64_t eligible_weight(const real_server& r) noexcept {
    return r.accepts_new_connections() ? r.weight : 0;
  }

  Gen gen_{};
  prefix_sum_tree weights_;
};

using two_choices = basic_two_choices<pcg32>;
static_assert(scheduler<two_choices>);

using twos = two_choices;

}  // namespace l4lb::sched
