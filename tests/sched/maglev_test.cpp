// IPVS mh (maglev.hpp). Expected values: the kernel's rules worked in the comments, and for hash
// values and whole-table facts the independent model in tests/sched/ipvs_hash_oracle.py (written
// from ip_vs_mh.c; it checks itself against the derived vectors of shared/ipvs-notes.md, mh
// section, and the kernel's hsiphash self-test before printing the values used here).
// Addresses: clients 198.18.0.x (main client 198.18.0.85), VIPs 198.19.0.x, real servers
// 198.18.1.x (198.18.2.x for long lists); IPv6 fd00::/8.
#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include <doctest/doctest.h>

#include "hash_policy_fixtures.hpp"
#include "l4lb/sched/maglev.hpp"

using namespace l4lb;
using namespace l4lb::sched;
using namespace l4lb::sched::fixtures;

namespace {

// The notes' setup on our addresses: list order 198.18.1.1 (w4), 198.18.1.2 (w3), 198.18.1.3 (w2).
std::vector<real_server> list_432() {
  return {server("198.18.1.1:80", 4, 1), server("198.18.1.2:80", 3, 2),
          server("198.18.1.3:80", 2, 3)};
}

std::array<int, 3> shares(const maglev_hashing& mh) {
  std::array<int, 3> c{};
  for (dest_id d : mh.slots()) {
    REQUIRE(d < 3);
    ++c[d];
  }
  return c;
}

}  // namespace

TEST_SUITE("sched") {

TEST_CASE("mh: hash and permutation vectors (reference model, checked against ipvs-notes)") {
  // 198.18.1.1:80: v = 0 + 80 + 0xC6120101 = 0xC6120151; H1 = 0x25fb90ae, H2 = 0xe40affd4.
  CHECK(maglev_hashing::hash(maglev_hashing::key1, 0xC6120101u, 80, 0) == 0x25fb90aeu);
  CHECK(maglev_hashing::hash(maglev_hashing::key2, 0xC6120101u, 80, 0) == 0xe40affd4u);
  // offset = 0x25fb90ae mod 4093 = 303, skip = 0xe40affd4 mod 4092 + 1 = 217.
  auto p = maglev_hashing::permutation_of(ep("198.18.1.1:80"), 4093);
  CHECK(p.offset == 303);
  CHECK(p.skip == 217);
  // 198.18.1.2:80: H1 = 0x830491c6, H2 = 0x439d3bed.
  p = maglev_hashing::permutation_of(ep("198.18.1.2:80"), 4093);
  CHECK(p.offset == 1852);
  CHECK(p.skip == 1910);
  // 198.18.1.3:80: H1 = 0xdf4884d4, H2 = 0x06ef5bea.
  p = maglev_hashing::permutation_of(ep("198.18.1.3:80"), 4093);
  CHECK(p.offset == 2630);
  CHECK(p.skip == 2095);
  // Same hashes, table 251: 0x25fb90ae mod 251 = 248, 0xe40affd4 mod 250 + 1 = 101.
  p = maglev_hashing::permutation_of(ep("198.18.1.1:80"), 251);
  CHECK(p.offset == 248);
  CHECK(p.skip == 101);
  // Client 198.18.0.85, port 0: H1 = 0xb7e3acad, slot 0xb7e3acad mod 4093 = 3539.
  CHECK(maglev_hashing::hash(maglev_hashing::key1, 0xC6120055u, 0, 0) == 0xb7e3acadu);
  CHECK(maglev_hashing::hash(maglev_hashing::key1, 0xC6120055u, 0, 0) % 4093 == 3539);
}

TEST_CASE("mh: table size follows CONFIG_IP_VS_MH_TAB_INDEX") {
  CHECK(maglev_hashing{}.table_size() == 4093);  // index 12
  CHECK(maglev_hashing({}, 8).table_size() == 251);
  CHECK(maglev_hashing({}, 17).table_size() == 131071);
  std::vector<real_server> d = list_432();
  maglev_hashing too_small({}, 7), too_big({}, 18);
  CHECK(too_small.rebuild(d, {}) == build_error::bad_table_size);
  CHECK(too_big.rebuild(d, {}) == build_error::bad_table_size);
  CHECK(too_small.pick(d, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
}

TEST_CASE("mh: weights 4,3,2 give 1820/1365/908 slots, and list order matters") {
  maglev_hashing mh;
  auto d = list_432();
  CHECK(mh.rebuild(d, {dest_change::kind::init}) == build_error::ok);
  // 4093 slots, turns 4, 3, 2 in a row per pass: the reference model gives 1820/1365/908 for
  // these servers, the shares ipvs-notes states for its own three. The first 16 slots per the
  // reference model:
  CHECK(shares(mh) == std::array<int, 3>{1820, 1365, 908});
  const std::array<dest_id, 16> first16{0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 2};
  for (std::size_t i = 0; i < first16.size(); ++i) CHECK(mh.slots()[i] == first16[i]);
  // The same servers added the other way round (list .3, .2, .1): the reference model gives
  // 910/1365/1818 (positions now mean .3, .2, .1): the kernel's table depends on list order.
  std::vector<real_server> rev(d.rbegin(), d.rend());
  CHECK(mh.rebuild(rev, {dest_change::kind::init}) == build_error::ok);
  CHECK(shares(mh) == std::array<int, 3>{910, 1365, 1818});
}

TEST_CASE("mh: equal weights and a single server") {
  maglev_hashing mh;
  std::vector<real_server> d = {server("198.18.1.1:80", 1, 1), server("198.18.1.2:80", 1, 2),
                                server("198.18.1.3:80", 1, 3)};
  (void)mh.rebuild(d, {});
  // One slot each per pass: 4093 = 3 * 1364 + 1, the first server gets the extra slot.
  CHECK(shares(mh) == std::array<int, 3>{1365, 1364, 1364});
  // Weight 7 alone: gcd 7, turns 1; every slot is the one server.
  std::vector<real_server> one = {server("198.18.1.9:80", 7, 9)};
  (void)mh.rebuild(one, {});
  for (dest_id s : mh.slots()) CHECK(s == 0);
  CHECK(mh.pick(one, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == 0);
}

TEST_CASE("mh: the first claims are each server's offset (table 251)") {
  maglev_hashing mh({}, 8);
  std::vector<real_server> d = {server("198.18.1.1:80", 1, 1), server("198.18.1.2:80", 1, 2)};
  (void)mh.rebuild(d, {});
  // Pass 1: 198.18.1.1 takes its offset 248, 198.18.1.2 its offset 0x830491c6 mod 251 = 79.
  CHECK(mh.slots()[248] == 0);
  CHECK(mh.slots()[79] == 1);
  // Pass 2: 198.18.1.1 continues at (248 + 101) mod 251 = 98 (free) -> slot 98.
  CHECK(mh.slots()[98] == 0);
  // 251 slots alternate between two servers: 126 and 125.
  int first = 0;
  for (dest_id s : mh.slots()) first += s == 0;
  CHECK(first == 126);
}

TEST_CASE("mh: big weight ratios are shifted to fit 6 bits (rshift)") {
  maglev_hashing mh;
  std::vector<real_server> d = {server("198.18.1.1:80", 1000, 1), server("198.18.1.2:80", 1, 2)};
  (void)mh.rebuild(d, {});
  // gcd 1, max 1000: fls(1000) = 10, rshift = 10 - 6 = 4; turns 1000 >> 4 = 62 and max(1 >> 4, 1)
  // = 1: 62 slots to 1 per pass, 4093 = 63 * 64 + 61 -> 64 passes: 3968 + 61 = 4029 and 64.
  int first = 0;
  for (dest_id s : mh.slots()) first += s == 0;
  CHECK(first == 4029);
}

TEST_CASE("mh: picks the slot of the client address; mh-port adds the source port") {
  auto d = list_432();
  maglev_hashing mh;
  (void)mh.rebuild(d, {});
  // Slot 3539 (see the vectors) belongs to position 0 (198.18.1.1) per the reference model.
  CHECK(mh.slots()[3539] == 0);
  CHECK(mh.pick(d, {tcp("198.18.0.85:12345", "198.19.0.100:80")}) == 0);
  CHECK(mh.pick(d, {tcp("198.18.0.85:999", "198.19.0.200:443")}) == 0);  // port, VIP ignored
  maglev_hashing port({.fallback = false, .port = true});
  (void)port.rebuild(d, {});
  // v = 12345 + 0xC6120055 = 0xC612308E; reference model: slot 1542, held by position 1
  // (198.18.1.2).
  CHECK(port.slots()[1542] == 1);
  CHECK(port.pick(d, {tcp("198.18.0.85:12345", "198.19.0.100:80")}) == 1);
  // Inverse header: destination address and destination port are the key.
  CHECK(port.pick(d, {tcp("198.19.0.100:80", "198.18.0.85:12345"), 0, true}) == 1);
  // No ports for ICMP: slot 3539 again.
  CHECK(port.pick(d, {flow(wire::ip_proto::icmp, "198.18.0.85:12345", "198.19.0.100:80")}) == 0);
}

TEST_CASE("mh: IPv6 servers and clients fold to 32 bits") {
  maglev_hashing mh;
  std::vector<real_server> d = {server("[fd00::3b12:101]:80", 1, 1)};
  // fold(fd00::3b12:101) = 0xfd000000 ^ 0 ^ 0 ^ 0x3b120101 = 0xC6120101: the permutation is that
  // of the v4 server 198.18.1.1:80 (the address was chosen to fold there).
  const auto p6 = maglev_hashing::permutation_of(ep("[fd00::3b12:101]:80"), 4093);
  const auto p4 = maglev_hashing::permutation_of(ep("198.18.1.1:80"), 4093);
  CHECK(p6.offset == p4.offset);
  CHECK(p6.skip == p4.skip);
  (void)mh.rebuild(d, {});
  const wire::flow_key f{wire::ip_proto::tcp, ep("[fd00::99]:1000"), ep("[fd00::100]:80")};
  CHECK(mh.pick(d, {f}) == 0);
}

TEST_CASE("mh: a quiesced server keeps its slots; only its clients change") {
  auto d = list_432();
  maglev_hashing plain, fallback({.fallback = true, .port = false});
  (void)plain.rebuild(d, {});
  (void)fallback.rebuild(d, {});
  const std::vector<dest_id> before(plain.slots().begin(), plain.slots().end());
  edit_weight(d[0], 0);  // ipvsadm -e -w 0: last_weight stays 4
  (void)plain.rebuild(d, {dest_change::kind::edited, 0});
  (void)fallback.rebuild(d, {dest_change::kind::edited, 0});
  CHECK(std::vector<dest_id>(plain.slots().begin(), plain.slots().end()) == before);
  // Client 198.18.0.85 -> slot 3539 -> position 0, now quiesced: refused without mh-fallback.
  const auto f = tcp("198.18.0.85:1", "198.19.0.100:80");
  CHECK(plain.pick(d, {f}) == no_dest);
  // mh-fallback: r = 3539 + o (reference model): o = 0: H(key1, client, 0, 3539) mod 4093 =
  // slot 1434 -> position 0, quiesced too, skipped; o = 1: H(key1, client, 0, 3540) mod 4093 =
  // slot 3002 -> position 2, usable.
  CHECK(fallback.slots()[3002] == 2);
  CHECK(fallback.pick(d, {f}) == 2);
  // Over 100 000 client addresses: exactly the quiesced server's clients change.
  std::size_t changed = 0, on_quiesced = 0;
  for (std::uint32_t n = 0; n < 100000; ++n) {
    const auto c = nth_client_address(n);
    const dest_id was = before[maglev_hashing::hash(maglev_hashing::key1, 0xC6120000u + n, 0, 0) %
                               4093];
    const dest_id now = fallback.pick(d, {c});
    if (was == 0) {
      ++on_quiesced;
      CHECK(now != 0);
      CHECK(plain.pick(d, {c}) == no_dest);
    } else {
      changed += now != was;
    }
  }
  CHECK(changed == 0);
  CHECK(on_quiesced > 40000);  // about 1820/4093 of the clients; the reference model counts 44776
}

TEST_CASE("mh-fallback: slots H(key1, client, port, (o + first) mod M) mod M are tried in turn") {
  // The rule, written out with the (vector-checked) hash: first usable server along the
  // sequence; an empty slot would end it.
  auto d = list_432();
  maglev_hashing mh({.fallback = true, .port = true});
  (void)mh.rebuild(d, {});
  d[0].overloaded = true;
  const std::uint32_t m = mh.table_size();
  for (std::uint32_t n = 0; n < 3000; ++n) {
    const auto c = nth_client(n);
    const std::uint32_t folded = 0xC6120000u + (n >> 4);
    const std::uint16_t port = c.src_port;
    const std::uint32_t first = maglev_hashing::hash(maglev_hashing::key1, folded, port, 0) % m;
    dest_id want = mh.slots()[first];
    for (std::uint32_t o = 0; want == 0 && o < m; ++o)
      want = mh.slots()[maglev_hashing::hash(maglev_hashing::key1, folded, port, (o + first) % m) % m];
    CHECK(mh.pick(d, {c}) == want);
  }
}

TEST_CASE("mh: overloaded servers are refused or skipped, never picked") {
  auto d = list_432();
  maglev_hashing plain, fallback({.fallback = true, .port = false});
  (void)plain.rebuild(d, {});
  (void)fallback.rebuild(d, {});
  d[0].overloaded = true;
  d[2].overloaded = true;
  for (std::uint32_t n = 0; n < 2000; ++n) {
    const auto c = nth_client_address(n);
    const dest_id p = plain.pick(d, {c});
    CHECK((p == no_dest || p == 1));
    CHECK(fallback.pick(d, {c}) == 1);
  }
}

TEST_CASE("mh: no destination for an empty service, all quiesced, all overloaded") {
  maglev_hashing mh({.fallback = true, .port = true});
  std::vector<real_server> none;
  CHECK(mh.rebuild(none, {}) == build_error::ok);
  CHECK(mh.pick(none, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
  auto d = list_432();
  SUBCASE("all quiesced (table kept from last_weight, every slot refused)") {
    for (auto& r : d) edit_weight(r, 0);
    (void)mh.rebuild(d, {dest_change::kind::edited, 0});
    CHECK(mh.pick(d, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
  }
  SUBCASE("all overloaded") {
    (void)mh.rebuild(d, {});
    for (auto& r : d) r.overloaded = true;
    CHECK(mh.pick(d, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
  }
  SUBCASE("added with weight 0: last_weight 0, no slots at all") {
    std::vector<real_server> zero = {server("198.18.1.1:80", 0, 1)};
    (void)mh.rebuild(zero, {});
    for (dest_id s : mh.slots()) CHECK(s == no_dest);
    CHECK(mh.pick(zero, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
  }
}

TEST_CASE("mh: more servers than slots is refused (the kernel's EINVAL)") {
  maglev_hashing mh({}, 8);  // 251 slots
  std::vector<real_server> d;
  for (std::uint32_t i = 0; i < 252; ++i) {
    real_server r;
    r.endpoint = {wire::ipv4_address::from_u32(0xC6120200u + i), 80};  // 198.18.2.0 + i
    r.handle = i;
    d.push_back(r);
  }
  CHECK(mh.rebuild(d, {}) == build_error::too_many_servers);
  CHECK(mh.pick(d, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
  d.pop_back();
  CHECK(mh.rebuild(d, {}) == build_error::ok);
  CHECK(mh.pick(d, {tcp("198.18.0.85:1", "198.19.0.100:80")}) != no_dest);
}

TEST_CASE("mh: removing one of N servers moves about 1/N of the clients") {
  // Bound (Maglev, NSDI'16 section 3.4: near-minimal disruption): every client of the removed
  // server moves (~1/N), and at most 2 % of all clients move between the remaining servers.
  // For this setup (198.18.1.1 .. 198.18.1.10, the fourth removed) the reference model measures
  // 1.1 % of the slots (43 of 4093) and, over these 100 000 clients, 9871 on the removed server
  // and 1111 moved between the others.
  constexpr std::uint32_t n = 10;
  std::vector<real_server> d;
  for (std::uint32_t i = 0; i < n; ++i) {
    real_server r;
    r.endpoint = {wire::ipv4_address::from_u32(0xC6120101u + i), 80};  // 198.18.1.1 + i
    r.handle = i;
    d.push_back(r);
  }
  maglev_hashing before, after;
  (void)before.rebuild(d, {});
  auto removed = d;
  removed.erase(removed.begin() + 3);
  (void)after.rebuild(removed, {dest_change::kind::removed, 3});
  std::size_t on_removed = 0, moved_others = 0;
  constexpr std::uint32_t keys = 100000;
  for (std::uint32_t k = 0; k < keys; ++k) {
    const auto c = nth_client_address(k);
    const dest_id b = before.pick(d, {c});
    const dest_id a = after.pick(removed, {c});
    REQUIRE(b != no_dest);
    REQUIRE(a != no_dest);
    if (b == 3) {
      ++on_removed;
    } else if (d[b].endpoint != removed[a].endpoint) {
      ++moved_others;
    }
  }
  CHECK(on_removed > keys / n / 2);
  CHECK(on_removed < keys / n * 2);
  CHECK(moved_others <= keys / 50);
}

}  // TEST_SUITE

TEST_CASE("real_server: a server built with only a weight hashes by that weight") {
  // Review finding: last_weight once defaulted to 1 whatever the weight, so
  // real_server{.weight = 4} built mh tables as weight 1. IPVS sets last_weight on add to the
  // weight given (even 0), so table_weight() follows weight until an edit quiesces the server.
  real_server r;
  r.weight = 4;
  CHECK(r.table_weight() == 4);
  r.set_weight(0);  // ipvsadm -e -w 0: keeps its share
  CHECK(r.weight == 0);
  CHECK(r.table_weight() == 4);
  r.set_weight(7);
  CHECK(r.table_weight() == 7);
  real_server added_quiesced;
  added_quiesced.weight = 0;  // ipvsadm -a ... -w 0: last_weight 0, no slots
  CHECK(added_quiesced.table_weight() == 0);
}
