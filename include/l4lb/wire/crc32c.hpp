// CRC32c (Castagnoli) over caller bytes, and the SCTP checksum built on it (RFC 9260 section 6.8
// and Appendix A; the same CRC as iSCSI's digests, RFC 3720 section 12.1, test vectors B.4).
// Portable slicing-by-8 with tables made at compile time; the SSE4.2 crc32 instruction when the
// build targets it or the CPU has it (identical results). No allocation; byte loads via memcpy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include <boost/endian/conversion.hpp>

#include "l4lb/wire/detail/byte_access.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
/// Defined when detail::crc32c_sse42 exists (x86 with g++/clang); it may still only be called on
/// a CPU that has SSE4.2 (detail::crc32c_sse42_supported()).
#define L4LB_CRC32C_HAVE_SSE42_PATH 1
#endif

namespace l4lb::wire {

namespace detail {

/// The Castagnoli polynomial 0x1EDC6F41 bit-reflected: CRC32c is computed least significant bit
/// first (RFC 9260 Appendix A; the kernel's crc32c and the SSE4.2 instruction do the same).
inline constexpr std::uint32_t crc32c_poly_reflected = 0x82F6'3B78u;

using crc32c_table_set = std::array<std::array<std::uint32_t, 256>, 8>;

/// tables[0][b]: the CRC register after shifting byte b through it (one byte at a time).
/// tables[k][b]: the same byte followed by k zero bytes, so eight table lookups advance the
/// register by eight bytes at once (slicing-by-8).
constexpr crc32c_table_set make_crc32c_tables() noexcept {
  crc32c_table_set t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t r = b;
    for (int i = 0; i < 8; ++i) r = (r >> 1) ^ ((r & 1u) != 0 ? crc32c_poly_reflected : 0u);
    t[0][b] = r;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}

inline constexpr crc32c_table_set crc32c_tables = make_crc32c_tables();

/// Advances the raw CRC register (no initial or final inversion) over n bytes, portably.
constexpr std::uint32_t crc32c_update_portable(std::uint32_t reg, const std::byte* p, std::size_t n) noexcept {
  const auto& t = crc32c_tables;
  if (!std::is_constant_evaluated()) {
    while (n >= 8) {
      // The first byte of the eight sits in the low bits (reflected CRC), so the word is read
      // little-endian on every host.
      const std::uint64_t w = boost::endian::load_little_u64(as_uchar(p)) ^ reg;
      reg = t[7][w & 0xFFu] ^ t[6][(w >> 8) & 0xFFu] ^ t[5][(w >> 16) & 0xFFu] ^ t[4][(w >> 24) & 0xFFu] ^
            t[3][(w >> 32) & 0xFFu] ^ t[2][(w >> 40) & 0xFFu] ^ t[1][(w >> 48) & 0xFFu] ^ t[0][w >> 56];
      p += 8;
      n -= 8;
    }
  }
  for (; n != 0; --n, ++p) reg = (reg >> 8) ^ t[0][(reg ^ std::to_integer<std::uint32_t>(*p)) & 0xFFu];
  return reg;
}

#if defined(L4LB_CRC32C_HAVE_SSE42_PATH)
/// The same with the SSE4.2 crc32 instruction (its polynomial is Castagnoli's, reflected). Eight
/// bytes per instruction; one dependency chain, which at packet sizes beats interleaving streams
/// whose partial CRCs would then have to be combined.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_update_sse42(std::uint32_t reg, const std::byte* p,
                                                                           std::size_t n) noexcept {
#if defined(__x86_64__)
  std::uint64_t r64 = reg;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    r64 = _mm_crc32_u64(r64, w);
    p += 8;
    n -= 8;
  }
  reg = static_cast<std::uint32_t>(r64);
#endif
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    reg = _mm_crc32_u32(reg, w);
    p += 4;
    n -= 4;
  }
  for (; n != 0; --n, ++p) reg = _mm_crc32_u8(reg, std::to_integer<unsigned char>(*p));
  return reg;
}

/// Whether this CPU has the instruction. Reads what libgcc/compiler-rt detected at start-up;
/// before that (in a static initialiser) it may answer false, and crc32c() then takes the
/// tables: the same result, only slower.
[[nodiscard]] inline bool crc32c_sse42_supported() noexcept { return __builtin_cpu_supports("sse4.2"); }

/// CRC32c through the instruction whatever the build targets. Precondition:
/// crc32c_sse42_supported().
[[nodiscard]] inline std::uint32_t crc32c_sse42(std::span<const std::byte> bytes, std::uint32_t seed = 0) noexcept {
  return ~crc32c_update_sse42(~seed, bytes.data(), bytes.size());
}
#endif

/// Raw register update through the fastest path: the instruction when the build targets
/// SSE4.2, else when the CPU has it (one load and test of what libgcc detected at start-up; a
/// default x86-64 build would otherwise run the tables at a fifth of the speed), else the tables.
constexpr std::uint32_t crc32c_update(std::uint32_t reg, const std::byte* p, std::size_t n) noexcept {
#if defined(L4LB_CRC32C_HAVE_SSE42_PATH)
  if (!std::is_constant_evaluated()) {
#if defined(__SSE4_2__)
    return crc32c_update_sse42(reg, p, n);
#else
    if (crc32c_sse42_supported()) return crc32c_update_sse42(reg, p, n);
#endif
  }
#endif
  return crc32c_update_portable(reg, p, n);
}

/// CRC32c through the portable tables only (tests compare it with the instruction).
[[nodiscard]] constexpr std::uint32_t crc32c_portable(std::span<const std::byte> bytes,
                                                      std::uint32_t seed = 0) noexcept {
  return ~crc32c_update_portable(~seed, bytes.data(), bytes.size());
}

}  // namespace detail

/// CRC32c of `bytes` (register preset to all ones, result inverted: RFC 3720 B.4, RFC 9260
/// Appendix A). `seed` continues an earlier result: crc32c(b, crc32c(a)) == crc32c(a then b).
/// The value is a number; SCTP and iSCSI put it on the wire least significant byte first, e.g.
/// 32 zero bytes give 0x8A9136AA, sent as aa 36 91 8a (RFC 3720 B.4).
[[nodiscard]] constexpr std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t seed = 0) noexcept {
  return ~detail::crc32c_update(~seed, bytes.data(), bytes.size());
}

// ---- SCTP ----------------------------------------------------------------------------------

/// The SCTP common header (RFC 9260 section 3.1): source port 0..1, destination port 2..3,
/// verification tag 4..7, checksum 8..11. The checksum covers the whole SCTP packet (common
/// header and every chunk, to the end of the IP payload) and nothing else: no pseudo-header,
/// so an address change alone leaves it valid, and a port change needs it recomputed.
inline constexpr std::size_t sctp_checksum_offset = 8;
inline constexpr std::size_t sctp_header_len = 12;

/// The checksum `sctp_packet` should carry: CRC32c over it with the checksum field counted as
/// zero (RFC 9260 section 6.8), computed without writing to the buffer. Should the span be
/// shorter than the common header, the part of the field present counts as zero and nothing
/// outside the span is read.
[[nodiscard]] constexpr std::uint32_t sctp_checksum(std::span<const std::byte> sctp_packet) noexcept {
  const std::size_t n = sctp_packet.size();
  const std::size_t before = n < sctp_checksum_offset ? n : sctp_checksum_offset;
  const std::size_t field = n <= sctp_checksum_offset ? 0 : (n < sctp_header_len ? n : sctp_header_len) - before;
  constexpr std::array<std::byte, 4> zeros{};
  std::uint32_t reg = detail::crc32c_update(~std::uint32_t{0}, sctp_packet.data(), before);
  reg = detail::crc32c_update(reg, zeros.data(), field);
  reg = detail::crc32c_update(reg, sctp_packet.data() + before + field, n - before - field);
  return ~reg;
}

/// The checksum field as a number. The CRC's least significant byte is sent first: Linux stores
/// cpu_to_le32 of it (include/net/sctp/checksum.h sctp_compute_cksum), and RFC 9260 Appendix A
/// places the reflected CRC's bytes in that order too. Precondition: size() >= 12.
[[nodiscard]] inline std::uint32_t load_sctp_checksum(std::span<const std::byte> sctp_packet) noexcept {
  return boost::endian::load_little_u32(detail::as_uchar(sctp_packet.data() + sctp_checksum_offset));
}

/// Whether the packet's checksum field holds its CRC32c. False for fewer than 12 bytes.
[[nodiscard]] inline bool sctp_checksum_ok(std::span<const std::byte> sctp_packet) noexcept {
  return sctp_packet.size() >= sctp_header_len && load_sctp_checksum(sctp_packet) == sctp_checksum(sctp_packet);
}

/// Computes the checksum and writes it into the field (least significant byte first). Returns
/// false and writes nothing when the span is shorter than the common header.
inline bool store_sctp_checksum(std::span<std::byte> sctp_packet) noexcept {
  if (sctp_packet.size() < sctp_header_len) return false;
  const std::uint32_t c = sctp_checksum(sctp_packet);
  boost::endian::store_little_u32(detail::as_uchar(sctp_packet.data() + sctp_checksum_offset), c);
  return true;
}

}  // namespace l4lb::wire
