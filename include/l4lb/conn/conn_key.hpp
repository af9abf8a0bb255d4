// Compact keys of the connection table, one layout per address family: the client-side key
// (protocol, client endpoint, virtual endpoint — l4lb::wire::flow_key of a client packet) and the
// reply key (protocol, real server endpoint, client endpoint — a NAT reply), with their hashes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/hash.hpp"

namespace l4lb::conn {

/// Position of a connection in its table; stable while the connection lives.
using conn_ref = std::uint32_t;
inline constexpr conn_ref no_conn = 0xFFFF'FFFFu;

/// Position of a persistence template in its table (24 bits, stored in the connection).
using template_ref = std::uint32_t;
inline constexpr template_ref no_template = 0x00FF'FFFFu;

template <class Addr>
inline constexpr bool is_address_v =
    std::is_same_v<Addr, wire::ipv4_address> || std::is_same_v<Addr, wire::ipv6_address>;

template <class Addr>
inline constexpr wire::ip_family family_of = std::is_same_v<Addr, wire::ipv4_address>
                                                 ? wire::ip_family::v4
                                                 : wire::ip_family::v6;

namespace detail {
template <class Addr>
Addr address_from(const std::array<std::uint8_t, 16>& raw) noexcept {
  Addr a;
  std::memcpy(a.bytes.data(), raw.data(), Addr::size);
  return a;
}
template <class Addr>
void address_to(std::array<std::uint8_t, 16>& raw, const Addr& a) noexcept {
  raw = {};
  std::memcpy(raw.data(), a.bytes.data(), Addr::size);
}

// Hash of two addresses and a 64-bit word of ports and protocol (wyhash-style folding; the
// table post-mixes nothing, so every output bit must depend on every input bit).
template <class Addr>
std::uint64_t hash_addresses(const Addr& a, const Addr& b, std::uint64_t tail,
                             std::uint64_t seed) noexcept {
  using wire::detail::fold_multiply;
  using wire::detail::hash_k0;
  using wire::detail::hash_k1;
  using wire::detail::hash_k2;
  if constexpr (Addr::size == 4) {
    std::uint32_t x, y;
    std::memcpy(&x, a.bytes.data(), 4);
    std::memcpy(&y, b.bytes.data(), 4);
    const std::uint64_t w = (std::uint64_t{x} << 32) | y;
    const std::uint64_t h = fold_multiply(w ^ seed ^ hash_k0, tail ^ hash_k1);
    return fold_multiply(h ^ hash_k2, w ^ tail ^ hash_k0);
  } else {
    const unsigned char* pa = a.bytes.data();
    const unsigned char* pb = b.bytes.data();
    using wire::detail::load_u64;
    std::uint64_t h = fold_multiply(load_u64(pa) ^ seed ^ hash_k0, load_u64(pa + 8) ^ hash_k1);
    h = fold_multiply(load_u64(pb) ^ h ^ hash_k2, load_u64(pb + 8) ^ hash_k0);
    return fold_multiply(h ^ tail ^ hash_k1, tail ^ seed ^ hash_k2);
  }
}
}  // namespace detail

/// A connection as the client sees it: what a packet from the client carries. Its first
/// 2*Addr::size + 4 bytes have the same layout as the table's slot, so they compare as one block.
template <class Addr>
struct conn_key {
  static_assert(is_address_v<Addr>);
  Addr client_addr{};
  Addr virtual_addr{};
  std::uint16_t client_port = 0;
  std::uint16_t virtual_port = 0;
  std::uint8_t protocol = 0;

  /// From a client→virtual-service packet's flow key. Precondition: family_of<Addr>.
  [[nodiscard]] static conn_key from_flow(const wire::flow_key& f) noexcept {
    return {detail::address_from<Addr>(f.src_addr), detail::address_from<Addr>(f.dst_addr),
            f.src_port, f.dst_port, f.protocol};
  }
  /// The flow key of the client's packets.
  [[nodiscard]] wire::flow_key to_flow() const noexcept {
    wire::flow_key f;
    detail::address_to(f.src_addr, client_addr);
    detail::address_to(f.dst_addr, virtual_addr);
    f.src_port = client_port;
    f.dst_port = virtual_port;
    f.protocol = protocol;
    f.family = family_of<Addr>;
    return f;
  }

  [[nodiscard]] std::uint64_t hash(std::uint64_t seed = 0) const noexcept {
    const std::uint64_t tail = (std::uint64_t{protocol} << 32) |
                               (std::uint64_t{virtual_port} << 16) | client_port;
    return detail::hash_addresses(client_addr, virtual_addr, tail, seed);
  }

  friend bool operator==(const conn_key&, const conn_key&) = default;
  friend auto operator<=>(const conn_key&, const conn_key&) = default;
};

/// A NAT reply as the director sees it: from the real server's endpoint to the client's.
template <class Addr>
struct reply_key {
  static_assert(is_address_v<Addr>);
  Addr server_addr{};
  Addr client_addr{};
  std::uint16_t server_port = 0;
  std::uint16_t client_port = 0;
  std::uint8_t protocol = 0;

  /// From a server→client packet's flow key. Precondition: family_of<Addr>.
  [[nodiscard]] static reply_key from_flow(const wire::flow_key& f) noexcept {
    return {detail::address_from<Addr>(f.src_addr), detail::address_from<Addr>(f.dst_addr),
            f.src_port, f.dst_port, f.protocol};
  }

  [[nodiscard]] std::uint64_t hash(std::uint64_t seed = 0) const noexcept {
    // A different constant from conn_key so a key and a reply of equal bytes spread apart.
    const std::uint64_t tail = (std::uint64_t{protocol} << 32) |
                               (std::uint64_t{server_port} << 16) | client_port |
                               0x5bd1'e995'0000'0000ull;
    return detail::hash_addresses(server_addr, client_addr, tail, seed);
  }

  friend bool operator==(const reply_key&, const reply_key&) = default;
};

using conn_key_v4 = conn_key<wire::ipv4_address>;
using conn_key_v6 = conn_key<wire::ipv6_address>;
using reply_key_v4 = reply_key<wire::ipv4_address>;
using reply_key_v6 = reply_key<wire::ipv6_address>;

}  // namespace l4lb::conn
