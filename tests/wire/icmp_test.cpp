// ICMP / ICMPv6 header view and the quote of an ICMP error: the smoltcp six on real messages,
// the quoted flow of real errors (as tshark decodes it), and every quote error.
#include <doctest/doctest.h>

#include <vector>

#include "l4lb/wire/icmp.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;
using l4lb::test::packet_builder;

namespace {
// icmp.pcap frame 1 from offset 34: echo request. tshark: icmp.ident 4365 (0x110d), seq 1,
// checksum 0x8a6f. Type 8, code 0, then 56 bytes of ping data (first 8 shown here).
const auto echo = hex_bytes("08 00 8a 6f 11 0d 00 01 2e d1 06 6b 00 00 00 00");

// icmp.pcap frame 20 from offset 34: 3/3 port unreachable, VIP -> client, checksum 0x89c1,
// quoting UDP 198.18.0.2:40009 -> 198.18.0.100:9 (tshark: udp.srcport 40009, dstport 9).
const auto port_unreach = hex_bytes(
    "03 03 89 c1 00 00 00 00"
    "45 00 00 3c 96 87 40 00 40 11 17 9f c6 12 00 02 c6 12 00 64"
    "9c 49 00 09 00 28 85 75 6c 76 73 63 61 70 2d 6c 76 73 63 61 70 2d 6c 76 73 63 61 70"
    "2d 6c 76 73 63 61 70 2d 6c 76 73 63");

// icmp.pcap frame 24 from offset 54: ICMPv6 1/4 port unreachable, checksum 0xbcf8, quoting
// UDP [fd00:198:18::2]:40011 -> [fd00:198:18::100]:9.
const auto port_unreach6 = hex_bytes(
    "01 04 bc f8 00 00 00 00"
    "60 04 d1 d9 00 28 11 40 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 02"
    "fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00"
    "9c 4b 00 09 00 28 13 9b 6c 76");

// icmp.pcap frame 51 from offset 34, first 8 bytes: 3/4 frag needed; tshark icmp.mtu 1280.
const auto frag_needed = hex_bytes("03 04 6a f6 00 00 05 00");
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("icmp_view: reads fields from fixture bytes") {
    auto v = icmp_view::make(echo);
    REQUIRE(v);
    CHECK(v->type() == icmpv4_type::echo_request);
    CHECK(v->code() == 0);
    CHECK(v->checksum() == 0x8a6f);
    CHECK(v->echo_ident() == 4365);
    CHECK(v->echo_seq() == 1);
    CHECK(v->payload().size() == 8);
    CHECK(icmp_view::make(frag_needed)->next_hop_mtu() == 1280);
    // ICMPv6 packet too big: 32-bit MTU (RFC 4443 3.2); icmp.pcap frame 220 says 1280.
    const auto ptb = hex_bytes("02 00 00 00 00 00 05 00");
    CHECK(icmp_view::make(ptb)->mtu() == 1280);
  }

  TEST_CASE("icmp_view: setters write exactly the fixture header into a 0xa5 buffer") {
    std::vector<std::byte> buf(8, std::byte{0xa5});
    auto v = icmp_mut_view::unchecked(buf);
    v.set_type(8);
    v.set_code(0);
    v.set_checksum(0x8a6f);
    v.set_echo_ident(4365);
    v.set_echo_seq(1);
    CHECK(buf == std::vector<std::byte>(echo.begin(), echo.begin() + 8));
    v.set_type(3);
    v.set_code(4);
    v.set_checksum(0x6af6);
    v.set_rest_of_header(0);
    v.set_next_hop_mtu(1280);
    CHECK(buf == frag_needed);
    v.set_mtu(1280);
    CHECK(v.mtu() == 1280);
  }

  TEST_CASE("icmp_view: make() refuses fewer than 8 bytes") {
    for (std::size_t n = 0; n < 8; ++n)
      CHECK(icmp_view::make(std::span(echo).first(n)).error() == drop_reason::truncated_icmp);
  }

  TEST_CASE("icmp_repr: parse and emit") {
    const icmp_repr want{3, 4, 1280};
    CHECK(icmp_repr::parse(*icmp_view::make(frag_needed)) == want);
    std::vector<std::byte> buf(8, std::byte{0xa5});
    want.emit(icmp_mut_view::unchecked(buf));
    CHECK(buf == hex_bytes("03 04 00 00 00 00 05 00"));  // checksum left 0 for the caller
  }

  TEST_CASE("icmp type predicates follow RFC 792 and RFC 4443") {
    for (int t = 0; t < 256; ++t) {
      auto type = static_cast<std::uint8_t>(t);
      const bool v4_error = t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
      CHECK(is_icmpv4_error(type) == v4_error);
      CHECK(is_icmpv6_error(type) == (t >= 1 && t <= 4));
      CHECK(is_icmp_echo(ip_proto::icmp, type) == (t == 0 || t == 8));
      CHECK(is_icmp_echo(ip_proto::icmpv6, type) == (t == 128 || t == 129));
      CHECK_FALSE(is_icmp_error(ip_proto::udp, type));
    }
  }

  TEST_CASE("parse_icmp_quote: a real ICMPv4 error quoting UDP") {
    auto v = *icmp_view::make(port_unreach);
    auto q = parse_icmp_quote(ip_family::v4, v.payload());
    REQUIRE(q);
    CHECK(q->l4_offset == 20);
    CHECK(q->protocol == ip_proto::udp);
    CHECK(q->has_l4);
    auto k = quoted_flow_key(ip_family::v4, v.payload(), *q);
    CHECK(k.to_string() == "udp 198.18.0.2:40009 -> 198.18.0.100:9");
  }

  TEST_CASE("parse_icmp_quote: a real ICMPv6 error quoting UDP") {
    auto v = *icmp_view::make(port_unreach6);
    auto q = parse_icmp_quote(ip_family::v6, v.payload());
    REQUIRE(q);
    CHECK(q->l4_offset == 40);
    CHECK(q->protocol == ip_proto::udp);
    auto k = quoted_flow_key(ip_family::v6, v.payload(), *q);
    CHECK(k.to_string() == "udp [fd00:198:18::2]:40011 -> [fd00:198:18::100]:9");
  }

  TEST_CASE("parse_icmp_quote: the IP header + 8 bytes minimum (RFC 792)") {
    auto quote = std::span(port_unreach).subspan(8);
    for (std::size_t n = 0; n < 28; ++n)
      CHECK(parse_icmp_quote(ip_family::v4, quote.first(n)).error() == drop_reason::truncated_icmp_quote);
    CHECK(parse_icmp_quote(ip_family::v4, quote.first(28)));
    auto quote6 = std::span(port_unreach6).subspan(8);
    for (std::size_t n = 0; n < 48; ++n)
      CHECK(parse_icmp_quote(ip_family::v6, quote6.first(n)).error() == drop_reason::truncated_icmp_quote);
    CHECK(parse_icmp_quote(ip_family::v6, quote6.first(48)));
  }

  TEST_CASE("parse_icmp_quote: quotes that are not IP of the outer family") {
    auto b = std::vector<std::byte>(port_unreach.begin() + 8, port_unreach.end());
    b[0] = std::byte{0x65};  // version 6 inside ICMPv4
    CHECK(parse_icmp_quote(ip_family::v4, b).error() == drop_reason::bad_icmp_quote);
    b[0] = std::byte{0x44};  // IHL 4
    CHECK(parse_icmp_quote(ip_family::v4, b).error() == drop_reason::bad_icmp_quote);
    b[0] = std::byte{0x46};  // IHL 6: 24-byte header, the 8 L4 bytes still fit in 60
    CHECK(parse_icmp_quote(ip_family::v4, b)->l4_offset == 24);
    auto b6 = std::vector<std::byte>(port_unreach6.begin() + 8, port_unreach6.end());
    b6[0] = std::byte{0x45};
    CHECK(parse_icmp_quote(ip_family::v6, b6).error() == drop_reason::bad_icmp_quote);
    // An IPv6 quote whose extension chain is refused (misplaced hop-by-hop).
    auto bad_chain = packet_builder{}.ipv6("fd00::1", "fd00::2").dest_opts().hop_by_hop().udp(1, 2).build();
    CHECK(parse_icmp_quote(ip_family::v6, bad_chain).error() == drop_reason::bad_icmp_quote);
    // An extension header cut by the end of the quote.
    auto cut = packet_builder{}.ipv6("fd00::1", "fd00::2").dest_opts(16).udp(1, 2).build();
    cut.resize(40 + 12);
    CHECK(parse_icmp_quote(ip_family::v6, cut).error() == drop_reason::truncated_icmp_quote);
  }

  TEST_CASE("parse_icmp_quote: extension headers and fragments inside the quote") {
    auto q6 = packet_builder{}.ipv6("fd00::1", "fd00::2").dest_opts().tcp(80, 40000, 0x10 /* ACK */).build();
    auto q = parse_icmp_quote(ip_family::v6, q6);
    REQUIRE(q);
    CHECK(q->l4_offset == 48);
    CHECK(quoted_flow_key(ip_family::v6, q6, *q).to_string() == "tcp [fd00::1]:80 -> [fd00::2]:40000");
    // A quoted non-first IPv4 fragment has no L4 header: no ports in its key.
    auto frag = packet_builder{}
                    .ipv4("198.18.0.100", "198.18.0.2", {.more_frags = true, .frag_offset = 10, .protocol = 17})
                    .payload(8)
                    .build();
    auto f = parse_icmp_quote(ip_family::v4, frag);
    REQUIRE(f);
    CHECK_FALSE(f->has_l4);
    auto k = quoted_flow_key(ip_family::v4, frag, *f);
    CHECK(k.src_port == 0);
    CHECK(k.dst_port == 0);
    CHECK(k.protocol == ip_proto::udp);
    // A quoted echo request: the identifier fills both ports, like an outer echo.
    auto ping = packet_builder{}.ipv4("198.18.0.100", "198.18.8.2").icmp_echo(true, 0x1234, 1).build();
    auto p = parse_icmp_quote(ip_family::v4, ping);
    REQUIRE(p);
    auto pk = quoted_flow_key(ip_family::v4, ping, *p);
    CHECK(pk.src_port == 0x1234);
    CHECK(pk.dst_port == 0x1234);
  }
}
