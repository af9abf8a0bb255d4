// wire::parse / parse_ip: what a packet_view reports for real frames from the captures and for
// built packets covering VLAN/QinQ, IPv6 extension chains, fragments, ICMP errors and echo,
// SCTP, tunnels and unknown protocols. Expected values come from the header layouts (offsets
// are sums of header sizes) and from tshark's decoding of the same frames.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;
using l4lb::test::packet_builder;

namespace {
std::vector<std::byte> frame(const char* file, std::size_t number) {
  auto f = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
  REQUIRE(f);
  REQUIRE(f->records().size() >= number);
  auto d = f->records()[number - 1].data;  // tshark numbers frames from 1
  return {d.begin(), d.end()};
}
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("parse: IPv4 TCP SYN with options (client-vip-http.pcap frame 3)") {
    auto b = frame("client-vip-http.pcap", 3);
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->frame().size() == 74);
    CHECK(p->has_ethernet());
    CHECK(p->ethernet().src().to_string() == "02:00:c6:12:00:02");
    CHECK(p->vlan_count() == 0);
    CHECK(p->ethertype() == ethertype::ipv4);
    CHECK(p->is_ipv4());
    CHECK(p->l3_offset() == 14);
    CHECK(p->l3_len() == 60);  // IPv4 total length 0x3c
    CHECK(p->ip_header_len() == 20);
    CHECK(p->ipv4().ttl() == 64);
    CHECK_FALSE(p->has_ipv4_options());
    CHECK(p->protocol() == ip_proto::tcp);
    CHECK(p->l4_offset() == 34);
    CHECK(p->l4_len() == 40);
    CHECK(p->has_l4_header());
    CHECK(p->has_ports());
    CHECK(p->payload_offset() == 74);  // data offset 10 words
    CHECK(p->payload_len() == 0);
    CHECK(p->tcp_flags() == tcp_flags::syn);
    CHECK(p->tcp().mss() == 1460);
    CHECK(p->key().to_string() == "tcp 198.18.0.2:35132 -> 198.18.0.100:80");
    CHECK_FALSE(p->is_fragment());
    CHECK_FALSE(p->is_icmp_error());
    CHECK(p->icmp_type() == 0);
  }

  TEST_CASE("parse: Ethernet padding after a short IPv4 packet is not L3 or payload") {
    auto b = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").tcp(1000, 80, tcp_flags::ack).build();
    REQUIRE(b.size() == 54);
    b.resize(60, std::byte{0});  // the 60-byte Ethernet minimum
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->l3_len() == 40);
    CHECK(p->l4_len() == 20);
    CHECK(p->payload_len() == 0);
  }

  TEST_CASE("parse: one 802.1Q tag (vlan-tagged.pcap frame 86, tshark vlan.id 100)") {
    auto b = frame("vlan-tagged.pcap", 86);
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->vlan_count() == 1);
    CHECK(p->vlan_tpid(0) == ethertype::vlan);
    CHECK(p->vlan(0).vid() == 100);
    CHECK(p->vlan(0).ethertype() == ethertype::ipv4);
    CHECK(p->l3_offset() == 18);
    CHECK(p->protocol() == ip_proto::icmp);
    CHECK(p->icmp_type() == icmpv4_type::echo_request);
    // Echo: the identifier (tshark icmp.ident 4448) in both ports.
    CHECK(p->key().to_string() == "icmp 198.18.0.2:4448 -> 198.18.0.100:4448");
    CHECK(p->has_ports());
  }

  TEST_CASE("parse: QinQ S-tag + C-tag (vlan-tagged.pcap frame 130, tshark 200 / 300)") {
    auto b = frame("vlan-tagged.pcap", 130);
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->vlan_count() == 2);
    CHECK(p->vlan_tpid(0) == ethertype::qinq);
    CHECK(p->vlan(0).vid() == 200);
    CHECK(p->vlan_tpid(1) == ethertype::vlan);
    CHECK(p->vlan(1).vid() == 300);
    CHECK(p->l3_offset() == 22);
    CHECK(p->key().to_string() == "tcp 198.18.10.2:40436 -> 198.18.10.100:80");
    // A rewriter can retag through the view.
    p->vlan(1).set_vid(301);
    CHECK(b[18] == std::byte{0x01});
    CHECK(b[19] == std::byte{0x2d});
  }

  TEST_CASE("parse: the old 0x9100 S-tag is a tag too") {
    auto b = packet_builder{}.eth().vlan(7, 0, 0x9100).vlan(8).ipv4("198.18.0.1", "198.18.0.2").udp(1, 2).build();
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->vlan_count() == 2);
    CHECK(p->vlan_tpid(0) == 0x9100);
    CHECK(p->l3_offset() == 22);
  }

  TEST_CASE("parse: IPv6 with HBH, routing, dest opts, AH, then TCP") {
    auto b = packet_builder{}
                 .eth()
                 .ipv6("fd00::1", "fd00::100")
                 .hop_by_hop()
                 .routing()
                 .dest_opts(16)
                 .ah(24)
                 .tcp(40000, 443, tcp_flags::syn, {.options = hex_bytes("02 04 05 a0")})
                 .payload("x")
                 .build();
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->is_ipv6());
    CHECK(p->ip_header_len() == 40 + 8 + 8 + 16 + 24);
    CHECK(p->l4_offset() == 14 + 96);
    CHECK(p->protocol() == ip_proto::tcp);
    CHECK(p->payload_offset() == 14 + 96 + 24);
    CHECK(p->payload_len() == 1);
    CHECK(p->tcp().mss() == 1440);
    CHECK(p->key().to_string() == "tcp [fd00::1]:40000 -> [fd00::100]:443");
    CHECK_FALSE(p->is_fragment());
  }

  TEST_CASE("parse: a first fragment that ends inside its L4 header has no ports, and is kept") {
    // 8 bytes of TCP in the first fragment (RFC 791 allows it; the kernel reassembles first).
    auto tiny = packet_builder{}
                    .eth()
                    .ipv4("198.18.0.1", "198.18.0.2", {.ident = 9, .more_frags = true, .protocol = 6})
                    .payload(8)
                    .build();
    auto p = parse(tiny);
    REQUIRE(p);
    CHECK(p->is_first_fragment());
    CHECK_FALSE(p->has_l4_header());
    CHECK_FALSE(p->has_ports());
    // The same 8 bytes in an unfragmented packet are a truncated TCP header.
    auto whole = packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.2", {.protocol = 6}).payload(8).build();
    auto q = parse(whole);
    REQUIRE_FALSE(q);
    CHECK(q.error() == drop_reason::truncated_tcp);
  }

  TEST_CASE("parse: IPv4 fragments: first has ports, later ones have none") {
    // First fragment: MF, offset 0; the UDP length (8 + 2000) counts bytes still to come.
    auto first = packet_builder{}
                     .eth()
                     .ipv4("198.18.0.1", "198.18.0.2", {.ident = 9, .more_frags = true})
                     .udp(5000, 53, {.length = 2008})
                     .payload(1472)
                     .build();
    auto p = parse(first);
    REQUIRE(p);
    CHECK(p->is_fragment());
    CHECK(p->is_first_fragment());
    CHECK(p->more_fragments());
    CHECK(p->fragment_offset() == 0);
    CHECK(p->has_l4_header());
    CHECK(p->has_ports());
    CHECK(p->key().dst_port == 53);
    CHECK(p->payload_len() == 1472);  // bounded by the IP packet, not by the UDP length

    // Middle fragment: MF, offset 185 units = 1480 bytes: no UDP header here.
    auto middle = packet_builder{}
                      .eth()
                      .ipv4("198.18.0.1", "198.18.0.2", {.ident = 9, .more_frags = true, .frag_offset = 185, .protocol = 17})
                      .payload(16)
                      .build();
    auto m = parse(middle);
    REQUIRE(m);
    CHECK(m->is_fragment());
    CHECK_FALSE(m->is_first_fragment());
    CHECK(m->more_fragments());
    CHECK(m->fragment_offset() == 1480);
    CHECK(m->protocol() == ip_proto::udp);
    CHECK_FALSE(m->has_l4_header());
    CHECK_FALSE(m->has_ports());
    CHECK(m->key().src_port == 0);
    CHECK(m->key().dst_port == 0);
    CHECK(m->l4_offset() == 34);
    CHECK(m->payload_offset() == 34);
    CHECK(m->payload_len() == 16);

    // Last fragment: offset only.
    auto last = packet_builder{}
                    .eth()
                    .ipv4("198.18.0.1", "198.18.0.2", {.frag_offset = 370, .protocol = 17})
                    .payload(8)
                    .build();
    auto l = parse(last);
    REQUIRE(l);
    CHECK(l->is_fragment());
    CHECK_FALSE(l->more_fragments());
    CHECK(l->fragment_offset() == 2960);
    CHECK_FALSE(l->has_ports());
  }

  TEST_CASE("parse: IPv6 fragments, and an atomic fragment is not a fragment") {
    auto first = packet_builder{}.eth().ipv6("fd00::1", "fd00::2").fragment6(0, true).tcp(1, 2, 0).payload(100).build();
    auto f = parse(first);
    REQUIRE(f);
    CHECK(f->is_first_fragment());
    CHECK(f->has_ports());
    CHECK(f->l4_offset() == 14 + 48);

    auto later = packet_builder{}.eth().ipv6("fd00::1", "fd00::2").fragment6(13, false, 1, ip_proto::tcp).payload(20).build();
    auto l = parse(later);
    REQUIRE(l);
    CHECK(l->is_fragment());
    CHECK(l->fragment_offset() == 104);
    CHECK(l->protocol() == ip_proto::tcp);
    CHECK_FALSE(l->has_l4_header());
    CHECK(l->key().src_port == 0);

    // RFC 6946: offset 0 and M = 0 is a whole packet that happens to carry a fragment header.
    auto atomic = packet_builder{}.eth().ipv6("fd00::1", "fd00::2").fragment6(0, false).udp(7, 9).build();
    auto a = parse(atomic);
    REQUIRE(a);
    CHECK_FALSE(a->is_fragment());
    CHECK(a->has_ports());
    CHECK(a->key().dst_port == 9);
  }

  TEST_CASE("parse: ICMPv4 error and its quote (icmp.pcap frame 20)") {
    auto b = frame("icmp.pcap", 20);
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->protocol() == ip_proto::icmp);
    CHECK(p->icmp_type() == 3);
    CHECK(p->icmp_code() == 3);
    CHECK(p->is_icmp_error());
    CHECK_FALSE(p->has_ports());
    CHECK(p->key().to_string() == "icmp 198.18.0.100:0 -> 198.18.0.2:0");
    CHECK(p->quote_l3_offset() == 14 + 20 + 8);
    CHECK(p->quote_l4_offset() == 14 + 20 + 8 + 20);
    CHECK(p->quote_protocol() == ip_proto::udp);
    CHECK(p->quote_has_l4());
    CHECK(p->quote().size() == 60);  // outer total 88 - 20 - 8
    // tshark: quoted udp.srcport 40009, dstport 9, from the client to the VIP (as sent).
    CHECK(p->quoted_flow_key().to_string() == "udp 198.18.0.2:40009 -> 198.18.0.100:9");
  }

  TEST_CASE("parse: ICMPv6 error and its quote (icmp.pcap frame 24)") {
    auto b = frame("icmp.pcap", 24);
    auto p = parse(b);
    REQUIRE(p);
    CHECK(p->protocol() == ip_proto::icmpv6);
    CHECK(p->icmp_type() == 1);
    CHECK(p->icmp_code() == 4);
    CHECK(p->is_icmp_error());
    CHECK(p->quote_l3_offset() == 14 + 40 + 8);
    CHECK(p->quote_l4_offset() == 14 + 40 + 8 + 40);
    CHECK(p->quoted_flow_key().to_string() == "udp [fd00:198:18::2]:40011 -> [fd00:198:18::100]:9");
  }

  TEST_CASE("parse: an echo reply's key is the request's key reversed") {
    for (bool v6 : {false, true}) {
      packet_builder rq, rp;
      if (v6) {
        rq.eth().ipv6("fd00::2", "fd00::100");
        rp.eth().ipv6("fd00::100", "fd00::2");
      } else {
        rq.eth().ipv4("198.18.0.2", "198.18.0.100");
        rp.eth().ipv4("198.18.0.100", "198.18.0.2");
      }
      auto request = rq.icmp_echo(true, 0x4242, 7).payload(8).build();
      auto reply = rp.icmp_echo(false, 0x4242, 7).payload(8).build();
      auto a = parse(request), b = parse(reply);
      REQUIRE(a);
      REQUIRE(b);
      CHECK(a->icmp_type() == (v6 ? 128 : 8));
      CHECK(b->icmp_type() == (v6 ? 129 : 0));
      CHECK(a->key().src_port == 0x4242);
      CHECK(b->key() == a->key().reversed());
      CHECK_FALSE(a->is_icmp_error());
    }
  }

  TEST_CASE("parse: ICMP types without a quote or identifier carry no ports") {
    auto ns = packet_builder{}.eth().ipv6("fd00::2", "ff02::1:ff00:100").icmp(135, 0).payload(16).build();
    auto p = parse(ns);
    REQUIRE(p);
    CHECK(p->icmp_type() == 135);
    CHECK(p->has_l4_header());
    CHECK_FALSE(p->has_ports());
    CHECK_FALSE(p->is_icmp_error());
    CHECK(p->payload_offset() == 14 + 40 + 8);
  }

  TEST_CASE("parse: SCTP ports, tunnels and unknown protocols") {
    auto s = packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.2").sctp(3868, 3869).payload(4).build();
    auto ps = parse(s);
    REQUIRE(ps);
    CHECK(ps->key().to_string() == "sctp 198.18.0.1:3868 -> 198.18.0.2:3869");
    CHECK(ps->payload_offset() == 14 + 20 + 12);

    auto gre = packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.2").raw(hex_bytes("00 00 08 00"), 47).build();
    auto pg = parse(gre);
    REQUIRE(pg);
    CHECK(pg->protocol() == ip_proto::gre);
    CHECK_FALSE(pg->has_l4_header());
    CHECK_FALSE(pg->has_ports());
    CHECK(pg->l4_offset() == 34);
    CHECK(pg->l4_len() == 4);

    // IPIP: the inner packet is parse_ip()'s job (what a decapsulating real server does).
    auto ipip = packet_builder{}
                    .eth()
                    .ipv4("198.18.0.1", "198.18.0.9")
                    .ipv4("198.18.0.2", "198.18.0.100")
                    .tcp(1234, 80, tcp_flags::syn)
                    .build();
    auto outer = parse(ipip);
    REQUIRE(outer);
    CHECK(outer->protocol() == ip_proto::ipip);
    auto inner = parse_ip(outer->l4());
    REQUIRE(inner);
    CHECK_FALSE(inner->has_ethernet());
    CHECK(inner->l3_offset() == 0);
    CHECK(inner->key().to_string() == "tcp 198.18.0.2:1234 -> 198.18.0.100:80");

    // ICMP (1) inside IPv6 and ICMPv6 (58) inside IPv4 are not parsed as ICMP.
    auto odd = packet_builder{}.eth().ipv6("fd00::1", "fd00::2", {.next_header = 1}).payload(8).build();
    auto po = parse(odd);
    REQUIRE(po);
    CHECK(po->protocol() == 1);
    CHECK_FALSE(po->has_l4_header());
    CHECK(po->icmp_type() == 0);
    auto odd4 = packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.2", {.protocol = 58}).payload(8).build();
    auto po4 = parse(odd4);
    REQUIRE(po4);
    CHECK_FALSE(po4->has_l4_header());
  }

  TEST_CASE("parse_ip: bare IPv4 and IPv6 packets, version nibble picks the family") {
    auto v4 = packet_builder{}.ipv4("198.18.0.1", "198.18.0.2").udp(1, 2).payload(3).build();
    auto p = parse_ip(v4);
    REQUIRE(p);
    CHECK_FALSE(p->has_ethernet());
    CHECK(p->vlan_count() == 0);
    CHECK(p->ethertype() == ethertype::ipv4);
    CHECK(p->l3_offset() == 0);
    CHECK(p->l4_offset() == 20);
    CHECK(p->payload_len() == 3);
    auto v6 = packet_builder{}.ipv6("fd00::1", "fd00::2").udp(1, 2).build();
    auto q = parse_ip(v6);
    REQUIRE(q);
    CHECK(q->is_ipv6());
    CHECK(q->ethertype() == ethertype::ipv6);
    CHECK(q->l4_offset() == 40);
  }

  TEST_CASE("parse: views write through, key() keeps the parsed snapshot") {
    auto b = frame("client-vip-http.pcap", 3);
    auto p = parse(b);
    REQUIRE(p);
    const auto before = p->key();
    p->ipv4().set_ttl(63);
    p->ipv4().fill_checksum();
    p->tcp().set_dst_port(8080);
    CHECK(b[14 + 8] == std::byte{63});
    CHECK(p->tcp().dst_port() == 8080);
    CHECK(p->key() == before);
    auto again = parse(b, {.verify_ipv4_checksum = true});
    REQUIRE(again);
    CHECK(again->key().dst_port == 8080);
  }

  TEST_CASE("parse: const bytes give a const_packet_view with the same facts") {
    const auto b = frame("client-vip-http.pcap", 3);
    auto p = parse(b);
    static_assert(std::is_same_v<decltype(p), l4lb::expected<const_packet_view, drop_reason>>);
    REQUIRE(p);
    CHECK(p->key().dst_port == 80);
    auto m = b;
    auto q = parse(m);
    static_assert(std::is_same_v<decltype(q), l4lb::expected<packet_view, drop_reason>>);
    REQUIRE(q);
    CHECK(q->as_const().key() == p->key());
    CHECK(q->as_const().l4_offset() == p->l4_offset());
  }

  TEST_CASE("parse: opt-in checks pass on good packets") {
    auto b = packet_builder{}
                 .eth()
                 .ipv4("198.18.0.1", "198.18.0.2", {.options = hex_bytes("94 04 00 00")})
                 .tcp(1, 2, tcp_flags::syn, {.options = hex_bytes("02 04 05 b4 01 03 03 07")})
                 .build();
    auto p = parse(b, {.verify_ipv4_checksum = true, .check_options = true});
    REQUIRE(p);
    CHECK(p->has_ipv4_options());
    CHECK(p->ip_header_len() == 24);
    CHECK(p->tcp().window_scale() == 7);
  }

  TEST_CASE("packet_view: small and trivially copyable") {
    CHECK(sizeof(packet_view) <= 80);
    CHECK(std::is_trivially_copyable_v<packet_view>);
    CHECK(std::is_trivially_copyable_v<const_packet_view>);
  }
}

TEST_SUITE("wire") {
  TEST_CASE("icmp_error_connection: the connection an ICMP error is about, client first") {
    // Inbound: the client 198.18.0.2 reports port unreachable about a reply VIP:53 -> client:40000;
    // the connection is client:40000 -> VIP:53 (the quote's destination is the client).
    const auto quoted_reply = packet_builder{}.ipv4("198.18.0.100", "198.18.0.2").udp(53, 40000).payload("ABCD");
    const auto in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").icmp(3, 3).quote(quoted_reply).build();
    auto p = parse(in);
    REQUIRE(p);
    REQUIRE(p->is_icmp_error());
    const flow_key conn{ip_proto::udp, *endpoint::parse("198.18.0.2:40000"), *endpoint::parse("198.18.0.100:53")};
    CHECK(icmp_error_connection(*p, icmp_error_direction::inbound) == conn);
    // Outbound: a router on the real server's side reports about the client's packet
    // [fd00:198:18::2]:40000 -> [fd00:198:18::11]:5353; the client is the quote's source.
    const auto quoted_req = packet_builder{}.ipv6("fd00:198:18::2", "fd00:198:18::11").udp(40000, 5353).payload("ABCD");
    const auto out = packet_builder{}.eth().ipv6("fd00:198:18::1", "fd00:198:18::2").icmp(1, 4).quote(quoted_req).build();
    auto q = parse(out);
    REQUIRE(q);
    const flow_key conn6{ip_proto::udp, *endpoint::parse("[fd00:198:18::2]:40000"),
                         *endpoint::parse("[fd00:198:18::11]:5353")};
    CHECK(icmp_error_connection(*q, icmp_error_direction::outbound) == conn6);
    CHECK(icmp_error_connection(*q, icmp_error_direction::inbound) == conn6.reversed());
  }
}
