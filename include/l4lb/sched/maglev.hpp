// mh: IPVS's Maglev hashing scheduler (net/netfilter/ipvs/ip_vs_mh.c, Linux >= 4.18), bit-exact,
// so that an l4lb director and a kernel IPVS director send the same client to the same real
// server. For our order-independent, exactly weighted variant see weighted_maglev.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/ipvs_hash.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"

namespace l4lb::sched {

/// IPVS mh, exactly as a 64-bit little-endian kernel does it:
/// - H(key, addr, port, offset) = hsiphash(offset + port + fold(addr)) with the fixed keys
///   key1 = (2654435761, 2654435761) and key2 = (2654446892, 2654446892) (SipHash-1-3);
/// - table size M = primes[table_index - 8] (CONFIG_IP_VS_MH_TAB_INDEX, default 12 -> 4093);
/// - per server, in list order: offset = H(key1, server) mod M, skip = H(key2, server) mod (M-1)
///   + 1; turns = (last_weight / gcd) >> rshift (at least 1 when last_weight > 0), where gcd is
///   over all non-zero last_weights and rshift = max(0, fls(max last_weight / gcd) - index/2);
/// - populate: passes over the list; a server with turns > 0 claims `turns` slots in a row, each
///   the next free slot of its own sequence offset, offset+skip, ... (mod M); until M are taken;
/// - the table follows last_weight, so a quiesced server (weight 0) keeps its slots and only its
///   clients change; rebuilt on init, add, delete and edit;
/// - pick: slot H(key1, client, port, 0) mod M, refused when its server has weight 0 or is
///   overloaded; mh-fallback tries slot H(key1, client, port, r) mod M for r = (o + first) mod M,
///   o = 0..M-1, and an empty slot ends the search. The port is 0 unless mh-port.
/// Data path: one hsiphash and one table load; with mh-fallback a refused slot costs one more
/// hsiphash per further slot tried (at most M, as in the kernel).
class maglev_hashing {
 public:
  static constexpr std::string_view name = "mh";
  static constexpr count_use uses_counts = count_use::none;
  /// ip_vs_mh.c primes[]; CONFIG_IP_VS_MH_TAB_INDEX 8..17 selects one.
  static constexpr std::array<std::uint32_t, 10> table_primes = {
      251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071};
  static constexpr unsigned default_table_index = 12;
  static constexpr ipvs::hsiphash_key key1{2654435761ULL, 2654435761ULL};
  static constexpr ipvs::hsiphash_key key2{2654446892ULL, 2654446892ULL};

  /// Named options (any_scheduler): table-index, the constructor's `table_index` (8..17).
  static constexpr std::array<std::string_view, 1> option_names{"table-index"};
  [[nodiscard]] static unsigned read_options(option_reader& r) {
    return r.number("table-index", default_table_index);
  }

  explicit maglev_hashing(ipvs::hash_flags flags = {},
                          unsigned table_index = default_table_index)
      : flags_(flags),
        size_(table_index >= 8 && table_index <= 17 ? table_primes[table_index - 8] : 0),
        tab_bits_(table_index / 2),
        config_(size_ != 0 ? build_error::ok : build_error::bad_table_size) {
    if (config_ == build_error::ok) slots_.assign(size_, no_dest);
  }

  /// H(key, addr, port, offset) of ip_vs_mh_hashkey, for a folded address.
  [[nodiscard]] static constexpr std::uint32_t hash(const ipvs::hsiphash_key& key,
                                                    std::uint32_t folded_address,
                                                    std::uint16_t port,
                                                    std::uint32_t offset) noexcept {
    return ipvs::hsiphash_u32(offset + port + folded_address, key);
  }

  struct permutation {
    std::uint32_t offset = 0;
    std::uint32_t skip = 0;
  };
  /// A real server's start and stride in a table of size m (ip_vs_mh_permutate).
  [[nodiscard]] static permutation permutation_of(const wire::endpoint& e,
                                                  std::uint32_t m) noexcept {
    const std::uint32_t f = ipvs::fold_address(e.address);
    return {hash(key1, f, e.port, 0) % m, hash(key2, f, e.port, 0) % (m - 1) + 1};
  }

  /// Control plane (ip_vs_mh_dest_changed / ip_vs_mh_reassign). More servers than slots is
  /// refused like the kernel's EINVAL; the table is then empty.
  build_error rebuild(std::span<const real_server> dests, dest_change) {
    if (config_ != build_error::ok) return config_;
    std::fill(slots_.begin(), slots_.end(), no_dest);
    if (dests.size() > size_) return build_error::too_many_servers;

    // ip_vs_mh_gcd_weight / ip_vs_mh_shift_weight, over last_weight.
    std::uint32_t g = 0, max_lw = 0;
    for (const real_server& r : dests) {
      if (r.table_weight() > 0) g = g > 0 ? std::gcd(r.table_weight(), g) : r.table_weight();
      max_lw = std::max(max_lw, r.table_weight());
    }
    if (g < 1) return build_error::ok;  // no server with a weight: every slot empty
    const int fls = static_cast<int>(std::bit_width(max_lw / g));
    const int rshift = std::max(0, fls - static_cast<int>(tab_bits_));

    struct setup {
      std::uint32_t perm;
      std::uint32_t skip;
      std::uint32_t turns;
    };
    std::vector<setup> ds(dests.size());
    for (std::size_t i = 0; i < dests.size(); ++i) {
      const permutation p = permutation_of(dests[i].endpoint, size_);
      const std::uint32_t lw = dests[i].table_weight();
      std::uint32_t turns = (lw / g) >> rshift;
      if (turns == 0) turns = lw != 0 ? 1 : 0;
      ds[i] = {p.offset, p.skip, turns};
    }

    // ip_vs_mh_populate: passes over the list until every slot is taken.
    std::vector<std::uint64_t> taken((size_ + 63) / 64, 0);
    std::uint32_t n = 0, dt = 0;
    while (true) {
      for (std::size_t i = 0; i < ds.size();) {
        setup& s = ds[i];
        if (s.turns < 1) {
          ++i;
          continue;
        }
        std::uint32_t c = s.perm;
        while ((taken[c >> 6] >> (c & 63)) & 1u) {
          s.perm += s.skip;
          if (s.perm >= size_) s.perm -= size_;
          c = s.perm;
        }
        taken[c >> 6] |= std::uint64_t{1} << (c & 63);
        slots_[c] = static_cast<dest_id>(i);
        if (++n == size_) return build_error::ok;
        if (++dt >= s.turns) {
          dt = 0;
          ++i;
        }
      }
    }
  }

  /// Data plane (ip_vs_mh_schedule).
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) const noexcept {
    if (slots_.empty()) return no_dest;
    const ipvs::client_key k = ipvs::client_key_of(ctx.flow, ctx.inverse, flags_.port);
    const std::uint32_t ihash = hash(key1, k.folded_address, k.port, 0) % size_;
    dest_id d = slots_[ihash];
    if (d >= dests.size()) return no_dest;
    if (usable(dests[d])) return d;
    if (!flags_.fallback) return no_dest;
    for (std::uint32_t o = 0; o < size_; ++o) {
      const std::uint32_t roffset = static_cast<std::uint32_t>((std::uint64_t{o} + ihash) % size_);
      d = slots_[hash(key1, k.folded_address, k.port, roffset) % size_];
      if (d >= dests.size()) return no_dest;
      if (usable(dests[d])) return d;
    }
    return no_dest;
  }

  void counts_changed(std::span<const real_server>, dest_id) noexcept {}

  /// Slot -> list position (no_dest when empty), for tests and listings.
  [[nodiscard]] std::span<const dest_id> slots() const noexcept { return slots_; }
  [[nodiscard]] std::uint32_t table_size() const noexcept { return size_; }
  [[nodiscard]] ipvs::hash_flags flags() const noexcept { return flags_; }

 private:
  // ip_vs_mh.c is_unavailable(): weight <= 0 or OVERLOAD.
  static bool usable(const real_server& r) noexcept { return r.weight != 0 && !r.overloaded; }

  std::vector<dest_id> slots_;
  ipvs::hash_flags flags_;
  std::uint32_t size_;
  unsigned tab_bits_;
  build_error config_;
};

static_assert(scheduler<maglev_hashing>);

using mh = maglev_hashing;

}  // namespace l4lb::sched
