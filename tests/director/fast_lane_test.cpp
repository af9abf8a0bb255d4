// The established-flow fast lane and the NAT reply lane against the general path: two
// directors on one configuration, one with director_config::established_fast_lane off, take the
// same random traffic over IPv4 and IPv6 (TCP flags of every kind, UDP with and without
// checksums, TTL / hop limit 1, IP options and IPv6 extension headers, VLAN tags, frames over a
// server's MTU, martian sources) to DR, NAT and TUN servers, and the NAT servers' replies, while
// weights change and servers leave and return. Every verdict, every output frame byte, every
// counter and every table must be the same; and the lane must have taken most established
// packets of both families. In bursts, the general director takes the frames one at a time, so
// that the burst lookup's stale refs are checked too.
#include <doctest/doctest.h>

#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "director/director_support.hpp"

using namespace director_test;

namespace {

// Two directors, each on its own control with the same configuration, so that each one's
// statistics (InPkts, OutBytes, ...) can be read and compared.
struct twin {
  director_control control, control_general;
  std::unique_ptr<class director> fast, general;
  explicit twin(std::uint32_t capacity_v4 = 0) {
    director_identity id;
    id.mac = director_mac;
    id.addresses = {ip("198.18.0.1"), ip("fd00:198:18::1")};
    id.gateway_v4 = ip("198.18.0.254");
    id.gateway_v6 = ip("fd00:198:18::fe");
    for (auto* c : {&control, &control_general}) {
      c->set_identity(id);
      for (int k = 11; k <= 16; ++k) {
        const auto a = ip("198.18.0." + std::to_string(k));
        c->set_neighbour(a, mac_of(a));
        const auto a6 = ip("fd00:198:18::" + std::to_string(k));
        c->set_neighbour(a6, mac_of(a6));
      }
      c->set_neighbour(ip("198.18.0.254"), client_router_mac);
      c->set_neighbour(ip("fd00:198:18::fe"), client_router_mac);
    }
    director_config c = lab::small();
    c.seed = 99;
    if (capacity_v4 != 0) c.conn_capacity_v4 = c.conn_capacity_v6 = capacity_v4;
    fast = std::make_unique<class director>(control, c);
    c.established_fast_lane = false;
    general = std::make_unique<class director>(control_general, c);
  }
  void must(const command& c) {
    REQUIRE(control.apply(c) == config_error::ok);
    REQUIRE(control_general.apply(c) == config_error::ok);
  }
  // Every service's and server's counters, the same on both (the rates follow from them).
  void same_stats(std::initializer_list<service_key> services) const {
    const auto cfg = control.config();
    for (const auto& svc : services) {
      const auto* s = cfg.find(svc);
      REQUIRE(s);
      CHECK(control.service_stats(s->id).stats == control_general.service_stats(s->id).stats);
      const auto la = fast->dests_of(s->id);
      const auto lb = general->dests_of(s->id);
      REQUIRE(la.size() == lb.size());
      for (std::size_t j = 0; j < la.size(); ++j) {
        CHECK(la[j].handle == lb[j].handle);
        CHECK(la[j].active_conns == lb[j].active_conns);
        CHECK(la[j].inactive_conns == lb[j].inactive_conns);
        const auto da = control.dest_stats(la[j].handle), db = control_general.dest_stats(lb[j].handle);
        CHECK(da.stats == db.stats);
        CHECK(da.persist_conns == db.persist_conns);
      }
    }
  }
};

bytes make_frame(std::mt19937& rng, std::uint16_t port, bool udp, std::uint8_t flags, bool ipv6 = false,
                 const wire::endpoint* reply_from = nullptr) {
  packet_builder b;
  b.eth(director_mac, client_router_mac);
  if (rng() % 20 == 0) b.vlan(100);
  const std::string server = reply_from ? reply_from->address.to_string() : std::string();
  if (ipv6) {
    l4lb::test::ipv6_options o;
    o.hop_limit = rng() % 15 == 0 ? 1 : 64;
    const char* client = rng() % 50 == 0 ? (rng() % 2 ? "::1" : "ff02::9") : "fd00:198:18:1::10";
    if (reply_from)
      b.ipv6(server, rng() % 50 == 0 ? "fd00:198:18::100" : "fd00:198:18:1::10", o);
    else
      b.ipv6(client, "fd00:198:18::100", o);
    if (rng() % 20 == 0) b.hop_by_hop();
  } else {
    l4lb::test::ipv4_options o;
    o.ttl = rng() % 15 == 0 ? 1 : 64;
    o.dont_frag = rng() % 2 == 0;
    if (rng() % 20 == 0) o.options = {std::byte{7}, std::byte{7}, std::byte{4}, std::byte{0}};  // record route
    const char* client = rng() % 50 == 0 ? "127.0.0.9" : "198.18.1.10";
    if (reply_from)
      b.ipv4(server, rng() % 50 == 0 ? "198.18.0.100" : "198.18.1.10", o);
    else
      b.ipv4(client, "198.18.0.100", o);
  }
  const std::uint16_t sport = reply_from ? reply_from->port : port;
  const std::uint16_t dport = reply_from ? port : udp ? 53 : 80;
  if (udp) {
    l4lb::test::udp_options u;
    u.zero_checksum = rng() % 5 == 0;
    b.udp(sport, dport, u);
  } else {
    b.tcp(sport, dport, flags);
  }
  b.payload(rng() % 10 == 0 ? 1400 : rng() % 64);
  return b.build();
}

void same(const verdict& a, const verdict& b, std::span<const std::byte> fa, std::span<const std::byte> fb) {
  REQUIRE(a.kind == b.kind);
  CHECK(a.reason() == b.reason());
  if (a.kind != verdict_kind::forward && a.kind != verdict_kind::reply) return;
  CHECK(a.dest == b.dest);
  CHECK(a.method == b.method);
  CHECK(a.next_hop == b.next_hop);
  CHECK(a.to_client == b.to_client);
  CHECK(a.frames.size() == b.frames.size());
  REQUIRE(fa.size() == fb.size());
  // Headers the director creates (a tunnel's outer IPv4 header, an ICMP answer) take their IPv4
  // ID from the process-wide generator, which the two directors draw from in turn: those two
  // bytes and the header checksum covering them differ; everything else may not.
  std::vector<std::byte> xa(fa.begin(), fa.end()), xb(fb.begin(), fb.end());
  if (a.kind == verdict_kind::reply || a.method == forward_method::tunnel) {
    std::size_t l3 = 14;  // after any VLAN tags
    while (l3 + 20 <= xa.size() && (xa[l3 - 2] == std::byte{0x81} || xa[l3 - 2] == std::byte{0x88})) l3 += 4;
    for (std::size_t at : {l3 + 4, l3 + 5, l3 + 10, l3 + 11})
      if (at < xa.size()) xa[at] = xb[at] = std::byte{0};
  }
  std::size_t at = 0;
  while (at < xa.size() && xa[at] == xb[at]) ++at;
  INFO("method ", static_cast<int>(a.method), " first difference at byte ", at, " of ", xa.size());
  CHECK(xa == xb);
}

}  // namespace

TEST_SUITE("director") {
TEST_CASE("fast lane: the same outcome as the general path, packet for packet") {
  std::mt19937 rng(2026);
  twin t;
  const auto tcp_svc = service_key::tcp(ep("198.18.0.100:80"));
  const auto udp_svc = service_key::udp(ep("198.18.0.100:53"));
  const auto tcp6_svc = service_key::tcp(ep("[fd00:198:18::100]:80"));
  const auto udp6_svc = service_key::udp(ep("[fd00:198:18::100]:53"));
  t.must(add_service{service(tcp_svc, "wlc")});
  t.must(add_service{service(udp_svc, "rr")});
  t.must(add_service{service(tcp6_svc, "wlc")});
  t.must(add_service{service(udp6_svc, "rr")});
  struct srv {
    const char* tcp_ep;
    const char* udp_ep;
    forward_method m;
    std::uint32_t mtu;
  };
  const std::vector<srv> servers = {{"198.18.0.11:80", "198.18.0.11:53", forward_method::route, 0},
                                    {"198.18.0.12:8080", "198.18.0.12:5353", forward_method::masq, 0},
                                    {"198.18.0.13:80", "198.18.0.13:53", forward_method::tunnel, 0},
                                    {"198.18.0.14:80", "198.18.0.14:53", forward_method::route, 1000},
                                    {"198.18.0.15:9090", "198.18.0.15:53", forward_method::masq, 1000}};
  std::vector<bool> in(servers.size(), false);
  // The IPv6 twin of "198.18.0.N:P" is "[fd00:198:18::N]:P"; its MTU is IPv6's (1300, not 1000).
  const auto endpoint_of = [](const char* e, bool v6) {
    const std::string s = e;
    if (!v6) return s;
    const auto colon = s.find(':');
    return "[fd00:198:18::" + s.substr(s.rfind('.', colon) + 1, colon - s.rfind('.', colon) - 1) + "]" +
           s.substr(colon);
  };
  const auto spec = [&](std::size_t i, bool udp, std::uint32_t w, bool v6 = false) {
    auto r = server(endpoint_of(udp ? servers[i].udp_ep : servers[i].tcp_ep, v6), servers[i].m, w);
    r.mtu = servers[i].mtu != 0 && v6 ? 1300 : servers[i].mtu;
    return r;
  };
  // Every server in the four services; a server leaves and returns in all of them at once.
  const auto each_service = [&](std::size_t i, auto&& f) {
    f(tcp_svc, false, false);
    f(udp_svc, true, false);
    f(tcp6_svc, false, true);
    f(udp6_svc, true, true);
    (void)i;
  };
  for (std::size_t i = 0; i < servers.size(); ++i) {
    each_service(i, [&](service_key svc, bool udp, bool v6) { t.must(add_dest{svc, spec(i, udp, 1, v6)}); });
    in[i] = true;
  }
  std::int64_t now = 10 * sec;
  std::uint64_t established = 0, established_v6 = 0, lane = 0, lane_v6 = 0, replies = 0, lane_replies = 0;
  for (int step = 0; step < 30000; ++step) {
    const int what = static_cast<int>(rng() % 1000);
    const std::size_t i = rng() % servers.size();
    if (what < 5) {  // a server leaves or returns (all services)
      each_service(i, [&](service_key svc, bool udp, bool v6) {
        if (in[i])
          t.must(delete_dest{svc, spec(i, udp, 1, v6).endpoint});
        else
          t.must(add_dest{svc, spec(i, udp, 1, v6)});
      });
      in[i] = !in[i];
      continue;
    }
    if (what < 12 && in[i]) {  // a weight changes (0 quiesces)
      const auto w = static_cast<std::uint32_t>(rng() % 3);
      t.must(edit_dest{tcp_svc, spec(i, false, w)});
      t.must(edit_dest{tcp6_svc, spec(i, false, w, true)});
      continue;
    }
    now += static_cast<std::int64_t>(rng() % 50) * 1'000'000;  // up to 50 ms between frames
    const bool udp = rng() % 4 == 0;
    const auto port = static_cast<std::uint16_t>(2000 + rng() % 400);
    const int k = static_cast<int>(rng() % 20);
    const std::uint8_t flags = k < 3 ? tf::syn : k < 15 ? tf::ack : k < 17 ? tf::fin | tf::ack : k < 18 ? tf::rst : tf::syn | tf::ack;
    const bool v6 = rng() % 3 == 0;
    // One frame in five from a NAT server (12 or 15) to the client: its replies.
    std::optional<wire::endpoint> from;
    if (rng() % 5 == 0) {
      const std::size_t si = rng() % 2 ? 1 : 4;
      from = ep(endpoint_of(udp ? servers[si].udp_ep : servers[si].tcp_ep, v6));
    }
    const bytes f = make_frame(rng, port, udp, flags, v6, from ? &*from : nullptr);
    frame a(f), b(f);
    const std::uint64_t lane_before = t.fast->fast_lane_packets();
    const verdict va = t.fast->process(a.buf, now);
    const bool took_lane = t.fast->fast_lane_packets() != lane_before;
    const verdict vb = t.general->process(b.buf, now);
    INFO("step ", step, " fast ", std::string(va.reason()), " general ", std::string(vb.reason()));
    same(va, vb, va.frame, vb.frame);
    const bool reply = va.kind == verdict_kind::forward && va.to_client;
    const bool counted = va.kind == verdict_kind::forward && !reply && !(flags & tf::syn);
    established += counted;
    established_v6 += counted && v6;
    lane += counted && took_lane;
    lane_v6 += counted && v6 && took_lane;
    replies += reply;
    lane_replies += reply && took_lane;
  }
  // Counters and tables: identical.
  const auto& ca = t.fast->verdicts();
  const auto& cb = t.general->verdicts();
  CHECK(ca.forwarded == cb.forwarded);
  CHECK(ca.dropped == cb.dropped);
  CHECK(ca.passed == cb.passed);
  CHECK(ca.replies == cb.replies);
  CHECK(t.fast->table_v4().size() == t.general->table_v4().size());
  CHECK(t.fast->table_v6().size() == t.general->table_v6().size());
  t.same_stats({tcp_svc, udp_svc, tcp6_svc, udp6_svc});
  // "Established" forwards here include each UDP flow's first datagram, and this traffic's
  // variations (TTL 1, options, VLAN tags, MTU, zero UDP checksums) send many of the others
  // the general way: somewhat under half take the lane (47 % and 40 % when written).
  MESSAGE(lane << " of " << established << " established forwards took the fast lane");
  CHECK(t.general->fast_lane_packets() == 0);
  CHECK(lane > established / 3);
  MESSAGE(lane_v6 << " of " << established_v6 << " established IPv6 forwards took the fast lane");
  CHECK(lane_v6 > established_v6 / 3);
  MESSAGE(lane_replies << " of " << replies << " NAT replies forwarded to clients took the reply lane");
  CHECK(replies > 300);
  CHECK(lane_replies > replies / 2);
}

TEST_CASE("fast lane: the same outcome in bursts, where earlier frames insert and remove connections") {
  // Few flows, so that a burst often holds one flow's SYN, its reuse or its ACK more than once,
  // and a table of 64 (5 groups) that they overfill, so that slots are freed and taken again
  // within a burst: a frame's lookup result (found before the burst's decisions) may be stale
  // by its turn.
  std::mt19937 rng(4242);
  twin t(64);
  const auto tcp_svc = service_key::tcp(ep("198.18.0.100:80"));
  const auto udp_svc = service_key::udp(ep("198.18.0.100:53"));
  const auto tcp6_svc = service_key::tcp(ep("[fd00:198:18::100]:80"));
  const auto udp6_svc = service_key::udp(ep("[fd00:198:18::100]:53"));
  for (const auto& svc : {tcp_svc, udp_svc, tcp6_svc, udp6_svc}) t.must(add_service{service(svc, "rr")});
  const std::vector<std::pair<const char*, forward_method>> servers = {
      {"198.18.0.11", forward_method::route}, {"198.18.0.12", forward_method::masq},
      {"198.18.0.13", forward_method::tunnel}};
  const std::vector<std::pair<const char*, forward_method>> servers6 = {
      {"[fd00:198:18::11]", forward_method::route}, {"[fd00:198:18::12]", forward_method::masq},
      {"[fd00:198:18::13]", forward_method::tunnel}};
  for (const auto& [a, m] : servers) {
    t.must(add_dest{tcp_svc, server(std::string(a) + ":80", m)});
    t.must(add_dest{udp_svc, server(std::string(a) + ":53", m)});
  }
  for (const auto& [a, m] : servers6) {
    t.must(add_dest{tcp6_svc, server(std::string(a) + ":80", m)});
    t.must(add_dest{udp6_svc, server(std::string(a) + ":53", m)});
  }
  bool third_in = true;
  std::int64_t now = 10 * sec;
  std::uint64_t frames_sent = 0;
  for (int round = 0; round < 4000; ++round) {
    if (round % 97 == 96) {  // the tunnel server leaves or returns
      for (const auto& [svc, e] : {std::pair{tcp_svc, "198.18.0.13:80"}, {udp_svc, "198.18.0.13:53"},
                                   {tcp6_svc, "[fd00:198:18::13]:80"}, {udp6_svc, "[fd00:198:18::13]:53"}}) {
        if (third_in)
          t.must(delete_dest{svc, ep(e)});
        else
          t.must(add_dest{svc, server(e, forward_method::tunnel)});
      }
      third_in = !third_in;
    }
    // Mostly short gaps; now and then long enough for closing states to run out.
    now += rng() % 10 == 0 ? static_cast<std::int64_t>(rng() % 130) * sec
                           : static_cast<std::int64_t>(rng() % 200) * 1'000'000;
    const std::size_t n = 1 + rng() % 32;
    std::vector<std::unique_ptr<frame>> fa, fb;
    std::vector<forward::frame_buffer> ba, bb;
    for (std::size_t j = 0; j < n; ++j) {
      const bool udp = rng() % 5 == 0;
      const auto port = static_cast<std::uint16_t>(3000 + rng() % 48);
      const int k = static_cast<int>(rng() % 20);
      const std::uint8_t flags = k < 4 ? tf::syn : k < 15 ? tf::ack : k < 17 ? tf::fin | tf::ack : k < 18 ? tf::rst : tf::syn | tf::ack;
      const bool v6 = rng() % 3 == 0;
      // One in four from the NAT server (198.18.0.12, [fd00:198:18::12]) to the client.
      const auto from = ep(std::string(v6 ? "[fd00:198:18::12]" : "198.18.0.12") + (udp ? ":53" : ":80"));
      const bytes f = make_frame(rng, port, udp, flags, v6, rng() % 4 == 0 ? &from : nullptr);
      fa.push_back(std::make_unique<frame>(f));
      fb.push_back(std::make_unique<frame>(f));
      ba.push_back(fa.back()->buf);
      bb.push_back(fb.back()->buf);
    }
    std::vector<verdict> va(n), vb(n);
    t.fast->process_burst(ba, va, now);
    for (std::size_t j = 0; j < n; ++j) vb[j] = t.general->process(bb[j], now);
    for (std::size_t j = 0; j < n; ++j) {
      INFO("round ", round, " frame ", j, " of ", n, " fast ", std::string(va[j].reason()), " general ",
           std::string(vb[j].reason()));
      same(va[j], vb[j], va[j].frame, vb[j].frame);
    }
    frames_sent += n;
  }
  const auto& ca = t.fast->verdicts();
  const auto& cb = t.general->verdicts();
  CHECK(ca.forwarded == cb.forwarded);
  CHECK(ca.dropped == cb.dropped);
  CHECK(ca.passed == cb.passed);
  CHECK(t.fast->table_v4().size() == t.general->table_v4().size());
  CHECK(t.fast->table_v4().stats().inserted == t.general->table_v4().stats().inserted);
  CHECK(t.fast->table_v6().size() == t.general->table_v6().size());
  CHECK(t.fast->table_v6().stats().inserted == t.general->table_v6().stats().inserted);
  CHECK(t.fast->table_v6().stats().inserted > 1000);
  t.same_stats({tcp_svc, udp_svc, tcp6_svc, udp6_svc});
  MESSAGE(t.fast->fast_lane_packets() << " of " << frames_sent << " frames took the fast lane");
  CHECK(t.fast->fast_lane_packets() > frames_sent / 4);
}
}
