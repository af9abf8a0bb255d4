// IPVS's hash functions (hash_32, hsiphash, address folding) and the dh and sh schedulers.
// Expected values come from the kernel's rules, worked in the comments next to them; products
// like v * 0x61C88647 and every address-dependent pick are printed by the independent model
// tests/sched/ipvs_hash_oracle.py. Addresses: clients 198.18.0.x (main client 198.18.0.85),
// VIPs 198.19.0.x, real servers 198.18.1.x; IPv6 fd00::/8.
#include <array>
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include "hash_policy_fixtures.hpp"
#include "l4lb/sched/destination_hashing.hpp"
#include "l4lb/sched/ipvs_hash.hpp"
#include "l4lb/sched/source_hashing.hpp"

using namespace l4lb;
using namespace l4lb::sched;
using namespace l4lb::sched::fixtures;

TEST_SUITE("sched") {

// ---------------------------------------------------------------------------------------------
// hash_32, hsiphash, fold

TEST_CASE("ipvs hash_32: top bits of v * 0x61C88647 mod 2^32") {
  // 0xC6130002 (198.19.0.2) * 0x61C88647 = ...0xA4D60C8E (low 32 bits); top 8 bits 0xA4 = 164.
  CHECK(ipvs::hash_32(0xC6130002u, 8) == 164u);
  // 0xC6130003 (198.19.0.3) * 0x61C88647 -> 0x069E92D5: top 8 bits 0x06 = 6.
  CHECK(ipvs::hash_32(0xC6130003u, 8) == 6u);
  // 0xC6120055 (198.18.0.85) -> 0xD2929593: top 8 bits 0xD2 = 210; top 10 bits
  // 0xD2929593 >> 22 = 0b11'0100'1010 = 0x34A = 842.
  CHECK(ipvs::hash_32(0xC6120055u, 8) == 210u);
  CHECK(ipvs::hash_32(0xC6120055u, 10) == 842u);
  // 1 * 0x61C88647: 32 bits give the multiplier itself; 0 hashes to 0.
  CHECK(ipvs::hash_32(1u, 32) == 0x61C88647u);
  CHECK(ipvs::hash_32(0u, 8) == 0u);
}

// lib/siphash_kunit.c (64-bit kernels): hsiphash of the bytes 0, 1, ..., n-1 with the key
// {0x0706050403020100, 0x0f0e0d0c0b0a0908}, n = 0..63.
constexpr std::array<std::uint32_t, 64> kernel_hsiphash_vectors = {
    0x050fc4dcU, 0x7d57ca93U, 0x4dc7d44dU, 0xe7ddf7fbU, 0x88d38328U, 0x49533b67U, 0xc59f22a7U,
    0x9bb11140U, 0x8d299a8eU, 0x6c063de4U, 0x92ff097fU, 0xf94dc352U, 0x57b4d9a2U, 0x1229ffa7U,
    0xc0f95d34U, 0x2a519956U, 0x7d908b66U, 0x63dbd80cU, 0xb473e63eU, 0x8d297d1cU, 0xa6cce040U,
    0x2b45f844U, 0xa320872eU, 0xdae6c123U, 0x67349c8cU, 0x705b0979U, 0xca9913a5U, 0x4ade3b35U,
    0xef6cd00dU, 0x4ab1e1f4U, 0x43c5e663U, 0x8c21d1bcU, 0x16a7b60dU, 0x7a8ff9bfU, 0x1f2a753eU,
    0xbf186b91U, 0xada26206U, 0xa3c33057U, 0xae3a36a1U, 0x7b108392U, 0x99e41531U, 0x3f1ad944U,
    0xc8138825U, 0xc28949a6U, 0xfaf8876bU, 0x9f042196U, 0x68b1d623U, 0x8b5114fdU, 0xdf074c46U,
    0x12cc86b3U, 0x0a52098fU, 0x9d292f9aU, 0xa2f41f12U, 0x43a71ed0U, 0x73f0bce6U, 0x70a7e980U,
    0x243c6d75U, 0xfdb71513U, 0xa67d8a08U, 0xb7e8f148U, 0xf7a644eeU, 0x0f1837f2U, 0x4b6694e0U,
    0xb7bbb3a8U};

TEST_CASE("ipvs hsiphash: the kernel's 64-bit self-test vectors") {
  constexpr ipvs::hsiphash_key key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  std::array<std::uint8_t, 64> in{};
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<std::uint8_t>(i);
  for (std::size_t n = 0; n < 64; ++n) {
    CAPTURE(n);
    CHECK(ipvs::hsiphash(in.data(), n, key) == kernel_hsiphash_vectors[n]);
  }
  // The kernel also checks hsiphash_1u32(0x03020100) against the 4-byte vector: the same bytes.
  CHECK(ipvs::hsiphash_u32(0x03020100u, key) == kernel_hsiphash_vectors[4]);
  // And it is usable at compile time.
  static_assert(ipvs::hsiphash_u32(0x03020100u, key) == 0x88d38328U);
}

TEST_CASE("ipvs fold_address: IPv4 in host order, IPv6 as the XOR of its 32-bit words") {
  CHECK(ipvs::fold_address(addr("198.18.0.1")) == 0xC6120001u);
  // fd00::1 = words 0xfd000000, 0, 0, 0x00000001 -> 0xfd000001.
  CHECK(ipvs::fold_address(addr("fd00::1")) == 0xfd000001u);
  // Words that cancel: fd00:1:2:3:fd00:1:2:3 -> w0 ^ w1 ^ w0 ^ w1 = 0.
  CHECK(ipvs::fold_address(addr("fd00:1:2:3:fd00:1:2:3")) == 0u);
}

TEST_CASE("ipvs hash_flags: SCHED1 is fallback, SCHED2 is port") {
  CHECK(ipvs::hash_flags::from_svc_flags(0x08) == ipvs::hash_flags{true, false});
  CHECK(ipvs::hash_flags::from_svc_flags(0x10) == ipvs::hash_flags{false, true});
  CHECK(ipvs::hash_flags::from_svc_flags(0x18 | 0x01) == ipvs::hash_flags{true, true});
  CHECK(ipvs::hash_flags{true, true}.to_svc_flags() == 0x18u);
  CHECK(ipvs::hash_flags{}.to_svc_flags() == 0u);
}

TEST_CASE("ipvs client_key_of: source side, or destination side when inverse; ports only for TCP/UDP/SCTP") {
  const auto f = tcp("198.18.0.85:12345", "198.19.0.100:80");
  CHECK(ipvs::client_key_of(f, false, false).folded_address == 0xC6120055u);  // 198.18.0.85
  CHECK(ipvs::client_key_of(f, false, false).port == 0);
  CHECK(ipvs::client_key_of(f, false, true).port == 12345);
  CHECK(ipvs::client_key_of(f, true, true).folded_address == 0xC6130064u);  // 198.19.0.100
  CHECK(ipvs::client_key_of(f, true, true).port == 80);
  const auto icmp = flow(wire::ip_proto::icmp, "198.18.0.85:7", "198.19.0.100:9");
  CHECK(ipvs::client_key_of(icmp, false, true).port == 0);
  const auto sctp = flow(wire::ip_proto::sctp, "198.18.0.85:7", "198.19.0.100:9");
  CHECK(ipvs::client_key_of(sctp, false, true).port == 7);
}

// ---------------------------------------------------------------------------------------------
// dh

// Servers added A, B, C: IPVS's list is C, B, A (positions 0, 1, 2). dh's bucket i holds the
// server at position i mod 3 (weight ignored).
std::vector<real_server> dh_list() {
  return ipvs_list_after_adding({server("198.18.1.1:80", 1, 1), server("198.18.1.2:80", 5, 2),
                                 server("198.18.1.3:80", 2, 3)});
}

TEST_CASE("dh: bucket i holds list position i mod n, whatever the weights") {
  destination_hashing dh;
  const auto d = dh_list();
  CHECK(dh.rebuild(d, {dest_change::kind::init}) == build_error::ok);
  REQUIRE(dh.buckets().size() == 256);
  for (std::size_t i = 0; i < 256; ++i) CHECK(dh.buckets()[i] == i % 3);
}

TEST_CASE("dh: picks bucket hash_32(daddr, 8), the client does not matter") {
  destination_hashing dh;
  const auto d = dh_list();
  (void)dh.rebuild(d, {dest_change::kind::init});
  // VIP 198.19.0.2 -> bucket 164 (see hash_32 above); 164 mod 3 = 2 -> position 2 = 198.18.1.1 (A).
  CHECK(dh.pick(d, {tcp("198.18.0.85:1000", "198.19.0.2:80")}) == 2);
  CHECK(dh.pick(d, {tcp("198.18.7.9:2000", "198.19.0.2:443")}) == 2);
  // VIP 198.19.0.3 -> bucket 6; 6 mod 3 = 0 -> position 0 = 198.18.1.3 (C, the last added).
  CHECK(dh.pick(d, {tcp("198.18.0.85:1000", "198.19.0.3:80")}) == 0);
  // IPv6 destination fd00::1 folds to 0xfd000001 (see fold_address) -> * 0x61C88647 = 0x8CC88647
  // -> bucket 0x8C = 140; 140 mod 3 = 2 -> position 2.
  const wire::flow_key v6{wire::ip_proto::tcp, ep("[fd00::99]:1000"), ep("[fd00::1]:80")};
  CHECK(dh.pick(d, {v6}) == 2);
}

TEST_CASE("dh: add and delete rebuild; an edit does not (IPVS has no upd_dest hook for dh)") {
  destination_hashing dh;
  auto d = dh_list();
  (void)dh.rebuild(d, {dest_change::kind::init});
  // Add D: list D, C, B, A; bucket 164 mod 4 = 0 -> D; bucket 6 mod 4 = 2 -> B.
  d.insert(d.begin(), server("198.18.1.4:80", 1, 4));
  (void)dh.rebuild(d, {dest_change::kind::added, 0});
  CHECK(dh.pick(d, {tcp("198.18.0.85:1", "198.19.0.2:80")}) == 0);
  CHECK(dh.pick(d, {tcp("198.18.0.85:1", "198.19.0.3:80")}) == 2);
  // Edit B's weight: the table stays; bucket 6 still maps to position 2.
  edit_weight(d[2], 9);
  (void)dh.rebuild(d, {dest_change::kind::edited, 2});
  CHECK(dh.pick(d, {tcp("198.18.0.85:1", "198.19.0.3:80")}) == 2);
  // Delete D (position 0): back to C, B, A and i mod 3.
  d.erase(d.begin());
  (void)dh.rebuild(d, {dest_change::kind::removed, 0});
  CHECK(dh.pick(d, {tcp("198.18.0.85:1", "198.19.0.2:80")}) == 2);
}

TEST_CASE("dh: a quiesced, overloaded or unavailable bucket server means no destination") {
  destination_hashing dh;
  auto d = dh_list();
  (void)dh.rebuild(d, {dest_change::kind::init});
  const auto f = tcp("198.18.0.85:1000", "198.19.0.2:80");  // bucket 164 -> position 2
  SUBCASE("weight 0") {
    edit_weight(d[2], 0);
    (void)dh.rebuild(d, {dest_change::kind::edited, 2});
    CHECK(dh.pick(d, {f}) == no_dest);
  }
  SUBCASE("overloaded") {
    d[2].overloaded = true;
    CHECK(dh.pick(d, {f}) == no_dest);
  }
  SUBCASE("not available") {
    d[2].available = false;
    CHECK(dh.pick(d, {f}) == no_dest);
  }
  // Other destinations are unaffected: 198.19.0.3 -> position 0.
  CHECK(dh.pick(d, {tcp("198.18.0.85:1000", "198.19.0.3:80")}) == 0);
}

TEST_CASE("dh: empty service, list changed without rebuild, bad table size") {
  destination_hashing dh;
  std::vector<real_server> none;
  (void)dh.rebuild(none, {dest_change::kind::init});
  CHECK(dh.pick(none, {tcp("198.18.0.85:1", "198.19.0.2:80")}) == no_dest);
  // Table built for 3 servers, then handed 2: never reads past the span.
  auto d = dh_list();
  (void)dh.rebuild(d, {dest_change::kind::init});
  d.pop_back();
  CHECK(dh.pick(d, {tcp("198.18.0.85:1", "198.19.0.2:80")}) == no_dest);  // bucket -> position 2
  destination_hashing bad(0);
  CHECK(bad.rebuild(d, {}) == build_error::bad_option);
  CHECK(bad.pick(d, {tcp("198.18.0.85:1", "198.19.0.2:80")}) == no_dest);
}

// ---------------------------------------------------------------------------------------------
// sh

// List order A(4), B(3), C(2): each round gives AAAABBBCC (9 buckets), so bucket b belongs to
// A when b mod 9 is 0..3, B for 4..6, C for 7..8. 256 = 28 * 9 + 4: A 116, B 84, C 56.
std::vector<real_server> sh_list() {
  return {server("198.18.1.1:80", 4, 1), server("198.18.1.2:80", 3, 2),
          server("198.18.1.3:80", 2, 3)};
}

TEST_CASE("sh: each server takes `weight` consecutive buckets per round") {
  source_hashing sh;
  const auto d = sh_list();
  (void)sh.rebuild(d, {dest_change::kind::init});
  std::array<int, 3> count{};
  for (std::size_t b = 0; b < 256; ++b) {
    const std::size_t in_round = b % 9;
    const dest_id want = in_round < 4 ? 0 : in_round < 7 ? 1 : 2;
    CHECK(sh.buckets()[b] == want);
    ++count[sh.buckets()[b]];
  }
  CHECK(count == std::array<int, 3>{116, 84, 56});
}

TEST_CASE("sh: a weight-0 server still takes one bucket per round") {
  source_hashing sh;
  auto d = sh_list();
  edit_weight(d[0], 0);  // A quiesced: rounds are A BBB CC (6 buckets); 256 = 42 * 6 + 4
  (void)sh.rebuild(d, {dest_change::kind::edited, 0});
  std::array<int, 3> count{};
  for (dest_id b : sh.buckets()) ++count[b];
  CHECK(count == std::array<int, 3>{43, 129, 84});
}

TEST_CASE("sh: the client address picks the bucket; sh-port adds the port") {
  const auto d = sh_list();
  source_hashing plain;
  (void)plain.rebuild(d, {});
  // 198.18.0.85 -> bucket 210 (see hash_32 above); 210 mod 9 = 3 -> A.
  CHECK(plain.pick(d, {tcp("198.18.0.85:12345", "198.19.0.100:80")}) == 0);
  // 198.18.0.1 = 0xC6120001: * 0x61C88647 = 0xBCC68647 -> bucket 0xBC = 188; 188 mod 9 = 8 -> C.
  // Destination and ports do not matter.
  CHECK(plain.pick(d, {tcp("198.18.0.1:1", "198.19.0.100:80")}) == 2);
  CHECK(plain.pick(d, {tcp("198.18.0.1:2", "198.19.9.9:443")}) == 2);

  source_hashing with_port({.fallback = false, .port = true});
  (void)with_port.rebuild(d, {});
  // 0xC6120055 + 12345 (0x3039) = 0xC612308E -> * 0x61C88647 = 0x3165CB62 -> bucket 0x31 = 49;
  // 49 mod 9 = 4 -> B.
  CHECK(with_port.pick(d, {tcp("198.18.0.85:12345", "198.19.0.100:80")}) == 1);
  // ICMP has no ports: port 0 -> bucket 210 -> A.
  const auto icmp = flow(wire::ip_proto::icmp, "198.18.0.85:12345", "198.19.0.100:80");
  CHECK(with_port.pick(d, {icmp}) == 0);
  // Inverse (ICMP-quoted) header: the quote's destination and destination port are hashed.
  CHECK(with_port.pick(d, {tcp("198.19.0.100:80", "198.18.0.85:12345"), 0, true}) == 1);
}

TEST_CASE("sh: quiesced or overloaded bucket server without sh-fallback -> no destination") {
  auto d = sh_list();
  source_hashing sh;
  const auto f = tcp("198.18.0.85:12345", "198.19.0.100:80");  // bucket 210 -> A
  d[0].overloaded = true;
  (void)sh.rebuild(d, {});
  CHECK(sh.pick(d, {f}) == no_dest);
  // Other clients keep their server: 198.18.0.1 -> C.
  CHECK(sh.pick(d, {tcp("198.18.0.1:1", "198.19.0.100:80")}) == 2);
}

TEST_CASE("sh-fallback: buckets (2 * key + o) mod 256 are tried in turn") {
  auto d = sh_list();
  source_hashing sh({.fallback = true, .port = false});
  const auto f = tcp("198.18.0.85:12345", "198.19.0.100:80");  // key = 210
  SUBCASE("overloaded A: table unchanged") {
    d[0].overloaded = true;
    (void)sh.rebuild(d, {});
    // o = 0: bucket (210 + 210) mod 256 = 164, 164 mod 9 = 2 -> A (overloaded);
    // o = 1: 165 mod 9 = 3 -> A; o = 2: 166 mod 9 = 4 -> B.
    CHECK(sh.pick(d, {f}) == 1);
  }
  SUBCASE("quiesced A: table rebuilt as A BBB CC") {
    edit_weight(d[0], 0);
    (void)sh.rebuild(d, {dest_change::kind::edited, 0});
    // Bucket 210: 210 mod 6 = 0 -> A (weight 0). o = 0: bucket 164, 164 mod 6 = 2 -> B.
    CHECK(sh.pick(d, {f}) == 1);
  }
  SUBCASE("overloaded C, sh-port: the probes start at 2 * key, not at key") {
    source_hashing with_port({.fallback = true, .port = true});
    d[2].overloaded = true;
    (void)with_port.rebuild(d, {});
    // 0xC6120055 + 80 = 0xC61200A5 -> 0x613C8BC3 -> key 0x61 = 97; 97 mod 9 = 7 -> C (overloaded).
    // o = 0: bucket (97 + 97) mod 256 = 194, 194 mod 9 = 5 -> B. (Probes from the key would go
    // 97 C, 98 C, 99 mod 9 = 0 -> A.)
    CHECK(with_port.pick(d, {tcp("198.18.0.85:80", "198.19.0.100:80")}) == 1);
  }
  SUBCASE("everything overloaded: the search ends with no destination") {
    for (auto& r : d) r.overloaded = true;
    (void)sh.rebuild(d, {});
    CHECK(sh.pick(d, {f}) == no_dest);
  }
}

TEST_CASE("sh: same answer before and after an unrelated change only where IPVS keeps it") {
  auto d = sh_list();
  source_hashing sh;
  (void)sh.rebuild(d, {});
  const auto f = tcp("198.18.0.85:12345", "198.19.0.100:80");  // bucket 210 -> A
  // Thresholds or overload of another server: the table is not touched.
  d[2].upper_threshold = 10;
  (void)sh.rebuild(d, {dest_change::kind::edited, 2});
  d[1].overloaded = true;
  CHECK(sh.pick(d, {f}) == 0);
  // A weight change of C rebuilds: rounds AAAABBBC (8): 210 mod 8 = 2 -> still A, but
  // 198.18.0.1 (bucket 188: 188 mod 8 = 4 -> B) moved away from C (188 mod 9 = 8 -> C before).
  edit_weight(d[2], 1);
  (void)sh.rebuild(d, {dest_change::kind::edited, 2});
  CHECK(sh.pick(d, {f}) == 0);
  d[1].overloaded = false;
  CHECK(sh.pick(d, {tcp("198.18.0.1:1", "198.19.0.100:80")}) == 1);
}

TEST_CASE("sh: empty service, bad table size, smaller tables") {
  source_hashing sh({.fallback = true, .port = true});
  std::vector<real_server> none;
  (void)sh.rebuild(none, {});
  CHECK(sh.pick(none, {tcp("198.18.0.85:1", "198.19.0.100:80")}) == no_dest);
  source_hashing bad({}, 21);
  CHECK(bad.rebuild(none, {}) == build_error::bad_option);
  // 4 buckets (bits 2): AAAA for weights 4,3,2 -> every client goes to A.
  source_hashing small({}, 2);
  const auto d = sh_list();
  (void)small.rebuild(d, {});
  for (dest_id b : small.buckets()) CHECK(b == 0);
  CHECK(small.pick(d, {tcp("198.18.0.1:1", "198.19.0.100:80")}) == 0);
}

}  // TEST_SUITE
