// The director against a simple model while services and servers change and packets flow:
// flows stick to their server while it stays; a removed server's flows are dropped; new flows go
// to a server that is in the service with a non-zero weight; ActiveConn / InActConn equal the
// model's count of live connections per state; every frame gets exactly one verdict.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>

#include "director/director_support.hpp"

using namespace director_test;

namespace {
// IPVS's INPUT_ONLY row (DR: the director sees the client's packets only), ipvs-notes 3.3.
enum class st { sr, es, fw, tw, cl };
struct model_conn {
  std::uint32_t handle = 0;
  st state = st::sr;
  std::int64_t last = 0;  // whole seconds
  [[nodiscard]] bool active() const { return state == st::sr || state == st::es; }
  [[nodiscard]] std::uint32_t timeout() const {
    switch (state) {
      case st::sr: return 60;
      case st::es: return 900;
      case st::fw: return 120;
      case st::tw: return 120;
      case st::cl: return 10;
    }
    return 0;
  }
  void on(std::uint8_t flags) {
    if (flags & tf::rst) {
      if (state != st::sr) state = st::cl;
    } else if (flags & tf::fin) {
      if (state == st::sr) state = st::tw;
      else if (state == st::es) state = st::fw;
    } else if (state == st::sr) {
      state = st::es;
    }
  }
};
}  // namespace

TEST_SUITE("director") {
TEST_CASE("model: random traffic and configuration changes") {
  std::mt19937 rng(12345);
  lab l;
  const auto svc = service_key::tcp(ep("198.18.0.100:80"));
  l.must(add_service{service(svc, "wlc")});
  const std::vector<std::string> pool = {"198.18.0.11:80", "198.18.0.12:80", "198.18.0.13:80"};
  std::map<std::string, std::uint32_t> weight;  // servers in the service now
  std::map<std::uint16_t, model_conn> conns;    // by client port (one client address)
  std::set<std::uint32_t> removed;              // handles removed from the service
  std::int64_t now = 10;
  std::uint64_t frames = 0;
  const auto handle_of_ep = [&](const std::string& e) {
    const auto cfg = l.control.config();
    const auto* s = cfg.find(svc);
    const auto* d = s ? s->find_dest(ep(e)) : nullptr;
    return d ? d->handle : 0xFFFFFFFFu;
  };
  for (int step = 0; step < 20000; ++step) {
    const int what = static_cast<int>(rng() % 100);
    if (what < 4) {  // add a server
      const auto& e = pool[rng() % pool.size()];
      if (!weight.count(e)) {
        const auto w = static_cast<std::uint32_t>(rng() % 3);
        l.must(add_dest{svc, server(e, forward_method::route, w)});
        weight[e] = w;
      }
      continue;
    }
    if (what < 6 && !weight.empty()) {  // remove one
      auto it = std::next(weight.begin(), static_cast<long>(rng() % weight.size()));
      removed.insert(handle_of_ep(it->first));
      l.must(delete_dest{svc, ep(it->first)});
      weight.erase(it);
      continue;
    }
    if (what < 9 && !weight.empty()) {  // change a weight
      auto it = std::next(weight.begin(), static_cast<long>(rng() % weight.size()));
      it->second = static_cast<std::uint32_t>(rng() % 3);
      l.must(edit_dest{svc, server(it->first, forward_method::route, it->second)});
      continue;
    }
    if (what < 11) {  // time passes
      now += static_cast<std::int64_t>(rng() % 200);
      continue;
    }
    // A packet: a new flow's SYN, or a segment of an existing one.
    const auto port = static_cast<std::uint16_t>(1000 + rng() % 300);
    auto it = conns.find(port);
    const bool live = it != conns.end() && now < it->second.last + it->second.timeout();
    std::uint8_t flags = tf::syn;
    if (live) {
      const int k = static_cast<int>(rng() % 10);
      flags = k < 6 ? tf::ack : k < 8 ? tf::fin | tf::ack : tf::rst;
    }
    ++frames;
    const verdict v = l.send(tcp4("198.18.1.10", port, "198.18.0.100", 80, flags), now * sec);
    if (live && removed.count(it->second.handle)) {
      CHECK(v.reason() == "dest_removed");
      continue;
    }
    if (live && !(flags & tf::syn)) {
      REQUIRE(v.kind == verdict_kind::forward);
      CHECK(v.dest == it->second.handle);
      it->second.on(flags);
      it->second.last = now;
      continue;
    }
    // A SYN of a new flow (or of a dead one's port): a server in the service with weight > 0.
    std::set<std::uint32_t> eligible;
    for (const auto& [e, w] : weight)
      if (w > 0) eligible.insert(handle_of_ep(e));
    if (eligible.empty()) {
      CHECK(v.kind != verdict_kind::forward);
      continue;
    }
    INFO("step ", step, " port ", port, " reason ", std::string(v.reason()), " live ", live,
         " known ", it != conns.end());
    REQUIRE(v.kind == verdict_kind::forward);
    CHECK(eligible.count(v.dest) == 1);
    conns[port] = {v.dest, st::sr, now};
    removed.erase(v.dest);
  }
  // Counts: after expiry, ActiveConn / InActConn are the model's live connections.
  l.d->expire_all(now * sec);
  std::map<std::uint32_t, std::pair<std::uint32_t, std::uint32_t>> expect;
  for (const auto& [port, c] : conns)
    if (now < c.last + c.timeout()) (c.active() ? expect[c.handle].first : expect[c.handle].second)++;
  for (const auto& [h, ai] : expect) {
    const auto st = l.control.dest_stats(h);
    CHECK(st.active_conns == ai.first);
    CHECK(st.inactive_conns == ai.second);
  }
  const auto& vc = l.d->verdicts();
  CHECK(vc.forwarded + vc.replies + vc.passed + vc.dropped == frames + 0);
}
}
