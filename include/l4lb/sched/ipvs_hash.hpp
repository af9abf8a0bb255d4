// The hash functions and key folding that IPVS's hashing schedulers use (sh, dh, mh, lblc, lblcr),
// bit for bit as on a 64-bit little-endian kernel, so that an l4lb director and a kernel director
// map the same flow to the same bucket. Also the sh/mh service flags (ipvsadm -b).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/endian/conversion.hpp>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::sched::ipvs {

/// include/linux/hash.h: GOLDEN_RATIO_32 (the multiplier since Linux 4.7).
inline constexpr std::uint32_t golden_ratio_32 = 0x61C88647u;

/// include/linux/hash.h hash_32: the top `bits` bits of v * GOLDEN_RATIO_32 (mod 2^32).
/// Precondition: 1 <= bits <= 32.
[[nodiscard]] constexpr std::uint32_t hash_32(std::uint32_t v, unsigned bits) noexcept {
  return static_cast<std::uint32_t>(v * golden_ratio_32) >> (32u - bits);
}

/// hsiphash_key_t on a 64-bit kernel: two 64-bit words.
struct hsiphash_key {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

namespace detail {

constexpr std::uint64_t rotl64(std::uint64_t x, unsigned b) noexcept {
  return (x << b) | (x >> (64u - b));
}

// SipHash state (lib/siphash.c). On 64-bit kernels hsiphash is SipHash-1-3: one compression round
// per 8-byte block, three finalisation rounds, result = low 32 bits of v0^v1^v2^v3.
struct sip_state {
  std::uint64_t v0, v1, v2, v3;

  constexpr explicit sip_state(const hsiphash_key& key) noexcept
      : v0(0x736f6d6570736575ULL ^ key.k0),
        v1(0x646f72616e646f6dULL ^ key.k1),
        v2(0x6c7967656e657261ULL ^ key.k0),
        v3(0x7465646279746573ULL ^ key.k1) {}

  constexpr void round() noexcept {
    v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);
    v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);
  }
  constexpr void compress(std::uint64_t m) noexcept {
    v3 ^= m;
    round();
    v0 ^= m;
  }
  // `b` is the last block: the trailing bytes with the total length in the top byte.
  constexpr std::uint32_t finish(std::uint64_t b) noexcept {
    compress(b);
    v2 ^= 0xff;
    round();
    round();
    round();
    return static_cast<std::uint32_t>(v0 ^ v1 ^ v2 ^ v3);
  }
};

}  // namespace detail

/// lib/siphash.c hsiphash() as built on 64-bit kernels (SipHash-1-3, 64-bit key words), over
/// `len` bytes at `data`. Reads only [data, data + len).
[[nodiscard]] constexpr std::uint32_t hsiphash(const std::uint8_t* data, std::size_t len,
                                               const hsiphash_key& key) noexcept {
  detail::sip_state s(key);
  const std::size_t whole = len - len % 8;
  for (std::size_t i = 0; i < whole; i += 8) {
    std::uint64_t m = 0;
    for (std::size_t k = 0; k < 8; ++k) m |= std::uint64_t{data[i + k]} << (8 * k);
    s.compress(m);
  }
  std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
  for (std::size_t k = 0; whole + k < len; ++k) b |= std::uint64_t{data[whole + k]} << (8 * k);
  return s.finish(b);
}

/// hsiphash of the four bytes of `v` in x86's (little-endian) memory order: what ip_vs_mh.c's
/// `hsiphash(&v, sizeof(v), key)` computes on x86-64, independent of this host's byte order.
[[nodiscard]] constexpr std::uint32_t hsiphash_u32(std::uint32_t v,
                                                   const hsiphash_key& key) noexcept {
  detail::sip_state s(key);
  return s.finish((std::uint64_t{4} << 56) | v);
}

/// IPVS's 32-bit fold of an address (ip_vs_sh_hashkey & co.): an IPv4 address in host order, an
/// IPv6 address as the XOR of its four 32-bit words in host order. `bytes` are network order.
[[nodiscard]] inline std::uint32_t fold_address(wire::ip_family family,
                                                const std::uint8_t* bytes) noexcept {
  using boost::endian::load_big_u32;
  if (family == wire::ip_family::v4) return load_big_u32(bytes);
  return load_big_u32(bytes) ^ load_big_u32(bytes + 4) ^ load_big_u32(bytes + 8) ^
         load_big_u32(bytes + 12);
}
[[nodiscard]] inline std::uint32_t fold_address(const wire::ip_address& a) noexcept {
  return fold_address(a.family(), a.raw().data());
}

/// Service scheduler flags IP_VS_SVC_F_SCHED1/2 (include/uapi/linux/ip_vs.h), as sh and mh read
/// them: SCHED1 = "sh-fallback"/"mh-fallback", SCHED2 = "sh-port"/"mh-port".
inline constexpr std::uint32_t svc_flag_sched1 = 0x0008;
inline constexpr std::uint32_t svc_flag_sched2 = 0x0010;

/// The two options of IPVS's sh and mh schedulers (ipvsadm -b).
struct hash_flags {
  /// On an unavailable bucket (weight 0 or overloaded), look further instead of refusing.
  bool fallback = false;
  /// Hash the client's L4 port too (TCP, UDP, SCTP only).
  bool port = false;

  [[nodiscard]] static constexpr hash_flags from_svc_flags(std::uint32_t svc_flags) noexcept {
    return {(svc_flags & svc_flag_sched1) != 0, (svc_flags & svc_flag_sched2) != 0};
  }
  [[nodiscard]] constexpr std::uint32_t to_svc_flags() const noexcept {
    return (fallback ? svc_flag_sched1 : 0u) | (port ? svc_flag_sched2 : 0u);
  }
  friend constexpr bool operator==(const hash_flags&, const hash_flags&) = default;
};

/// What sh and mh hash for a new connection (ip_vs_sh_schedule / ip_vs_mh_schedule): the client
/// address, or the destination address when the header is "inverse" (an ICMP error quoting the
/// flow); with the port flag also the matching L4 port, for TCP/UDP/SCTP only (0 otherwise).
struct client_key {
  std::uint32_t folded_address = 0;
  std::uint16_t port = 0;
};

[[nodiscard]] inline client_key client_key_of(const wire::flow_key& flow, bool inverse,
                                              bool use_port) noexcept {
  client_key k;
  k.folded_address =
      fold_address(flow.family, inverse ? flow.dst_addr.data() : flow.src_addr.data());
  if (use_port && (flow.protocol == wire::ip_proto::tcp || flow.protocol == wire::ip_proto::udp ||
                   flow.protocol == wire::ip_proto::sctp))
    k.port = inverse ? flow.dst_port : flow.src_port;
  return k;
}

}  // namespace l4lb::sched::ipvs
