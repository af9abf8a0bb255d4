// Small builders shared by the hashing-policy tests (dh, sh, mh, lblc, lblcr, ring, wmh):
// real servers from text, IPVS list order, flows and pick contexts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

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

}  // namespace l4lb::sched::fixtures
