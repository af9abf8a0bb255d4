// The director's own ICMP answers and the rule for them: RFC 1122 3.2.2 / RFC 4443 2.4(e) as
// may_send_icmp_error_about() and as every method's MTU rule (DR, TUN, NAT; IPv4 and IPv6), port
// unreachable and echo reply byte for byte (expected frames made by the test packet builder, whose
// checksums are its own reference sums), their knobs and errors, and tshark's opinion of them.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "forward/forward_test_support.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/icmp_reply.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;
using forward::forward_error;

namespace {

const wire::mac_address broadcast_mac = mac("ff:ff:ff:ff:ff:ff");
const wire::mac_address multicast_mac = mac("01:00:5e:00:00:01");

struct addrs {
  const char* client;
  const char* vip;
};

// A frame `src` -> `dst` (either family) of `ip_len` IP bytes: TCP ACK, DF for IPv4; or, with
// `icmp_error`, an ICMP(v6) port unreachable quoting a VIP -> client UDP datagram.
bytes frame(bool v6, const char* src, const char* dst, std::size_t ip_len, bool icmp_error = false,
            wire::mac_address eth_dst = mac("02:00:c6:12:00:0a"), std::uint16_t frag_units = 0) {
  packet_builder b;
  b.eth(eth_dst, client_mac);
  const std::size_t ip_hdr = v6 ? 40 : 20;
  if (v6)
    b.ipv6(src, dst);
  else
    b.ipv4(src, dst, {.ident = 0x4242, .dont_frag = true, .frag_offset = frag_units});
  if (v6 && frag_units != 0) b.fragment6(frag_units, false);
  const std::size_t frag_hdr = v6 && frag_units != 0 ? 8 : 0;
  if (icmp_error) {
    packet_builder q;
    if (v6) q.ipv6(dst, src, {.hop_limit = 63}); else q.ipv4(dst, src, {.ttl = 63});
    q.udp(53, 40000).payload(ip_len - ip_hdr - 8 - ip_hdr - 8, 0x33);
    b.icmp(v6 ? 1 : 3, v6 ? 4 : 3).quote(q);
  } else if (frag_units != 0) {
    b.payload(ip_len - ip_hdr - frag_hdr, 0x44);
  } else {
    b.tcp(40000, 80, wire::tcp_flags::ack).payload(ip_len - ip_hdr - 20, 0x55);
  }
  return b.build();
}

enum class method { dr, tun, nat };

// Runs `m` on `in` with an egress MTU 100 bytes under the packet's size.
forward::forward_result run_method(method m, const bytes& in, bool v6, const char* client, const char* vip,
                                   std::vector<std::byte>& reply) {
  guarded_frame g(in, 64);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  const std::size_t mtu = pkt->l3_len() - 100;
  switch (m) {
    case method::dr: {
      forward::dr_config c;
      c.l2 = {director_mac, real_mac, {}};
      c.mtu = mtu;
      return forward::direct_route(g.buf, *pkt, c, reply);
    }
    case method::tun: {
      forward::tunnel_config c;
      c.local = ip(v6 ? "fd00:198:18::fe" : "198.18.0.254");
      c.l2 = {director_mac, real_mac, {}};
      c.mtu = mtu + 40;
      return forward::tunnel_encapsulate(g.buf, *pkt, ip(v6 ? "fd00:198:18::11" : "198.18.0.11"), c, reply);
    }
    case method::nat: {
      auto c = to_real();
      c.mtu = mtu;
      const std::uint16_t cport = pkt->is_icmp_error() ? 40000 : pkt->key().src_port;
      const std::uint16_t vport = pkt->is_icmp_error() ? 53 : pkt->key().dst_port;
      forward::nat_connection conn{{ip(client), cport}, {ip(vip), vport}, {ip(v6 ? "fd00:198:18::11" : "198.18.0.11"), vport}};
      return forward::nat_inbound(g.buf, *pkt, conn, c, reply);
    }
  }
  return unexpected{forward_error::none};
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("may_send_icmp_error_about: RFC 1122 3.2.2 and RFC 4443 2.4(e), case by case") {
  auto allowed = [](const bytes& b, forward::icmp_error_kind k = forward::icmp_error_kind::other) {
    auto p = wire::parse(std::span<const std::byte>(b));
    REQUIRE(p);
    return forward::may_send_icmp_error_about(*p, k);
  };
  // Ordinary unicast packets: yes.
  CHECK(allowed(frame(false, "198.18.0.2", "198.18.0.100", 200)));
  CHECK(allowed(frame(true, "fd00:198:18::2", "fd00:198:18::100", 200)));
  // ICMP errors: never.
  CHECK_FALSE(allowed(frame(false, "198.18.0.2", "198.18.0.100", 200, true)));
  CHECK_FALSE(allowed(frame(true, "fd00:198:18::2", "fd00:198:18::100", 200, true)));
  CHECK_FALSE(allowed(frame(true, "fd00:198:18::2", "fd00:198:18::100", 200, true), forward::icmp_error_kind::packet_too_big));
  // ICMP messages that are not errors (echo) may be answered with one; an ICMPv6 type below 128
  // that RFC 4443 does not define (here 100) is an error message all the same, 137 (redirect) too.
  CHECK(allowed(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").icmp_echo(true, 1, 1).build()));
  CHECK_FALSE(allowed(packet_builder{}.eth().ipv6("fd00::2", "fd00::100").icmp(100, 0).payload(8).build()));
  CHECK_FALSE(allowed(packet_builder{}.eth().ipv6("fd00::2", "fd00::100").icmp(137, 0).payload(32).build()));
  CHECK(allowed(packet_builder{}.eth().ipv6("fd00::2", "fd00::100").icmp_echo(true, 1, 1).build()));
  // Non-first fragments: never; a first fragment: yes.
  CHECK_FALSE(allowed(frame(false, "198.18.0.2", "198.18.0.100", 200, false, mac("02:00:c6:12:00:0a"), 100)));
  CHECK_FALSE(allowed(frame(true, "fd00:198:18::2", "fd00:198:18::100", 200, false, mac("02:00:c6:12:00:0a"), 100)));
  CHECK(allowed(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.more_frags = true}).udp(1, 2).payload(64).build()));
  // Sources that are not one host.
  for (const char* s : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.1.2.3", "240.0.0.1", "255.255.255.255"}) {
    CAPTURE(s);
    CHECK_FALSE(allowed(frame(false, s, "198.18.0.100", 200)));
  }
  for (const char* s : {"::", "::1", "ff02::1", "ff0e::1:2"}) {
    CAPTURE(s);
    CHECK_FALSE(allowed(frame(true, s, "fd00:198:18::100", 200)));
    CHECK_FALSE(allowed(frame(true, s, "fd00:198:18::100", 200), forward::icmp_error_kind::packet_too_big));
  }
  // Group destinations and link-layer broadcast / multicast: never for IPv4; for IPv6 only
  // Packet Too Big may answer them (RFC 4443 2.4(e.3)-(e.5)).
  CHECK_FALSE(allowed(frame(false, "198.18.0.2", "255.255.255.255", 200)));
  CHECK_FALSE(allowed(frame(false, "198.18.0.2", "224.0.0.251", 200)));
  CHECK_FALSE(allowed(frame(false, "198.18.0.2", "198.18.0.100", 200, false, broadcast_mac)));
  CHECK_FALSE(allowed(frame(false, "198.18.0.2", "198.18.0.100", 200, false, multicast_mac),
                      forward::icmp_error_kind::packet_too_big));
  CHECK_FALSE(allowed(frame(true, "fd00:198:18::2", "ff05::2", 200)));
  CHECK(allowed(frame(true, "fd00:198:18::2", "ff05::2", 200), forward::icmp_error_kind::packet_too_big));
  CHECK_FALSE(allowed(frame(true, "fd00:198:18::2", "fd00:198:18::100", 200, false, mac("33:33:00:00:00:01"))));
  CHECK(allowed(frame(true, "fd00:198:18::2", "fd00:198:18::100", 200, false, mac("33:33:00:00:00:01")),
                forward::icmp_error_kind::packet_too_big));
  // Without Ethernet (parse_ip) only the IP rule applies.
  const bytes ip_only = packet_builder{}.ipv4("198.18.0.2", "198.18.0.100").udp(1, 2).build();
  auto p = wire::parse_ip(std::span<const std::byte>(ip_only));
  REQUIRE(p);
  CHECK(forward::may_send_icmp_error_about(*p));
}

TEST_CASE("MTU rule: DR, TUN and NAT answer no ICMP error, fragment, non-unicast source or L2 broadcast") {
  struct family_case {
    bool v6;
    addrs a;
    const char* multicast_src;
  };
  const family_case families[] = {{false, {"198.18.0.2", "198.18.0.100"}, "224.0.0.1"},
                                  {true, {"fd00:198:18::2", "fd00:198:18::100"}, "ff02::1"}};
  for (const auto& fc : families) {
    for (method m : {method::dr, method::tun, method::nat}) {
      CAPTURE(fc.v6);
      CAPTURE(static_cast<int>(m));
      std::vector<std::byte> reply(2000);
      // An ordinary over-MTU packet is answered: the control case.
      auto ok = run_method(m, frame(fc.v6, fc.a.client, fc.a.vip, 1400), fc.v6, fc.a.client, fc.a.vip, reply);
      REQUIRE(ok);
      CHECK(ok->action == forward::forward_action::reply_icmp);
      // An ICMP error about the connection, over the MTU: dropped, not answered (NAT used to
      // exempt it from the rule; DR and TUN used to answer it).
      auto err = run_method(m, frame(fc.v6, fc.a.client, fc.a.vip, 1400, true), fc.v6, fc.a.client, fc.a.vip, reply);
      REQUIRE_FALSE(err);
      CHECK(to_string(err.error()) == "too_big_no_reply");
      // From a multicast source (the answer would go to a group).
      auto mc = run_method(m, frame(fc.v6, fc.multicast_src, fc.a.vip, 1400), fc.v6, fc.multicast_src, fc.a.vip, reply);
      REQUIRE_FALSE(mc);
      CHECK(to_string(mc.error()) == "too_big_no_reply");
      // Arrived as link-layer broadcast: IPv4 no answer; IPv6 Packet Too Big still answers it.
      auto bc = run_method(m, frame(fc.v6, fc.a.client, fc.a.vip, 1400, false, broadcast_mac), fc.v6, fc.a.client,
                           fc.a.vip, reply);
      if (fc.v6) {
        REQUIRE(bc);
        CHECK(bc->action == forward::forward_action::reply_icmp);
      } else {
        REQUIRE_FALSE(bc);
        CHECK(to_string(bc.error()) == "too_big_no_reply");
      }
      // A non-first fragment (DR and TUN; NAT refuses fragments before any MTU rule).
      auto fr = run_method(m, frame(fc.v6, fc.a.client, fc.a.vip, 1400, false, mac("02:00:c6:12:00:0a"), 100), fc.v6,
                           fc.a.client, fc.a.vip, reply);
      REQUIRE_FALSE(fr);
      CHECK(to_string(fr.error()) == (m == method::nat ? "fragmented" : "too_big_no_reply"));
    }
  }
}

TEST_CASE("make_port_unreachable: IPv4 and IPv6, byte for byte, the kernel's form") {
  // ipvs-notes 0A: "answered with ICMP port unreachable from the VIP (TOS 0xc0, TTL 64, quoting
  // the SYN as received)". The quote keeps TTL 64: not decremented.
  const bytes syn4 = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                         .vlan(100, 3)
                         .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x4785, .dont_frag = true})
                         .tcp(35132, 80, wire::tcp_flags::syn, {.seq = 7})
                         .build();
  auto p4 = wire::parse(std::span<const std::byte>(syn4));
  REQUIRE(p4);
  const bytes quote4(syn4.begin() + 18, syn4.end());
  const bytes want4 = packet_builder{}.eth(client_mac, director_mac)
                          .vlan(100, 3)
                          .ipv4("198.18.0.100", "198.18.0.2", {.ttl = 64, .tos = 0xc0, .ident = 0x0badu})
                          .icmp(3, 3)
                          .payload(quote4)
                          .build();
  std::vector<std::byte> out(forward::port_unreachable_len(*p4));
  CHECK(out.size() == want4.size());
  auto r4 = forward::make_port_unreachable(out, *p4, {director_mac, 0x0bad, 0});
  REQUIRE(r4);
  CHECK(to_hex(*r4) == to_hex(want4));

  const bytes syn6 = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                         .ipv6("fd00:198:18::2", "fd00:198:18::100", {.flow_label = 0x827a1})
                         .tcp(56726, 80, wire::tcp_flags::syn)
                         .build();
  auto p6 = wire::parse(std::span<const std::byte>(syn6));
  REQUIRE(p6);
  const bytes want6 = packet_builder{}.eth(client_mac, director_mac)
                          .ipv6("fd00:198:18::100", "fd00:198:18::2", {.hop_limit = 64, .flow_label = 0x12345})
                          .icmp(1, 4)
                          .payload(std::span<const std::byte>(syn6).subspan(14))
                          .build();
  std::vector<std::byte> out6(forward::port_unreachable_len(*p6));
  auto r6 = forward::make_port_unreachable(out6, *p6, {director_mac, 0, 0x12345});
  REQUIRE(r6);
  CHECK(to_hex(*r6) == to_hex(want6));
}

TEST_CASE("make_port_unreachable: quotes as much as fits in 576 / 1280 bytes; refusals and buffer errors") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    const bytes big = frame(v6, v6 ? "fd00:198:18::2" : "198.18.0.2", v6 ? "fd00:198:18::100" : "198.18.0.100", 1500);
    auto p = wire::parse(std::span<const std::byte>(big));
    REQUIRE(p);
    const std::size_t ip_max = v6 ? 1280 : 576;
    CHECK(forward::port_unreachable_len(*p) == 14 + ip_max);
    std::vector<std::byte> out(2000);
    auto r = forward::make_port_unreachable(out, *p, {director_mac, 1, 0});
    REQUIRE(r);
    REQUIRE(r->size() == 14 + ip_max);
    const std::size_t hdr = v6 ? 48 : 28;
    CHECK(to_bytes(r->subspan(14 + hdr)) == bytes(big.begin() + 14, big.begin() + static_cast<std::ptrdiff_t>(14 + ip_max - hdr)));
    auto back = wire::parse(*r);
    REQUIRE(back);
    CHECK(back->is_icmp_error());
    CHECK(back->icmp_type() == (v6 ? 1 : 3));
    // Buffer errors: none at all, one byte short; nothing written past the buffer (ASan).
    std::vector<std::byte> none;
    CHECK(forward::make_port_unreachable(none, *p, {}).error() == forward_error::no_reply_buffer);
    std::vector<std::byte> short_buf(14 + ip_max - 1);
    CHECK(forward::make_port_unreachable(short_buf, *p, {}).error() == forward_error::too_big);
    // RFC 1122: not about an ICMP error, nor to a multicast source.
    const bytes err = frame(v6, v6 ? "fd00:198:18::2" : "198.18.0.2", v6 ? "fd00:198:18::100" : "198.18.0.100", 200, true);
    auto pe = wire::parse(std::span<const std::byte>(err));
    REQUIRE(pe);
    CHECK(forward::make_port_unreachable(out, *pe, {}).error() == forward_error::reply_not_allowed);
    const bytes mc = frame(v6, v6 ? "ff02::1" : "224.0.0.1", v6 ? "fd00:198:18::100" : "198.18.0.100", 200);
    auto pm = wire::parse(std::span<const std::byte>(mc));
    REQUIRE(pm);
    CHECK(forward::make_port_unreachable(out, *pm, {}).error() == forward_error::reply_not_allowed);
  }
}

TEST_CASE("make_echo_reply: IPv4 and IPv6 echo replies from the VIP, byte for byte") {
  const bytes ping4 = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                          .ipv4("198.18.0.2", "198.18.0.100", {.ttl = 61, .tos = 0x20, .ident = 0x1111, .dont_frag = true})
                          .icmp_echo(true, 0x110d, 1)
                          .payload("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL")
                          .build();
  auto p4 = wire::parse(std::span<const std::byte>(ping4));
  REQUIRE(p4);
  const bytes want4 = packet_builder{}.eth(client_mac, director_mac)
                          .ipv4("198.18.0.100", "198.18.0.2", {.ttl = 64, .tos = 0x20, .ident = 0x2222})
                          .icmp_echo(false, 0x110d, 1)
                          .payload("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL")
                          .build();
  std::vector<std::byte> out(forward::echo_reply_len(*p4));
  auto r4 = forward::make_echo_reply(out, *p4, {director_mac, 0x2222, 0});
  REQUIRE(r4);
  CHECK(to_hex(*r4) == to_hex(want4));

  const bytes ping6 = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                          .vlan(100)
                          .ipv6("fd00:198:18::2", "fd00:198:18::100", {.hop_limit = 60, .traffic_class = 0x28})
                          .icmp_echo(true, 7, 9)
                          .payload(56, 0x61)
                          .build();
  auto p6 = wire::parse(std::span<const std::byte>(ping6));
  REQUIRE(p6);
  const bytes want6 = packet_builder{}.eth(client_mac, director_mac)
                          .vlan(100)
                          .ipv6("fd00:198:18::100", "fd00:198:18::2", {.hop_limit = 64, .traffic_class = 0x28, .flow_label = 5})
                          .icmp_echo(false, 7, 9)
                          .payload(56, 0x61)
                          .build();
  std::vector<std::byte> out6(forward::echo_reply_len(*p6));
  auto r6 = forward::make_echo_reply(out6, *p6, {director_mac, 0, 5});
  REQUIRE(r6);
  CHECK(to_hex(*r6) == to_hex(want6));

  // Not an echo request; a fragment of one; from a multicast source; buffers.
  auto pr = wire::parse(std::span<const std::byte>(want4));
  REQUIRE(pr);
  CHECK(forward::make_echo_reply(out, *pr, {}).error() == forward_error::not_echo_request);
  const bytes frag = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.more_frags = true}).icmp_echo(true, 1, 1).payload(64).build();
  auto pf = wire::parse(std::span<const std::byte>(frag));
  REQUIRE(pf);
  CHECK(forward::make_echo_reply(out, *pf, {}).error() == forward_error::fragmented);
  const bytes mc = packet_builder{}.eth().ipv4("224.0.0.1", "198.18.0.100").icmp_echo(true, 1, 1).build();
  auto pm = wire::parse(std::span<const std::byte>(mc));
  REQUIRE(pm);
  CHECK(forward::make_echo_reply(out, *pm, {}).error() == forward_error::reply_not_allowed);
  std::vector<std::byte> none, short_buf(out.size() - 1);
  CHECK(forward::make_echo_reply(none, *p4, {}).error() == forward_error::no_reply_buffer);
  CHECK(forward::make_echo_reply(short_buf, *p4, {}).error() == forward_error::too_big);
}

TEST_CASE("MTU answers: the ID from the configured generator, the IPv6 flow label knob, the threshold") {
  forward::ip_id_generator ids{42}, twin{42};
  const bytes in = frame(false, "198.18.0.2", "198.18.0.100", 1400);
  guarded_frame g(in, 0);
  auto pkt = wire::parse(g.buf.frame());
  forward::dr_config c;
  c.l2 = {director_mac, real_mac, {}};
  c.mtu = 1300;
  c.ip_ids = &ids;
  std::vector<std::byte> reply(14 + 1280);
  for (int i = 0; i < 3; ++i) {
    auto r = forward::direct_route(g.buf, *pkt, c, reply);
    REQUIRE(r);
    CHECK(r->mtu == 1300);
    auto a = wire::parse(r->frame);
    REQUIRE(a);
    CHECK(a->ipv4().ident() == twin.next(ip("198.18.0.100"), ip("198.18.0.2"), wire::ip_proto::icmp));
  }
  const bytes in6 = frame(true, "fd00:198:18::2", "fd00:198:18::100", 1400);
  guarded_frame g6(in6, 0);
  auto pkt6 = wire::parse(g6.buf.frame());
  c.mtu = 1280;
  c.reply_flow_label = 0xabcde;
  auto r6 = forward::direct_route(g6.buf, *pkt6, c, reply);
  REQUIRE(r6);
  CHECK(r6->mtu == 1280);
  auto a6 = wire::parse(r6->frame);
  REQUIRE(a6);
  CHECK(a6->ipv6().flow_label() == 0xabcde);
  // make_too_big_reply takes the same knobs directly.
  std::vector<std::byte> out(forward::too_big_reply_len(*pkt6));
  forward::too_big_options o;
  o.src_mac = director_mac;
  o.flow_label = 0x00011;
  auto b = forward::make_too_big_reply(out, *pkt6, 1280, o);
  REQUIRE(b);
  CHECK(wire::parse(*b)->ipv6().flow_label() == 0x11);
}
}

// ---- tshark ------------------------------------------------------------------------------------

namespace {

namespace fs = std::filesystem;

bool tshark_available() {
  static const bool ok = std::system("tshark -v > /dev/null 2>&1") == 0;
  return ok;
}

// One line per frame: ip.checksum.status|icmp.checksum.status|icmpv6.checksum.status|icmp.type|icmpv6.type
std::vector<std::string> dissect_icmp(const std::vector<bytes>& frames) {
  const fs::path dir = fs::temp_directory_path() / ("l4lb_icmp_reply_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  io::pcap_writer w;
  std::int64_t t = 0;
  for (const auto& f : frames) w.add(t += 1000, f);
  const fs::path pcap = dir / "replies.pcap";
  std::vector<std::string> rows;
  if (w.save(pcap.string())) {
    const std::string cmd = "tshark -r '" + pcap.string() +
                            "' -o ip.check_checksum:TRUE -T fields -E separator='|' -e ip.checksum.status"
                            " -e icmp.checksum.status -e icmpv6.checksum.status -e icmp.type -e icmpv6.type 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    char line[4096];
    while (p != nullptr && fgets(line, sizeof line, p) != nullptr) {
      std::string s(line);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      rows.push_back(s);
    }
    if (p != nullptr) pclose(p);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rows;
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("ICMP answers: tshark finds every checksum good (port unreachable, echo reply, too big)") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: ICMP answer check skipped");
    return;
  }
  std::vector<bytes> frames;
  for (bool v6 : {false, true}) {
    const bytes syn = frame(v6, v6 ? "fd00:198:18::2" : "198.18.0.2", v6 ? "fd00:198:18::100" : "198.18.0.100", 1500);
    auto p = wire::parse(std::span<const std::byte>(syn));
    REQUIRE(p);
    std::vector<std::byte> out(2000);
    frames.push_back(to_bytes(*forward::make_port_unreachable(out, *p, {director_mac, 0x1234, 0x55})));
    frames.push_back(to_bytes(*forward::make_too_big_reply(out, *p, 1400, {director_mac, true, 0x99, 0})));
    packet_builder b;
    b.eth(mac("02:00:c6:12:00:0a"), client_mac);
    if (v6) b.ipv6("fd00:198:18::2", "fd00:198:18::100"); else b.ipv4("198.18.0.2", "198.18.0.100");
    const bytes ping = b.icmp_echo(true, 3, 4).payload(100, 0x77).build();
    auto pp = wire::parse(std::span<const std::byte>(ping));
    REQUIRE(pp);
    frames.push_back(to_bytes(*forward::make_echo_reply(out, *pp, {director_mac, 0x4321, 0})));
  }
  const auto rows = dissect_icmp(frames);
  REQUIRE(rows.size() == frames.size());
  // IPv4: outer and quoted IP headers good, ICMP good (status 1); IPv6: ICMPv6 good.
  CHECK(rows[0] == "1,1|1||3|");
  CHECK(rows[1] == "1,1|1||3|");
  CHECK(rows[2] == "1|1||0|");
  CHECK(rows[3] == "||1||1");
  CHECK(rows[4] == "||1||2");
  CHECK(rows[5] == "||1||129");
}
}
