// GUE and GRE header views (gue.hpp, gre.hpp) on untrusted bytes: what make() accepts has every
// byte its accessors read.
#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "l4lb/wire/gre.hpp"
#include "l4lb/wire/gue.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;

TEST_CASE("gue_view::make: a direct-IP (version 1) payload shorter than the 4-byte base header is truncated") {
  // Found by parse_fuzz: "6b 02 02" (first nibble 6, version 1) was accepted, and flags() then
  // read byte 3, past the end.
  for (const char* hex : {"6b", "6b 02", "6b 02 02", "45 00 00"}) {
    const std::vector<std::byte> b = hex_bytes(hex);
    auto v = basic_gue_view<const std::byte>::make(b);
    REQUIRE_FALSE(v);
    CHECK(v.error() == tunnel_header_error::truncated);
  }
  // Four bytes or more: accepted as direct IP, every accessor inside.
  const std::vector<std::byte> ip4 = hex_bytes("45 00 00 14");
  auto v = basic_gue_view<const std::byte>::make(ip4);
  REQUIRE(v);
  CHECK(v->is_direct_ip());
  CHECK(v->header_len_total() == 0);
  CHECK(v->payload().size() == 4);
  CHECK(v->flags() == 0x0014);
  // Version 2 and 3 stay bad_version, however short.
  const std::vector<std::byte> v2 = hex_bytes("80");
  auto bad = basic_gue_view<const std::byte>::make(v2);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == tunnel_header_error::bad_version);
}
