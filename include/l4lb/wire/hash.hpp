// Fast non-cryptographic hashing for flow keys and addresses (wyhash-style 64x64->128 multiply
// folding). Seedable so that a connection table can pick a per-instance seed; schedulers that must
// agree across directors use their own fixed functions (IPVS's hash_32, hsiphash), not this one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace l4lb::wire {

namespace detail {
__extension__ using uint128 = unsigned __int128;

inline constexpr std::uint64_t hash_k0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t hash_k1 = 0xe7037ed1a0b428dbULL;
inline constexpr std::uint64_t hash_k2 = 0x8ebc6af09c88c6e3ULL;

constexpr std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
  uint128 r = static_cast<uint128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t load_u64(const void* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint64_t load_u32(const void* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace detail

/// Combines a hash with one more 64-bit value; full avalanche.
[[nodiscard]] constexpr std::uint64_t hash_mix(std::uint64_t h, std::uint64_t v) noexcept {
  return detail::fold_multiply(h ^ detail::hash_k0, v ^ detail::hash_k1);
}

/// Hashes n bytes. Reads only [p, p+n).
[[nodiscard]] inline std::uint64_t hash_bytes(const void* data, std::size_t n,
                                              std::uint64_t seed = 0) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = seed ^ detail::hash_k2 ^ static_cast<std::uint64_t>(n);
  while (n >= 16) {
    h = detail::fold_multiply(detail::load_u64(p) ^ detail::hash_k0 ^ h,
                              detail::load_u64(p + 8) ^ detail::hash_k1);
    p += 16;
    n -= 16;
  }
  std::uint64_t a = 0, b = 0;
  if (n >= 8) {
    a = detail::load_u64(p);
    b = detail::load_u64(p + n - 8);
  } else if (n >= 4) {
    a = detail::load_u32(p);
    b = detail::load_u32(p + n - 4);
  } else if (n > 0) {
    a = (std::uint64_t{p[0]} << 16) | (std::uint64_t{p[n / 2]} << 8) | p[n - 1];
  }
  return detail::fold_multiply(h ^ detail::hash_k1 ^ a, b ^ detail::hash_k0);
}

}  // namespace l4lb::wire
