// ring: a weighted consistent-hash ring in the ketama style (Karger et al. 1997; libketama), which
// IPVS lacks. Each real server owns points on a 64-bit circle in proportion to its weight; a flow
// goes to the owner of the first point at or after its hash. Removing a server moves only the
// flows that were on it.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"
#include "l4lb/sched/stable_hash.hpp"

namespace l4lb::sched {

struct hash_ring_options {
  /// Points of a server of mean weight (ketama uses 160). 1..65536.
  std::uint32_t points_per_server = 160;
  stable_hash::flow_hash_key key = stable_hash::flow_hash_key::flow;
  /// When the owner is quiesced or overloaded, walk on to the next usable owner (else no_dest).
  bool fallback = true;
};

/// Consistent hash ring.
///
/// IMPLEMENTATION NOTES
/// Points: a server with last_weight w (servers with last_weight 0 own none) owns
///   p = max(1, round(points_per_server * w * N / W))    (N servers with a weight, W their sum)
/// points at splitmix64(E + k * 0x9e3779b97f4a7c15), k = 0..p-1, E = endpoint_hash(endpoint,
/// ring_seed): the first p outputs of a SplitMix64 stream seeded by the endpoint. So a server's
/// points depend only on its endpoint and p, and p changing by one adds or removes one point.
/// The points are sorted by (hash, endpoint); equal hashes (p ~ 2^-64) go to the lower endpoint.
/// Lookup: the first point with hash >= flow hash, wrapping to the first point. A bucket index
/// over the top bits (2^k buckets for >= 2^(k-1) points) narrows that to ~1 point on average: O(1)
/// expected, O(log) worst case via the index bounds. Memory: 12 bytes a point + 4 bytes a bucket.
/// Disruption: removing a server moves exactly its own flows when weights are equal (every other
/// server keeps its p points); with unequal weights the mean moves, so other servers gain or lose
/// a few trailing points too (bounded by the change of the mean, ~1/N).
/// Like mh and wmh, the ring follows last_weight: a quiesced server keeps its points and the
/// fallback walks past them, which is the same as a ring without it (exactly its flows move).
/// Fallback walk: up to 1024 points, then a scan of the list from a hash-chosen start.
class consistent_hash_ring {
 public:
  static constexpr std::string_view name = "ring";
  static constexpr count_use uses_counts = count_use::none;
  static constexpr std::size_t max_points = std::size_t{1} << 26;
  static constexpr unsigned max_walk = 1024;
  static constexpr std::uint64_t point_step = 0x9e3779b97f4a7c15ULL;

  /// Named options (any_scheduler): points (points_per_server), key (flow, source-address,
  /// source-address-and-port), fallback (yes/no).
  static constexpr std::array<std::string_view, 3> option_names{"points", "key", "fallback"};
  [[nodiscard]] static hash_ring_options read_options(option_reader& r) {
    hash_ring_options o;
    o.points_per_server = r.number("points", o.points_per_server);
    o.key = r.choice("key", o.key, stable_hash::flow_hash_key_words);
    o.fallback = r.yes_no("fallback", o.fallback);
    return o;
  }

  explicit consistent_hash_ring(hash_ring_options options = {})
      : opt_(options),
        config_(options.points_per_server >= 1 && options.points_per_server <= 65536
                    ? build_error::ok
                    : build_error::bad_option) {}

  /// The k-th point of a server whose endpoint hash is E.
  [[nodiscard]] static constexpr std::uint64_t point_hash(std::uint64_t endpoint_hash,
                                                          std::uint64_t k) noexcept {
    return stable_hash::splitmix64(endpoint_hash + k * point_step);
  }

  /// Control plane: rebuilds the ring for any change.
  build_error rebuild(std::span<const real_server> dests, dest_change) {
    hashes_.clear();
    owners_.clear();
    index_.clear();
    if (config_ != build_error::ok) return config_;

    std::vector<std::uint32_t> order;
    std::uint64_t total_weight = 0;
    for (std::size_t i = 0; i < dests.size(); ++i)
      if (dests[i].table_weight() > 0) {
        order.push_back(static_cast<std::uint32_t>(i));
        total_weight += dests[i].table_weight();
      }
    if (order.empty()) return build_error::ok;
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      if (dests[a].endpoint != dests[b].endpoint) return dests[a].endpoint < dests[b].endpoint;
      return dests[a].handle < dests[b].handle;
    });

    __extension__ using u128 = unsigned __int128;
    const u128 n = order.size();
    std::vector<std::uint64_t> counts(order.size());
    std::uint64_t total_points = 0;
    for (std::size_t r = 0; r < order.size(); ++r) {
      const u128 scaled = u128{opt_.points_per_server} * dests[order[r]].table_weight() * n;
      const auto p = static_cast<std::uint64_t>((2 * scaled + total_weight) / (2 * u128{total_weight}));
      counts[r] = std::max<std::uint64_t>(1, p);
      total_points += counts[r];
      if (total_points > max_points) return build_error::too_many_servers;
    }

    // (hash, rank) pairs sorted; rank = position in endpoint order breaks ties.
    struct point {
      std::uint64_t hash;
      std::uint32_t rank;
    };
    std::vector<point> points;
    points.reserve(static_cast<std::size_t>(total_points));
    for (std::size_t r = 0; r < order.size(); ++r) {
      const std::uint64_t e =
          stable_hash::endpoint_hash(dests[order[r]].endpoint, stable_hash::ring_seed);
      for (std::uint64_t k = 0; k < counts[r]; ++k)
        points.push_back({point_hash(e, k), static_cast<std::uint32_t>(r)});
    }
    std::sort(points.begin(), points.end(), [](const point& a, const point& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.rank < b.rank;
    });
    hashes_.resize(points.size());
    owners_.resize(points.size());
    for (std::size_t i = 0; i < points.size(); ++i) {
      hashes_[i] = points[i].hash;
      owners_[i] = order[points[i].rank];
    }

    // Bucket index: index_[b] = first point whose top bits are >= b.
    const std::uint64_t buckets = std::max<std::uint64_t>(2, std::bit_ceil(std::uint64_t{points.size()}));
    shift_ = 64u - static_cast<unsigned>(std::countr_zero(buckets));
    index_.resize(static_cast<std::size_t>(buckets) + 1);
    std::size_t i = 0;
    for (std::uint64_t b = 0; b < buckets; ++b) {
      while (i < hashes_.size() && (hashes_[i] >> shift_) < b) ++i;
      index_[static_cast<std::size_t>(b)] = static_cast<std::uint32_t>(i);
    }
    index_[static_cast<std::size_t>(buckets)] = static_cast<std::uint32_t>(hashes_.size());
    return build_error::ok;
  }

  /// Data plane.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) const noexcept {
    return pick_hash(dests, stable_hash::flow_hash(ctx.flow, opt_.key, ctx.inverse));
  }

  [[nodiscard]] dest_id pick_hash(std::span<const real_server> dests,
                                  std::uint64_t h) const noexcept {
    if (hashes_.empty()) return no_dest;
    std::size_t i = point_at(h);
    dest_id d = owners_[i];
    if (d < dests.size() && usable(dests[d])) return d;
    if (!opt_.fallback) return no_dest;
    const std::size_t walk = std::min<std::size_t>(max_walk, hashes_.size());
    for (std::size_t k = 1; k < walk; ++k) {
      i = i + 1 == hashes_.size() ? 0 : i + 1;
      d = owners_[i];
      if (d < dests.size() && usable(dests[d])) return d;
    }
    if (dests.empty()) return no_dest;
    const auto n = static_cast<std::uint32_t>(dests.size());
    const std::uint32_t start = stable_hash::reduce(stable_hash::splitmix64(h), n);
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t p = start + k < n ? start + k : start + k - n;
      if (dests[p].table_weight() > 0 && usable(dests[p])) return p;
    }
    return no_dest;
  }

  void counts_changed(std::span<const real_server>, dest_id) noexcept {}

  /// Index of the point that owns hash h (precondition: the ring is not empty).
  [[nodiscard]] std::size_t point_at(std::uint64_t h) const noexcept {
    const std::size_t b = static_cast<std::size_t>(h >> shift_);
    std::size_t lo = index_[b], hi = index_[b + 1];
    // Points in later buckets all hash above h; within the bucket, the first with hash >= h.
    lo = static_cast<std::size_t>(
        std::lower_bound(hashes_.begin() + static_cast<std::ptrdiff_t>(lo),
                         hashes_.begin() + static_cast<std::ptrdiff_t>(hi), h) -
        hashes_.begin());
    return lo == hashes_.size() ? 0 : lo;
  }

  /// The ring, for tests: point hashes (sorted) and their owners' list positions.
  [[nodiscard]] std::span<const std::uint64_t> point_hashes() const noexcept { return hashes_; }
  [[nodiscard]] std::span<const dest_id> point_owners() const noexcept { return owners_; }
  [[nodiscard]] const hash_ring_options& options() const noexcept { return opt_; }

 private:
  static bool usable(const real_server& r) noexcept {
    return r.weight != 0 && !r.overloaded && r.available;
  }

  hash_ring_options opt_;
  build_error config_;
  std::vector<std::uint64_t> hashes_;
  std::vector<dest_id> owners_;
  std::vector<std::uint32_t> index_;
  unsigned shift_ = 63;
};

static_assert(scheduler<consistent_hash_ring>);

using ring = consistent_hash_ring;

}  // namespace l4lb::sched
