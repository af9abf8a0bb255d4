// input_flags / packet_sctp_event: what a director hands the connection table from a parsed
// frame, for TCP, SCTP, UDP, ICMP errors and fragments; and one pass through the table with it.
#include <doctest/doctest.h>

#include "conn_support.hpp"
#include "l4lb/conn/packet_input.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

using namespace conn_test;
using l4lb::test::bytes;
using l4lb::test::hex_bytes;
using l4lb::test::packet_builder;
namespace tcp_bits = l4lb::wire::tcp_flags;

namespace {

// Chunks (RFC 9260 section 3.3): an INIT with initiate tag 1, a_rwnd 65536, 1 stream each way,
// TSN 1; a DATA chunk with 4 bytes of user data.
const bytes init_chunk = hex_bytes("01 00 00 14 00 00 00 01 00 01 00 00 00 01 00 01 00 00 00 01");
const bytes data_chunk = hex_bytes("00 03 00 14 00 00 00 05 00 00 00 00 00 00 00 00 61 62 63 64");

l4lb::wire::packet_view parsed(bytes& frame) {
  auto p = l4lb::wire::parse(frame);
  REQUIRE(p);
  return *p;
}

}  // namespace

TEST_SUITE("conn") {

TEST_CASE("packet_input: the flags the reuse rules read, per protocol") {
  SUBCASE("TCP: the header's flags") {
    bytes f = packet_builder{}.eth().ipv4("198.18.0.2", "198.19.0.100").tcp(40000, 80, tcp_bits::syn).build();
    CHECK(input_flags(parsed(f)) == tcp_flag::syn);
    bytes g = packet_builder{}.eth().ipv4("198.18.0.2", "198.19.0.100")
                  .tcp(40000, 80, tcp_bits::ack | tcp_bits::fin).build();
    CHECK(input_flags(parsed(g)) == (tcp_flag::ack | tcp_flag::fin));
  }
  SUBCASE("SCTP: syn for an INIT first chunk, else 0") {
    bytes init = packet_builder{}.eth().ipv4("198.18.0.2", "198.19.0.100").sctp(40000, 3868, 0)
                     .payload(init_chunk).build();
    const auto pi = parsed(init);
    CHECK(input_flags(pi) == tcp_flag::syn);
    CHECK(packet_sctp_event(pi).value() == sctp_event::init);
    bytes data = packet_builder{}.eth().ipv6("fd00::2", "fd00::100").sctp(40000, 3868, 7)
                     .payload(data_chunk).build();
    const auto pd = parsed(data);
    CHECK(input_flags(pd) == 0);
    CHECK(packet_sctp_event(pd).value() == sctp_event::data);
    // A common header with no chunk: no event, no flags.
    bytes bare = packet_builder{}.eth().ipv4("198.18.0.2", "198.19.0.100").sctp(40000, 3868, 7).build();
    const auto pb = parsed(bare);
    CHECK(input_flags(pb) == 0);
    CHECK(packet_sctp_event(pb).error() == sctp_packet_error::truncated_chunk_header);
  }
  SUBCASE("UDP, ICMP errors and non-first fragments: 0, and no SCTP event") {
    bytes udp = packet_builder{}.eth().ipv4("198.18.0.2", "198.19.0.100").udp(40000, 53).payload("q").build();
    CHECK(input_flags(parsed(udp)) == 0);
    CHECK(packet_sctp_event(parsed(udp)).error() == sctp_packet_error::not_sctp);
    // An ICMP error quoting a SYN is not a SYN.
    const bytes quoted = packet_builder{}.ipv4("198.19.0.100", "198.18.0.2").tcp(80, 40000, tcp_bits::syn).build();
    bytes icmp = packet_builder{}.eth().ipv4("198.18.0.2", "198.19.0.100").icmp(3, 3).payload(quoted).build();
    const auto pe = parsed(icmp);
    REQUIRE(pe.is_icmp_error());
    CHECK(input_flags(pe) == 0);
    // A non-first fragment has no L4 header here, whatever its bytes look like.
    bytes frag = packet_builder{}.eth()
                     .ipv4("198.18.0.2", "198.19.0.100", {.frag_offset = 185, .protocol = std::uint8_t{132}})
                     .payload(init_chunk)
                     .build();
    const auto pf = parsed(frag);
    REQUIRE_FALSE(pf.has_l4_header());
    CHECK(input_flags(pf) == 0);
    CHECK(packet_sctp_event(pf).error() == sctp_packet_error::not_sctp);
  }
}

TEST_CASE("packet_input: an SCTP association driven from parsed frames, INIT reuse included") {
  auto table = make_table<conn_table_v4>(100);
  bytes init = packet_builder{}.eth().ipv4("198.18.0.7", "198.19.0.100").sctp(40000, 3868, 0)
                   .payload(init_chunk).build();
  const auto p = parsed(init);
  const auto k = conn_key_v4::from_flow(p.key());
  const std::int64_t t0 = 10 * sec;
  CHECK(table.lookup_input(k, input_flags(p), t0).action == input_action::miss);
  auto r = table.insert(k, new_conn{1, true, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, packet_sctp_event(p).value(), direction::input, t0);
  CHECK(static_cast<sctp_state>(table.state(*r)) == sctp_state::init1);
  // The association is aborted (CLOSED); the client's next INIT is a reuse, its DATA is not.
  table.on_packet(*r, sctp_event::abort, direction::input, t0);
  REQUIRE(static_cast<sctp_state>(table.state(*r)) == sctp_state::closed);
  bytes data = packet_builder{}.eth().ipv4("198.18.0.7", "198.19.0.100").sctp(40000, 3868, 1)
                   .payload(data_chunk).build();
  CHECK(table.lookup_input(k, input_flags(parsed(data)), t0).action == input_action::hit);
  CHECK(table.lookup_input(k, input_flags(p), t0).action == input_action::rescheduled);
}

}  // TEST_SUITE
