#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "conn/conn_support.hpp"
#include "l4lb/conn/conn_table.hpp"

using namespace conn_test;

TEST_SUITE("conn") {
TEST_CASE_TEMPLATE("conn_table: insert, find, duplicate and errors", Table, conn_table_v4,
                   conn_table_v6) {
  using Addr = typename Table::address_type;
  auto table = make_table<Table>(100);
  const std::int64_t now = 10 * sec;
  const auto k = key<Addr>(1, 40000);
  CHECK(table.find(k, now) == no_conn);
  auto r = table.insert(k, new_conn{3, false, no_template}, now);
  REQUIRE(r);
  CHECK(table.find(k, now) == *r);
  CHECK(table.size() == 1);
  CHECK(table.dest(*r) == 3);
  CHECK(table.key(*r) == k);
  CHECK(table.protocol(*r) == tcp);
  CHECK(table.state(*r) == 0);
  // Another client port, another vip port and another protocol are other connections.
  CHECK(table.find(key<Addr>(1, 40001), now) == no_conn);
  CHECK(table.find(key<Addr>(1, 40000, 100, 443), now) == no_conn);
  CHECK(table.find(key<Addr>(1, 40000, 100, 80, udp), now) == no_conn);

  auto again = table.insert(k, new_conn{4, false, no_template}, now);
  REQUIRE_FALSE(again);
  CHECK(again.error() == errc::exists);
  CHECK(table.stats().refused_exists == 1);
  CHECK(table.insert(key<Addr>(2, 1), new_conn{16, false, no_template}, now).error() ==
        errc::bad_dest);
  CHECK(table.insert(key<Addr>(2, 1), new_conn{1, false, 5}, now).error() == errc::bad_template);

  conn_table_config no_nat;
  no_nat.capacity = 10;
  no_nat.nat_index = false;
  Table plain(no_nat);
  CHECK(plain.insert(k, new_conn{0, true, no_template}, now).error() == errc::no_nat_index);
  conn_table_config fresh;
  fresh.capacity = 10;
  Table unregistered(fresh);
  CHECK(unregistered.insert(k, new_conn{0, true, no_template}, now).error() ==
        errc::unknown_dest_endpoint);
  CHECK(unregistered.insert(k, new_conn{0, false, no_template}, now));  // DR needs no endpoint
}

TEST_CASE("conn_table: create() refuses bad configurations") {
  conn_table_config c;
  c.capacity = 0;
  CHECK(conn_table_v4::create(c).error() == errc::bad_config);
  c.capacity = 10;
  c.max_dests = (1u << 24) + 1;
  CHECK(conn_table_v4::create(c).error() == errc::bad_config);
  c.max_dests = 10;
  c.idle_timeouts.udp = timeouts::max_seconds + 1;
  CHECK(conn_table_v4::create(c).error() == errc::bad_timeout);
  c.idle_timeouts.udp = 300;
  c.template_capacity = 20'000'000;  // 24-bit template references cannot address that many
  CHECK(conn_table_v4::create(c).error() == errc::bad_config);
  c.template_capacity = 100;
  CHECK(conn_table_v4::create(c));
  // More buckets than the limit would overflow the power-of-two rounding.
  c.wheel_buckets = 0xFFFF'FFFFu;
  CHECK(conn_table_v4::create(c).error() == errc::bad_config);
  c.wheel_buckets = conn_table_config::max_wheel_buckets + 1;
  CHECK(conn_table_v4::create(c).error() == errc::bad_config);
  c.wheel_buckets = conn_table_config::max_wheel_buckets;
  CHECK(conn_table_v4::create(c));
  c.wheel_buckets = 1;  // rounded up to 64
  CHECK(conn_table_v4::create(c));
}

TEST_CASE_TEMPLATE("conn_table: a connection is gone at ceil_to_tick(last packet) + timeout",
                   Table, conn_table_v4, conn_table_v6) {
  using Addr = typename Table::address_type;
  auto table = make_table<Table>(100);
  // Tick-aligned packet time: deadline exactly last + 60 s (SYN_RECV).
  const std::int64_t t0 = 1000 * sec;
  auto r = table.insert(key<Addr>(1, 1), new_conn{1, false, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, tcp_flag::syn, direction::input, t0);
  CHECK(table.find(key<Addr>(1, 1), t0 + 60 * sec - 1) == *r);
  CHECK(table.find(key<Addr>(1, 1), t0 + 60 * sec) == no_conn);
  // Reached but not yet reaped: the counts still hold it until expire() runs.
  CHECK(table.counts(1).active_conns == 1);
  auto e = table.expire(t0 + 60 * sec, 1000);
  CHECK(e.conns_expired == 1);
  CHECK(e.caught_up);
  CHECK(table.size() == 0);
  CHECK(table.counts(1).active_conns == 0);
  CHECK(table.counts(1).inactive_conns == 0);

  // A packet 10 ms into a tick counts from the next tick (62.5 ms): never early, at most one
  // tick late.
  const std::int64_t t1 = 2000 * sec + 10'000'000;
  auto r2 = table.insert(key<Addr>(1, 2), new_conn{1, false, no_template}, t1);
  REQUIRE(r2);
  table.on_packet(*r2, tcp_flag::syn, direction::input, t1);
  CHECK(table.find(key<Addr>(1, 2), t1 + 60 * sec) == *r2);
  CHECK(table.find(key<Addr>(1, 2), 2000 * sec + tick_ns + 60 * sec - 1) == *r2);
  CHECK(table.find(key<Addr>(1, 2), 2000 * sec + tick_ns + 60 * sec) == no_conn);
  // Expiry before the deadline removes nothing.
  CHECK(table.expire(2000 * sec + 60 * sec, 1000).conns_expired == 0);
  CHECK(table.expire(2000 * sec + tick_ns + 60 * sec, 1000).conns_expired == 1);
}

TEST_CASE("conn_table: a packet restarts the idle timer; a shorter state re-arms earlier") {
  auto table = make_table<conn_table_v4>(1000);
  const std::int64_t t0 = 100 * sec;
  auto r = table.insert(key<ipv4_address>(1, 1), new_conn{1, false, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, tcp_flag::syn, direction::input, t0);
  table.on_packet(*r, tcp_flag::ack, direction::input, t0);  // ESTABLISHED, 900 s
  table.on_packet(*r, tcp_flag::ack, direction::input, t0 + 800 * sec);
  CHECK(table.expire(t0 + 900 * sec, 1000).conns_expired == 0);
  CHECK(table.find(key<ipv4_address>(1, 1), t0 + 1699 * sec) == *r);
  // RST: CLOSE, 10 s. The group was armed for t0 + 1700 s; the wheel must visit it at +10 s.
  table.on_packet(*r, tcp_flag::rst, direction::input, t0 + 1000 * sec);
  CHECK(table.expire(t0 + 1009 * sec, 1000).conns_expired == 0);
  CHECK(table.expire(t0 + 1010 * sec, 1000).conns_expired == 1);
  CHECK(table.size() == 0);
}

TEST_CASE("conn_table: expire() does bounded work and catches up over several calls") {
  auto table = make_table<conn_table_v4>(4000);
  const std::int64_t t0 = 5 * sec;
  for (std::uint32_t i = 0; i < 3000; ++i) {
    auto r = table.insert(key<ipv4_address>(i, static_cast<std::uint16_t>(i)),
                          new_conn{i % 16, false, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);  // all due at t0 + 60 s
  }
  CHECK(table.counts(0).active_conns + table.counts(15).active_conns > 0);
  std::uint32_t calls = 0, expired = 0;
  for (;;) {
    auto e = table.expire(t0 + 61 * sec, 7);
    CHECK(e.visited <= 7);
    expired += e.conns_expired;
    ++calls;
    if (e.caught_up) break;
    REQUIRE(calls < 10000);
  }
  CHECK(expired == 3000);
  CHECK(calls > 1);
  CHECK(table.size() == 0);
  for (std::uint32_t d = 0; d < 16; ++d) CHECK(table.counts(d) == dest_counts{});
}

TEST_CASE("conn_table: a jump of days expires everything in one pass over the wheel") {
  auto table = make_table<conn_table_v4>(500);
  for (std::uint32_t i = 0; i < 400; ++i) {
    auto r = table.insert(key<ipv4_address>(i, 7), new_conn{1, false, no_template},
                          (i % 50) * sec);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, (i % 50) * sec);
    if (i % 3 == 0) table.on_packet(*r, tcp_flag::ack, direction::input, (i % 50) * sec);
  }
  auto e = table.expire(3 * 86400 * sec, 1'000'000);
  CHECK(e.caught_up);
  CHECK(e.conns_expired == 400);
  CHECK(table.size() == 0);
}

TEST_CASE_TEMPLATE("conn_table: reply lookups for NAT and non-NAT connections", Table,
                   conn_table_v4, conn_table_v6) {
  using Addr = typename Table::address_type;
  auto table = make_table<Table>(100);
  const std::int64_t now = 7 * sec;
  const auto k = key<Addr>(9, 5555, 100, 80);
  auto r = table.insert(k, new_conn{2, true, no_template}, now);  // server 0xC0..03 : 8002
  REQUIRE(r);
  const reply_key<Addr> reply{addr<Addr>(0xC0, 3), k.client_addr, 8002, 5555, tcp};
  CHECK(table.find_reply(reply, now) == *r);
  auto wrong = reply;
  wrong.server_port = 8003;
  CHECK(table.find_reply(wrong, now) == no_conn);
  wrong = reply;
  wrong.server_addr = addr<Addr>(0xC0, 4);
  CHECK(table.find_reply(wrong, now) == no_conn);
  wrong = reply;
  wrong.client_port = 5556;
  CHECK(table.find_reply(wrong, now) == no_conn);

  // A server with port 0 answers from the connection's virtual port.
  REQUIRE(table.set_dest(5, addr<Addr>(0xC0, 50), 0) == errc::ok);
  const auto k2 = key<Addr>(9, 6000, 100, 443);
  auto r2 = table.insert(k2, new_conn{5, true, no_template}, now);
  REQUIRE(r2);
  CHECK(table.find_reply({addr<Addr>(0xC0, 50), k2.client_addr, 443, 6000, tcp}, now) == *r2);
  // Its endpoint cannot change while it has connections.
  CHECK(table.set_dest(5, addr<Addr>(0xC0, 51), 0) == errc::dest_in_use);

  // A DR connection: replies (if the director sees any) come from the virtual endpoint.
  const auto k3 = key<Addr>(10, 7000, 100, 80);
  auto r3 = table.insert(k3, new_conn{2, false, no_template}, now);
  REQUIRE(r3);
  CHECK(table.find_reply({k3.virtual_addr, k3.client_addr, 80, 7000, tcp}, now) == *r3);
  CHECK(table.find_reply({addr<Addr>(0xC0, 3), k3.client_addr, 8002, 7000, tcp}, now) == no_conn);
  // ... and a NAT connection is not found that way.
  CHECK(table.find_reply({k.virtual_addr, k.client_addr, 80, 5555, tcp}, now) == no_conn);

  // The reply entry leaves with its connection.
  table.erase(*r, now);
  CHECK(table.find_reply(reply, now) == no_conn);
  CHECK(table.find_reply({addr<Addr>(0xC0, 50), k2.client_addr, 443, 6000, tcp}, now) == *r2);
}

TEST_CASE_TEMPLATE("conn_table: a reply skips a connection past its deadline for a live one",
                   Table, conn_table_v4, conn_table_v6) {
  using Addr = typename Table::address_type;
  auto table = make_table<Table>(100);
  // Two virtual services (VIPs 100 and 101) NAT to the same server endpoint (server 2 =
  // 0xC0..03 : 8002), and one client uses the same ip:port for both: both connections have
  // the same reply key. The first sees no packet after its insert (NONE, the 3 s initial
  // deadline: gone at t = 3 s); the second gets a SYN at 1 s (SYN_RECV, 60 s: gone at 61 s).
  const std::int64_t t0 = 0;
  const auto first = key<Addr>(9, 5555, 100, 80);
  const auto second = key<Addr>(9, 5555, 101, 80);
  auto r1 = table.insert(first, new_conn{2, true, no_template}, t0);
  REQUIRE(r1);
  auto r2 = table.insert(second, new_conn{2, true, no_template}, t0 + sec);
  REQUIRE(r2);
  table.on_packet(*r2, tcp_flag::syn, direction::input, t0 + sec);
  const reply_key<Addr> reply{addr<Addr>(0xC0, 3), first.client_addr, 8002, 5555, tcp};
  // While both live either may answer (IPVS's out_get takes the first on its hash chain).
  const conn_ref both = table.find_reply(reply, t0 + sec);
  CHECK((both == *r1 || both == *r2));
  // At 3 s (expire() not called yet) the first is past its deadline: the second answers,
  // whichever the index meets first.
  CHECK(table.find_reply(reply, t0 + 3 * sec) == *r2);
  CHECK(table.find_reply(reply, t0 + 61 * sec + sec) == no_conn);
}

TEST_CASE_TEMPLATE("conn_table: find_burst answers like find", Table, conn_table_v4,
                   conn_table_v6) {
  using Addr = typename Table::address_type;
  auto table = make_table<Table>(3000);
  const std::int64_t now = 3 * sec;
  for (std::uint32_t i = 0; i < 3000; i += 2)
    REQUIRE(table.insert(key<Addr>(i, static_cast<std::uint16_t>(i)),
                         new_conn{i % 16, false, no_template}, now));
  std::vector<conn_key<Addr>> keys;
  for (std::uint32_t i = 0; i < 3000; ++i) keys.push_back(key<Addr>(i, static_cast<std::uint16_t>(i)));
  for (std::size_t start = 0; start + 64 <= keys.size(); start += 61) {
    const std::span<const conn_key<Addr>> burst(keys.data() + start, 64);
    conn_ref out[64];
    const std::uint64_t hits = table.find_burst(burst, out, now);
    std::uint64_t hashes[64];
    for (std::size_t i = 0; i < 64; ++i) hashes[i] = table.hash(burst[i]);
    conn_ref out2[64];
    CHECK(table.find_burst(burst, hashes, out2, now) == hits);
    for (std::size_t i = 0; i < 64; ++i) {
      CAPTURE(start + i);
      CHECK(out[i] == table.find(burst[i], now));
      CHECK(out2[i] == out[i]);
      CHECK(((hits >> i) & 1) == (out[i] != no_conn));
      CHECK((out[i] != no_conn) == ((start + i) % 2 == 0));  // even keys were inserted
    }
  }
}

TEST_CASE("conn_table: memory per connection within budget at the running load factor") {
  // The budget: <= 32 bytes per IPv4 connection and <= 64 per IPv6 connection, all-in at
  // the load factor the table runs at (7/8 when full); the NAT reply index <= 24 more. Measured
  // here from what the constructor allocates; bench/conn_bench.cpp measures it with the
  // allocator's own accounting at 1M and 10M entries.
  conn_table_config c;
  c.capacity = 1'000'000;
  c.max_dests = 256;
  c.nat_index = false;
  const conn_table_v4 v4(c);
  const conn_table_v6 v6(c);
  CHECK(double(v4.memory_bytes()) / c.capacity <= 32.0);
  CHECK(double(v6.memory_bytes()) / c.capacity <= 64.0);
  c.nat_index = true;
  const conn_table_v4 v4n(c);
  const conn_table_v6 v6n(c);
  CHECK(double(v4n.memory().nat_index) / c.capacity <= 24.0);
  CHECK(double(v6n.memory().nat_index) / c.capacity <= 24.0);
  CHECK(conn_table_v4::slot_bytes == 24);
  CHECK(conn_table_v6::slot_bytes == 48);
  // Load at capacity: slots = 15 * ceil(capacity / 13.125) >= capacity / 0.875.
  CHECK(double(c.capacity) / v4.slot_count() <= 0.875);
  CHECK(double(c.capacity) / v4.slot_count() > 0.874);
}

TEST_CASE("conn_table: count events tell a director what to apply") {
  auto table = make_table<conn_table_v4>(100);
  event_log log;
  log.events.reserve(64);
  table.set_observer(log.observer());
  const std::int64_t t0 = 9 * sec;
  auto r = table.insert(key<ipv4_address>(1, 1), new_conn{4, false, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, tcp_flag::syn, direction::input, t0);
  table.on_packet(*r, tcp_flag::ack, direction::input, t0);   // SR -> ES: no count change
  table.on_packet(*r, tcp_flag::fin, direction::input, t0);   // -> FW (input-only row): inactive
  (void)table.expire(t0 + 121 * sec, 100);
  const count_change want[] = {count_change::conn_bound, count_change::became_active,
                               count_change::became_inactive, count_change::conn_unbound};
  REQUIRE(log.events.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(log.events[i].change == want[i]);
    CHECK(log.events[i].dest == 4);
  }
  CHECK(log.events[0].counts == dest_counts{0, 1, 0});
  CHECK(log.events[1].counts == dest_counts{1, 0, 0});
  CHECK(log.events[2].counts == dest_counts{0, 1, 0});
  CHECK(log.events[3].counts == dest_counts{0, 0, 0});
}

TEST_CASE_TEMPLATE("conn_table: insert with its first packet equals insert then on_packet", Table,
                   conn_table_v4, conn_table_v6) {
  using Addr = typename Table::address_type;
  // Every flag combination that selects an event (and PSH alone: none, so CLOSE), TCP, UDP and
  // another protocol, DR and NAT, with and without a template, both TCP tables.
  const std::uint8_t flag_sets[] = {0,
                                    tcp_flag::syn,
                                    tcp_flag::ack,
                                    tcp_flag::fin | tcp_flag::ack,
                                    tcp_flag::rst,
                                    tcp_flag::syn | tcp_flag::ack,
                                    tcp_flag::psh,
                                    tcp_flag::syn | tcp_flag::fin | tcp_flag::rst};
  const std::uint8_t protocols[] = {tcp, udp, 47};
  const std::int64_t now = 7 * sec + 123;
  for (const bool secure : {false, true})
    for (const std::uint8_t proto : protocols)
      for (const bool nat : {false, true})
        for (const bool with_template : {false, true})
          for (const std::uint8_t flags : flag_sets) {
            CAPTURE(secure);
            CAPTURE(proto);
            CAPTURE(nat);
            CAPTURE(with_template);
            CAPTURE(flags);
            auto two = make_table<Table>(16, 4);
            auto one = make_table<Table>(16, 4);
            event_log log_two, log_one;
            log_two.events.reserve(8);
            log_one.events.reserve(8);
            two.set_observer(log_two.observer());
            one.set_observer(log_one.observer());
            two.set_secure_tcp(secure);
            one.set_secure_tcp(secure);
            const auto k = key<Addr>(1, 40000, 100, 80, proto);
            const typename Table::template_key_type tk{k.client_addr, k.virtual_addr, 80, proto};
            new_conn nc{3, nat, no_template};
            template_ref t_two = no_template, t_one = no_template;
            if (with_template) {
              t_two = *two.insert_template(tk, 3, 300, now);
              t_one = *one.insert_template(tk, 3, 300, now);
              log_two.events.clear();  // template_bound: the same in both
              log_one.events.clear();
            }
            nc.control = t_two;
            const auto r_two = two.insert(k, nc, now);
            REQUIRE(r_two);
            (void)two.on_packet(*r_two, flags, direction::input, now);
            nc.control = t_one;
            nc.first_packet = true;
            nc.first_tcp_flags = flags;
            const auto r_one = one.insert(k, nc, now);
            REQUIRE(r_one);
            const auto v1 = one.view(*r_one, now), v2 = two.view(*r_two, now);
            CHECK(v1.key == v2.key);
            CHECK(v1.dest == v2.dest);
            CHECK(v1.state == v2.state);
            CHECK(v1.nat == v2.nat);
            CHECK(v1.no_output == v2.no_output);
            CHECK((v1.control != no_template) == (v2.control != no_template));
            CHECK(v1.remaining_ns == v2.remaining_ns);
            CHECK(one.counts(3) == two.counts(3));
            if (with_template) CHECK(one.templates().assured(t_one) == two.templates().assured(t_two));
            // One count event where two may have been sent; the last one's counts agree.
            REQUIRE(!log_one.events.empty());
            CHECK(log_one.events.size() == 1);
            CHECK(log_one.events.back().counts == log_two.events.back().counts);
            CHECK(log_one.events.back().change == count_change::conn_bound);
            // Both expire at the same tick, not one earlier.
            const std::int64_t gone = now + one.remaining_ns(*r_one, now);
            CHECK(one.find(k, gone - 1) == *r_one);
            CHECK(one.find(k, gone) == no_conn);
            CHECK(two.find(k, gone - 1) == *r_two);
            CHECK(two.find(k, gone) == no_conn);
          }
}

TEST_CASE("conn_table: timeouts changed with --set semantics apply from the next packet") {
  auto table = make_table<conn_table_v4>(100);
  timeouts t = table.current_timeouts();
  REQUIRE(t.set_ipvsadm(30, 0, 5) == errc::ok);
  REQUIRE(table.set_timeouts(t) == errc::ok);
  const std::int64_t t0 = sec;
  auto r = table.insert(key<ipv4_address>(1, 1), new_conn{1, false, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, tcp_flag::syn, direction::input, t0);
  table.on_packet(*r, tcp_flag::ack, direction::input, t0);
  CHECK(table.remaining_ns(*r, t0) == 30 * sec);
  auto u = table.insert(key<ipv4_address>(1, 2, 100, 53, udp), new_conn{1, false, no_template}, t0);
  REQUIRE(u);
  table.on_packet(*u, 0, direction::input, t0);
  CHECK(table.remaining_ns(*u, t0) == 5 * sec);
  timeouts bad;
  bad.initial = timeouts::max_seconds + 1;
  CHECK(table.set_timeouts(bad) == errc::bad_timeout);
}

TEST_CASE("conn_table: full table evicts expired, then embryonic, then oldest inactive") {
  // Capacity 15 with one group of 15 slots is not possible (groups = ceil(15 / 13.125) = 2, 30
  // slots), so every entry sits in the two-group window of every key: the policy is visible.
  auto table = make_table<conn_table_v4>(15);
  REQUIRE(table.slot_count() == 30);
  const std::int64_t t0 = 100 * sec;
  std::vector<conn_ref> refs;
  // 5 established, 5 embryonic (SYN_RECV), 5 inactive (FIN_WAIT), inactive deadlines staggered.
  for (std::uint32_t i = 0; i < 15; ++i) {
    const std::int64_t at = t0 + i * sec;
    auto r = table.insert(key<ipv4_address>(i, 1), new_conn{1, false, no_template}, at);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, at);
    if (i < 5 || i >= 10) table.on_packet(*r, tcp_flag::ack, direction::input, at);
    if (i >= 10) table.on_packet(*r, tcp_flag::fin, direction::input, at);
    refs.push_back(*r);
  }
  REQUIRE(table.size() == 15);
  const std::int64_t now = t0 + 20 * sec;

  SUBCASE("embryonic before inactive, the earliest deadline first") {
    // SYN_RECV entries 5..9 have deadlines t0 + 5..9 s + 60 s: entry 5 is the oldest.
    REQUIRE(table.insert(key<ipv4_address>(100, 1), new_conn{2, false, no_template}, now));
    CHECK(table.stats().evicted_embryonic == 1);
    CHECK(table.find(key<ipv4_address>(5, 1), now) == no_conn);
    CHECK(table.find(key<ipv4_address>(6, 1), now) != no_conn);
    CHECK(table.size() == 15);
  }
  SUBCASE("inactive when no embryonic is left, never established") {
    for (std::uint32_t i = 5; i < 10; ++i) table.erase(refs[i], now);
    for (std::uint32_t i = 0; i < 5; ++i)
      REQUIRE(table.insert(key<ipv4_address>(200 + i, 1), new_conn{2, false, no_template}, now));
    // Now 5 ES, 5 FW, 5 NONE (new, not yet a packet: embryonic). Make the new ones established.
    for (std::uint32_t i = 0; i < 5; ++i) {
      const auto r = table.find(key<ipv4_address>(200 + i, 1), now);
      table.on_packet(r, tcp_flag::syn, direction::input, now);
      table.on_packet(r, tcp_flag::ack, direction::input, now);
    }
    // FIN_WAIT entries 10..14 (deadlines t0 + 10..14 s + 120 s): entry 10 goes first.
    REQUIRE(table.insert(key<ipv4_address>(300, 1), new_conn{2, false, no_template}, now));
    CHECK(table.stats().evicted_inactive == 1);
    CHECK(table.find(key<ipv4_address>(10, 1), now) == no_conn);
    CHECK(table.find(key<ipv4_address>(11, 1), now) != no_conn);
    // Fill up with established only: then inserts are refused, nothing established leaves.
    const auto r300 = table.find(key<ipv4_address>(300, 1), now);
    table.on_packet(r300, tcp_flag::syn, direction::input, now);
    table.on_packet(r300, tcp_flag::ack, direction::input, now);
    for (std::uint32_t i = 11; i < 15; ++i) table.erase(refs[i], now);
    for (std::uint32_t i = 0; i < 4; ++i) {
      const auto r = table.insert(key<ipv4_address>(400 + i, 1), new_conn{2, false, no_template}, now);
      REQUIRE(r);
      table.on_packet(*r, tcp_flag::syn, direction::input, now);
      table.on_packet(*r, tcp_flag::ack, direction::input, now);
    }
    REQUIRE(table.size() == 15);
    auto refused = table.insert(key<ipv4_address>(500, 1), new_conn{2, false, no_template}, now);
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc::table_full);
    CHECK(table.stats().refused_full == 1);
    CHECK(table.counts(1).active_conns + table.counts(2).active_conns == 15);
  }
  SUBCASE("an entry whose deadline is reached goes first, as an expiry") {
    // At t0 + 134 s the FIN_WAIT entry 10 (deadline t0 + 130 s) is reached; SYN_RECV ones too.
    const std::int64_t later = t0 + 134 * sec;
    REQUIRE(table.insert(key<ipv4_address>(100, 1), new_conn{2, false, no_template}, later));
    CHECK(table.stats().expired == 1);
    CHECK(table.stats().evicted_embryonic == 0);
    CHECK(table.stats().evicted_inactive == 0);
  }
}

TEST_CASE("conn_table: a SYN flood of 10x capacity leaves established connections in place") {
  const std::uint32_t cap = 2000;
  auto table = make_table<conn_table_v4>(cap);
  const std::int64_t t0 = 10 * sec;
  std::vector<conn_key_v4> established;
  for (std::uint32_t i = 0; i < cap / 2; ++i) {
    const auto k = key<ipv4_address>(i, 443, 100, 443);
    auto r = table.insert(k, new_conn{i % 8, false, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);
    table.on_packet(*r, tcp_flag::ack, direction::input, t0);
    established.push_back(k);
  }
  std::uint64_t accepted = 0, refused = 0;
  for (std::uint32_t i = 0; i < 10 * cap; ++i) {
    const std::int64_t now = t0 + sec + i * 1'000'000;  // 1000 SYN/s from random sources
    // Distinct (source, port) pairs: 24 576 sources inside 198.18.0.0/15, then the next port.
    const auto k = key<ipv4_address>(0x1000 + i % 0x6000, static_cast<std::uint16_t>(1024 + i / 0x6000),
                                     100, 443);
    auto r = table.insert(k, new_conn{i % 8, false, no_template}, now);
    if (!r) {
      CHECK(r.error() == errc::table_full);
      ++refused;
      continue;
    }
    ++accepted;
    table.on_packet(*r, tcp_flag::syn, direction::input, now);  // SYN_RECV, never acknowledged
    (void)table.expire(now, 64);
  }
  const std::int64_t end = t0 + sec + 10 * cap * 1'000'000;
  for (const auto& k : established) CHECK(table.find(k, end) != no_conn);
  CHECK(table.size() <= cap);
  CHECK(accepted + refused == 10 * cap);
  CHECK(table.stats().evicted_embryonic > 0);
  CHECK(table.stats().refused_full == refused);
  // Counts: every live connection is counted once; established + SYN_RECV are all active.
  std::uint64_t active = 0, inactive = 0;
  for (std::uint32_t d = 0; d < 16; ++d) {
    active += table.counts(d).active_conns;
    inactive += table.counts(d).inactive_conns;
  }
  CHECK(active + inactive == table.size());
}

TEST_CASE("conn_table: tuple reuse — a SYN on TIME_WAIT/CLOSE is scheduled afresh") {
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 20 * sec;
  const auto k = key<ipv4_address>(1, 33000);
  auto open_nat = [&](std::uint32_t dest, bool nat) {
    auto r = table.insert(k, new_conn{dest, nat, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);
    table.on_packet(*r, tcp_flag::ack, direction::input, t0);
    return *r;
  };

  SUBCASE("TIME_WAIT: rescheduled, old server released") {
    const auto r = open_nat(1, true);
    table.on_packet(r, tcp_flag::fin | tcp_flag::ack, direction::input, t0);
    table.on_packet(r, tcp_flag::fin | tcp_flag::ack, direction::output, t0);
    REQUIRE(static_cast<tcp_state>(table.state(r)) == tcp_state::time_wait);
    // A plain ACK still belongs to the old connection.
    CHECK(table.lookup_input(k, tcp_flag::ack, t0 + sec).action == input_action::hit);
    const auto l = table.lookup_input(k, tcp_flag::syn, t0 + sec);
    CHECK(l.action == input_action::rescheduled);
    CHECK(table.find(k, t0 + sec) == no_conn);
    CHECK(table.counts(1) == dest_counts{});
    CHECK(table.stats().reused == 1);
    // The director then schedules (say server 2) and inserts.
    auto fresh = table.insert(k, new_conn{2, true, no_template}, t0 + sec);
    REQUIRE(fresh);
    CHECK(table.dest(*fresh) == 2);
  }
  SUBCASE("CLOSE after RST: rescheduled") {
    const auto r = open_nat(1, false);
    table.on_packet(r, tcp_flag::rst, direction::input, t0);
    CHECK(table.lookup_input(k, tcp_flag::syn, t0).action == input_action::rescheduled);
  }
  SUBCASE("DR FIN_WAIT: only with conn_reuse_mode bit 1 (value 2)") {
    const auto r = open_nat(1, false);
    table.on_packet(r, tcp_flag::fin, direction::input, t0);
    REQUIRE(static_cast<tcp_state>(table.state(r)) == tcp_state::fin_wait);
    CHECK(table.lookup_input(k, tcp_flag::syn, t0).action == input_action::hit);
    table.set_reuse_policy({3, false, true});
    CHECK(table.lookup_input(k, tcp_flag::syn, t0).action == input_action::rescheduled);
  }
  SUBCASE("conn_reuse_mode 0: the SYN goes to the old connection") {
    const auto r = open_nat(1, true);
    table.on_packet(r, tcp_flag::rst, direction::input, t0);
    table.set_reuse_policy({0, false, true});
    const auto l = table.lookup_input(k, tcp_flag::syn, t0);
    CHECK(l.action == input_action::hit);
    table.on_packet(l.ref, tcp_flag::syn, direction::input, t0);  // CLOSE + syn -> SYN_RECV
    CHECK(static_cast<tcp_state>(table.state(l.ref)) == tcp_state::syn_recv);
  }
  SUBCASE("ESTABLISHED: a SYN is not a reuse") {
    open_nat(1, true);
    CHECK(table.lookup_input(k, tcp_flag::syn, t0).action == input_action::hit);
  }
}

TEST_CASE("conn_table: the Kubernetes scenario — server removed or quiesced, port reused") {
  // kube-proxy IPVS: a pod (real server) goes away; a client reuses a source port whose old
  // connection still sits in the table. The new SYN must be scheduled to a live server, not sent
  // to the removed or quiesced one (issues 81775, 93297).
  auto table = make_table<conn_table_v4>(100);
  const std::int64_t t0 = 30 * sec;
  const auto k = key<ipv4_address>(7, 45000);
  auto r = table.insert(k, new_conn{3, true, no_template}, t0);
  REQUIRE(r);
  table.on_packet(*r, tcp_flag::syn, direction::input, t0);
  table.on_packet(*r, tcp_flag::ack, direction::input, t0);

  SUBCASE("removed: data is dropped, a SYN is rescheduled") {
    REQUIRE(table.set_dest_available(3, false) == errc::ok);
    auto l = table.lookup_input(k, tcp_flag::ack, t0 + sec);
    CHECK(l.action == input_action::drop);
    CHECK(l.ref == *r);
    CHECK(table.stats().nodest_dropped == 1);
    l = table.lookup_input(k, tcp_flag::syn, t0 + sec);
    CHECK(l.action == input_action::rescheduled);
    CHECK(table.counts(3) == dest_counts{});
    auto fresh = table.insert(k, new_conn{4, true, no_template}, t0 + sec);
    REQUIRE(fresh);
    CHECK(table.find(k, t0 + sec) == *fresh);
    CHECK(table.counts(4).inactive_conns == 1);
  }
  SUBCASE("removed with expire_nodest_conn: even data removes the old connection") {
    REQUIRE(table.set_dest_available(3, false) == errc::ok);
    table.set_reuse_policy({1, true, true});
    CHECK(table.lookup_input(k, tcp_flag::ack, t0 + sec).action == input_action::rescheduled);
    CHECK(table.stats().nodest_expired == 1);
  }
  SUBCASE("quiesced: existing traffic continues, a SYN is rescheduled") {
    REQUIRE(table.set_dest_quiesced(3, true) == errc::ok);
    CHECK(table.lookup_input(k, tcp_flag::ack, t0 + sec).action == input_action::hit);
    CHECK(table.lookup_input(k, tcp_flag::syn, t0 + sec).action == input_action::rescheduled);
  }
  SUBCASE("IPVS's own default (our rule off): the SYN is dropped for a removed server") {
    REQUIRE(table.set_dest_available(3, false) == errc::ok);
    table.set_reuse_policy({1, false, false});
    CHECK(table.lookup_input(k, tcp_flag::syn, t0 + sec).action == input_action::drop);
  }
  SUBCASE("IPVS's own default (our rule off): a SYN stays with a quiesced server") {
    // ip_vs_in_hook: only expire_nodest_conn reschedules a SYN whose server has weight 0; an
    // ESTABLISHED connection is no reuse candidate (is_new_conn_expected), so the SYN is a hit.
    REQUIRE(table.set_dest_quiesced(3, true) == errc::ok);
    table.set_reuse_policy({1, false, false});
    CHECK(table.lookup_input(k, tcp_flag::syn, t0 + sec).action == input_action::hit);
    table.set_reuse_policy({1, true, false});
    CHECK(table.lookup_input(k, tcp_flag::syn, t0 + sec).action == input_action::rescheduled);
  }
}
}

TEST_CASE("conn_table: a ref from earlier in the burst that an insert evicted is not applied") {
  // Review finding: find_burst() then insert() (which may evict) then apply_input_rules() on a
  // ref found before the eviction used the freed or reused slot: another flow's state and
  // counts changed. The key form re-checks the ref and looks the flow up again.
  auto table = make_table<conn_table_v4>(15);
  const std::int64_t t0 = 100 * sec;
  for (std::uint32_t i = 0; i < 15; ++i) {
    auto r = table.insert(key<ipv4_address>(i, 1), new_conn{0, false, no_template}, t0);
    REQUIRE(r);
    table.on_packet(*r, tcp_flag::syn, direction::input, t0);  // embryonic: evictable
  }
  // One burst: all 15 flows are found, then a new flow's insert evicts one of them.
  const std::int64_t now = t0 + sec;
  std::array<conn_key<ipv4_address>, 15> keys;
  for (std::uint32_t i = 0; i < 15; ++i) keys[i] = key<ipv4_address>(i, 1);
  std::array<conn_ref, 15> refs{};
  REQUIRE(table.find_burst(keys, refs, now) == 0x7fff);
  auto fresh = table.insert(key<ipv4_address>(99, 1), new_conn{1, false, no_template}, now);
  REQUIRE(fresh);
  REQUIRE(table.stats().evicted_embryonic == 1);
  std::size_t gone = 15;
  for (std::size_t i = 0; i < 15; ++i)
    if (table.find(keys[i], now) == no_conn) gone = i;
  REQUIRE(gone < 15);
  CHECK(refs[gone] == *fresh);  // the new connection took the evicted slot
  CHECK_FALSE(table.holds(refs[gone], keys[gone]));
  for (std::size_t i = 0; i < 15; ++i)
    if (i != gone) CHECK(table.holds(refs[i], keys[i]));
  // The stale ref is a miss for the evicted flow, and the new connection is untouched.
  const auto in = table.apply_input_rules(refs[gone], keys[gone], tcp_flag::ack, now);
  CHECK(in.action == input_action::miss);
  CHECK(table.state(*fresh) == static_cast<std::uint8_t>(tcp_state::none));
  CHECK(table.counts(1).inactive_conns == 1);
  CHECK(table.counts(1).active_conns == 0);
  CHECK(table.counts(0).active_conns == 14);
  // Erasing a ref twice releases its counts once.
  const std::size_t victim = (gone + 1) % 15;
  table.erase(refs[victim], now);
  table.erase(refs[victim], now);
  CHECK(table.counts(0).active_conns == 13);
  CHECK(table.counts(0).inactive_conns == 0);
  CHECK(table.size() == 14);
}

TEST_CASE("conn_table: set_state refuses a state outside IPVS's table") {
  // A sync message's state byte comes off the network: 11 (IP_VS_TCP_S_LAST) and above are not
  // states (ipvs-notes 3.3).
  auto table = make_table<conn_table_v4>(64);
  auto r = table.insert(key<ipv4_address>(1, 1), new_conn{0, false, no_template}, sec);
  REQUIRE(r);
  CHECK_FALSE(table.set_state(*r, static_cast<tcp_state>(11), sec));
  CHECK_FALSE(table.set_state(*r, static_cast<tcp_state>(200), sec));
  CHECK(table.state(*r) == static_cast<std::uint8_t>(tcp_state::none));
  CHECK(table.set_state(*r, tcp_state::established, sec));
  CHECK(table.counts(0).active_conns == 1);
  auto u = table.insert(key<ipv4_address>(2, 1, 100, 53, udp), new_conn{0, false, no_template}, sec);
  REQUIRE(u);
  CHECK_FALSE(table.set_state(*u, tcp_state::established, sec));  // not TCP
}

TEST_CASE("conn_table: plain_hit_dest answers a server only where apply_input_rules is a plain hit") {
  // The director's lane asks plain_hit_dest and, on a server, skips apply_input_rules: a server
  // answered must be that rule's hit, for every flag set, protocol and server condition. (A SYN
  // is never plain, though the rules may hit it: the lane leaves SYNs to the general path.)
  const std::int64_t t0 = 10 * sec;
  for (const auto proto : {tcp, udp}) {
    for (int cond = 0; cond < 3; ++cond) {  // available, quiesced, removed
      for (const std::uint8_t flags : {std::uint8_t{0}, tcp_flag::ack, tcp_flag::syn,
                                       std::uint8_t(tcp_flag::syn | tcp_flag::ack), tcp_flag::rst,
                                       tcp_flag::fin}) {
        CAPTURE(proto);
        CAPTURE(cond);
        CAPTURE(flags);
        auto table = make_table<conn_table_v4>(64);
        const auto k = key<ipv4_address>(3, 40000, 100, 80, proto);
        auto r = table.insert(k, new_conn{5, false, no_template}, t0);
        REQUIRE(r);
        table.on_packet(*r, proto == tcp ? tcp_flag::syn : std::uint8_t{0}, direction::input, t0);
        if (cond == 1) REQUIRE(table.set_dest_quiesced(5, true) == errc::ok);
        if (cond == 2) REQUIRE(table.set_dest_available(5, false) == errc::ok);
        const std::uint32_t d = table.plain_hit_dest(*r, flags);
        CHECK(table.plain_hit_found(*r, flags) == (d != table.no_dest));
        CHECK(table.plain_hit(*r, k, flags) == (d != table.no_dest));
        // The key form: with the table unchanged since the lookup the ref is taken as found;
        // after a change it must still hold the key.
        const std::uint64_t v = table.structure_version();
        CHECK(table.plain_hit_dest(*r, k, v, flags) == d);
        CHECK(table.plain_hit_dest(*r, k, v - 1, flags) == d);
        CHECK(table.plain_hit_dest(*r, key<ipv4_address>(4, 40000, 100, 80, proto), v - 1, flags) == table.no_dest);
        CHECK_FALSE(table.plain_hit(*r, key<ipv4_address>(4, 40000, 100, 80, proto), flags));
        const auto in = table.apply_input_rules(*r, flags, t0 + sec);
        const bool plain = in.action == input_action::hit && in.ref == *r;
        if (d != table.no_dest) {
          CHECK(plain);
          CHECK(d == 5u);
        }
        // Plain: any packet but a TCP SYN, to a server not removed (quiesced ones keep theirs).
        CHECK((d != table.no_dest) == (cond != 2 && !(proto == tcp && (flags & tcp_flag::syn))));
      }
    }
  }
}
