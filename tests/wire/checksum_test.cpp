// Tests for wire/checksum.hpp: RFC 1071 vectors, pieces at odd offsets and any alignment against a
// byte-at-a-time reference written here, and RFC 1624 incremental updates against full
// recomputation on random packets, with the 0x0000/0xFFFF corner cases forced on purpose.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/checksum.hpp"

using namespace l4lb::wire;

namespace {

using bytes = std::vector<std::byte>;

bytes from_hex(std::initializer_list<unsigned> v) {
  bytes b;
  for (unsigned x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

// The reference: RFC 1071 read literally. Big-endian 16-bit words, a last odd byte padded with a
// zero low byte, 32-bit sum, carries folded back until 16 bits remain.
std::uint16_t ref_folded(const bytes& b) {
  std::uint32_t s = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::uint32_t v = std::to_integer<std::uint32_t>(b[i]);
    s += (i % 2 == 0) ? v << 8 : v;
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  }
  return static_cast<std::uint16_t>(s);
}
std::uint16_t ref_checksum(const bytes& b) { return static_cast<std::uint16_t>(~ref_folded(b)); }

std::uint16_t get16(const bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[at]) << 8) |
                                    std::to_integer<unsigned>(b[at + 1]));
}
void put16(bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::byte>(v >> 8);
  b[at + 1] = static_cast<std::byte>(v & 0xFF);
}

}  // namespace

// Compile-time check of the constexpr path on RFC 1071 section 3's example.
static_assert([] {
  constexpr std::array<std::byte, 8> b{std::byte{0x00}, std::byte{0x01}, std::byte{0xf2},
                                       std::byte{0x03}, std::byte{0xf4}, std::byte{0xf5},
                                       std::byte{0xf6}, std::byte{0xf7}};
  return checksum_accumulator{}.add(b).folded() == 0xddf2;
}());

TEST_SUITE("wire") {
TEST_CASE("checksum: RFC 1071 section 3 example sums to 0xddf2") {
  // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 have the one's-complement sum dd f2
  // (0001 + f203 + f4f5 + f6f7 = 0x2ddf0, fold: 0xddf0 + 2 = 0xddf2); checksum = ~0xddf2 = 0x220d.
  bytes b = from_hex({0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7});
  checksum_accumulator acc;
  acc.add(b);
  CHECK(acc.folded() == 0xddf2);
  CHECK(acc.checksum() == 0x220d);
  CHECK(internet_checksum(b) == 0x220d);
  // The same bytes in pieces 3 + 5: the second piece starts at an odd offset.
  checksum_accumulator pieces;
  pieces.add(std::span(b).first(3)).add(std::span(b).subspan(3));
  CHECK(pieces.folded() == 0xddf2);
}

TEST_CASE("checksum: the 20-byte IPv4 header form equals the general sum on random headers") {
  std::mt19937 rng(20);
  for (int n = 0; n < 20000; ++n) {
    bytes h(20);
    for (auto& b : h) b = static_cast<std::byte>(rng() % 4 == 0 ? (rng() % 2 ? 0xff : 0) : rng());
    bytes z = h;
    put16(z, 10, 0);
    REQUIRE(ipv4_header_checksum(h) == internet_checksum(z));
  }
}

TEST_CASE("checksum: IPv4 header vector") {
  // 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7 (a 20-byte UDP/IPv4 header).
  // Words without the field: 4500+0073+0000+4000+4011+c0a8+0001+c0a8+00c7 = 0x2479c;
  // fold: 0x479c + 2 = 0x479e; complement: 0xb861.
  bytes h = from_hex({0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                      0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7});
  CHECK(ipv4_header_checksum(h) == 0xb861);
  CHECK(checksum_accumulator{}.add(h).verifies());
  put16(h, 10, 0);
  CHECK(internet_checksum(h) == 0xb861);
}

TEST_CASE("checksum: odd final byte is the high half of a padded word") {
  // RFC 1071: an odd count pads with a zero byte: {0xab} sums as 0xab00, checksum 0x54ff.
  CHECK(internet_checksum(from_hex({0xab})) == 0x54ff);
  // Empty input: sum 0, checksum 0xffff.
  CHECK(internet_checksum(bytes{}) == 0xffff);
  // Three bytes 01 02 03: 0x0102 + 0x0300 = 0x0402; checksum 0xfbfd.
  CHECK(internet_checksum(from_hex({0x01, 0x02, 0x03})) == 0xfbfd);
}

TEST_CASE("checksum: fast sum equals the byte-at-a-time reference at every length and alignment") {
  std::mt19937_64 rng(1071);
  std::vector<std::byte> storage(2100 + 64);
  for (auto& x : storage) x = static_cast<std::byte>(rng());
  // Lengths 0..300 exhaustively and a spread up to 2100, each at offsets 0..15 (alignment).
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (std::size_t n = 301; n <= 2100; n += 37) lengths.push_back(n);
  for (std::size_t n : lengths) {
    for (std::size_t off = 0; off < 16; ++off) {
      bytes b(storage.begin() + static_cast<std::ptrdiff_t>(off),
              storage.begin() + static_cast<std::ptrdiff_t>(off + n));
      std::span<const std::byte> view(storage.data() + off, n);
      REQUIRE(checksum_accumulator{}.add(view).folded() == ref_folded(b));
    }
  }
  // All-0xFF buffers stress the carries: the sum of k words of 0xffff folds to 0xffff (k > 0).
  bytes ff(1500, std::byte{0xFF});
  CHECK(checksum_accumulator{}.add(ff).folded() == 0xffff);
  CHECK(checksum_accumulator{}.add(bytes(1500, std::byte{0})).folded() == 0);
}

TEST_CASE("checksum: sums in pieces of any length at any offset equal the whole") {
  std::mt19937_64 rng(2);
  for (int round = 0; round < 3000; ++round) {
    std::size_t n = rng() % 600;
    bytes b(n);
    for (auto& x : b) x = static_cast<std::byte>(rng());
    const std::uint16_t whole = ref_folded(b);
    // Cut into 1..6 random pieces (odd sizes included), summed with add(span).
    checksum_accumulator acc;
    std::size_t at = 0;
    while (at < n) {
      std::size_t len = 1 + rng() % (n - at < 97 ? n - at : 97);
      acc.add(std::span<const std::byte>(b).subspan(at, len));
      at += len;
    }
    REQUIRE(acc.folded() == whole);
    // Two accumulators built separately and combined: the second starts at an odd offset
    // whenever the cut is odd.
    std::size_t cut = n == 0 ? 0 : rng() % (n + 1);
    checksum_accumulator first, second;
    first.add(std::span<const std::byte>(b).first(cut));
    second.add(std::span<const std::byte>(b).subspan(cut));
    REQUIRE(first.add(second).folded() == whole);
    CHECK(first.odd() == (n % 2 == 1));
  }
}

TEST_CASE("checksum: add_u16 and add_u32 continue the stream in its byte lanes") {
  // {0x12} then the word 0x3456: stream 12 34 56 -> 0x1234 + 0x5600 = 0x6834.
  checksum_accumulator acc;
  acc.add(from_hex({0x12})).add_u16(0x3456);
  CHECK(acc.folded() == 0x6834);
  checksum_accumulator b32;
  b32.add_u32(0x01020304);
  CHECK(b32.folded() == 0x0406);  // 0x0102 + 0x0304
}

TEST_CASE("checksum: pseudo-headers follow RFC 768 and RFC 8200 8.1 layouts") {
  // IPv4: src, dst, 0, proto, length as a byte string, summed by the reference.
  auto src4 = *ipv4_address::parse("198.18.0.2");
  auto dst4 = *ipv4_address::parse("198.18.0.100");
  bytes p4 = from_hex({198, 18, 0, 2, 198, 18, 0, 100, 0, 17, 0x01, 0x23});
  CHECK(pseudo_header_v4(src4, dst4, 17, 0x0123).folded() == ref_folded(p4));
  // IPv6: src(16), dst(16), 32-bit length, 3 zero bytes, next header.
  auto src6 = *ipv6_address::parse("fd00:198:18::2");
  auto dst6 = *ipv6_address::parse("fd00:198:18::100");
  bytes p6;
  p6.insert(p6.end(), reinterpret_cast<const std::byte*>(src6.bytes.data()),
            reinterpret_cast<const std::byte*>(src6.bytes.data()) + 16);
  p6.insert(p6.end(), reinterpret_cast<const std::byte*>(dst6.bytes.data()),
            reinterpret_cast<const std::byte*>(dst6.bytes.data()) + 16);
  for (unsigned x : {0x00u, 0x01u, 0x02u, 0x03u, 0u, 0u, 0u, 58u}) p6.push_back(std::byte(x));
  CHECK(pseudo_header_v6(src6, dst6, 58, 0x00010203).folded() == ref_folded(p6));
  // The raw-bytes form agrees with the typed form.
  auto s6 = std::as_bytes(std::span{src6.bytes});
  auto d6 = std::as_bytes(std::span{dst6.bytes});
  CHECK(pseudo_header(ip_family::v6, s6, d6, 58, 0x00010203).folded() == ref_folded(p6));
  CHECK(pseudo_header(ip_family::v4, std::as_bytes(std::span{src4.bytes}),
                      std::as_bytes(std::span{dst4.bytes}), 17, 0x0123)
            .folded() == ref_folded(p4));
}

TEST_CASE("checksum: UDP writes a computed 0 as 0xFFFF; TCP keeps 0x0000") {
  // An 8-byte UDP datagram with no data; choose the length field so that the total sum is
  // 0xffff, i.e. the computed checksum is 0 (RFC 768: transmit all ones).
  auto src = *ipv4_address::parse("198.18.0.1");
  auto dst = *ipv4_address::parse("198.18.0.2");
  bytes udp = from_hex({0x00, 0x35, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00});
  // Sum without the pad word: pseudo (c612+0001+c612+0002+0011+000a) + 0035+0035+000a.
  // We add one free word in the data to reach 0xffff: data word = ~folded(rest).
  udp.push_back(std::byte{0});
  udp.push_back(std::byte{0});
  put16(udp, 4, 10);  // UDP length now 10
  bytes everything = from_hex({198, 18, 0, 1, 198, 18, 0, 2, 0, 17, 0, 10});
  everything.insert(everything.end(), udp.begin(), udp.end());
  std::uint16_t pad = static_cast<std::uint16_t>(~ref_folded(everything));
  put16(udp, 8, pad);
  CHECK(l4_checksum_v4(src, dst, ip_proto::udp, udp) == 0xFFFF);
  // The same sum without the UDP rule (what TCP, ICMP and the IP header use) stays 0x0000.
  CHECK(checksum_with_zero_field(pseudo_header_v4(src, dst, 17, 10), udp, checksum_offset::udp) ==
        0x0000);
  CHECK(udp_checksum_absent(0));
  CHECK_FALSE(udp_checksum_absent(0xFFFF));
}

TEST_CASE("checksum: the kernel's checksums in a capture verify") {
  // Every frame of the capture carries checksums the Linux stack computed (offload was off), so
  // each IPv4 header and TCP segment must verify: the sum over it (field included) is 0xffff.
  auto file = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/client-vip-http.pcap");
  if (!file) {
    MESSAGE("client-vip-http.pcap not readable; skipped");
    return;
  }
  int tcp_checked = 0;
  for (const auto& r : file->records()) {
    auto f = r.data;
    if (f.size() < 34 || f[12] != std::byte{0x08} || f[13] != std::byte{0x00}) continue;
    auto ip = f.subspan(14);
    std::size_t ihl = (std::to_integer<std::size_t>(ip[0]) & 0x0F) * 4;
    std::size_t total = (std::to_integer<std::size_t>(ip[2]) << 8) | std::to_integer<std::size_t>(ip[3]);
    REQUIRE(checksum_accumulator{}.add(ip.first(ihl)).verifies());
    CHECK(ipv4_header_checksum(ip.first(ihl)) ==
          ((std::to_integer<unsigned>(ip[10]) << 8) | std::to_integer<unsigned>(ip[11])));
    if (ip[9] != std::byte{6}) continue;
    auto seg = ip.subspan(ihl, total - ihl);
    ipv4_address s{}, d{};
    for (std::size_t i = 0; i < 4; ++i) {
      s.bytes[i] = std::to_integer<std::uint8_t>(ip[12 + i]);
      d.bytes[i] = std::to_integer<std::uint8_t>(ip[16 + i]);
    }
    auto acc = pseudo_header_v4(s, d, 6, static_cast<std::uint16_t>(seg.size()));
    acc.add(seg);
    CHECK(acc.verifies());
    ++tcp_checked;
  }
  CHECK(tcp_checked > 300);
}

TEST_CASE("checksum_delta: RFC 1624 eqn. 3 and its zero boundary, worked by hand") {
  // HC = 0xdd2f, m = 0x5555 -> m' = 0x3285. Eqn. 3: ~HC + ~m + m' = 0x22d0 + 0xaaaa + 0x3285;
  // 0x22d0 + 0xaaaa = 0xcd7a; + 0x3285 = 0xffff; HC' = ~0xffff = 0x0000. (RFC 1141's eqn. 2,
  // HC + m + ~m', gives 0xdd2f + 0x5555 = 0x13284 -> 0x3285; + 0xcd7a = 0xffff: the "-0" form
  // that a full computation never produces, the boundary RFC 1624 section 3 is about.)
  CHECK(checksum_update_u16(0xdd2f, 0x5555, 0x3285) == 0x0000);
  // Reversing: ~0x0000 + ~0x3285 + 0x5555 = 0xffff + 0xcd7a + 0x5555; 0xffff + 0xcd7a =
  // 0x1cd79 -> 0xcd7a; + 0x5555 = 0x122cf -> 0x22d0; HC' = ~0x22d0 = 0xdd2f.
  CHECK(checksum_update_u16(0x0000, 0x3285, 0x5555) == 0xdd2f);
  // The same with the input written as 0xffff (the other zero): identical output (ipvs-notes 0A).
  CHECK(checksum_update_u16(0xffff, 0x3285, 0x5555) == 0xdd2f);
  // All addends zero: HC = 0xffff, m = 0xffff, m' = 0. Eqn. 3 alone gives ~0 = 0xffff; a full
  // computation of data summing to 0 mod 0xffff gives 0x0000, and so does apply().
  CHECK(checksum_update_u16(0xffff, 0xffff, 0x0000) == 0x0000);
  CHECK(checksum_delta{}.replace_u16(0xffff, 0).apply_udp(0xffff) == 0xffff);
  CHECK(checksum_delta{}.replace_u16(0x1234, 0x1234).is_identity());
  // RFC 1624 erratum 4782: HC = 0x0000 and an unchanged field (m = m' = 0x5555). With end-around
  // carries ~HC + ~m + m' = 0xffff + 0xaaaa + 0x5555 folds to 0xffff (a positive sum never folds
  // to +0), so HC' = 0x0000: unchanged, as a full recomputation gives.
  CHECK(checksum_update_u16(0x0000, 0x5555, 0x5555) == 0x0000);
}
}

// ---- property test: incremental == full recomputation -------------------------------------

namespace {

struct packet {
  bool v6 = false;
  bool udp = false;
  bytes src, dst;   // 4 or 16 bytes
  bytes ip_header;  // IPv4 only: 20 bytes
  bytes l4;         // TCP/UDP header + payload
};

std::size_t l4_csum_at(const packet& p) { return p.udp ? 6 : 16; }

// Full computation with the reference sum over an explicit pseudo-header byte string.
std::uint16_t ref_l4_checksum(const packet& p, bool udp_zero_rule = true) {
  bytes all = p.src;
  all.insert(all.end(), p.dst.begin(), p.dst.end());
  const auto n = p.l4.size();
  const unsigned proto = p.udp ? 17 : 6;
  if (!p.v6) {
    for (unsigned x : {0u, proto, static_cast<unsigned>(n >> 8), static_cast<unsigned>(n & 0xFF)})
      all.push_back(std::byte(x));
  } else {
    for (unsigned x : {static_cast<unsigned>(n >> 24), static_cast<unsigned>((n >> 16) & 0xFF),
                       static_cast<unsigned>((n >> 8) & 0xFF), static_cast<unsigned>(n & 0xFF),
                       0u, 0u, 0u, proto})
      all.push_back(std::byte(x));
  }
  bytes seg = p.l4;
  put16(seg, l4_csum_at(p), 0);
  all.insert(all.end(), seg.begin(), seg.end());
  std::uint16_t c = ref_checksum(all);
  if (p.udp && udp_zero_rule && c == 0) c = 0xFFFF;  // RFC 768
  return c;
}
std::uint16_t ref_ip_checksum(const packet& p) {
  bytes h = p.ip_header;
  put16(h, 10, 0);
  return ref_checksum(h);
}
void refresh_ip_header(packet& p) {
  if (p.v6) return;
  for (std::size_t i = 0; i < 4; ++i) {
    p.ip_header[12 + i] = p.src[i];
    p.ip_header[16 + i] = p.dst[i];
  }
  put16(p.ip_header, 10, ref_ip_checksum(p));
}

// Choose the payload word at `at` so that the L4 checksum of `p` computes to 0: with the word 0
// the folded sum is F; the word ~F makes the sum 0xffff (and F = 0xffff keeps word 0).
void force_zero_l4_checksum(packet& p, std::size_t at) {
  put16(p.l4, at, 0);
  std::uint16_t c = ref_l4_checksum(p, false);  // = ~F (no UDP 0 -> 0xffff while solving)
  put16(p.l4, at, c);
}

}  // namespace

TEST_SUITE("wire") {
TEST_CASE("checksum_delta: incremental update equals full recomputation on 120000 random packets") {
  std::mt19937_64 rng(1624);
  enum change_kind { word16, ipv4_addr, ipv6_addr, port, n_kinds };
  int forced_new_zero = 0, forced_old_zero = 0, all_zero_addends = 0, new_zero_seen = 0;
  int kinds_seen[n_kinds] = {};
  for (int iter = 0; iter < 120000; ++iter) {
    packet p;
    p.v6 = rng() % 2 == 0;
    p.udp = rng() % 2 == 0;
    const std::size_t alen = p.v6 ? 16 : 4;
    p.src.resize(alen);
    p.dst.resize(alen);
    for (auto& x : p.src) x = std::byte(rng());
    for (auto& x : p.dst) x = std::byte(rng());
    const std::size_t hlen = p.udp ? 8 : 20;
    const std::size_t payload = 2 + rng() % 120;  // >= 2: room for the free word; odd included
    p.l4.resize(hlen + payload);
    for (auto& x : p.l4) x = std::byte(rng());
    if (p.udp) put16(p.l4, 4, static_cast<std::uint16_t>(p.l4.size()));
    if (!p.v6) {
      p.ip_header = from_hex({0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, p.udp ? 17u : 6u, 0, 0,
                              0, 0, 0, 0, 0, 0, 0, 0});
      put16(p.ip_header, 2, static_cast<std::uint16_t>(20 + p.l4.size()));
      put16(p.ip_header, 4, static_cast<std::uint16_t>(rng()));
      p.ip_header[8] = std::byte(rng());  // any TTL
    }
    // Which change, which corner.
    auto kind = static_cast<change_kind>(rng() % n_kinds);
    if (kind == ipv4_addr && p.v6) kind = ipv6_addr;
    if (kind == ipv6_addr && !p.v6) kind = ipv4_addr;
    ++kinds_seen[kind];
    const unsigned corner = static_cast<unsigned>(rng() % 8);  // 0, 2: new sum 0; 1: old sum 0
    const std::size_t free_word = hlen;                         // first payload word
    // A 16-bit word to change: TCP window / urgent pointer, or a UDP payload word after the
    // free word; sometimes 0xffff -> 0x0000 (the all-zero-addend case).
    std::size_t word_at = p.udp ? hlen + 2 : (rng() % 2 ? 14 : 18);
    if (p.udp && payload < 4) {
      p.l4.resize(hlen + 4);
      put16(p.l4, 4, static_cast<std::uint16_t>(p.l4.size()));
    }
    if (!p.v6) put16(p.ip_header, 2, static_cast<std::uint16_t>(20 + p.l4.size()));
    std::uint16_t new_word = static_cast<std::uint16_t>(rng());
    if (kind == word16 && rng() % 4 == 0) {
      put16(p.l4, word_at, 0xFFFF);
      new_word = 0;
    }
    const bool port_is_src = rng() % 2 == 0;
    const std::uint16_t new_port = static_cast<std::uint16_t>(rng());
    bytes new_addr(alen);
    for (auto& x : new_addr) x = std::byte(rng());
    const bool addr_is_src = rng() % 2 == 0;

    auto apply_change = [&](packet& q) {
      switch (kind) {
        case word16: put16(q.l4, word_at, new_word); break;
        case port: put16(q.l4, port_is_src ? 0 : 2, new_port); break;
        case ipv4_addr:
        case ipv6_addr: (addr_is_src ? q.src : q.dst) = new_addr; break;
        case n_kinds: break;
      }
    };
    // Corner: make the checksum after the change compute to 0, by solving the free word on the
    // changed packet; the free word is untouched by the change, so the old packet shares it.
    if (corner == 0 || corner == 2) {
      packet after = p;
      apply_change(after);
      force_zero_l4_checksum(after, free_word);
      put16(p.l4, free_word, get16(after.l4, free_word));
      ++forced_new_zero;
    }
    if (corner == 1) {
      force_zero_l4_checksum(p, free_word);
      ++forced_old_zero;
    }
    refresh_ip_header(p);
    std::uint16_t old_l4 = ref_l4_checksum(p);
    // Linux writes a TCP checksum that computed to 0 as 0xffff (captures README); both forms.
    if (!p.udp && old_l4 == 0 && rng() % 2 == 0) old_l4 = 0xFFFF;
    put16(p.l4, l4_csum_at(p), old_l4);
    if (corner == 1 && kind == word16 && new_word == 0 && old_l4 == 0xFFFF) ++all_zero_addends;

    // Incremental: collect the delta from the old and new field values.
    packet q = p;
    checksum_delta l4_delta, ip_delta;
    switch (kind) {
      case word16: l4_delta.replace_u16(get16(p.l4, word_at), new_word); break;
      case port: l4_delta.replace_u16(get16(p.l4, port_is_src ? 0 : 2), new_port); break;
      case ipv4_addr:
      case ipv6_addr:
        l4_delta.replace(addr_is_src ? p.src : p.dst, new_addr);
        ip_delta.replace(addr_is_src ? p.src : p.dst, new_addr);
        break;
      case n_kinds: break;
    }
    apply_change(q);
    std::uint16_t inc_l4 = p.udp ? l4_delta.apply_udp(old_l4) : l4_delta.apply(old_l4);
    std::uint16_t full_l4 = ref_l4_checksum(q);
    if (inc_l4 != full_l4) {
      CAPTURE(iter);
      CAPTURE(static_cast<int>(kind));
      CAPTURE(old_l4);
      REQUIRE(inc_l4 == full_l4);
    }
    if (corner == 0 || corner == 2) {
      // The forced case: TCP computes 0x0000, UDP transmits 0xffff (RFC 768).
      REQUIRE(full_l4 == (p.udp ? 0xFFFF : 0x0000));
      ++new_zero_seen;
    }
    if (!p.v6) {
      std::uint16_t old_ip = get16(p.ip_header, 10);
      refresh_ip_header(q);
      REQUIRE(ip_delta.apply(old_ip) == get16(q.ip_header, 10));
      // TTL decrement as a word change (TTL, protocol): what DR/NAT do to every IPv4 header.
      std::uint16_t ttl_proto = get16(q.ip_header, 8);
      auto dec = static_cast<std::uint16_t>(ttl_proto - 0x0100);
      std::uint16_t inc_ip = checksum_update_u16(get16(q.ip_header, 10), ttl_proto, dec);
      put16(q.ip_header, 8, dec);
      REQUIRE(inc_ip == ref_ip_checksum(q));
    }
  }
  // The corners were really exercised.
  CHECK(forced_new_zero > 10000);
  CHECK(new_zero_seen == forced_new_zero);
  CHECK(forced_old_zero > 10000);
  CHECK(all_zero_addends > 100);
  for (int k = 0; k < n_kinds; ++k) CHECK(kinds_seen[k] > 10000);
}
}
