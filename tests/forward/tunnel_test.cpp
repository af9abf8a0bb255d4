// Tunnels: IPIP / ip6ip6 / GUE / GRE encapsulation written out byte for byte from ipvs-notes 0A
// (how the kernel builds the outer header), the too-big answer, the real-server decapsulation,
// encapsulate -> decapsulate round trips, and bad input (truncation, headroom, lying lengths).
#include <doctest/doctest.h>

#include <optional>
#include <set>
#include <string>

#include "forward/forward_test_support.hpp"
#include "l4lb/forward/decap.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;
using forward::forward_error;
using forward::tunnel_type;

namespace {

// The capture's SYN (client-vip-http.pcap frame 3) after TTL - 1 (64 -> 63, checksum 0x66ac ->
// 0x67ac): the inner packet of every IPv4 tunnel fixture below.
const char* const syn_inner_ttl63 =
    "45 00 00 3c 47 85 40 00 3f 06 67 ac c6 12 00 02 c6 12 00 64 89 3c 00 50 66 be 99 cd 00 00"
    "00 00 a0 02 fa f0 fe c7 00 00 02 04 05 b4 04 02 08 0a ce 99 69 07 00 00 00 00 01 03 03 0a";

forward::tunnel_config tun_cfg(tunnel_type t, const char* local) {
  forward::tunnel_config c;
  c.type = t;
  c.local = ip(local);
  c.l2.src = director_mac;
  c.l2.dst = real_mac;
  c.gue_port = 6080;
  return c;
}

bytes encap(const bytes& in, const forward::tunnel_config& cfg, const char* real, std::size_t headroom = 64) {
  guarded_frame g(in, headroom, 8);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip(real), cfg);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::forward);
  CHECK(g.guard_damage(r->frame, in.size()) == 0);
  return to_bytes(r->frame);
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("tunnel_encapsulate: IPIP (4in4) of the capture's SYN, byte for byte") {
  auto frames = capture_frames("client-vip-http.pcap");
  REQUIRE(frames.size() > 3);
  // Outer IPv4 (ipvs-notes 0A "TUN (ipip)"): TOS = inner TOS 0x00, total length 60 + 20 = 80,
  // ID 0 because the inner packet has DF, DF copied, TTL = inner TTL after decrement (63),
  // protocol 4, source = the director's address .254 (not the VIP), destination = the real server
  // .11, header checksum 0xae7c (RFC 1071 over these 20 bytes).
  const bytes expected = hex_bytes(std::string(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00"
      "45 00 00 50 00 00 40 00 3f 04 ae 7c c6 12 00 fe c6 12 00 0b") + syn_inner_ttl63);
  CHECK(to_hex(encap(frames[2], tun_cfg(tunnel_type::ipip, "198.18.0.254"), "198.18.0.11")) == to_hex(expected));
}

TEST_CASE("tunnel_encapsulate: ip6ip6 of the IPv6 capture's SYN, byte for byte") {
  auto frames = capture_frames("ipv6-http.pcap");
  REQUIRE(frames.size() > 3);
  // Outer IPv6: traffic class copied (0x00), flow label 0, payload length 80, next header 41,
  // hop limit = inner after decrement (63), source = director fd00:198:18::fe, destination ::11.
  // Inner: hop limit 63, otherwise the captured bytes (flow label 0x827a1 kept).
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 86 dd"
      "60 00 00 00 00 50 29 3f fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 fe"
      "fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 11"
      "60 08 27 a1 00 28 06 3f fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 02 fd 00 01 98 00 18"
      "00 00 00 00 00 00 00 00 01 00 dd 96 00 50 71 a7 48 16 00 00 00 00 a0 02 fd 20 61 e9 00 00"
      "02 04 05 a0 04 02 08 0a ee e4 64 1a 00 00 00 00 01 03 03 0a");
  CHECK(to_hex(encap(frames[2], tun_cfg(tunnel_type::ipip, "fd00:198:18::fe"), "fd00:198:18::11")) ==
        to_hex(expected));
}

TEST_CASE("tunnel_encapsulate: GUE and GRE, with and without checksums, byte for byte") {
  auto frames = capture_frames("client-vip-http.pcap");
  REQUIRE(frames.size() > 3);
  struct fixture {
    tunnel_type type;
    bool checksum;
    const char* outer;  // Ethernet + outer IPv4 + UDP/GUE or GRE
  };
  // GUE (ipvs-notes 0A): UDP to port 6080 (0x17c0), source port pinned to 0xbeef here (a per-flow
  // hash otherwise), length 8 + 4 + 60 = 72, checksum 0 or the full UDP checksum 0x2836, then
  // 00 04 00 00 (version 0, hlen 0, proto 4, flags 0); outer protocol 17, total 92, checksum 0xae63.
  // GRE: 00 00 08 00 (outer total 84, protocol 47, checksum 0xae4d), or with the C bit
  // 80 00 08 00 + checksum 0x04b9 (RFC 1071 over GRE header and payload) + reserved 00 00.
  const fixture fixtures[] = {
      {tunnel_type::gue, false,
       "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 5c 00 00 40 00 3f 11 ae 63 c6 12 00 fe"
       "c6 12 00 0b be ef 17 c0 00 48 00 00 00 04 00 00"},
      {tunnel_type::gue, true,
       "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 5c 00 00 40 00 3f 11 ae 63 c6 12 00 fe"
       "c6 12 00 0b be ef 17 c0 00 48 28 36 00 04 00 00"},
      {tunnel_type::gre, false,
       "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 54 00 00 40 00 3f 2f ae 4d c6 12 00 fe"
       "c6 12 00 0b 00 00 08 00"},
      {tunnel_type::gre, true,
       "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 58 00 00 40 00 3f 2f ae 49 c6 12 00 fe"
       "c6 12 00 0b 80 00 08 00 04 b9 00 00"},
  };
  for (const auto& fx : fixtures) {
    CAPTURE(static_cast<int>(fx.type));
    CAPTURE(fx.checksum);
    auto cfg = tun_cfg(fx.type, "198.18.0.254");
    cfg.checksum = fx.checksum ? forward::tunnel_checksum::csum : forward::tunnel_checksum::none;
    cfg.gue_src_port_min = cfg.gue_src_port_max = 0xbeef;
    const bytes expected = hex_bytes(std::string(fx.outer) + syn_inner_ttl63);
    CHECK(to_hex(encap(frames[2], cfg, "198.18.0.11")) == to_hex(expected));
  }
}

TEST_CASE("tunnel_encapsulate: GUE source port is per flow and in range; ECN CE becomes ECT(0)") {
  auto cfg = tun_cfg(tunnel_type::gue, "198.18.0.254");
  std::set<std::uint16_t> ports;
  for (std::uint16_t sp = 1000; sp < 1064; ++sp) {
    const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.tos = 0xbb}).udp(sp, 53).build();
    auto a = encap(in, cfg, "198.18.0.11");
    auto b = encap(in, cfg, "198.18.0.11");
    const std::uint16_t port = static_cast<std::uint16_t>((std::to_integer<unsigned>(a[34]) << 8) | std::to_integer<unsigned>(a[35]));
    CHECK(port >= 32768);
    CHECK(port <= 60999);
    CHECK(a[34] == b[34]);  // stable per flow (the outer IDs differ: the inner packet has no DF)
    CHECK(a[35] == b[35]);
    ports.insert(port);
    // Inner TOS 0xbb = DSCP 46 | CE (0b11): outer 0xba (ECT(0)); the inner keeps 0xbb.
    CHECK(a[15] == std::byte{0xba});
    CHECK(a[14 + 32 + 1] == std::byte{0xbb});
  }
  CHECK(ports.size() > 50);  // different flows spread over the range
}

TEST_CASE("tunnel_encapsulate: mixed families and the outer DF / ID rule") {
  // IPv6 inside IPv4 (protocol 41): no DF outside, the ID the caller gives.
  const bytes v6 = packet_builder{}.eth().ipv6("fd00::2", "fd00::100", {.traffic_class = 0x20}).udp(1, 2).payload(3).build();
  guarded_frame g(v6, 64);
  auto pkt = wire::parse(g.buf.frame());
  auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip("198.18.0.11"), tun_cfg(tunnel_type::ipip, "198.18.0.254"), {}, 0x1234);
  REQUIRE(r);
  auto outer = wire::parse(r->frame);
  REQUIRE(outer);
  CHECK(outer->is_ipv4());
  CHECK(outer->protocol() == 41);
  CHECK(outer->ipv4().ident() == 0x1234);
  CHECK_FALSE(outer->ipv4().dont_frag());
  CHECK(outer->ipv4().tos() == 0x20);
  CHECK(outer->ipv4().ttl() == 63);
  CHECK(outer->ipv4().verify_checksum());
  // IPv4 without DF inside IPv6: next header 4.
  const bytes v4 = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.ident = 9}).udp(1, 2).build();
  auto out = encap(v4, tun_cfg(tunnel_type::ipip, "fd00::fe"), "fd00::11");
  auto o6 = wire::parse(out);
  REQUIRE(o6);
  CHECK(o6->is_ipv6());
  CHECK(o6->protocol() == 4);
  CHECK(o6->ipv6().hop_limit() == 63);
  CHECK(o6->ipv6().flow_label() == 0);
  // The real server's family must be the local address's.
  guarded_frame g2(v4, 64);
  auto p2 = wire::parse(g2.buf.frame());
  auto bad = forward::tunnel_encapsulate(g2.buf, *p2, ip("fd00::11"), tun_cfg(tunnel_type::ipip, "198.18.0.254"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == forward_error::family_mismatch);
  auto gue0 = tun_cfg(tunnel_type::gue, "198.18.0.254");
  gue0.gue_port = 0;
  auto bad2 = forward::tunnel_encapsulate(g2.buf, *p2, ip("198.18.0.11"), gue0);
  REQUIRE_FALSE(bad2);
  CHECK(bad2.error() == forward_error::bad_config);
}

TEST_CASE("tunnel_encapsulate: over the MTU with DF, the frag-needed answer, byte for byte") {
  // Hand-made: a 100-byte IP packet with DF, client -> VIP, TCP ACK with 60 bytes of 0x5a.
  const bytes in = hex_bytes(
      "02 00 c6 12 00 0a 02 00 c6 12 00 02 08 00 45 00 00 64 00 07 40 00 40 06 ae 02 c6 12 00 02"
      "c6 12 00 64 9c 40 00 50 00 00 00 01 00 00 00 02 50 10 ff ff ef e3 00 00" + [] {
        std::string s;
        for (int i = 0; i < 60; ++i) s += " 5a";
        return s;
      }());
  REQUIRE(in.size() == 114);
  // IPIP with MTU 100: the threshold is 100 - 20 = 80 < 100, DF set -> answer (ipvs-notes 0A):
  // to the client's MAC from the director's; IPv4 TOS 0xc0, total 20 + 8 + 100 = 128, ID from the
  // generator (0 shown here; patched below with the checksum), DF 0, TTL 64, protocol 1,
  // checksum 0xed32 for ID 0, VIP -> client; ICMP 3/4, checksum 0x898d, unused 0, next-hop MTU
  // 80 (0x0050); quote = the whole packet with TTL 63 (checksum 0xaf02).
  std::string exp =
      "02 00 c6 12 00 02 02 00 c6 12 00 fe 08 00 45 c0 00 80 00 00 00 00 40 01 ed 32 c6 12 00 64"
      "c6 12 00 02 03 04 89 8d 00 00 00 50 45 00 00 64 00 07 40 00 3f 06 af 02 c6 12 00 02 c6 12"
      "00 64 9c 40 00 50 00 00 00 01 00 00 00 02 50 10 ff ff ef e3 00 00";
  for (int i = 0; i < 60; ++i) exp += " 5a";
  bytes expected = hex_bytes(exp);
  // The answer's ID: the next one of the configured generator for VIP -> client, ICMP (a twin
  // generator with the same seed predicts it); the IP checksum follows it.
  forward::ip_id_generator ids{7}, twin{7};
  const std::uint16_t id = twin.next(ip("198.18.0.100"), ip("198.18.0.2"), wire::ip_proto::icmp);
  expected[14 + 4] = std::byte(id >> 8);
  expected[14 + 5] = std::byte(id & 0xFF);
  expected[14 + 10] = expected[14 + 11] = std::byte{0};
  const std::uint16_t sum = inet_checksum(std::span<const std::byte>(expected).subspan(14, 20));
  expected[14 + 10] = std::byte(sum >> 8);
  expected[14 + 11] = std::byte(sum & 0xFF);
  guarded_frame g(in, 64);
  auto pkt = wire::parse(g.buf.frame());
  auto cfg = tun_cfg(tunnel_type::ipip, "198.18.0.254");
  cfg.mtu = 100;
  cfg.ip_ids = &ids;
  std::vector<std::byte> reply(forward::too_big_reply_len(*pkt));
  auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip("198.18.0.11"), cfg, reply);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::reply_icmp);
  CHECK(r->mtu == 80);  // the threshold the answer announces
  CHECK(r->l3_offset == 14);
  CHECK(to_hex(r->frame) == to_hex(expected));
  CHECK(to_bytes(g.buf.frame()) == in);  // not forwarded, not modified
  // A reply buffer one byte short: named error, nothing written past it (ASan).
  std::vector<std::byte> short_reply(reply.size() - 1);
  auto r2 = forward::tunnel_encapsulate(g.buf, *pkt, ip("198.18.0.11"), cfg, short_reply);
  REQUIRE_FALSE(r2);
  CHECK(r2.error() == forward_error::too_big);
  // MTU so small the threshold is under 68: dropped with a name, as IPVS does.
  cfg.mtu = 80;
  auto r3 = forward::tunnel_encapsulate(g.buf, *pkt, ip("198.18.0.11"), cfg, reply);
  REQUIRE_FALSE(r3);
  CHECK(r3.error() == forward_error::mtu_too_small);
}

TEST_CASE("tunnel_encapsulate: IPv6 over the MTU gets packet too big with a 1232-byte quote") {
  const bytes in = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                       .ipv6("fd00:198:18::2", "fd00:198:18::100")
                       .tcp(40000, 80, wire::tcp_flags::ack)
                       .payload(1401, 0x77)
                       .build();
  guarded_frame g(in, 64);
  auto pkt = wire::parse(g.buf.frame());
  auto cfg = tun_cfg(tunnel_type::ipip, "fd00:198:18::fe");
  cfg.mtu = 1500;  // IP size 40 + 20 + 1401 = 1461 > 1500 - 40 = 1460
  std::vector<std::byte> reply(2000);
  auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip("fd00:198:18::11"), cfg, reply);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::reply_icmp);
  // 14 + 1280 bytes: IPv6 header (payload 1240, next header 58, hop limit 64, VIP6 -> client),
  // ICMPv6 2/0 with MTU 1460, and the first 1232 bytes of the packet with hop limit 63.
  REQUIRE(r->frame.size() == 14 + 1280);
  bytes head = hex_bytes(
      "02 00 c6 12 00 02 02 00 c6 12 00 fe 86 dd 60 00 00 00 04 d8 3a 40"
      "fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 02"
      "02 00");
  CHECK(to_hex(r->frame.first(head.size())) == to_hex(head));
  CHECK(to_hex(r->frame.subspan(58, 4)) == "00 00 05 b4");
  bytes quote(in.begin() + 14, in.begin() + 14 + 1232);
  quote[7] = std::byte{63};
  CHECK(to_bytes(r->frame.subspan(62)) == quote);
  auto parsed = wire::parse(r->frame);
  REQUIRE(parsed);
  wire::ipv6_address s = parsed->ipv6().src(), d = parsed->ipv6().dst();
  CHECK(wire::pseudo_header_v6(s, d, 58, 1240).add(std::span<const std::byte>(r->frame.subspan(54))).verifies());
}

TEST_CASE("tunnel: encapsulate then decapsulate gives back the original bytes exactly") {
  const char* locals[] = {"198.18.0.254", "fd00:198:18::fe"};
  const char* reals[] = {"198.18.0.11", "fd00:198:18::11"};
  const tunnel_type types[] = {tunnel_type::ipip, tunnel_type::gue, tunnel_type::gre};
  for (bool inner6 : {false, true}) {
    packet_builder b;
    b.eth(mac("02:00:c6:12:00:0a"), client_mac).vlan(100);
    if (inner6) b.ipv6("fd00:198:18::2", "fd00:198:18::100"); else b.ipv4("198.18.0.2", "198.18.0.100", {.ident = 3, .dont_frag = true});
    const bytes in = b.tcp(40000, 80, wire::tcp_flags::psh | wire::tcp_flags::ack).payload("GET / HTTP/1.1\r\n\r\n").build();
    for (int outer = 0; outer < 2; ++outer) {
      for (auto t : types) {
        for (bool csum : {false, true}) {
          CAPTURE(inner6);
          CAPTURE(outer);
          CAPTURE(static_cast<int>(t));
          CAPTURE(csum);
          auto cfg = tun_cfg(t, locals[outer]);
          cfg.checksum = csum ? forward::tunnel_checksum::csum : forward::tunnel_checksum::none;
          cfg.decrement_ttl = false;
          cfg.rewrite_l2 = false;  // keep the client's MACs and the tag: only the tunnel differs
          auto wrapped = encap(in, cfg, reals[outer]);
          // Real-server side, as a frame: the L2 header moves back to the inner packet.
          guarded_frame g(wrapped, 0);
          forward::decap_config dc;
          dc.gue_port = 6080;
          auto r = forward::decapsulate_frame(g.buf, dc);
          REQUIRE(r);
          CHECK(to_hex(r->frame) == to_hex(in));
          // And as an IP packet from a raw socket / tun device.
          bytes ip_only(wrapped.begin() + 18, wrapped.end());
          auto d = forward::decapsulate(ip_only, dc);
          REQUIRE(d);
          CHECK(d->type == t);
          CHECK(d->outer_src == ip(locals[outer]));
          CHECK(d->outer_dst == ip(reals[outer]));
          CHECK(to_hex(d->inner) == to_hex(std::span<const std::byte>(in).subspan(18)));
        }
      }
    }
  }
}

TEST_CASE("tunnel_encapsulate: too little headroom is an error and nothing is written") {
  const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).payload(10).build();
  for (auto t : {tunnel_type::ipip, tunnel_type::gue, tunnel_type::gre}) {
    auto cfg = tun_cfg(t, "198.18.0.254");
    const std::size_t need = forward::encapsulation_overhead(cfg);
    for (std::size_t head = 0; head < need; ++head) {
      guarded_frame g(in, head, 0);
      auto pkt = wire::parse(g.buf.frame());
      auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip("198.18.0.11"), cfg);
      REQUIRE_FALSE(r);
      CHECK(r.error() == forward_error::no_headroom);
      CHECK(to_bytes(g.buf.frame()) == in);
      CHECK(g.guard_damage(g.buf.frame(), in.size()) == 0);
    }
    guarded_frame ok(in, need, 0);
    auto pkt = wire::parse(ok.buf.frame());
    auto r = forward::tunnel_encapsulate(ok.buf, *pkt, ip("198.18.0.11"), cfg);
    REQUIRE(r);
    CHECK(r->frame.data() == ok.storage.data());  // used exactly the headroom
  }
}

TEST_CASE("decapsulate: every truncation of a tunnel packet is refused by name, never read past") {
  const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).payload(9).build();
  for (auto t : {tunnel_type::ipip, tunnel_type::gue, tunnel_type::gre}) {
    auto cfg = tun_cfg(t, "198.18.0.254");
    cfg.checksum = forward::tunnel_checksum::csum;
    auto wrapped = encap(in, cfg, "198.18.0.11");
    bytes ip_only(wrapped.begin() + 14, wrapped.end());
    for (std::size_t n = 0; n < ip_only.size(); ++n) {
      CAPTURE(n);
      std::vector<std::byte> cut(ip_only.begin(), ip_only.begin() + static_cast<std::ptrdiff_t>(n));
      forward::decap_config dc;
      dc.gue_port = 6080;
      auto d = forward::decapsulate(cut, dc);
      REQUIRE_FALSE(d);
      CHECK((d.error() == forward_error::truncated || d.error() == forward_error::tunnel_length_mismatch));
    }
  }
}

TEST_CASE("decapsulate: tunnel headers that lie about lengths, or are not tunnels") {
  const bytes inner = packet_builder{}.ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).payload(8).build();
  forward::decap_config dc;
  dc.gue_port = 6080;
  auto expect = [&](bytes pkt, forward_error want) {
    auto d = forward::decapsulate(pkt, dc);
    REQUIRE_FALSE(d);
    CHECK(to_string(d.error()) == to_string(want));
  };
  // GUE hlen 15 (60 bytes of options) in a datagram that has far fewer.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6080).raw(hex_bytes("0f 04 00 00"), 0).payload(inner).build(),
         forward_error::tunnel_length_mismatch);
  // GUE control message, and GUE version 2.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6080).raw(hex_bytes("20 04 00 00"), 0).payload(inner).build(),
         forward_error::bad_tunnel_header);
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6080).raw(hex_bytes("80 04 00 00"), 0).payload(inner).build(),
         forward_error::bad_tunnel_header);
  // GUE carrying protocol 17.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6080).raw(hex_bytes("00 11 00 00"), 0).payload(inner).build(),
         forward_error::unsupported_inner_protocol);
  // UDP to another port is not GUE.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6081).raw(hex_bytes("00 04 00 00"), 0).payload(inner).build(),
         forward_error::not_tunnel);
  // GRE with the key bit but no key bytes after the header... and an inner packet cut short.
  {
    bytes body = hex_bytes("20 00 08 00");
    expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 47}).payload(body).build(),
           forward_error::tunnel_length_mismatch);
  }
  // GRE routing bit (RFC 1701) and version 1 (PPTP).
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 47}).payload(hex_bytes("40 00 08 00")).payload(inner).build(),
         forward_error::bad_tunnel_header);
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 47}).payload(hex_bytes("00 01 08 00")).payload(inner).build(),
         forward_error::bad_tunnel_header);
  // GRE with a wrong checksum.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 47}).payload(hex_bytes("80 00 08 00 12 34 00 00")).payload(inner).build(),
         forward_error::bad_tunnel_checksum);
  // IPIP whose inner total length claims more than is there, or less.
  {
    bytes longer = inner;
    longer[3] = std::byte{static_cast<unsigned char>(std::to_integer<unsigned>(longer[3]) + 4)};
    expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 4}).payload(longer).build(),
           forward_error::tunnel_length_mismatch);
    bytes padded = inner;
    padded.resize(inner.size() + 4);
    expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 4}).payload(padded).build(),
           forward_error::tunnel_length_mismatch);
  }
  // IPIP (protocol 4) carrying IPv6.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 4})
             .payload(packet_builder{}.ipv6("fd00::1", "fd00::2").udp(1, 2).build())
             .build(),
         forward_error::bad_tunnel_header);
  // Outer total length larger than the bytes: the outer header lies.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11", {.protocol = 4, .total_len = 200}).payload(inner).build(),
         forward_error::tunnel_length_mismatch);
  // UDP length shorter than the datagram the IP header carries.
  expect(packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6080, {.length = 12}).raw(hex_bytes("00 04 00 00"), 0).payload(inner).build(),
         forward_error::tunnel_length_mismatch);
  // A wrong UDP checksum on GUE.
  {
    bytes p = packet_builder{}.ipv4("198.18.0.254", "198.18.0.11").udp(40000, 6080).raw(hex_bytes("00 04 00 00"), 0).payload(inner).build();
    p[26] = std::byte{static_cast<unsigned char>(std::to_integer<unsigned>(p[26]) ^ 0x40u)};
    expect(p, forward_error::bad_tunnel_checksum);
  }
  // Plain TCP is not a tunnel.
  expect(packet_builder{}.ipv4("198.18.0.2", "198.18.0.11").tcp(1, 2, 2).build(), forward_error::not_tunnel);
}
}

TEST_SUITE("forward") {
TEST_CASE("tunnel_encapsulate: an unset local address is a bad_config, not an outer source 0.0.0.0") {
  const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).payload(10).build();
  for (const char* real : {"198.18.0.11", "fd00:198:18::11"}) {
    CAPTURE(real);
    forward::tunnel_config cfg;  // local left as it is
    cfg.l2 = {director_mac, real_mac, {}};
    guarded_frame g(in, 64);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip(real), cfg);
    REQUIRE_FALSE(r);
    CHECK(r.error() == forward_error::bad_config);
    CHECK(to_bytes(g.buf.frame()) == in);
    cfg.local = ip("::");
    auto r6 = forward::tunnel_encapsulate(g.buf, *pkt, ip(real), cfg);
    REQUIRE_FALSE(r6);
    CHECK(r6.error() == forward_error::bad_config);
  }
}

TEST_CASE("tunnel_encapsulate: outer IPv4 IDs are generated per destination unless given or DF") {
  const bytes nodf = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.ident = 9}).udp(1, 2).payload(10).build();
  auto outer_id = [&](const bytes& in, const forward::tunnel_config& cfg, const char* real,
                      std::optional<std::uint16_t> id = std::nullopt) {
    guarded_frame g(in, 64);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip(real), cfg, {}, id);
    REQUIRE(r);
    auto o = wire::parse(r->frame);
    REQUIRE(o);
    CHECK(o->ipv4().verify_checksum());
    return o->ipv4().ident();
  };
  // Default: the shared generator, so consecutive packets to one real server get different IDs
  // (before: always 0, which breaks reassembly of anything fragmented later; RFC 6864).
  auto cfg = tun_cfg(tunnel_type::ipip, "198.18.0.254");
  const auto a = outer_id(nodf, cfg, "198.18.0.11");
  const auto b = outer_id(nodf, cfg, "198.18.0.11");
  CHECK(a != b);
  CHECK(static_cast<std::uint16_t>(a + 1) == b);  // one counter per (source, destination, protocol)
  // A generator of one's own gives reproducible IDs: the next value of its counter.
  forward::ip_id_generator mine{1}, twin{1};
  cfg.ip_ids = &mine;
  for (int i = 0; i < 3; ++i)
    CHECK(outer_id(nodf, cfg, "198.18.0.11") == twin.next(ip("198.18.0.254"), ip("198.18.0.11"), wire::ip_proto::ipip));
  // The caller's explicit ID wins; with DF inside, the outer ID is 0 as in the kernel.
  CHECK(outer_id(nodf, cfg, "198.18.0.11", 0x1234) == 0x1234);
  CHECK(outer_id(nodf, cfg, "198.18.0.11", 0) == 0);
  const bytes df = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.dont_frag = true}).udp(1, 2).build();
  CHECK(outer_id(df, cfg, "198.18.0.11") == 0);
}

TEST_CASE("ip_id_generator: one counter per (source, destination, protocol), seeded, shared default") {
  forward::ip_id_generator g{5};
  const auto s = ip("198.18.0.254"), d1 = ip("198.18.0.11"), d2 = ip("198.18.0.12");
  const auto first = g.next(s, d1, wire::ip_proto::udp);
  for (std::uint16_t i = 1; i < 100; ++i) CHECK(g.next(s, d1, wire::ip_proto::udp) == static_cast<std::uint16_t>(first + i));
  forward::ip_id_generator other{6};
  CHECK(other.next(s, d1, wire::ip_proto::udp) != first);  // the seed moves the start
  // Another destination has its own counter (with 2048 buckets these two do not share one).
  forward::ip_id_generator h{5};
  CHECK(h.next(s, d1, wire::ip_proto::udp) == first);
  (void)h.next(s, d2, wire::ip_proto::udp);
  CHECK(h.next(s, d1, wire::ip_proto::udp) == static_cast<std::uint16_t>(first + 1));
  CHECK(&forward::ip_ids_or_default(nullptr) == &forward::default_ip_id_generator());
  CHECK(&forward::ip_ids_or_default(&h) == &h);
}

TEST_CASE("tunnel_encapsulate: --tun-remcsum writes --tun-csum's bytes for GUE and is GUE's only") {
  // ipvs-notes 0A: "--tun-csum (and --tun-remcsum) write a full checksum". Forwarded packets have
  // complete inner checksums, so remote checksum offload has nothing to offload.
  auto frames = capture_frames("client-vip-http.pcap");
  REQUIRE(frames.size() > 3);
  auto csum = tun_cfg(tunnel_type::gue, "198.18.0.254");
  csum.checksum = forward::tunnel_checksum::csum;
  auto rem = csum;
  rem.checksum = forward::tunnel_checksum::remcsum;
  CHECK(to_hex(encap(frames[2], rem, "198.18.0.11")) == to_hex(encap(frames[2], csum, "198.18.0.11")));
  CHECK(forward::encapsulation_overhead(rem) == forward::encapsulation_overhead(csum));
  for (auto t : {tunnel_type::ipip, tunnel_type::gre}) {
    auto bad = tun_cfg(t, "198.18.0.254");
    bad.checksum = forward::tunnel_checksum::remcsum;
    guarded_frame g(frames[2], 64);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::tunnel_encapsulate(g.buf, *pkt, ip("198.18.0.11"), bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == forward_error::bad_config);
  }
}
}
