// IPv4 identification numbers for the IPv4 headers a director writes itself (a tunnel's outer
// header when the inner packet has no DF, the ICMP answers), and IPv6 fragment identifications
// for the fragments it sends, picked the way Linux picks them for
// packets without DF (net/ipv4/route.c ip_select_ident -> ip_idents_reserve): a table of 2048
// counters (IP_IDENTS_SZ), the counter chosen by a hash of (destination, source, protocol), each
// packet taking its counter's next value. IDs toward one destination then repeat only after 65536
// packets, which is what reassembly needs (RFC 791; RFC 6864 4.1: unique per source, destination
// and protocol for as long as fragments may live). Unlike the kernel's, this table has no random
// start and no time-based jumps: it never reads a clock, and the same calls give the same IDs.
//
// One table may be shared by threads (relaxed atomic counters, no locks, no allocation); the
// library's shared one is default_ip_id_generator(). A generator of one's own (with its own seed)
// keeps IDs reproducible in tests and independent between directors.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/hash.hpp"

namespace l4lb::forward {

class ip_id_generator {
 public:
  static constexpr std::size_t buckets = 2048;

  constexpr ip_id_generator() noexcept = default;
  /// `seed` changes the hash and every counter's starting value (the kernel's per-boot random key).
  explicit constexpr ip_id_generator(std::uint64_t seed) noexcept : seed_(seed) {}
  ip_id_generator(const ip_id_generator&) = delete;
  ip_id_generator& operator=(const ip_id_generator&) = delete;

  /// The next ID for packets `src` -> `dst` of `protocol`; `src`, `dst` are network-order
  /// address bytes (4 or 16, by `family`), as they sit in a header.
  [[nodiscard]] std::uint16_t next(wire::ip_family family, const void* src, const void* dst,
                                   std::uint8_t protocol) noexcept {
    const std::size_t n = family == wire::ip_family::v4 ? 4 : 16;
    const std::uint64_t h = wire::hash_bytes(src, n, wire::hash_bytes(dst, n, seed_ ^ protocol));
    const std::size_t bucket = static_cast<std::size_t>(h % buckets);
    const auto start = static_cast<std::uint32_t>(h >> 32);
    return static_cast<std::uint16_t>(start + counters_[bucket].fetch_add(1, std::memory_order_relaxed));
  }
  [[nodiscard]] std::uint16_t next(const wire::ip_address& src, const wire::ip_address& dst,
                                   std::uint8_t protocol) noexcept {
    return next(src.family(), src.raw().data(), dst.raw().data(), protocol);
  }
  /// The next 32-bit IPv6 fragment identification for `src` -> `dst` (16 network-order bytes
  /// each): the same counters keyed by the two addresses alone, as ipv6_select_ident
  /// (net/ipv6/output_core.c) takes its ID from ip_idents_reserve.
  [[nodiscard]] std::uint32_t next_ipv6_fragment(const void* src, const void* dst) noexcept {
    const std::uint64_t h = wire::hash_bytes(src, 16, wire::hash_bytes(dst, 16, seed_ ^ 44));
    const std::size_t bucket = static_cast<std::size_t>(h % buckets);
    return static_cast<std::uint32_t>(h >> 32) + counters_[bucket].fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::uint64_t seed_ = 0;
  std::array<std::atomic<std::uint32_t>, buckets> counters_{};
};

/// The generator rewriters use when their configuration names none: one per program, constant-
/// initialized (no start-up code, no allocation), shared by every thread.
[[nodiscard]] inline ip_id_generator& default_ip_id_generator() noexcept {
  static constinit ip_id_generator shared{};
  return shared;
}

/// `g`, or the shared generator when `g` is null.
[[nodiscard]] inline ip_id_generator& ip_ids_or_default(ip_id_generator* g) noexcept {
  return g != nullptr ? *g : default_ip_id_generator();
}

}  // namespace l4lb::forward
