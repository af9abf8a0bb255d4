// 802.1Q / 802.1ad tag view: the smoltcp six on real tags from vlan-tagged.pcap.
#include <doctest/doctest.h>

#include <vector>

#include "l4lb/wire/vlan.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;

namespace {
// vlan-tagged.pcap frame 86 (tshark -x -Y frame.number==86): "81 00 | 00 64 08 00": TPID 0x8100,
// TCI 0x0064 = PCP 0, DEI 0, VID 100 (tshark: vlan.priority 0, vlan.id 100), then IPv4.
const auto tag_bytes = hex_bytes("00 64 08 00");
// vlan-tagged.pcap frame 130: "88 a8 | 00 c8 81 00 | 01 2c 08 00": S-tag VID 200 announcing a
// C-tag, C-tag VID 300 announcing IPv4 (tshark: ieee8021ad.id 200, vlan.id 300).
const auto s_tag_bytes = hex_bytes("00 c8 81 00");
const auto c_tag_bytes = hex_bytes("01 2c 08 00");
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("vlan_view: reads fields from fixture bytes") {
    auto v = vlan_view::make(tag_bytes);
    REQUIRE(v);
    CHECK(v->tci() == 0x0064);
    CHECK(v->pcp() == 0);
    CHECK_FALSE(v->dei());
    CHECK(v->vid() == 100);
    CHECK(v->ethertype() == ethertype::ipv4);
    CHECK(vlan_view::make(s_tag_bytes)->vid() == 200);
    CHECK(vlan_view::make(s_tag_bytes)->ethertype() == ethertype::vlan);
    CHECK(vlan_view::make(c_tag_bytes)->vid() == 300);
  }

  TEST_CASE("vlan_view: PCP, DEI and VID are separate bit fields of the TCI") {
    // TCI 0xb00a: 101 1 000000001010 -> PCP 5, DEI 1, VID 10 (IEEE 802.1Q 9.6).
    const auto b = hex_bytes("b0 0a 86 dd");
    auto v = *vlan_view::make(b);
    CHECK(v.pcp() == 5);
    CHECK(v.dei());
    CHECK(v.vid() == 10);
    CHECK(v.ethertype() == ethertype::ipv6);
  }

  TEST_CASE("vlan_view: setters write exactly the fixture into a 0xa5 buffer") {
    std::vector<std::byte> buf(4, std::byte{0xa5});
    auto v = vlan_mut_view::unchecked(buf);
    v.set_tci(0);
    v.set_vid(100);
    v.set_ethertype(0x0800);
    CHECK(buf == tag_bytes);
    // Field setters leave the other fields alone.
    v.set_pcp(5);
    v.set_dei(true);
    CHECK(v.vid() == 100);
    CHECK(buf == hex_bytes("b0 64 08 00"));
    v.set_vid(10);
    CHECK(buf == hex_bytes("b0 0a 08 00"));
  }

  TEST_CASE("vlan_view: make() refuses fewer than 4 bytes") {
    for (std::size_t n = 0; n < 4; ++n) {
      auto v = vlan_view::make(std::span(tag_bytes).first(n));
      REQUIRE_FALSE(v);
      CHECK(v.error() == drop_reason::truncated_vlan);
    }
  }

  TEST_CASE("vlan_repr: parse and emit round-trip the fixtures") {
    CHECK(vlan_repr::parse(*vlan_view::make(c_tag_bytes)) == vlan_repr{0, false, 300, 0x0800});
    std::vector<std::byte> buf(4, std::byte{0xa5});
    vlan_repr{0, false, 200, 0x8100}.emit(vlan_mut_view::unchecked(buf));
    CHECK(buf == s_tag_bytes);
  }

  TEST_CASE("is_vlan_tpid: 802.1Q, 802.1ad and the old 0x9100") {
    CHECK(is_vlan_tpid(0x8100));
    CHECK(is_vlan_tpid(0x88a8));
    CHECK(is_vlan_tpid(0x9100));
    CHECK_FALSE(is_vlan_tpid(0x0800));
    CHECK_FALSE(is_vlan_tpid(0x86dd));
  }
}
