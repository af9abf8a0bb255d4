// IPv4 header view: the smoltcp six on a real header, the header checksum, options walking,
// fragment fields, and every make() error.
#include <doctest/doctest.h>

#include <vector>

#include "l4lb/wire/ipv4.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;
using l4lb::test::packet_builder;

namespace {
// client-vip-http.pcap frame 3 from offset 14: the first SYN's IP packet (60 bytes). tshark
// (-T fields -e ip.id -e ip.ttl -e ip.checksum) says id 0x4785, TTL 64, checksum 0x66ac; the
// header reads 45 = v4 IHL 5, tos 0, total 0x003c = 60, flags 0x4000 = DF, proto 6,
// 198.18.0.2 -> 198.18.0.100.
const auto syn_ip = hex_bytes(
    "45 00 00 3c 47 85 40 00 40 06 66 ac c6 12 00 02 c6 12 00 64"
    "89 3c 00 50 66 be 99 cd 00 00 00 00 a0 02 fa f0 fe c7 00 00"
    "02 04 05 b4 04 02 08 0a ce 99 69 07 00 00 00 00 01 03 03 0a");

ipv4_address a4(const char* s) { return *ipv4_address::parse(s); }
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("ipv4_view: reads fields from fixture bytes") {
    auto v = ipv4_view::make(syn_ip);
    REQUIRE(v);
    CHECK(v->version() == 4);
    CHECK(v->ihl() == 5);
    CHECK(v->header_len() == 20);
    CHECK(v->tos() == 0);
    CHECK(v->total_len() == 60);
    CHECK(v->ident() == 0x4785);
    CHECK(v->dont_frag());
    CHECK_FALSE(v->more_frags());
    CHECK(v->frag_offset() == 0);
    CHECK_FALSE(v->is_fragment());
    CHECK(v->ttl() == 64);
    CHECK(v->protocol() == ip_proto::tcp);
    CHECK(v->checksum() == 0x66ac);
    CHECK(v->src() == a4("198.18.0.2"));
    CHECK(v->dst() == a4("198.18.0.100"));
    CHECK_FALSE(v->has_options());
    CHECK(v->options_bytes().empty());
    CHECK(v->payload().size() == 40);
    CHECK(v->payload().data() == syn_ip.data() + 20);
    CHECK(v->verify_checksum());
    CHECK(verify_ipv4_header_checksum(*v));
    CHECK(v->compute_checksum() == 0x66ac);
  }

  TEST_CASE("ipv4_view: setters write exactly the fixture header into a 0xa5 buffer") {
    std::vector<std::byte> buf(20, std::byte{0xa5});
    auto v = ipv4_mut_view::unchecked(buf);
    v.set_version_ihl(4, 5);
    v.set_tos(0);
    v.set_total_len(60);
    v.set_ident(0x4785);
    v.set_flags_frag(true, false, 0);
    v.set_ttl(64);
    v.set_protocol(6);
    v.set_src(a4("198.18.0.2"));
    v.set_dst(a4("198.18.0.100"));
    v.fill_checksum();
    CHECK(buf == std::vector<std::byte>(syn_ip.begin(), syn_ip.begin() + 20));
  }

  TEST_CASE("ipv4_view: field setters change only their own bits") {
    auto b = syn_ip;
    auto v = *ipv4_mut_view::make(b);
    v.set_dscp(46);  // EF
    v.set_ecn(2);    // ECT(0)
    CHECK(v.tos() == (46 << 2 | 2));
    v.set_dscp(10);
    CHECK(v.ecn() == 2);
    CHECK(v.dscp() == 10);
    v.set_more_frags(true);
    v.set_frag_offset(185);  // 1480 bytes
    CHECK(v.dont_frag());
    CHECK(v.more_frags());
    CHECK(v.frag_offset() == 185);
    CHECK(v.frag_offset_bytes() == 1480);
    CHECK(v.is_fragment());
    v.set_dont_frag(false);
    v.set_more_frags(false);
    CHECK(v.frag_offset() == 185);
    CHECK_FALSE(v.more_frags());
    CHECK(v.is_fragment());  // offset alone makes a fragment (last one)
    v.set_frag_offset(0);
    CHECK_FALSE(v.is_fragment());
    v.set_ttl(63);
    CHECK_FALSE(v.verify_checksum());  // the TTL changed under the old checksum
    v.fill_checksum();
    CHECK(v.verify_checksum());
  }

  TEST_CASE("ipv4_view: make() errors, each length case") {
    auto reason = [](std::vector<std::byte> b) {
      auto v = ipv4_view::make(b);
      return v ? drop_reason::none : v.error();
    };
    for (std::size_t n = 0; n < 20; ++n)
      CHECK(reason({syn_ip.begin(), syn_ip.begin() + static_cast<std::ptrdiff_t>(n)}) == drop_reason::truncated_ipv4);
    auto b = syn_ip;
    b[0] = std::byte{0x65};  // version 6 in an IPv4 view
    CHECK(reason(b) == drop_reason::bad_ip_version);
    b[0] = std::byte{0x44};  // IHL 4 < 5
    CHECK(reason(b) == drop_reason::bad_ipv4_ihl);
    b = syn_ip;
    b.resize(20);
    b[0] = std::byte{0x46};  // IHL 6 needs 24 bytes, 20 present
    CHECK(reason(b) == drop_reason::truncated_ipv4);
    b = syn_ip;
    b[3] = std::byte{19};  // total length 19 < 20-byte header
    CHECK(reason(b) == drop_reason::ipv4_total_length_below_header);
    b = syn_ip;
    b[3] = std::byte{61};  // total length 61 > 60 bytes present
    CHECK(reason(b) == drop_reason::ipv4_total_length_exceeds_frame);
    b = syn_ip;
    b.resize(64, std::byte{0});  // Ethernet-style padding after the packet is fine
    auto v = ipv4_view::make(b);
    REQUIRE(v);
    CHECK(v->payload().size() == 40);
    CHECK(v->packet().size() == 60);
  }

  TEST_CASE("ipv4_view: checksum detects a flipped bit and covers options") {
    auto b = syn_ip;
    b[8] = std::byte{0x3f};  // TTL 63
    CHECK_FALSE(ipv4_view::make(b)->verify_checksum());
    auto with_opts = packet_builder{}
                         .ipv4("198.18.0.2", "198.18.0.100", {.options = hex_bytes("94 04 00 00")})
                         .payload(4)
                         .build();
    auto v = *ipv4_mut_view::make(with_opts);
    CHECK(v.header_len() == 24);
    CHECK(v.verify_checksum());
    with_opts[22] = std::byte{1};  // inside the router-alert value
    CHECK_FALSE(v.verify_checksum());
  }

  TEST_CASE("ipv4_repr: parse and emit round-trip the fixture header") {
    const ipv4_repr want{a4("198.18.0.2"), a4("198.18.0.100"), 6, 40, 64, 0, 0x4785, true, false, 0};
    CHECK(ipv4_repr::parse(*ipv4_view::make(syn_ip)) == want);
    std::vector<std::byte> buf(20, std::byte{0xa5});
    want.emit(ipv4_mut_view::unchecked(buf));
    CHECK(buf == std::vector<std::byte>(syn_ip.begin(), syn_ip.begin() + 20));
  }

  TEST_CASE("ipv4_view: options are walked in order, padding skipped") {
    // Record route (RFC 791 3.1: type 7, length 7, pointer 4, one empty slot) + EOL padding,
    // then in a second packet NOP NOP + router alert (RFC 2113: 148, length 4, value 0).
    auto p = packet_builder{}
                 .ipv4("198.18.0.2", "198.18.0.100", {.options = hex_bytes("07 07 04 00 00 00 00")})
                 .payload(1)
                 .build();
    auto v = *ipv4_view::make(p);
    CHECK(v.has_options());
    CHECK(v.header_len() == 28);  // 7 option bytes padded to 8
    std::vector<std::uint8_t> kinds;
    for (const auto& o : v.options()) {
      kinds.push_back(o.kind);
      if (o.kind == ipv4_option_kind::record_route) {
        CHECK(o.data.size() == 5);
        CHECK(o.offset == 0);
      }
    }
    CHECK(kinds == std::vector<std::uint8_t>{ipv4_option_kind::record_route});
    CHECK(v.check_options() == drop_reason::none);

    auto q = packet_builder{}
                 .ipv4("198.18.0.2", "198.18.0.100", {.options = hex_bytes("01 01 94 04 00 00 00 00")})
                 .build();
    auto w = *ipv4_view::make(q);
    auto ra = w.options().find(ipv4_option_kind::router_alert);
    REQUIRE(ra);
    CHECK(ra->offset == 2);
    CHECK(ra->data.size() == 2);
    CHECK(w.check_options() == drop_reason::none);
  }

  TEST_CASE("ipv4_view: malformed options stop the walk and are reported") {
    // Each option area is 4 bytes (IHL 6): a length below 2, a length past the header, a kind
    // with its length byte missing (last byte of the area).
    for (const char* opts : {"07 01 00 00", "07 09 04 00", "01 01 01 07"}) {
      auto p = packet_builder{}.ipv4("198.18.0.2", "198.18.0.100", {.options = hex_bytes(opts)}).build();
      auto v = *ipv4_view::make(p);
      CHECK(v.check_options() == drop_reason::bad_ipv4_option);
      int n = 0;
      for ([[maybe_unused]] const auto& o : v.options()) ++n;
      CHECK(n == 0);
    }
    // End of list ends the walk: what follows it is not looked at.
    auto p = packet_builder{}.ipv4("198.18.0.2", "198.18.0.100", {.options = hex_bytes("00 07 01 00")}).build();
    CHECK(ipv4_view::make(p)->check_options() == drop_reason::none);
  }
}
