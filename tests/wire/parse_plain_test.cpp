// parse()'s straight path for plain frames (Ethernet, IPv4 without options or fragmentation,
// TCP or UDP) against the general path: over every frame of the bundled captures and thousands
// of mutations and truncations of them, under every parse_options combination, whenever the
// straight path accepts a frame the general one accepts it too with identical facts; parse_into (the
// bulk form) agrees with parse(); and the plain frames do take the straight path (else the
// director's fast case would silently be the slow one).
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::packet_builder;
using parser = l4lb::wire::detail::packet_parser;
using l4lb::wire::detail::packet_facts;

namespace {

std::vector<std::vector<std::byte>> capture_frames() {
  std::vector<std::vector<std::byte>> out;
  for (const char* file : {"client-vip-http.pcap", "icmp.pcap", "ipv6-http.pcap", "udp-dns-like.pcap",
                           "vlan-tagged.pcap"}) {
    auto f = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
    REQUIRE(f);
    for (const auto& r : f->records()) out.emplace_back(r.data.begin(), r.data.end());
  }
  return out;
}

struct tally {
  std::size_t straight = 0;  // frames the straight path took
  std::size_t checked = 0;
};

// One frame under one option set: the straight path either declines, or agrees with run().
void compare(std::span<const std::byte> frame, const parse_options& opt, tally& t) {
  packet_facts fast, general;
  const bool took = parser::run_plain_ipv4(frame, opt, fast);
  const drop_reason r = parser::run(frame, true, opt, general);
  ++t.checked;
  // parse_into (the director's bulk form) gives what parse() gives.
  std::vector<std::byte> copy(frame.begin(), frame.end());
  union slot {
    slot() noexcept {}
    l4lb::wire::packet_view v;
  } at;
  const auto whole = l4lb::wire::parse(std::span<std::byte>(copy), opt);
  const drop_reason into = l4lb::wire::parse_into(copy, opt, &at.v);
  CHECK(into == (whole ? drop_reason::none : whole.error()));
  if (whole && into == drop_reason::none) {
    CHECK(at.v.key() == whole->key());
    CHECK(at.v.frame().data() == whole->frame().data());
    CHECK(at.v.l3_offset() == whole->l3_offset());
    CHECK(at.v.l3_len() == whole->l3_len());
    CHECK(at.v.l4_offset() == whole->l4_offset());
    CHECK(at.v.payload_offset() == whole->payload_offset());
    CHECK(at.v.payload().size() == whole->payload().size());
    CHECK(at.v.tcp_flags() == whole->tcp_flags());
    CHECK(at.v.has_l4_header() == whole->has_l4_header());
    CHECK(at.v.has_ports() == whole->has_ports());
    CHECK(at.v.is_fragment() == whole->is_fragment());
    CHECK(at.v.is_icmp_error() == whole->is_icmp_error());
  }
  if (!took) {
    CHECK(fast == packet_facts{});  // untouched when it declines
    return;
  }
  ++t.straight;
  REQUIRE(r == drop_reason::none);
  CHECK(fast == general);
}

constexpr parse_options all_options[] = {{false, false}, {true, false}, {false, true}, {true, true}};

}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("parse: the straight path agrees with the general one on captures, mutations, truncations") {
    const auto frames = capture_frames();
    REQUIRE(frames.size() > 50);
    std::mt19937 rng(7);
    tally t;
    for (const auto& opt : all_options) {
      for (const auto& f : frames) {
        compare(f, opt, t);
        // Truncations: at every length through the headers, and a few past them.
        for (std::size_t n = 0; n < std::min<std::size_t>(f.size(), 80); ++n)
          compare(std::span(f).first(n), opt, t);
        // Mutations of the header bytes the straight path reads (and its neighbours).
        for (int m = 0; m < 40; ++m) {
          auto g = f;
          const int flips = 1 + static_cast<int>(rng() % 3);
          for (int k = 0; k < flips; ++k) {
            const std::size_t at = rng() % std::min<std::size_t>(g.size(), 64);
            g[at] = static_cast<std::byte>(rng() % 4 == 0 ? rng() : (std::to_integer<unsigned>(g[at]) ^ (1u << (rng() % 8))));
          }
          compare(g, opt, t);
        }
      }
    }
    MESSAGE(t.straight << " of " << t.checked << " frames took the straight path");
    CHECK(t.straight > 1000);
  }

  TEST_CASE("parse: plain TCP (with options) and UDP frames take the straight path; others do not") {
    const auto tcp = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").tcp(40000, 80, tcp_flags::ack).build();
    const auto udp = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").udp(40000, 53).payload("hello").build();
    const auto icmp = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").icmp_echo(true, 1, 1).build();
    const auto v6 = packet_builder{}.eth().ipv6("fd00::2", "fd00::100").tcp(40000, 80, tcp_flags::ack).build();
    packet_facts f;
    for (const auto& opt : all_options) {
      f = {};
      CHECK(parser::run_plain_ipv4(tcp, opt, f));
      CHECK(f.tcp_flags == tcp_flags::ack);
      f = {};
      CHECK(parser::run_plain_ipv4(udp, opt, f));
      CHECK(f.payload_end - f.payload_offset == 5);
      f = {};
      CHECK_FALSE(parser::run_plain_ipv4(icmp, opt, f));
      CHECK_FALSE(parser::run_plain_ipv4(v6, opt, f));
    }
    // A bad header checksum: declined when verified (run() then names the drop), taken when not.
    auto bad = tcp;
    bad[14 + 10] ^= std::byte{1};
    f = {};
    CHECK_FALSE(parser::run_plain_ipv4(bad, {true, false}, f));
    CHECK(parse(bad, {true, false}).error() == drop_reason::bad_ipv4_header_checksum);
    CHECK(parser::run_plain_ipv4(bad, {false, false}, f));
    // A fragment (MF) and IPv4 options are the general path's.
    auto frag = tcp;
    frag[14 + 6] |= std::byte{0x20};
    f = {};
    CHECK_FALSE(parser::run_plain_ipv4(frag, {}, f));
    CHECK(parse(frag)->is_fragment());
  }
}
