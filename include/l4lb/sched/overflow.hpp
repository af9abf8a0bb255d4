// ovf: IPVS's overflow-connection scheduler (net/netfilter/ipvs/ip_vs_ovf.c): fill the heaviest
// server up to its weight in active connections, then overflow to the next heaviest.
#pragma once

#include <cstdint>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// ovf's ordering: a server is skipped when overloaded, when its weight is 0, or when its active
/// connections exceed its weight (so it takes weight + 1 before overflowing: eligibility is
/// active <= weight); among the rest the highest weight wins, the first on ties. Inactive
/// connections are not counted (IPVS documents ovf as unsuited to UDP for that reason).
struct overflow_order : stateless_order {
  [[nodiscard]] static constexpr std::uint64_t rank(const real_server& r, const params&) noexcept {
    return r.accepts_new_connections() && r.active_conns <= r.weight
               ? available_weight_order::rank_of_weight(r.weight)
               : not_eligible;
  }
  [[nodiscard]] static constexpr bool better(const real_server& a, const real_server& b) noexcept {
    return a.weight > b.weight;
  }
};

/// IPVS ovf, exactly, in O(1) per pick and O(log n) per counts_changed.
class overflow : public detail::best_of_tree<overflow_order> {
 public:
  static constexpr std::string_view name = "ovf";
};

static_assert(scheduler<overflow>);

using ovf = overflow;

}  // namespace l4lb::sched
