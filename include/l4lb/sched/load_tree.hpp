// Trees over list positions that let a policy answer "which server would IPVS's list scan pick?"
// without scanning: a tournament tree (best key, earliest position on ties) for lc/wlc/sed/nq/
// fo/ovf and the cursor searches of rr/wrr, and a prefix-sum tree for twos' weighted draw.
#pragma once

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "l4lb/sched/real_server.hpp"

namespace l4lb::sched {

namespace detail {

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 uint128;  // NOLINT(modernize-use-using): __extension__
#endif

/// a * b < c * d for 64-bit operands, exactly (the products may need 128 bits: an overhead of
/// 256 * active + inactive times a 32-bit weight does).
[[nodiscard]] constexpr bool product_less(std::uint64_t a, std::uint64_t b, std::uint64_t c,
                                          std::uint64_t d) noexcept {
#if defined(__SIZEOF_INT128__)
  return static_cast<uint128>(a) * b < static_cast<uint128>(c) * d;
#else
  // Portable 64x64 -> 128 by 32-bit halves.
  auto mul = [](std::uint64_t x, std::uint64_t y, std::uint64_t& hi) {
    const std::uint64_t xl = x & 0xffffffffu, xh = x >> 32, yl = y & 0xffffffffu, yh = y >> 32;
    const std::uint64_t ll = xl * yl, lh = xl * yh, hl = xh * yl, hh = xh * yh;
    const std::uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return (mid << 32) | (ll & 0xffffffffu);
  };
  std::uint64_t h1 = 0, h2 = 0;
  const std::uint64_t l1 = mul(a, b, h1), l2 = mul(c, d, h2);
  return h1 < h2 || (h1 == h2 && l1 < l2);
#endif
}

/// floor(num * 2^shift / den), saturating at rank_saturated's value (2^64 - 2); shift <= 64.
[[nodiscard]] inline std::uint64_t shifted_quotient(std::uint64_t num, unsigned shift,
                                                    std::uint32_t den) noexcept {
#if defined(__SIZEOF_INT128__)
  const uint128 q = (static_cast<uint128>(num) << shift) / den;
  const uint128 cap = ~std::uint64_t{0} - 1;
  return static_cast<std::uint64_t>(q < cap ? q : cap);
#else
  // Long division of the 128-bit value num * 2^shift by den, one bit at a time (rare path).
  std::uint64_t hi = shift == 0 ? 0 : (shift >= 64 ? num : num >> (64 - shift));
  std::uint64_t lo = shift >= 64 ? 0 : num << shift;
  if (hi >= den) return ~std::uint64_t{0} - 1;  // quotient >= 2^64
  std::uint64_t rem = hi, q = 0;
  for (int b = 63; b >= 0; --b) {
    const bool carry = (rem >> 63) != 0;
    rem = (rem << 1) | ((lo >> b) & 1u);
    q <<= 1;
    if (carry || rem >= den) {
      rem -= den;
      q |= 1u;
    }
  }
  return q < ~std::uint64_t{0} - 1 ? q : ~std::uint64_t{0} - 1;
#endif
}

}  // namespace detail

/// Ranks: what a tree_order maps a server to. Smaller is better; `not_eligible` excludes the
/// server; `rank_saturated` stands for "this much or more" (see tournament_tree).
inline constexpr std::uint64_t not_eligible = ~std::uint64_t{0};
inline constexpr std::uint64_t rank_saturated = ~std::uint64_t{0} - 1;

/// The ordering a tournament_tree keeps. An Order provides
///   struct params;                                          // per-rebuild constants
///   static params prepare(std::span<const real_server>);     // computed at rebuild
///   static std::uint64_t rank(const real_server&, const params&) noexcept;
///   static bool better(const real_server& a, const real_server& b) noexcept;
/// rank must be monotone and exact: for eligible a and b, rank(a) < rank(b) exactly when a is
/// strictly better than b, and equal ranks mean equally good -- except that ranks may saturate
/// (anything at or above some value reported as that value), where `better`, the exact strict
/// comparison, decides. Strictness is what gives IPVS's tie rule: an equal server never
/// displaces an earlier one.
template <class O>
concept tree_order = requires(const real_server& r, const typename O::params& p,
                              std::span<const real_server> list) {
  { O::prepare(list) } -> std::same_as<typename O::params>;
  { O::rank(r, p) } noexcept -> std::same_as<std::uint64_t>;
  { O::better(r, r) } noexcept -> std::same_as<bool>;
};

/// For orders without per-rebuild constants.
struct stateless_order {
  struct params {};
  static constexpr params prepare(std::span<const real_server>) noexcept { return {}; }
};

/// Ranks for "smallest num/den first" (wlc, sed, nq), exact without 128-bit work per comparison:
/// rank = floor(num * 2^S / den) with 2^S > (largest weight)^2. Two different fractions whose
/// denominators are at most W differ by at least 1/W^2, so their ranks differ too, and equal
/// fractions get equal ranks: the rank order *is* the fraction order (kernel: loh * w_d >
/// doh * w_least). One division per counters change, none per comparison.
struct ratio_rank {
  struct params {
    unsigned shift = 0;
  };
  static params for_weights(std::span<const real_server> dests) noexcept {
    std::uint32_t max_w = 0;
    for (const real_server& r : dests) max_w = std::max(max_w, r.weight);
    return {2u * static_cast<unsigned>(std::bit_width(max_w))};
  }
  [[nodiscard]] static std::uint64_t of(std::uint64_t num, std::uint32_t den,
                                        const params& p) noexcept {
    if (num == 0) return 0;
    if (p.shift < 64 && (num >> (64 - p.shift)) == 0) return (num << p.shift) / den;
    return detail::shifted_quotient(num, p.shift, den);  // rare: beyond 64 bits
  }
};

/// The weight of a server that may take new connections, heaviest first (rank = 2^32 - 1 - w):
/// the test rr, wrr and fo apply (ip_vs_rr.c, ip_vs_wrr.c, ip_vs_fo.c): not overloaded,
/// weight > 0.
struct available_weight_order : stateless_order {
  static constexpr std::uint64_t rank_of_weight(std::uint32_t w) noexcept {
    return std::uint64_t{0xffffffffu} - w;
  }
  static constexpr std::uint32_t weight_of_rank(std::uint64_t rank) noexcept {
    return rank > 0xffffffffu ? 0 : static_cast<std::uint32_t>(0xffffffffu - rank);
  }
  [[nodiscard]] static constexpr std::uint64_t rank(const real_server& r, const params&) noexcept {
    return r.accepts_new_connections() ? rank_of_weight(r.weight) : not_eligible;
  }
  [[nodiscard]] static constexpr bool better(const real_server& a, const real_server& b) noexcept {
    return a.weight > b.weight;
  }
};

/// Tournament tree over list positions 0..n-1 that reproduces a head-to-tail IPVS scan with a
/// strict comparison: the root is the best server, the first in list order among equals.
/// Each node is one 64-bit word, (rank << position bits) | position, and holds the minimum of its
/// children: comparing packed words compares ranks and, on equal ranks, positions -- the
/// earlier server wins without any tie logic. Ranks too large for the rank field saturate; when
/// the best rank is saturated (every eligible server is that loaded), best() falls back to an
/// exact O(n) scan with Order::better.
/// rebuild is O(n) and allocates (control plane); update is O(log n), one min per level, and stops
/// climbing as soon as a node is unchanged; best is O(1). No allocation after rebuild.
template <tree_order Order>
class tournament_tree {
 public:
  using params = typename Order::params;

  /// Control plane: size the tree to the list and compute every node.
  void rebuild(std::span<const real_server> dests) {
    size_ = dests.size();
    leaves_ = std::bit_ceil(std::max<std::size_t>(size_, 1));
    pos_bits_ = static_cast<unsigned>(std::bit_width(leaves_ - 1));
    pos_mask_ = (std::uint64_t{1} << pos_bits_) - 1;
    ineligible_field_ = ~std::uint64_t{0} >> pos_bits_;
    saturated_field_ = ineligible_field_ - 1;
    params_ = Order::prepare(dests);
    nodes_.assign(2 * leaves_, ~std::uint64_t{0});
    for (std::size_t i = 0; i < size_; ++i) nodes_[leaves_ + i] = pack(dests[i], i);
    for (std::size_t i = leaves_ - 1; i >= 1; --i)
      nodes_[i] = std::min(nodes_[2 * i], nodes_[2 * i + 1]);
  }

  /// Data plane: dests[id]'s rank may have changed. Out-of-range ids are ignored.
  void update(std::span<const real_server> dests, dest_id id) noexcept {
    if (id >= size_ || id >= dests.size()) return;
    std::size_t i = leaves_ + id;
    std::uint64_t cur = pack(dests[id], id);
    if (nodes_[i] == cur) return;
    nodes_[i] = cur;
    while (i > 1) {
      cur = std::min(cur, nodes_[i ^ 1]);
      i >>= 1;
      if (nodes_[i] == cur) return;  // ancestors see no change
      nodes_[i] = cur;
    }
  }

  /// The first position (in list order) with the best rank, or no_dest when nobody is eligible
  /// or `dests` is not the list the tree was built for.
  [[nodiscard]] dest_id best(std::span<const real_server> dests) const noexcept {
    if (nodes_.empty() || dests.size() != size_) return no_dest;
    const std::uint64_t root = nodes_[1];
    const std::uint64_t field = root >> pos_bits_;
    if (field == ineligible_field_) return no_dest;
    if (field == saturated_field_) return exact_best(dests);
    return static_cast<dest_id>(root & pos_mask_);
  }

  /// The best rank (not_eligible when nobody is eligible; saturated ranks read as rank_saturated).
  [[nodiscard]] std::uint64_t best_rank() const noexcept {
    return nodes_.empty() ? not_eligible : unpack_rank(nodes_[1]);
  }
  [[nodiscard]] std::uint64_t rank(dest_id id) const noexcept {
    return id < size_ ? unpack_rank(nodes_[leaves_ + id]) : not_eligible;
  }
  /// Number of positions (the list size at the last rebuild).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] const params& order_params() const noexcept { return params_; }

  /// The first position >= from whose rank is <= max_rank, or no_dest. O(log n): climb until a
  /// right sibling's subtree qualifies, then descend leftmost.
  [[nodiscard]] dest_id first_at_most(std::size_t from, std::uint64_t max_rank) const noexcept {
    if (from >= size_) return no_dest;
    const std::uint64_t limit = (std::min(max_rank, saturated_field_) << pos_bits_) | pos_mask_;
    std::size_t i = leaves_ + from;
    while (nodes_[i] > limit) {
      while (i & 1) {  // a right child (or the root): go up until we can step right
        i >>= 1;
        if (i == 0) return no_dest;
      }
      ++i;
    }
    while (i < leaves_) i = nodes_[2 * i] <= limit ? 2 * i : 2 * i + 1;
    const std::size_t pos = i - leaves_;
    return pos < size_ ? static_cast<dest_id>(pos) : no_dest;
  }

 private:
  [[nodiscard]] std::uint64_t pack(const real_server& r, std::size_t pos) const noexcept {
    const std::uint64_t rk = Order::rank(r, params_);
    const std::uint64_t field =
        rk == not_eligible ? ineligible_field_ : std::min(rk, saturated_field_);
    return (field << pos_bits_) | pos;
  }
  [[nodiscard]] std::uint64_t unpack_rank(std::uint64_t v) const noexcept {
    const std::uint64_t field = v >> pos_bits_;
    if (field == ineligible_field_) return not_eligible;
    return field == saturated_field_ ? rank_saturated : field;
  }
  // Every eligible server's rank saturated: the kernel's scan, with the exact comparison.
  [[nodiscard]] dest_id exact_best(std::span<const real_server> dests) const noexcept {
    dest_id best = no_dest;
    for (std::size_t i = 0; i < dests.size(); ++i) {
      if (Order::rank(dests[i], params_) == not_eligible) continue;
      if (best == no_dest || Order::better(dests[i], dests[best])) best = static_cast<dest_id>(i);
    }
    return best;
  }

  std::vector<std::uint64_t> nodes_;  // 1-based heap layout; leaves at [leaves_, 2 * leaves_)
  std::size_t size_ = 0;
  std::size_t leaves_ = 0;
  unsigned pos_bits_ = 0;
  std::uint64_t pos_mask_ = 0;
  std::uint64_t ineligible_field_ = ~std::uint64_t{0};
  std::uint64_t saturated_field_ = ~std::uint64_t{0} - 1;
  params params_{};
};

/// Prefix sums over list positions with "first position whose running sum reaches t" in
/// O(log n): twos' weighted draw ("subtract each eligible weight until <= 0") without the scan.
class prefix_sum_tree {
 public:
  /// Control plane: `size` positions, all 0.
  void reset(std::size_t size) {
    size_ = size;
    leaves_ = std::bit_ceil(std::max<std::size_t>(size, 1));
    sums_.assign(2 * leaves_, 0);
  }
  /// Sets position `id` to `value` (ignored when out of range). O(log n).
  void set(std::size_t id, std::uint64_t value) noexcept {
    if (id >= size_) return;
    std::size_t i = leaves_ + id;
    if (sums_[i] == value) return;
    sums_[i] = value;
    for (i >>= 1; i != 0; i >>= 1) sums_[i] = sums_[2 * i] + sums_[2 * i + 1];
  }
  [[nodiscard]] std::uint64_t value(std::size_t id) const noexcept {
    return id < size_ ? sums_[leaves_ + id] : 0;
  }
  [[nodiscard]] std::uint64_t total() const noexcept { return sums_.empty() ? 0 : sums_[1]; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// The first position p with value(0) + ... + value(p) >= target; target in [1, total()].
  /// Positions of value 0 are never returned. no_dest when target is out of range.
  [[nodiscard]] dest_id first_reaching(std::uint64_t target) const noexcept {
    if (target == 0 || target > total()) return no_dest;
    std::size_t i = 1;
    while (i < leaves_) {
      if (sums_[2 * i] >= target) {
        i = 2 * i;
      } else {
        target -= sums_[2 * i];
        i = 2 * i + 1;
      }
    }
    return static_cast<dest_id>(i - leaves_);
  }

 private:
  std::vector<std::uint64_t> sums_;
  std::size_t size_ = 0;
  std::size_t leaves_ = 0;
};

namespace detail {

/// The body shared by policies whose pick is "the best server under one ordering, first in list
/// order on ties" (lc, wlc, sed, nq, fo, ovf): rebuild the tree on any list change, update one
/// leaf when a server's counters change, read the root to pick. A policy derives from it and
/// adds its `name`.
template <tree_order Order>
class best_of_tree {
 public:
  /// Control plane: these IPVS policies keep no state across list changes (ipvs-notes 1.2).
  void rebuild(std::span<const real_server> dests, dest_change) { tree_.rebuild(dests); }

  /// Data plane: O(1). no_dest when nobody qualifies, or when `dests` is not the list the tree
  /// was rebuilt for (its size differs).
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context&) const noexcept {
    return tree_.best(dests);
  }

  /// Data plane: O(log n); a no-op when the server's key did not change.
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    tree_.update(dests, id);
  }

  [[nodiscard]] const tournament_tree<Order>& tree() const noexcept { return tree_; }

 private:
  tournament_tree<Order> tree_;
};

}  // namespace detail

}  // namespace l4lb::sched
