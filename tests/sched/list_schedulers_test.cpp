// rr, wrr, swrr, fo, ovf and twos: sequences derived by hand from the kernel's rules (the
// reasoning sits next to each expectation), properties over random weight sets, and differential
// runs against literal models of the kernel loops (ipvs_scan_reference.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "l4lb/sched/overflow.hpp"
#include "l4lb/sched/round_robin.hpp"
#include "l4lb/sched/smooth_weighted_round_robin.hpp"
#include "l4lb/sched/two_choices.hpp"
#include "l4lb/sched/weighted_failover.hpp"
#include "l4lb/sched/weighted_round_robin.hpp"
#include "sched/ipvs_scan_reference.hpp"
#include "sched/list_sched_support.hpp"

using namespace l4lb::sched;
using l4lb::sched::test::make_server;
using l4lb::sched::test::service;

namespace {

// Handles 1, 2, 3 print as A, B, C.
template <class S>
service<S> listed(std::vector<std::pair<std::uint32_t, std::uint32_t>> handle_weight,
                  S s = S{}) {
  service<S> svc(std::move(s));
  for (auto [h, w] : handle_weight) svc.dests.push_back(make_server(h, w));
  svc.init();  // as after ipvsadm -E -s <sched> with the servers already listed
  return svc;
}

std::string repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

}  // namespace

TEST_SUITE("sched") {

// ---------------------------------------------------------------------------------------- rr

TEST_CASE("rr: cycles in list order starting at the head") {
  // Cursor starts on the head; each pick takes the next server with weight > 0.
  auto svc = listed<round_robin>({{1, 1}, {2, 1}, {3, 1}});
  CHECK(svc.picks(7) == "ABCABCA");
}

TEST_CASE("rr: a quiesced server is passed over") {
  // B has weight 0: "weight > 0" fails, so the walk goes A -> C -> A ...
  auto svc = listed<round_robin>({{1, 1}, {2, 0}, {3, 1}});
  CHECK(svc.picks(5) == "ACACA");
}

TEST_CASE("rr: ipvsadm's -A then -a A, B, C starts with the last server added") {
  // Each -a inserts at the head, so the list is C, B, A and the cursor is still the head.
  service<round_robin> svc;
  svc.init();
  svc.add(make_server(1, 1));
  svc.add(make_server(2, 1));
  svc.add(make_server(3, 1));
  CHECK(svc.picks(6) == "CBACBA");
}

TEST_CASE("rr: a lone usable server is picked again") {
  // The cursor's own server is the last one examined on the wrap.
  auto svc = listed<round_robin>({{1, 1}, {2, 0}});
  CHECK(svc.picks(3) == "AAA");
}

TEST_CASE("rr: overloaded servers are skipped; when all are, no_dest and the cursor stays") {
  auto svc = listed<round_robin>({{1, 1}, {2, 1}, {3, 1}});
  CHECK(svc.picks(1) == "A");
  svc.set_overloaded(2, true);
  svc.set_overloaded(3, true);
  CHECK(svc.picks(1) == "A");  // B, C skipped; wrap reaches A (the cursor) last
  svc.set_overloaded(1, true);
  CHECK(svc.picks(1) == "-");
  CHECK(svc.sched.cursor() == 0);  // unchanged on failure
  svc.set_overloaded(3, false);
  CHECK(svc.picks(1) == "C");  // continues after A
}

TEST_CASE("rr: removing the cursor's server moves the cursor to its predecessor") {
  SUBCASE("middle server") {
    auto svc = listed<round_robin>({{1, 1}, {2, 1}, {3, 1}});
    CHECK(svc.picks(2) == "AB");
    svc.remove(2);                // cursor B -> A (predecessor); list A, C
    CHECK(svc.picks(2) == "CA");  // (a reset to the head would give "AC")
  }
  SUBCASE("first server") {
    auto svc = listed<round_robin>({{1, 1}, {2, 1}, {3, 1}});
    CHECK(svc.picks(1) == "A");
    svc.remove(1);                // predecessor of the first server is the head
    CHECK(svc.picks(2) == "BC");  // (staying at position 0 would give "CB")
  }
  SUBCASE("a server before the cursor") {
    auto svc = listed<round_robin>({{1, 1}, {2, 1}, {3, 1}});
    CHECK(svc.picks(2) == "AB");
    svc.remove(1);                // cursor stays on B, now at position 0
    CHECK(svc.picks(2) == "CB");
  }
}

TEST_CASE("rr: an added server (at the head) does not move the cursor off its server") {
  auto svc = listed<round_robin>({{1, 1}, {2, 1}});
  CHECK(svc.picks(1) == "A");
  svc.add(make_server(3, 1));     // list C, A, B; cursor still on A
  CHECK(svc.picks(3) == "BCA");   // B after A, then wrap to C
}

// --------------------------------------------------------------------------------------- wrr

TEST_CASE("wrr: A4 B3 C2 initialised together gives A A B A B C A B C") {
  // di = 1, mw = 4, cw starts at 4. Each pick resumes after the cursor; at the list end cw drops
  // by 1 and the scan restarts at the head. Passes: cw=4 {A} | cw=3 {A B} | cw=2 {A B C} |
  // cw=1 {A B C}, then cw wraps to 4: A A B A B C A B C per cycle of 9 (4 : 3 : 2).
  auto svc = listed<weighted_round_robin>({{1, 4}, {2, 3}, {3, 2}});
  CHECK(svc.sched.max_weight() == 4);
  CHECK(svc.sched.weight_step() == 1);
  CHECK(svc.picks(18) == repeat("AABABCABC", 2));
}

TEST_CASE("wrr: the usual ipvsadm flow truncates the first cycle (observed on Linux 6.1)") {
  // -A: empty list, cw = mw = 0. -a A(4): di 4, mw 1, cw was 0 -> cw = 1. -a B(3): di 1, mw 4,
  // cw 1 kept. -a C(2): same, cw 1. List order C, B, A. First cycle only has the cw=1 pass.
  service<weighted_round_robin> svc;
  svc.init();
  svc.add(make_server(1, 4));
  CHECK(svc.sched.current_weight() == 1);
  svc.add(make_server(2, 3));
  svc.add(make_server(3, 2));
  CHECK(svc.sched.current_weight() == 1);
  CHECK(svc.sched.max_weight() == 4);
  CHECK(svc.picks(21) == "CBA" + repeat("ABACBACBA", 2));
}

TEST_CASE("wrr: weights 4 and 6 step by their gcd") {
  // di = 2, mw = 6 - 1 = 5: passes cw = 5 {B}, 3 {A, B}, 1 {A, B} -> B A B A B.
  auto svc = listed<weighted_round_robin>({{1, 4}, {2, 6}});
  CHECK(svc.sched.weight_step() == 2);
  CHECK(svc.sched.max_weight() == 5);
  CHECK(svc.picks(10) == repeat("BABAB", 2));
}

TEST_CASE("wrr: an edit rounds cw to just above a multiple of the new gcd") {
  // A8 B11: di 1, mw 11. cw 11: B; 10: B; 9: B; 8: A  -> cw = 8, cursor on A.
  auto svc = listed<weighted_round_robin>({{1, 8}, {2, 11}});
  CHECK(svc.picks(4) == "BBBA");
  CHECK(svc.sched.current_weight() == 8);
  // B -> 12: di = gcd(8, 12) = 4, mw = 12 - 3 = 9; cw 8 <= 9 and di > 1: cw = (8/4)*4 + 1 = 9.
  svc.set_weight(2, 12);
  CHECK(svc.sched.current_weight() == 9);
  // From the head: cw 9: B (A's 8 < 9); cw 5: A, B; cw 1: A, B; wrap to cw 9: B.
  // (Keeping cw = 8 would have picked A first.)
  CHECK(svc.picks(6) == "BABABB");
}

TEST_CASE("wrr: no weights -> no_dest; all overloaded -> no_dest, then it resumes") {
  auto zero = listed<weighted_round_robin>({{1, 0}, {2, 0}});
  CHECK(zero.picks(2) == "--");
  auto svc = listed<weighted_round_robin>({{1, 2}, {2, 1}});
  CHECK(svc.picks(1) == "A");
  svc.set_overloaded(1, true);
  svc.set_overloaded(2, true);
  CHECK(svc.picks(2) == "--");
  svc.set_overloaded(2, false);
  CHECK(svc.picks(2) == "BB");
}

TEST_CASE("wrr: over a full cycle every server gets exactly weight / gcd picks") {
  // From init (cw = mw), the passes are cw = mw - k*di down to 1; a server of weight w qualifies
  // in w / di of them, so sum(w) / di picks give each exactly w / di.
  test::rng32 rng(7);
  for (int round = 0; round < 200; ++round) {
    const int n = 1 + static_cast<int>(rng() % 12);
    const std::uint32_t scale = 1 + rng() % 4;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> hw;
    for (int i = 0; i < n; ++i)
      hw.emplace_back(static_cast<std::uint32_t>(i + 1), scale * static_cast<std::uint32_t>(rng() % 7));
    auto svc = listed<weighted_round_robin>(hw);
    std::uint32_t g = 0, sum = 0;
    for (auto [h, w] : hw) g = std::gcd(g, w), sum += w;
    if (g == 0) {
      CHECK(svc.pick() == 0);
      continue;
    }
    std::vector<std::uint32_t> got(static_cast<std::size_t>(n) + 1, 0);
    for (std::uint32_t k = 0; k < sum / g; ++k) ++got[svc.pick()];
    CHECK(got[0] == 0);
    for (auto [h, w] : hw) CHECK(got[h] == w / g);
  }
}

TEST_CASE("wrr and rr: identical to the kernel loops under random churn") {
  // Differential against literal models of ip_vs_wrr.c / ip_vs_rr.c: random picks, overload
  // flips, weight edits (including to and from 0), adds and removes.
  test::rng32 rng(11);
  service<weighted_round_robin> w;
  service<round_robin> r;
  reference::wrr_model wm;
  reference::rr_model rm;
  w.init();
  r.init();
  wm.init(w.view());
  rm.init();
  std::uint32_t next_handle = 1;
  long ops = 0;
  for (int step = 0; step < 60000; ++step, ++ops) {
    const unsigned what = rng() % 100;
    if ((what < 4 && w.dests.size() < 40) || w.dests.empty()) {
      const auto s = make_server(next_handle++, rng() % 6 == 0 ? 0 : 1 + rng() % 9);
      w.add(s);
      r.add(s);
      wm.changed(w.view());
      rm.added();
    } else if (what < 7) {
      const auto pos = rng() % w.dests.size();
      const auto h = w.dests[pos].handle;
      w.remove(h);
      r.remove(h);
      wm.changed(w.view());
      rm.removed(static_cast<long>(pos));
    } else if (what < 12) {
      const auto h = w.dests[rng() % w.dests.size()].handle;
      const std::uint32_t nw = rng() % 5 == 0 ? 0 : 1 + rng() % 12;
      w.set_weight(h, nw);
      r.set_weight(h, nw);
      wm.changed(w.view());
    } else if (what < 30) {
      const auto h = w.dests[rng() % w.dests.size()].handle;
      const bool ov = rng() % 3 != 0;
      w.set_overloaded(h, ov);
      r.set_overloaded(h, ov);
    } else {
      const dest_id got_w = w.sched.pick(w.view(), test::ctx());
      const dest_id want_w = wm.pick(w.view());
      REQUIRE(got_w == want_w);
      REQUIRE(w.sched.current_weight() == wm.cw);
      const dest_id got_r = r.sched.pick(r.view(), test::ctx());
      const dest_id want_r = rm.pick(r.view());
      REQUIRE(got_r == want_r);
    }
  }
  CHECK(ops == 60000);
}

// -------------------------------------------------------------------------------------- swrr

TEST_CASE("swrr: weights 5, 1, 1 give nginx's a a b a c a a") {
  // currents start at 0; each step adds the weights and the largest pays W = 7:
  // (5,1,1)->a (-2,1,1); (3,2,2)->a (-4,2,2); (1,3,3)->b (1,-4,3); (6,-3,4)->a (-1,-3,4);
  // (4,-2,5)->c (4,-2,-2); (9,-1,-1)->a (2,-1,-1); (7,0,0)->a (0,0,0): back to zero.
  auto svc = listed<smooth_weighted_round_robin>({{1, 5}, {2, 1}, {3, 1}});
  CHECK(svc.sched.cycle_length() == 7);
  CHECK(svc.sched.precomputed());
  CHECK(svc.picks(14) == repeat("AABACAA", 2));
}

TEST_CASE("swrr: an overloaded server's turn goes to the next turn in the sequence") {
  // The cycle a a b a c a a with b overloaded: b's turn (3rd) passes to the 4th entry (a), so
  // each cycle of 7 turns gives 6 picks: a a a c a a.
  auto svc = listed<smooth_weighted_round_robin>({{1, 5}, {2, 1}, {3, 1}});
  svc.set_overloaded(2, true);
  CHECK(svc.picks(12) == repeat("AAACAA", 2));
  svc.set_overloaded(1, true);
  svc.set_overloaded(3, true);
  CHECK(svc.picks(2) == "--");
}

TEST_CASE("swrr: exact shares per cycle and smoothness, in all three step modes") {
  // Shares: over W/g steps each server gets weight/g turns. Smoothness (the complaint behind
  // Envoy issue 3284 about bursty WRR): no server more than ceil(w_max / w_min) times in a row,
  // checked over three cycles so the wrap-around counts too.
  test::rng32 rng(5);
  for (int round = 0; round < 300; ++round) {
    const int n = 1 + static_cast<int>(rng() % 10);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> hw;
    std::uint32_t g = 0, sum = 0, wmax = 0, wmin = ~0u;
    for (int i = 0; i < n; ++i) {
      const std::uint32_t wt = rng() % 8 == 0 ? 0 : 1 + rng() % 20;
      hw.emplace_back(static_cast<std::uint32_t>(i + 1), wt);
      g = std::gcd(g, wt);
      sum += wt;
      if (wt > 0) wmax = std::max(wmax, wt), wmin = std::min(wmin, wt);
    }
    auto pre = listed<smooth_weighted_round_robin>(hw);
    // Same sequence: precomputed table, grouped stepping, nginx's plain O(n) stepping.
    auto scan = listed<smooth_weighted_round_robin>(
        hw, smooth_weighted_round_robin{smooth_weighted_round_robin::limits{0, 0, true}});
    auto plain = listed<smooth_weighted_round_robin>(
        hw, smooth_weighted_round_robin{smooth_weighted_round_robin::limits{0, 0, false}});
    CHECK_FALSE(scan.sched.precomputed());
    CHECK_FALSE(plain.sched.precomputed());
    CHECK(plain.sched.weight_groups() == 0);
    if (g == 0) {
      CHECK(pre.pick() == 0);
      CHECK(scan.pick() == 0);
      CHECK(plain.pick() == 0);
      continue;
    }
    const std::uint32_t cycle = sum / g;
    std::vector<std::uint32_t> got(static_cast<std::size_t>(n) + 1, 0);
    std::uint32_t run = 0, prev = 0, longest = 0;
    for (std::uint32_t k = 0; k < 3 * cycle; ++k) {
      const std::uint32_t a = pre.pick();
      REQUIRE(a == scan.pick());
      REQUIRE(a == plain.pick());
      if (k < cycle) ++got[a];
      run = a == prev ? run + 1 : 1;
      prev = a;
      longest = std::max(longest, run);
    }
    for (auto [h, wt] : hw) CHECK(got[h] == wt / g);
    const auto weighted = std::count_if(hw.begin(), hw.end(), [](auto p) { return p.second > 0; });
    if (weighted >= 2) CHECK(longest <= (wmax + wmin - 1) / wmin);
  }
}

TEST_CASE("swrr: weights too large for grouped arithmetic step the plain way") {
  // A = 3e9, B = 3e9 - 1, C = 7: W = 6e9 + 6, a cycle of W steps (gcd 1), far beyond 2^61 / 3e9.
  // (3e9, 3e9-1, 7) -> A, A = -3e9-6; (-6, 6e9-2, 14) -> B, B = -8;
  // (3e9-6, 3e9-9, 21) -> A.
  auto svc = listed<smooth_weighted_round_robin>({{1, 3'000'000'000u}, {2, 2'999'999'999u}, {3, 7}});
  CHECK_FALSE(svc.sched.precomputed());
  CHECK(svc.sched.weight_groups() == 0);
  CHECK(svc.picks(3) == "ABA");
}

TEST_CASE("swrr: precomputed and scanned sequences agree under overload churn") {
  test::rng32 rng(9);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> hw;
  for (std::uint32_t i = 1; i <= 12; ++i) hw.emplace_back(i, rng() % 6);
  auto pre = listed<smooth_weighted_round_robin>(hw);
  auto scan = listed<smooth_weighted_round_robin>(
      hw, smooth_weighted_round_robin{smooth_weighted_round_robin::limits{0, 0, true}});
  CHECK(scan.sched.weight_groups() > 1);
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 10 == 0) {
      const auto h = 1 + rng() % 12;
      const bool ov = rng() % 2 == 0;
      pre.set_overloaded(h, ov);
      scan.set_overloaded(h, ov);
    }
    const dest_id a = pre.sched.pick(pre.view(), test::ctx());
    REQUIRE(a == scan.sched.pick(scan.view(), test::ctx()));
    if (a != no_dest) REQUIRE(pre.dests[a].accepts_new_connections());
  }
}

// ---------------------------------------------------------------------------------------- fo

TEST_CASE("fo: the first of the heaviest available servers") {
  // best starts at 0 and is replaced only by a strictly larger weight: B (5) before C (5).
  auto svc = listed<weighted_failover>({{1, 2}, {2, 5}, {3, 5}, {4, 0}});
  CHECK(svc.picks(2) == "BB");
  svc.set_overloaded(2, true);
  CHECK(svc.picks(1) == "C");
  svc.set_overloaded(3, true);
  CHECK(svc.picks(1) == "A");
  svc.set_overloaded(1, true);
  CHECK(svc.picks(1) == "-");  // D has weight 0: never (0 > 0 fails)
  svc.set_overloaded(2, false);
  CHECK(svc.picks(1) == "B");
}

// --------------------------------------------------------------------------------------- ovf

TEST_CASE("ovf: fills the heaviest up to weight + 1 active, then overflows") {
  // Eligible while active <= weight: A(4) takes active 0..4 = 5, B(3) 4, C(2) 3; then none.
  auto svc = listed<overflow>({{2, 3}, {1, 4}, {3, 2}});
  CHECK(svc.picks(13, /*bind=*/true) == "AAAAABBBBCCC-");
}

TEST_CASE("ovf: inactive connections do not count; weight 0 and overload exclude") {
  auto svc = listed<overflow>({{1, 2}, {2, 5}});
  svc.dests[1].inactive_conns = 1000;  // B: only active counts
  svc.sched.counts_changed(svc.view(), 1);
  CHECK(svc.pick() == 2);
  svc.set_overloaded(2, true);
  CHECK(svc.pick() == 1);
  svc.set_weight(1, 0);
  CHECK(svc.pick() == 0);
}

// -------------------------------------------------------------------------------------- twos

namespace {

// Replays raw 32-bit values: lets a test choose the kernel's r1 and r2 exactly.
struct scripted_generator {
  std::vector<std::uint32_t> values;
  std::size_t next = 0;
  std::uint32_t operator()() noexcept { return values[next++ % values.size()]; }
};

// A raw draw that get_random_u32_below(bound) maps to r: the middle of r's interval, so the
// low half of the product is ~2^31, far above the rejection threshold.
std::uint32_t raw_for(std::uint64_t r, std::uint64_t bound) {
  return static_cast<std::uint32_t>(((r << 32) + (std::uint64_t{1} << 31)) / bound);
}

}  // namespace

TEST_CASE("twos: uniform_below is get_random_u32_below's multiply-shift") {
  scripted_generator g{{0x80000000u}};
  CHECK(uniform_below(g, 7) == 3);  // 7 * 2^31 >> 32 = 3.5 -> 3
  for (std::uint64_t r = 0; r < 7; ++r) {
    scripted_generator h{{raw_for(r, 7)}};
    CHECK(uniform_below(h, 7) == r);
  }
}

TEST_CASE("twos: the kernel's weighted draws and the less-loaded choice") {
  // List A(w1), B(w2), C(w3): W = 6, draws in [0, 6]. Running sums 1, 3, 6: r = 0 or 1 -> A,
  // 2..3 -> B, 4..6 -> C. Choice 2 wins only if w2 * oh1 > w1 * oh2.
  using twos_s = basic_two_choices<scripted_generator>;
  auto run = [](std::uint64_t r1, std::uint64_t r2, std::vector<std::uint32_t> oh) {
    service<twos_s> svc{twos_s{scripted_generator{{raw_for(r1, 7), raw_for(r2, 7)}}}};
    for (std::uint32_t h = 1; h <= 3; ++h) svc.dests.push_back(make_server(h, h, 0, oh[h - 1]));
    svc.init();
    return svc.pick();
  };
  CHECK(run(0, 0, {0, 0, 0}) == 1);  // r = 0: first eligible, both A
  CHECK(run(1, 2, {0, 0, 0}) == 1);  // A vs B, both idle: 2*0 > 1*0 false -> A
  CHECK(run(1, 2, {5, 0, 0}) == 2);  // A oh 5, B oh 0: 2*5 > 1*0 -> B
  CHECK(run(3, 4, {0, 9, 12}) == 3);  // B oh 9 vs C oh 12: 3*9 = 27 > 2*12 = 24 -> C
  CHECK(run(3, 4, {0, 9, 14}) == 2);  // 27 > 28 false -> B (choice 1)
  CHECK(run(6, 2, {0, 9, 12}) == 3);  // C first: choice 2 = B wins only if 2*12 > 3*9: no -> C
}

TEST_CASE("twos: overloaded and quiesced servers are outside the draw") {
  // A(w2) overloaded, B(w0), C(w3): W = 3, every draw lands on C.
  service<two_choices> svc{two_choices{42}};
  svc.dests = {make_server(1, 2), make_server(2, 0), make_server(3, 3)};
  svc.dests[0].overloaded = true;
  svc.init();
  CHECK(svc.picks(20) == std::string(20, 'C'));
  svc.set_overloaded(3, true);
  CHECK(svc.picks(1) == "-");
}

TEST_CASE("twos: identical to the kernel loop driven by the same generator") {
  // The same pcg32 stream feeds the reference scan (draws taken the kernel's way) and the
  // tree-based policy; 100k random operations with counts, overloads and weights changing.
  test::rng32 rng(3);
  service<two_choices> svc{two_choices{1234}};
  pcg32 ref_gen{1234};
  for (std::uint32_t h = 1; h <= 50; ++h) svc.dests.push_back(make_server(h, rng() % 5));
  svc.init();
  for (int step = 0; step < 100000; ++step) {
    const unsigned what = rng() % 10;
    auto& d = svc.dests[rng() % svc.dests.size()];
    const dest_id id = static_cast<dest_id>(&d - svc.dests.data());
    if (what == 0) {
      d.overloaded = !d.overloaded;
      svc.sched.counts_changed(svc.view(), id);
    } else if (what == 1) {
      svc.set_weight(d.handle, rng() % 5);
    } else if (what < 4) {
      d.active_conns = rng() % 50;
      d.inactive_conns = rng() % 500;
      svc.sched.counts_changed(svc.view(), id);
    } else {
      const std::uint64_t total = reference::twos_total(svc.view());
      dest_id want = no_dest;
      if (total != 0) {
        const std::uint64_t r1 = uniform_below(ref_gen, total + 1);
        const std::uint64_t r2 = uniform_below(ref_gen, total + 1);
        want = reference::twos(svc.view(), r1, r2);
      }
      REQUIRE(svc.sched.pick(svc.view(), test::ctx()) == want);
    }
  }
}

}  // TEST_SUITE
