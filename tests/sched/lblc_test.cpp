// IPVS lblc and lblcr (locality_least_connection*.hpp). Every expected value is worked from the
// kernel's rules (ip_vs_lblc.c, ip_vs_lblcr.c; ipvs-notes lblc/lblcr sections) in the comments:
// WLC compares overhead = 256 * active + inactive divided by weight, first server wins ties;
// "overloaded" (lblc's sense) = active > weight while some server has 2 * active < weight.
// The cache's bucket of a destination (hash_32 of its folded address) is worked in the comments
// and printed by tests/sched/ipvs_hash_oracle.py. Addresses: client 198.18.0.85 (198.18.9.9),
// servers 198.18.1.x, destinations 198.19.x; IPv6 fd00::/8.
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include "hash_policy_fixtures.hpp"
#include "l4lb/sched/locality_least_connection.hpp"
#include "l4lb/sched/locality_least_connection_replicated.hpp"

using namespace l4lb;
using namespace l4lb::sched;
using namespace l4lb::sched::fixtures;

namespace {

constexpr std::int64_t s = 1'000'000'000;  // one second in ns
constexpr std::int64_t minute = 60 * s;
constexpr std::int64_t t0 = 1000 * s;

// A, B, C in list order, weight 1 each. Loads: A 1 active (overhead 256), B 2 inactive (2),
// C idle (0). WLC: seed A (256); B: 256*1 > 2*1 -> B; C: 2*1 > 0*1 -> C. So WLC = C.
std::vector<real_server> three() {
  auto d = std::vector<real_server>{server("198.18.1.1:80", 1, 1), server("198.18.1.2:80", 1, 2),
                                    server("198.18.1.3:80", 1, 3)};
  d[0].active_conns = 1;
  d[1].inactive_conns = 2;
  return d;
}

wire::flow_key to(std::string_view daddr) {
  return tcp("198.18.0.85:40000", std::string(daddr) + ":80");
}

}  // namespace

TEST_SUITE("sched") {

// ---------------------------------------------------------------------------------------------
// lblc

TEST_CASE("lblc: a new destination goes to the WLC server and then stays there") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);  // WLC = C, cached
  CHECK(lblc.cached(addr("198.19.0.1")) == 2);
  // C gets busier (50 inactive) but is not overloaded in lblc's sense (0 active <= weight 1):
  // the destination stays on C although B (2) is now lighter.
  d[2].inactive_conns = 50;
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 2);
  // Another destination: WLC over A 256, B 2, C 50 -> B. The client never matters.
  CHECK(lblc.pick(d, {to("198.19.0.2"), t0 + s}) == 1);
  CHECK(lblc.pick(d, {tcp("198.18.9.9:1", "198.19.0.2:443"), t0 + s}) == 1);
  CHECK(lblc.entries() == 2);
}

TEST_CASE("lblc: the cached server is replaced only when overloaded in lblc's sense") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);  // -> C
  d[2].active_conns = 2;  // C: 2 active > weight 1, overhead 512
  SUBCASE("some server has 2 * active < weight (B: 0 < 1): re-scheduled by WLC") {
    // WLC: A 256, B 2, C 512 -> B; the entry now points at B.
    CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 1);
    CHECK(lblc.cached(addr("198.19.0.1")) == 1);
  }
  SUBCASE("active == weight is not overloaded: C stays") {
    d[2].active_conns = 1;  // 1 > 1 is false, although B has 2 * 0 < 1
    CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 2);
  }
  SUBCASE("no server has 2 * active < weight: C stays") {
    d[1].active_conns = 1;  // A: 2 < 1 no; B: 2 < 1 no; C: 4 < 1 no
    CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 2);
  }
  SUBCASE("a heavier-weighted server with spare room counts") {
    d[1].active_conns = 1;
    d[1].weight = d[1].last_weight = 3;  // B: 2 * 1 < 3
    (void)lblc.rebuild(d, {dest_change::kind::edited, 1});
    // WLC: A 256/1; B 258/3: 256*3 > 258*1 -> B; C 512/1: 258*1 > 512*3? no -> B.
    CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 1);
  }
}

TEST_CASE("lblc: the OVERLOAD flag is not consulted for a cached server (kernel behaviour)") {
  // ip_vs_lblc_schedule checks AVAILABLE, weight > 0 and its own is_overloaded(), not
  // IP_VS_DEST_F_OVERLOAD; only the WLC fallback skips flagged servers.
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);
  d[2].overloaded = true;
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 2);
  // A new destination: WLC skips C -> A 256 vs B 2 -> B.
  CHECK(lblc.pick(d, {to("198.19.0.2"), t0 + s}) == 1);
}

TEST_CASE("lblc: a quiesced cached server hands its destination to WLC") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);
  edit_weight(d[2], 0);
  (void)lblc.rebuild(d, {dest_change::kind::edited, 2});
  // WLC: seed A 256; B 2 wins; C weight 0 can never win (256*0 > ...) -> B.
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 1);
  CHECK(lblc.cached(addr("198.19.0.1")) == 1);
}

TEST_CASE("lblc: removing and re-adding servers keeps entries pointing at the right server") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);  // C
  d[2].inactive_conns = 100;                           // C 100: next WLC pick is B
  REQUIRE(lblc.pick(d, {to("198.19.0.2"), t0}) == 1);  // B
  // Remove A (position 0): B and C move up one place.
  const real_server a = d[0];
  d.erase(d.begin());
  (void)lblc.rebuild(d, {dest_change::kind::removed, 0});
  CHECK(lblc.cached(addr("198.19.0.1")) == 1);
  CHECK(lblc.cached(addr("198.19.0.2")) == 0);
  // Remove C (position 1): its entry stays, pointing at no server (the kernel's trash dest).
  const real_server c = d[1];
  d.erase(d.begin() + 1);
  (void)lblc.rebuild(d, {dest_change::kind::removed, 1});
  CHECK(lblc.cached(addr("198.19.0.1")) == no_dest);
  // Re-add C with the same handle: list C, B; the entry points at C again.
  d.insert(d.begin(), c);
  (void)lblc.rebuild(d, {dest_change::kind::added, 0});
  CHECK(lblc.cached(addr("198.19.0.1")) == 0);
  CHECK(lblc.cached(addr("198.19.0.2")) == 1);
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + s}) == 0);
  // A destination whose server is gone is re-scheduled by WLC and re-pointed.
  d.erase(d.begin());
  (void)lblc.rebuild(d, {dest_change::kind::removed, 0});
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0 + 2 * s}) == 0);  // only B left
  CHECK(lblc.cached(addr("198.19.0.1")) == 0);
  (void)a;
}

TEST_CASE("lblc: the half-hourly full check drops entries unused for lblc_expiration") {
  locality_least_connection lblc({.expiration_ns = 10 * minute});
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  // The 60 s timer starts with the first pick at t0; ticks at t0 + k minutes. The counter starts
  // at 1 and reaches 30 after 29 counting ticks, so tick 30 (t0 + 30 min) is the full check.
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);
  REQUIRE(lblc.pick(d, {to("198.19.0.2"), t0 + 25 * minute}) == 2);
  lblc.collect(t0 + 30 * minute - 1);
  CHECK(lblc.entries() == 2);
  // t0 + 30 min: 198.19.0.1 unused since t0 (>= 10 min) goes; 198.19.0.2 (5 min) stays.
  lblc.collect(t0 + 30 * minute);
  CHECK(lblc.entries() == 1);
  CHECK(lblc.cached(addr("198.19.0.1")) == locality_least_connection::not_cached);
  CHECK(lblc.cached(addr("198.19.0.2")) == 2);
  // The next full check is 30 ticks later (t0 + 60 min).
  lblc.collect(t0 + 60 * minute - 1);
  CHECK(lblc.entries() == 1);
  lblc.collect(t0 + 60 * minute);
  CHECK(lblc.entries() == 0);
}

TEST_CASE("lblc: default 24 h expiration over a long idle gap") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  lblc.start_clock(t0);
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);
  // Full checks every 30 ticks: at 24 h - 30 min the entry (idle 23.5 h) stays...
  lblc.collect(t0 + 24 * 60 * minute - 1);
  CHECK(lblc.entries() == 1);
  // ...and the check at tick 1440 = t0 + 24 h removes it (idle >= 24 h).
  lblc.collect(t0 + 24 * 60 * minute);
  CHECK(lblc.entries() == 0);
}

TEST_CASE("lblc: above 16 * 2^bits entries, idle ones (>= 6 min) go bucket by bucket") {
  // table_bits 1: 2 buckets, max_size 32. 40 destinations 198.19.1.0 .. 198.19.1.39 at t0; by
  // hash_32(fold, 1) (the top bit of fold * 0x61C88647) 20 land in bucket 1 and 20 in bucket 0
  // (counted by ipvs_hash_oracle.py). The three checked below:
  //   198.19.1.0 = 0xC6130100 -> 0xA9CB4700: top bit 1 -> bucket 1
  //   198.19.1.1 = 0xC6130101 -> 0x0B93CD47: top bit 0 -> bucket 0
  //   198.19.1.2 = 0xC6130102 -> 0x6D5C538E: top bit 0 -> bucket 0
  locality_least_connection lblc({.table_bits = 1, .capacity = 64});
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  std::vector<std::string> dsts;
  for (int i = 0; i < 40; ++i) dsts.push_back("198.19.1." + std::to_string(i));
  for (const auto& a : dsts) REQUIRE(lblc.pick(d, {to(a), t0}) != no_dest);
  REQUIRE(lblc.entries() == 40);
  // Ticks 1..5: 40 > 32, so each runs the partial collection, but nothing is idle for 6 min.
  lblc.collect(t0 + 6 * minute - 1);
  CHECK(lblc.entries() == 40);
  // Tick 6: goal = (40 - 32) * 4/3 = 10 (<= 32/2). From the rover (0) the sweep starts at
  // bucket 1, removes its 20 idle entries, and stops as the goal is met: bucket 0 stays.
  lblc.collect(t0 + 6 * minute);
  CHECK(lblc.entries() == 20);
  CHECK(lblc.cached(addr("198.19.1.1")) != locality_least_connection::not_cached);  // bucket 0
  CHECK(lblc.cached(addr("198.19.1.0")) == locality_least_connection::not_cached);  // bucket 1
  CHECK(lblc.cached(addr("198.19.1.2")) != locality_least_connection::not_cached);  // bucket 0
}

TEST_CASE("lblc: a destination that does not fit is scheduled but not cached") {
  locality_least_connection lblc({.capacity = 2});
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  CHECK(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);
  CHECK(lblc.pick(d, {to("198.19.0.2"), t0}) == 2);
  CHECK(lblc.pick(d, {to("198.19.0.3"), t0}) == 2);
  CHECK(lblc.entries() == 2);
  CHECK(lblc.capacity() == 2);
  CHECK(lblc.cache_full() == 1);
  CHECK(lblc.cached(addr("198.19.0.3")) == locality_least_connection::not_cached);
}

TEST_CASE("lblc: IPv6 destinations are keyed by the full address") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  const wire::flow_key f1{wire::ip_proto::tcp, ep("[fd00::99]:1"), ep("[fd00::1]:80")};
  // fd00:1:2:3:fd00:1:2:3 and fd00:5:6:7:fd00:5:6:7 both fold to 0 (w0 ^ w1 ^ w0 ^ w1): same
  // bucket (hash_32(0, 10) = 0), different entries.
  const wire::flow_key f2{wire::ip_proto::tcp, ep("[fd00::99]:1"),
                          ep("[fd00:1:2:3:fd00:1:2:3]:80")};
  const wire::flow_key f3{wire::ip_proto::tcp, ep("[fd00::99]:1"),
                          ep("[fd00:5:6:7:fd00:5:6:7]:80")};
  CHECK(lblc.pick(d, {f1, t0}) == 2);
  CHECK(lblc.pick(d, {f2, t0}) == 2);
  d[2].inactive_conns = 100;  // now WLC = B
  CHECK(lblc.pick(d, {f3, t0}) == 1);
  CHECK(lblc.pick(d, {f2, t0}) == 2);
  CHECK(lblc.entries() == 3);
}

TEST_CASE("lblc: no destination for an empty service, all quiesced, all overloaded") {
  locality_least_connection lblc;
  std::vector<real_server> none;
  (void)lblc.rebuild(none, {dest_change::kind::init});
  CHECK(lblc.pick(none, {to("198.19.0.1"), t0}) == no_dest);
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  SUBCASE("all quiesced") {
    for (auto& r : d) edit_weight(r, 0);
    CHECK(lblc.pick(d, {to("198.19.0.1"), t0}) == no_dest);
  }
  SUBCASE("all overloaded, nothing cached") {
    for (auto& r : d) r.overloaded = true;
    CHECK(lblc.pick(d, {to("198.19.0.1"), t0}) == no_dest);
  }
  CHECK(lblc.entries() == 0);
  locality_least_connection bad({.table_bits = 0});
  CHECK(bad.rebuild(d, {}) == build_error::bad_option);
  CHECK(bad.pick(d, {to("198.19.0.1"), t0}) == no_dest);
}

TEST_CASE("lblc: init (binding the scheduler) starts with an empty cache") {
  locality_least_connection lblc;
  auto d = three();
  (void)lblc.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblc.pick(d, {to("198.19.0.1"), t0}) == 2);
  (void)lblc.rebuild(d, {dest_change::kind::init});
  CHECK(lblc.entries() == 0);
}

// ---------------------------------------------------------------------------------------------
// lblcr

TEST_CASE("lblcr: a new destination gets a one-server set; busy sets grow at the head") {
  locality_least_connection_replicated lblcr;
  auto d = three();
  (void)lblcr.rebuild(d, {dest_change::kind::init});
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);  // WLC = C; set {C}
  CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{2});
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + s}) == 2);  // least member C, not overloaded
  d[2].active_conns = 2;  // C overloaded in lblc's sense (2 > 1, and B has 0 < 1)
  // Least member C is overloaded -> WLC: A 256, B 2, C 512 -> B, added at the head: {B, C}.
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + 2 * s}) == 1);
  CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{1, 2});
  // Least member of {B 2, C 512}: B.
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + 3 * s}) == 1);
}

TEST_CASE("lblcr: OVERLOAD-flagged members are skipped; a WLC pick already in the set is not added twice") {
  locality_least_connection_replicated lblcr;
  auto d = three();
  (void)lblcr.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);  // {C}
  d[2].active_conns = 2;
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0 + s}) == 1);  // {B, C}
  SUBCASE("B flagged: least member is C, overloaded -> WLC skipping B: A 256 vs C 512 -> A") {
    d[1].overloaded = true;
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + 2 * s}) == 0);
    CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{0, 1, 2});
  }
  SUBCASE("WLC picks C again: no duplicate") {
    // B flagged but with room (weight 10, 4 active: 8 < 10) keeps C "overloaded"; A is made
    // heavier (3 active, 768) so WLC (skipping B) is C (512).
    d[1].overloaded = true;
    d[1].weight = d[1].last_weight = 10;
    d[1].active_conns = 4;
    d[0].active_conns = 3;
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + 2 * s}) == 2);
    CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{1, 2});
  }
}

TEST_CASE("lblcr: a set unchanged for lblcr_expiration loses its most loaded member") {
  locality_least_connection_replicated lblcr({.expiration_ns = 10 * minute});
  auto d = three();
  (void)lblcr.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);  // {C}
  d[2].active_conns = 2;
  const std::int64_t t1 = t0 + s;
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t1}) == 1);  // {B, C}, lastmod t1
  // Not yet: the rule is now > lastmod + expiration.
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t1 + 10 * minute}) == 1);
  CHECK(lblcr.cached_set(addr("198.19.0.1")).size() == 2);
  // Now: most loaded by overhead/weight: seed B (2), C 512: 2*1 < 512*1 -> C is erased. The
  // least member was computed first (B) and is used.
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t1 + 10 * minute + 1}) == 1);
  CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{1});
}

TEST_CASE("lblcr: removed members stay in the set until erased; re-adding revives them") {
  locality_least_connection_replicated lblcr({.expiration_ns = 10 * minute});
  auto d = three();
  (void)lblcr.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);
  d[2].active_conns = 2;
  lblcr.counts_changed(d, 2);  // the director reports C's new load (kept as C's snapshot)
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0 + s}) == 1);  // {B, C}
  // Remove C (weight 1, overhead 512 at removal).
  const real_server c = d[2];
  d.pop_back();
  (void)lblcr.rebuild(d, {dest_change::kind::removed, 2});
  CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{1, no_dest});
  // Least member: B (a removed member is never AVAILABLE).
  CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + 2 * s}) == 1);
  SUBCASE("expiry erases the removed member as the most loaded (512 vs B's 2)") {
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + s + 10 * minute + 1}) == 1);
    CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{1});
  }
  SUBCASE("re-adding C with its handle makes it a member again") {
    d.insert(d.begin(), c);
    (void)lblcr.rebuild(d, {dest_change::kind::added, 0});
    CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{2, 0});
  }
}

TEST_CASE("lblcr: capacity limits and bad input") {
  auto d = three();
  SUBCASE("entries that do not fit") {
    locality_least_connection_replicated lblcr({.capacity = 1});
    (void)lblcr.rebuild(d, {dest_change::kind::init});
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);
    CHECK(lblcr.pick(d, {to("198.19.0.2"), t0}) == 2);
    CHECK(lblcr.entries() == 1);
    CHECK(lblcr.cache_full() == 1);
  }
  SUBCASE("members that do not fit: the set does not grow, the pick stands") {
    locality_least_connection_replicated lblcr({.capacity = 4, .member_capacity = 1});
    (void)lblcr.rebuild(d, {dest_change::kind::init});
    REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);
    d[2].active_conns = 2;
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0 + s}) == 1);
    CHECK(lblcr.cached_set(addr("198.19.0.1")) == std::vector<dest_id>{2});
    CHECK(lblcr.cache_full() == 1);
  }
  SUBCASE("no destination") {
    locality_least_connection_replicated lblcr;
    std::vector<real_server> none;
    (void)lblcr.rebuild(none, {dest_change::kind::init});
    CHECK(lblcr.pick(none, {to("198.19.0.1"), t0}) == no_dest);
    (void)lblcr.rebuild(d, {dest_change::kind::init});
    for (auto& r : d) r.overloaded = true;
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0}) == no_dest);
    for (auto& r : d) {
      r.overloaded = false;
      edit_weight(r, 0);
    }
    CHECK(lblcr.pick(d, {to("198.19.0.1"), t0}) == no_dest);
    CHECK(lblcr.entries() == 0);
  }
}

TEST_CASE("lblcr: the collection timer frees whole sets") {
  locality_least_connection_replicated lblcr({.expiration_ns = 10 * minute, .member_capacity = 2});
  auto d = three();
  (void)lblcr.rebuild(d, {dest_change::kind::init});
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0}) == 2);
  d[2].active_conns = 2;
  REQUIRE(lblcr.pick(d, {to("198.19.0.1"), t0 + s}) == 1);  // both members used
  lblcr.collect(t0 + 30 * minute);                           // full check: idle >= 10 min
  CHECK(lblcr.entries() == 0);
  // The two members are free again: a new destination can get a set.
  CHECK(lblcr.pick(d, {to("198.19.0.2"), t0 + 31 * minute}) == 1);
  CHECK(lblcr.cached_set(addr("198.19.0.2")) == std::vector<dest_id>{1});
  CHECK(lblcr.cache_full() == 0);
}

}  // TEST_SUITE
