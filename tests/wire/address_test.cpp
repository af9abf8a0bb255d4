#include <doctest/doctest.h>

#include <unordered_set>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

using namespace l4lb::wire;

TEST_SUITE("wire") {
TEST_CASE("ipv4_address: parse and format round trip") {
  auto a = ipv4_address::parse("198.18.0.1");
  REQUIRE(a);
  CHECK(a->to_u32() == 0xC6120001u);
  CHECK(a->to_string() == "198.18.0.1");
  CHECK(ipv4_address::from_u32(0xC6120001u) == *a);
  CHECK(ipv4_address::parse("0.0.0.0")->is_unspecified());
  CHECK(ipv4_address::parse("255.255.255.255")->to_u32() == 0xFFFFFFFFu);
}

TEST_CASE("ipv4_address: bad text gives a named error") {
  struct bad { const char* text; address_error why; };
  const bad cases[] = {
      {"", address_error::empty},
      {"198.18.0", address_error::wrong_ipv4_part_count},
      {"198.18.0.1.2", address_error::wrong_ipv4_part_count},
      {"198.18.0.256", address_error::bad_ipv4_octet},
      {"198.18.00.1", address_error::bad_ipv4_octet},
      {"198.18..1", address_error::bad_ipv4_octet},
      {"198.18.0.1 ", address_error::bad_character},
      {"198.18.0.x", address_error::bad_character},
      {"-1.18.0.1", address_error::bad_character},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto r = ipv4_address::parse(c.text);
    REQUIRE_FALSE(r);
    CHECK(r.error() == c.why);
    CHECK(!to_string(r.error()).empty());
  }
}

TEST_CASE("ipv6_address: parse forms of RFC 4291 and format as RFC 5952") {
  struct good { const char* text; const char* canonical; };
  const good cases[] = {
      {"fd00::1", "fd00::1"},
      {"FD00:0:0:0:0:0:0:1", "fd00::1"},
      {"::", "::"},
      {"::1", "::1"},
      {"fd00::", "fd00::"},
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},    // first of equal runs
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"}, // a single zero group is not compressed
      {"fd00:198:18::100", "fd00:198:18::100"},
      {"::ffff:198.18.0.1", "::ffff:198.18.0.1"},
      {"fd00::198.18.0.1", "fd00::c612:1"},
      {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
      {"0001:0002::0008", "1:2::8"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto a = ipv6_address::parse(c.text);
    REQUIRE(a);
    CHECK(a->to_string() == c.canonical);
    auto again = ipv6_address::parse(a->to_string());
    REQUIRE(again);
    CHECK(*again == *a);
  }
  auto a = ipv6_address::parse("fd00:198:18::100");
  CHECK(a->group(0) == 0xfd00);
  CHECK(a->group(7) == 0x0100);
  CHECK(a->word(0) == 0xfd000198u);
}

TEST_CASE("ipv6_address: bad text gives a named error") {
  struct bad { const char* text; address_error why; };
  const bad cases[] = {
      {"", address_error::empty},
      {"fd00::1::2", address_error::multiple_double_colon},
      {"fd00:12345::1", address_error::bad_ipv6_group},
      {"1:2:3:4:5:6:7", address_error::wrong_ipv6_group_count},
      {"1:2:3:4:5:6:7:8:9", address_error::wrong_ipv6_group_count},
      {"1:2:3:4::5:6:7:8", address_error::wrong_ipv6_group_count},
      {":1::", address_error::bad_ipv6_group},
      {"1:", address_error::bad_ipv6_group},
      {"fd00::g", address_error::bad_character},
      {"fd00::1%eth0", address_error::bad_character},
      {"::198.18.0.256", address_error::bad_ipv4_octet},
      {"1:2:3:4:5:6:7:198.18.0.1", address_error::wrong_ipv6_group_count},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto r = ipv6_address::parse(c.text);
    REQUIRE_FALSE(r);
    CHECK(r.error() == c.why);
  }
}

TEST_CASE("endpoint: both families parse, format and reject bad ports") {
  auto v4 = endpoint::parse("198.18.0.1:80");
  REQUIRE(v4);
  CHECK(v4->address.is_v4());
  CHECK(v4->port == 80);
  CHECK(v4->to_string() == "198.18.0.1:80");
  auto v6 = endpoint::parse("[fd00::1]:65535");
  REQUIRE(v6);
  CHECK(v6->address.is_v6());
  CHECK(v6->port == 65535);
  CHECK(v6->to_string() == "[fd00::1]:65535");
  CHECK(endpoint::parse("198.18.0.1").error() == address_error::missing_port);
  CHECK(endpoint::parse("198.18.0.1:").error() == address_error::missing_port);
  CHECK(endpoint::parse("198.18.0.1:65536").error() == address_error::bad_port);
  CHECK(endpoint::parse("198.18.0.1:08").error() == address_error::bad_port);
  CHECK(endpoint::parse("198.18.0.1:8a").error() == address_error::bad_port);
  CHECK(endpoint::parse("[fd00::1").error() == address_error::missing_bracket);
  CHECK(endpoint::parse("fd00::1:80").error() == address_error::missing_bracket);
  CHECK(endpoint::parse("[fd00::1]80").error() == address_error::missing_port);
  CHECK(endpoint::parse("[198.18.0.1]:80").error() == address_error::wrong_ipv6_group_count);
}

TEST_CASE("ip_address: family, ordering, fold and hashing") {
  auto a = *ip_address::parse("198.18.0.1");
  auto b = *ip_address::parse("fd00::1");
  CHECK(a.is_v4());
  CHECK(b.is_v6());
  CHECK(a < b);
  CHECK(a.ipvs_fold() == 0xC6120001u);
  CHECK(b.ipvs_fold() == (0xfd000000u ^ 0u ^ 0u ^ 1u));
  // v4 198.18.0.1 and v6 c612:1:: share their first bytes but are different addresses.
  auto c = *ip_address::parse("c612:1::");
  CHECK(a != c);
  std::unordered_set<ip_address> set{a, b, c, a};
  CHECK(set.size() == 3);
}

TEST_CASE("flow_key: reverse, hash and symmetric hash") {
  flow_key k(ip_proto::tcp, *endpoint::parse("198.18.0.2:40000"),
             *endpoint::parse("198.18.0.100:80"));
  CHECK(k.to_string() == "tcp 198.18.0.2:40000 -> 198.18.0.100:80");
  auto r = k.reversed();
  CHECK(r.src() == *endpoint::parse("198.18.0.100:80"));
  CHECK(r.reversed() == k);
  CHECK(k.hash() != r.hash());
  CHECK(k.symmetric_hash() == r.symmetric_hash());
  CHECK(k.symmetric_hash(7) == r.symmetric_hash(7));
  flow_key k6(ip_proto::udp, *endpoint::parse("[fd00:198:18::3]:5353"),
              *endpoint::parse("[fd00:198:18::100]:53"));
  CHECK(k6.symmetric_hash() == k6.reversed().symmetric_hash());
  CHECK(k6.hash() != k.hash());
  // Hash quality smoke check: 100k flows differing in one port give distinct 64-bit hashes.
  std::unordered_set<std::uint64_t> seen;
  for (std::uint32_t p = 0; p < 100000; ++p) {
    flow_key f = k;
    f.src_port = static_cast<std::uint16_t>(p);
    f.dst_port = static_cast<std::uint16_t>(p >> 16);
    seen.insert(f.hash());
  }
  CHECK(seen.size() == 100000);
}
}
