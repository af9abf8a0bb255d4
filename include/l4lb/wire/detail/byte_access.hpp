// Big-endian field access at byte offsets inside a span of std::byte, for the wire header views.
// Boost.Endian does the byte order; the caller's bytes are never reinterpreted as a struct.
// Bounds are the caller's job: every view checks its length once, in make().
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include <boost/endian/conversion.hpp>

namespace l4lb::wire::detail {

/// The byte type of a view: std::byte (mutable view) or const std::byte (read-only view).
template <class Byte>
concept wire_byte = std::same_as<std::remove_const_t<Byte>, std::byte>;

// unsigned char may alias any object, so pointing it at std::byte storage is well defined.
[[nodiscard]] inline const unsigned char* as_uchar(const std::byte* p) noexcept {
  return reinterpret_cast<const unsigned char*>(p);
}
[[nodiscard]] inline unsigned char* as_uchar(std::byte* p) noexcept {
  return reinterpret_cast<unsigned char*>(p);
}

[[nodiscard]] inline std::uint8_t load_u8(const std::byte* p) noexcept {
  return static_cast<std::uint8_t>(*p);
}
[[nodiscard]] inline std::uint16_t load_be16(const std::byte* p) noexcept {
  return boost::endian::load_big_u16(as_uchar(p));
}
[[nodiscard]] inline std::uint32_t load_be32(const std::byte* p) noexcept {
  return boost::endian::load_big_u32(as_uchar(p));
}
inline void store_u8(std::byte* p, std::uint8_t v) noexcept { *p = static_cast<std::byte>(v); }
inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
  boost::endian::store_big_u16(as_uchar(p), v);
}
inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
  boost::endian::store_big_u32(as_uchar(p), v);
}

/// Ones'-complement sum (RFC 1071) of an even-or-odd number of bytes, not yet folded.
/// Small and portable: the views need it only for the IPv4 header (20..60 bytes); the fast
/// general routine for payloads is l4lb/wire/checksum.hpp.
[[nodiscard]] inline std::uint32_t ones_sum(const std::byte* p, std::size_t n,
                                            std::uint32_t sum = 0) noexcept {
  // 32-bit big-endian words: hi * 2^16 + lo is hi + lo modulo 2^16 - 1, so the folded result is
  // the 16-bit sum's, with half the additions (a 20-byte header: 5 instead of 10).
  std::uint64_t s = sum;
  for (; n >= 4; n -= 4, p += 4) s += load_be32(p);
  if (n >= 2) {
    s += load_be16(p);
    p += 2;
    n -= 2;
  }
  if (n) s += static_cast<std::uint64_t>(load_u8(p)) << 8;
  while (s >> 16) s = (s & 0xffffu) + (s >> 16);
  return static_cast<std::uint32_t>(s);
}
/// Whether an option-less IPv4 header (20 bytes) sums to 0xffff, i.e. its checksum is right.
/// The ones'-complement sum is byte-order independent (RFC 1071 section 2(B)), so the words are
/// added as the machine loads them, without swapping: the straight parse path's check.
[[nodiscard]] inline bool ipv4_header20_sums_to_ones(const std::byte* p) noexcept {
  std::uint32_t w[5];
  std::memcpy(w, p, sizeof w);
  std::uint64_t s = std::uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
  s = (s & 0xffff'ffffu) + (s >> 32);
  s = (s & 0xffff'ffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return s == 0xffffu;
}
[[nodiscard]] inline std::uint16_t fold_complement(std::uint32_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffffu);
}

}  // namespace l4lb::wire::detail
