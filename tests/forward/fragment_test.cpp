// IPv4 fragmentation (fragment.hpp): fragment boundaries at MTU 1280 and 1400 and at §0B's
// "largest fragment received" size (1432 -> 1408 data bytes), reassembly giving back the original
// bytes, the L2 header on every fragment, options per RFC 791 / ip_options_fragment, errors that
// write nothing, the rewriters' fragment action for DR and TUN, and tshark's reassembly. IPv6
// fragmentation (fragment_ipv6, for the outer packet of a tunnelled reassembled datagram): the
// unfragmentable part kept in every fragment, the fragment header's fields, tshark's reassembly.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "forward/forward_test_support.hpp"
#include "support/tshark.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/fragment.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;
using forward::forward_error;

namespace {

// Output buffers lent to the fragmenter: `n` spans of `size` bytes each, guard-filled.
struct outputs {
  std::vector<bytes> storage;
  std::vector<std::span<std::byte>> spans;
  outputs(std::size_t n, std::size_t size) : storage(n, bytes(size, guard_byte)) {
    for (auto& s : storage) spans.emplace_back(s);
  }
};

struct frag_info {
  std::size_t offset;  // bytes
  bool mf;
  std::size_t data_len;
};

// Checks every fragment's IPv4 header and puts the datagram back together (RFC 815 style, by
// offset): returns the reassembled IP packet (the first fragment's header, total length fixed).
bytes reassemble(std::span<const std::span<std::byte>> frags, std::size_t l2_len, std::vector<frag_info>& info) {
  bytes data;
  bytes header;
  std::size_t base = 0;  // the first fragment's offset (0 unless a fragment was fragmented again)
  for (const auto& f : frags) {
    auto p = wire::parse_ip(std::span<const std::byte>(f).subspan(l2_len));
    REQUIRE(p);
    CHECK(p->ipv4().verify_checksum());
    CHECK_FALSE(p->ipv4().dont_frag());
    const std::size_t hlen = p->ipv4().header_len();
    const std::size_t off = p->ipv4().frag_offset_bytes();
    const std::size_t len = p->l3_len() - hlen;
    info.push_back({off, p->ipv4().more_frags(), len});
    if (header.empty()) {
      header.assign(f.begin() + static_cast<std::ptrdiff_t>(l2_len), f.begin() + static_cast<std::ptrdiff_t>(l2_len + hlen));
      base = off;
    }
    REQUIRE(off >= base);
    if (data.size() < off - base + len) data.resize(off - base + len);
    std::memcpy(data.data() + off - base, f.data() + l2_len + hlen, len);
  }
  REQUIRE_FALSE(header.empty());
  bytes out = header;
  out.insert(out.end(), data.begin(), data.end());
  // The datagram's own header: whole length, no fragment fields (the originals here have none),
  // the checksum over that.
  const auto total = static_cast<std::uint16_t>(out.size());
  out[2] = std::byte(total >> 8);
  out[3] = std::byte(total & 0xFF);
  out[6] = out[7] = out[10] = out[11] = std::byte{0};
  const std::uint16_t sum = inet_checksum(std::span<const std::byte>(out).first(header.size()));
  out[10] = std::byte(sum >> 8);
  out[11] = std::byte(sum & 0xFF);
  return out;
}

bytes udp_frame(std::size_t ip_len, bool df = false, std::uint16_t vlan = 0) {
  packet_builder b;
  b.eth(real_mac, director_mac);
  if (vlan != 0) b.vlan(vlan, 2);
  return b.ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x7a7a, .dont_frag = df})
      .udp(5000, 53)
      .payload(ip_len - 28, 0x5c)
      .build();
}

bytes udp6_frame(std::size_t payload, bool hop_by_hop) {
  packet_builder b;
  b.eth(real_mac, director_mac).ipv6("fd00:198:18::2", "fd00:198:18::100");
  if (hop_by_hop) b.hop_by_hop(8);
  return b.udp(5000, 53).payload(payload, 0x5d).build();
}

std::size_t be16_at(std::span<const std::byte> f, std::size_t at) {
  return std::to_integer<std::size_t>(f[at]) << 8 | std::to_integer<std::size_t>(f[at + 1]);
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("fragment_ipv6: the unfragmentable part in every fragment, offsets, M, one ID") {
  const bytes in = udp6_frame(3000, true);  // IPv6 + 8-byte hop-by-hop + UDP 3008
  const std::size_t l3 = 14, unfrag = 48, data = 3008;
  outputs o(4, 1400);
  auto r = forward::fragment_ipv6(in, l3, 1280, 0xCAFE0001u, o.spans);
  REQUIRE(r);
  // (1280 - 48 - 8) & ~7 = 1224 data bytes per fragment: 1224, 1224, 560.
  REQUIRE(*r == 3);
  bytes joined;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto f = o.spans[i];
    const std::size_t len = std::min<std::size_t>(1224, data - i * 1224);
    REQUIRE(f.size() == l3 + unfrag + 8 + len);
    CHECK(std::equal(f.begin(), f.begin() + 14, in.begin()));              // the L2 header
    CHECK(be16_at(f, l3 + 4) == unfrag - 40 + 8 + len);                     // payload length
    CHECK(std::to_integer<int>(f[l3 + 6]) == 0);                             // hop-by-hop first
    CHECK(std::to_integer<int>(f[l3 + 40]) == 44);                           // it names the fragment header
    CHECK(std::to_integer<int>(f[l3 + unfrag]) == 17);                       // which names UDP
    CHECK(be16_at(f, l3 + unfrag + 2) == ((i * 1224) | (i < 2 ? 1u : 0u)));  // offset, M
    CHECK(be16_at(f, l3 + unfrag + 4) == 0xCAFE);
    CHECK(be16_at(f, l3 + unfrag + 6) == 0x0001);
    joined.insert(joined.end(), f.begin() + static_cast<long>(l3 + unfrag + 8), f.end());
  }
  CHECK(std::equal(joined.begin(), joined.end(), in.begin() + static_cast<long>(l3 + unfrag)));
  CHECK(o.storage[3][0] == guard_byte);  // nothing written past the fragments
}

TEST_CASE("fragment_ipv6: a packet that fits is copied whole; errors name the cause") {
  const bytes small = udp6_frame(100, false);
  outputs one(1, 400);
  auto r = forward::fragment_ipv6(small, 14, 1280, 1, one.spans);
  REQUIRE(r);
  CHECK(*r == 1);
  CHECK(bytes(one.spans[0].begin(), one.spans[0].end()) == small);
  const bytes big = udp6_frame(3000, false);
  outputs o(4, 1400);
  CHECK(forward::fragment_ipv6(big, 14, 50, 1, o.spans).error() == forward_error::mtu_too_small);
  CHECK(forward::fragment_ipv6(big, 14, 1280, 1, std::span(o.spans).first(2)).error() ==
        forward_error::fragment_buffers_too_small);
  CHECK(forward::fragment_ipv6(std::span(big).first(60), 14, 1280, 1, o.spans).error() == forward_error::truncated);
  CHECK(forward::fragment_ipv6(udp_frame(3000), 14, 1280, 1, o.spans).error() == forward_error::malformed);
  for (const auto& s : o.storage) CHECK(s[0] == guard_byte);  // nothing written on error
}

TEST_CASE("fragment_ipv4: boundaries at MTU 1280, 1400 and the largest-received-fragment size 1432") {
  struct geometry {
    std::size_t max_ip_len;
    std::size_t data_per_fragment;  // the largest multiple of 8 that fits after a 20-byte header
  };
  // 1280 - 20 = 1260 -> 1256; 1400 - 20 = 1380 -> 1376; 1432 - 20 = 1412 -> 1408 (ipvs-notes 0B:
  // "first payload = the largest multiple of 8 that fits in the biggest fragment received (1432
  // -> 1408 + the rest)").
  for (const geometry gm : {geometry{1280, 1256}, geometry{1400, 1376}, geometry{1432, 1408}}) {
    CAPTURE(gm.max_ip_len);
    const bytes in = udp_frame(3000, false, 100);  // Ethernet + one VLAN tag: 18 bytes of L2
    const std::size_t count = forward::ipv4_fragment_count(3000, 20, gm.max_ip_len);
    CHECK(count == (2980 + gm.data_per_fragment - 1) / gm.data_per_fragment);
    outputs o(count, 1600);
    auto r = forward::fragment_ipv4(in, 18, gm.max_ip_len, o.spans);
    REQUIRE(r);
    REQUIRE(*r == count);
    std::vector<frag_info> info;
    const bytes back = reassemble(std::span(o.spans).first(count), 18, info);
    CHECK(back == bytes(in.begin() + 18, in.end()));
    for (std::size_t i = 0; i < count; ++i) {
      CAPTURE(i);
      CHECK(info[i].offset == i * gm.data_per_fragment);
      CHECK(info[i].mf == (i + 1 < count));
      CHECK(info[i].data_len == (i + 1 < count ? gm.data_per_fragment : 2980 - i * gm.data_per_fragment));
      CHECK(o.spans[i].size() <= 18 + gm.max_ip_len);
      // The L2 header (MACs, tag, EtherType) on every fragment, and the ID of the original.
      CHECK(to_hex(o.spans[i].first(18)) == to_hex(std::span<const std::byte>(in).first(18)));
      CHECK(to_hex(o.spans[i].subspan(18 + 4, 2)) == "7a 7a");
    }
  }
  // Fits: copied as one frame.
  const bytes small = udp_frame(1000);
  outputs o(1, 1600);
  auto r = forward::fragment_ipv4(small, 14, 1280, o.spans);
  REQUIRE(r);
  CHECK(*r == 1);
  CHECK(to_bytes(o.spans[0]) == small);
}

TEST_CASE("fragment_ipv4: a fragment fragmented again keeps its offset base and last MF") {
  // The middle piece of a datagram: offset 1480, MF set, 2000 data bytes.
  const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.ident = 3, .more_frags = true, .frag_offset = 185})
                       .payload(2000, 0x11)
                       .build();
  outputs o(2, 1600);
  auto r = forward::fragment_ipv4(in, 14, 1280, o.spans);
  REQUIRE(r);
  REQUIRE(*r == 2);
  std::vector<frag_info> info;
  (void)reassemble(std::span(o.spans).first(2), 14, info);
  CHECK(info[0].offset == 1480);
  CHECK(info[0].mf);
  CHECK(info[1].offset == 1480 + 1256);
  CHECK(info[1].mf);  // the original's MF
}

TEST_CASE("fragment_ipv4: a fragment whose datagram would end past 65 535 bytes is refused, not wrapped") {
  // Found by rewrite_fuzz: offset 64 000 + 2000 data bytes. Split at 1280 its second piece would
  // need offset 65 256, which does not fit 13 bits of 8-byte units (8191 * 8 = 65 528 is the
  // last), and the datagram could never be reassembled (more than 65 535 bytes).
  const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.ident = 9, .more_frags = true, .frag_offset = 8000})
                       .payload(2000, 0x33)
                       .build();
  outputs o(4, 1600);
  auto r = forward::fragment_ipv4(in, 14, 1280, o.spans);
  REQUIRE_FALSE(r);
  CHECK(to_string(r.error()) == to_string(forward_error::malformed));
  for (const auto& s : o.storage) CHECK(s == bytes(1600, guard_byte));
  // The last offset that still fits: a datagram ending exactly at 65 535 bytes splits as before.
  const std::size_t units = (65535 - 20 - 2000) / 8;
  const bytes edge = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.ident = 9, .more_frags = true,
                                                                               .frag_offset = static_cast<std::uint16_t>(units)})
                         .payload(2000, 0x33)
                         .build();
  auto e = forward::fragment_ipv4(edge, 14, 1280, o.spans);
  REQUIRE(e);
  REQUIRE(*e == 2);
  std::vector<frag_info> info;
  const bytes back = reassemble(std::span(o.spans).first(2), 14, info);
  CHECK(info[0].offset == units * 8);
  CHECK(info[1].offset == units * 8 + 1256);
  CHECK(info[1].mf);
  CHECK(bytes(back.begin() + 20, back.end()) == bytes(edge.begin() + 34, edge.end()));
}

TEST_CASE("fragment_ipv4: options with the copy flag in every fragment, others only in the first") {
  // Router Alert (148 = copy flag | 20, RFC 2113) and Record Route (7, no copy flag, RFC 791)
  // with room for one address: 4 + 7 = 11 bytes, padded with End of Option List to 12.
  const bytes opts = hex_bytes("94 04 00 00 07 07 04 00 00 00 00");
  const bytes in = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100", {.options = opts}).udp(1, 2).payload(2000, 0x22).build();
  outputs o(3, 1600);
  auto r = forward::fragment_ipv4(in, 14, 1280, o.spans);
  REQUIRE(r);
  REQUIRE(*r == 2);
  // Header length stays 32 in every fragment (ip_options_fragment): 1280 - 32 = 1248 data bytes.
  CHECK(to_hex(o.spans[0].subspan(14 + 20, 12)) == "94 04 00 00 07 07 04 00 00 00 00 00");
  CHECK(to_hex(o.spans[1].subspan(14 + 20, 12)) == "94 04 00 00 01 01 01 01 01 01 01 00");
  std::vector<frag_info> info;
  const bytes back = reassemble(std::span(o.spans).first(2), 14, info);
  CHECK(info[0].data_len == 1248);
  CHECK(back == bytes(in.begin() + 14, in.end()));
}

TEST_CASE("fragment_ipv4: errors name the cause and write nothing") {
  const bytes in = udp_frame(3000);
  auto expect = [](expected<std::size_t, forward_error> r, forward_error want) {
    REQUIRE_FALSE(r);
    CHECK(to_string(r.error()) == to_string(want));
  };
  {
    outputs o(2, 1600);  // three needed
    expect(forward::fragment_ipv4(in, 14, 1400, o.spans), forward_error::fragment_buffers_too_small);
    for (const auto& s : o.storage) CHECK(s == bytes(1600, guard_byte));
  }
  {
    outputs o(3, 14 + 1396 - 1);  // one byte short for a full fragment
    expect(forward::fragment_ipv4(in, 14, 1400, o.spans), forward_error::fragment_buffers_too_small);
    for (const auto& s : o.storage) CHECK(s == bytes(14 + 1395, guard_byte));
  }
  outputs o(8, 1600);
  expect(forward::fragment_ipv4(udp_frame(3000, true), 14, 1400, o.spans), forward_error::not_fragmentable);
  const bytes v6 = packet_builder{}.eth().ipv6("fd00::2", "fd00::100").udp(1, 2).payload(3000).build();
  expect(forward::fragment_ipv4(v6, 14, 1400, o.spans), forward_error::not_fragmentable);
  expect(forward::fragment_ipv4(in, 14, 27, o.spans), forward_error::mtu_too_small);
  expect(forward::fragment_ipv4(std::span<const std::byte>(in).first(100), 14, 1400, o.spans), forward_error::truncated);
  bytes bad_ihl = in;
  bad_ihl[14] = std::byte{0x44};
  expect(forward::fragment_ipv4(bad_ihl, 14, 1400, o.spans), forward_error::malformed);
}

TEST_CASE("direct_route / tunnel_encapsulate: the fragment action, then fragment_forwarded") {
  // DR: the packet itself, TTL - 1, fragmented at the MTU with its own ID.
  const bytes in = packet_builder{}.eth(mac("02:00:c6:12:00:0a"), client_mac)
                       .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x0101})
                       .udp(5000, 53)
                       .payload(1472, 0x61)
                       .build();
  guarded_frame g(in, 64);
  auto pkt = wire::parse(g.buf.frame());
  forward::dr_config dc;
  dc.l2 = {director_mac, real_mac, {}};
  dc.mtu = 1280;
  auto r = forward::direct_route(g.buf, *pkt, dc);
  REQUIRE(r);
  REQUIRE(r->action == forward::forward_action::fragment);
  const bytes rewritten = to_bytes(r->frame);
  outputs o(4, 1600);
  auto n = forward::fragment_forwarded(*r, o.spans);
  REQUIRE(n);
  REQUIRE(*n == 2);
  CHECK(o.spans[0].size() == 14 + 1276);
  CHECK(o.spans[1].size() == 14 + 20 + 1480 - 1256);
  std::vector<frag_info> info;
  CHECK(reassemble(std::span(o.spans).first(2), 14, info) == bytes(rewritten.begin() + 14, rewritten.end()));
  CHECK(to_hex(o.spans[1].first(14)) == to_hex(std::span<const std::byte>(rewritten).first(14)));

  // TUN: the outer packet (DF 0, a generated ID) is fragmented at the route MTU.
  forward::ip_id_generator ids{3}, twin{3};
  forward::tunnel_config tc;
  tc.local = ip("198.18.0.254");
  tc.l2 = {director_mac, real_mac, {}};
  tc.mtu = 1400;
  tc.ip_ids = &ids;
  guarded_frame t(in, 64);
  auto tp = wire::parse(t.buf.frame());
  auto tr = forward::tunnel_encapsulate(t.buf, *tp, ip("198.18.0.11"), tc);
  REQUIRE(tr);
  REQUIRE(tr->action == forward::forward_action::fragment);
  CHECK(tr->mtu == 1400);
  const bytes outer = to_bytes(tr->frame);
  outputs o2(4, 1600);
  auto tn = forward::fragment_forwarded(*tr, o2.spans);
  if (!tn) MESSAGE(to_string(tn.error()));
  REQUIRE(tn);
  REQUIRE(*tn == 2);
  info.clear();
  CHECK(reassemble(std::span(o2.spans).first(2), 14, info) == bytes(outer.begin() + 14, outer.end()));
  const std::uint16_t id = twin.next(ip("198.18.0.254"), ip("198.18.0.11"), wire::ip_proto::ipip);
  for (std::size_t i = 0; i < 2; ++i) {
    auto f = wire::parse(std::span<const std::byte>(o2.spans[i]));
    REQUIRE(f);
    CHECK(f->ipv4().ident() == id);
    CHECK(f->ipv4().protocol() == wire::ip_proto::ipip);
  }
  CHECK(info[0].data_len == 1376);
  // 4in6 over the threshold without DF: l4lb fragments IPv4 only.
  tc.local = ip("fd00:198:18::fe");
  guarded_frame t6(in, 64);
  auto tp6 = wire::parse(t6.buf.frame());
  auto tr6 = forward::tunnel_encapsulate(t6.buf, *tp6, ip("fd00:198:18::11"), tc);
  REQUIRE_FALSE(tr6);
  CHECK(tr6.error() == forward_error::not_fragmentable);
}
}

// ---- tshark ------------------------------------------------------------------------------------

TEST_SUITE("forward") {
TEST_CASE("fragment_ipv4: tshark reassembles the fragments, every header checksum good") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: fragment check skipped");
    return;
  }
  const bytes in = udp_frame(4000);
  outputs o(4, 1600);
  auto r = forward::fragment_ipv4(in, 14, 1280, o.spans);
  REQUIRE(r);
  const auto rows = tshark_rows(std::span(o.spans).first(*r),
                                "-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -T fields -E separator='|'"
                                " -e ip.checksum.status -e ip.frag_offset -e udp.checksum.status -e udp.length");
  // 3980 data bytes at 1256 per fragment: offsets 0, 1256, 2512, 3768 (tshark shows 8-byte
  // units: 0, 157, 314, 471); the last frame carries the reassembled datagram, whose UDP checksum
  // (over all of it) is good.
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == "1|0||");
  CHECK(rows[1] == "1|157||");
  CHECK(rows[2] == "1|314||");
  CHECK(rows[3] == "1|471|1|3980");
}
TEST_CASE("fragment_ipv6: tshark reassembles the fragments, the UDP checksum good") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: fragment check skipped");
    return;
  }
  const bytes in = udp6_frame(4000, false);
  outputs o(4, 1600);
  auto r = forward::fragment_ipv6(in, 14, 1280, 0x1234, o.spans);
  REQUIRE(r);
  const auto rows = tshark_rows(std::span(o.spans).first(*r),
                                "-o udp.check_checksum:TRUE -T fields -E separator='|' -e ipv6.fraghdr.offset "
                                "-e ipv6.fraghdr.ident -e udp.checksum.status -e udp.length");
  // 4008 data bytes at 1232 per fragment: offsets 0, 1232, 2464, 3696 (tshark shows 8-byte
  // units: 0, 154, 308, 462); the last frame carries the reassembled datagram.
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == "0|0x00001234||");
  CHECK(rows[1] == "154|0x00001234||");
  CHECK(rows[2] == "308|0x00001234||");
  CHECK(rows[3] == "462|0x00001234|1|4008");
}
}
