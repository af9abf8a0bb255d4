// Tests for wire/crc32c.hpp: the RFC 3720 B.4 vectors (which also fix the byte order on the wire),
// the CRC catalogue's check value, chaining, the portable tables and the SSE4.2 instruction against
// a bit-at-a-time reference written here on random lengths and alignments, and the SCTP helpers on
// a packet from Scapy's SCTP regression tests and on hand-made ones.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/wire/crc32c.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::bytes;
using l4lb::test::hex_bytes;

namespace {

// The reference: the CRC as RFC 9260 Appendix A / RFC 3720 define it, one bit at a time. Register
// preset to all ones, each byte's least significant bit first, the reflected Castagnoli polynomial
// 0x82F63B78 (0x1EDC6F41 read backwards), the register inverted at the end.
std::uint32_t ref_crc32c(std::span<const std::byte> b) {
  std::uint32_t r = 0xFFFFFFFFu;
  for (std::byte x : b) {
    r ^= std::to_integer<std::uint32_t>(x);
    for (int i = 0; i < 8; ++i) r = (r & 1u) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
  }
  return ~r;
}

// The four checksum bytes in wire order, first byte in the low bits (RFC 3720 B.4 lists "CRC: aa 36
// 91 8a" for the value 0x8A9136AA).
std::uint32_t from_wire_order(std::uint8_t b0, std::uint8_t b1, std::uint8_t b2, std::uint8_t b3) {
  return std::uint32_t{b0} | std::uint32_t{b1} << 8 | std::uint32_t{b2} << 16 | std::uint32_t{b3} << 24;
}

bool sse42_usable() {
#if defined(L4LB_CRC32C_HAVE_SSE42_PATH)
  return detail::crc32c_sse42_supported();
#else
  return false;
#endif
}

std::uint32_t via_sse42([[maybe_unused]] std::span<const std::byte> b, [[maybe_unused]] std::uint32_t seed = 0) {
#if defined(L4LB_CRC32C_HAVE_SSE42_PATH)
  return detail::crc32c_sse42(b, seed);
#else
  return 0;
#endif
}

struct rfc3720_vector {
  const char* name;
  bytes data;
  std::array<std::uint8_t, 4> crc_on_wire;
};

std::vector<rfc3720_vector> rfc3720_vectors() {
  std::vector<rfc3720_vector> v;
  v.push_back({"32 bytes of zeroes", bytes(32, std::byte{0}), {0xaa, 0x36, 0x91, 0x8a}});
  v.push_back({"32 bytes of ones", bytes(32, std::byte{0xff}), {0x43, 0xab, 0xa8, 0x62}});
  bytes inc(32), dec(32);
  for (std::size_t i = 0; i < 32; ++i) {
    inc[i] = static_cast<std::byte>(i);
    dec[i] = static_cast<std::byte>(31 - i);
  }
  v.push_back({"32 bytes incrementing 00..1f", inc, {0x4e, 0x79, 0xdd, 0x46}});
  v.push_back({"32 bytes decrementing 1f..00", dec, {0x5c, 0xdb, 0x3f, 0x11}});
  v.push_back({"an iSCSI SCSI Read (10) command PDU",
               hex_bytes("01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 14 00 00 00 00 00 04 00"
                         "00 00 00 14 00 00 00 18 28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00"),
               {0x56, 0x3a, 0x96, 0xd9}});
  return v;
}

constexpr std::array<std::byte, 32> zeros32{};
// Compile time goes through the byte-at-a-time table loop: RFC 3720 B.4, 32 zero bytes.
static_assert(crc32c(zeros32) == 0x8A9136AAu);
static_assert(detail::crc32c_portable(zeros32) == 0x8A9136AAu);

}  // namespace

TEST_SUITE("wire") {
TEST_CASE("crc32c: RFC 3720 B.4 vectors, on every path, and the wire byte order") {
  for (const auto& v : rfc3720_vectors()) {
    CAPTURE(v.name);
    const std::uint32_t want = from_wire_order(v.crc_on_wire[0], v.crc_on_wire[1], v.crc_on_wire[2], v.crc_on_wire[3]);
    CHECK(ref_crc32c(v.data) == want);  // the reference itself agrees with the RFC
    CHECK(crc32c(v.data) == want);
    CHECK(detail::crc32c_portable(v.data) == want);
    if (sse42_usable()) CHECK(via_sse42(v.data) == want);
    // Stored as SCTP stores it, the value's bytes come out in the RFC's order.
    std::array<std::byte, 12> header{};
    boost::endian::store_little_u32(detail::as_uchar(header.data() + sctp_checksum_offset), want);
    CHECK(load_sctp_checksum(header) == want);
    for (std::size_t i = 0; i < 4; ++i) CHECK(std::to_integer<std::uint8_t>(header[8 + i]) == v.crc_on_wire[i]);
  }
  const std::string note = sse42_usable() ? "tested" : "not available on this CPU/compiler: skipped";
  MESSAGE("SSE4.2 path " << note);
}

TEST_CASE("crc32c: catalogue check value, empty input, and chaining at every split") {
  // CRC-32/ISCSI in the CRC RevEng catalogue: check = 0xE3069283 for "123456789".
  const std::string_view check = "123456789";
  const auto check_bytes = std::as_bytes(std::span(check.data(), check.size()));
  CHECK(crc32c(check_bytes) == 0xE3069283u);
  CHECK(crc32c({}) == 0u);  // preset and final inversion cancel on no input
  CHECK(crc32c({}, 0x12345678u) == 0x12345678u);  // continuing with nothing changes nothing
  const bytes pdu = rfc3720_vectors().back().data;
  for (std::size_t cut = 0; cut <= pdu.size(); ++cut) {
    CAPTURE(cut);
    std::span<const std::byte> all(pdu);
    CHECK(crc32c(all.subspan(cut), crc32c(all.first(cut))) == 0xD9963A56u);
    CHECK(detail::crc32c_portable(all.subspan(cut), detail::crc32c_portable(all.first(cut))) == 0xD9963A56u);
    if (sse42_usable()) CHECK(via_sse42(all.subspan(cut), via_sse42(all.first(cut))) == 0xD9963A56u);
  }
}

TEST_CASE("crc32c: portable tables, instruction and bitwise reference agree on any length and alignment") {
  std::mt19937_64 rng(20240611);
  bytes buf(2000 + 16);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  std::vector<std::pair<std::size_t, std::size_t>> cases;  // (start, length)
  for (std::size_t n = 0; n <= 72; ++n) cases.emplace_back(n % 16, n);  // every tail length, each start
  for (int i = 0; i < 300; ++i) cases.emplace_back(static_cast<std::size_t>(rng() % 16), static_cast<std::size_t>(rng() % 2001));
  cases.emplace_back(3, 2000);
  for (const auto& c : cases) {
    const std::size_t start = c.first, n = c.second;  // clang 14: CAPTURE cannot take a structured binding
    CAPTURE(start);
    CAPTURE(n);
    std::span<const std::byte> s(buf.data() + start, n);
    const std::uint32_t want = ref_crc32c(s);
    CHECK(detail::crc32c_portable(s) == want);
    CHECK(crc32c(s) == want);
    if (sse42_usable()) CHECK(via_sse42(s) == want);
  }
}

TEST_CASE("sctp_checksum: Scapy's INIT packet, the field in little-endian order") {
  // scapy test/contrib (SCTP regression tests): raw(IP()/SCTP()/SCTPChunkInit(params=
  // [SCTPChunkParamIPv4Addr()])), whose SCTP part is below; Scapy computes the checksum field as
  // 40 2c 0b 5f (it reads it back big-endian as 0x402c0b5f). Ports 0, vtag 0, one INIT chunk
  // of 28 bytes with an IPv4 address parameter 127.0.0.1.
  const bytes pkt = hex_bytes(
      "00 00 00 00 00 00 00 00 40 2c 0b 5f 01 00 00 1c 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 05 00 08 7f 00 00 01");
  REQUIRE(pkt.size() == 40);
  // The CRC value is 0x5F0B2C40 and travels least significant byte first.
  CHECK(sctp_checksum(pkt) == 0x5F0B2C40u);
  CHECK(load_sctp_checksum(pkt) == 0x5F0B2C40u);
  CHECK(sctp_checksum_ok(pkt));
  bytes zeroed = pkt;
  for (std::size_t i = 8; i < 12; ++i) zeroed[i] = std::byte{0};
  CHECK(ref_crc32c(zeroed) == 0x5F0B2C40u);  // "as if the field were zero", RFC 9260 section 6.8
  CHECK(sctp_checksum(zeroed) == 0x5F0B2C40u);  // the field's content does not enter
  CHECK_FALSE(sctp_checksum_ok(zeroed));
  REQUIRE(store_sctp_checksum(zeroed));
  CHECK(zeroed == pkt);
  // The big-endian reading of the same value is a different checksum (the CRC is not a palindrome).
  bytes swapped = pkt;
  std::swap(swapped[8], swapped[11]);
  std::swap(swapped[9], swapped[10]);
  CHECK_FALSE(sctp_checksum_ok(swapped));
}

TEST_CASE("sctp_checksum: hand-made packets, one changed bit anywhere is caught, nothing written") {
  // A DATA chunk (type 0, flags B|E = 0x03, length 16 + 5) carrying "hello", padded to 4 bytes.
  const bytes chunk = hex_bytes("00 03 00 15 00 00 00 01 00 00 00 00 00 00 00 00 68 65 6c 6c 6f 00 00 00");
  const bytes built = l4lb::test::packet_builder{}.sctp(40000, 3868, 0xdeadbeef).payload(chunk).build();
  REQUIRE(built.size() == 12 + 24);
  CHECK(l4lb::test::to_hex(std::span(built).first(12)) == "9c 40 0f 1c de ad be ef 00 00 00 00");  // field left 0
  bytes pkt = built;
  const bytes before = pkt;
  const std::uint32_t c = sctp_checksum(pkt);
  CHECK(pkt == before);  // computed without writing
  CHECK(c == ref_crc32c(pkt));  // field already 0, so the plain CRC of the bytes
  REQUIRE(store_sctp_checksum(pkt));
  for (std::size_t i = 0; i < pkt.size(); ++i)
    if (i < 8 || i >= 12) CHECK(pkt[i] == before[i]);
  CHECK(std::to_integer<std::uint32_t>(pkt[8]) == (c & 0xFFu));  // low byte first
  CHECK(std::to_integer<std::uint32_t>(pkt[11]) == (c >> 24));
  CHECK(sctp_checksum_ok(pkt));
  for (std::size_t i = 0; i < pkt.size() * 8; ++i) {
    bytes bad = pkt;
    bad[i / 8] ^= static_cast<std::byte>(1u << (i % 8));
    CAPTURE(i);
    CHECK_FALSE(sctp_checksum_ok(bad));  // a CRC catches every single-bit error
  }
}

TEST_CASE("sctp_checksum: spans shorter than the common header stay inside their bytes") {
  const bytes pkt = hex_bytes("01 02 03 04 05 06 07 08 09 0a 0b 0c 0d");
  for (std::size_t n = 0; n < 12; ++n) {
    CAPTURE(n);
    bytes b(pkt.begin(), pkt.begin() + static_cast<std::ptrdiff_t>(n));
    bytes z = b;
    for (std::size_t i = 8; i < n; ++i) z[i] = std::byte{0};
    CHECK(sctp_checksum(b) == ref_crc32c(z));
    CHECK_FALSE(sctp_checksum_ok(b));
    // A 12-byte buffer viewed through an n-byte span: store refuses and writes nothing.
    bytes storage = pkt;
    CHECK_FALSE(store_sctp_checksum(std::span(storage).first(n)));
    CHECK(storage == pkt);
  }
}
}
