// SCTP connections in the table: IPVS's SCTP state table driven through on_packet(sctp_event),
// ActiveConn only in ESTABLISHED, per-state timeouts, INIT reuse of a CLOSED association, the
// full-table policy's view of half-open associations, sync-style set_state.
#include <doctest/doctest.h>

#include "conn_support.hpp"

using namespace conn_test;

namespace {

constexpr std::uint8_t sctp = l4lb::wire::ip_proto::sctp;

sctp_state state_of(const conn_table_v4& t, conn_ref r) {
  return static_cast<sctp_state>(t.state(r));
}

}  // namespace

TEST_SUITE("conn") {

TEST_CASE("conn_table sctp: a NAT association from INIT to SHUTDOWN COMPLETE, then INIT reuse") {
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 50 * sec;
  const auto k = key<ipv4_address>(7, 40000, 100, 3868, sctp);
  auto r = table.insert(k, new_conn{2, true, no_template}, t0);
  REQUIRE(r);
  const conn_ref c = *r;
  // Each step: (event, direction) -> the cell of ip_vs_proto_sctp.c's sctp_states.
  struct step {
    sctp_event event;
    direction dir;
    sctp_state expect;
    std::uint32_t active, inactive;  // server 2's counts after the packet
    std::uint32_t timeout_s;         // ipvs_sctp_timeouts[expect]
  };
  const step steps[] = {
      {sctp_event::init, direction::input, sctp_state::init1, 0, 1, 4},               // NONE
      {sctp_event::init_ack, direction::output, sctp_state::cookie_sent, 0, 1, 61},   // INIT1
      {sctp_event::cookie_echo, direction::input, sctp_state::cookie_replied, 0, 1, 61},
      {sctp_event::cookie_ack, direction::output, sctp_state::established, 1, 0, 900},
      {sctp_event::data, direction::input, sctp_state::established, 1, 0, 900},
      {sctp_event::data, direction::output, sctp_state::established, 1, 0, 900},
      {sctp_event::shutdown, direction::input, sctp_state::shutdown_received, 0, 1, 61},
      {sctp_event::shutdown_ack, direction::output, sctp_state::shutdown_ack_sent, 0, 1, 61},
      {sctp_event::shutdown_complete, direction::input, sctp_state::closed, 0, 1, 61},
  };
  std::int64_t now = t0;
  for (const step& s : steps) {
    CAPTURE(to_string(s.event));
    now += sec;
    const auto before = state_of(table, c);
    const state_change ch = table.on_packet(c, s.event, s.dir, now);
    CHECK(ch.from == static_cast<std::uint8_t>(before));
    CHECK(ch.to == static_cast<std::uint8_t>(s.expect));
    CHECK(state_of(table, c) == s.expect);
    CHECK(table.counts(2).active_conns == s.active);
    CHECK(table.counts(2).inactive_conns == s.inactive);
    // The idle timer restarted from this packet with the new state's timeout.
    CHECK(table.remaining_ns(c, now) == std::int64_t{s.timeout_s} * sec);
  }
  CHECK(state_name(sctp, table.state(c)) == "CLOSED");
  // A new INIT on the CLOSED association (uncontrolled) is a reuse: removed and scheduled anew.
  const auto l = table.lookup_input(k, tcp_flag::syn, now + sec);
  CHECK(l.action == input_action::rescheduled);
  CHECK(table.counts(2) == dest_counts{});
  CHECK(table.stats().reused == 1);
}

TEST_CASE("conn_table sctp: an INIT is no reuse before CLOSED; other chunks never are") {
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 10 * sec;
  const auto k = key<ipv4_address>(8, 40001, 100, 3868, sctp);
  auto r = table.insert(k, new_conn{1, true, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, sctp_event::init, direction::input, t0);
  table.on_packet(*r, sctp_event::init_ack, direction::output, t0);
  table.on_packet(*r, sctp_event::cookie_echo, direction::input, t0);
  table.on_packet(*r, sctp_event::cookie_ack, direction::output, t0);
  REQUIRE(state_of(table, *r) == sctp_state::established);
  CHECK(table.lookup_input(k, tcp_flag::syn, t0).action == input_action::hit);
  // ABORT from the server: every state goes to CLOSED (abort row, output direction).
  table.on_packet(*r, sctp_event::abort, direction::output, t0);
  CHECK(state_of(table, *r) == sctp_state::closed);
  CHECK(table.counts(1).active_conns == 0);
  // A packet that is not an INIT (flags 0) still finds the CLOSED association.
  CHECK(table.lookup_input(k, 0, t0).action == input_action::hit);
  // conn_reuse_mode 0 turns the rule off.
  table.set_reuse_policy({0, false, true});
  CHECK(table.lookup_input(k, tcp_flag::syn, t0).action == input_action::hit);
}

TEST_CASE("conn_table sctp: DR sees the client side only and uses the input-only row") {
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 10 * sec;
  const auto k = key<ipv4_address>(9, 40002, 100, 3868, sctp);
  auto r = table.insert(k, new_conn{3, false, no_template}, t0);  // DR: NOOUTPUT
  REQUIRE(r);
  // Input-only row: INIT from NONE -> INIT1; COOKIE ECHO from INIT1 -> ESTABLISHED (the
  // server's INIT ACK never passes the director).
  table.on_packet(*r, sctp_event::init, direction::input, t0);
  CHECK(state_of(table, *r) == sctp_state::init1);
  table.on_packet(*r, sctp_event::cookie_echo, direction::input, t0);
  CHECK(state_of(table, *r) == sctp_state::established);
  CHECK(table.counts(3).active_conns == 1);
  CHECK(table.no_output(*r));
  // The input row would have kept INIT1 on a COOKIE ECHO... shown on a NAT twin for contrast:
  // input row, cookie_echo, INIT1 -> INIT.
  const auto k2 = key<ipv4_address>(9, 40003, 100, 3868, sctp);
  auto r2 = table.insert(k2, new_conn{3, true, no_template}, t0);
  REQUIRE(r2);
  table.on_packet(*r2, sctp_event::init, direction::input, t0);
  table.on_packet(*r2, sctp_event::cookie_echo, direction::input, t0);
  CHECK(state_of(table, *r2) == sctp_state::init);
}

TEST_CASE("conn_table sctp: per-state deadlines and the flags form keeping the state") {
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 20 * sec;
  const auto k = key<ipv4_address>(10, 40004, 100, 3868, sctp);
  auto r = table.insert(k, new_conn{0, true, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, sctp_event::init, direction::input, t0);  // INIT1: 4 s
  CHECK(table.find(k, t0 + 4 * sec - 1) == *r);
  // A packet without an event (e.g. too short for a chunk header) goes through the flags form:
  // the state stays INIT1 and its 4 s timer restarts.
  const state_change ch = table.on_packet(*r, 0, direction::input, t0 + 3 * sec);
  CHECK(ch.from == ch.to);
  CHECK(state_of(table, *r) == sctp_state::init1);
  CHECK(table.find(k, t0 + 7 * sec - 1) == *r);
  CHECK(table.find(k, t0 + 7 * sec) == no_conn);

  // Timeouts set per state apply from the next packet.
  timeouts t = table.current_timeouts();
  t.sctp_at(sctp_state::init1) = 10;
  REQUIRE(table.set_timeouts(t) == errc::ok);
  const auto k2 = key<ipv4_address>(10, 40005, 100, 3868, sctp);
  auto r2 = table.insert(k2, new_conn{0, true, no_template}, t0);
  REQUIRE(r2);
  table.on_packet(*r2, sctp_event::init, direction::input, t0);
  CHECK(table.remaining_ns(*r2, t0) == 10 * sec);
  t.sctp_at(sctp_state::init1) = timeouts::max_seconds + 1;
  CHECK(table.set_timeouts(t) == errc::bad_timeout);

  // An SCTP event on a TCP connection changes nothing.
  auto tr = table.insert(key<ipv4_address>(10, 40006), new_conn{0, true, no_template}, t0);
  REQUIRE(tr);
  table.on_packet(*tr, tcp_flag::syn, direction::input, t0);
  const state_change none = table.on_packet(*tr, sctp_event::abort, direction::input, t0);
  CHECK(none.from == 0);
  CHECK(none.to == 0);
  CHECK(static_cast<tcp_state>(table.state(*tr)) == tcp_state::syn_recv);
}

TEST_CASE("conn_table sctp: a full table evicts half-open associations, never ESTABLISHED") {
  // 15 connections fill a one-group table (capacity 15): 14 ESTABLISHED associations and one in
  // INIT1. A new association evicts the INIT1 one (embryonic tier); with all 15 ESTABLISHED the
  // insert is refused.
  auto table = make_table<conn_table_v4>(15);
  const std::int64_t t0 = 100 * sec;
  for (std::uint32_t i = 0; i < 15; ++i) {
    auto r = table.insert(key<ipv4_address>(i, 5000, 100, 3868, sctp),
                          new_conn{0, false, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, sctp_event::init, direction::input, t0);
    if (i != 6) table.on_packet(*r, sctp_event::cookie_echo, direction::input, t0);
  }
  REQUIRE(table.counts(0).active_conns == 14);
  auto fresh = table.insert(key<ipv4_address>(99, 5000, 100, 3868, sctp),
                            new_conn{0, false, no_template}, t0 + sec);
  REQUIRE(fresh);
  CHECK(table.stats().evicted_embryonic == 1);
  CHECK(table.find(key<ipv4_address>(6, 5000, 100, 3868, sctp), t0 + sec) == no_conn);
  table.on_packet(*fresh, sctp_event::init, direction::input, t0 + sec);
  table.on_packet(*fresh, sctp_event::cookie_echo, direction::input, t0 + sec);
  CHECK(table.counts(0).active_conns == 15);
  auto refused = table.insert(key<ipv4_address>(98, 5000, 100, 3868, sctp),
                              new_conn{0, false, no_template}, t0 + sec);
  CHECK(refused.error() == errc::table_full);
}

TEST_CASE("conn_table sctp: set_state moves counts and refuses foreign states") {
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 5 * sec;
  auto r = table.insert(key<ipv4_address>(11, 40007, 100, 3868, sctp),
                        new_conn{4, true, no_template}, t0);
  REQUIRE(r);
  CHECK(table.set_state(*r, sctp_state::established, t0));
  CHECK(table.counts(4).active_conns == 1);
  CHECK(table.remaining_ns(*r, t0) == 900 * sec);
  CHECK_FALSE(table.set_state(*r, static_cast<sctp_state>(14), t0));  // outside the table
  CHECK_FALSE(table.set_state(*r, tcp_state::established, t0));       // not a TCP connection
  CHECK(table.set_state(*r, sctp_state::shutdown_sent, t0));
  CHECK(table.counts(4).active_conns == 0);
  CHECK(table.counts(4).inactive_conns == 1);
  CHECK(state_name(sctp, table.state(*r)) == "S-SENT");
}

}  // TEST_SUITE
