// Test support for the director: the LVS tutorial's lab as a fixture (VIP 198.18.0.100, real
// servers 198.18.0.12 and .13, the director at 198.18.0.1) and frames in buffers with headroom.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "support/packet_builder.hpp"

namespace director_test {

using namespace l4lb;
using namespace l4lb::director;
using l4lb::test::bytes;
using l4lb::test::mac;
using l4lb::test::packet_builder;
namespace tf = l4lb::wire::tcp_flags;

inline constexpr std::int64_t sec = 1'000'000'000;
inline const wire::mac_address director_mac = mac("02:00:c6:12:00:01");
inline const wire::mac_address client_router_mac = mac("02:00:c6:12:00:fe");

inline wire::endpoint ep(std::string_view s) { return *wire::endpoint::parse(s); }
inline wire::ip_address ip(std::string_view s) { return *wire::ip_address::parse(s); }
/// The MAC the lab gives a host: 02:00 + its IPv4 address (or the last 4 bytes of IPv6).
inline wire::mac_address mac_of(const wire::ip_address& a) { return neighbour_table::derived_mac(a); }

/// A frame in its own buffer with headroom (for encapsulation) and tailroom.
struct frame {
  static constexpr std::size_t headroom = 128;
  bytes storage;
  forward::frame_buffer buf;
  explicit frame(const bytes& f) : storage(headroom + f.size() + 256) {
    std::copy(f.begin(), f.end(), storage.begin() + headroom);
    buf = *forward::frame_buffer::make(storage, headroom, f.size());
  }
  frame(const frame&) = delete;
};

/// The tutorial's virtual service, 198.18.0.100:80/TCP.
inline const service_key vip80 = service_key::tcp(ep("198.18.0.100:80"));

inline service_spec service(service_key key, std::string sched = "rr") {
  service_spec s;
  s.key = key;
  s.scheduler = std::move(sched);
  return s;
}
inline real_server_spec server(std::string_view e, forward_method m = forward_method::route,
                               std::uint32_t weight = 1) {
  real_server_spec r;
  r.endpoint = ep(e);
  r.method = m;
  r.weight = weight;
  return r;
}

/// The tutorial's lab: control plane + one director, neighbours for every 198.18.0.x/1.x host
/// the tests use.
struct lab {
  director_control control;
  std::unique_ptr<class director> d;

  explicit lab(director_config cfg = small()) {
    director_identity id;
    id.mac = director_mac;
    id.addresses = {ip("198.18.0.1"), ip("fd00:198:18::1")};
    id.gateway_v4 = ip("198.18.0.254");
    id.gateway_v6 = ip("fd00:198:18::fe");
    control.set_identity(id);
    for (const char* h : {"198.18.0.11", "198.18.0.12", "198.18.0.13", "fd00:198:18::12",
                          "fd00:198:18::13"})
      control.set_neighbour(ip(h), mac_of(ip(h)));
    control.set_neighbour(ip("198.18.0.254"), client_router_mac);
    control.set_neighbour(ip("fd00:198:18::fe"), client_router_mac);
    d = std::make_unique<class director>(control, cfg);
  }
  static director_config small() {
    director_config c;
    c.conn_capacity_v4 = 4096;
    c.conn_capacity_v6 = 1024;
    c.template_capacity = 256;
    return c;
  }

  void must(const command& c) {
    const config_error e = control.apply(c);
    if (e != config_error::ok) throw std::runtime_error("command refused: " + std::string(to_string(e)));
  }
  /// The tutorial: -A -t 198.18.0.100:80 -s rr; -a .12 -g; -a .13 -g.
  void tutorial(forward_method m = forward_method::route) {
    must(add_service{service(service_key::tcp(ep("198.18.0.100:80")), "rr")});
    must(add_dest{service_key::tcp(ep("198.18.0.100:80")), server("198.18.0.12:80", m)});
    must(add_dest{service_key::tcp(ep("198.18.0.100:80")), server("198.18.0.13:80", m)});
  }
  verdict send(const bytes& f, std::int64_t now, std::uint32_t mark = 0) {
    last = std::make_unique<frame>(f);
    return d->process(last->buf, now, mark);
  }
  std::unique_ptr<frame> last;
};

inline bytes tcp4(std::string_view src, std::uint16_t sport, std::string_view dst,
                  std::uint16_t dport, std::uint8_t flags, std::string_view payload = {}) {
  return packet_builder{}
      .eth(director_mac, client_router_mac)
      .ipv4(src, dst)
      .tcp(sport, dport, flags)
      .payload(payload)
      .build();
}
inline bytes udp4(std::string_view src, std::uint16_t sport, std::string_view dst,
                  std::uint16_t dport, std::string_view payload = "q") {
  return packet_builder{}.eth(director_mac, client_router_mac).ipv4(src, dst).udp(sport, dport).payload(payload).build();
}

/// The IPv4 destination address of a forwarded Ethernet frame (no VLAN).
inline std::string ipv4_dst(std::span<const std::byte> f) {
  return wire::ip_address(wire::ipv4_address{{std::to_integer<std::uint8_t>(f[30]), std::to_integer<std::uint8_t>(f[31]),
                                              std::to_integer<std::uint8_t>(f[32]), std::to_integer<std::uint8_t>(f[33])}})
      .to_string();
}
inline wire::mac_address eth_dst(std::span<const std::byte> f) {
  wire::mac_address m;
  for (std::size_t i = 0; i < 6; ++i) m.bytes[i] = std::to_integer<std::uint8_t>(f[i]);
  return m;
}

/// Independent check (RFC 1071 sums from the test support, not l4lb's): the IPv4 header
/// checksum and the TCP/UDP checksum over the pseudo-header of an untagged Ethernet frame.
inline bool checksums_ok(std::span<const std::byte> f) {
  using l4lb::test::ones_sum;
  const auto u8 = [&](std::size_t i) { return std::to_integer<std::uint32_t>(f[i]); };
  const bool v4 = u8(12) == 0x08 && u8(13) == 0x00;
  std::size_t l3 = 14, l4, l4_len;
  std::uint32_t pseudo = 0;
  std::uint8_t proto;
  if (v4) {
    const std::size_t ihl = (u8(l3) & 0xF) * 4;
    if (l4lb::test::inet_checksum(f.subspan(l3, ihl)) != 0) return false;
    const std::size_t total = u8(l3 + 2) * 256 + u8(l3 + 3);
    proto = static_cast<std::uint8_t>(u8(l3 + 9));
    l4 = l3 + ihl;
    l4_len = total - ihl;
    pseudo = ones_sum(f.subspan(l3 + 12, 8));
  } else {
    proto = static_cast<std::uint8_t>(u8(l3 + 6));
    l4 = l3 + 40;
    l4_len = u8(l3 + 4) * 256 + u8(l3 + 5);
    pseudo = ones_sum(f.subspan(l3 + 8, 32));
  }
  if (proto != 6 && proto != 17) return true;
  pseudo += proto + static_cast<std::uint32_t>(l4_len);
  return l4lb::test::inet_checksum(f.subspan(l4, l4_len), pseudo) == 0;
}

}  // namespace director_test
