// Direct routing: byte-exact output on capture frames (ipvs-notes 0A: "DR changes the MACs,
// decrements TTL and updates the IP header checksum; IP ID and the TCP checksum are untouched";
// IPv6: only the MACs and hop limit - 1), TTL expiry, VLAN handling, the MTU rule.
#include <doctest/doctest.h>

#include "forward/forward_test_support.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;
using forward::forward_error;

namespace {

forward::dr_config dr_cfg() {
  forward::dr_config c;
  c.l2.src = director_mac;
  c.l2.dst = real_mac;
  return c;
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("direct_route: IPv4 SYN from the capture, byte for byte") {
  auto frames = capture_frames("client-vip-http.pcap");
  REQUIRE(frames.size() > 3);
  // Frame 3: 198.18.0.2:35132 -> 198.18.0.100:80 SYN, TTL 64, IP checksum 0x66ac.
  const bytes in = hex_bytes(
      "02 00 c6 12 00 0a 02 00 c6 12 00 02 08 00 45 00 00 3c 47 85 40 00 40 06 66 ac c6 12 00 02"
      "c6 12 00 64 89 3c 00 50 66 be 99 cd 00 00 00 00 a0 02 fa f0 fe c7 00 00 02 04 05 b4 04 02"
      "08 0a ce 99 69 07 00 00 00 00 01 03 03 0a");
  REQUIRE(frames[2] == in);
  // Expected: destination MAC = real server 02:00:c6:12:00:0b, source = director ..:fe;
  // TTL 0x40 -> 0x3f; the TTL/protocol word drops by 0x0100, so the checksum rises by 0x0100:
  // 0x66ac -> 0x67ac. ID 0x4785, DF, addresses, TCP (checksum 0xfec7) unchanged.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 3c 47 85 40 00 3f 06 67 ac c6 12 00 02"
      "c6 12 00 64 89 3c 00 50 66 be 99 cd 00 00 00 00 a0 02 fa f0 fe c7 00 00 02 04 05 b4 04 02"
      "08 0a ce 99 69 07 00 00 00 00 01 03 03 0a");
  guarded_frame g(in, 16, 16);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto r = forward::direct_route(g.buf, *pkt, dr_cfg());
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::forward);
  CHECK(to_hex(r->frame) == to_hex(expected));
  CHECK(g.guard_damage(r->frame, in.size()) == 0);
}

TEST_CASE("direct_route: IPv6 SYN from the capture, byte for byte") {
  auto frames = capture_frames("ipv6-http.pcap");
  REQUIRE(frames.size() > 3);
  const bytes in = hex_bytes(
      "02 00 c6 12 00 0a 02 00 c6 12 00 02 86 dd 60 08 27 a1 00 28 06 40 fd 00 01 98 00 18 00 00"
      "00 00 00 00 00 00 00 02 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00 dd 96 00 50 71 a7"
      "48 16 00 00 00 00 a0 02 fd 20 61 e9 00 00 02 04 05 a0 04 02 08 0a ee e4 64 1a 00 00 00 00"
      "01 03 03 0a");
  REQUIRE(frames[2] == in);
  // Only the MACs and the hop limit (0x40 -> 0x3f) change; IPv6 has no header checksum and the
  // TCP checksum does not cover the hop limit.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 86 dd 60 08 27 a1 00 28 06 3f fd 00 01 98 00 18 00 00"
      "00 00 00 00 00 00 00 02 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00 dd 96 00 50 71 a7"
      "48 16 00 00 00 00 a0 02 fd 20 61 e9 00 00 02 04 05 a0 04 02 08 0a ee e4 64 1a 00 00 00 00"
      "01 03 03 0a");
  guarded_frame g(in, 0, 0);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto r = forward::direct_route(g.buf, *pkt, dr_cfg());
  REQUIRE(r);
  CHECK(to_hex(r->frame) == to_hex(expected));
}

TEST_CASE("direct_route: the option to leave the IP header untouched changes only the MACs") {
  const bytes in = packet_builder{}.eth(mac("02:00:00:00:00:aa"), client_mac)
                       .ipv4("198.18.0.2", "198.18.0.100", {.ttl = 1})
                       .tcp(40000, 80, wire::tcp_flags::syn)
                       .build();
  guarded_frame g(in, 0);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto cfg = dr_cfg();
  cfg.decrement_ttl = false;
  auto r = forward::direct_route(g.buf, *pkt, cfg);
  REQUIRE(r);
  bytes expected = in;
  std::memcpy(expected.data(), real_mac.bytes.data(), 6);
  std::memcpy(expected.data() + 6, director_mac.bytes.data(), 6);
  CHECK(to_bytes(r->frame) == expected);
}

TEST_CASE("direct_route: TTL 1 (or hop limit 1) is not forwarded, nothing is written") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    packet_builder b;
    b.eth(mac("02:00:00:00:00:aa"), client_mac);
    if (v6)
      b.ipv6("fd00::2", "fd00::100", {.hop_limit = 1});
    else
      b.ipv4("198.18.0.2", "198.18.0.100", {.ttl = 1});
    const bytes in = b.udp(5000, 53).payload("q").build();
    guarded_frame g(in, 8, 8);
    auto pkt = wire::parse(g.buf.frame());
    REQUIRE(pkt);
    auto r = forward::direct_route(g.buf, *pkt, dr_cfg());
    REQUIRE_FALSE(r);
    CHECK(r.error() == forward_error::ttl_exceeded);
    CHECK(to_string(r.error()) == "ttl_exceeded");
    CHECK(to_bytes(g.buf.frame()) == in);
  }
}

TEST_CASE("direct_route: VLAN tags kept, VIDs rewritten, or replaced") {
  const bytes in = packet_builder{}.eth(mac("02:00:00:00:00:aa"), client_mac)
                       .vlan(100, 5)
                       .ipv4("198.18.0.2", "198.18.0.100")
                       .udp(5000, 53)
                       .payload("hi")
                       .build();
  SUBCASE("keep") {
    guarded_frame g(in, 8);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::direct_route(g.buf, *pkt, dr_cfg());
    REQUIRE(r);
    // TCI = PCP 5 << 13 | VID 100 = 0xa064, kept.
    CHECK(to_hex(r->frame.subspan(12, 4)) == "81 00 a0 64");
  }
  SUBCASE("set_vids keeps PCP") {
    guarded_frame g(in, 8);
    auto pkt = wire::parse(g.buf.frame());
    auto cfg = dr_cfg();
    cfg.l2.vlan.policy = forward::vlan_policy::set_vids;
    cfg.l2.vlan.count = 1;
    cfg.l2.vlan.tags[0].tci = 200;
    auto r = forward::direct_route(g.buf, *pkt, cfg);
    REQUIRE(r);
    CHECK(to_hex(r->frame.subspan(12, 4)) == "81 00 a0 c8");  // PCP 5, VID 200
    CHECK(r->frame.size() == in.size());
  }
  SUBCASE("set_vids for more tags than present") {
    guarded_frame g(in, 8);
    auto pkt = wire::parse(g.buf.frame());
    auto cfg = dr_cfg();
    cfg.l2.vlan.policy = forward::vlan_policy::set_vids;
    cfg.l2.vlan.count = 2;
    auto r = forward::direct_route(g.buf, *pkt, cfg);
    REQUIRE_FALSE(r);
    CHECK(r.error() == forward_error::vlan_mismatch);
  }
  SUBCASE("replace: strip, then push two tags into the headroom") {
    guarded_frame g(in, 8);
    auto pkt = wire::parse(g.buf.frame());
    auto cfg = dr_cfg();
    cfg.l2.vlan.policy = forward::vlan_policy::replace;
    cfg.l2.vlan.count = 0;
    auto r = forward::direct_route(g.buf, *pkt, cfg);
    REQUIRE(r);
    CHECK(r->frame.size() == in.size() - 4);
    CHECK(to_hex(r->frame.subspan(12, 3)) == "08 00 45");
    // Two tags on an untagged frame need 8 bytes of headroom; with 3 it is an error, no write.
    const bytes plain = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).build();
    guarded_frame small(plain, 3);
    auto p2 = wire::parse(small.buf.frame());
    cfg.l2.vlan.count = 2;
    cfg.l2.vlan.tags[0] = {0x88a8, 200};
    cfg.l2.vlan.tags[1] = {0x8100, 300};
    auto r2 = forward::direct_route(small.buf, *p2, cfg);
    REQUIRE_FALSE(r2);
    CHECK(r2.error() == forward_error::no_headroom);
    CHECK(to_bytes(small.buf.frame()) == plain);
    guarded_frame big(plain, 8);
    auto p3 = wire::parse(big.buf.frame());
    auto r3 = forward::direct_route(big.buf, *p3, cfg);
    REQUIRE(r3);
    CHECK(to_hex(r3->frame.subspan(12, 10)) == "88 a8 00 c8 81 00 01 2c 08 00");
    CHECK(big.guard_damage(r3->frame, plain.size()) == 0);
  }
}

TEST_CASE("direct_route: a packet parsed without Ethernet or from another buffer is refused") {
  const bytes ip_only = packet_builder{}.ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).build();
  guarded_frame g(ip_only, 0);
  auto pkt = wire::parse_ip(g.buf.frame());
  REQUIRE(pkt);
  auto r = forward::direct_route(g.buf, *pkt, dr_cfg());
  REQUIRE_FALSE(r);
  CHECK(r.error() == forward_error::no_ethernet);
  const bytes eth = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).build();
  guarded_frame a(eth, 0), b(eth, 0);
  auto pa = wire::parse(a.buf.frame());
  auto rb = forward::direct_route(b.buf, *pa, dr_cfg());
  REQUIRE_FALSE(rb);
  CHECK(rb.error() == forward_error::view_not_in_buffer);
}

TEST_CASE("direct_route: over the MTU with DF, the frag-needed answer instead of the packet") {
  // 1400-byte IP packet with DF, MTU 1300: IPVS answers from the VIP (ipvs-notes 0A).
  const bytes in = packet_builder{}.eth(mac("02:00:00:00:00:aa"), client_mac)
                       .ipv4("198.18.0.2", "198.18.0.100", {.ident = 7, .dont_frag = true})
                       .tcp(40000, 80, wire::tcp_flags::ack)
                       .payload(1400 - 40, 0x5a)
                       .build();
  guarded_frame g(in, 0);
  auto pkt = wire::parse(g.buf.frame());
  auto cfg = dr_cfg();
  cfg.mtu = 1300;
  std::vector<std::byte> reply(600);
  auto r = forward::direct_route(g.buf, *pkt, cfg, reply);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::reply_icmp);
  // 14 Ethernet + 576 IP (20 + 8 + 548 quoted).
  CHECK(r->frame.size() == 14 + 576);
  CHECK(to_bytes(g.buf.frame()) == in);  // the packet itself is left alone
  CHECK(r->mtu == 1300);
  // No reply buffer: its own named error; a buffer one byte short: too_big. Nothing written.
  auto r2 = forward::direct_route(g.buf, *pkt, cfg);
  REQUIRE_FALSE(r2);
  CHECK(r2.error() == forward_error::no_reply_buffer);
  std::vector<std::byte> short_reply(14 + 576 - 1);
  auto r2b = forward::direct_route(g.buf, *pkt, cfg, short_reply);
  REQUIRE_FALSE(r2b);
  CHECK(r2b.error() == forward_error::too_big);
  CHECK(to_bytes(g.buf.frame()) == in);
  // Without DF the packet is rewritten and marked for fragmentation at the MTU (fragment.hpp).
  const bytes nodf = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).payload(1400, 1).build();
  guarded_frame g3(nodf, 0);
  auto p3 = wire::parse(g3.buf.frame());
  auto r3 = forward::direct_route(g3.buf, *p3, cfg, reply);
  REQUIRE(r3);
  CHECK(r3->action == forward::forward_action::fragment);
  CHECK(r3->mtu == 1300);
  CHECK(r3->l3_offset == 14);
}
}
