// wmh: l4lb's weighted Maglev hashing (Eisenbud et al., "Maglev", NSDI 2016, section 3.4), the
// variant IPVS lacks: the table depends only on the set of real servers (not the order they were
// added), each server's share of slots is its weight share to within one slot, and slots are
// 2-byte indices so a 65537-slot table is 128 KiB. For the bit-exact kernel mh see maglev.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"
#include "l4lb/sched/stable_hash.hpp"

namespace l4lb::sched {

struct weighted_maglev_options {
  /// Slots M: a prime in 3..655373 (65537 as in the Maglev paper and Envoy/Katran).
  std::uint32_t table_size = 65537;
  /// What of a flow is hashed (default: the whole flow, as ECMP-fronted directors need).
  stable_hash::flow_hash_key key = stable_hash::flow_hash_key::flow;
  /// When the slot's server is quiesced or overloaded, pick another (else answer no_dest).
  bool fallback = true;
};

/// Weighted Maglev.
///
/// IMPLEMENTATION NOTES
/// Table: M slots of std::uint16_t holding list positions (so at most 65535 real servers);
/// 0xFFFF marks an empty table. Built from every server with last_weight > 0, so quiescing a
/// server (weight 0) keeps its slots and only its flows move (through the fallback), as in mh.
/// Build (control plane, allocation-free after the first build of a given size):
///  1. Servers sorted by endpoint (then handle): the table is a function of the server *set*,
///     whatever order they were added in (Envoy's Maglev lacked this: envoyproxy/envoy#20703,
///     fixed by sorting in PR #28055).
///  2. Preference list of a server = offset, offset+skip, ... (mod M), with offset = E1 mod M,
///     skip = E2 mod (M-1) + 1, E1/E2 = stable_hash::endpoint_hash with the fixed Maglev seeds.
///     M prime makes every preference list a permutation of the slots.
///  3. Quotas: q_i = floor(M w_i / W), the M - sum(q) remaining slots going to the largest
///     remainders (ties: the earlier server in endpoint order). So |slots_i - M w_i / W| < 1:
///     equal weights give slot counts that differ by at most one; M >= 100 N puts every server
///     with at least an average weight within 1 % of its weight share.
///  4. Fill in R = ceil(M / N) rounds, servers in endpoint order; in round r server i claims
///     ceil(r q_i / R) - ceil((r-1) q_i / R) slots, each the next free slot of its preference
///     list. With equal weights that is one slot per server per round: the paper's algorithm.
///     A heavier server claims several in a row (Katran's and IPVS's "turns"); a lighter one
///     skips rounds, evenly spread (Bresenham). Claims stop exactly at its quota.
///  5. Speed (same table, fewer steps): occupancy is an L1-resident bitmap; while 1/2 to 1/16
///     of the slots are free, 8 list entries are tested per step without branching (there the
///     outcome of each test is a coin toss for the branch predictor); the last slots are the
///     expensive ones (a server walks ~M/F entries to find one of F free slots), so once
///     F <= sqrt(M) the free slots are listed and a server takes the one that comes first in
///     its list, found from each free slot's index (s - offset) * skip^-1 mod M.
///     Measured: M = 65537, N = 1000 in ~0.98 ms (see bench/sched_hash_bench.cpp).
/// Differences from IPVS mh (maglev.hpp): mh walks the list in kernel order (newest first) so the
/// table changes when the same servers are added in another order; it gives a server `turns` =
/// weight/gcd (shifted right to fit 6 bits) slots in a row per pass until the table is full, so
/// shares follow the weight ratio only roughly (weights 4,3,2 give 1820/1365/908 of 4093 slots
/// against 1819/1364/910 exactly); its table is 4093 slots by default; it hashes only the client
/// address (and port) with SipHash-1-3. wmh hashes the whole flow by default with a cheaper
/// fixed multiply-fold hash.
/// Pick (data path): flow hash, slot = floor(h * M / 2^64), one 2-byte load, one server check:
/// O(1), no division. Fallback (server quiesced or overloaded): up to 32 further slots chosen by
/// rehashing the flow hash (so the flow's new server is again weight-proportional and stable),
/// then a scan of the list from a hash-chosen start; none usable -> no_dest.
class weighted_maglev {
 public:
  static constexpr std::string_view name = "wmh";
  static constexpr count_use uses_counts = count_use::none;
  static constexpr std::uint32_t default_table_size = 65537;
  static constexpr std::uint32_t max_table_size = 655373;
  static constexpr std::size_t max_servers = 65535;
  static constexpr std::uint16_t empty_slot = 0xFFFF;
  static constexpr unsigned fallback_probes = 32;

  /// Named options (any_scheduler): table-size (a prime), key (flow, source-address,
  /// source-address-and-port), fallback (yes/no).
  static constexpr std::array<std::string_view, 3> option_names{"table-size", "key", "fallback"};
  [[nodiscard]] static weighted_maglev_options read_options(option_reader& r) {
    weighted_maglev_options o;
    o.table_size = r.number("table-size", o.table_size);
    o.key = r.choice("key", o.key, stable_hash::flow_hash_key_words);
    o.fallback = r.yes_no("fallback", o.fallback);
    return o;
  }

  explicit weighted_maglev(weighted_maglev_options options = {})
      : opt_(options), config_(check(options)) {
    if (config_ == build_error::ok) {
      size_ = opt_.table_size;
      barrett_ = ~std::uint64_t{0} / size_;
    }
    slots_.assign(size_, empty_slot);
  }

  /// Control plane: rebuilds the whole table for any change (a function of the set, so the same
  /// set always gives the same table).
  build_error rebuild(std::span<const real_server> dests, dest_change) {
    if (config_ != build_error::ok) return config_;
    std::fill(slots_.begin(), slots_.end(), empty_slot);
    if (dests.size() > max_servers) return build_error::too_many_servers;
    collect_and_sort(dests);
    if (keys_.empty()) return build_error::ok;
    compute_quotas();
    fill();
    return build_error::ok;
  }

  /// Data plane.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) const noexcept {
    return pick_hash(dests, stable_hash::flow_hash(ctx.flow, opt_.key, ctx.inverse));
  }

  /// pick() for a flow hash computed elsewhere (e.g. once per burst).
  [[nodiscard]] dest_id pick_hash(std::span<const real_server> dests,
                                  std::uint64_t h) const noexcept {
    // size_ is 1 (one empty slot) when the options were refused, so there is no extra test.
    const std::uint16_t p = slots_[stable_hash::reduce(h, size_)];
    if (p != empty_slot && p < dests.size() && usable(dests[p])) [[likely]]
      return p;
    if (p == empty_slot || !opt_.fallback) return no_dest;
    return fall_back(dests, h);
  }

  void counts_changed(std::span<const real_server>, dest_id) noexcept {}

  /// Slot -> list position (empty_slot when no server has a weight).
  [[nodiscard]] std::span<const std::uint16_t> slots() const noexcept { return slots_; }
  [[nodiscard]] std::uint32_t table_size() const noexcept { return opt_.table_size; }
  [[nodiscard]] const weighted_maglev_options& options() const noexcept { return opt_; }

  [[nodiscard]] static constexpr bool is_prime(std::uint32_t m) noexcept {
    if (m < 2) return false;
    for (std::uint32_t d = 2; d * d <= m; ++d)
      if (m % d == 0) return false;
    return true;
  }

 private:
  struct sort_key {
    std::uint64_t hi;    // address bytes 0..7, big-endian
    std::uint64_t lo;    // address bytes 8..15
    std::uint64_t rest;  // port << 32 | handle
    std::uint16_t position;
    std::uint8_t family;
  };
  struct cold {  // per server, outside the fill loop
    std::uint64_t weight;
    std::uint32_t offset;        // first entry of the preference list
    std::uint32_t inverse_skip;  // skip^-1 mod M, 0 until step 5 needs it
    std::uint32_t quota;
  };
  struct claim_schedule {  // step 4: ceil(r q / R) by Bresenham, no division in the loop
    std::uint32_t per_round;  // floor(q / R)
    std::uint32_t rest;       // q mod R
    std::uint32_t error;      // ceil(r q / R) * R - r q, in [0, R)
  };
  struct remainder {
    std::uint64_t value;
    std::uint32_t index;
  };

  static build_error check(const weighted_maglev_options& o) noexcept {
    if (o.table_size < 3 || o.table_size > max_table_size || !is_prime(o.table_size))
      return build_error::bad_table_size;
    return build_error::ok;
  }

  static bool usable(const real_server& r) noexcept {
    return (r.weight != 0) & !r.overloaded & r.available;  // one branch for the caller
  }

  // Step 1: servers with a weight, in (endpoint, handle) order. Sorting precomputed keys keeps
  // the comparisons to integer compares.
  void collect_and_sort(std::span<const real_server> dests) {
    using boost::endian::load_big_u64;
    keys_.clear();
    for (std::size_t i = 0; i < dests.size(); ++i) {
      const real_server& r = dests[i];
      if (r.table_weight() == 0) continue;
      const auto& b = r.endpoint.address.raw();
      keys_.push_back({load_big_u64(b.data()), load_big_u64(b.data() + 8),
                       (std::uint64_t{r.endpoint.port} << 32) | r.handle,
                       static_cast<std::uint16_t>(i),
                       static_cast<std::uint8_t>(r.endpoint.address.family())});
    }
    std::sort(keys_.begin(), keys_.end(), [](const sort_key& x, const sort_key& y) {
      if (x.family != y.family) return x.family < y.family;
      if (x.hi != y.hi) return x.hi < y.hi;
      if (x.lo != y.lo) return x.lo < y.lo;
      return x.rest < y.rest;
    });
    const std::uint32_t m = opt_.table_size;
    const std::size_t n = keys_.size();
    next_.resize(n);
    skip_.resize(n);
    position_.resize(n);
    cold_.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      const real_server& r = dests[keys_[k].position];
      const auto offset = static_cast<std::uint32_t>(
          stable_hash::endpoint_hash(r.endpoint, stable_hash::maglev_offset_seed) % m);
      skip_[k] = static_cast<std::uint32_t>(
          stable_hash::endpoint_hash(r.endpoint, stable_hash::maglev_skip_seed) % (m - 1) + 1);
      next_[k] = offset;
      position_[k] = keys_[k].position;
      cold_[k] = {r.table_weight(), offset, 0, 0};
    }
  }

  // Step 3: largest-remainder quotas.
  void compute_quotas() {
    const std::uint64_t m = opt_.table_size;
    std::uint64_t total_weight = 0;
    for (const cold& c : cold_) total_weight += c.weight;
    std::uint64_t given = 0;
    remainders_.resize(cold_.size());
    for (std::size_t k = 0; k < cold_.size(); ++k) {
      const std::uint64_t share = m * cold_[k].weight;  // <= 655373 * 2^32: fits
      cold_[k].quota = static_cast<std::uint32_t>(share / total_weight);
      remainders_[k] = {share % total_weight, static_cast<std::uint32_t>(k)};
      given += cold_[k].quota;
    }
    const auto left = static_cast<std::size_t>(m - given);  // < number of servers
    if (left > 0) {
      auto bigger = [](const remainder& a, const remainder& b) {
        return a.value != b.value ? a.value > b.value : a.index < b.index;
      };
      std::nth_element(remainders_.begin(),
                       remainders_.begin() + static_cast<std::ptrdiff_t>(left - 1),
                       remainders_.end(), bigger);
      for (std::size_t k = 0; k < left; ++k) ++cold_[remainders_[k].index].quota;
    }
  }

  // Steps 4 and 5.
  void fill() {
    const std::uint32_t m = opt_.table_size;
    const auto n = static_cast<std::uint32_t>(next_.size());
    const std::uint32_t rounds = (m + n - 1) / n;
    schedule_.resize(n);
    for (std::uint32_t k = 0; k < n; ++k)
      schedule_[k] = {cold_[k].quota / rounds, cold_[k].quota % rounds, 0};
    taken_.assign((m + 63) / 64, 0);
    free_list_.clear();

    std::uint64_t* const taken = taken_.data();
    std::uint16_t* const slots = slots_.data();
    std::uint32_t* const next = next_.data();
    const std::uint32_t* const skip = skip_.data();
    const std::uint16_t* const position = position_.data();
    claim_schedule* const schedule = schedule_.data();
    const std::uint32_t tail = tail_threshold(m);  // >= 1, so phase 2 always runs
    // Between 1/2 and 1/16 free a probe's outcome is a coin toss for the branch predictor, so
    // there the walk tests 8 list entries at once without branching (measured ~8 % faster
    // overall); outside that band the plain walk is faster.
    const std::uint32_t group_from = m / 2, group_to = m / 16;
    std::uint32_t free_slots = m;
    std::uint32_t r = 0, k = 0, claims = 0;
    auto add_mod = [m](std::uint32_t a, std::uint32_t b) {
      const std::uint32_t x = a + b;
      return x >= m ? x - m : x;
    };
    auto is_taken = [taken](std::uint32_t x) {
      return static_cast<std::uint32_t>(taken[x >> 6] >> (x & 63)) & 1u;
    };

    // Phase 1: walk preference lists until `tail` slots are left.
    for (; r < rounds; ++r) {
      for (k = 0; k < n; ++k) {
        claims = claims_in_round(schedule[k], rounds);
        for (; claims > 0; --claims, --free_slots) {
          if (free_slots == tail) goto tail_phase;
          std::uint32_t c = next[k];
          const std::uint32_t step = skip[k];
          if (free_slots <= group_from && free_slots > group_to) {
            const std::uint32_t step2 = add_mod(step, step), step4 = add_mod(step2, step2);
            const std::uint32_t step8 = add_mod(step4, step4);
            for (;;) {
              std::array<std::uint32_t, 8> p;
              p[0] = c;
              p[1] = add_mod(c, step);
              p[2] = add_mod(c, step2);
              p[3] = add_mod(p[1], step2);
              p[4] = add_mod(c, step4);
              p[5] = add_mod(p[1], step4);
              p[6] = add_mod(p[2], step4);
              p[7] = add_mod(p[3], step4);
              std::uint32_t busy = 0;
              for (unsigned j = 0; j < 8; ++j) busy |= is_taken(p[j]) << j;
              if (busy != 0xFFu) {
                c = p[static_cast<std::size_t>(std::countr_zero(~busy))];
                break;
              }
              c = add_mod(c, step8);
            }
          } else {
            while ((taken[c >> 6] >> (c & 63)) & 1u) {
              c += step;
              if (c >= m) c -= m;
            }
          }
          taken[c >> 6] |= std::uint64_t{1} << (c & 63);
          slots[c] = position[k];
          c += step;
          if (c >= m) c -= m;
          next[k] = c;
        }
      }
    }
    return;

  tail_phase:
    // Phase 2: resume at server k (with its remaining claims) choosing from the free list.
    list_free_slots();
    for (;;) {
      for (; claims > 0; --claims) claim_from_list(k);
      if (++k == n) {
        k = 0;
        if (++r == rounds) break;
      }
      claims = claims_in_round(schedule[k], rounds);
    }
  }

  // Claims of one server in the next round: ceil(r q / R) - ceil((r-1) q / R), kept exact by
  // carrying the error term instead of dividing.
  static std::uint32_t claims_in_round(claim_schedule& s, std::uint32_t rounds) noexcept {
    std::uint32_t claims = s.per_round;
    if (s.rest > s.error) {
      ++claims;
      s.error += rounds;
    }
    s.error -= s.rest;
    return claims;
  }

  static std::uint32_t tail_threshold(std::uint32_t m) noexcept {
    std::uint32_t t = 1;
    while ((t + 1) * (t + 1) <= m) ++t;  // isqrt(m)
    return t;
  }

  void list_free_slots() {
    const std::uint32_t m = opt_.table_size;
    for (std::size_t w = 0; w < taken_.size(); ++w) {
      std::uint64_t free_bits = ~taken_[w];
      while (free_bits != 0) {
        const auto c = static_cast<std::uint32_t>(
            w * 64 + static_cast<unsigned>(std::countr_zero(free_bits)));
        if (c >= m) break;
        free_list_.push_back(c);
        free_bits &= free_bits - 1;
      }
    }
  }

  // x mod M for x < M^2 (Barrett with floor((2^64 - 1) / M), at most one correction).
  [[nodiscard]] std::uint32_t mod_m(std::uint64_t x) const noexcept {
    __extension__ using u128 = unsigned __int128;
    const auto q = static_cast<std::uint64_t>((static_cast<u128>(x) * barrett_) >> 64);
    std::uint64_t r = x - q * opt_.table_size;
    if (r >= opt_.table_size) r -= opt_.table_size;
    return static_cast<std::uint32_t>(r);
  }

  [[nodiscard]] std::uint32_t inverse_mod_m(std::uint32_t a) const noexcept {
    // Extended Euclid; M is prime and 0 < a < M.
    std::int64_t t = 0, new_t = 1;
    std::int64_t r = opt_.table_size, new_r = a;
    while (new_r != 0) {
      const std::int64_t q = r / new_r;
      std::int64_t tmp = t - q * new_t;
      t = new_t;
      new_t = tmp;
      tmp = r - q * new_r;
      r = new_r;
      new_r = tmp;
    }
    if (t < 0) t += opt_.table_size;
    return static_cast<std::uint32_t>(t);
  }

  // The free slot that comes first in server k's preference list: every entry it has passed is
  // taken, so the smallest list index among the free slots is where its walk would stop.
  void claim_from_list(std::uint32_t k) noexcept {
    const std::uint32_t m = opt_.table_size;
    cold& ck = cold_[k];
    if (ck.inverse_skip == 0) ck.inverse_skip = inverse_mod_m(skip_[k]);
    std::size_t best = 0;
    std::uint32_t best_index = m;
    for (std::size_t i = 0; i < free_list_.size(); ++i) {
      const std::uint32_t s = free_list_[i];
      const std::uint32_t d = s >= ck.offset ? s - ck.offset : s + m - ck.offset;
      const std::uint32_t index = mod_m(std::uint64_t{d} * ck.inverse_skip);
      if (index < best_index) {
        best_index = index;
        best = i;
      }
    }
    const std::uint32_t c = free_list_[best];
    free_list_[best] = free_list_.back();
    free_list_.pop_back();
    taken_[c >> 6] |= std::uint64_t{1} << (c & 63);
    slots_[c] = position_[k];
  }

  [[nodiscard]] dest_id fall_back(std::span<const real_server> dests,
                                  std::uint64_t h) const noexcept {
    std::uint64_t g = h;
    for (unsigned k = 0; k < fallback_probes; ++k) {
      g = stable_hash::splitmix64(g);
      const std::uint16_t p = slots_[stable_hash::reduce(g, size_)];
      if (p != empty_slot && p < dests.size() && usable(dests[p])) return p;
    }
    if (dests.empty()) return no_dest;
    const auto n = static_cast<std::uint32_t>(dests.size());
    const std::uint32_t start = stable_hash::reduce(g, n);
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t p = start + k < n ? start + k : start + k - n;
      if (dests[p].table_weight() > 0 && usable(dests[p])) return p;
    }
    return no_dest;
  }

  weighted_maglev_options opt_;
  build_error config_;
  std::uint32_t size_ = 1;
  std::uint64_t barrett_ = 0;
  std::vector<std::uint16_t> slots_;
  // Build scratch, kept between rebuilds so that a rebuild of the same size does not allocate.
  // Servers in endpoint order, as parallel arrays (the walk touches only next_ and skip_).
  std::vector<sort_key> keys_;
  std::vector<std::uint32_t> next_;
  std::vector<std::uint32_t> skip_;
  std::vector<std::uint16_t> position_;
  std::vector<cold> cold_;
  std::vector<claim_schedule> schedule_;
  std::vector<remainder> remainders_;
  std::vector<std::uint64_t> taken_;
  std::vector<std::uint32_t> free_list_;
};

static_assert(scheduler<weighted_maglev>);

using wmh = weighted_maglev;

}  // namespace l4lb::sched
