// dh: IPVS's destination hashing scheduler (net/netfilter/ipvs/ip_vs_dh.c). A 256-bucket table
// maps the hash of a packet's destination address to a real server; meant for cache clusters
// where the same origin address should always reach the same cache.
#pragma once

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

/// IPVS dh, exactly:
/// - table: 2^table_bits buckets (CONFIG_IP_VS_DH_TAB_BITS, default 8); bucket i holds the
///   server at list position i mod n (each server once per round; weight plays no part);
/// - pick: bucket hash_32(fold(daddr), table_bits); its server is refused (no_dest) when it is
///   not available (removed), has weight 0 or is overloaded. No fallback, no port option;
/// - rebuilt on init, add and delete only. IPVS has no update hook for dh, so an edit changes
///   nothing here (the table depends only on the list, which an edit does not reorder).
class destination_hashing {
 public:
  static constexpr std::string_view name = "dh";
  static constexpr count_use uses_counts = count_use::none;
  static constexpr unsigned default_table_bits = 8;

  /// Named options (any_scheduler): table-bits, the constructor's `table_bits`.
  static constexpr std::array<std::string_view, 1> option_names{"table-bits"};
  [[nodiscard]] static unsigned read_options(option_reader& r) {
    return r.number("table-bits", default_table_bits);
  }

  /// `table_bits` in 1..20 (the kernel's Kconfig range for CONFIG_IP_VS_DH_TAB_BITS).
  explicit destination_hashing(unsigned table_bits = default_table_bits)
      : bits_(table_bits),
        config_(table_bits >= 1 && table_bits <= 20 ? build_error::ok : build_error::bad_option) {
    if (config_ == build_error::ok) buckets_.assign(std::size_t{1} << bits_, no_dest);
  }

  /// Control plane (ip_vs_dh_reassign).
  build_error rebuild(std::span<const real_server> dests, dest_change change) {
    if (config_ != build_error::ok) return config_;
    if (change.what == dest_change::kind::edited) return build_error::ok;  // no upd_dest hook
    const std::size_t n = dests.size();
    for (std::size_t i = 0; i < buckets_.size(); ++i)
      buckets_[i] = n == 0 ? no_dest : static_cast<dest_id>(i % n);
    return build_error::ok;
  }

  /// Data plane (ip_vs_dh_schedule).
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) const noexcept {
    if (buckets_.empty()) return no_dest;
    const std::uint32_t folded = ipvs::fold_address(ctx.flow.family, ctx.flow.dst_addr.data());
    const dest_id d = buckets_[ipvs::hash_32(folded, bits_)];
    if (d >= dests.size()) return no_dest;  // empty bucket, or a list changed without rebuild
    const real_server& r = dests[d];
    if (!r.available || r.weight == 0 || r.overloaded) return no_dest;
    return d;
  }

  void counts_changed(std::span<const real_server>, dest_id) noexcept {}

  /// Bucket -> list position (no_dest when the list was empty), for tests and listings.
  [[nodiscard]] std::span<const dest_id> buckets() const noexcept { return buckets_; }
  [[nodiscard]] unsigned table_bits() const noexcept { return bits_; }

 private:
  std::vector<dest_id> buckets_;
  unsigned bits_;
  build_error config_;
};

static_assert(scheduler<destination_hashing>);

using dh = destination_hashing;

}  // namespace l4lb::sched
