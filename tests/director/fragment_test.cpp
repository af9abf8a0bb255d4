// IPv4 and IPv6 fragments through the director: held until the datagram is complete, then sent
// as the kernel sends them (ipvs-notes 0B): DR keeps every fragment's boundaries, in offset
// order; NAT rewrites the destination in all of them and the port and whole-datagram L4 checksum
// in the first (refragmenting when the first did not hold the L4 header); TUN encapsulates the
// whole datagram and fragments the outer packet; IPv6 fragments leave with a new identification.
// Duplicates, overlaps, timeouts (30 s IPv4, 60 s IPv6) and a full pool.
#include <doctest/doctest.h>

#include "director/director_support.hpp"
#include "support/tshark.hpp"

using namespace director_test;

namespace {
const service_key dns = service_key::udp(ep("198.18.0.100:53"));

/// Cuts an Ethernet + IPv4 frame (no options) into fragments of `step` payload bytes (a
/// multiple of 8), with correct headers.
std::vector<bytes> cut(const bytes& whole, std::size_t step, std::size_t first_step = 0) {
  const std::size_t l2 = 14, h = 20;
  const std::size_t total = (std::to_integer<std::size_t>(whole[l2 + 2]) << 8) | std::to_integer<std::size_t>(whole[l2 + 3]);
  const std::size_t payload = total - h;
  std::vector<bytes> out;
  for (std::size_t at = 0; at < payload;) {
    const std::size_t take = std::min(payload - at, at == 0 && first_step ? first_step : step);
    bytes f(whole.begin(), whole.begin() + static_cast<long>(l2 + h));
    f.insert(f.end(), whole.begin() + static_cast<long>(l2 + h + at), whole.begin() + static_cast<long>(l2 + h + at + take));
    const std::size_t len = h + take;
    f[l2 + 2] = std::byte(static_cast<std::uint8_t>(len >> 8));
    f[l2 + 3] = std::byte(static_cast<std::uint8_t>(len));
    const std::size_t units = at / 8;
    const bool more = at + take < payload;
    f[l2 + 6] = std::byte(static_cast<std::uint8_t>((more ? 0x20 : 0) | (units >> 8)));
    f[l2 + 7] = std::byte(static_cast<std::uint8_t>(units));
    f[l2 + 10] = f[l2 + 11] = std::byte{0};
    const auto c = l4lb::test::inet_checksum(std::span(f).subspan(l2, h));
    f[l2 + 10] = std::byte(static_cast<std::uint8_t>(c >> 8));
    f[l2 + 11] = std::byte(static_cast<std::uint8_t>(c));
    out.push_back(std::move(f));
    at += take;
  }
  return out;
}

/// Puts fragments (Ethernet + IPv4) back together into one frame, for checking.
bytes join(std::span<const std::span<std::byte>> frags) {
  const std::size_t l2 = 14;
  bytes out(frags[0].begin(), frags[0].begin() + l2 + 20);
  std::size_t total = 20;
  std::vector<std::pair<std::size_t, bytes>> parts;
  for (const auto& f : frags) {
    const std::size_t h = (std::to_integer<std::size_t>(f[l2]) & 0xF) * 4;
    const std::size_t len = (std::to_integer<std::size_t>(f[l2 + 2]) << 8) | std::to_integer<std::size_t>(f[l2 + 3]);
    const std::size_t off = (((std::to_integer<std::size_t>(f[l2 + 6]) & 0x1F) << 8) | std::to_integer<std::size_t>(f[l2 + 7])) * 8;
    parts.emplace_back(off, bytes(f.begin() + static_cast<long>(l2 + h), f.begin() + static_cast<long>(l2 + len)));
    total = std::max(total, 20 + off + len - h);
  }
  out.resize(l2 + total);
  for (const auto& [off, b] : parts) std::copy(b.begin(), b.end(), out.begin() + static_cast<long>(l2 + 20 + off));
  out[l2 + 2] = std::byte(static_cast<std::uint8_t>(total >> 8));
  out[l2 + 3] = std::byte(static_cast<std::uint8_t>(total));
  out[l2 + 6] = out[l2 + 7] = std::byte{0};
  out[l2 + 10] = out[l2 + 11] = std::byte{0};
  const auto c = l4lb::test::inet_checksum(std::span(out).subspan(l2, 20));
  out[l2 + 10] = std::byte(static_cast<std::uint8_t>(c >> 8));
  out[l2 + 11] = std::byte(static_cast<std::uint8_t>(c));
  return out;
}

bytes big_udp(std::uint16_t sport, std::size_t payload, std::uint16_t id = 0x1234) {
  return packet_builder{}.eth(director_mac, client_router_mac)
      .ipv4("198.18.1.10", "198.18.0.100", {.ident = id})
      .udp(sport, 53)
      .payload(payload, 0x5a)
      .build();
}

std::size_t frag_offset(std::span<const std::byte> f) {
  return (((std::to_integer<std::size_t>(f[20]) & 0x1F) << 8) | std::to_integer<std::size_t>(f[21])) * 8;
}

// IPv6: Ethernet + IPv6 (no extension headers) cut into fragments with a fragment header after
// the IPv6 header, and put back together for checking.
const service_key dns6 = service_key::udp(ep("[fd00:198:18::100]:53"));
constexpr std::size_t l2_6 = 14, fh6 = l2_6 + 40;  // where the fragment header sits

std::size_t frag_be16(std::span<const std::byte> f, std::size_t at) {
  return std::to_integer<std::size_t>(f[at]) << 8 | std::to_integer<std::size_t>(f[at + 1]);
}
std::uint32_t frag_be32(std::span<const std::byte> f, std::size_t at) {
  return static_cast<std::uint32_t>(frag_be16(f, at) << 16 | frag_be16(f, at + 2));
}
void frag_put16(bytes& f, std::size_t at, std::size_t v) {
  f[at] = std::byte(static_cast<std::uint8_t>(v >> 8));
  f[at + 1] = std::byte(static_cast<std::uint8_t>(v));
}

std::vector<bytes> cut6(const bytes& whole, std::size_t step, std::uint32_t ident, std::size_t first_step = 0) {
  const std::size_t payload = frag_be16(whole, l2_6 + 4);
  const std::byte next = whole[l2_6 + 6];
  std::vector<bytes> out;
  for (std::size_t at = 0; at < payload;) {
    const std::size_t take = std::min(payload - at, at == 0 && first_step ? first_step : step);
    bytes f(whole.begin(), whole.begin() + static_cast<long>(fh6));
    f[l2_6 + 6] = std::byte{44};
    frag_put16(f, l2_6 + 4, 8 + take);
    f.resize(fh6 + 8);
    f[fh6] = next;
    frag_put16(f, fh6 + 2, at | (at + take < payload ? 1u : 0u));
    for (std::size_t i = 0; i < 4; ++i) f[fh6 + 4 + i] = std::byte(static_cast<std::uint8_t>(ident >> (24 - 8 * i)));
    f.insert(f.end(), whole.begin() + static_cast<long>(fh6 + at), whole.begin() + static_cast<long>(fh6 + at + take));
    out.push_back(std::move(f));
    at += take;
  }
  return out;
}

bytes join6(std::span<const std::span<std::byte>> frags) {
  bytes out(frags[0].begin(), frags[0].begin() + static_cast<long>(fh6));
  out[l2_6 + 6] = frags[0][fh6];
  for (const auto& f : frags) {
    const std::size_t off = frag_be16(f, fh6 + 2) & ~std::size_t{7};
    const std::size_t len = frag_be16(f, l2_6 + 4) - 8;
    if (out.size() < fh6 + off + len) out.resize(fh6 + off + len);
    std::copy(f.begin() + static_cast<long>(fh6 + 8), f.begin() + static_cast<long>(fh6 + 8 + len),
              out.begin() + static_cast<long>(fh6 + off));
  }
  frag_put16(out, l2_6 + 4, out.size() - fh6);
  return out;
}

bytes big_udp6(std::uint16_t sport, std::size_t payload) {
  return packet_builder{}.eth(director_mac, client_router_mac)
      .ipv6("fd00:198:18:1::10", "fd00:198:18::100")
      .udp(sport, 53)
      .payload(payload, 0x6b)
      .build();
}
}  // namespace

TEST_SUITE("director") {
TEST_CASE("fragments, DR: held until complete, then sent as received, in offset order") {
  lab l;
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  const bytes whole = big_udp(5000, 3000);  // UDP 3008 bytes: fragments of 800
  auto frags = cut(whole, 800);
  REQUIRE(frags.size() == 4);
  // Last fragment first (0B's case), then the middle ones, the first last.
  const int order[] = {3, 1, 2, 0};
  verdict v;
  for (int i = 0; i < 4; ++i) {
    v = l.send(frags[static_cast<std::size_t>(order[i])], sec);
    if (i < 3) CHECK(v.kind == verdict_kind::queued);
  }
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& f = v.frames[i];
    CHECK(frag_offset(f) == i * 800);
    CHECK(f.size() == frags[i].size());
    CHECK(eth_dst(f) == mac_of(ip("198.18.0.12")));
    CHECK(std::to_integer<int>(f[22]) == 63);                 // TTL - 1
    CHECK(std::to_integer<int>(f[18]) == 0x12);               // ID kept
    CHECK(l4lb::test::inet_checksum(f.subspan(14, 20)) == 0);  // header checksum valid
    CHECK(std::equal(f.begin() + 34, f.end(), frags[i].begin() + 34));  // payload as received
  }
  // IPVS counted one datagram with its reassembled length.
  const auto st = l.control.service_stats(l.control.config().find(dns)->id);
  CHECK(st.stats.in_packets == 1);
  CHECK(st.stats.in_bytes == whole.size() - 14);
  CHECK(l.d->verdicts().queued == 3);
}

TEST_CASE("fragments: a duplicate is dropped alone; an overlap drops the datagram") {
  lab l;
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  l.must(add_dest{dns, server("198.18.0.13:53")});
  auto frags = cut(big_udp(5001, 3000, 0x2222), 800);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[1], sec).reason() == "fragment_duplicate");
  // An overlapping fragment: offset 400 (units 50), 800 bytes.
  bytes bad = frags[1];
  bad[20] = std::byte{0x20};
  bad[21] = std::byte{50};
  bad[24] = bad[25] = std::byte{0};
  const auto c = l4lb::test::inet_checksum(std::span(bad).subspan(14, 20));
  bad[24] = std::byte(static_cast<std::uint8_t>(c >> 8));
  bad[25] = std::byte(static_cast<std::uint8_t>(c));
  CHECK(l.send(bad, sec).reason() == "fragment_overlap");
  // The rest of the datagram now starts a new queue that never completes: nothing is sent, no
  // connection, and rr has not advanced (the next datagram goes to the first pick, .13).
  CHECK(l.send(frags[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[2], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[3], sec).kind == verdict_kind::queued);
  CHECK(l.control.connections(sec).empty());
  const verdict next = l.send(udp4("198.18.1.11", 9, "198.18.0.100", 53), sec);
  CHECK(eth_dst(next.frame) == mac_of(ip("198.18.0.13")));
}

TEST_CASE("fragments, NAT: destination in every fragment, port and L4 checksum in the first") {
  lab l;
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:5353", forward_method::masq)});
  auto frags = cut(big_udp(5002, 2000, 0x3333), 1480);
  REQUIRE(frags.size() == 2);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  const verdict v = l.send(frags[0], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 2);
  for (const auto& f : v.frames) {
    CHECK(ipv4_dst(f) == "198.18.0.12");
    CHECK(l4lb::test::inet_checksum(f.subspan(14, 20)) == 0);
    CHECK(std::to_integer<int>(f[18]) == 0x33);
  }
  CHECK(v.frames[0].size() == frags[0].size());
  CHECK(v.frames[1].size() == frags[1].size());
  const bytes joined = join(v.frames);
  CHECK(std::to_integer<int>(joined[36]) * 256 + std::to_integer<int>(joined[37]) == 5353);
  CHECK(checksums_ok(joined));  // the UDP checksum holds over the whole datagram
}

TEST_CASE("fragments, NAT: a first fragment without the whole L4 header is refragmented") {
  lab l;
  const auto web = service_key::tcp(ep("198.18.0.100:80"));
  l.must(add_service{service(web, "rr")});
  l.must(add_dest{web, server("198.18.0.12:8080", forward_method::masq)});
  const bytes whole = packet_builder{}.eth(director_mac, client_router_mac)
                          .ipv4("198.18.1.10", "198.18.0.100", {.ident = 0x4444})
                          .tcp(40000, 80, tf::syn)
                          .payload(2800, 0x11)
                          .build();
  auto frags = cut(whole, 1432, 8);  // an 8-byte first fragment: the TCP header is cut
  CHECK(l.send(frags[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  const verdict v = l.send(frags[2], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  // 0B: first payload = the largest multiple of 8 fitting the biggest fragment (1432 → 1432
  // here, IP length 1452), then the rest.
  REQUIRE(v.frames.size() == 2);
  CHECK(frag_offset(v.frames[0]) == 0);
  CHECK(v.frames[0].size() == 14 + 20 + 1432);
  const bytes joined = join(v.frames);
  CHECK(joined.size() == whole.size());
  CHECK(ipv4_dst(joined) == "198.18.0.12");
  CHECK(checksums_ok(joined));
}

TEST_CASE("fragments, TUN: the whole datagram encapsulated, the outer packet fragmented") {
  lab l;
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:53", forward_method::tunnel)});
  auto frags = cut(big_udp(5003, 2000, 0x5555), 1000);
  CHECK(l.send(frags[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  const verdict v = l.send(frags[2], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() >= 3);
  const std::size_t largest = 20 + 1000;
  for (const auto& f : v.frames) {
    CHECK(f.size() - 14 <= largest);
    CHECK(std::to_integer<int>(f[23]) == 4);  // outer protocol IPIP
    CHECK((std::to_integer<int>(f[18]) | std::to_integer<int>(f[19])) != 0);  // a non-zero ID
  }
  const bytes outer = join(v.frames);
  // Inside: the reassembled datagram, offset 0, no MF, TTL - 1.
  CHECK(outer.size() == 14 + 20 + 20 + 8 + 2000);
  CHECK(std::to_integer<int>(outer[34 + 6]) == 0);
  CHECK(std::to_integer<int>(outer[34 + 8]) == 63);
}

TEST_CASE("fragments: incomplete datagrams expire after 30 s; the pool stays bounded") {
  director_config cfg = lab::small();
  cfg.fragments.datagrams = 16;
  cfg.fragments.slots = 32;
  lab l(cfg);
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  int refused = 0;
  for (std::uint16_t i = 0; i < 100; ++i) {
    auto frags = cut(big_udp(static_cast<std::uint16_t>(6000 + i), 3000, static_cast<std::uint16_t>(0x100 + i)), 800);
    const verdict v = l.send(frags[1], sec);  // never completed
    if (v.kind == verdict_kind::drop) {
      CHECK(v.reason() == "fragment_no_room");
      ++refused;
    }
  }
  CHECK(refused == 100 - 16);
  CHECK(l.d->fragments().dropped == static_cast<std::uint64_t>(refused));
  // 30 s later they are gone and new datagrams are taken again.
  l.send(udp4("198.18.1.10", 1, "198.18.0.100", 53), 31 * sec);
  CHECK(l.d->fragments().expired == 16);
  auto frags = cut(big_udp(7000, 3000, 0x7777), 800);
  CHECK(l.send(frags[0], 32 * sec).kind == verdict_kind::queued);
}

TEST_CASE("fragments, IPv6 DR: sent as received, in offset order, with a new identification") {
  lab l;
  l.must(add_service{service(dns6, "rr")});
  l.must(add_dest{dns6, server("[fd00:198:18::12]:53")});
  const bytes whole = big_udp6(5100, 3000);  // UDP 3008 bytes: fragments of 800
  auto frags = cut6(whole, 800, 0xA1B2C3D4);
  REQUIRE(frags.size() == 4);
  verdict v;
  const int order[] = {3, 1, 2, 0};
  for (int i = 0; i < 4; ++i) {
    v = l.send(frags[static_cast<std::size_t>(order[i])], sec);
    if (i < 3) CHECK(v.kind == verdict_kind::queued);
  }
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 4);
  const std::uint32_t id = frag_be32(v.frames[0], fh6 + 4);
  CHECK(id != 0xA1B2C3D4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& f = v.frames[i];
    CHECK((frag_be16(f, fh6 + 2) & ~std::size_t{7}) == i * 800);
    CHECK((frag_be16(f, fh6 + 2) & 1) == (i < 3 ? 1u : 0u));
    CHECK(f.size() == frags[i].size());
    CHECK(eth_dst(f) == mac_of(ip("fd00:198:18::12")));
    CHECK(std::to_integer<int>(f[l2_6 + 7]) == 63);  // hop limit - 1
    CHECK(frag_be32(f, fh6 + 4) == id);                     // one new ID for the datagram
    CHECK(std::equal(f.begin() + static_cast<long>(fh6 + 8), f.end(), frags[i].begin() + static_cast<long>(fh6 + 8)));
  }
  CHECK(checksums_ok(join6(v.frames)));
  const auto st = l.control.service_stats(l.control.config().find(dns6)->id);
  CHECK(st.stats.in_packets == 1);
  CHECK(st.stats.in_bytes == whole.size() - 14);  // the reassembled datagram's length
  // The pieces are the caller's until the next call, then their slots are free again.
  CHECK(l.d->fragment_state().fragments_held() == 4);
  l.send(udp4("198.18.1.10", 1, "198.18.0.100", 53), sec);
  CHECK(l.d->fragment_state().fragments_held() == 0);
}

TEST_CASE("fragments, IPv6 NAT: destination in every fragment, port and L4 checksum in the first") {
  lab l;
  l.must(add_service{service(dns6, "rr")});
  l.must(add_dest{dns6, server("[fd00:198:18::12]:5353", forward_method::masq)});
  auto frags = cut6(big_udp6(5101, 2000), 1232, 7);
  REQUIRE(frags.size() == 2);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  const verdict v = l.send(frags[0], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& f = v.frames[i];
    CHECK(f.size() == frags[i].size());
    CHECK(wire::ipv6_view::unchecked(f.subspan(l2_6)).dst() == ip("fd00:198:18::12").v6());
  }
  const bytes joined = join6(v.frames);
  CHECK(frag_be16(joined, fh6 + 2) == 5353);  // UDP destination port
  CHECK(checksums_ok(joined));           // the UDP checksum holds over the whole datagram
  CHECK(l.control.connections(sec).size() == 1);
  // tshark reassembles what was sent: one ID, the datagram's UDP checksum good.
  if (l4lb::test::tshark_available()) {
    const auto rows = l4lb::test::tshark_rows(v.frames, "-o udp.check_checksum:TRUE -T fields -E separator='|' "
                                                        "-e ipv6.fraghdr.offset -e udp.dstport -e udp.checksum.status");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].substr(0, 2) == "0|");
    CHECK(rows[1] == "154|5353|1");
  }
}

TEST_CASE("fragments, IPv6: invalid first fragments, overlaps and a zero UDP checksum are named drops") {
  lab l;
  const auto web6 = service_key::tcp(ep("[fd00:198:18::100]:80"));
  l.must(add_service{service(web6, "rr")});
  l.must(add_service{service(dns6, "rr")});
  l.must(add_dest{web6, server("[fd00:198:18::12]:80")});
  l.must(add_dest{dns6, server("[fd00:198:18::12]:53")});
  // RFC 7112: a 16-byte first fragment cuts the 20-byte TCP header.
  const bytes syn = packet_builder{}.eth(director_mac, client_router_mac)
                        .ipv6("fd00:198:18:1::10", "fd00:198:18::100")
                        .tcp(40000, 80, tf::syn)
                        .payload(2000, 0x11)
                        .build();
  auto cut_tcp = cut6(syn, 1232, 9, 16);
  CHECK(l.send(cut_tcp[0], sec).reason() == "fragment_invalid");
  // An overlap drops the datagram; a duplicate is dropped alone.
  auto frags = cut6(big_udp6(5102, 3000), 800, 10);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[1], sec).reason() == "fragment_duplicate");
  bytes bad = frags[1];
  frag_put16(bad, fh6 + 2, 400 | 1);
  CHECK(l.send(bad, sec).reason() == "fragment_overlap");
  CHECK(l.d->fragment_state().datagrams_held() == 0);
  // A reassembled UDP datagram without a checksum (RFC 8200 8.1).
  bytes zero = big_udp6(5103, 2000);
  zero[fh6 + 6] = zero[fh6 + 7] = std::byte{0};
  auto zf = cut6(zero, 1232, 11);
  CHECK(l.send(zf[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(zf[1], sec).reason() == "ipv6_udp_zero_checksum");
  CHECK(l.control.connections(sec).empty());
}

TEST_CASE("fragments, IPv6 TUN: the datagram in IPv6, the outer packet fragmented at the largest fragment") {
  lab l;
  l.must(add_service{service(dns6, "rr")});
  l.must(add_dest{dns6, server("[fd00:198:18::12]:53", forward_method::tunnel)});
  const bytes whole = big_udp6(5104, 2000);
  auto frags = cut6(whole, 1000, 12);
  REQUIRE(frags.size() == 3);
  for (std::size_t i = 0; i < 2; ++i) CHECK(l.send(frags[i], sec).kind == verdict_kind::queued);
  const verdict v = l.send(frags[2], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 3);  // 2048 inner bytes, at most 1000 per outer fragment
  const std::size_t largest = 40 + 8 + 1000;
  for (const auto& f : v.frames) {
    CHECK(f.size() - 14 <= largest);
    CHECK(std::to_integer<int>(f[l2_6 + 6]) == 44);   // outer: a fragment header
    CHECK(std::to_integer<int>(f[fh6]) == 41);        // then IPv6 inside
    CHECK(eth_dst(f) == mac_of(ip("fd00:198:18::12")));
  }
  const bytes outer = join6(v.frames);
  REQUIRE(outer.size() == 14 + 40 + whole.size() - 14);
  // Inside: the reassembled datagram, hop limit - 1, its UDP checksum good.
  const std::span<const std::byte> inner(outer.data() + 54, outer.size() - 54);
  CHECK(std::to_integer<int>(inner[7]) == 63);
  CHECK(std::equal(inner.begin() + 8, inner.end(), whole.begin() + 22));
}

TEST_CASE("fragments, IPv6: incomplete datagrams expire after 60 s (IPv4 after 30)") {
  lab l;
  l.must(add_service{service(dns, "rr")});
  l.must(add_service{service(dns6, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  l.must(add_dest{dns6, server("[fd00:198:18::12]:53")});
  CHECK(l.send(cut6(big_udp6(5105, 3000), 800, 13)[1], sec).kind == verdict_kind::queued);
  CHECK(l.send(cut(big_udp(5105, 3000, 0x99), 800)[1], sec).kind == verdict_kind::queued);
  l.send(udp4("198.18.1.10", 1, "198.18.0.100", 53), 32 * sec);
  CHECK(l.d->fragments().expired == 1);  // the IPv4 one
  CHECK(l.d->fragment_state().datagrams_held() == 1);
  l.send(udp4("198.18.1.10", 1, "198.18.0.100", 53), 60 * sec);
  CHECK(l.d->fragments().expired == 1);
  l.send(udp4("198.18.1.10", 1, "198.18.0.100", 53), 62 * sec);
  CHECK(l.d->fragments().expired == 2);
  CHECK(l.d->fragment_state().datagrams_held() == 0);
}

TEST_CASE("fragments over the egress MTU: IPv4 refragmented at it, IPv6 too big, TUN's outer at the smaller") {
  lab l;
  const auto dns_tun = service_key::udp(ep("198.18.0.101:53"));
  l.must(add_service{service(dns, "rr")});
  l.must(add_service{service(dns6, "rr")});
  l.must(add_service{service(dns_tun, "rr")});
  real_server_spec dr4 = server("198.18.0.12:53"), dr6 = server("[fd00:198:18::12]:53"),
                   tun4 = server("198.18.0.13:53", forward_method::tunnel);
  dr4.mtu = 900;
  dr6.mtu = 1280;
  tun4.mtu = 1000;
  l.must(add_dest{dns, dr4});
  l.must(add_dest{dns6, dr6});
  l.must(add_dest{dns_tun, tun4});
  // DR, IPv4: fragments of 1020 bytes cannot leave as received; the datagram leaves in
  // fragments of at most 900 (ip_fragment at min(MTU, largest received)).
  const bytes whole = big_udp(5200, 2000, 0x4242);
  auto frags = cut(whole, 1000);
  CHECK(l.send(frags[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  verdict v = l.send(frags[2], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 3);  // 2008 bytes at 880 per fragment
  for (const auto& f : v.frames) {
    CHECK(f.size() - 14 <= 900);
    CHECK(std::to_integer<int>(f[18]) == 0x42);  // the datagram's ID
  }
  bytes joined = join(v.frames);
  CHECK(joined.size() == whole.size());
  CHECK(std::to_integer<int>(joined[22]) == 63);
  CHECK(checksums_ok(joined));
  // DR, IPv6: a fragment over the MTU makes the datagram too big (ip6_fragment's frag_max_size).
  auto frags6 = cut6(big_udp6(5201, 2000), 1400, 21);
  CHECK(l.send(frags6[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags6[1], sec).reason() == "too_big");
  // TUN, IPv4: the outer packet in fragments of min(1000, 1020), all of the datagram inside.
  bytes to_tun = whole;
  to_tun[33] = std::byte{101};  // VIP 198.18.0.101; fix the header checksum
  to_tun[24] = to_tun[25] = std::byte{0};
  const auto c = l4lb::test::inet_checksum(std::span(to_tun).subspan(14, 20));
  to_tun[24] = std::byte(static_cast<std::uint8_t>(c >> 8));
  to_tun[25] = std::byte(static_cast<std::uint8_t>(c));
  auto tfr = cut(to_tun, 1000);
  CHECK(l.send(tfr[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(tfr[1], sec).kind == verdict_kind::queued);
  v = l.send(tfr[2], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  for (const auto& f : v.frames) CHECK(f.size() - 14 <= 1000);
  joined = join(v.frames);
  CHECK(joined.size() == 14 + 20 + whole.size() - 14);  // the whole datagram, not its first part
}

TEST_CASE("fragments, NAT replies: reassembled, the source in every fragment, port and checksum in the first") {
  lab l;
  l.must(add_service{service(dns, "rr")});
  l.must(add_service{service(dns6, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:5353", forward_method::masq)});
  l.must(add_dest{dns6, server("[fd00:198:18::12]:5353", forward_method::masq)});
  REQUIRE(l.send(udp4("198.18.1.10", 5000, "198.18.0.100", 53), sec).kind == verdict_kind::forward);
  // The server's answer, larger than its MTU: three fragments, the first last.
  const bytes answer = packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                           .ipv4("198.18.0.12", "198.18.1.10", {.ident = 0x6161})
                           .udp(5353, 5000)
                           .payload(2000, 0x33)
                           .build();
  auto frags = cut(answer, 1000);
  REQUIRE(frags.size() == 3);
  CHECK(l.d->explain(frags[1], sec).kind == verdict_kind::queued);  // explain says so too
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[2], sec).kind == verdict_kind::queued);
  verdict v = l.send(frags[0], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.to_client);
  REQUIRE(v.frames.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& f = v.frames[i];
    CHECK(f.size() == frags[i].size());
    CHECK(std::to_integer<int>(f[26]) == 198);
    CHECK(std::to_integer<int>(f[29]) == 100);  // from the VIP
    CHECK(ipv4_dst(f) == "198.18.1.10");
    CHECK(std::to_integer<int>(f[22]) == 63);
    CHECK(l4lb::test::inet_checksum(f.subspan(14, 20)) == 0);
    CHECK(frag_offset(f) == i * 1000);
  }
  const bytes joined = join(v.frames);
  CHECK(frag_be16(joined, 34) == 53);  // the VIP's port
  CHECK(checksums_ok(joined));
  const auto st = l.control.service_stats(l.control.config().find(dns)->id);
  CHECK(st.stats.out_packets == 1);
  CHECK(st.stats.out_bytes == answer.size() - 14);
  // A datagram from the server that no connection expects: its fragments go to the host.
  auto stray = cut(packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                       .ipv4("198.18.0.12", "198.18.1.99", {.ident = 0x6262})
                       .udp(5353, 7000)
                       .payload(1500, 0x34)
                       .build(),
                   1000);
  CHECK(l.send(stray[0], sec).kind == verdict_kind::queued);
  v = l.send(stray[1], sec);
  CHECK(v.kind == verdict_kind::pass);
  REQUIRE(v.frames.size() == 2);
  CHECK(bytes(v.frames[0].begin(), v.frames[0].end()) == stray[0]);
  // IPv6: the same, with one new identification.
  const verdict q6 = l.send(packet_builder{}.eth(director_mac, client_router_mac)
                                .ipv6("fd00:198:18:1::10", "fd00:198:18::100")
                                .udp(5001, 53)
                                .payload(10, 1)
                                .build(),
                            sec);
  REQUIRE(q6.kind == verdict_kind::forward);
  const bytes answer6 = packet_builder{}.eth(director_mac, mac_of(ip("fd00:198:18::12")))
                            .ipv6("fd00:198:18::12", "fd00:198:18:1::10")
                            .udp(5353, 5001)
                            .payload(2000, 0x35)
                            .build();
  auto frags6 = cut6(answer6, 1232, 77);
  CHECK(l.send(frags6[1], sec).kind == verdict_kind::queued);
  v = l.send(frags6[0], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.to_client);
  REQUIRE(v.frames.size() == 2);
  for (const auto& f : v.frames) {
    CHECK(wire::ipv6_view::unchecked(f.subspan(l2_6)).src() == ip("fd00:198:18::100").v6());
    CHECK(frag_be32(f, fh6 + 4) != 77u);
    CHECK(frag_be32(f, fh6 + 4) == frag_be32(v.frames[0], fh6 + 4));
  }
  const bytes joined6 = join6(v.frames);
  CHECK(frag_be16(joined6, fh6) == 53);
  CHECK(checksums_ok(joined6));
}

TEST_CASE("fragments, FullNAT: both ways, each fragment rewritten in place") {
  director_config cfg = lab::small();
  cfg.full_nat = true;
  lab l(cfg);
  auto fn = server("198.18.0.12:5353", forward_method::full_nat);
  fn.full_nat_local = {ip("198.18.0.1")};
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, fn});
  auto frags = cut(big_udp(5300, 2000, 0x7070), 1000);
  CHECK(l.send(frags[0], sec).kind == verdict_kind::queued);
  CHECK(l.send(frags[1], sec).kind == verdict_kind::queued);
  verdict v = l.send(frags[2], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.method == forward_method::full_nat);
  REQUIRE(v.frames.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(v.frames[i].size() == frags[i].size());
    CHECK(std::to_integer<int>(v.frames[i][29]) == 1);  // from the local address
    CHECK(ipv4_dst(v.frames[i]) == "198.18.0.12");
  }
  bytes joined = join(v.frames);
  const std::size_t lport = frag_be16(joined, 34);
  CHECK(frag_be16(joined, 36) == 5353);
  CHECK(checksums_ok(joined));
  // The server's fragmented answer to the local endpoint reaches the client from the VIP.
  auto back = cut(packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                      .ipv4("198.18.0.12", "198.18.0.1", {.ident = 0x7171})
                      .udp(5353, static_cast<std::uint16_t>(lport))
                      .payload(1800, 0x36)
                      .build(),
                  1000);
  CHECK(l.send(back[1], sec).kind == verdict_kind::queued);
  v = l.send(back[0], sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.to_client);
  REQUIRE(v.frames.size() == 2);
  joined = join(v.frames);
  CHECK(ipv4_dst(joined) == "198.18.1.10");
  CHECK(std::to_integer<int>(joined[29]) == 100);
  CHECK(frag_be16(joined, 34) == 53);
  CHECK(frag_be16(joined, 36) == 5300);
  CHECK(checksums_ok(joined));
}
}
