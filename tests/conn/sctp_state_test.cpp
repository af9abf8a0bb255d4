#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/conn/sctp_state.hpp"

using namespace l4lb::conn;

namespace {

// ---- Hand-built SCTP packets (RFC 9260 sections 3.1-3.3) ------------------------------------

struct chunk {
  std::uint8_t type;
  std::vector<std::uint8_t> value;  // after the 4-byte chunk header
  std::uint8_t flags = 0;
  int length_override = -1;         // write this in the length field instead of the true length
};

void put16(std::vector<std::uint8_t>& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v & 0xff));
}
void put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v >> 16));
  put16(b, static_cast<std::uint16_t>(v & 0xffff));
}

// Common header (ports, verification tag, checksum 0: IPVS's state tracking does not read it),
// then each chunk padded to a multiple of 4 bytes.
std::vector<std::uint8_t> sctp_packet(std::uint16_t src_port, std::uint16_t dst_port,
                                      std::uint32_t vtag, std::initializer_list<chunk> chunks) {
  std::vector<std::uint8_t> b;
  put16(b, src_port);
  put16(b, dst_port);
  put32(b, vtag);
  put32(b, 0);
  for (const chunk& c : chunks) {
    b.push_back(c.type);
    b.push_back(c.flags);
    const auto len = c.length_override >= 0 ? static_cast<std::uint16_t>(c.length_override)
                                            : static_cast<std::uint16_t>(4 + c.value.size());
    put16(b, len);
    b.insert(b.end(), c.value.begin(), c.value.end());
    while (b.size() % 4 != 0) b.push_back(0);
  }
  return b;
}

std::vector<std::uint8_t> be32s(std::initializer_list<std::uint32_t> words) {
  std::vector<std::uint8_t> v;
  for (auto w : words) put32(v, w);
  return v;
}

// Chunk bodies, RFC 9260 section 3.3.
// INIT / INIT ACK fixed part: initiate tag, a_rwnd, outbound streams << 16 | inbound, initial TSN.
chunk init_chunk(std::uint32_t itag) { return {sctp_chunk::init, be32s({itag, 65536, 0x000a000a, 1000})}; }
chunk init_ack_chunk(std::uint32_t itag) {
  auto v = be32s({itag, 65536, 0x000a000a, 5000});
  // State Cookie parameter (type 7), 4 + 5 bytes of cookie: the chunk length is not a multiple
  // of 4, so padding follows.
  const std::uint8_t cookie[] = {0x07, 0x00, 0x00, 0x09, 0xc0, 0x01, 0xc0, 0x02, 0xc0};
  v.insert(v.end(), std::begin(cookie), std::end(cookie));
  return {sctp_chunk::init_ack, v};
}
chunk cookie_echo_chunk() { return {sctp_chunk::cookie_echo, {0xc0, 0x01, 0xc0, 0x02, 0xc0}}; }
chunk cookie_ack_chunk() { return {sctp_chunk::cookie_ack, {}}; }
// DATA: TSN, stream id << 16 | stream seq, PPID, then user data ("hi").
chunk data_chunk(std::uint32_t tsn) {
  auto v = be32s({tsn, 0, 0});
  v.push_back('h');
  v.push_back('i');
  return {sctp_chunk::data, v, 0x03};  // B and E bits: an unfragmented message
}
// SACK: cumulative TSN ack, a_rwnd, 0 gap blocks, 0 duplicate TSNs.
chunk sack_chunk(std::uint32_t tsn) { return {sctp_chunk::sack, be32s({tsn, 65536, 0})}; }
chunk shutdown_chunk(std::uint32_t tsn) { return {sctp_chunk::shutdown, be32s({tsn})}; }
chunk shutdown_ack_chunk() { return {sctp_chunk::shutdown_ack, {}}; }
chunk shutdown_complete_chunk() { return {sctp_chunk::shutdown_complete, {}}; }
chunk abort_chunk() { return {sctp_chunk::abort, {}}; }
// ERROR with a Stale Cookie cause (code 3, length 8, measure of staleness).
chunk error_chunk() { return {sctp_chunk::error, be32s({0x00030008, 500})}; }
chunk heartbeat_chunk() { return {sctp_chunk::heartbeat, be32s({0x00010008, 0x12345678})}; }

// Client port 40000 -> virtual service port 5060; replies the other way.
constexpr std::uint32_t client_tag = 0x11111111, server_tag = 0x22222222;
std::vector<std::uint8_t> from_client(std::initializer_list<chunk> c) {
  return sctp_packet(40000, 5060, server_tag, c);
}
std::vector<std::uint8_t> from_server(std::initializer_list<chunk> c) {
  return sctp_packet(5060, 40000, client_tag, c);
}

// A copy of the first n bytes in a heap block of exactly n bytes, so ASan reports any read
// past the end (a std::vector may have spare capacity that ASan does not guard).
struct exact_copy {
  std::unique_ptr<std::uint8_t[]> bytes;
  std::size_t size;
  exact_copy(std::span<const std::uint8_t> src, std::size_t n)
      : bytes(new std::uint8_t[n]), size(n) {
    if (n) std::memcpy(bytes.get(), src.data(), n);
  }
  std::span<const std::uint8_t> span() const { return {bytes.get(), size}; }
};

// ---- The second table: transcribed by hand from ip_vs_proto_sctp.c, sctp_states[] ----------
// Deliberately TRANSPOSED relative to the kernel source and to the header: one line per current
// state, one cell per event, read down the kernel's columns. A slip in either transcription
// shows up as a cell mismatch.
constexpr std::array<std::string_view, 14> abbrev = {"NO", "I1", "IN", "CS", "CR", "CW", "CO",
                                                     "CE", "ES", "SS", "SR", "SA", "RJ", "CL"};

struct state_line {
  const char* state;
  const char* cells;  // next state for events: d i i_a c_e c_a s s_a s_c err ab
};

constexpr state_line input_lines[] = {
    {"NO", "ES I1 CW CR ES SR CL CL CL CL"}, {"I1", "I1 IN CW IN I1 I1 IN CL I1 CL"},
    {"IN", "IN IN CW IN IN IN IN CL IN CL"}, {"CS", "CS CS CS CR CS CS CS CS CS CL"},
    {"CR", "CR CR CR CR CR CR CR CR CR CL"}, {"CW", "CW CW CO CW CW CW CW CW CW RJ"},
    {"CO", "CO CO CO CO CO CO CO CO CO CL"}, {"CE", "CE CE CE CE ES CE CE CE CL CL"},
    {"ES", "ES ES ES ES ES SR ES ES ES CL"}, {"SS", "SS SS SS SS SS SS CL SS SS CL"},
    {"SR", "SR SR SR SR SR SR SR SR SR CL"}, {"SA", "SA SA SA SA SA SA CL CL SA CL"},
    {"RJ", "RJ IN RJ RJ RJ RJ RJ RJ RJ CL"}, {"CL", "CL IN CL CL CL CL CL CL CL CL"},
};
constexpr state_line output_lines[] = {
    {"NO", "ES CW CS CE ES SS SA CL CL CL"}, {"I1", "I1 CW CS CE ES SS SA I1 CL RJ"},
    {"IN", "IN CW CS CE ES SS SA IN CL CL"}, {"CS", "CS CW CS CE ES SS SA CS CL CL"},
    {"CR", "CR CW CR CE ES SS SA CR CL CL"}, {"CW", "CW CW CW CE ES SS CW CW CW CL"},
    {"CO", "CO CW CO CE ES SS CO CO CO CL"}, {"CE", "CE CW CE CE ES SS CE CE CE CL"},
    {"ES", "ES ES ES ES ES SS ES ES ES CL"}, {"SS", "SS CW SS SS SS SS SA SS SS CL"},
    {"SR", "SR CW SR SR SR SR SA SR SR CL"}, {"SA", "SA CW SA SA SA SA SA SA SA CL"},
    {"RJ", "RJ CW RJ RJ RJ RJ RJ RJ RJ CL"}, {"CL", "CL CW CL CL CL CL CL CL CL CL"},
};
constexpr state_line input_only_lines[] = {
    {"NO", "ES I1 CE ES ES SR CL CL CL CL"}, {"I1", "I1 IN CE ES I1 I1 IN CL I1 CL"},
    {"IN", "IN IN CE ES IN IN IN CL IN CL"}, {"CS", "CS IN CE ES ES CS CS CL CS CL"},
    {"CR", "CR IN CE ES ES CR CR CL CR CL"}, {"CW", "ES IN CE ES CW CW CW CW CW RJ"},
    {"CO", "CO CO CO CO ES CO CO CO CO CL"}, {"CE", "CE CE CE CE ES CE CE CE CE CL"},
    {"ES", "ES ES ES ES ES SR CL ES ES CL"}, {"SS", "SS SS SS SS SS SS CL SS SS CL"},
    {"SR", "SR SR SR SR SR SR SR CL SR CL"}, {"SA", "SA SA SA SA SA SA CL CL SA CL"},
    {"RJ", "RJ IN RJ RJ RJ RJ RJ RJ RJ CL"}, {"CL", "CL IN CL CL CL CL CL CL CL CL"},
};

// Returns sctp_state_count for an unknown abbreviation (the test then fails on REQUIRE).
std::size_t abbrev_index(std::string_view s) {
  for (std::size_t i = 0; i < abbrev.size(); ++i)
    if (abbrev[i] == s) return i;
  return sctp_state_count;
}

// One packet per event row, in the kernel's row order (d i i_a c_e c_a s s_a s_c err ab).
std::vector<std::vector<std::uint8_t>> packet_per_event() {
  return {
      from_client({data_chunk(1)}),           from_client({init_chunk(client_tag)}),
      from_client({init_ack_chunk(1)}),       from_client({cookie_echo_chunk()}),
      from_client({cookie_ack_chunk()}),      from_client({shutdown_chunk(1)}),
      from_client({shutdown_ack_chunk()}),    from_client({shutdown_complete_chunk()}),
      from_client({error_chunk()}),           from_client({abort_chunk()}),
  };
}

sctp_event event_of(std::span<const std::uint8_t> pkt) {
  const auto e = sctp_event_of(pkt);
  REQUIRE(e.has_value());
  return *e;
}

}  // namespace

TEST_SUITE("conn") {
TEST_CASE("sctp_state: numbers and names are IPVS's") {
  // include/net/ip_vs.h enum ip_vs_sctp_states: NONE 0 ... CLOSED 13, LAST 14.
  CHECK(sctp_state_count == 14);
  CHECK(static_cast<int>(sctp_state::none) == 0);
  CHECK(static_cast<int>(sctp_state::cookie_echoed) == 7);
  CHECK(static_cast<int>(sctp_state::established) == 8);
  CHECK(static_cast<int>(sctp_state::closed) == 13);
  // sctp_state_name_table, as ipvsadm -Lnc prints them.
  const char* names[] = {"NONE",        "INIT1",  "INIT",       "C-SENT",     "C-REPLIED",
                         "C-WAIT",      "COOKIE", "C-ECHOED",   "ESTABLISHED", "S-SENT",
                         "S-RECEIVED",  "S-ACK-SENT", "REJECTED", "CLOSED"};
  for (std::size_t i = 0; i < sctp_state_count; ++i) {
    CAPTURE(i);
    CHECK(to_string(static_cast<sctp_state>(i)) == names[i]);
  }
  // sctp_state_name: state >= IP_VS_SCTP_S_LAST prints "ERR!".
  CHECK(to_string(static_cast<sctp_state>(14)) == "ERR!");
  CHECK(to_string(sctp_event::shutdown_complete) == "SHUTDOWN_COMPLETE");
  CHECK(to_string(sctp_packet_error::truncated_chunk_header) == "truncated_chunk_header");
}

TEST_CASE("sctp_state: only ESTABLISHED counts as active") {
  // set_sctp_state: a connection is INACTIVE exactly when next_state != ESTABLISHED.
  for (std::size_t i = 0; i < sctp_state_count; ++i) {
    CAPTURE(i);
    CHECK(is_active(static_cast<sctp_state>(i)) == (i == 8));
  }
}

TEST_CASE("sctp_state: default timeouts are sctp_timeouts[]") {
  // IP_VS_SCTP_MAX_RTO = (60 + 1) s; INIT1 and REJECTED (0 + 3 + 1) s; NONE 2 s;
  // ESTABLISHED 15 * 60 s.
  const std::uint32_t max_rto = 60 + 1, short_init = 0 + 3 + 1;
  CHECK(ipvs_sctp_timeouts.size() == sctp_state_count);
  CHECK(ipvs_sctp_timeouts[0] == 2);
  CHECK(ipvs_sctp_timeouts[1] == short_init);
  CHECK(ipvs_sctp_timeouts[8] == 15 * 60);
  CHECK(ipvs_sctp_timeouts[12] == short_init);
  const std::size_t max_rto_states[] = {2, 3, 4, 5, 6, 7, 9, 10, 11, 13};
  for (std::size_t i : max_rto_states) {
    CAPTURE(i);
    CHECK(ipvs_sctp_timeouts[i] == max_rto);
  }
}

TEST_CASE("sctp_state: the event is the first chunk's (sctp_events[])") {
  // RFC 9260 chunk types 0..14 and IPVS's event for each; types above 14 are not in the
  // kernel's table and count as DATA.
  struct type_event {
    std::uint8_t type;
    sctp_event want;
  };
  const type_event cases[] = {
      {0, sctp_event::data},          {1, sctp_event::init},
      {2, sctp_event::init_ack},      {3, sctp_event::data},  // SACK
      {4, sctp_event::data},          {5, sctp_event::data},  // HEARTBEAT, HEARTBEAT ACK
      {6, sctp_event::abort},         {7, sctp_event::shutdown},
      {8, sctp_event::shutdown_ack},  {9, sctp_event::error},
      {10, sctp_event::cookie_echo},  {11, sctp_event::cookie_ack},
      {12, sctp_event::data},         {13, sctp_event::data},  // ECNE, CWR
      {14, sctp_event::shutdown_complete},
      {15, sctp_event::data},         {0x40, sctp_event::data},  // AUTH, I-DATA
      {0x80, sctp_event::data},       {0x82, sctp_event::data},  // ASCONF ACK, RE-CONFIG
      {0x84, sctp_event::data},       {0xc0, sctp_event::data},  // PAD, FORWARD TSN
      {0xc1, sctp_event::data},       {0xff, sctp_event::data},  // ASCONF, reserved
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.type));
    const auto pkt = from_client({chunk{c.type, {0, 0, 0, 0}}});
    CHECK(event_of(pkt) == c.want);
    CHECK(sctp_event_of_chunk(c.type) == c.want);
  }
  // Real-looking packets, and bundles where only the first chunk counts.
  CHECK(event_of(from_client({init_chunk(client_tag)})) == sctp_event::init);
  CHECK(event_of(from_server({init_ack_chunk(server_tag)})) == sctp_event::init_ack);
  CHECK(event_of(from_client({sack_chunk(1), data_chunk(2)})) == sctp_event::data);
  CHECK(event_of(from_client({heartbeat_chunk()})) == sctp_event::data);
  CHECK(event_of(from_client({data_chunk(1), abort_chunk()})) == sctp_event::data);
  CHECK(event_of(from_client({shutdown_chunk(1), abort_chunk()})) == sctp_event::shutdown);
  CHECK(event_of(from_client({abort_chunk(), data_chunk(1)})) == sctp_event::abort);
  // std::byte input gives the same answer.
  const auto pkt = from_client({shutdown_ack_chunk()});
  const auto e = sctp_event_of(std::as_bytes(std::span<const std::uint8_t>(pkt)));
  REQUIRE(e.has_value());
  CHECK(*e == sctp_event::shutdown_ack);
}

TEST_CASE("sctp_state: ABORT after COOKIE ECHO or COOKIE ACK is an abort") {
  // set_sctp_state looks at the chunk after a first COOKIE ECHO / COOKIE ACK (at the first
  // chunk's length rounded up to 4) and takes ABORT from there; any other second chunk is
  // ignored. The cookie echo here has length 9 (4 + 5 cookie bytes): the ABORT is at 12 + 12.
  CHECK(event_of(from_client({cookie_echo_chunk(), abort_chunk()})) == sctp_event::abort);
  CHECK(event_of(from_server({cookie_ack_chunk(), abort_chunk()})) == sctp_event::abort);
  CHECK(event_of(from_client({cookie_echo_chunk(), data_chunk(1)})) == sctp_event::cookie_echo);
  CHECK(event_of(from_server({cookie_ack_chunk(), sack_chunk(1)})) == sctp_event::cookie_ack);
  CHECK(event_of(from_client({cookie_echo_chunk()})) == sctp_event::cookie_echo);
  // Only the second chunk: an ABORT third is not looked for.
  CHECK(event_of(from_client({cookie_echo_chunk(), data_chunk(1), abort_chunk()})) ==
        sctp_event::cookie_echo);
  // is_sctp_abort (ip_vs_core.c) only ever looks at the first chunk.
  CHECK_FALSE(is_sctp_abort(from_client({cookie_echo_chunk(), abort_chunk()})));
  CHECK(is_sctp_abort(from_server({abort_chunk()})));
  CHECK_FALSE(is_sctp_abort(from_server({data_chunk(1)})));
}

TEST_CASE("sctp_state: truncated packets give a named error, never a read past the end") {
  // A whole INIT packet is 12 + 20 bytes. Every prefix: < 12 has no common header, 12..15 no
  // complete first chunk header (IPVS then leaves the state alone), 16.. has the INIT type byte.
  const auto pkt = from_client({init_chunk(client_tag)});
  REQUIRE(pkt.size() == 32);
  for (std::size_t n = 0; n <= pkt.size(); ++n) {
    CAPTURE(n);
    const exact_copy c(pkt, n);
    const auto e = sctp_event_of(c.span());
    if (n < 12) {
      REQUIRE_FALSE(e.has_value());
      CHECK(e.error() == sctp_packet_error::truncated_common_header);
    } else if (n < 16) {
      REQUIRE_FALSE(e.has_value());
      CHECK(e.error() == sctp_packet_error::truncated_chunk_header);
    } else {
      REQUIRE(e.has_value());
      CHECK(*e == sctp_event::init);
    }
    CHECK(is_sctp_init(c.span()) == (n >= 16));
    CHECK_FALSE(is_sctp_abort(c.span()));
    // No event: the state stays as it was (input i would move NONE to INIT1).
    CHECK(next_sctp_state(sctp_state::none, c.span(), direction::input) ==
          (n >= 16 ? sctp_state::init1 : sctp_state::none));
  }
  // Every prefix of COOKIE ECHO + ABORT: the ABORT header sits at bytes 24..27 and counts only
  // once all four bytes are present (skb_header_pointer gives nothing for a partial header).
  const auto bundle = from_client({cookie_echo_chunk(), abort_chunk()});
  REQUIRE(bundle.size() == 28);
  for (std::size_t n = 16; n <= bundle.size(); ++n) {
    CAPTURE(n);
    const exact_copy c(bundle, n);
    CHECK(event_of(c.span()) == (n >= 28 ? sctp_event::abort : sctp_event::cookie_echo));
  }
}

TEST_CASE("sctp_state: chunk length fields that lie are read safely, as IPVS reads them") {
  // 28 bytes: common header, COOKIE ECHO header with length L, 8 cookie bytes 0xaa, then an
  // ABORT header at 24. For every L: L < 4 means no second chunk; L = 4 looks at 16 (0xaa),
  // 5..8 at 20 (0xaa), 9..12 at 24 (ABORT), 13..16 at 28 and above past the end: no chunk.
  // So exactly L in 9..12 gives ABORT.
  {
    std::vector<std::uint8_t> pkt = from_client({chunk{sctp_chunk::cookie_echo,
                                                       std::vector<std::uint8_t>(8, 0xaa)},
                                                 abort_chunk()});
    REQUIRE(pkt.size() == 28);
    for (std::uint32_t len = 0; len <= 0xffff; ++len) {
      pkt[14] = static_cast<std::uint8_t>(len >> 8);
      pkt[15] = static_cast<std::uint8_t>(len & 0xff);
      const exact_copy c(pkt, pkt.size());
      const auto want = (len >= 9 && len <= 12) ? sctp_event::abort : sctp_event::cookie_echo;
      if (event_of(c.span()) != want) {
        CAPTURE(len);
        FAIL_CHECK("wrong event");
      }
      // One byte shorter: the ABORT header is incomplete for every L.
      const exact_copy shorter(pkt, pkt.size() - 1);
      if (event_of(shorter.span()) != sctp_event::cookie_echo) {
        CAPTURE(len);
        FAIL_CHECK("partial second chunk header counted");
      }
    }
  }
  // An ABORT-looking header right after a COOKIE ACK header whose length is 0..3: the kernel
  // requires length >= 4 before it looks further, so 0..3 are a plain COOKIE ACK; 4 is ABORT.
  {
    std::vector<std::uint8_t> pkt = from_server({cookie_ack_chunk(), abort_chunk()});
    REQUIRE(pkt.size() == 20);
    for (std::uint8_t len = 0; len <= 4; ++len) {
      CAPTURE(static_cast<int>(len));
      pkt[15] = len;
      const exact_copy c(pkt, pkt.size());
      CHECK(event_of(c.span()) == (len == 4 ? sctp_event::abort : sctp_event::cookie_ack));
    }
  }
  // Arbitrary bytes (a fixed linear congruential sequence), lengths 0..64: an error exactly
  // below 16 bytes, else the first chunk's event unless it is COOKIE ECHO / COOKIE ACK (which
  // may turn into ABORT). ASan checks that nothing outside the block is read.
  std::uint32_t x = 12345;
  for (int round = 0; round < 4000; ++round) {
    const auto n = static_cast<std::size_t>(round % 65);
    std::vector<std::uint8_t> bytes(n);
    for (auto& b : bytes) {
      x = x * 1664525u + 1013904223u;
      b = static_cast<std::uint8_t>(x >> 24);
    }
    // Bias the first chunk type toward the two cookie types so the second-chunk path runs.
    if (n > 12 && round % 3 == 0) bytes[12] = static_cast<std::uint8_t>(10 + round % 2);
    const exact_copy c(bytes, n);
    const auto e = sctp_event_of(c.span());
    CAPTURE(round);
    REQUIRE(e.has_value() == (n >= 16));
    if (n >= 16 && bytes[12] != 10 && bytes[12] != 11) CHECK(*e == sctp_event_of_chunk(bytes[12]));
    if (n >= 16 && (bytes[12] == 10 || bytes[12] == 11))
      CHECK((*e == sctp_event::abort || *e == sctp_event_of_chunk(bytes[12])));
  }
}

TEST_CASE("sctp_state: every cell of the table equals the transcribed kernel table") {
  const state_line* tables[3] = {input_lines, output_lines, input_only_lines};
  const direction dirs[3] = {direction::input, direction::output, direction::input_only};
  const auto packets = packet_per_event();
  REQUIRE(packets.size() == sctp_event_count);
  for (std::size_t d = 0; d < 3; ++d) {
    for (std::size_t s = 0; s < sctp_state_count; ++s) {
      const state_line& line = tables[d][s];
      REQUIRE(std::string_view(line.state) == abbrev[s]);  // lines are in state order
      std::string_view rest = line.cells;
      for (std::size_t e = 0; e < sctp_event_count; ++e) {
        CAPTURE(to_string(dirs[d]));
        CAPTURE(abbrev[s]);
        CAPTURE(to_string(static_cast<sctp_event>(e)));
        REQUIRE(rest.size() >= 2);
        const std::size_t want_index = abbrev_index(rest.substr(0, 2));
        REQUIRE(want_index < sctp_state_count);
        rest.remove_prefix(rest.size() > 2 ? 3 : 2);
        const auto want = static_cast<sctp_state>(want_index);
        const auto cur = static_cast<sctp_state>(s);
        CHECK(next_sctp_state(cur, static_cast<sctp_event>(e), dirs[d]) == want);
        // The same cell reached through a real packet carrying that event.
        CHECK(next_sctp_state(cur, packets[e], dirs[d]) == want);
      }
      CHECK(rest.empty());
    }
  }
  static_assert(next_sctp_state(sctp_state::none, sctp_event::init, direction::input) ==
                sctp_state::init1);
  // Values outside the enums leave the state alone instead of indexing past the table.
  CHECK(next_sctp_state(static_cast<sctp_state>(14), sctp_event::init, direction::input) ==
        static_cast<sctp_state>(14));
  CHECK(next_sctp_state(sctp_state::established, static_cast<sctp_event>(10), direction::input) ==
        sctp_state::established);
  CHECK(next_sctp_state(sctp_state::established, sctp_event::abort, static_cast<direction>(3)) ==
        sctp_state::established);
}

TEST_CASE("sctp_state: NAT association setup and shutdown, client first") {
  // NAT: client packets are input, server packets output. Expected states from the kernel's
  // comment ("Setup of client connection") and table cells named in each line.
  struct step {
    std::vector<std::uint8_t> pkt;
    direction dir;
    sctp_state want;
  };
  const step steps[] = {
      // input i, NO -> I1: "First C:INIT sent, wait for S:INIT-ACK"
      {from_client({init_chunk(client_tag)}), direction::input, sctp_state::init1},
      // output i_a, I1 -> CS: "S:INIT-ACK sent, wait for C:COOKIE-ECHO"
      {from_server({init_ack_chunk(server_tag)}), direction::output, sctp_state::cookie_sent},
      // input c_e, CS -> CR: "C:COOKIE-ECHO sent, wait for S:COOKIE-ACK"
      {from_client({cookie_echo_chunk()}), direction::input, sctp_state::cookie_replied},
      // output c_a, CR -> ES
      {from_server({cookie_ack_chunk()}), direction::output, sctp_state::established},
      // data either way: d row keeps ES
      {from_client({data_chunk(1000)}), direction::input, sctp_state::established},
      {from_server({sack_chunk(1000), data_chunk(5000)}), direction::output,
       sctp_state::established},
      {from_client({heartbeat_chunk()}), direction::input, sctp_state::established},
      // input s, ES -> SR (the real server has received a SHUTDOWN)
      {from_client({shutdown_chunk(5000)}), direction::input, sctp_state::shutdown_received},
      // output s_a, SR -> SA
      {from_server({shutdown_ack_chunk()}), direction::output, sctp_state::shutdown_ack_sent},
      // input s_c, SA -> CL
      {from_client({shutdown_complete_chunk()}), direction::input, sctp_state::closed},
  };
  sctp_state s = sctp_state::none;
  for (const auto& st : steps) {
    CAPTURE(to_string(s));
    s = next_sctp_state(s, st.pkt, st.dir);
    CHECK(s == st.want);
    CHECK(is_active(s) == (st.want == sctp_state::established));
  }
  CHECK(ipvs_sctp_timeouts[static_cast<std::size_t>(s)] == 61);  // CLOSED: MAX_RTO
  // conn_reuse_mode: a new INIT on this CLOSED connection is a new association.
  const auto again = from_client({init_chunk(client_tag + 1)});
  CHECK(is_sctp_init(again));
  CHECK(sctp_new_conn_expected(s));
  // Were it kept instead, input i from CL is INIT.
  CHECK(next_sctp_state(s, again, direction::input) == sctp_state::init);
}

TEST_CASE("sctp_state: retransmitted INIT, server-initiated setup, server-initiated shutdown") {
  sctp_state s = sctp_state::none;
  // input i: NO -> I1, I1 -> IN ("Next C:INIT sent"), IN -> IN.
  s = next_sctp_state(s, from_client({init_chunk(client_tag)}), direction::input);
  CHECK(s == sctp_state::init1);
  CHECK(ipvs_sctp_timeouts[static_cast<std::size_t>(s)] == 4);
  s = next_sctp_state(s, from_client({init_chunk(client_tag)}), direction::input);
  CHECK(s == sctp_state::init);
  s = next_sctp_state(s, from_client({init_chunk(client_tag)}), direction::input);
  CHECK(s == sctp_state::init);

  // "Setup of server connection": output i NO -> CW, input i_a CW -> CO, output c_e CO -> CE,
  // input c_a CE -> ES.
  s = sctp_state::none;
  s = next_sctp_state(s, from_server({init_chunk(server_tag)}), direction::output);
  CHECK(s == sctp_state::cookie_wait);
  s = next_sctp_state(s, from_client({init_ack_chunk(client_tag)}), direction::input);
  CHECK(s == sctp_state::cookie);
  s = next_sctp_state(s, from_server({cookie_echo_chunk()}), direction::output);
  CHECK(s == sctp_state::cookie_echoed);
  s = next_sctp_state(s, from_client({cookie_ack_chunk()}), direction::input);
  CHECK(s == sctp_state::established);

  // Server closes: output s ES -> SS, input s_a SS -> CL, output s_c CL -> CL.
  s = next_sctp_state(s, from_server({shutdown_chunk(1)}), direction::output);
  CHECK(s == sctp_state::shutdown_sent);
  CHECK_FALSE(is_active(s));
  s = next_sctp_state(s, from_client({shutdown_ack_chunk()}), direction::input);
  CHECK(s == sctp_state::closed);
  s = next_sctp_state(s, from_server({shutdown_complete_chunk()}), direction::output);
  CHECK(s == sctp_state::closed);
}

TEST_CASE("sctp_state: DR association on client packets alone (input-only row)") {
  // DR/TUN: the server's packets bypass the director, so every packet is input-only.
  sctp_state s = sctp_state::none;
  // input-only i: NO -> I1; c_e: I1 -> ES (the server's INIT ACK was never seen).
  s = next_sctp_state(s, from_client({init_chunk(client_tag)}), direction::input_only);
  CHECK(s == sctp_state::init1);
  s = next_sctp_state(s, from_client({cookie_echo_chunk(), data_chunk(1000)}),
                      direction::input_only);
  CHECK(s == sctp_state::established);
  CHECK(is_active(s));
  s = next_sctp_state(s, from_client({sack_chunk(5000)}), direction::input_only);
  CHECK(s == sctp_state::established);
  // s: ES -> SR; s_c: SR -> CL (the input row would keep SR).
  s = next_sctp_state(s, from_client({shutdown_chunk(5000)}), direction::input_only);
  CHECK(s == sctp_state::shutdown_received);
  CHECK(next_sctp_state(s, sctp_event::shutdown_complete, direction::input) ==
        sctp_state::shutdown_received);
  s = next_sctp_state(s, from_client({shutdown_complete_chunk()}), direction::input_only);
  CHECK(s == sctp_state::closed);
  // A client's SHUTDOWN ACK closes ES at once in this row (input keeps ES).
  CHECK(next_sctp_state(sctp_state::established, sctp_event::shutdown_ack,
                        direction::input_only) == sctp_state::closed);
  CHECK(next_sctp_state(sctp_state::established, sctp_event::shutdown_ack, direction::input) ==
        sctp_state::established);
}

TEST_CASE("sctp_state: ABORT from either side") {
  const auto client_abort = from_client({abort_chunk()});
  const auto server_abort = from_server({abort_chunk()});
  // From ESTABLISHED, an ABORT in any direction closes (ab rows: ES -> CL).
  for (direction d : {direction::input, direction::output, direction::input_only}) {
    CAPTURE(to_string(d));
    const auto& pkt = d == direction::output ? server_abort : client_abort;
    const auto s = next_sctp_state(sctp_state::established, pkt, d);
    CHECK(s == sctp_state::closed);
    CHECK_FALSE(is_active(s));
  }
  // The server refuses the client's INIT: input i NO -> I1, output ab I1 -> RJ (4 s).
  sctp_state s = next_sctp_state(sctp_state::none, from_client({init_chunk(client_tag)}),
                                 direction::input);
  s = next_sctp_state(s, server_abort, direction::output);
  CHECK(s == sctp_state::rejected);
  CHECK(ipvs_sctp_timeouts[static_cast<std::size_t>(s)] == 4);
  CHECK_FALSE(sctp_new_conn_expected(s));  // only CLOSED is reused
  // A retried INIT moves REJECTED to INIT (input i: RJ -> IN).
  CHECK(next_sctp_state(s, from_client({init_chunk(client_tag)}), direction::input) ==
        sctp_state::init);
  // The client refuses the server's INIT: output i NO -> CW, input ab CW -> RJ.
  s = next_sctp_state(sctp_state::none, from_server({init_chunk(server_tag)}), direction::output);
  CHECK(s == sctp_state::cookie_wait);
  s = next_sctp_state(s, client_abort, direction::input);
  CHECK(s == sctp_state::rejected);
  // The client aborts during setup, bundled behind its COOKIE ECHO: CS -> CL via the ab row
  // (c_e would have given CR).
  s = next_sctp_state(sctp_state::cookie_sent, from_client({cookie_echo_chunk(), abort_chunk()}),
                      direction::input);
  CHECK(s == sctp_state::closed);
  // A stale-cookie ERROR from the client kills the server's echoed cookie: input err CE -> CL.
  CHECK(next_sctp_state(sctp_state::cookie_echoed, from_client({error_chunk()}),
                        direction::input) == sctp_state::closed);
}

TEST_CASE("sctp_state: conn_reuse_mode treats an INIT as new only on a CLOSED connection") {
  // ip_vs_core.c is_new_conn_expected, SCTP case: state == IP_VS_SCTP_S_CLOSED.
  for (std::size_t i = 0; i < sctp_state_count; ++i) {
    CAPTURE(i);
    CHECK(sctp_new_conn_expected(static_cast<sctp_state>(i)) == (i == 13));
  }
  // is_new_conn, SCTP case: the first chunk is an INIT (nothing else, not even INIT ACK).
  CHECK(is_sctp_init(from_client({init_chunk(client_tag)})));
  CHECK_FALSE(is_sctp_init(from_server({init_ack_chunk(server_tag)})));
  CHECK_FALSE(is_sctp_init(from_client({data_chunk(1), init_chunk(client_tag)})));
  const auto pkt = from_client({init_chunk(client_tag)});
  CHECK(is_sctp_init(std::as_bytes(std::span<const std::uint8_t>(pkt))));
  // An INIT type byte at offset 12 with the chunk header cut short is not an INIT.
  for (std::size_t n = 13; n < 16; ++n) {
    CAPTURE(n);
    const exact_copy c(pkt, n);
    CHECK_FALSE(is_sctp_init(c.span()));
  }
}
}
