// lc: IPVS's least connection (net/netfilter/ipvs/ip_vs_lc.c): the server with the fewest
// connections, counting an active one as 256 inactive ones; weight only excludes (0 = quiesced).
#pragma once

#include <cstdint>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// lc's ordering: servers that are overloaded or have weight 0 are skipped; among the rest the
/// smallest overhead (256 * active + inactive) wins, the first in list order on ties (the kernel
/// replaces only on `doh < loh`).
struct least_connection_order : stateless_order {
  [[nodiscard]] static constexpr std::uint64_t rank(const real_server& r, const params&) noexcept {
    return r.accepts_new_connections() ? r.overhead() : not_eligible;
  }
  [[nodiscard]] static constexpr bool better(const real_server& a, const real_server& b) noexcept {
    return a.overhead() < b.overhead();
  }
};

/// IPVS lc, exactly, in O(1) per pick and O(log n) per counts_changed (the kernel scans the
/// list on every pick). Call counts_changed whenever a server's counters or overload flag change.
class least_connection : public detail::best_of_tree<least_connection_order> {
 public:
  static constexpr std::string_view name = "lc";
};

static_assert(scheduler<least_connection>);

using lc = least_connection;

}  // namespace l4lb::sched
