// sh: IPVS's source hashing scheduler (net/netfilter/ipvs/ip_vs_sh.c). A 256-bucket table maps
// the hash of the client address (and, with sh-port, its port) to a real server, each server
// holding `weight` consecutive buckets per round; sh-fallback looks further when that is refused.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/ipvs_hash.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"

namespace l4lb::sched {

/// IPVS sh, exactly (modern kernels, hash_32 with GOLDEN_RATIO_32):
/// - table: 2^table_bits buckets (CONFIG_IP_VS_SH_TAB_BITS, default 8) filled in list order, a
///   server taking `weight` buckets in a row (a weight-0 server still takes one), round after
///   round until the table is full; rebuilt on init, add, delete and edit (ip_vs_sh_reassign);
/// - key(offset) = (offset + hash_32(port + fold(addr), bits)) mod 2^bits, where addr is the
///   client (the destination for an inverse/ICMP-quoted header) and port is 0 unless sh-port;
/// - pick: bucket key(0); refused when its server has weight 0 or is overloaded;
/// - sh-fallback: when refused, try bucket key(r) for r = (o + key(0)) mod 2^bits, o = 0, 1, ...
///   (i.e. buckets 2*key(0) + o): the first usable server wins; an empty bucket ends the search.
class source_hashing {
 public:
  static constexpr std::string_view name = "sh";
  static constexpr count_use uses_counts = count_use::none;
  static constexpr unsigned default_table_bits = 8;

  /// Named options (any_scheduler): table-bits, the constructor's `table_bits`.
  static constexpr std::array<std::string_view, 1> option_names{"table-bits"};
  [[nodiscard]] static unsigned read_options(option_reader& r) {
    return r.number("table-bits", default_table_bits);
  }

  /// `table_bits` in 1..20 (Kconfig range of CONFIG_IP_VS_SH_TAB_BITS).
  explicit source_hashing(ipvs::hash_flags flags = {}, unsigned table_bits = default_table_bits)
      : flags_(flags),
        bits_(table_bits),
        config_(table_bits >= 1 && table_bits <= 20 ? build_error::ok : build_error::bad_option) {
    if (config_ == build_error::ok) buckets_.assign(std::size_t{1} << bits_, no_dest);
  }

  /// Control plane (ip_vs_sh_reassign): the same fill for every kind of change.
  build_error rebuild(std::span<const real_server> dests, dest_change) {
    if (config_ != build_error::ok) return config_;
    if (dests.empty()) {
      std::fill(buckets_.begin(), buckets_.end(), no_dest);
      return build_error::ok;
    }
    std::size_t cur = 0;
    std::uint64_t taken = 0;  // buckets given to `cur` in this round
    for (dest_id& b : buckets_) {
      b = static_cast<dest_id>(cur);
      if (++taken >= dests[cur].weight) {  // weight 0: one bucket, like the kernel's ++d >= 0
        cur = cur + 1 == dests.size() ? 0 : cur + 1;
        taken = 0;
      }
    }
    return build_error::ok;
  }

  /// Data plane (ip_vs_sh_schedule). With sh-fallback the search may visit every bucket.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) const noexcept {
    if (buckets_.empty()) return no_dest;
    const ipvs::client_key k = ipvs::client_key_of(ctx.flow, ctx.inverse, flags_.port);
    const std::uint32_t mask = static_cast<std::uint32_t>(buckets_.size() - 1);
    const std::uint32_t h = ipvs::hash_32(k.port + k.folded_address, bits_);
    const std::uint32_t ihash = h & mask;  // key(0)
    dest_id d = buckets_[ihash];
    if (d >= dests.size()) return no_dest;
    if (usable(dests[d])) return d;
    if (!flags_.fallback) return no_dest;
    for (std::uint32_t o = 0; o <= mask; ++o) {
      const std::uint32_t roffset = (o + ihash) & mask;
      d = buckets_[(roffset + h) & mask];
      if (d >= dests.size()) return no_dest;
      if (usable(dests[d])) return d;
    }
    return no_dest;
  }

  void counts_changed(std::span<const real_server>, dest_id) noexcept {}

  [[nodiscard]] std::span<const dest_id> buckets() const noexcept { return buckets_; }
  [[nodiscard]] ipvs::hash_flags flags() const noexcept { return flags_; }
  [[nodiscard]] unsigned table_bits() const noexcept { return bits_; }

 private:
  // ip_vs_sh.c is_unavailable(): weight <= 0 or OVERLOAD (the AVAILABLE flag is not consulted).
  static bool usable(const real_server& r) noexcept { return r.weight != 0 && !r.overloaded; }

  std::vector<dest_id> buckets_;
  ipvs::hash_flags flags_;
  unsigned bits_;
  build_error config_;
};

static_assert(scheduler<source_hashing>);

using sh = source_hashing;

}  // namespace l4lb::sched
