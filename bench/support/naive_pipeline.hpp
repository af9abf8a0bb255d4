// The naive pipeline the director is measured against (bench/director_bench.cpp's naive/<m>/N,
// and the callgrind driver's naive/<m>/established/1000): l4lb's parser; a std::unordered_map
// from the 5-tuple to the server, with a state and a deadline per flow; the rewrite with full
// checksum recomputation (the IPv4 header; TCP for NAT). No IPVS state machine, counters, timers,
// martian or land checks, and no verdicts: what a first attempt at a load balancer does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/parse.hpp"
#include "director_setup.hpp"

namespace l4lb::bench {

struct five_tuple {
  std::uint32_t src, dst;
  std::uint16_t sport, dport;
  std::uint8_t proto;
  bool operator==(const five_tuple&) const = default;
};
struct five_tuple_hash {
  std::size_t operator()(const five_tuple& k) const noexcept {
    return std::hash<std::uint64_t>{}((std::uint64_t{k.src} << 32) ^ k.dst) ^
           std::hash<std::uint32_t>{}((std::uint32_t{k.sport} << 16 | k.dport) ^ k.proto);
  }
};
struct naive_value {
  std::uint32_t server;
  std::uint16_t port;
  std::uint8_t state;
  std::int64_t deadline;
};

inline five_tuple naive_key(const wire::packet_view& p) {
  const auto& k = p.key();
  std::uint32_t s, d;
  std::memcpy(&s, k.src_addr.data(), 4);
  std::memcpy(&d, k.dst_addr.data(), 4);
  return five_tuple{s, d, k.src_port, k.dst_port, k.protocol};
}

/// The map of every connection, and the frames replayed (the same flows as the director's pool).
struct naive_fixture {
  std::uint32_t conns = 0;
  std::unordered_map<five_tuple, naive_value, five_tuple_hash> map;
  std::vector<bytes> frames;

  explicit naive_fixture(std::uint32_t n) : conns(n) {
    map.reserve(conns);
    for (std::uint32_t i = 0; i < conns; ++i) {
      bytes f = frame_for(i, tf::ack);
      auto p = wire::parse(std::span(f));
      map[naive_key(*p)] = {0xC612000Au + (i & 7), 8080, 1, 0};
    }
    std::mt19937 rng(1);
    const std::size_t k = std::min<std::size_t>(pool, conns);
    for (std::size_t j = 0; j < k; ++j)
      frames.push_back(frame_for(conns <= pool ? static_cast<std::uint32_t>(j) : static_cast<std::uint32_t>(rng() % conns), tf::ack));
  }

  /// One burst of `burst` frames at rx + j * slot + headroom, rewritten in place for method m.
  /// Returns the frames forwarded.
  std::uint64_t process_burst(std::byte* rx, method_kind m, std::int64_t now) {
    std::uint64_t forwarded = 0;
    for (std::size_t j = 0; j < burst; ++j) {
      std::byte* f = rx + j * slot + headroom;
      auto p = wire::parse(std::span(f, frame_len), {true, true});
      if (!p) continue;
      auto it = map.find(naive_key(*p));
      if (it == map.end()) continue;
      it->second.deadline = now + 900 * sec;
      it->second.state = (p->tcp_flags() & tf::fin) ? 4 : 1;
      auto l3 = p->l3();
      if (m == method_kind::dr || m == method_kind::tun) {
        std::memcpy(f, "\x02\x00\xc6\x12\x00\x0a", 6);
        std::memcpy(f + 6, director_mac.bytes.data(), 6);
      }
      l3[8] = std::byte{static_cast<std::uint8_t>(std::to_integer<std::uint8_t>(l3[8]) - 1)};
      if (m == method_kind::nat) {
        std::memcpy(l3.data() + 16, &it->second.server, 4);
        auto l4 = p->l4();
        l4[2] = std::byte{static_cast<std::uint8_t>(it->second.port >> 8)};
        l4[3] = std::byte{static_cast<std::uint8_t>(it->second.port)};
        l4[16] = l4[17] = std::byte{0};
        wire::ipv4_address src, dst;
        std::memcpy(src.bytes.data(), l3.data() + 12, 4);
        std::memcpy(dst.bytes.data(), l3.data() + 16, 4);
        const std::uint16_t c = wire::l4_checksum_v4(src, dst, 6, l4);
        l4[16] = std::byte{static_cast<std::uint8_t>(c >> 8)};
        l4[17] = std::byte{static_cast<std::uint8_t>(c)};
      }
      l3[10] = l3[11] = std::byte{0};
      const std::uint16_t c = wire::ipv4_header_checksum(l3.first(20));
      l3[10] = std::byte{static_cast<std::uint8_t>(c >> 8)};
      l3[11] = std::byte{static_cast<std::uint8_t>(c)};
      ++forwarded;
    }
    return forwarded;
  }
};

}  // namespace l4lb::bench
