#include <doctest/doctest.h>

#include "conn/conn_support.hpp"
#include "l4lb/conn/conn_table.hpp"
#include "l4lb/conn/persistence.hpp"

using namespace conn_test;

namespace {

// What a director does for a persistent service (ipvs-notes 3.5, ip_vs_sched_persist): use a
// valid template's server, else ask the scheduler and make a template; then create the
// connection controlled by the template and apply its first packet.
struct persistent_director {
  conn_table_v4& table;
  persistence<ipv4_address> svc;
  std::uint32_t next_pick = 0;  // a round-robin stand-in for the scheduler
  std::uint32_t picks = 0;      // how often the scheduler was consulted

  conn_ref connect(const conn_key_v4& k, std::int64_t now, std::uint8_t flags = tcp_flag::syn) {
    const auto tk = svc.key_for(k.protocol, k.client_addr, k.virtual_addr, k.virtual_port);
    template_ref t = table.find_template(tk, now);
    if (t == no_template) {
      ++picks;
      const std::uint32_t dest = next_pick++ % 4;
      auto made = table.insert_template(tk, dest, svc.timeout_s, now);
      REQUIRE(made);
      t = *made;
    }
    auto r = table.insert(k, new_conn{table.templates().dest(t), false, t}, now);
    REQUIRE(r);
    table.on_packet(*r, flags, direction::input, now);
    return *r;
  }
};

conn_table_v4 persistent_table() { return make_table<conn_table_v4>(1000, 100, 8); }

}  // namespace

TEST_SUITE("conn") {
TEST_CASE("persistence: template keys follow ip_vs_sched_persist") {
  persistence<ipv4_address> p;
  const auto client = ipv4_address::from_u32(0xC6120107u);  // 198.18.1.7
  const auto vip = ipv4_address::from_u32(0xC6120064u);
  CHECK(p.timeout_s == 360);  // ipvsadm -p default (libipvs), ipvs-notes 3.5
  CHECK(p.netmask == ipv4_address::from_u32(0xFFFFFFFFu));

  SUBCASE("a port service keys on (proto, client, vip, vport)") {
    p.service_port = 80;
    const auto k = p.key_for(tcp, client, vip, 80);
    CHECK(k.protocol == tcp);
    CHECK(k.client_net == client);
    CHECK(k.virtual_addr == vip);
    CHECK(k.virtual_port == 80);
    CHECK(p.template_dest_port(80, 8080) == 8080);
    CHECK(p.conn_dest_port(80, 8080) == 8080);
    CHECK(p.conn_dest_port(80, 0) == 80);
  }
  SUBCASE("FTP (port 21) keys on vport 0 so data connections share the template") {
    p.service_port = 21;
    CHECK(p.key_for(tcp, client, vip, 21).virtual_port == 0);
    CHECK(p.template_dest_port(21, 21) == 0);
  }
  SUBCASE("an all-ports (port 0) service keys on vport 0: the persistent port 0 rule") {
    p.service_port = 0;
    const auto a = p.key_for(tcp, client, vip, 443);
    const auto b = p.key_for(tcp, client, vip, 8443);
    CHECK(a == b);
    CHECK(a.virtual_port == 0);
    CHECK(a.protocol == tcp);
    CHECK(a.virtual_addr == vip);
    CHECK(p.conn_dest_port(443, 0) == 443);      // a connection keeps its own port
    CHECK(p.conn_dest_port(443, 8080) == 443);   // ... even when the server has one
  }
  SUBCASE("a fwmark service keys on (IPPROTO_IP, mark, 0), whatever the protocol and vip") {
    p.fwmark = 0x01020304;
    const auto a = p.key_for(tcp, client, vip, 443);
    const auto b = p.key_for(udp, client, ipv4_address::from_u32(0xC6120065u), 53);
    CHECK(a == b);
    CHECK(a.protocol == 0);
    CHECK(a.virtual_addr == ipv4_address::from_u32(0x01020304u));
    CHECK(a.virtual_port == 0);
  }
  SUBCASE("-M 255.255.255.0 groups clients by /24") {
    p.service_port = 80;
    p.netmask = ipv4_address::from_u32(0xFFFFFF00u);
    CHECK(p.key_for(tcp, client, vip, 80) ==
          p.key_for(tcp, ipv4_address::from_u32(0xC61201C8u), vip, 80));  // 198.18.1.200
    CHECK(p.key_for(tcp, client, vip, 80).client_net == ipv4_address::from_u32(0xC6120100u));
    CHECK(p.key_for(tcp, client, vip, 80) !=
          p.key_for(tcp, ipv4_address::from_u32(0xC6120207u), vip, 80));  // 198.18.2.7
  }
  SUBCASE("IPv6 prefix lengths") {
    using p6 = persistence<ipv6_address>;
    CHECK(p6::mask_from_prefix(128) == p6::all_ones());
    const auto m = p6::mask_from_prefix(52);
    CHECK(m.bytes[5] == 0xFF);
    CHECK(m.bytes[6] == 0xF0);
    CHECK(m.bytes[7] == 0x00);
    CHECK(p6::mask_from_prefix(0) == ipv6_address{});
  }
}

TEST_CASE("persistence: same client, same server while the template lives; a new pick after") {
  auto table = persistent_table();
  persistent_director dir{table, {}};
  dir.svc.service_port = 80;
  dir.svc.timeout_s = 300;
  const std::int64_t t0 = 1000 * sec;
  const conn_ref first = dir.connect(key<ipv4_address>(1, 1000), t0);
  const std::uint32_t server = table.dest(first);
  CHECK(table.counts(server).persist_conns == 1);
  CHECK(dir.picks == 1);
  // More connections of the same client within the template's life: same server, no pick.
  for (std::uint16_t port = 1001; port < 1010; ++port) {
    const conn_ref r = dir.connect(key<ipv4_address>(1, port), t0 + (port - 1000) * sec);
    CHECK(table.dest(r) == server);
  }
  CHECK(dir.picks == 1);
  CHECK(table.templates().size() == 1);
  CHECK(table.templates().controls(table.control(first)) == 10);
  // Another client gets its own pick (the stand-in scheduler moves on).
  const conn_ref other = dir.connect(key<ipv4_address>(2, 1000), t0);
  CHECK(dir.picks == 2);
  CHECK(table.dest(other) != server);

  // Let every connection of client 1 end (SYN_RECV 60 s), then the template (300 s after the
  // last connection was created, t0 + 9 s): at t0 + 309 s it is gone.
  (void)table.expire(t0 + 200 * sec, 100000);
  CHECK(table.find(key<ipv4_address>(1, 1000), t0 + 200 * sec) == no_conn);
  CHECK(table.templates().size() == 2);  // outlives its connections
  CHECK(table.counts(server).persist_conns == 1);
  const auto tk = dir.svc.key_for(tcp, addr<ipv4_address>(0x0A, 1), addr<ipv4_address>(0xC6, 100), 80);
  CHECK(table.find_template(tk, t0 + 308 * sec) != no_template);
  (void)table.expire(t0 + 309 * sec, 100000);
  CHECK(table.find_template(tk, t0 + 309 * sec) == no_template);
  CHECK(table.counts(server).persist_conns == 0);
  dir.connect(key<ipv4_address>(1, 2000), t0 + 310 * sec);
  CHECK(dir.picks == 3);
}

TEST_CASE("persistence: a template still controlling connections is kept 60 s at a time") {
  auto table = persistent_table();
  persistent_director dir{table, {}};
  dir.svc.service_port = 80;
  dir.svc.timeout_s = 100;
  const std::int64_t t0 = 0;
  const conn_ref r = dir.connect(key<ipv4_address>(1, 1000), t0);
  table.on_packet(r, tcp_flag::ack, direction::input, t0);  // ESTABLISHED, 900 s
  const template_ref t = table.control(r);
  CHECK(table.templates().assured(t));  // a controlled connection reached ESTABLISHED
  // At t0 + 100 s its timer runs out while it controls the connection: +60 s (ip_vs_conn_expire)
  (void)table.expire(t0 + 100 * sec, 1000);
  CHECK(table.templates().live(t));
  CHECK(table.templates().stats().kept_busy == 1);
  CHECK(table.templates().timeout_ticks(t) == 60 * ticks_per_second);
  CHECK(table.templates().remaining_ns(t, t0 + 100 * sec) == 60 * sec);
  (void)table.expire(t0 + 160 * sec, 1000);
  CHECK(table.templates().stats().kept_busy == 2);
  // The connection ends (FIN from the DR client, 120 s); the template goes at its next firing.
  table.on_packet(r, tcp_flag::fin, direction::input, t0 + 200 * sec);
  (void)table.expire(t0 + 320 * sec, 1000);
  CHECK(table.size() == 0);
  CHECK(table.templates().size() == 1);  // re-armed at 280 s, due at 340 s
  (void)table.expire(t0 + 340 * sec, 1000);
  CHECK(table.templates().size() == 0);
  CHECK(table.counts(0).persist_conns + table.counts(1).persist_conns == 0);
}

TEST_CASE("persistence: ASSURED by UDP output; netmask groups clients") {
  auto table = persistent_table();
  persistent_director dir{table, {}};
  dir.svc.service_port = 53;
  dir.svc.netmask = ipv4_address::from_u32(0xFFFFFF00u);
  const std::int64_t t0 = 5 * sec;
  const auto a = key<ipv4_address>(0x000101, 5000, 100, 53, udp);  // 198.18.1.1
  const auto b = key<ipv4_address>(0x000102, 5000, 100, 53, udp);  // 198.18.1.2: same /24
  const auto c = key<ipv4_address>(0x000201, 5000, 100, 53, udp);  // 198.18.2.1: another /24
  const conn_ref ra = dir.connect(a, t0, 0);
  const conn_ref rb = dir.connect(b, t0, 0);
  const conn_ref rc = dir.connect(c, t0, 0);
  CHECK(table.dest(ra) == table.dest(rb));
  CHECK(table.control(ra) == table.control(rb));
  CHECK(table.control(ra) != table.control(rc));
  CHECK(dir.picks == 2);
  CHECK_FALSE(table.templates().assured(table.control(ra)));
  table.on_packet(ra, 0, direction::input, t0);
  CHECK_FALSE(table.templates().assured(table.control(ra)));
  table.on_packet(ra, 0, direction::output, t0);  // udp_state_transition: output assures
  CHECK(table.templates().assured(table.control(ra)));
}

TEST_CASE("persistence: a removed server invalidates the template; quiesced only on request") {
  auto table = persistent_table();
  persistent_director dir{table, {}};
  dir.svc.service_port = 80;
  const std::int64_t t0 = 5 * sec;
  const conn_ref r = dir.connect(key<ipv4_address>(1, 1000), t0);
  const std::uint32_t server = table.dest(r);
  const template_ref old = table.control(r);

  SUBCASE("quiesced: template still valid (expire_quiescent_template off)") {
    REQUIRE(table.set_dest_quiesced(server, true) == errc::ok);
    CHECK(table.dest(dir.connect(key<ipv4_address>(1, 1001), t0)) == server);
    CHECK(dir.picks == 1);
  }
  SUBCASE("removed: a new pick and a new template; the old one stays for its connection") {
    REQUIRE(table.set_dest_available(server, false) == errc::ok);
    const conn_ref r2 = dir.connect(key<ipv4_address>(1, 1001), t0 + sec);
    CHECK(dir.picks == 2);
    CHECK(table.dest(r2) != server);
    CHECK(table.templates().detached(old));
    CHECK(table.templates().live(old));
    CHECK(table.templates().stats().invalidated == 1);
    CHECK(table.templates().size() == 2);
    // Next connection of the client uses the new template.
    CHECK(table.dest(dir.connect(key<ipv4_address>(1, 1002), t0 + 2 * sec)) == table.dest(r2));
    CHECK(dir.picks == 2);
  }
  SUBCASE("removed, quiesced-expiry sysctl: quiesced invalidates too") {
    conn_table_config cfg;
    cfg.capacity = 100;
    cfg.template_capacity = 10;
    cfg.max_dests = 8;
    cfg.expire_quiescent_template = true;
    conn_table_v4 t2(cfg);
    persistent_director d2{t2, {}};
    d2.svc.service_port = 80;
    const conn_ref x = d2.connect(key<ipv4_address>(1, 1000), t0);
    REQUIRE(t2.set_dest_quiesced(t2.dest(x), true) == errc::ok);
    CHECK(t2.dest(d2.connect(key<ipv4_address>(1, 1001), t0)) != t2.dest(x));
    CHECK(d2.picks == 2);
  }
}

TEST_CASE("persistence: evicting the last connection of a non-ASSURED template drops it") {
  // ip_vs_conn_expire: a connection removed by force (timeout 0) takes its template along when
  // it was the last one and the template is not ASSURED; an ASSURED template stays.
  auto table = make_table<conn_table_v4>(15, 10, 8);
  persistent_director dir{table, {}};
  dir.svc.service_port = 80;
  const std::int64_t t0 = 5 * sec;
  const conn_ref r = dir.connect(key<ipv4_address>(1, 1000), t0);  // SYN_RECV, not assured
  const conn_ref r2 = dir.connect(key<ipv4_address>(2, 1000), t0);
  table.on_packet(r2, tcp_flag::ack, direction::input, t0);         // ES: template assured
  const template_ref t2 = table.control(r2);
  CHECK(table.templates().size() == 2);
  table.erase(r, t0);
  CHECK(table.templates().size() == 1);
  CHECK(table.templates().stats().dropped_unassured == 1);
  table.erase(r2, t0);
  CHECK(table.templates().size() == 1);
  CHECK(table.templates().live(t2));
}

TEST_CASE("persistence: a full template table evicts unused templates, never busy ones") {
  conn_table_config cfg;
  cfg.capacity = 100;
  cfg.template_capacity = 4;  // 1 group of 15 slots (ceil(4 / 13.125)), capacity 4
  cfg.max_dests = 8;
  conn_table_v4 table(cfg);
  persistence<ipv4_address> svc;
  svc.service_port = 80;
  const std::int64_t t0 = 5 * sec;
  auto tk = [&](std::uint32_t client) {
    return svc.key_for(tcp, addr<ipv4_address>(0x0A, client), addr<ipv4_address>(0xC6, 1), 80);
  };
  std::vector<template_ref> ts;
  for (std::uint32_t i = 0; i < 4; ++i) {
    auto t = table.insert_template(tk(i), i, 360, t0 + i * sec);
    REQUIRE(t);
    ts.push_back(*t);
    // Each template controls one connection except template 2.
    if (i != 2) REQUIRE(table.insert(key<ipv4_address>(i, 1), new_conn{i, false, *t}, t0));
  }
  auto t5 = table.insert_template(tk(5), 5, 360, t0 + 10 * sec);
  REQUIRE(t5);
  // Template 2, the only one controlling nothing, made room (its slot now holds template 5).
  CHECK(table.find_template(tk(2), t0 + 10 * sec) == no_template);
  CHECK(table.templates().stats().evicted == 1);
  CHECK(table.counts(2).persist_conns == 0);
  CHECK(table.counts(5).persist_conns == 1);
  for (std::uint32_t i : {0u, 1u, 3u}) CHECK(table.find_template(tk(i), t0 + 10 * sec) == ts[i]);
  REQUIRE(table.insert(key<ipv4_address>(5, 1), new_conn{5, false, *t5}, t0 + 10 * sec));
  auto t6 = table.insert_template(tk(6), 6, 360, t0 + 11 * sec);
  CHECK_FALSE(t6);
  CHECK(t6.error() == errc::template_table_full);
  CHECK(table.templates().stats().refused_full == 1);
}
}

TEST_SUITE("conn") {
TEST_CASE("persistence: a template's life does not depend on how often expire() runs") {
  // (The answer follows the connections' deadlines, reaped or not: see the next suite too.)
  // IPVS timeline (-p 100): connection at 0, established, FIN at 150 (DR: FIN_WAIT 120 s, so it
  // ends at 270). The template's timer fires at 100, 160, 220 and 280; it controls the
  // connection at the first three (kept 60 s each) and is removed at 280.
  auto timely = persistent_table();
  auto lazy = persistent_table();
  for (auto* t : {&timely, &lazy}) {
    persistent_director dir{*t, {}};
    dir.svc.service_port = 80;
    dir.svc.timeout_s = 100;
    const conn_ref r = dir.connect(key<ipv4_address>(1, 1000), 0);
    t->on_packet(r, tcp_flag::ack, direction::input, 0);
    t->on_packet(r, tcp_flag::fin, direction::input, 150 * sec);
  }
  persistence<ipv4_address> svc;
  svc.service_port = 80;
  const auto tk = svc.key_for(tcp, addr<ipv4_address>(0x0A, 1), addr<ipv4_address>(0xC6, 100), 80);
  struct probe {
    std::int64_t at;
    bool alive;
  };
  const probe probes[] = {{99 * sec, true},  {100 * sec, true}, {161 * sec, true},
                          {269 * sec, true}, {279 * sec, true}, {280 * sec, false},
                          {281 * sec, false}};
  std::int64_t clock = 0;
  for (const probe& p : probes) {
    CAPTURE(p.at);
    while (clock <= p.at) {
      (void)timely.expire(clock, 1000);
      clock += sec / 4;
    }
    CHECK((timely.find_template(tk, p.at) != no_template) == p.alive);
    // The late caller catches up only at some probes: at 279 s it meets a template due since
    // 220 s whose connection ended at 270 s, so the 60-s re-arm IPVS made at 220 still runs.
    if (p.at != 269 * sec) (void)lazy.expire(p.at, 1000);
    CHECK((lazy.find_template(tk, p.at) != no_template) == p.alive);
  }
  (void)lazy.expire(281 * sec, 1000);
  CHECK(lazy.templates().size() == 0);
  CHECK(timely.templates().size() == 0);
  CHECK(lazy.templates().stats().kept_busy == timely.templates().stats().kept_busy);
  CHECK(timely.templates().stats().kept_busy == 3);
}
}

TEST_SUITE("conn") {
// Bug fix: a template's answer must not depend on whether expire() has reaped the connections it
// controls. Every probe below runs with no expire() call at all before it, so every controlled
// connection is still in the table (n_control != 0) although IPVS's timer removed it.
TEST_CASE("persistence: a template ends with its connections' deadlines, not their reaping") {
  auto table = persistent_table();
  persistent_director dir{table, {}};
  const auto client = addr<ipv4_address>(0x0A, 1);
  const auto vip = addr<ipv4_address>(0xC6, 100);

  SUBCASE("UDP connection ends before the template's timer: the template goes at its deadline") {
    // IPVS: -p 360 template and a UDP connection made at 0; the connection's 300-s timer fires
    // at 300 (n_control -> 0), the template's at 360 finds nothing controlled and removes it.
    dir.svc.service_port = 53;
    const auto k = key<ipv4_address>(1, 5000, 100, 53, udp);
    const conn_ref r = dir.connect(k, 0, 0);
    const std::uint32_t first = table.dest(r);
    const auto tk = dir.svc.key_for(udp, client, vip, 53);
    CHECK(table.find_template(tk, 359 * sec) != no_template);  // before its deadline
    CHECK(table.find_template(tk, 360 * sec) == no_template);
    CHECK(table.find_template(tk, 400 * sec) == no_template);
    // The client's next connection is scheduled afresh and gets a template of its own, although
    // the old one is still held (its connection not reaped).
    dir.connect(key<ipv4_address>(1, 5001, 100, 53, udp), 400 * sec, 0);
    CHECK(dir.picks == 2);
    CHECK(table.templates().size() == 2);
    CHECK(table.find_template(tk, 400 * sec) != no_template);
    // Reaping the old connection lets the old template go; the new one stays.
    (void)table.expire(400 * sec, 100000);
    CHECK(table.templates().size() == 1);
    CHECK(table.counts(first).persist_conns == 0);
    CHECK(table.counts(first).inactive_conns == 0);
  }
  SUBCASE("a connection extended past the deadline keeps it 60 s at a time, then it goes") {
    // -p 360; UDP connection at 0, another packet at 200: it ends at 200 + 300 = 500. The
    // template fires at 360, 420 and 480 while it controls the connection (+60 s each) and at
    // 540 finds nothing: removed at 540.
    dir.svc.service_port = 53;
    const conn_ref r = dir.connect(key<ipv4_address>(1, 5000, 100, 53, udp), 0, 0);
    table.on_packet(r, 0, direction::input, 200 * sec);
    const auto tk = dir.svc.key_for(udp, client, vip, 53);
    CHECK(table.find_template(tk, 499 * sec) != no_template);
    CHECK(table.find_template(tk, 539 * sec) != no_template);
    CHECK(table.find_template(tk, 540 * sec) == no_template);
    // A late expire() agrees and counts the three re-arms IPVS made.
    (void)table.expire(600 * sec, 100000);
    CHECK(table.templates().size() == 0);
    CHECK(table.templates().stats().kept_busy == 3);
  }
  SUBCASE("a shortened deadline counts (RST: ESTABLISHED 900 s becomes CLOSE 10 s)") {
    // -p 100; TCP connection at 0, established (900 s), RST from the client at 50: CLOSE, 10 s,
    // so it ends at 60, before the template's timer at 100, which then removes the template.
    dir.svc.service_port = 80;
    dir.svc.timeout_s = 100;
    const conn_ref r = dir.connect(key<ipv4_address>(1, 1000), 0);
    table.on_packet(r, tcp_flag::ack, direction::input, 0);
    table.on_packet(r, tcp_flag::rst, direction::input, 50 * sec);
    REQUIRE(table.state(r) == static_cast<std::uint8_t>(tcp_state::close));
    const auto tk = dir.svc.key_for(tcp, client, vip, 80);
    CHECK(table.find_template(tk, 99 * sec) != no_template);
    CHECK(table.find_template(tk, 100 * sec) == no_template);
  }
  SUBCASE("several connections: the latest end counts, whichever is reaped last") {
    // -p 360; UDP connections A (ends 300) and B (packet at 250: ends 550). Firings at 360,
    // 420, 480 and 540 find B; the one at 600 removes the template.
    dir.svc.service_port = 53;
    dir.connect(key<ipv4_address>(1, 5000, 100, 53, udp), 0, 0);
    const conn_ref b = dir.connect(key<ipv4_address>(1, 5001, 100, 53, udp), 0, 0);
    table.on_packet(b, 0, direction::input, 250 * sec);
    const auto tk = dir.svc.key_for(udp, client, vip, 53);
    CHECK(table.find_template(tk, 599 * sec) != no_template);
    CHECK(table.find_template(tk, 600 * sec) == no_template);
    // Reaping only A (at 320) changes nothing; reaping both at 700 removes it.
    (void)table.expire(320 * sec, 100000);
    CHECK(table.templates().size() == 1);
    CHECK(table.find_template(tk, 599 * sec) != no_template);
    CHECK(table.find_template(tk, 600 * sec) == no_template);
    (void)table.expire(700 * sec, 100000);
    CHECK(table.templates().size() == 0);
    CHECK(table.templates().stats().kept_busy == 4);
  }
}

// Bug fix: a NAT connection's replies come from its destination port (cp->dport), which for a
// persistent service is the packet's own port unless it went to the service's port
// (ip_vs_sched_persist; ipvs-notes 3.5).
TEST_CASE("persistence: NAT replies come from the connection's port (FTP data, fwmark, port 0)") {
  auto table = persistent_table();
  const auto rs = addr<ipv4_address>(0xC0, 77);
  REQUIRE(table.set_dest(6, rs, 21) == errc::ok);   // FTP real server RS:21
  REQUIRE(table.set_dest(7, rs, 8080) == errc::ok); // RS:8080 behind a fwmark / port-0 service
  const auto client = addr<ipv4_address>(0x0A, 1);
  auto connect = [&](const persistence<ipv4_address>& svc, std::uint32_t dest,
                     const conn_key_v4& k) {
    const auto tk = svc.key_for(k.protocol, k.client_addr, k.virtual_addr, k.virtual_port);
    template_ref t = table.find_template(tk, sec);
    if (t == no_template) {
      auto made = table.insert_template(tk, dest, svc.timeout_s, sec);
      REQUIRE(made);
      t = *made;
    }
    const std::uint16_t port = svc.conn_dest_port(k.virtual_port, table.dest_info(dest).port);
    auto r = table.insert(k, new_conn{dest, true, t, port}, sec);
    REQUIRE(r);
    return *r;
  };

  // -p on port 21, RS:21 -m. Control connection client:4000 -> VIP:21: to the service's port,
  // so its port is the server's: replies from RS:21.
  persistence<ipv4_address> ftp;
  ftp.service_port = 21;
  const conn_ref control = connect(ftp, 6, key<ipv4_address>(1, 4000, 100, 21));
  CHECK(table.find_reply({rs, client, 21, 4000, tcp}, sec) == control);
  // Passive data connection client:4001 -> VIP:50000: not the service's port, so it keeps
  // 50000 and the server answers from RS:50000.
  const conn_ref data = connect(ftp, 6, key<ipv4_address>(1, 4001, 100, 50000));
  CHECK(table.control(data) == table.control(control));  // same template (port-0 key)
  CHECK(table.find_reply({rs, client, 50000, 4001, tcp}, sec) == data);
  CHECK(table.find_reply({rs, client, 21, 4001, tcp}, sec) == no_conn);
  CHECK(table.dest_port(control) == 21);     // NAT rewrites VIP:21 to RS:21
  CHECK(table.dest_port(data) == 50000);     // ... and VIP:50000 to RS:50000

  // A fwmark service (port 0) with RS:8080: client:4100 -> VIP:443 keeps 443.
  persistence<ipv4_address> marked;
  marked.fwmark = 7;
  const conn_ref m = connect(marked, 7, key<ipv4_address>(1, 4100, 100, 443));
  CHECK(table.find_reply({rs, client, 443, 4100, tcp}, sec) == m);
  CHECK(table.find_reply({rs, client, 8080, 4100, tcp}, sec) == no_conn);
  // The default (dest_port 0) is the server's port, as ip_vs_schedule makes it.
  auto plain = table.insert(key<ipv4_address>(1, 4200, 100, 443), new_conn{7, true}, sec);
  REQUIRE(plain);
  CHECK(table.find_reply({rs, client, 8080, 4200, tcp}, sec) == *plain);
  CHECK(table.dest_port(m) == 443);
  CHECK(table.dest_port(*plain) == 8080);
  // A port that is neither the server's nor the virtual one is refused.
  auto bad = table.insert(key<ipv4_address>(1, 4300, 100, 443), new_conn{7, true, no_template, 9999}, sec);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == errc::bad_dest_port);

  // The reply entries leave with their connections (hashed from the same port).
  table.erase(data, sec);
  table.erase(m, sec);
  CHECK(table.find_reply({rs, client, 50000, 4001, tcp}, sec) == no_conn);
  CHECK(table.find_reply({rs, client, 443, 4100, tcp}, sec) == no_conn);
  CHECK(table.find_reply({rs, client, 21, 4000, tcp}, sec) == control);
}
}
