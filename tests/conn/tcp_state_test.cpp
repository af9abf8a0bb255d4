#include <doctest/doctest.h>

#include <string>

#include "conn/ipvs_reference.hpp"
#include "l4lb/conn/conn_table.hpp"
#include "l4lb/conn/tcp_state.hpp"
#include "l4lb/conn/timeouts.hpp"

using namespace l4lb::conn;
using l4lb::wire::ipv4_address;

namespace {

constexpr std::int64_t sec = 1'000'000'000;

// A flag byte for each table event; extra bits check the priority rule on the way
// (FIN+ACK is a FIN, RST+ACK is an RST, SYN+ACK is a SYN).
constexpr std::uint8_t event_flags[4] = {tcp_flag::syn | tcp_flag::ack,
                                         tcp_flag::fin | tcp_flag::ack, tcp_flag::ack,
                                         tcp_flag::rst | tcp_flag::ack};

conn_key_v4 key_n(std::uint32_t n) {
  return {ipv4_address::from_u32(0xC6130000u + n), ipv4_address::from_u32(0xC6120064u),
          static_cast<std::uint16_t>(1024 + n % 60000), 80, l4lb::wire::ip_proto::tcp};
}

}  // namespace

TEST_SUITE("conn") {
TEST_CASE("tcp_state: names and numbers are IPVS's") {
  // ipvs-notes 3.3: 0 NONE ... 10 SYNACK, names as shown by ipvsadm.
  const char* names[] = {"NONE",      "ESTABLISHED", "SYN_SENT", "SYN_RECV",
                         "FIN_WAIT",  "TIME_WAIT",   "CLOSE",    "CLOSE_WAIT",
                         "LAST_ACK",  "LISTEN",      "SYNACK"};
  for (std::size_t i = 0; i < tcp_state_count; ++i) {
    CAPTURE(i);
    CHECK(to_string(static_cast<tcp_state>(i)) == names[i]);
    CHECK(is_active(static_cast<tcp_state>(i)) ==
          conn_reference::active(static_cast<tcp_state>(i)));
  }
  CHECK(state_name(l4lb::wire::ip_proto::udp, 0) == "UDP");
}

TEST_CASE("tcp_state: event priority is RST > SYN > FIN > ACK, nothing means CLOSE") {
  CHECK(event_of(tcp_flag::syn | tcp_flag::rst) == tcp_event::rst);
  CHECK(event_of(tcp_flag::syn | tcp_flag::fin) == tcp_event::syn);
  CHECK(event_of(tcp_flag::fin | tcp_flag::ack) == tcp_event::fin);
  CHECK(event_of(tcp_flag::ack | tcp_flag::psh) == tcp_event::ack);
  CHECK(event_of(tcp_flag::psh) == tcp_event::none);
  // A segment with none of the four moves even ESTABLISHED to CLOSE (set_tcp_state's default).
  CHECK(next_tcp_state(tcp_state::established, direction::input, tcp_flag::psh) ==
        tcp_state::close);
  CHECK(next_tcp_state(tcp_state::established, direction::input, 0) == tcp_state::close);
  // Every flag byte (URG, PSH, ECE, CWR change nothing): tcp_state_idx's chain of tests.
  for (unsigned f = 0; f < 256; ++f) {
    const auto flags = static_cast<std::uint8_t>(f);
    const tcp_event want = (flags & tcp_flag::rst)   ? tcp_event::rst
                           : (flags & tcp_flag::syn) ? tcp_event::syn
                           : (flags & tcp_flag::fin) ? tcp_event::fin
                           : (flags & tcp_flag::ack) ? tcp_event::ack
                                                     : tcp_event::none;
    INFO("flags ", f);
    CHECK(event_of(flags) == want);
    // next_tcp_state reads one table by the folded flags: every byte, row and state agrees
    // with the notes' tables through the chain above.
    for (std::size_t d = 0; d < 3; ++d)
      for (std::size_t s = 0; s < tcp_state_count; ++s) {
        const auto cur = static_cast<tcp_state>(s);
        const auto dir = static_cast<direction>(d);
        const auto e = static_cast<std::size_t>(want);
        CHECK(next_tcp_state(cur, dir, flags) ==
              (want == tcp_event::none ? tcp_state::close : conn_reference::normal()[d][e][s]));
        CHECK(next_tcp_state(cur, dir, flags, true) ==
              (want == tcp_event::none ? tcp_state::close : conn_reference::secure()[d][e][s]));
      }
  }
}

TEST_CASE("tcp_state: the library's tables equal the notes' tables cell by cell") {
  for (std::size_t d = 0; d < 3; ++d)
    for (std::size_t e = 0; e < 4; ++e)
      for (std::size_t s = 0; s < tcp_state_count; ++s) {
        CAPTURE(d);
        CAPTURE(e);
        CAPTURE(s);
        const auto cur = static_cast<tcp_state>(s);
        const auto dir = static_cast<direction>(d);
        CHECK(next_tcp_state(cur, dir, event_flags[e]) == conn_reference::normal()[d][e][s]);
        CHECK(next_tcp_state(cur, dir, event_flags[e], true) == conn_reference::secure()[d][e][s]);
      }
}

TEST_CASE("timeouts: IPVS defaults and ipvsadm --set") {
  timeouts t;
  for (std::size_t i = 0; i < tcp_state_count; ++i)
    CHECK(t.tcp[i] == conn_reference::default_tcp_timeouts[i]);
  CHECK(t.udp == 300);     // ipvs-notes 3.3: UDP 300 s
  CHECK(t.initial == 3);   // new conn before its first transition: 3 s
  // ipvs-notes 5.7: --timeout prints "900 120 300" by default.
  CHECK(t.ipvsadm().tcp == 900);
  CHECK(t.ipvsadm().tcpfin == 120);
  CHECK(t.ipvsadm().udp == 300);
  // --set tcp tcpfin udp: 0 keeps the current value.
  CHECK(t.set_ipvsadm(3600, 0, 60) == errc::ok);
  CHECK(t.tcp_at(tcp_state::established) == 3600);
  CHECK(t.tcp_at(tcp_state::fin_wait) == 120);
  CHECK(t.udp == 60);
  CHECK(t.set_ipvsadm(timeouts::max_seconds + 1, 0, 0) == errc::bad_timeout);
  CHECK(t.tcp_at(tcp_state::established) == 3600);
}

TEST_CASE("conn_table: every transition of IPVS's table, with counts and timeout") {
  // For each direction row, event and current state: a connection put in that state, one
  // segment, then the state must be the notes' cell, the server's active/inactive counts must
  // follow the notes' active set, and the idle timer must be the new state's default timeout.
  //   input rows:      a NAT connection (no NOOUTPUT flag), client packets;
  //   output rows:     a NAT connection, server packets;
  //   input-only rows: a DR connection (NOOUTPUT), client packets.
  for (int secure = 0; secure < 2; ++secure) {
    conn_table_config cfg;
    cfg.capacity = 64;
    cfg.max_dests = 4;
    cfg.secure_tcp = secure != 0;
    conn_table_v4 table(cfg);
    REQUIRE(table.set_dest(1, ipv4_address::from_u32(0xC6120102u), 8080) == errc::ok);
    std::uint32_t n = 0;
    for (std::size_t d = 0; d < 3; ++d)
      for (std::size_t e = 0; e < 4; ++e)
        for (std::size_t s = 0; s < tcp_state_count; ++s) {
          CAPTURE(secure);
          CAPTURE(conn_reference::dir_names[d]);
          CAPTURE(conn_reference::event_names[e]);
          CAPTURE(conn_reference::abbrev[s]);
          const std::int64_t now = 1000 * sec + n * sec;
          const auto k = key_n(++n);
          const bool nat = d != 2;
          auto r = table.insert(k, new_conn{1, nat, no_template}, now);
          REQUIRE(r);
          const auto cur = static_cast<tcp_state>(s);
          table.set_state(*r, cur, now);
          CHECK(table.state(*r) == s);
          CHECK(table.counts(1).active_conns == (conn_reference::active(cur) ? 1u : 0u));
          const direction dir = d == 1 ? direction::output : direction::input;
          const auto change = table.on_packet(*r, event_flags[e], dir, now);
          const tcp_state want =
              (secure ? conn_reference::secure() : conn_reference::normal())[d][e][s];
          CHECK(change.from == s);
          CHECK(static_cast<tcp_state>(change.to) == want);
          CHECK(static_cast<tcp_state>(table.state(*r)) == want);
          CHECK(table.counts(1).active_conns == (conn_reference::active(want) ? 1u : 0u));
          CHECK(table.counts(1).inactive_conns == (conn_reference::active(want) ? 0u : 1u));
          CHECK(table.remaining_ns(*r, now) ==
                std::int64_t{conn_reference::default_tcp_timeouts[static_cast<std::size_t>(want)]} *
                    sec);
          table.erase(*r, now);
          CHECK(table.counts(1).active_conns == 0);
          CHECK(table.counts(1).inactive_conns == 0);
        }
  }
}

TEST_CASE("conn_table: typical NAT and DR sequences (ipvs-notes 3.3)") {
  conn_table_config cfg;
  cfg.capacity = 16;
  cfg.max_dests = 4;
  conn_table_v4 table(cfg);
  REQUIRE(table.set_dest(2, ipv4_address::from_u32(0xC6120102u), 80) == errc::ok);
  const std::int64_t t0 = 50 * sec;
  struct step {
    std::uint8_t flags;
    direction dir;
    tcp_state want;
    std::uint32_t active, inactive;
  };

  SUBCASE("NAT: SYN(in) SR, SYN-ACK(out) SR, ACK(in) ES, FIN(in) CW, FIN(out) TW, ACK(in) TW") {
    auto r = table.insert(key_n(1), new_conn{2, true, no_template}, t0);
    REQUIRE(r);
    // Created inactive (ipvs-notes 3.4: every new conn starts in InActConn).
    CHECK(table.counts(2).inactive_conns == 1);
    CHECK(table.counts(2).active_conns == 0);
    const step steps[] = {
        {tcp_flag::syn, direction::input, tcp_state::syn_recv, 1, 0},
        {tcp_flag::syn | tcp_flag::ack, direction::output, tcp_state::syn_recv, 1, 0},
        {tcp_flag::ack, direction::input, tcp_state::established, 1, 0},
        {tcp_flag::fin | tcp_flag::ack, direction::input, tcp_state::close_wait, 0, 1},
        {tcp_flag::fin | tcp_flag::ack, direction::output, tcp_state::time_wait, 0, 1},
        {tcp_flag::ack, direction::input, tcp_state::time_wait, 0, 1},
    };
    for (const auto& st : steps) {
      table.on_packet(*r, st.flags, st.dir, t0);
      CHECK(static_cast<tcp_state>(table.state(*r)) == st.want);
      CHECK(table.counts(2).active_conns == st.active);
      CHECK(table.counts(2).inactive_conns == st.inactive);
    }
  }
  SUBCASE("NAT simultaneous close, server first: FIN(out) ES->FW, FIN(in) FW->TW") {
    auto r = table.insert(key_n(2), new_conn{2, true, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);
    table.on_packet(*r, tcp_flag::ack, direction::input, t0);
    table.on_packet(*r, tcp_flag::fin | tcp_flag::ack, direction::output, t0);
    CHECK(static_cast<tcp_state>(table.state(*r)) == tcp_state::fin_wait);
    table.on_packet(*r, tcp_flag::fin | tcp_flag::ack, direction::input, t0);
    CHECK(static_cast<tcp_state>(table.state(*r)) == tcp_state::time_wait);
    CHECK(table.counts(2).inactive_conns == 1);
  }
  SUBCASE("DR: SYN SR, ACK ES, FIN(in) FW via the input-only row, ACK stays FW") {
    auto r = table.insert(key_n(3), new_conn{2, false, no_template}, t0);
    REQUIRE(r);
    CHECK(table.no_output(*r));
    const step steps[] = {
        {tcp_flag::syn, direction::input, tcp_state::syn_recv, 1, 0},
        {tcp_flag::ack, direction::input, tcp_state::established, 1, 0},
        // input-only fin from ES is FW (the input row would say CW).
        {tcp_flag::fin | tcp_flag::ack, direction::input, tcp_state::fin_wait, 0, 1},
        {tcp_flag::ack, direction::input, tcp_state::fin_wait, 0, 1},
    };
    for (const auto& st : steps) {
      table.on_packet(*r, st.flags, st.dir, t0);
      CHECK(static_cast<tcp_state>(table.state(*r)) == st.want);
      CHECK(table.counts(2).active_conns == st.active);
      CHECK(table.counts(2).inactive_conns == st.inactive);
    }
    CHECK(table.remaining_ns(*r, t0) == 120 * sec);  // FIN_WAIT 120 s
  }
  SUBCASE("DR: the first output packet clears NOOUTPUT, input packets then use the input row") {
    auto r = table.insert(key_n(4), new_conn{2, false, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);
    table.on_packet(*r, tcp_flag::syn | tcp_flag::ack, direction::output, t0);  // SR stays SR
    CHECK_FALSE(table.no_output(*r));
    table.on_packet(*r, tcp_flag::ack, direction::input, t0);
    table.on_packet(*r, tcp_flag::fin | tcp_flag::ack, direction::input, t0);
    CHECK(static_cast<tcp_state>(table.state(*r)) == tcp_state::close_wait);  // input row
  }
  SUBCASE("RST from the client in ESTABLISHED closes: CLOSE, 10 s, inactive") {
    auto r = table.insert(key_n(5), new_conn{2, true, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);
    table.on_packet(*r, tcp_flag::ack, direction::input, t0);
    table.on_packet(*r, tcp_flag::rst, direction::input, t0);
    CHECK(static_cast<tcp_state>(table.state(*r)) == tcp_state::close);
    CHECK(table.remaining_ns(*r, t0) == 10 * sec);
    CHECK(table.counts(2).active_conns == 0);
    CHECK(table.counts(2).inactive_conns == 1);
  }
  SUBCASE("UDP: single state, 300 s, always inactive") {
    conn_key_v4 k = key_n(6);
    k.protocol = l4lb::wire::ip_proto::udp;
    auto r = table.insert(k, new_conn{2, true, no_template}, t0);
    REQUIRE(r);
    CHECK(table.remaining_ns(*r, t0) == 3 * sec);  // before its first packet
    table.on_packet(*r, 0, direction::input, t0);
    CHECK(table.remaining_ns(*r, t0) == 300 * sec);
    table.on_packet(*r, 0, direction::output, t0 + sec);
    CHECK(table.counts(2).active_conns == 0);
    CHECK(table.counts(2).inactive_conns == 1);
    CHECK(state_name(table.protocol(*r), table.state(*r)) == "UDP");
  }
}
}
