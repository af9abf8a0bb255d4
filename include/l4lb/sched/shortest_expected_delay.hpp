// sed: IPVS's shortest expected delay (net/netfilter/ipvs/ip_vs_sed.c): the server with the
// smallest (active + 1) / weight -- the delay a new connection would see; inactive ones ignored.
#pragma once

#include <cstdint>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// sed's ordering: wlc's scan shape (seed = first non-overloaded server with weight > 0; a later
/// one replaces it only on a strictly smaller cross-multiplied ratio; weight 0 can never win)
/// with overhead = active + 1. Equivalent to: the smallest (active + 1) / weight among servers
/// with weight > 0 that are not overloaded, the first in list order on ties.
struct shortest_expected_delay_order {
  using params = ratio_rank::params;
  static params prepare(std::span<const real_server> dests) noexcept {
    return ratio_rank::for_weights(dests);
  }
  [[nodiscard]] static std::uint64_t rank(const real_server& r, const params& p) noexcept {
    return r.accepts_new_connections()
               ? ratio_rank::of(std::uint64_t{r.active_conns} + 1, r.weight, p)
               : not_eligible;
  }
  /// (active(a) + 1) / w(a) < (active(b) + 1) / w(b), exactly.
  [[nodiscard]] static bool better(const real_server& a, const real_server& b) noexcept {
    return detail::product_less(std::uint64_t{a.active_conns} + 1, b.weight,
                                std::uint64_t{b.active_conns} + 1, a.weight);
  }
};

/// IPVS sed, exactly, in O(1) per pick and O(log n) per counts_changed (ranks as in wlc).
class shortest_expected_delay : public detail::best_of_tree<shortest_expected_delay_order> {
 public:
  static constexpr std::string_view name = "sed";
};

static_assert(scheduler<shortest_expected_delay>);

using sed = shortest_expected_delay;

}  // namespace l4lb::sched
