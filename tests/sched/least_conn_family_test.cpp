// lc, wlc, sed, nq (and fo, ovf, which share the tree): fixed cases whose expected picks are
// worked out from the kernel's scan rules, and a randomized differential run (>= 100k operations)
// against literal O(n) scans (ipvs_scan_reference.hpp) with random weights including 0,
// thresholds, overloads and connection counts.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "l4lb/sched/least_connection.hpp"
#include "l4lb/sched/never_queue.hpp"
#include "l4lb/sched/overflow.hpp"
#include "l4lb/sched/shortest_expected_delay.hpp"
#include "l4lb/sched/weighted_failover.hpp"
#include "l4lb/sched/weighted_least_connection.hpp"
#include "sched/ipvs_scan_reference.hpp"
#include "sched/list_sched_support.hpp"

using namespace l4lb::sched;
using l4lb::sched::test::make_server;

namespace {

// Handles 1, 2, 3 ... are returned; 0 means no destination.
template <class S>
std::uint32_t pick_once(const std::vector<real_server>& dests) {
  S s;
  s.rebuild(dests, {dest_change::kind::init, 0});
  const dest_id id = s.pick(dests, test::ctx());
  return id == no_dest ? 0 : dests[id].handle;
}

real_server with(real_server r, bool overloaded) {
  r.overloaded = overloaded;
  return r;
}

}  // namespace

TEST_SUITE("sched") {

TEST_CASE("lc: the smallest 256 * active + inactive, first on ties") {
  // A: 256*1 = 256; B: 300; C: 256 -> A and C tie at 256, A is first.
  std::vector<real_server> d = {make_server(1, 1, 1, 0), make_server(2, 1, 0, 300),
                                make_server(3, 1, 0, 256)};
  CHECK(pick_once<least_connection>(d) == 1);
  d[0].overloaded = true;  // A skipped: C (256) < B (300)
  CHECK(pick_once<least_connection>(d) == 3);
  d[0].overloaded = false;
  d[0].weight = 0;  // quiesced: skipped too
  CHECK(pick_once<least_connection>(d) == 3);
  // One active connection weighs 256 inactive ones: 255 inactive is less.
  CHECK(pick_once<least_connection>({make_server(1, 1, 1, 0), make_server(2, 1, 0, 255)}) == 2);
  // Weight does not matter otherwise: a heavy server with more connections loses.
  CHECK(pick_once<least_connection>({make_server(1, 100, 0, 2), make_server(2, 1, 0, 1)}) == 2);
}

TEST_CASE("wlc: the smallest overhead / weight as an exact fraction, first on ties") {
  // A 256/1 = 256, B 512/3 = 170.7, C 300/2 = 150 -> C.
  CHECK(pick_once<weighted_least_connection>({make_server(1, 1, 1, 0), make_server(2, 3, 2, 0),
                                              make_server(3, 2, 0, 300)}) == 3);
  // A 10/2 = 5 and B 20/4 = 5 tie: 10*4 > 20*2 is false, so A stays.
  CHECK(pick_once<weighted_least_connection>({make_server(1, 2, 0, 10), make_server(2, 4, 0, 20)}) ==
        1);
  // A weight-0 server is never the seed, and later can never replace (0 > x is false).
  CHECK(pick_once<weighted_least_connection>({make_server(1, 0, 0, 0), make_server(2, 1, 0, 5)}) ==
        2);
  CHECK(pick_once<weighted_least_connection>({make_server(1, 1, 0, 5), make_server(2, 0, 0, 0)}) ==
        1);
  // Overloaded skipped.
  CHECK(pick_once<weighted_least_connection>(
            {with(make_server(1, 1, 0, 0), true), make_server(2, 1, 0, 5)}) == 2);
}

TEST_CASE("wlc: cross products beyond 64 bits are compared exactly") {
  // A: 256 * (2^32 - 1) / (2^32 - 1) = 256; B: 256 * (2^32 - 2) / (2^32 - 2) = 256 (tie, A kept);
  // C: (256 * (2^32 - 1) - 1) / (2^32 - 1), just under 256 -> C. The products are ~2^72.
  const std::uint32_t m = 0xffffffffu;
  std::vector<real_server> d = {make_server(1, m, m, 0), make_server(2, m - 1, m - 1, 0)};
  CHECK(pick_once<weighted_least_connection>(d) == 1);
  d.push_back(make_server(3, m, m - 1, 255));
  CHECK(pick_once<weighted_least_connection>(d) == 3);
}

TEST_CASE("sed: the smallest (active + 1) / weight; inactive connections ignored") {
  // A (0+1)/1 = 1, B (2+1)/3 = 1: tie -> A.
  CHECK(pick_once<shortest_expected_delay>({make_server(1, 1, 0, 0), make_server(2, 3, 2, 0)}) ==
        1);
  // B (2+1)/4 = 0.75 < 1 -> B.
  CHECK(pick_once<shortest_expected_delay>({make_server(1, 1, 0, 0), make_server(2, 4, 2, 0)}) ==
        2);
  // A has 1000 inactive but 0 active: 1/1 < B's 2/1.
  CHECK(pick_once<shortest_expected_delay>({make_server(1, 1, 0, 1000), make_server(2, 1, 1, 0)}) ==
        1);
}

TEST_CASE("nq: the first idle server, else sed's rule") {
  // B is the first with no active connection; C (also idle, heavier) comes later.
  CHECK(pick_once<never_queue>({make_server(1, 1, 2, 0), make_server(2, 1, 0, 0),
                                make_server(3, 5, 0, 0)}) == 2);
  // Nobody idle: A 2/1 = 2, B 3/3 = 1, C 2/2 = 1 -> B (first of the minimum).
  CHECK(pick_once<never_queue>({make_server(1, 1, 1, 0), make_server(2, 3, 2, 0),
                                make_server(3, 2, 1, 0)}) == 2);
  // An overloaded or quiesced idle server does not count.
  CHECK(pick_once<never_queue>({with(make_server(1, 1, 0, 0), true), make_server(2, 0, 0, 0),
                                make_server(3, 2, 4, 0), make_server(4, 1, 3, 0)}) == 3);
}

TEST_CASE("lc family: empty, all quiesced, all overloaded -> no destination") {
  const std::vector<real_server> empty;
  const std::vector<real_server> quiesced = {make_server(1, 0), make_server(2, 0)};
  const std::vector<real_server> overloaded = {with(make_server(1, 1), true),
                                               with(make_server(2, 3), true)};
  for (const auto* d : {&empty, &quiesced, &overloaded}) {
    CHECK(pick_once<least_connection>(*d) == 0);
    CHECK(pick_once<weighted_least_connection>(*d) == 0);
    CHECK(pick_once<shortest_expected_delay>(*d) == 0);
    CHECK(pick_once<never_queue>(*d) == 0);
    CHECK(pick_once<weighted_failover>(*d) == 0);
    CHECK(pick_once<overflow>(*d) == 0);
  }
}

namespace {

// One real-server list driving all six tree policies the way a service would.
struct fleet {
  std::vector<real_server> dests;
  least_connection lc;
  weighted_least_connection wlc;
  shortest_expected_delay sed;
  never_queue nq;
  weighted_failover fo;
  overflow ovf;

  template <class F>
  void each(F f) {
    f(lc);
    f(wlc);
    f(sed);
    f(nq);
    f(fo);
    f(ovf);
  }
  void rebuild(dest_change c) {
    each([&](auto& s) { s.rebuild(dests, c); });
  }
  void changed(dest_id id) {
    each([&](auto& s) { s.counts_changed(dests, id); });
  }
};

// For the "always a minimum" property: a/b <= c/d exactly.
bool ratio_le(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d) {
  return reference::mul(a, d) <= reference::mul(c, b);
}

void check_against_scans(const fleet& f) {
  const std::span<const real_server> v = f.dests;
  const dest_id lc = f.lc.pick(v, test::ctx());
  const dest_id wlc = f.wlc.pick(v, test::ctx());
  const dest_id sed = f.sed.pick(v, test::ctx());
  const dest_id nq = f.nq.pick(v, test::ctx());
  REQUIRE(lc == reference::lc(v));
  REQUIRE(wlc == reference::wlc(v));
  REQUIRE(sed == reference::sed(v));
  REQUIRE(nq == reference::nq(v));
  REQUIRE(f.fo.pick(v, test::ctx()) == reference::fo(v));
  REQUIRE(f.ovf.pick(v, test::ctx()) == reference::ovf(v));
  // Independently of the scans: the pick is a minimum of the formula over the eligible servers,
  // and never a quiesced or overloaded one.
  bool never_unusable = true;
  for (const dest_id p : {lc, wlc, sed, nq}) {
    if (p != no_dest && !v[p].accepts_new_connections()) never_unusable = false;
  }
  REQUIRE(never_unusable);
  bool minimal = true;
  for (const real_server& d : v) {
    if (!d.accepts_new_connections()) continue;
    if (lc == no_dest || wlc == no_dest || sed == no_dest) {
      minimal = false;  // somebody was eligible
      break;
    }
    minimal = minimal && v[lc].overhead() <= d.overhead() &&
              ratio_le(v[wlc].overhead(), v[wlc].weight, d.overhead(), d.weight) &&
              ratio_le(v[sed].active_conns + 1ull, v[sed].weight, d.active_conns + 1ull, d.weight);
  }
  REQUIRE(minimal);
}

// wide: weights anywhere in 1..2^32-1 and counts up to 2^31, so ranks saturate and the exact
// fallback scan runs (the kernel's own int arithmetic would overflow there; ours must not).
void run_differential(std::uint32_t seed, int operations, std::size_t max_servers,
                      std::size_t initial_servers = 0, bool wide = false) {
  test::rng32 rng(seed);
  auto weight = [&] {
    if (rng() % 5 == 0) return std::uint32_t{0};
    return wide && rng() % 2 == 0 ? 1 + rng() % 0xfffffffeu : 1 + rng() % 20;
  };
  auto count = [&](std::uint32_t small) {
    return wide && rng() % 2 == 0 ? rng() % 0x80000000u : rng() % small;
  };
  fleet f;
  std::uint32_t next_handle = 1;
  for (std::size_t i = 0; i < initial_servers; ++i) {
    f.dests.push_back(make_server(next_handle++, weight(), count(8), count(300)));
  }
  f.rebuild({dest_change::kind::init, 0});
  for (int op = 0; op < operations; ++op) {
    const std::uint32_t what = rng() % 1000;
    if (f.dests.empty() || (what < 15 && f.dests.size() < max_servers)) {
      auto r = make_server(next_handle++, weight(), count(8), count(300));
      if (rng() % 3 == 0) r.upper_threshold = 1 + rng() % 40;
      r.after_bind();
      f.dests.insert(f.dests.begin(), r);
      f.rebuild({dest_change::kind::added, 0});
    } else if (what < 25) {
      const auto id = static_cast<dest_id>(rng() % f.dests.size());
      f.dests.erase(f.dests.begin() + id);
      f.rebuild({dest_change::kind::removed, id});
    } else if (what < 60) {  // ipvsadm -e: weight (maybe 0) and thresholds
      const auto id = static_cast<dest_id>(rng() % f.dests.size());
      real_server& d = f.dests[id];
      const std::uint32_t old_u = d.upper_threshold;
      d.weight = weight();
      d.upper_threshold = rng() % 2 == 0 ? 0 : 1 + rng() % 40;
      d.lower_threshold = d.upper_threshold != 0 && rng() % 2 == 0 ? rng() % d.upper_threshold : 0;
      if (d.upper_threshold == 0 || d.upper_threshold > old_u) d.overloaded = false;  // ipvs-notes 2
      f.rebuild({dest_change::kind::edited, id});
    } else if (what < 500) {  // a new connection: schedule with lc, bind, SYN makes it active
      dest_id id = f.lc.pick(f.dests, test::ctx());
      if (id == no_dest || rng() % 4 == 0) id = static_cast<dest_id>(rng() % f.dests.size());
      real_server& d = f.dests[id];
      if (rng() % 3 == 0) {
        ++d.inactive_conns;  // UDP: stays inactive
      } else {
        ++d.active_conns;
      }
      d.after_bind();
      f.changed(id);
    } else if (what < 750) {  // active -> inactive (FIN)
      const auto id = static_cast<dest_id>(rng() % f.dests.size());
      real_server& d = f.dests[id];
      if (d.active_conns == 0) continue;
      --d.active_conns;
      ++d.inactive_conns;
      f.changed(id);
    } else if (what < 990) {  // a connection expires
      const auto id = static_cast<dest_id>(rng() % f.dests.size());
      real_server& d = f.dests[id];
      if (d.inactive_conns > 0 && (d.active_conns == 0 || rng() % 2 == 0)) {
        --d.inactive_conns;
      } else if (d.active_conns > 0) {
        --d.active_conns;
      } else {
        continue;
      }
      d.after_unbind();
      f.changed(id);
    } else {  // a flag flipped behind the thresholds' back (e.g. a health checker)
      const auto id = static_cast<dest_id>(rng() % f.dests.size());
      f.dests[id].overloaded = !f.dests[id].overloaded;
      f.changed(id);
    }
    check_against_scans(f);
  }
}

}  // namespace

TEST_CASE("lc family: same pick as the kernel's scans over 100k random operations") {
  run_differential(1, 60000, 24);
  run_differential(2, 40000, 64);
}

TEST_CASE("lc family: same pick as the kernel's scans with weights and counts beyond 16 bits") {
  run_differential(4, 30000, 24, 0, true);
  run_differential(5, 10000, 200, 150, true);
}

TEST_CASE("lc family: same pick as the kernel's scans with 1000 servers (deep tree)") {
  run_differential(3, 6000, 1100, 1000);
}

}  // TEST_SUITE
