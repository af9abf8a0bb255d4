// IPv4 fragments through the director: held until the datagram is complete, then sent as the
// kernel sends them (ipvs-notes 0B): DR keeps every fragment's boundaries, in offset order; NAT
// rewrites the destination in all of them and the port and whole-datagram L4 checksum in the
// first (refragmenting when the first did not hold the L4 header); TUN encapsulates the whole
// datagram and fragments the outer packet. Duplicates, overlaps, timeouts and a full pool.
#include <doctest/doctest.h>

#include "director/director_support.hpp"

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
}
