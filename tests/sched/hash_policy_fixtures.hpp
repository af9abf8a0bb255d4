// Small builders shared by the hashing-policy tests (dh, sh, mh, lblc, lblcr, ring, wmh):
// real servers from text, IPVS list order, flows and pick contexts; and two checks the
// consistent tables (ring, wmh) share: the no-server cases and disruption on removal.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::sched::fixtures {

inline wire::endpoint ep(std::string_view text) {
  auto e = wire::endpoint::parse(text);
  REQUIRE_MESSAGE(e.has_value(), "bad endpoint in a test: ", std::string(text));
  return *e;
}

inline wire::ip_address addr(std::string_view text) {
  auto a = wire::ip_address::parse(text);
  REQUIRE_MESSAGE(a.has_value(), "bad address in a test: ", std::string(text));
  return *a;
}

/// A real server as `ipvsadm -a ... -w weight` leaves it (last_weight = weight on add).
inline real_server server(std::string_view endpoint, std::uint32_t weight, std::uint32_t handle) {
  real_server r;
  r.endpoint = ep(endpoint);
  r.weight = weight;
  r.last_weight = weight;
  r.handle = handle;
  return r;
}

/// IPVS's list for servers added in the given order: the most recently added first
/// (ipvs-notes 1.1, __ip_vs_update_dest inserts at the head).
inline std::vector<real_server> ipvs_list_after_adding(std::vector<real_server> added) {
  std::reverse(added.begin(), added.end());
  return added;
}

/// `ipvsadm -e -w weight`: last_weight follows only non-zero weights.
inline void edit_weight(real_server& r, std::uint32_t weight) {
  const std::uint32_t before = r.table_weight();
  r.set_weight(weight);
  // The rule written out independently of set_weight: last_weight follows non-zero weights only.
  CHECK(r.table_weight() == (weight != 0 ? weight : before));
}

inline wire::flow_key flow(std::uint8_t protocol, std::string_view src, std::string_view dst) {
  return {protocol, ep(src), ep(dst)};
}
inline wire::flow_key tcp(std::string_view src, std::string_view dst) {
  return flow(wire::ip_proto::tcp, src, dst);
}

/// The n-th of a family of distinct IPv4 client flows (198.18.0.0/15 space, varied ports).
inline wire::flow_key nth_client(std::uint32_t n, std::string_view vip = "198.18.0.100:80") {
  const auto src = wire::ipv4_address::from_u32(0xC6120000u + (n >> 4));
  return {wire::ip_proto::tcp, {src, static_cast<std::uint16_t>(1024 + (n & 15) * 3001)},
          ep(vip)};
}

/// The n-th of a family of distinct IPv4 client addresses (port 0 flows).
inline wire::flow_key nth_client_address(std::uint32_t n) {
  return {wire::ip_proto::tcp, {wire::ipv4_address::from_u32(0xC6120000u + n), 40000},
          ep("198.18.0.100:80")};
}

/// What count_disruption asserts for every flow, besides counting.
enum class per_flow_checks : std::uint8_t {
  none,
  /// REQUIRE both picks != no_dest; CHECK that a flow of the removed server lands elsewhere.
  picks_valid,
};

/// Flows that change server when one server is removed.
struct disruption {
  std::uint32_t on_removed = 0;  // flows whose server was the removed one (they must move)
  std::uint32_t moved = 0;       // flows of the other servers whose server changed anyway
};

/// Picks nth_client(0..flows-1) with `before` (built for `dests`) and `after` (built for `rest`,
/// which is `dests` without dests[removed]) and counts what moved; servers are compared by
/// endpoint since list positions shift on removal.
template <class Scheduler>
disruption count_disruption(const Scheduler& before, const std::vector<real_server>& dests,
                            const Scheduler& after, const std::vector<real_server>& rest,
                            dest_id removed, std::uint32_t flows,
                            per_flow_checks checks = per_flow_checks::none) {
  disruption out;
  for (std::uint32_t k = 0; k < flows; ++k) {
    const auto f = nth_client(k);
    const dest_id b = before.pick(dests, {f});
    const dest_id a = after.pick(rest, {f});
    if (checks == per_flow_checks::picks_valid) {
      REQUIRE(b != no_dest);
      REQUIRE(a != no_dest);
    }
    if (b == removed) {
      ++out.on_removed;
      if (checks == per_flow_checks::picks_valid)
        CHECK(rest[a].endpoint != dests[removed].endpoint);
    } else if (dests[b].endpoint != rest[a].endpoint) {
      ++out.moved;
    }
  }
  return out;
}

/// The scheduler contract's no-server cases (scheduler.hpp) for a table-building policy: an
/// empty list answers no_dest; then, built for `servers` (several, all usable), all overloaded
/// and all quiesced answer no_dest and a list cut to 2 answers a position inside it, never a
/// crash. `more_subcases(sched, servers)` runs between the SUBCASEs for the policy's own cases;
/// `servers` is left as the subcase that ran made it, for checks after the call.
template <class Scheduler, class MoreSubcases>
void check_no_dest_without_usable_servers(Scheduler& sched, std::vector<real_server>& servers,
                                          MoreSubcases&& more_subcases) {
  std::vector<real_server> none;
  REQUIRE(sched.rebuild(none, {}) == build_error::ok);
  CHECK(sched.pick(none, {nth_client(1)}) == no_dest);
  REQUIRE(sched.rebuild(servers, {}) == build_error::ok);
  SUBCASE("all overloaded") {
    for (auto& r : servers) r.overloaded = true;
    for (std::uint32_t k = 0; k < 100; ++k) CHECK(sched.pick(servers, {nth_client(k)}) == no_dest);
  }
  SUBCASE("all quiesced") {
    for (auto& r : servers) edit_weight(r, 0);
    REQUIRE(sched.rebuild(servers, {dest_change::kind::edited, 0}) == build_error::ok);
    for (std::uint32_t k = 0; k < 100; ++k) CHECK(sched.pick(servers, {nth_client(k)}) == no_dest);
  }
  more_subcases(sched, servers);
  SUBCASE("list shorter than the one the policy was built for") {
    servers.resize(2);
    for (std::uint32_t k = 0; k < 100; ++k) CHECK(sched.pick(servers, {nth_client(k)}) < 2);
  }
}

}  // namespace l4lb::sched::fixtures
