// nq: IPVS's never queue (net/netfilter/ipvs/ip_vs_nq.c): an idle server if there is one,
// otherwise sed's shortest expected delay.
#pragma once

#include <cstdint>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// nq's ordering. The kernel scans servers that are not overloaded and have weight > 0; the
/// first one with no active connection is returned at once; otherwise the smallest
/// (active + 1) / weight wins, the first on ties (strict cross-multiplied comparison). As an
/// ordering: every idle server ranks 0 (all idle servers tie, so the first idle one in list
/// order wins) and below every busy one.
struct never_queue_order {
  using params = ratio_rank::params;
  static params prepare(std::span<const real_server> dests) noexcept {
    return ratio_rank::for_weights(dests);
  }
  [[nodiscard]] static std::uint64_t rank(const real_server& r, const params& p) noexcept {
    if (!r.accepts_new_connections()) return not_eligible;
    if (r.active_conns == 0) return 0;  // busy ranks are >= 2 * 2^S / W > 0
    return ratio_rank::of(std::uint64_t{r.active_conns} + 1, r.weight, p);
  }
  [[nodiscard]] static bool better(const real_server& a, const real_server& b) noexcept {
    if (a.active_conns == 0 || b.active_conns == 0) {
      return a.active_conns == 0 && b.active_conns != 0;
    }
    return detail::product_less(std::uint64_t{a.active_conns} + 1, b.weight,
                                std::uint64_t{b.active_conns} + 1, a.weight);
  }
};

/// IPVS nq, exactly, in O(1) per pick and O(log n) per counts_changed (ranks as in wlc).
class never_queue : public detail::best_of_tree<never_queue_order> {
 public:
  static constexpr std::string_view name = "nq";
};

static_assert(scheduler<never_queue>);

using nq = never_queue;

}  // namespace l4lb::sched
