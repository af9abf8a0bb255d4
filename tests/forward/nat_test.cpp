// NAT and FullNAT: byte-exact rewrites of capture frames and of hand-made ICMP errors, written out
// from ipvs-notes 0A / 4.1 / 4.2 (what IPVS changes, nothing else), UDP's absent checksum, round
// trips, refusals, and FullNAT's port pool.
#include <doctest/doctest.h>

#include <set>

#include "forward/forward_test_support.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;
using forward::forward_error;

namespace {

// Connection used by the fixtures: client 198.18.0.2, VIP 198.18.0.100, real server .11 whose
// service port differs (80 -> 8080, 53 -> 5353) so that port rewriting shows.
forward::nat_connection conn4(std::uint16_t cport, std::uint16_t vport, std::uint16_t rport) {
  return {wire::endpoint{ip("198.18.0.2"), cport}, wire::endpoint{ip("198.18.0.100"), vport},
          wire::endpoint{ip("198.18.0.11"), rport}};
}
forward::nat_connection conn6(std::uint16_t cport, std::uint16_t vport, std::uint16_t rport) {
  return {wire::endpoint{ip("fd00:198:18::2"), cport}, wire::endpoint{ip("fd00:198:18::100"), vport},
          wire::endpoint{ip("fd00:198:18::11"), rport}};
}

// The option that updates an ICMP error's quoted TCP/UDP checksum (the default leaves it, as the
// kernel does): these fixtures show every checksum of the message valid.
forward::nat_config updating_quote(forward::nat_config c) {
  c.keep_quoted_l4_checksum = false;
  return c;
}

template <class F>
bytes run(const bytes& in, F&& f) {
  guarded_frame g(in, 8, 8);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto r = f(g.buf, *pkt);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::forward);
  CHECK(g.guard_damage(r->frame, in.size()) == 0);
  return to_bytes(r->frame);
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("nat_inbound: IPv4 SYN from the capture, byte for byte") {
  auto frames = capture_frames("client-vip-http.pcap");
  REQUIRE(frames.size() > 3);
  const bytes& in = frames[2];  // 198.18.0.2:35132 -> .100:80 SYN (same bytes as the DR fixture)
  // Destination .100 -> .11 (0x0064 -> 0x000b: sum -0x59), port 80 -> 8080 (+0x1f40), TTL 64 -> 63
  // (TTL/proto word -0x0100). IP checksum: 0x66ac + 0x59 + 0x100 = 0x6805. TCP checksum: its sum
  // gains 0x1f40 - 0x59 = 0x1ee7, so 0xfec7 - 0x1ee7 = 0xdfe0. ID 0x4785 and options unchanged.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 3c 47 85 40 00 3f 06 68 05 c6 12 00 02"
      "c6 12 00 0b 89 3c 1f 90 66 be 99 cd 00 00 00 00 a0 02 fa f0 df e0 00 00 02 04 05 b4 04 02"
      "08 0a ce 99 69 07 00 00 00 00 01 03 03 0a");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(35132, 80, 8080), to_real()); });
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat_outbound: the real server's SYN-ACK gets the VIP back, byte for byte") {
  // The capture's frame 4 (VIP:80 -> client SYN-ACK) as the real server would send it:
  // source .11:8080, IP checksum 0xae8a and TCP checksum 0x3183 (computed for those values).
  const bytes in = hex_bytes(
      "02 00 c6 12 00 02 02 00 c6 12 00 0a 08 00 45 00 00 3c 00 00 40 00 40 06 ae 8a c6 12 00 0b"
      "c6 12 00 02 1f 90 89 3c 11 3d 72 37 66 be 99 ce a0 12 fe 88 31 83 00 00 02 04 05 b4 04 02"
      "08 0a c9 48 5d f7 ce 99 69 07 01 03 03 0a");
  // Expected: the capture's own frame 4 (source VIP:80, TCP checksum 0x506a as the kernel wrote
  // it) except TTL 63 (IP checksum 0xae31 + 0x100 = 0xaf31) and the MACs toward the client.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 02 02 00 c6 12 00 fe 08 00 45 00 00 3c 00 00 40 00 3f 06 af 31 c6 12 00 64"
      "c6 12 00 02 00 50 89 3c 11 3d 72 37 66 be 99 ce a0 12 fe 88 50 6a 00 00 02 04 05 b4 04 02"
      "08 0a c9 48 5d f7 ce 99 69 07 01 03 03 0a");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_outbound(b, p, conn4(35132, 80, 8080), to_client()); });
  CHECK(to_hex(out) == to_hex(expected));
  auto frames = capture_frames("client-vip-http.pcap");
  REQUIRE(frames.size() > 3);
  CHECK(to_hex(bytes(out.begin() + 34, out.end())) == to_hex(bytes(frames[3].begin() + 34, frames[3].end())));
}

TEST_CASE("nat_inbound: IPv4 UDP (DNS query from the capture), byte for byte") {
  auto frames = capture_frames("udp-dns-like.pcap");
  REQUIRE(!frames.empty());
  const bytes& in = frames[0];  // 198.18.0.2:59983 -> .100:53, UDP checksum 0xc6a9
  // Destination .11:5353: UDP sum gains 0x14e9 - 0x35 - 0x59 = 0x145b, 0xc6a9 - 0x145b = 0xb24e;
  // IP: TTL 64 -> 63 and .100 -> .11: 0xc74e + 0x159 = 0xc8a7; ID 0x26b8 unchanged.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 5c 26 b8 00 00 3f 11 c8 a7 c6 12 00 02"
      "c6 12 00 0b ea 4f 14 e9 00 48 b2 4e fb 32 01 20 00 01 00 00 00 00 00 01 05 68 6f 73 74 31"
      "04 63 6c 69 31 07 65 78 61 6d 70 6c 65 04 74 65 73 74 00 00 01 00 01 00 00 29 04 d0 00 00"
      "00 00 00 0c 00 0a 00 08 27 b1 19 da fa 69 73 32");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(0xea4f, 53, 5353), to_real()); });
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat_inbound: IPv6 SYN from the capture, byte for byte") {
  auto frames = capture_frames("ipv6-http.pcap");
  REQUIRE(frames.size() > 3);
  const bytes& in = frames[2];  // [fd00:198:18::2]:56726 -> [::100]:80, TCP checksum 0x61e9
  // Destination ::100 -> ::11 (last word 0x0100 -> 0x0011: -0xef), port +0x1f40: the TCP sum
  // gains 0x1e51, 0x61e9 - 0x1e51 = 0x4398. Hop limit 64 -> 63. Flow label kept.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 86 dd 60 08 27 a1 00 28 06 3f fd 00 01 98 00 18 00 00"
      "00 00 00 00 00 00 00 02 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 11 dd 96 1f 90 71 a7"
      "48 16 00 00 00 00 a0 02 fd 20 43 98 00 00 02 04 05 a0 04 02 08 0a ee e4 64 1a 00 00 00 00"
      "01 03 03 0a");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn6(56726, 80, 8080), to_real()); });
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat: an absent IPv4 UDP checksum gets a full one by default, or stays 0 by option") {
  auto make = [](const char* src, const char* dst, std::uint16_t sp, std::uint16_t dp, std::uint8_t ttl, bool zero) {
    return packet_builder{}.eth(real_mac, director_mac)
        .ipv4(src, dst, {.ttl = ttl, .ident = 0x2222})
        .udp(sp, dp, {.zero_checksum = zero})
        .payload("a UDP payload of odd length")
        .build();
  };
  const bytes in = make("198.18.0.2", "198.18.0.100", 40000, 53, 64, true);
  // The expected frame is what the builder makes for the rewritten datagram, checksum included
  // (the builder's own RFC 768 sum, independent of the library).
  const bytes expected = make("198.18.0.2", "198.18.0.11", 40000, 5353, 63, false);
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(40000, 53, 5353), to_real()); });
  CHECK(to_hex(out) == to_hex(expected));
  auto cfg = to_real();
  cfg.keep_zero_udp_checksum = true;
  auto kept = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(40000, 53, 5353), cfg); });
  const bytes expected_zero = make("198.18.0.2", "198.18.0.11", 40000, 5353, 63, true);
  CHECK(to_hex(kept) == to_hex(expected_zero));
}

TEST_CASE("nat_inbound: ICMP port unreachable from the client quoting a reply, byte for byte") {
  // Hand-made: client 198.18.0.2 -> VIP, ICMP 3/3 (TOS 0xc0, ID 0x0101, TTL 64), quoting the
  // UDP datagram VIP:53 -> client:40000 (ID 0x1234, TTL 63, 4 data bytes "ABCD").
  const bytes in = hex_bytes(
      "02 00 c6 12 00 0a 02 00 c6 12 00 02 08 00 45 c0 00 3c 01 01 00 00 40 01 ec 75 c6 12 00 02"
      "c6 12 00 64 03 03 89 a5 00 00 00 00 45 00 00 20 12 34 00 00 3f 11 dd 0e c6 12 00 64 c6 12"
      "00 02 00 35 9c 40 00 0c 52 4f 41 42 43 44");
  // Rules (ipvs-notes 0A): outer destination -> .11, TTL 63, ID/TOS kept, outer IP checksum
  // 0xec75 + 0x159 = 0xedce; quote source -> .11:5353, quoted IP checksum recomputed (0xdd0e +
  // 0x59 = 0xdd67), quoted TTL (63) left as it was; the ICMP checksum recomputed over the new
  // message. The quoted UDP checksum: by default (keep_quoted_l4_checksum) left at 0x524f as the
  // kernel leaves it (ICMP 0x74f1); with the option off, updated for the new quoted source
  // (0x524f: sum -0x59 for the address, +0x14b4 for the port, so 0x524f - 0x145b = 0x3df4; ICMP
  // 0x894c).
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 c0 00 3c 01 01 00 00 3f 01 ed ce c6 12 00 02"
      "c6 12 00 0b 03 03 89 4c 00 00 00 00 45 00 00 20 12 34 00 00 3f 11 dd 67 c6 12 00 0b c6 12"
      "00 02 14 e9 9c 40 00 0c 3d f4 41 42 43 44");
  const bytes expected_kernel = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 c0 00 3c 01 01 00 00 3f 01 ed ce c6 12 00 02"
      "c6 12 00 0b 03 03 74 f1 00 00 00 00 45 00 00 20 12 34 00 00 3f 11 dd 67 c6 12 00 0b c6 12"
      "00 02 14 e9 9c 40 00 0c 52 4f 41 42 43 44");
  // The default is the kernel's (DEVELOPERS.md: defaults are the kernel's).
  CHECK(forward::nat_config{}.keep_quoted_l4_checksum);
  auto out_k = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(40000, 53, 5353), to_real()); });
  CHECK(to_hex(out_k) == to_hex(expected_kernel));
  CHECK(wire::checksum_accumulator{}.add(std::span<const std::byte>(out_k).subspan(34)).verifies());
  auto updating = to_real();
  updating.keep_quoted_l4_checksum = false;
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(40000, 53, 5353), updating); });
  CHECK(to_hex(out) == to_hex(expected));
  CHECK(wire::checksum_accumulator{}.add(std::span<const std::byte>(out).subspan(34)).verifies());
}

TEST_CASE("nat_outbound: ICMP port unreachable from the real server, byte for byte") {
  // Hand-made: .11 -> client .2, ICMP 3/3 quoting UDP client:40000 -> .11:5353 ("WXYZ").
  const bytes in = hex_bytes(
      "02 00 c6 12 00 fe 02 00 c6 12 00 0b 08 00 45 c0 00 3c 02 02 00 00 40 01 eb cd c6 12 00 0b"
      "c6 12 00 02 03 03 89 4c 00 00 00 00 45 00 00 20 43 21 00 00 3f 11 ac 7a c6 12 00 02 c6 12"
      "00 0b 9c 40 14 e9 00 0c 11 c8 57 58 59 5a");
  // Outer source -> VIP (0x000b -> 0x0064, TTL -1: 0xebcd + 0x100 - 0x59 = 0xec74); quote
  // destination -> VIP:53 (quoted IP checksum 0xac7a - 0x59 = 0xac21); quoted UDP checksum
  // updated: address +0x59, port 0x14e9 -> 0x35 (-0x14b4): 0x11c8 + 0x145b = 0x2623; ICMP
  // checksum recomputed: 0x89a5.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 02 02 00 c6 12 00 fe 08 00 45 c0 00 3c 02 02 00 00 3f 01 ec 74 c6 12 00 64"
      "c6 12 00 02 03 03 89 a5 00 00 00 00 45 00 00 20 43 21 00 00 3f 11 ac 21 c6 12 00 02 c6 12"
      "00 64 9c 40 00 35 00 0c 26 23 57 58 59 5a");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_outbound(b, p, conn4(40000, 53, 5353), updating_quote(to_client())); });
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat_inbound: ICMPv6 port unreachable from the client, byte for byte") {
  // Hand-made: fd00:198:18::2 -> VIP6, ICMPv6 1/4 quoting UDP [VIP6]:53 -> [::2]:40000 ("ABCD").
  const bytes in = hex_bytes(
      "02 00 c6 12 00 0a 02 00 c6 12 00 02 86 dd 60 00 00 00 00 3c 3a 40 fd 00 01 98 00 18 00 00"
      "00 00 00 00 00 00 00 02 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00 01 04 8e f3 00 00"
      "00 00 60 00 00 00 00 0c 11 3f fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00 fd 00 01 98"
      "00 18 00 00 00 00 00 00 00 00 00 02 00 35 9c 40 00 0c e0 76 41 42 43 44");
  // Outer destination -> ::11, hop limit 63; quote source -> [::11]:5353 (no IPv6 header
  // checksum); quoted UDP checksum updated: address -0xef, port +0x14b4: 0xe076 - 0x13c5 =
  // 0xccb1; ICMPv6 checksum recomputed over the pseudo-header with the new destination: 0x8fe2.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 86 dd 60 00 00 00 00 3c 3a 3f fd 00 01 98 00 18 00 00"
      "00 00 00 00 00 00 00 02 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 11 01 04 8f e2 00 00"
      "00 00 60 00 00 00 00 0c 11 3f fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 11 fd 00 01 98"
      "00 18 00 00 00 00 00 00 00 00 00 02 14 e9 9c 40 00 0c cc b1 41 42 43 44");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn6(40000, 53, 5353), updating_quote(to_real())); });
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat: inbound then outbound gives back the original flow's addresses and checksums") {
  for (bool v6 : {false, true}) {
    for (bool tcp : {false, true}) {
      CAPTURE(v6);
      CAPTURE(tcp);
      const char* c = v6 ? "fd00:198:18::2" : "198.18.0.2";
      const char* v = v6 ? "fd00:198:18::100" : "198.18.0.100";
      packet_builder b;
      b.eth(mac("02:00:c6:12:00:0a"), client_mac);
      if (v6) b.ipv6(c, v); else b.ipv4(c, v, {.ident = 99});
      if (tcp) b.tcp(45678, 443, wire::tcp_flags::ack, {.seq = 1, .ack = 2}); else b.udp(45678, 443);
      const bytes in = b.payload("round trip payload!").build();
      auto conn = v6 ? conn6(45678, 443, 8443) : conn4(45678, 443, 8443);
      auto there = run(in, [&](auto& buf, auto& p) { return forward::nat_inbound(buf, p, conn, to_real()); });
      // The real server's view: same packet with the real server as destination.
      auto key = wire::parse(there)->key();
      CHECK(key.dst() == conn.real);
      CHECK(key.src() == conn.client);
      // Reflect it: swap addresses and ports (a real server answering with the same bytes),
      // recompute nothing: a one's-complement sum does not depend on the order of its words.
      bytes reply = there;
      const std::size_t a = v6 ? 22 : 26, n = v6 ? 16 : 4, l4 = v6 ? 54 : 34;
      for (std::size_t i = 0; i < n; ++i) std::swap(reply[a + i], reply[a + n + i]);
      for (std::size_t i = 0; i < 2; ++i) std::swap(reply[l4 + i], reply[l4 + 2 + i]);
      auto back = run(reply, [&](auto& buf, auto& p) { return forward::nat_outbound(buf, p, conn, to_client()); });
      auto k2 = wire::parse(back)->key();
      CHECK(k2.src() == conn.vip);
      CHECK(k2.dst() == conn.client);
      // The L4 checksum is the original's: the pseudo-header and ports hold the same words again.
      const std::size_t cs = l4 + (tcp ? 16 : 6);
      CHECK(to_hex(std::span<const std::byte>(back).subspan(cs, 2)) == to_hex(std::span<const std::byte>(in).subspan(cs, 2)));
    }
  }
}

TEST_CASE("nat: refusals are named and leave the frame alone") {
  auto check_refused = [](const bytes& in, auto f, forward_error want) {
    guarded_frame g(in, 8, 8);
    auto pkt = wire::parse(g.buf.frame());
    REQUIRE(pkt);
    auto r = f(g.buf, *pkt);
    REQUIRE_FALSE(r);
    CHECK(r.error() == want);
    CHECK(to_bytes(g.buf.frame()) == in);
  };
  const auto conn = conn4(40000, 80, 8080);
  auto in = [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn, to_real()); };
  // Another client port: not this connection.
  check_refused(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").tcp(40001, 80, 2).build(), in,
                forward_error::flow_mismatch);
  // A fragment.
  check_refused(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.more_frags = true}).udp(40000, 80).payload(16).build(),
                in, forward_error::fragmented);
  // ICMP echo is not NAT's business.
  check_refused(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").icmp_echo(true, 1, 1).build(), in,
                forward_error::unsupported_protocol);
  // TTL 1.
  check_refused(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.ttl = 1}).tcp(40000, 80, 2).build(), in,
                forward_error::ttl_exceeded);
  // An IPv6 packet for an IPv4 connection.
  check_refused(packet_builder{}.eth().ipv6("fd00::2", "fd00::100").tcp(40000, 80, 2).build(), in,
                forward_error::family_mismatch);
  // An ICMP error about another flow.
  const auto quote = packet_builder{}.ipv4("198.18.0.100", "198.18.0.2").udp(81, 40000);
  check_refused(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").icmp(3, 3).quote(quote).build(), in,
                forward_error::flow_mismatch);
}

TEST_CASE("full_nat: inbound uses the local endpoint, outbound restores VIP -> client") {
  forward::full_nat_connection conn{ep("198.18.0.2:40000"), ep("198.18.0.100:80"), ep("198.18.0.254:2000"),
                                    ep("198.18.0.11:8080")};
  const bytes in = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                       .ipv4("198.18.0.2", "198.18.0.100", {.ident = 5})
                       .tcp(40000, 80, wire::tcp_flags::syn)
                       .payload("x")
                       .build();
  auto there = run(in, [&](auto& b, auto& p) { return forward::full_nat_inbound(b, p, conn, to_real()); });
  // Expected: the same packet built with local -> real endpoints and TTL 63 (builder checksums).
  const bytes expected = packet_builder{}.eth(real_mac, director_mac)
                             .ipv4("198.18.0.254", "198.18.0.11", {.ttl = 63, .ident = 5})
                             .tcp(2000, 8080, wire::tcp_flags::syn)
                             .payload("x")
                             .build();
  CHECK(to_hex(there) == to_hex(expected));
  const bytes reply = packet_builder{}.eth(director_mac, real_mac)
                          .ipv4("198.18.0.11", "198.18.0.254", {.ident = 6})
                          .tcp(8080, 2000, wire::tcp_flags::syn | wire::tcp_flags::ack)
                          .build();
  auto back = run(reply, [&](auto& b, auto& p) { return forward::full_nat_outbound(b, p, conn, to_client()); });
  const bytes expected_back = packet_builder{}.eth(client_mac, director_mac)
                                  .ipv4("198.18.0.100", "198.18.0.2", {.ttl = 63, .ident = 6})
                                  .tcp(80, 40000, wire::tcp_flags::syn | wire::tcp_flags::ack)
                                  .build();
  CHECK(to_hex(back) == to_hex(expected_back));
  // A reply to another local port is not this connection.
  const bytes other = packet_builder{}.eth().ipv4("198.18.0.11", "198.18.0.254").tcp(8080, 2001, 0x12).build();
  guarded_frame g(other, 0);
  auto p = wire::parse(g.buf.frame());
  auto r = forward::full_nat_outbound(g.buf, *p, conn, to_client());
  REQUIRE_FALSE(r);
  CHECK(r.error() == forward_error::flow_mismatch);
}

TEST_CASE("full_nat: an ICMP error from the real server is mapped back to VIP/client") {
  forward::full_nat_connection conn{ep("[fd00:198:18::2]:40000"), ep("[fd00:198:18::100]:53"),
                                    ep("[fd00:198:18::fe]:3000"), ep("[fd00:198:18::11]:5353")};
  const auto quote = packet_builder{}.ipv6("fd00:198:18::fe", "fd00:198:18::11", {.hop_limit = 63}).udp(3000, 5353).payload("DATA");
  const bytes in = packet_builder{}.eth(director_mac, real_mac).ipv6("fd00:198:18::11", "fd00:198:18::fe").icmp(1, 4).quote(quote).build();
  auto out = run(in, [&](auto& b, auto& p) { return forward::full_nat_outbound(b, p, conn, updating_quote(to_client())); });
  // Expected: outer VIP6 -> client, hop 63; quote client:40000 -> VIP6:53 with its UDP checksum
  // updated to match; ICMPv6 checksum valid (all as the builder computes them).
  auto exp_quote = packet_builder{}.ipv6("fd00:198:18::2", "fd00:198:18::100", {.hop_limit = 63}).udp(40000, 53).payload("DATA").build();
  const bytes expected = packet_builder{}.eth(client_mac, director_mac)
                             .ipv6("fd00:198:18::100", "fd00:198:18::2", {.hop_limit = 63})
                             .icmp(1, 4)
                             .payload(exp_quote)
                             .build();
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("full_nat_port_pool: allocations never collide, release and reserve, exhaustion") {
  auto pool = forward::full_nat_port_pool::make({{ip("198.18.0.254"), ip("198.18.0.253"), ip("fd00::fe")}, 50000, 50099});
  REQUIRE(pool);
  std::set<std::pair<std::string, std::uint16_t>> seen;
  // Two v4 addresses x 100 ports = 200 TCP endpoints, each handed out once.
  for (std::uint64_t i = 0; i < 200; ++i) {
    auto e = pool->allocate(wire::ip_proto::tcp, wire::ip_family::v4, i * 0x9E3779B97F4A7C15ULL);
    REQUIRE(e);
    CHECK(e->port >= 50000);
    CHECK(e->port <= 50099);
    CHECK(e->address.is_v4());
    CHECK(seen.insert({e->address.to_string(), e->port}).second);
  }
  auto full = pool->allocate(wire::ip_proto::tcp, wire::ip_family::v4, 1);
  REQUIRE_FALSE(full);
  CHECK(full.error() == forward_error::port_pool_exhausted);
  // UDP has its own ports; IPv6 its own address; ICMP has no ports.
  CHECK(pool->allocate(wire::ip_proto::udp, wire::ip_family::v4, 1));
  auto v6 = pool->allocate(wire::ip_proto::tcp, wire::ip_family::v6, 1);
  REQUIRE(v6);
  CHECK(v6->address == ip("fd00::fe"));
  CHECK(pool->allocate(wire::ip_proto::icmp, wire::ip_family::v4, 1).error() == forward_error::unsupported_protocol);
  // Release one and get exactly it back.
  const wire::endpoint freed{ip("198.18.0.253"), 50042};
  CHECK(pool->release(wire::ip_proto::tcp, freed));
  CHECK_FALSE(pool->release(wire::ip_proto::tcp, freed));
  auto again = pool->allocate(wire::ip_proto::tcp, wire::ip_family::v4, 7);
  REQUIRE(again);
  CHECK(*again == freed);
  // A flow learned elsewhere reserves its endpoint; allocation then avoids it.
  auto p2 = forward::full_nat_port_pool::make({{ip("198.18.0.1")}, 1000, 1001});
  REQUIRE(p2);
  CHECK(p2->reserve(wire::ip_proto::udp, ep("198.18.0.1:1000")));
  CHECK_FALSE(p2->reserve(wire::ip_proto::udp, ep("198.18.0.1:1000")));
  CHECK_FALSE(p2->reserve(wire::ip_proto::udp, ep("198.18.0.2:1000")));  // not a local address
  auto only = p2->allocate(wire::ip_proto::udp, wire::ip_family::v4, 0);
  REQUIRE(only);
  CHECK(only->port == 1001);
  CHECK(p2->allocate(wire::ip_proto::udp, wire::ip_family::v6, 0).error() == forward_error::family_mismatch);
  CHECK(p2->used(wire::ip_proto::udp, 0) == 2);
}
}
