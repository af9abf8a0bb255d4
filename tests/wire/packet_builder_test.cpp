// tests/support/packet_builder.hpp is shared by every area's tests, so it is tested against the
// ground truth: frames written by the Linux stack into the bundled captures. Rebuilding a real
// frame field by field must give the same bytes, checksums (computed by Linux) included.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::test;

namespace {
std::vector<std::byte> frame(const char* file, std::size_t number) {
  auto f = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
  REQUIRE(f);
  REQUIRE(f->records().size() >= number);
  auto d = f->records()[number - 1].data;  // tshark numbers frames from 1
  return {d.begin(), d.end()};
}
std::span<const std::byte> tail(const std::vector<std::byte>& b, std::size_t from) {
  return std::span(b).subspan(from);
}
constexpr std::uint8_t syn = 0x02;
const std::string lvscap32 = "lvscap-lvscap-lvscap-lvscap-lvsc";  // the probes' 32 data bytes
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("hex_bytes: digits in pairs, separators ignored, bad input refused") {
    CHECK(hex_bytes("45 00\n00:3c-ff") ==
          std::vector<std::byte>{std::byte{0x45}, std::byte{0}, std::byte{0}, std::byte{0x3c}, std::byte{0xff}});
    CHECK(hex_bytes("").empty());
    CHECK_THROWS_AS(hex_bytes("4"), std::invalid_argument);
    CHECK_THROWS_AS(hex_bytes("4g"), std::invalid_argument);
    CHECK(to_hex(hex_bytes("0a ff")) == "0a ff");
  }

  TEST_CASE("packet_builder: the RFC 1071 section 3 example sum") {
    // RFC 1071 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (one's complement), checksum 220d.
    CHECK(ones_sum(hex_bytes("00 01 f2 03 f4 f5 f6 f7")) == 0xddf2);
    CHECK(inet_checksum(hex_bytes("00 01 f2 03 f4 f5 f6 f7")) == 0x220d);
    CHECK(ones_sum(hex_bytes("01")) == 0x0100);  // an odd byte is padded with zero on the right
  }

  TEST_CASE("packet_builder: IPv4 TCP SYN with options, as Linux sent it") {
    // client-vip-http.pcap frame 3; tshark -T fields: ip.id 0x4785, ip.flags 0x02 (DF), ttl 64,
    // tcp.seq_raw 1723767245, window 64240; eth.src ...:02, eth.dst ...:0a.
    auto want = frame("client-vip-http.pcap", 3);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:00:0a"), mac("02:00:c6:12:00:02"))
                   .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x4785, .dont_frag = true})
                   .tcp(35132, 80, syn,
                        {.seq = 1723767245u, .window = 64240,
                         .options = hex_bytes("02 04 05 b4 04 02 08 0a ce 99 69 07 00 00 00 00 01 03 03 0a")})
                   .build();
    CHECK(to_hex(got) == to_hex(want));
  }

  TEST_CASE("packet_builder: IPv6 TCP SYN (pseudo-header checksum), as Linux sent it") {
    // ipv6-http.pcap frame 3; tshark: ipv6.flow 0x0827a1, hlim 64, seq_raw 1906788374,
    // window 64800.
    auto want = frame("ipv6-http.pcap", 3);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:00:0a"), mac("02:00:c6:12:00:02"))
                   .ipv6("fd00:198:18::2", "fd00:198:18::100", {.flow_label = 0x827a1})
                   .tcp(56726, 80, syn,
                        {.seq = 1906788374u, .window = 64800,
                         .options = hex_bytes("02 04 05 a0 04 02 08 0a ee e4 64 1a 00 00 00 00 01 03 03 0a")})
                   .build();
    CHECK(to_hex(got) == to_hex(want));
  }

  TEST_CASE("packet_builder: UDP DNS query, as dig sent it") {
    // udp-dns-like.pcap frame 1; tshark: ip.id 0x26b8, no flags, ttl 64, 59983 -> 53.
    auto want = frame("udp-dns-like.pcap", 1);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:00:0a"), mac("02:00:c6:12:00:02"))
                   .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x26b8})
                   .udp(59983, 53)
                   .payload(tail(want, 42))
                   .build();
    CHECK(to_hex(got) == to_hex(want));
  }

  TEST_CASE("packet_builder: ICMP echo request, as ping sent it") {
    // icmp.pcap frame 1; tshark: ip.id 0x0fba, DF, ttl 64, icmp.ident 4365, seq 1, 48 data
    // bytes after the 8-byte timestamp.
    auto want = frame("icmp.pcap", 1);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:00:0a"), mac("02:00:c6:12:00:02"))
                   .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x0fba, .dont_frag = true})
                   .icmp_echo(true, 4365, 1)
                   .payload(tail(want, 42))
                   .build();
    CHECK(to_hex(got) == to_hex(want));
  }

  TEST_CASE("packet_builder: ICMP port unreachable with its quote, as the kernel sent it") {
    // icmp.pcap frame 20 (tshark -x): outer TOS 0xc0, id 0xace9, TTL 64, VIP -> client; quote:
    // id 0x9687, DF, TTL 64, UDP 40009 -> 9 with 32 data bytes "lvscap-...".
    auto want = frame("icmp.pcap", 20);
    auto inner = packet_builder{}
                     .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x9687, .dont_frag = true})
                     .udp(40009, 9)
                     .payload(lvscap32);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:00:02"), mac("02:00:c6:12:00:0a"))
                   .ipv4("198.18.0.100", "198.18.0.2", {.tos = 0xc0, .ident = 0xace9})
                   .icmp(3, 3)
                   .quote(inner)
                   .build();
    CHECK(to_hex(got) == to_hex(want));
  }

  TEST_CASE("packet_builder: ICMPv6 port unreachable with its quote, as the kernel sent it") {
    // icmp.pcap frame 24 (tshark -x): outer flow 0x9c7ba, VIP6 -> client; quote flow 0x4d1d9,
    // UDP 40011 -> 9 with the same 32 data bytes.
    auto want = frame("icmp.pcap", 24);
    auto inner = packet_builder{}
                     .ipv6("fd00:198:18::2", "fd00:198:18::100", {.flow_label = 0x4d1d9})
                     .udp(40011, 9)
                     .payload(lvscap32);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:00:02"), mac("02:00:c6:12:00:0a"))
                   .ipv6("fd00:198:18::100", "fd00:198:18::2", {.flow_label = 0x9c7ba})
                   .icmp(1, 4)
                   .quote(inner)
                   .build();
    CHECK(to_hex(got) == to_hex(want));
  }

  TEST_CASE("packet_builder: 802.1Q and QinQ frames, as the bridges sent them") {
    // vlan-tagged.pcap frame 86: VID 100, ICMP echo id 4448 seq 1, ip.id 0x632e, DF.
    auto want = frame("vlan-tagged.pcap", 86);
    auto got = packet_builder{}
                   .eth(mac("02:00:c6:12:01:0a"), mac("02:00:c6:12:01:02"))
                   .vlan(100)
                   .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x632e, .dont_frag = true})
                   .icmp_echo(true, 4448, 1)
                   .payload(tail(want, 46))
                   .build();
    CHECK(to_hex(got) == to_hex(want));
    // vlan-tagged.pcap frame 130: S-VID 200 (0x88a8) + C-VID 300, TCP SYN 40436 -> 80,
    // ip.id 0xaaa8, DF, seq_raw 2128118690, window 64240.
    auto want2 = frame("vlan-tagged.pcap", 130);
    auto got2 = packet_builder{}
                    .eth(mac("02:00:c6:12:0a:64"), mac("02:00:c6:12:0a:02"))
                    .qinq(200, 300)
                    .ipv4("198.18.10.2", "198.18.10.100", {.ident = 0xaaa8, .dont_frag = true})
                    .tcp(40436, 80, syn,
                         {.seq = 2128118690u, .window = 64240,
                          .options = hex_bytes("02 04 05 b4 04 02 08 0a 44 f3 09 7c 00 00 00 00 01 03 03 0a")})
                    .build();
    CHECK(to_hex(got2) == to_hex(want2));
  }

  TEST_CASE("packet_builder: UDP checksum 0 goes out as 0xffff, and zero_checksum writes 0") {
    // Find a payload whose checksum computes to 0 (RFC 768: then all ones is sent): with the
    // pseudo-header fixed, the 2-byte payload p makes the sum ~0 for exactly one value of p.
    auto probe = packet_builder{}.ipv4("198.18.0.1", "198.18.0.2").udp(1, 2).payload(hex_bytes("00 00")).build();
    // Checksum with payload 0000 is c; adding p to the sum changes the checksum to ~(~c + p).
    const std::uint16_t c = static_cast<std::uint16_t>(std::to_integer<unsigned>(probe[26]) << 8 |
                                                       std::to_integer<unsigned>(probe[27]));
    const std::uint16_t p = static_cast<std::uint16_t>(c);  // ~c + c = 0xffff -> checksum 0
    auto zero = packet_builder{}
                    .ipv4("198.18.0.1", "198.18.0.2")
                    .udp(1, 2)
                    .payload(std::vector<std::byte>{std::byte(p >> 8), std::byte(p & 0xff)})
                    .build();
    CHECK(zero[26] == std::byte{0xff});
    CHECK(zero[27] == std::byte{0xff});
    auto none = packet_builder{}.ipv4("198.18.0.1", "198.18.0.2").udp(1, 2, {.zero_checksum = true}).build();
    CHECK(none[26] == std::byte{0});
    CHECK(none[27] == std::byte{0});
  }

  TEST_CASE("packet_builder: overrides write the bad values they name") {
    auto b = packet_builder{}
                 .ipv4("198.18.0.1", "198.18.0.2", {.total_len = 99, .ihl = 4, .version = 5, .corrupt_checksum = true})
                 .build();
    CHECK(b[0] == std::byte{0x54});
    CHECK(b[3] == std::byte{99});
    // The stored checksum is off by its flipped low bit, so the header no longer sums to 0xffff.
    const auto residue = inet_checksum(std::span(b).first(20));
    CHECK((residue == 0x0001 || residue == 0xfffe));
    auto t = packet_builder{}.ipv4("198.18.0.1", "198.18.0.2").tcp(1, 2, 0, {.data_offset = 3}).build();
    CHECK(t[32] == std::byte{0x30});
    auto r = packet_builder{}.eth().raw(hex_bytes("00 01 08 00"), 0x0806).build();
    CHECK(r[12] == std::byte{0x08});
    CHECK(r[13] == std::byte{0x06});
    CHECK(r.size() == 18);
  }
}
