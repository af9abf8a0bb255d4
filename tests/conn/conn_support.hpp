// Helpers shared by the conn tests: addresses and keys for either family, time constants.
#pragma once

#include <cstdint>
#include <vector>

#include "l4lb/conn/conn_table.hpp"
#include "l4lb/wire/address.hpp"

namespace conn_test {

using namespace l4lb::conn;
using l4lb::wire::ipv4_address;
using l4lb::wire::ipv6_address;

inline constexpr std::int64_t sec = 1'000'000'000;
inline constexpr std::uint8_t tcp = l4lb::wire::ip_proto::tcp;
inline constexpr std::uint8_t udp = l4lb::wire::ip_proto::udp;

/// Address number n of a family, inside the test ranges (198.18.0.0/15, fd00::/8). Roles keep
/// clients, virtual addresses and servers apart: role 0x0A clients, 0xC6 virtual, 0xC0 servers.
/// IPv4: clients 198.18.(n>>8).(n&255) (n < 0x8000), virtual 198.19.(n>>8).(n&255), servers
/// 198.18.(128 + (n>>8)).(n&255); so n's low byte is the last octet (/24 grouping stays readable).
/// IPv6: fd<role>::n.
template <class Addr>
Addr addr(std::uint8_t role, std::uint32_t n) {
  Addr a{};
  if constexpr (Addr::size == 4) {
    a.bytes[0] = 198;
    a.bytes[1] = role == 0xC6 ? 19 : 18;
    a.bytes[2] = static_cast<std::uint8_t>(((n >> 8) & 0x7F) | (role == 0xC0 ? 0x80 : 0));
    a.bytes[3] = static_cast<std::uint8_t>(n);
  } else {
    a.bytes[0] = 0xfd;
    a.bytes[1] = role;
    a.bytes[Addr::size - 3] = static_cast<std::uint8_t>(n >> 16);
    a.bytes[Addr::size - 2] = static_cast<std::uint8_t>(n >> 8);
    a.bytes[Addr::size - 1] = static_cast<std::uint8_t>(n);
  }
  return a;
}

template <class Addr>
conn_key<Addr> key(std::uint32_t client, std::uint16_t cport, std::uint32_t vip = 100,
                   std::uint16_t vport = 80, std::uint8_t proto = tcp) {
  return {addr<Addr>(0x0A, client), addr<Addr>(0xC6, vip), cport, vport, proto};
}

template <class Table>
Table make_table(std::uint32_t capacity, std::uint32_t templates = 0, std::uint32_t dests = 16) {
  conn_table_config cfg;
  cfg.capacity = capacity;
  cfg.template_capacity = templates;
  cfg.max_dests = dests;
  cfg.seed = 0x1234;
  Table t(cfg);
  for (std::uint32_t d = 0; d < dests; ++d)
    (void)t.set_dest(d, addr<typename Table::address_type>(0xC0, d + 1),
                     static_cast<std::uint16_t>(8000 + d));
  return t;
}

/// Records every count event.
struct event_log {
  std::vector<count_event> events;
  static void notify(void* self, const count_event& e) noexcept {
    static_cast<event_log*>(self)->events.push_back(e);
  }
  count_observer observer() { return {&event_log::notify, this}; }
};

}  // namespace conn_test
