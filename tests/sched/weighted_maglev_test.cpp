// wmh, l4lb's weighted Maglev (weighted_maglev.hpp), and the fixed hashes it uses
// (stable_hash.hpp). Hash vectors come from tests/sched/stable_hash_oracle.py, a model written
// from the formulas in stable_hash.hpp's comment; whole tables are compared with a plain
// reference fill written here from the algorithm as documented (steps 1-4, no shortcuts).
// Addresses (benchmarking ranges only): clients 198.18.0.x (nth_client: 198.18.0.0 + n/16), VIPs
// 198.19.0.x, real servers 198.18.1.x upwards; IPv6 client fd00::1, VIP fd00::100.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "hash_policy_fixtures.hpp"
#include "l4lb/sched/stable_hash.hpp"
#include "l4lb/sched/weighted_maglev.hpp"

using namespace l4lb;
using namespace l4lb::sched;
using namespace l4lb::sched::fixtures;

namespace {

// The documented algorithm, slowly: sort by (endpoint, handle), preference lists from the
// endpoint hashes, largest-remainder quotas, R = ceil(M/N) rounds of
// ceil(r q / R) - ceil((r-1) q / R) claims, each walking the list to its next free slot.
std::vector<std::uint16_t> reference_table(const std::vector<real_server>& dests, std::uint32_t m) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < dests.size(); ++i)
    if (dests[i].table_weight() > 0) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (dests[a].endpoint != dests[b].endpoint) return dests[a].endpoint < dests[b].endpoint;
    return dests[a].handle < dests[b].handle;
  });
  std::vector<std::uint16_t> table(m, weighted_maglev::empty_slot);
  const std::size_t n = order.size();
  if (n == 0) return table;
  std::vector<std::uint64_t> offset(n), skip(n), next(n), quota(n), rem(n);
  std::uint64_t total = 0;
  for (std::size_t k = 0; k < n; ++k) total += dests[order[k]].table_weight();
  std::uint64_t given = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const auto& e = dests[order[k]].endpoint;
    offset[k] = stable_hash::endpoint_hash(e, stable_hash::maglev_offset_seed) % m;
    skip[k] = stable_hash::endpoint_hash(e, stable_hash::maglev_skip_seed) % (m - 1) + 1;
    next[k] = offset[k];
    quota[k] = std::uint64_t{m} * dests[order[k]].table_weight() / total;
    rem[k] = std::uint64_t{m} * dests[order[k]].table_weight() % total;
    given += quota[k];
  }
  std::vector<std::size_t> by_rem(n);
  for (std::size_t k = 0; k < n; ++k) by_rem[k] = k;
  std::sort(by_rem.begin(), by_rem.end(), [&](std::size_t a, std::size_t b) {
    return rem[a] != rem[b] ? rem[a] > rem[b] : a < b;  // ties: the earlier server
  });
  for (std::size_t k = 0; k < m - given; ++k) ++quota[by_rem[k]];
  const std::uint64_t rounds = (m + n - 1) / n;
  std::vector<bool> taken(m);
  auto cum = [&](std::uint64_t r, std::uint64_t q) { return (r * q + rounds - 1) / rounds; };
  for (std::uint64_t r = 1; r <= rounds; ++r)
    for (std::size_t k = 0; k < n; ++k)
      for (std::uint64_t c = cum(r - 1, quota[k]); c < cum(r, quota[k]); ++c) {
        while (taken[next[k]]) next[k] = (next[k] + skip[k]) % m;
        taken[next[k]] = true;
        table[next[k]] = static_cast<std::uint16_t>(order[k]);
      }
  return table;
}

// n real servers first:80, first+1:80, ...; from 198.18.1.1 by default. The 65536 servers of the
// size test run on to 198.19.1.0, still inside 198.18.0.0/15 (they share addresses with clients
// and the VIP there: harmless, these are only hash inputs).
std::vector<real_server> numbered(std::uint32_t n, std::uint32_t first = 0xC6120101u) {
  std::vector<real_server> d(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    d[i].endpoint = {wire::ipv4_address::from_u32(first + i), 80};
    d[i].handle = i + 1;
  }
  return d;
}

std::vector<std::uint32_t> slot_counts(const weighted_maglev& w, std::size_t n) {
  std::vector<std::uint32_t> c(n);
  for (std::uint16_t s : w.slots()) {
    REQUIRE(s < n);
    ++c[s];
  }
  return c;
}

}  // namespace

TEST_SUITE("sched") {

TEST_CASE("stable_hash: pinned vectors (reference model of the documented formulas)") {
  CHECK(stable_hash::splitmix64(0) == 0xe220a8397b1dcdafULL);  // SplitMix64's first output, seed 0
  // Values from stable_hash_oracle.py (same inputs: client 198.18.0.1, VIP 198.19.0.100,
  // server 198.18.1.1, fd00::1 -> fd00::100).
  const auto f4 = tcp("198.18.0.1:12345", "198.19.0.100:80");
  CHECK(stable_hash::flow_hash(f4, stable_hash::flow_hash_key::flow, false) == 0x80e0b259952ba0b8ULL);
  CHECK(stable_hash::flow_hash(f4, stable_hash::flow_hash_key::source_address, false) ==
        0x92589a2c1094033bULL);
  CHECK(stable_hash::flow_hash(f4, stable_hash::flow_hash_key::source_address_and_port, false) ==
        0x40f1edc578760243ULL);
  const wire::flow_key f6{wire::ip_proto::udp, ep("[fd00::1]:53000"), ep("[fd00::100]:53")};
  CHECK(stable_hash::flow_hash(f6, stable_hash::flow_hash_key::flow, false) == 0xc58c5d56fee3ee66ULL);
  CHECK(stable_hash::endpoint_hash(ep("198.18.1.1:80"), stable_hash::maglev_offset_seed) ==
        0x3dbc8771c24a8047ULL);
  CHECK(stable_hash::endpoint_hash(ep("198.18.1.1:80"), stable_hash::maglev_skip_seed) ==
        0x9a0e39036e322719ULL);
  // reduce(h, n) = floor(h * n / 2^64): 0x80e0b259952ba0b8 / 2^64 = 0.5034286, times 65537 =
  // 32993.2 -> 32993.
  CHECK(stable_hash::reduce(0x80e0b259952ba0b8ULL, 65537) == 32993);
  CHECK(stable_hash::reduce(~0ULL, 10) == 9);
  CHECK(stable_hash::reduce(0, 10) == 0);
}

TEST_CASE("stable_hash: inverse reads the flow reversed; keys select what is hashed") {
  const auto f = tcp("198.18.0.1:12345", "198.19.0.100:80");
  using stable_hash::flow_hash_key;
  for (auto key : {flow_hash_key::flow, flow_hash_key::source_address,
                   flow_hash_key::source_address_and_port}) {
    CHECK(stable_hash::flow_hash(f.reversed(), key, true) == stable_hash::flow_hash(f, key, false));
  }
  // Source address only: another port or VIP does not change it; another client does. (Oracle:
  // g's flow hash is 0x2db3cf3e15d320a2 against f's 0x80e0b259952ba0b8; both source_address
  // hashes are 0x92589a2c1094033b.)
  const auto g = tcp("198.18.0.1:999", "198.19.0.200:443");
  CHECK(stable_hash::flow_hash(g, flow_hash_key::source_address, false) ==
        stable_hash::flow_hash(f, flow_hash_key::source_address, false));
  CHECK(stable_hash::flow_hash(g, flow_hash_key::flow, false) !=
        stable_hash::flow_hash(f, flow_hash_key::flow, false));
  CHECK(to_string(flow_hash_key::source_address_and_port) == "source_address_and_port");
}

TEST_CASE("wmh: the table is the documented fill (reference implementation, no shortcuts)") {
  SUBCASE("weights 4, 3, 2 in 251 slots") {
    std::vector<real_server> d = {server("198.18.1.1:80", 4, 1), server("198.18.1.2:80", 3, 2),
                                  server("198.18.1.3:80", 2, 3)};
    weighted_maglev w({.table_size = 251});
    REQUIRE(w.rebuild(d, {}) == build_error::ok);
    CHECK(std::vector<std::uint16_t>(w.slots().begin(), w.slots().end()) == reference_table(d, 251));
  }
  SUBCASE("50 servers, weights 1..20, 4093 slots") {
    auto d = numbered(50);
    for (std::uint32_t i = 0; i < 50; ++i) d[i].weight = d[i].last_weight = 1 + (i * 7) % 20;
    weighted_maglev w({.table_size = 4093});
    REQUIRE(w.rebuild(d, {}) == build_error::ok);
    CHECK(std::vector<std::uint16_t>(w.slots().begin(), w.slots().end()) == reference_table(d, 4093));
  }
  SUBCASE("1000 equal servers, 65537 slots (exercises the free-list tail)") {
    auto d = numbered(1000);
    weighted_maglev w;
    REQUIRE(w.rebuild(d, {}) == build_error::ok);
    CHECK(std::vector<std::uint16_t>(w.slots().begin(), w.slots().end()) == reference_table(d, 65537));
  }
  SUBCASE("one heavy server among light ones (several claims in a row)") {
    auto d = numbered(20);
    d[7].weight = d[7].last_weight = 500;
    weighted_maglev w({.table_size = 8191});
    REQUIRE(w.rebuild(d, {}) == build_error::ok);
    CHECK(std::vector<std::uint16_t>(w.slots().begin(), w.slots().end()) == reference_table(d, 8191));
  }
}

TEST_CASE("wmh: the table does not depend on the order servers were added in") {
  auto d = numbered(300);
  for (std::uint32_t i = 0; i < 300; ++i) d[i].weight = d[i].last_weight = 1 + i % 5;
  weighted_maglev a, b;
  REQUIRE(a.rebuild(d, {}) == build_error::ok);
  auto shuffled = d;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  REQUIRE(b.rebuild(shuffled, {}) == build_error::ok);
  for (std::size_t s = 0; s < a.slots().size(); ++s)
    REQUIRE(d[a.slots()[s]].endpoint == shuffled[b.slots()[s]].endpoint);
}

TEST_CASE("wmh: equal weights differ by at most one slot") {
  // 65537 = 65 * 1000 + 537: 537 servers get 66 slots, 463 get 65.
  auto d = numbered(1000);
  weighted_maglev w;
  REQUIRE(w.rebuild(d, {}) == build_error::ok);
  const auto c = slot_counts(w, 1000);
  CHECK(std::count(c.begin(), c.end(), 66u) == 537);
  CHECK(std::count(c.begin(), c.end(), 65u) == 463);
  // 251 = 35 * 7 + 6: six servers with 36, one with 35.
  auto seven = numbered(7);
  weighted_maglev small({.table_size = 251});
  REQUIRE(small.rebuild(seven, {}) == build_error::ok);
  const auto c7 = slot_counts(small, 7);
  CHECK(std::count(c7.begin(), c7.end(), 36u) == 6);
  CHECK(std::count(c7.begin(), c7.end(), 35u) == 1);
}

TEST_CASE("wmh: slot shares follow weight shares to within one slot (1 % for M >= 100 N)") {
  // 4093 slots, weights 4,3,2: M w / W = 1819.1, 1364.3, 909.6 -> floors 1819, 1364, 909 and the
  // remaining slot to the largest remainder (909.6): 1819/1364/910.
  std::vector<real_server> d = {server("198.18.1.1:80", 4, 1), server("198.18.1.2:80", 3, 2),
                                server("198.18.1.3:80", 2, 3)};
  weighted_maglev w({.table_size = 4093});
  REQUIRE(w.rebuild(d, {}) == build_error::ok);
  CHECK(slot_counts(w, 3) == std::vector<std::uint32_t>{1819, 1364, 910});
  // 100 servers with weights 1..10 in 65537 slots (M >= 100 N).
  auto many = numbered(100);
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < 100; ++i) {
    many[i].weight = many[i].last_weight = 1 + (i * 37) % 10;
    total += many[i].weight;
  }
  weighted_maglev big;
  REQUIRE(big.rebuild(many, {}) == build_error::ok);
  const auto c = slot_counts(big, 100);
  for (std::uint32_t i = 0; i < 100; ++i) {
    const double ideal = 65537.0 * many[i].weight / static_cast<double>(total);
    CAPTURE(i);
    CHECK(std::abs(c[i] - ideal) < 1.0);
    if (ideal >= 100.0) CHECK(std::abs(c[i] - ideal) <= 0.01 * ideal);
  }
}

TEST_CASE("wmh: removing one of N servers moves about 1/N of the flows") {
  // Bound: every flow of the removed server moves (~1/N); flows of the other servers that move
  // stay under 1 % of all flows (Maglev's near-minimal disruption, about the kernel's mh at
  // 65521 slots). The oracle's model of these tables: 989 flows on the removed 198.18.1.51 and
  // 597 others moved (0.60 %).
  constexpr std::uint32_t n = 100;
  auto d = numbered(n);
  weighted_maglev before, after;
  REQUIRE(before.rebuild(d, {}) == build_error::ok);
  auto r = d;
  r.erase(r.begin() + 50);
  REQUIRE(after.rebuild(r, {dest_change::kind::removed, 50}) == build_error::ok);
  constexpr std::uint32_t flows = 100000;
  // Every pick must be a server, and every flow of the removed one must land elsewhere.
  const auto [on_removed, moved] =
      count_disruption(before, d, after, r, 50, flows, per_flow_checks::picks_valid);
  CHECK(on_removed > flows / n / 2);
  CHECK(on_removed < flows / n * 2);
  CHECK(moved < flows / 100);
}

TEST_CASE("wmh: quiesced and overloaded servers are never picked") {
  auto d = numbered(10);
  weighted_maglev w, strict({.fallback = false});
  REQUIRE(w.rebuild(d, {}) == build_error::ok);
  REQUIRE(strict.rebuild(d, {}) == build_error::ok);
  const std::vector<std::uint16_t> before(w.slots().begin(), w.slots().end());
  std::vector<dest_id> picked(20000);
  for (std::uint32_t k = 0; k < 20000; ++k) picked[k] = w.pick(d, {nth_client(k)});
  // Quiesce 3 (table kept: it follows last_weight), overload 5.
  edit_weight(d[3], 0);
  REQUIRE(w.rebuild(d, {dest_change::kind::edited, 3}) == build_error::ok);
  REQUIRE(strict.rebuild(d, {dest_change::kind::edited, 3}) == build_error::ok);
  CHECK(std::vector<std::uint16_t>(w.slots().begin(), w.slots().end()) == before);
  d[5].overloaded = true;
  for (std::uint32_t k = 0; k < 20000; ++k) {
    const auto f = nth_client(k);
    const dest_id p = w.pick(d, {f});
    CHECK(p != 3);
    CHECK(p != 5);
    CHECK(p < d.size());
    // Only the flows of the two unusable servers change; the others keep their server.
    if (picked[k] != 3 && picked[k] != 5) CHECK(p == picked[k]);
    // The fallback is stable: the same flow gets the same server.
    CHECK(w.pick(d, {f}) == p);
    const dest_id q = strict.pick(d, {f});
    CHECK((q == no_dest) == (picked[k] == 3 || picked[k] == 5));
  }
}

TEST_CASE("wmh: no destination for an empty service, all quiesced, all overloaded") {
  weighted_maglev w;
  auto d = numbered(5);
  // Empty, all overloaded, all quiesced, shorter list; plus wmh's own: servers added with weight
  // 0 (last_weight 0 too) leave every slot empty.
  check_no_dest_without_usable_servers(w, d, [](weighted_maglev& t, std::vector<real_server>& s) {
    SUBCASE("all added with weight 0") {
      for (auto& r : s) r.weight = r.last_weight = 0;
      REQUIRE(t.rebuild(s, {}) == build_error::ok);
      for (std::uint16_t slot : t.slots()) CHECK(slot == weighted_maglev::empty_slot);
      CHECK(t.pick(s, {nth_client(1)}) == no_dest);
    }
  });
}

TEST_CASE("wmh: table sizes and server counts") {
  auto d = numbered(10);
  for (std::uint32_t bad : {0u, 2u, 4u, 65536u, 655379u}) {
    CAPTURE(bad);
    weighted_maglev w({.table_size = bad});
    CHECK(w.rebuild(d, {}) == build_error::bad_table_size);
    CHECK(w.pick(d, {nth_client(1)}) == no_dest);
  }
  CHECK(weighted_maglev::is_prime(655373));
  weighted_maglev largest({.table_size = 655373});
  REQUIRE(largest.rebuild(d, {}) == build_error::ok);
  const auto c = slot_counts(largest, 10);  // 655373 = 10 * 65537 + 3
  CHECK(std::count(c.begin(), c.end(), 65538u) == 3);
  CHECK(std::count(c.begin(), c.end(), 65537u) == 7);
  weighted_maglev w;
  auto too_many = numbered(65536);
  CHECK(w.rebuild(too_many, {}) == build_error::too_many_servers);
  CHECK(w.pick(too_many, {nth_client(1)}) == no_dest);
  too_many.pop_back();
  CHECK(w.rebuild(too_many, {}) == build_error::ok);  // 65535 servers, 1 or 2 slots each
  CHECK(w.pick(too_many, {nth_client(1)}) < too_many.size());
}

TEST_CASE("wmh: hash key options and ICMP-quoted (inverse) flows") {
  auto d = numbered(50);
  weighted_maglev by_flow, by_client({.key = stable_hash::flow_hash_key::source_address});
  REQUIRE(by_flow.rebuild(d, {}) == build_error::ok);
  REQUIRE(by_client.rebuild(d, {}) == build_error::ok);
  const auto f = tcp("198.18.0.1:12345", "198.19.0.100:80");
  // flow v4 hash 0x80e0b259952ba0b8 -> slot 32993 (see the stable_hash vectors).
  CHECK(by_flow.pick(d, {f}) == by_flow.slots()[32993]);
  CHECK(by_flow.pick_hash(d, 0x80e0b259952ba0b8ULL) == by_flow.slots()[32993]);
  CHECK(by_flow.pick(d, {f.reversed(), 0, true}) == by_flow.pick(d, {f}));
  // Every connection of one client lands on one server with the source_address key.
  const dest_id p = by_client.pick(d, {f});
  for (std::uint16_t port = 1000; port < 1100; ++port) {
    const auto g = tcp("198.18.0.1:" + std::to_string(port), "198.19.0.100:80");
    CHECK(by_client.pick(d, {g}) == p);
  }
}

}  // TEST_SUITE
