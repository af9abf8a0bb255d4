// Cutting valid packets short: every prefix 0..N-1 of several packets (and every cut whose IP
// length fields were fixed up to match, which pushes the cut into the L4 header and the ICMP quote)
// must give an error or a view whose offsets all lie inside the bytes given - never a crash, never
// a read outside. Each cut lives in its own exactly-sized heap buffer, so the ASan build turns any
// out-of-bounds read into a failure.
#include <doctest/doctest.h>

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
bytes frame(const char* file, std::size_t number) {
  auto f = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
  REQUIRE(f);
  REQUIRE(f->records().size() >= number);
  auto d = f->records()[number - 1].data;
  return {d.begin(), d.end()};
}

struct sample {
  const char* what;
  bytes b;
  bool ip_only = false;
};

std::vector<sample> samples() {
  auto quoted6 = packet_builder{}.ipv6("fd00::100", "fd00::99").dest_opts().tcp(80, 40000, tcp_flags::ack).payload(64);
  return {
      {"v4 TCP SYN with options (client-vip-http.pcap #3)", frame("client-vip-http.pcap", 3)},
      {"v4 options + TCP options",
       packet_builder{}
           .eth()
           .ipv4("198.18.0.1", "198.18.0.2", {.options = hex_bytes("07 07 04 00 00 00 00 01 94 04 00 00")})
           .tcp(1, 2, tcp_flags::syn, {.options = hex_bytes("02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07")})
           .payload(5)
           .build()},
      {"v6 HBH+RH+DO+FH+AH then TCP",
       packet_builder{}
           .eth()
           .ipv6("fd00::1", "fd00::2")
           .hop_by_hop()
           .routing()
           .dest_opts(16)
           .fragment6(0, true)
           .ah(16)
           .tcp(1, 2, tcp_flags::syn, {.options = hex_bytes("02 04 05 a0")})
           .payload(3)
           .build()},
      {"802.1Q ICMP echo (vlan-tagged.pcap #86)", frame("vlan-tagged.pcap", 86)},
      {"QinQ TCP SYN (vlan-tagged.pcap #130)", frame("vlan-tagged.pcap", 130)},
      {"ICMP port unreachable + quote (icmp.pcap #20)", frame("icmp.pcap", 20)},
      {"ICMPv6 port unreachable + quote (icmp.pcap #24)", frame("icmp.pcap", 24)},
      {"ICMP frag needed, 548-byte quote (icmp.pcap #51)", frame("icmp.pcap", 51)},
      {"ICMPv6 packet too big quoting an extension header",
       packet_builder{}.eth().ipv6("fd00::1", "fd00::100").icmp(2, 0, 1280).quote(quoted6).build()},
      {"UDP first fragment", packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.2", {.more_frags = true}).udp(1, 2, {.length = 500}).payload(40).build()},
      {"SCTP", packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.2").sctp(1, 2).payload(4).build()},
      {"bare IPv6 UDP (parse_ip)", packet_builder{}.ipv6("fd00::1", "fd00::2").dest_opts().udp(1, 2).payload(6).build(), true},
      {"bare IPv4 ICMP error (parse_ip)",
       packet_builder{}
           .ipv4("198.18.0.1", "198.18.0.2")
           .icmp(3, 3)
           .quote(packet_builder{}.ipv4("198.18.0.2", "198.18.0.1", {.options = hex_bytes("94 04 00 00")}).udp(5, 6))
           .build(),
       true},
  };
}

// Touches every accessor that reads bytes, and checks the offsets against the span.
void check_consistent(const packet_view& p, std::size_t n) {
  REQUIRE(p.frame().size() == n);
  const std::size_t l3_end = p.l3_offset() + p.l3_len();
  CHECK(l3_end <= n);
  CHECK(p.l3_offset() <= p.l4_offset());
  CHECK(p.l4_offset() <= p.payload_offset());
  CHECK(p.payload_offset() + p.payload_len() <= l3_end);
  std::size_t sink = p.key().hash();
  for (std::size_t i = 0; i < p.vlan_count(); ++i) sink += std::size_t{p.vlan(i).vid()} + p.vlan_tpid(i);
  if (p.has_ethernet()) sink += p.ethernet().ethertype();
  if (p.is_ipv4()) {
    sink += std::size_t{p.ipv4().ttl()} + p.ipv4().compute_checksum();
    for (const auto& o : p.ipv4().options()) sink += o.kind + o.data.size();
  } else {
    sink += p.ipv6().hop_limit();
  }
  if (p.has_l4_header()) {
    switch (p.protocol()) {
      case ip_proto::tcp:
        CHECK(p.l4_offset() + p.tcp().header_len() <= l3_end);
        sink += std::size_t{p.tcp().mss().value_or(0)} + p.tcp().window_scale().value_or(0);
        for (const auto& o : p.tcp().options()) sink += o.kind + o.data.size();
        break;
      case ip_proto::udp:
        sink += p.udp().payload().size();
        break;
      case ip_proto::icmp:
      case ip_proto::icmpv6:
        sink += p.icmp().rest_of_header();
        break;
      default:
        break;
    }
  }
  if (p.is_icmp_error()) {
    CHECK(p.quote_l3_offset() < p.quote_l4_offset());
    CHECK(p.quote_l4_offset() + icmp_quote_min_l4 <= l3_end);
    sink += p.quoted_flow_key().hash();
  }
  for (auto byte : p.payload()) sink += std::to_integer<std::size_t>(byte);
  CHECK(sink != 1);  // keep the reads
}

const std::set<drop_reason> length_reasons = {
    drop_reason::truncated_ethernet, drop_reason::truncated_vlan, drop_reason::truncated_ip,
    drop_reason::truncated_ipv4, drop_reason::truncated_ipv6, drop_reason::ipv4_total_length_exceeds_frame,
    drop_reason::ipv6_payload_length_exceeds_frame};

// After the IP length fields are fixed up to the cut, the error moves into what the cut hit.
const std::set<drop_reason> inner_reasons = {
    drop_reason::truncated_ipv4,       drop_reason::ipv4_total_length_below_header, drop_reason::truncated_ipv6_extension,
    drop_reason::truncated_tcp,        drop_reason::truncated_udp,                  drop_reason::bad_udp_length,
    drop_reason::truncated_sctp,       drop_reason::truncated_icmp,                 drop_reason::truncated_icmp_quote};

auto parse_any(bytes& b, bool ip_only) {
  return ip_only ? parse_ip(b, {.check_options = true}) : parse(b, {.check_options = true});
}
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("truncation: every prefix of valid packets is an error or a consistent view") {
    for (const auto& s : samples()) {
      CAPTURE(s.what);
      auto whole_buf = s.b;
      auto whole = parse_any(whole_buf, s.ip_only);
      REQUIRE(whole);
      check_consistent(*whole, whole_buf.size());
      for (std::size_t n = 0; n < s.b.size(); ++n) {
        CAPTURE(n);
        bytes cut(s.b.begin(), s.b.begin() + static_cast<std::ptrdiff_t>(n));
        auto p = parse_any(cut, s.ip_only);
        if (p) {
          check_consistent(*p, n);
          CHECK(p->key() == whole->key());  // only padding can have been cut
        } else {
          CHECK(length_reasons.count(p.error()) == 1);
        }
      }
    }
  }

  TEST_CASE("truncation: cuts with the IP lengths fixed up reach the L4 header and the quote") {
    for (const auto& s : samples()) {
      CAPTURE(s.what);
      auto whole_buf = s.b;
      auto whole = parse_any(whole_buf, s.ip_only);
      REQUIRE(whole);
      const std::size_t l3 = whole->l3_offset();
      const std::size_t fixed = whole->is_ipv4() ? whole->ip_header_len() : 40;
      for (std::size_t n = l3 + fixed; n < l3 + whole->l3_len(); ++n) {
        CAPTURE(n);
        bytes cut(s.b.begin(), s.b.begin() + static_cast<std::ptrdiff_t>(n));
        if (whole->is_ipv4()) {
          auto ip = ipv4_mut_view::unchecked(std::span(cut).subspan(l3));
          ip.set_total_len(static_cast<std::uint16_t>(n - l3));
          ip.fill_checksum();
        } else {
          ipv6_mut_view::unchecked(std::span(cut).subspan(l3)).set_payload_len(static_cast<std::uint16_t>(n - l3 - 40));
        }
        auto p = parse_any(cut, s.ip_only);
        if (p) {
          check_consistent(*p, n);
        } else {
          CHECK(inner_reasons.count(p.error()) == 1);
        }
      }
    }
  }

  TEST_CASE("truncation: an ICMP error is refused exactly below IP header + 8 quoted bytes") {
    // RFC 792: the quote holds the IP header and the first 64 bits of the datagram's data.
    auto inner = packet_builder{}.ipv4("198.18.0.100", "198.18.8.2", {.options = hex_bytes("94 04 00 00")}).udp(9, 33434).payload(20);
    for (std::size_t q = 0; q <= 52; ++q) {
      CAPTURE(q);
      auto b = packet_builder{}.eth().ipv4("198.18.0.1", "198.18.0.100").icmp(11, 0).quote(inner, q).build();
      auto p = parse(b);
      if (q < 24 + 8) {
        REQUIRE_FALSE(p);
        CHECK(p.error() == drop_reason::truncated_icmp_quote);
      } else {
        REQUIRE(p);
        CHECK(p->quote_l4_offset() == 14 + 20 + 8 + 24);
        CHECK(p->quoted_flow_key().to_string() == "udp 198.18.0.100:9 -> 198.18.8.2:33434");
      }
    }
  }
}
