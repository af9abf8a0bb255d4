// Ethernet II header view: the smoltcp six (deconstruct, construct, impossible length, parse,
// emit) on the first 14 bytes of a real frame, plus mac_address.
#include <doctest/doctest.h>

#include <vector>

#include "l4lb/wire/ethernet.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;
using l4lb::test::mac;

namespace {
// client-vip-http.pcap frame 3 (tshark -r client-vip-http.pcap -x -Y frame.number==3), first 14
// bytes: dst 02:00:c6:12:00:0a (lvscap-srv), src 02:00:c6:12:00:02 (lvscap-cli1), type IPv4.
const auto frame_bytes = hex_bytes("02 00 c6 12 00 0a 02 00 c6 12 00 02 08 00");
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("ethernet_view: reads fields from fixture bytes") {
    auto v = ethernet_view::make(frame_bytes);
    REQUIRE(v);
    CHECK(v->dst() == mac("02:00:c6:12:00:0a"));
    CHECK(v->src() == mac("02:00:c6:12:00:02"));
    CHECK(v->ethertype() == ethertype::ipv4);
    CHECK(v->payload().empty());
  }

  TEST_CASE("ethernet_view: setters write exactly the fixture into a 0xa5 buffer") {
    std::vector<std::byte> buf(14, std::byte{0xa5});
    auto v = ethernet_mut_view::unchecked(buf);
    v.set_dst(mac("02:00:c6:12:00:0a"));
    v.set_src(mac("02:00:c6:12:00:02"));
    v.set_ethertype(0x0800);
    CHECK(buf == frame_bytes);
  }

  TEST_CASE("ethernet_view: make() refuses fewer than 14 bytes") {
    for (std::size_t n = 0; n < 14; ++n) {
      auto v = ethernet_view::make(std::span(frame_bytes).first(n));
      REQUIRE_FALSE(v);
      CHECK(v.error() == drop_reason::truncated_ethernet);
    }
    CHECK(ethernet_view::make(frame_bytes));
  }

  TEST_CASE("ethernet_repr: parse and emit round-trip the fixture") {
    const ethernet_repr want{mac("02:00:c6:12:00:0a"), mac("02:00:c6:12:00:02"), 0x0800};
    CHECK(ethernet_repr::parse(*ethernet_view::make(frame_bytes)) == want);
    std::vector<std::byte> buf(14, std::byte{0xa5});
    want.emit(ethernet_mut_view::unchecked(buf));
    CHECK(buf == frame_bytes);
  }

  TEST_CASE("mac_address: text form and group bits") {
    CHECK(mac("02:00:c6:12:00:0a").to_string() == "02:00:c6:12:00:0a");
    CHECK(mac("ff:ff:ff:ff:ff:ff").is_broadcast());
    CHECK(mac("ff:ff:ff:ff:ff:ff").is_multicast());
    CHECK(mac("01:00:5e:00:00:01").is_multicast());  // IPv4 multicast MAC prefix (RFC 1112)
    CHECK_FALSE(mac("02:00:c6:12:00:0a").is_multicast());
    CHECK_FALSE(mac("02:00:c6:12:00:0a").is_broadcast());
  }
}

TEST_SUITE("wire") {
  TEST_CASE("mac_address::parse: the colon and dash forms, either case, and named errors") {
    auto m = mac_address::parse("02:00:c6:12:00:0a");
    REQUIRE(m);
    CHECK(m->bytes == std::array<std::uint8_t, 6>{0x02, 0x00, 0xc6, 0x12, 0x00, 0x0a});
    CHECK(m->to_string() == "02:00:c6:12:00:0a");
    CHECK(*mac_address::parse("02-00-C6-12-00-0A") == *m);
    CHECK(mac_address::parse("ff:ff:ff:ff:ff:ff")->is_broadcast());
    static_assert(mac_address::parse("02:00:c6:12:00:fe")->bytes[5] == 0xfe);  // usable in constexpr
    struct bad_case {
      const char* text;
      address_error want;
    };
    const bad_case bad[] = {
        {"", address_error::empty},
        {"02:00:c6:12:00", address_error::wrong_mac_group_count},
        {"02:00:c6:12:00:0a:01", address_error::wrong_mac_group_count},
        {"02:00:c6:12:00:", address_error::bad_mac_group},
        {"02:0:c6:12:00:0a", address_error::bad_mac_group},
        {"02:000:c6:12:00:0a", address_error::bad_mac_group},
        {"0200c612000a", address_error::bad_mac_group},
        {"02:00:c6:12:00:0g", address_error::bad_character},
        {"02:00-c6:12:00:0a", address_error::bad_character},  // one separator throughout
        {"02.00.c6.12.00.0a", address_error::bad_character},
    };
    for (const auto& b : bad) {
      CAPTURE(b.text);
      auto r = mac_address::parse(b.text);
      REQUIRE_FALSE(r);
      CHECK(to_string(r.error()) == to_string(b.want));
    }
  }
}
