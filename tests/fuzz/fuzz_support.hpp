// Shared by the libFuzzer targets: a reader that takes parameters from the front of the fuzzer's
// input, a check that aborts (so libFuzzer reports it with the input), and checksums computed
// here, independently of l4lb's own code: the Internet checksum (RFC 1071, one's complement sum
// of 16-bit words) over a span with an optional pseudo-header (RFC 793 / 768 for IPv4, RFC 8200
// 8.1 for IPv6), and CRC32c (RFC 9260 appendix A, reflected polynomial 0x82F63B78, bit by bit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

namespace fuzz {

[[noreturn]] inline void fail(const char* what, int line) {
  std::fprintf(stderr, "invariant failed (line %d): %s\n", line, what);
  std::abort();
}
#define FUZZ_REQUIRE(cond) ((cond) ? (void)0 : ::fuzz::fail(#cond, __LINE__))

/// Takes values from the front of the input; zeros once it is used up.
class reader {
 public:
  reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  std::uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *d_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
  std::uint32_t u32() { return std::uint32_t{u16()} << 16 | u16(); }
  bool bit() { return (u8() & 1) != 0; }
  void bytes(std::uint8_t* out, std::size_t k) {
    for (std::size_t i = 0; i < k; ++i) out[i] = u8();
  }
  /// Up to `k` bytes (fewer when the input ends).
  std::span<const std::uint8_t> take(std::size_t k) {
    if (k > n_) k = n_;
    std::span<const std::uint8_t> s(d_, k);
    d_ += k;
    n_ -= k;
    return s;
  }
  std::span<const std::uint8_t> rest() { return take(n_); }
  [[nodiscard]] std::size_t left() const { return n_; }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
};

inline unsigned byte_at(std::span<const std::byte> s, std::size_t i) { return std::to_integer<unsigned>(s[i]); }
inline unsigned be16_at(std::span<const std::byte> s, std::size_t i) { return byte_at(s, i) << 8 | byte_at(s, i + 1); }

/// One's complement sum of `s` as 16-bit big-endian words (an odd last byte padded with zero).
inline std::uint32_t sum16(std::span<const std::byte> s, std::uint32_t acc = 0) {
  std::size_t i = 0;
  for (; i + 1 < s.size(); i += 2) acc += be16_at(s, i);
  if (i < s.size()) acc += byte_at(s, i) << 8;
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return acc;
}
/// Whether the data including its checksum field sums to all ones (the checksum verifies).
inline bool verifies(std::span<const std::byte> s, std::uint32_t pseudo = 0) {
  return sum16(s, pseudo) == 0xFFFF;
}

/// The pseudo-header sum for an upper-layer packet of `len` bytes and `proto` inside the IP
/// packet `ip` (IPv4: addresses at 12..20; IPv6: 8..40, the header's own addresses: l4lb's
/// rewriters do not use routing headers).
inline std::uint32_t pseudo(std::span<const std::byte> ip, unsigned proto, std::size_t len) {
  const bool v4 = (byte_at(ip, 0) >> 4) == 4;
  std::uint32_t acc = sum16(v4 ? ip.subspan(12, 8) : ip.subspan(8, 32));
  acc += proto;
  acc += static_cast<std::uint32_t>(len >> 16) + static_cast<std::uint32_t>(len & 0xFFFF);
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return acc;
}

inline std::uint32_t crc32c(std::span<const std::byte> s, std::size_t skip_at, std::size_t skip_len) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned b = (i >= skip_at && i < skip_at + skip_len) ? 0u : byte_at(s, i);
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
/// RFC 9260 6.8: the CRC32c of the SCTP packet with its checksum field zero, stored little-endian
/// (the byte order the RFC's appendix gives) at offset 8.
inline bool sctp_verifies(std::span<const std::byte> sctp) {
  if (sctp.size() < 12) return false;
  const std::uint32_t c = crc32c(sctp, 8, 4);
  const std::uint32_t stored = byte_at(sctp, 8) | byte_at(sctp, 9) << 8 | byte_at(sctp, 10) << 16 |
                               static_cast<std::uint32_t>(byte_at(sctp, 11)) << 24;
  return c == stored;
}

/// Whether `inner` lies inside `outer` (both spans of the same storage).
template <class A, class B>
bool inside(std::span<A> inner, std::span<B> outer) {
  const auto* ib = reinterpret_cast<const std::byte*>(inner.data());
  const auto* ob = reinterpret_cast<const std::byte*>(outer.data());
  if (inner.empty()) return true;
  return ib >= ob && ib + inner.size() <= ob + outer.size();
}

}  // namespace fuzz
