// fo: IPVS's weighted failover (net/netfilter/ipvs/ip_vs_fo.c): every new connection goes to the
// available server with the highest weight; the others are standbys.
#pragma once

#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// IPVS fo, exactly: among servers that are not overloaded, the highest weight; the kernel starts
/// from a best weight of 0 and replaces only on a strictly larger weight, so weight 0 is never
/// picked and the first of equally heavy servers wins. O(1) pick; counts_changed only matters
/// when the overload flag flips (O(log n) then, O(1) otherwise).
class weighted_failover : public detail::best_of_tree<available_weight_order> {
 public:
  static constexpr std::string_view name = "fo";
  static constexpr count_use uses_counts = count_use::availability;
};

static_assert(scheduler<weighted_failover>);

using fo = weighted_failover;

}  // namespace l4lb::sched
