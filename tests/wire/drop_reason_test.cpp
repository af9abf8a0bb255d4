// Every drop_reason: a packet built to have exactly that defect, and parse() naming exactly that
// reason. A final check makes sure the table covers every enumerator, so a new reason without a
// test fails here.
#include <doctest/doctest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::bytes;
using l4lb::test::hex_bytes;
using l4lb::test::packet_builder;

namespace {
bytes arp_frame() {
  // client-vip-http.pcap frame 1: ARP who-has 198.18.0.100 (tshark: eth:ethertype:arp).
  auto f = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/client-vip-http.pcap");
  REQUIRE(f);
  auto d = f->records()[0].data;
  return {d.begin(), d.end()};
}

packet_builder v4() { return std::move(packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100")); }
packet_builder v6() { return std::move(packet_builder{}.eth().ipv6("fd00::2", "fd00::100")); }
bytes cut(bytes b, std::size_t n) {
  b.resize(n);
  return b;
}

struct bad_packet {
  const char* what;
  std::function<bytes()> make;
  drop_reason expect;
  bool ip_only = false;  // parse_ip() instead of parse()
  parse_options options{};
};

std::vector<bad_packet> table() {
  const parse_options strict{.verify_ipv4_checksum = true, .check_options = true};
  return {
      {"ARP is passed, not malformed", arp_frame, drop_reason::not_ip},
      {"802.3 length field (LLC) is not IP", [] { return packet_builder{}.eth({}, {}, 0x0026).payload(38).build(); },
       drop_reason::not_ip},
      {"VLAN-tagged ARP", [] { return packet_builder{}.eth().vlan(5).raw(bytes(28), 0x0806).build(); },
       drop_reason::not_ip},
      {"frame over 65535 bytes", [] { return v4().udp(1, 2).payload(65536).build(); }, drop_reason::frame_too_large},
      {"13-byte frame", [] { return cut(v4().udp(1, 2).build(), 13); }, drop_reason::truncated_ethernet},
      {"VLAN TPID with 3 bytes after it", [] { return cut(packet_builder{}.eth().vlan(5).ipv4("1.1.1.1", "2.2.2.2").build(), 17); },
       drop_reason::truncated_vlan},
      {"three VLAN tags", [] { return packet_builder{}.eth().vlan(1).vlan(2).vlan(3).ipv4("1.1.1.1", "2.2.2.2").build(); },
       drop_reason::too_many_vlan_tags},
      {"parse_ip of nothing", [] { return bytes{}; }, drop_reason::truncated_ip, true},
      {"parse_ip of version 5", [] { return packet_builder{}.ipv4("1.1.1.1", "2.2.2.2", {.version = 5}).build(); },
       drop_reason::bad_ip_version, true},
      {"EtherType IPv4, version 6 inside",
       [] { return packet_builder{}.eth({}, {}, 0x0800).ipv6("fd00::1", "fd00::2").build(); }, drop_reason::bad_ip_version},
      {"EtherType IPv6, version 4 inside",
       [] { return packet_builder{}.eth({}, {}, 0x86dd).ipv4("1.1.1.1", "2.2.2.2").payload(20).build(); },
       drop_reason::bad_ip_version},
      {"19 bytes of IPv4", [] { return cut(v4().build(), 14 + 19); }, drop_reason::truncated_ipv4},
      {"IHL 4", [] { return packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.ihl = 4}).payload(20).build(); },
       drop_reason::bad_ipv4_ihl},
      {"IHL 15 in a 40-byte packet",
       [] { return packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.ihl = 15}).payload(20).build(); },
       drop_reason::truncated_ipv4},
      {"total length past the frame",
       [] { return packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.total_len = 41}).payload(20).build(); },
       drop_reason::ipv4_total_length_exceeds_frame},
      {"total length below the header",
       [] { return packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.total_len = 19}).payload(20).build(); },
       drop_reason::ipv4_total_length_below_header},
      {"bad IPv4 header checksum (opt-in)",
       [] { return packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.corrupt_checksum = true}).udp(1, 2).build(); },
       drop_reason::bad_ipv4_header_checksum, false, strict},
      {"IPv4 option length 1 (opt-in)",
       [] { return packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.options = hex_bytes("07 01 00 00")}).udp(1, 2).build(); },
       drop_reason::bad_ipv4_option, false, strict},
      {"39 bytes of IPv6", [] { return cut(v6().build(), 14 + 39); }, drop_reason::truncated_ipv6},
      {"IPv6 payload length past the frame",
       [] { return packet_builder{}.eth().ipv6("fd00::1", "fd00::2", {.payload_len = 9}).udp(1, 2).build(); },
       drop_reason::ipv6_payload_length_exceeds_frame},
      {"IPv6 dest opts longer than the payload",
       [] {
         auto b = v6().dest_opts().build();
         b[14 + 41] = std::byte{1};  // 16 bytes claimed, 8 present
         return b;
       },
       drop_reason::truncated_ipv6_extension},
      {"nine IPv6 extension headers",
       [] {
         auto p = v6();
         for (int i = 0; i < 9; ++i) p.dest_opts();
         return p.udp(1, 2).build();
       },
       drop_reason::too_many_ipv6_extensions},
      {"hop-by-hop after dest opts", [] { return v6().dest_opts().hop_by_hop().udp(1, 2).build(); },
       drop_reason::misplaced_ipv6_hop_by_hop},
      {"19 bytes of TCP", [] { return v4().raw(bytes(19), 6).build(); }, drop_reason::truncated_tcp},
      {"TCP data offset 4", [] { return v4().tcp(1, 2, 0, {.data_offset = 4}).build(); }, drop_reason::bad_tcp_data_offset},
      {"TCP option past the header (opt-in)",
       [] { return v4().tcp(1, 2, tcp_flags::syn, {.options = hex_bytes("02 08 05 b4")}).build(); },
       drop_reason::bad_tcp_option, false, strict},
      {"7 bytes of UDP", [] { return v4().raw(bytes(7), 17).build(); }, drop_reason::truncated_udp},
      {"UDP length past the IP payload", [] { return v4().udp(1, 2, {.length = 13}).payload(4).build(); },
       drop_reason::bad_udp_length},
      {"UDP length 7", [] { return v4().udp(1, 2, {.length = 7}).payload(4).build(); }, drop_reason::bad_udp_length},
      {"11 bytes of SCTP", [] { return v4().raw(bytes(11), 132).build(); }, drop_reason::truncated_sctp},
      {"7 bytes of ICMP", [] { return v4().raw(hex_bytes("08 00 00 00 00 01 00"), 1).build(); }, drop_reason::truncated_icmp},
      {"7 bytes of ICMPv6", [] { return v6().raw(hex_bytes("80 00 00 00 00 01 00"), 58).build(); }, drop_reason::truncated_icmp},
      {"ICMP error quoting IP header + 7 bytes",
       [] {
         auto inner = packet_builder{}.ipv4("198.18.0.100", "198.18.8.2").udp(9, 33434);
         return v4().icmp(11, 0).quote(inner, 27).build();
       },
       drop_reason::truncated_icmp_quote},
      {"ICMPv6 error quoting 47 bytes",
       [] {
         auto inner = packet_builder{}.ipv6("fd00::100", "fd00::99").tcp(80, 1, 0);
         return v6().icmp(2, 0, 1280).quote(inner, 47).build();
       },
       drop_reason::truncated_icmp_quote},
      {"ICMPv4 error quoting IPv6",
       [] {
         auto inner = packet_builder{}.ipv6("fd00::100", "fd00::99").udp(1, 2);
         return v4().icmp(3, 1).quote(inner).build();
       },
       drop_reason::bad_icmp_quote},
  };
}

}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("drop_reason: each bad packet gets exactly its reason, and every reason is covered") {
    std::set<drop_reason> seen;
    for (const auto& row : table()) {
      CAPTURE(row.what);
      auto b = row.make();
      auto r = row.ip_only ? parse_ip(b, row.options) : parse(b, row.options);
      REQUIRE_FALSE(r);
      CHECK(to_string(r.error()) == to_string(row.expect));
      seen.insert(r.error());
    }
    for (std::size_t i = 1; i < drop_reason_count; ++i) {
      auto r = static_cast<drop_reason>(i);
      CAPTURE(to_string(r));
      CHECK(seen.count(r) == 1);
    }
  }

  TEST_CASE("drop_reason: the opt-in checks are off by default") {
    auto bad_sum = packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.corrupt_checksum = true}).udp(1, 2).build();
    CHECK(parse(bad_sum));
    auto bad_opt = packet_builder{}.eth().ipv4("1.1.1.1", "2.2.2.2", {.options = hex_bytes("07 01 00 00")}).udp(1, 2).build();
    CHECK(parse(bad_opt));
    auto bad_tcp_opt = v4().tcp(1, 2, tcp_flags::syn, {.options = hex_bytes("02 08 05 b4")}).build();
    CHECK(parse(bad_tcp_opt));
  }

  TEST_CASE("drop_reason: names are distinct, none and not_ip are not malformed") {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < drop_reason_count; ++i) {
      auto name = to_string(static_cast<drop_reason>(i));
      CHECK(name != "unknown");
      names.insert(name);
    }
    CHECK(names.size() == drop_reason_count);
    CHECK(to_string(static_cast<drop_reason>(drop_reason_count)) == "unknown");
    CHECK_FALSE(is_malformed(drop_reason::none));
    CHECK_FALSE(is_malformed(drop_reason::not_ip));
    CHECK(is_malformed(drop_reason::truncated_tcp));
  }
}
