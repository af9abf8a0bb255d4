// wlc: IPVS's weighted least connection (net/netfilter/ipvs/ip_vs_wlc.c), ipvsadm's default:
// the server with the smallest overhead / weight, overhead = 256 * active + inactive.
#pragma once

#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// wlc's ordering. The kernel seeds with the first server that is not overloaded and has
/// weight > 0, then lets a later non-overloaded server d replace the current `least` only when
/// overhead(least) * w(d) > overhead(d) * w(least). A weight-0 server can never satisfy that, so
/// the result is exactly: among servers with weight > 0 that are not overloaded, the smallest
/// overhead / weight as an exact fraction, the first in list order on ties.
struct weighted_least_connection_order {
  using params = ratio_rank::params;
  static params prepare(std::span<const real_server> dests) noexcept {
    return ratio_rank::for_weights(dests);
  }
  [[nodiscard]] static std::uint64_t rank(const real_server& r, const params& p) noexcept {
    return r.accepts_new_connections() ? ratio_rank::of(r.overhead(), r.weight, p) : not_eligible;
  }
  /// overhead(a) / w(a) < overhead(b) / w(b), exactly.
  [[nodiscard]] static bool better(const real_server& a, const real_server& b) noexcept {
    return detail::product_less(a.overhead(), b.weight, b.overhead(), a.weight);
  }
};

/// IPVS wlc, exactly, in O(1) per pick and O(log n) per counts_changed (one division to rank the
/// changed server, then one min per tree level). Ranks are exact fractions (ratio_rank); only when
/// every eligible server's rank saturates (weights beyond 2^16 together with overheads beyond
/// ~2^31) does a pick fall back to the kernel's scan, with 128-bit cross products.
class weighted_least_connection : public detail::best_of_tree<weighted_least_connection_order> {
 public:
  static constexpr std::string_view name = "wlc";
};

static_assert(scheduler<weighted_least_connection>);

using wlc = weighted_least_connection;

}  // namespace l4lb::sched
