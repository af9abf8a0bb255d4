// The director and the frames bench/director_bench.cpp measures, shared with the callgrind driver
// (bench/instructions/instructions.cpp) so that the instruction counts and the timings are of the
// same pipeline, the same configuration and the same packets.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "l4lb/conn/huge_page_resource.hpp"
#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "support/packet_builder.hpp"

namespace l4lb::bench {

using l4lb::test::bytes;
namespace tf = l4lb::wire::tcp_flags;

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::size_t burst = 32;
constexpr std::int64_t burst_i = 32;
constexpr std::size_t pool = 1u << 16;  // distinct frames cycled (4 MiB of 64-byte frames)
constexpr std::size_t frame_len = 64;   // Ethernet + IPv4 + TCP, padded
constexpr std::size_t headroom = 64;
constexpr std::size_t slot = 256;

inline const wire::mac_address director_mac = l4lb::test::mac("02:00:c6:12:00:01");
inline const wire::mac_address router_mac = l4lb::test::mac("02:00:c6:12:00:fe");

inline wire::ip_address ip(const char* s) { return *wire::ip_address::parse(s); }
inline wire::endpoint ep(const char* s) { return *wire::endpoint::parse(s); }

// Client i: 198.18.128.0/17 .. 198.19.x.x, ports 1024.. (distinct for i < 2^24).
inline std::string client_ip(std::uint32_t i) {
  const std::uint32_t a = 0xC612'8000u + (i >> 6);
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}
inline std::uint16_t client_port(std::uint32_t i) {
  return static_cast<std::uint16_t>(1024 + (i & 63) * 97);
}

// Client i over IPv6: fd00:c612::/64 + i (VIP fd00::100).
inline std::string client_ip6(std::uint32_t i) {
  char b[48];
  std::snprintf(b, sizeof b, "fd00:c612::%x:%x", (i >> 6) >> 16, (i >> 6) & 0xFFFF);
  return b;
}

inline bytes frame_for(std::uint32_t i, std::uint8_t flags, bool ipv6 = false) {
  l4lb::test::packet_builder b;
  b.eth(director_mac, router_mac);
  if (ipv6)
    b.ipv6(client_ip6(i), "fd00::100");
  else
    b.ipv4(client_ip(i), "198.18.0.100");
  bytes f = b.tcp(client_port(i), 80, flags).build();
  if (f.size() < frame_len) f.resize(frame_len);  // Ethernet minimum-size padding
  return f;
}

enum class method_kind { dr, nat, tun };

/// The benches' director identity: 198.18.0.1 with MAC `own`, gateway 198.18.0.254 at `gateway`.
inline void set_bench_identity(director::director_control& control, const wire::mac_address& own,
                               const wire::mac_address& gateway) {
  director::director_identity id;
  id.mac = own;
  id.addresses = {ip("198.18.0.1"), ip("fd00::1")};
  id.gateway_v4 = ip("198.18.0.254");
  id.gateway_v6 = ip("fd00::fe");
  control.set_identity(id);
  control.set_neighbour(ip("198.18.0.254"), gateway);
  control.set_neighbour(ip("fd00::fe"), gateway);
}

/// One director with one TCP service (`servers` real servers, scheduler `sched`) and `conns` flows
/// established through it (SYN then ACK), plus a pool of ACK frames of those flows to replay.
/// The IPv4 table holds `room_for` connections at load 0.8 (room_for 0: `conns`), or exactly
/// `capacity` when that is given. `ipv6`: the same over IPv6 (fd00::/8; the IPv6 table is sized
/// as the IPv4 one would be, and the IPv4 one is left small).
struct director_setup {
  director::director_control control;
  std::unique_ptr<director::director> d;
  std::vector<bytes> frames;  // pool of established-flow frames (ACKs)
  std::vector<std::byte> rx;  // receive buffers: burst slots
  std::vector<forward::frame_buffer> bufs;
  std::vector<director::verdict> out;
  std::int64_t now = sec;

  director_setup(method_kind m, std::uint32_t conns, const char* sched, bool huge,
                 std::uint32_t seed = 1, std::uint32_t room_for = 0, std::uint32_t capacity = 0,
                 bool nat_reply_index = true, bool ipv6 = false, std::uint32_t servers = 8) {
    using namespace l4lb::director;
    set_bench_identity(control, director_mac, router_mac);
    const auto svc = service_key::tcp(ep(ipv6 ? "[fd00::100]:80" : "198.18.0.100:80"));
    service_spec s;
    s.key = svc;
    s.scheduler = sched;
    (void)control.apply(add_service{s});
    for (std::uint32_t k = 0; k < servers; ++k) {
      // Eight servers at .10 .. .17 (fd00::10 ..); more from 198.18.2.1 on (fd00::1:1 ..).
      const std::string a = servers <= 8 ? (ipv6 ? "fd00::" : "198.18.0.") + std::to_string(10 + k)
                            : ipv6       ? "fd00::" + std::to_string(1 + k / 250) + ":" + std::to_string(1 + k % 250)
                                         : "198.18." + std::to_string(2 + k / 250) + "." + std::to_string(1 + k % 250);
      control.set_neighbour(ip(a.c_str()), director::neighbour_table::derived_mac(ip(a.c_str())));
      real_server_spec r;
      r.endpoint = {ip(a.c_str()), static_cast<std::uint16_t>(m == method_kind::nat ? 8080 : 80)};
      r.method = m == method_kind::dr    ? forward_method::route
                 : m == method_kind::nat ? forward_method::masq
                                         : forward_method::tunnel;
      (void)control.apply(add_dest{svc, r});
    }
    director_config cfg;
    const std::uint32_t room = room_for != 0 ? room_for : conns;
    const std::uint32_t cap = capacity != 0 ? capacity : std::max<std::uint32_t>(room + room / 4, 1024);
    cfg.conn_capacity_v4 = ipv6 ? 64 : cap;
    cfg.nat_reply_index = nat_reply_index;
    cfg.conn_capacity_v6 = ipv6 ? cap : 64;
    cfg.template_capacity = 0;
    cfg.seed = seed;
    static conn::huge_page_resource huge_pages;
    if (huge) cfg.memory = &huge_pages;
    d = std::make_unique<director::director>(control, cfg);
    rx.resize(burst * slot);
    bufs.resize(burst);
    out.resize(burst);
    // Establish the connections (SYN then ACK), through the director itself.
    for (std::uint32_t i = 0; i < conns; i += burst) {
      const std::uint32_t n = std::min<std::uint32_t>(burst, conns - i);
      for (std::uint8_t fl : {std::uint8_t{tf::syn}, std::uint8_t{tf::ack}}) {
        for (std::uint32_t j = 0; j < n; ++j) load(j, frame_for(i + j, fl, ipv6));
        d->process_burst(std::span(bufs).first(n), std::span(out).first(n), now);
      }
    }
    std::mt19937 rng(seed);
    const std::size_t k = std::min<std::size_t>(pool, conns);
    frames.reserve(k);
    for (std::size_t j = 0; j < k; ++j)
      frames.push_back(frame_for(conns <= pool ? static_cast<std::uint32_t>(j)
                                               : static_cast<std::uint32_t>(rng() % conns),
                                 tf::ack, ipv6));
  }
  void load(std::size_t j, const bytes& f) {
    std::byte* p = rx.data() + j * slot;
    std::memcpy(p + headroom, f.data(), f.size());
    bufs[j] = *forward::frame_buffer::make(std::span(p, slot), headroom, f.size());
  }
  /// Copies the next burst of the pool into the receive buffers (what a NIC does), from `at`.
  void load_burst(std::size_t& at) {
    for (std::size_t j = 0; j < burst; ++j) {
      load(j, frames[at]);
      at = (at + 1) % frames.size();
    }
  }
  /// Loads burst slot j with the SYN of new flow number `flow`: syns[flow % pool] (syn_pool())
  /// with its source port changed per round of the pool, so flows do not repeat.
  void load_new_flow(std::size_t j, const std::vector<bytes>& syns, std::uint32_t flow) {
    load(j, syns[flow % syns.size()]);
    std::byte* tcp = rx.data() + j * slot + headroom + 34;
    const auto round = static_cast<std::uint16_t>(flow / syns.size());
    tcp[0] ^= std::byte{static_cast<std::uint8_t>(round >> 8)};
    tcp[1] ^= std::byte{static_cast<std::uint8_t>(round)};
  }
  /// A NAT director's pool as the real servers answer it (server -> client, ACK), found by
  /// sending each pool frame through the director once and reading where it went. IPv4.
  [[nodiscard]] std::vector<bytes> nat_replies() {
    std::vector<bytes> replies;
    replies.reserve(frames.size());
    for (const bytes& f : frames) {
      load(0, f);
      const director::verdict v = d->process(bufs[0], now);
      if (v.kind != director::verdict_kind::forward || v.frame.size() < 14 + 20 + 20) return {};
      const auto* ip4 = reinterpret_cast<const std::uint8_t*>(v.frame.data() + 14);
      const auto addr = [&](int at) { return wire::ip_address::from_bytes(wire::ip_family::v4, ip4 + at).to_string(); };
      const auto port = [&](int at) { return static_cast<std::uint16_t>(ip4[20 + at] << 8 | ip4[20 + at + 1]); };
      bytes r = l4lb::test::packet_builder{}
                    .eth(director_mac, router_mac)
                    .ipv4(addr(16), addr(12))
                    .tcp(port(2), port(0), tf::ack)
                    .build();
      r.resize(std::max(r.size(), frame_len));
      replies.push_back(std::move(r));
    }
    return replies;
  }
  [[nodiscard]] std::size_t forwarded() const {
    return static_cast<std::size_t>(std::count_if(out.begin(), out.end(), [](const auto& v) {
      return v.kind == director::verdict_kind::forward;
    }));
  }
  [[nodiscard]] double bytes_per_conn(std::uint32_t conns) const {
    return static_cast<double>(d->memory().connections()) / conns;
  }
};

/// The SYNs new-connection runs cycle through (flows 0 .. pool-1; load_new_flow varies them).
inline std::vector<bytes> syn_pool() {
  std::vector<bytes> syns;
  syns.reserve(pool);
  for (std::uint32_t j = 0; j < pool; ++j) syns.push_back(frame_for(j, tf::syn));
  return syns;
}

}  // namespace l4lb::bench
