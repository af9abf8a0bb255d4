// Fixed, documented hash functions for l4lb's own consistent-hashing policies (weighted Maglev,
// hash ring): every director that runs the same configuration must pick the same real server for
// a flow, so these never take a per-instance seed and read bytes in a fixed (little-endian) order,
// giving the same values on any host. Changing a formula here changes every table: don't.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include <boost/endian/conversion.hpp>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::sched::stable_hash {

/// What of a flow decides its real server.
enum class flow_hash_key : std::uint8_t {
  flow,                     // protocol, both addresses and both ports (per connection)
  source_address,           // client address only (every connection of a client together)
  source_address_and_port,  // client address and port
};

[[nodiscard]] constexpr std::string_view to_string(flow_hash_key k) noexcept {
  switch (k) {
    case flow_hash_key::flow: return "flow";
    case flow_hash_key::source_address: return "source_address";
    case flow_hash_key::source_address_and_port: return "source_address_and_port";
  }
  return "unknown";
}

/// The words a policy's `key` option takes (kebab-case; the first for a value is its spelling).
struct flow_hash_key_word {
  std::string_view word;
  flow_hash_key value;
};
inline constexpr std::array<flow_hash_key_word, 3> flow_hash_key_words{{
    {"flow", flow_hash_key::flow},
    {"source-address", flow_hash_key::source_address},
    {"source-address-and-port", flow_hash_key::source_address_and_port},
}};

// The formulas (a reference model can be written from these lines alone):
//   mix(a, b)  = low64(a*b) XOR high64(a*b), the product taken over 128 bits
//   meta       = sport | dport << 16 | protocol << 32 | family << 40   (family = 4 or 6)
//   leN(p)     = N-bit little-endian load of the address bytes (network order as in packets)
//   IPv4:  h = mix(le32(src) | le32(dst) << 32  XOR seed XOR K0,  meta XOR K1)
//   IPv6:  h = mix(le64(src[0..8])  XOR seed XOR K0,  le64(dst[0..8])  XOR K1)
//          h = mix(le64(src[8..16]) XOR h XOR K2,     le64(dst[8..16]) XOR K0)
//          h = mix(h XOR meta XOR K1, K2)
//   result = mix(h XOR K2, K1)
// flow_hash(key = flow) hashes the flow as given (its reverse when `inverse`); source_address
// uses dst = 0 and meta with sport = dport = protocol = 0; source_address_and_port keeps sport.
// endpoint_hash(e, seed) is the source_address_and_port hash of a flow from e.
inline constexpr std::uint64_t k0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t k1 = 0xe7037ed1a0b428dbULL;
inline constexpr std::uint64_t k2 = 0x8ebc6af09c88c6e3ULL;

/// Seeds, fixed forever (ASCII "l4lbflow", "l4lbmgof", "l4lbmgsk", "l4lbring").
inline constexpr std::uint64_t flow_seed = 0x6c346c62666c6f77ULL;
inline constexpr std::uint64_t maglev_offset_seed = 0x6c346c626d676f66ULL;
inline constexpr std::uint64_t maglev_skip_seed = 0x6c346c626d67736bULL;
inline constexpr std::uint64_t ring_seed = 0x6c346c6272696e67ULL;

[[nodiscard]] constexpr std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using u128 = unsigned __int128;
  const u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

/// floor(h * n / 2^64): maps a 64-bit hash onto 0..n-1 without a division (Lemire's reduction).
[[nodiscard]] constexpr std::uint32_t reduce(std::uint64_t h, std::uint32_t n) noexcept {
  __extension__ using u128 = unsigned __int128;
  return static_cast<std::uint32_t>((static_cast<u128>(h) * n) >> 64);
}

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit finaliser.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

[[nodiscard]] constexpr std::uint64_t make_meta(std::uint16_t sport, std::uint16_t dport,
                                                std::uint8_t protocol,
                                                wire::ip_family family) noexcept {
  return std::uint64_t{sport} | (std::uint64_t{dport} << 16) | (std::uint64_t{protocol} << 32) |
         (static_cast<std::uint64_t>(family) << 40);
}

/// The core formula above. `src` and `dst` point at 16 address bytes (IPv4: the first 4 count).
[[nodiscard]] inline std::uint64_t hash_parts(wire::ip_family family, const std::uint8_t* src,
                                              const std::uint8_t* dst, std::uint64_t meta,
                                              std::uint64_t seed) noexcept {
  using boost::endian::load_little_u32;
  using boost::endian::load_little_u64;
  std::uint64_t h;
  if (family == wire::ip_family::v4) {
    const std::uint64_t a = std::uint64_t{load_little_u32(src)} |
                            (std::uint64_t{load_little_u32(dst)} << 32);
    h = mix(a ^ seed ^ k0, meta ^ k1);
  } else {
    h = mix(load_little_u64(src) ^ seed ^ k0, load_little_u64(dst) ^ k1);
    h = mix(load_little_u64(src + 8) ^ h ^ k2, load_little_u64(dst + 8) ^ k0);
    h = mix(h ^ meta ^ k1, k2);
  }
  return mix(h ^ k2, k1);
}

/// The hash of what `key` selects of a flow; with `inverse` (an ICMP error quoting the flow from
/// the other side) the flow is read reversed, so the quote hashes like the original connection.
[[nodiscard]] inline std::uint64_t flow_hash(const wire::flow_key& flow, flow_hash_key key,
                                             bool inverse,
                                             std::uint64_t seed = flow_seed) noexcept {
  static constexpr std::array<std::uint8_t, 16> zero{};
  const std::uint8_t* src = inverse ? flow.dst_addr.data() : flow.src_addr.data();
  const std::uint8_t* dst = inverse ? flow.src_addr.data() : flow.dst_addr.data();
  const std::uint16_t sport = inverse ? flow.dst_port : flow.src_port;
  const std::uint16_t dport = inverse ? flow.src_port : flow.dst_port;
  switch (key) {
    case flow_hash_key::flow:
      return hash_parts(flow.family, src, dst, make_meta(sport, dport, flow.protocol, flow.family),
                        seed);
    case flow_hash_key::source_address:
      return hash_parts(flow.family, src, zero.data(), make_meta(0, 0, 0, flow.family), seed);
    case flow_hash_key::source_address_and_port:
      return hash_parts(flow.family, src, zero.data(), make_meta(sport, 0, 0, flow.family), seed);
  }
  return 0;
}

/// The hash of a real server's endpoint (its identity in consistent tables, never its position).
[[nodiscard]] inline std::uint64_t endpoint_hash(const wire::endpoint& e,
                                                 std::uint64_t seed) noexcept {
  static constexpr std::array<std::uint8_t, 16> zero{};
  return hash_parts(e.address.family(), e.address.raw().data(), zero.data(),
                    make_meta(e.port, 0, 0, e.address.family()), seed);
}

}  // namespace l4lb::sched::stable_hash
