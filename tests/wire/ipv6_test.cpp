// IPv6 header view, extension headers and the chain walk: the smoltcp six on a real header, a
// hand-written RFC 8200 chain, and every error the walk can give.
#include <doctest/doctest.h>

#include <vector>

#include "l4lb/wire/ipv6.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;
using l4lb::test::packet_builder;

namespace {
// ipv6-http.pcap frame 3 from offset 14 (the first SYN). tshark: ipv6.flow 0x0827a1, hlim 64;
// 60 08 27 a1 = version 6, traffic class 0, flow label 0x827a1; payload 0x28 = 40, next 6 (TCP).
const auto syn6 = hex_bytes(
    "60 08 27 a1 00 28 06 40 fd 00 01 98 00 18 00 00 00 00 00 00 00 00 00 02"
    "fd 00 01 98 00 18 00 00 00 00 00 00 00 00 01 00"
    "dd 96 00 50 71 a7 48 16 00 00 00 00 a0 02 fd 20 61 e9 00 00"
    "02 04 05 a0 04 02 08 0a ee e4 64 1a 00 00 00 00 01 03 03 0a");

// A chain written by hand from RFC 8200 section 4 (and RFC 4302 for AH), no L4 checksum needed:
// IPv6 (next 0) | HBH: next 43, len 0, PadN(4) | Routing: next 60, len 0, type 0, segments left 0
// | Dest opts: next 44, len 0, PadN(4) | Fragment: next 51, offset 0, M=1, id 0x01020304
// | AH: next 17, len 2 ((2+2)*4 = 16 bytes), SPI 0x100, seq 1, 4-byte ICV | UDP 8 bytes.
// Payload length 4 * 8 + 16 + 8 = 56 = 0x38.
const auto chain6 = hex_bytes(
    "60 00 00 00 00 38 00 40 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
    "fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02"
    "2b 00 01 04 00 00 00 00"
    "3c 00 00 00 00 00 00 00"
    "2c 00 01 04 00 00 00 00"
    "33 00 00 01 01 02 03 04"
    "11 02 00 00 00 00 01 00 00 00 00 01 00 00 00 00"
    "9c 40 00 35 00 08 00 00");

ipv6_address a6(const char* s) { return *ipv6_address::parse(s); }
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("ipv6_view: reads fields from fixture bytes") {
    auto v = ipv6_view::make(syn6);
    REQUIRE(v);
    CHECK(v->version() == 6);
    CHECK(v->traffic_class() == 0);
    CHECK(v->flow_label() == 0x827a1);
    CHECK(v->payload_len() == 40);
    CHECK(v->next_header() == ip_proto::tcp);
    CHECK(v->hop_limit() == 64);
    CHECK(v->src() == a6("fd00:198:18::2"));
    CHECK(v->dst() == a6("fd00:198:18::100"));
    CHECK(v->payload().size() == 40);
    CHECK(v->packet().size() == 80);
  }

  TEST_CASE("ipv6_view: setters write exactly the fixture header into a 0xa5 buffer") {
    std::vector<std::byte> buf(40, std::byte{0xa5});
    auto v = ipv6_mut_view::unchecked(buf);
    v.set_version_class_flow(6, 0, 0x827a1);
    v.set_payload_len(40);
    v.set_next_header(6);
    v.set_hop_limit(64);
    v.set_src(a6("fd00:198:18::2"));
    v.set_dst(a6("fd00:198:18::100"));
    CHECK(buf == std::vector<std::byte>(syn6.begin(), syn6.begin() + 40));
    // Traffic class parts and flow label do not disturb each other.
    v.set_dscp(46);
    v.set_ecn(1);
    CHECK(v.traffic_class() == (46 << 2 | 1));
    CHECK(v.flow_label() == 0x827a1);
    CHECK(v.version() == 6);
    v.set_flow_label(0xfffff);
    CHECK(v.traffic_class() == (46 << 2 | 1));
    v.set_traffic_class(0);
    CHECK(v.flow_label() == 0xfffff);
  }

  TEST_CASE("ipv6_view: make() errors") {
    for (std::size_t n = 0; n < 40; ++n) {
      auto v = ipv6_view::make(std::span(syn6).first(n));
      REQUIRE_FALSE(v);
      CHECK(v.error() == drop_reason::truncated_ipv6);
    }
    auto b = syn6;
    b[0] = std::byte{0x40};
    CHECK(ipv6_view::make(b).error() == drop_reason::bad_ip_version);
    b = syn6;
    b[5] = std::byte{41};  // payload length 41 > 40 bytes present
    CHECK(ipv6_view::make(b).error() == drop_reason::ipv6_payload_length_exceeds_frame);
    b = syn6;
    b.resize(90, std::byte{0});  // trailing bytes beyond the payload length are not payload
    CHECK(ipv6_view::make(b)->payload().size() == 40);
  }

  TEST_CASE("ipv6_repr: parse and emit round-trip the fixture header") {
    const ipv6_repr want{a6("fd00:198:18::2"), a6("fd00:198:18::100"), 6, 40, 64, 0, 0x827a1};
    CHECK(ipv6_repr::parse(*ipv6_view::make(syn6)) == want);
    std::vector<std::byte> buf(40, std::byte{0xa5});
    want.emit(ipv6_mut_view::unchecked(buf));
    CHECK(buf == std::vector<std::byte>(syn6.begin(), syn6.begin() + 40));
  }

  TEST_CASE("packet_builder: writes the hand-written extension chain byte for byte") {
    auto built = packet_builder{}
                     .ipv6("fd00::1", "fd00::2")
                     .hop_by_hop()
                     .routing()
                     .dest_opts()
                     .fragment6(0, true, 0x01020304)
                     .ah(16)
                     .udp(40000, 53, {.zero_checksum = true})
                     .build();
    CHECK(l4lb::test::to_hex(built) == l4lb::test::to_hex(chain6));
  }

  TEST_CASE("walk_ipv6_extensions: HBH, routing, dest opts, fragment, AH then UDP") {
    auto v = *ipv6_view::make(chain6);
    auto c = walk_ipv6_extensions(v.packet(), v.next_header());
    REQUIRE(c);
    CHECK(c->protocol == ip_proto::udp);
    CHECK(c->l4_offset == 40 + 8 + 8 + 8 + 8 + 16);
    CHECK(c->extension_count == 5);
    CHECK(c->has_fragment_header);
    CHECK(c->fragment_header_offset == 64);
    CHECK(c->more_frags);
    CHECK(c->frag_offset == 0);
    CHECK(c->reached_upper_layer);  // offset 0: the first fragment carries the UDP header

    auto hbh = *ipv6_ext_view::make(std::span(chain6).subspan(40), ip_proto::hopopt);
    CHECK(hbh.next_header() == ip_proto::ipv6_route);
    CHECK(hbh.header_len() == 8);
    CHECK(hbh.data().size() == 6);
    auto rh = *ipv6_ext_view::make(std::span(chain6).subspan(48), ip_proto::ipv6_route);
    CHECK(rh.routing_type() == 0);
    CHECK(rh.segments_left() == 0);
    auto ah = *ipv6_ext_view::make(std::span(chain6).subspan(72), ip_proto::ah);
    CHECK(ah.header_len() == 16);  // RFC 4302: (2 + 2) * 4
    CHECK(ah.next_header() == ip_proto::udp);
  }

  TEST_CASE("walk_ipv6_extensions: a non-first fragment stops at the fragment header") {
    auto p = packet_builder{}.ipv6("fd00::1", "fd00::2").fragment6(185, false, 7, ip_proto::tcp).payload(16).build();
    auto v = *ipv6_view::make(p);
    auto c = walk_ipv6_extensions(v.packet(), v.next_header());
    REQUIRE(c);
    CHECK_FALSE(c->reached_upper_layer);
    CHECK(c->protocol == ip_proto::tcp);  // what the fragmentable part starts with
    CHECK(c->frag_offset == 185);
    CHECK_FALSE(c->more_frags);
    CHECK(c->l4_offset == 48);
  }

  TEST_CASE("walk_ipv6_extensions: unknown, ESP and no-next-header end the walk safely") {
    for (std::uint8_t nh : {std::uint8_t{50}, std::uint8_t{59}, std::uint8_t{200}}) {
      auto p = packet_builder{}.ipv6("fd00::1", "fd00::2", {.next_header = nh}).dest_opts().payload(3).build();
      auto v = *ipv6_view::make(p);
      // The dest opts header announces 59 (payload follows), but the IPv6 header announces `nh`:
      // the walk must stop at once, before the bytes it does not understand.
      auto c = walk_ipv6_extensions(v.packet(), v.next_header());
      REQUIRE(c);
      CHECK(c->protocol == nh);
      CHECK(c->l4_offset == 40);
      CHECK(c->extension_count == 0);
    }
  }

  TEST_CASE("walk_ipv6_extensions: errors") {
    // An extension header longer than the payload: dest opts claims 16 bytes, 8 are there.
    auto p = packet_builder{}.ipv6("fd00::1", "fd00::2").dest_opts(8).build();
    p[41] = std::byte{1};
    auto v = *ipv6_view::make(p);
    CHECK(walk_ipv6_extensions(v.packet(), v.next_header()).error() == drop_reason::truncated_ipv6_extension);
    // Fewer than the 8-byte minimum left.
    auto q = packet_builder{}.ipv6("fd00::1", "fd00::2", {.next_header = 60}).payload(7).build();
    auto w = *ipv6_view::make(q);
    CHECK(walk_ipv6_extensions(w.packet(), w.next_header()).error() == drop_reason::truncated_ipv6_extension);
    // The payload length bounds the walk even when the frame has more bytes.
    auto r = packet_builder{}.ipv6("fd00::1", "fd00::2", {.payload_len = 4}).dest_opts().build();
    auto x = *ipv6_view::make(r);
    CHECK(walk_ipv6_extensions(x.packet(), x.next_header()).error() == drop_reason::truncated_ipv6_extension);
    // max_ipv6_extensions (8) dest-opts headers pass, 9 do not.
    packet_builder eight, nine;
    eight.ipv6("fd00::1", "fd00::2");
    nine.ipv6("fd00::1", "fd00::2");
    for (int i = 0; i < 8; ++i) eight.dest_opts();
    for (int i = 0; i < 9; ++i) nine.dest_opts();
    auto e8 = eight.build(), e9 = nine.build();
    auto v8 = *ipv6_view::make(e8), v9 = *ipv6_view::make(e9);
    CHECK(walk_ipv6_extensions(v8.packet(), v8.next_header())->extension_count == 8);
    CHECK(walk_ipv6_extensions(v9.packet(), v9.next_header()).error() == drop_reason::too_many_ipv6_extensions);
    // Hop-by-hop anywhere but first (RFC 8200 section 4.1).
    auto h = packet_builder{}.ipv6("fd00::1", "fd00::2").dest_opts().hop_by_hop().build();
    auto hv = *ipv6_view::make(h);
    CHECK(walk_ipv6_extensions(hv.packet(), hv.next_header()).error() == drop_reason::misplaced_ipv6_hop_by_hop);
  }

  TEST_CASE("ipv6_fragment_view: fields, setters into a 0xa5 buffer, impossible length") {
    // RFC 8200 4.5: next 6, reserved, offset 185 << 3 | M=1 = 0x05c9, id 0xdeadbeef.
    const auto fixture = hex_bytes("06 00 05 c9 de ad be ef");
    auto f = *ipv6_fragment_view::make(fixture);
    CHECK(f.next_header() == 6);
    CHECK(f.frag_offset() == 185);
    CHECK(f.frag_offset_bytes() == 1480);
    CHECK(f.more_frags());
    CHECK(f.ident() == 0xdeadbeef);
    std::vector<std::byte> buf(8, std::byte{0xa5});
    auto w = ipv6_fragment_mut_view::unchecked(buf);
    w.set_next_header(6);
    w.set_offset_more(185, true);
    w.set_ident(0xdeadbeef);
    CHECK(buf == fixture);
    CHECK(ipv6_fragment_view::make(std::span(fixture).first(7)).error() == drop_reason::truncated_ipv6_extension);
  }

  TEST_CASE("ipv6_ext_view: length units per type") {
    CHECK(ipv6_ext_view::ext_len(ip_proto::hopopt, 0) == 8);
    CHECK(ipv6_ext_view::ext_len(ip_proto::ipv6_opts, 2) == 24);
    CHECK(ipv6_ext_view::ext_len(ip_proto::ipv6_route, 255) == 2048);
    CHECK(ipv6_ext_view::ext_len(ip_proto::ah, 4) == 24);        // RFC 4302: (len + 2) * 4
    CHECK(ipv6_ext_view::ext_len(ip_proto::ipv6_frag, 99) == 8);  // fixed size
    CHECK(is_ipv6_extension(ip_proto::hopopt));
    CHECK(is_ipv6_extension(ip_proto::ah));
    CHECK_FALSE(is_ipv6_extension(ip_proto::esp));
    CHECK_FALSE(is_ipv6_extension(ip_proto::tcp));
  }
}
