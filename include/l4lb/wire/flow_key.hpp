// The identity of a flow: protocol plus source and destination endpoints, either family.
// 38 bytes, trivially copyable, hashable; a symmetric hash (equal for both directions of a flow)
// steers the two directions of a connection to the same core (share-nothing sharding).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/hash.hpp"

namespace l4lb::wire {

/// IANA protocol numbers l4lb cares about.
namespace ip_proto {
inline constexpr std::uint8_t hopopt = 0;
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t ipip = 4;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t ipv6 = 41;
inline constexpr std::uint8_t ipv6_route = 43;
inline constexpr std::uint8_t ipv6_frag = 44;
inline constexpr std::uint8_t gre = 47;
inline constexpr std::uint8_t esp = 50;
inline constexpr std::uint8_t ah = 51;
inline constexpr std::uint8_t icmpv6 = 58;
inline constexpr std::uint8_t ipv6_nonxt = 59;
inline constexpr std::uint8_t ipv6_opts = 60;
inline constexpr std::uint8_t sctp = 132;
}  // namespace ip_proto

struct flow_key {
  std::array<std::uint8_t, 16> src_addr{};  // network order; v4 uses the first 4 bytes
  std::array<std::uint8_t, 16> dst_addr{};
  std::uint16_t src_port = 0;  // host order; 0 for protocols without ports
  std::uint16_t dst_port = 0;
  std::uint8_t protocol = 0;
  ip_family family = ip_family::v4;

  constexpr flow_key() noexcept = default;
  constexpr flow_key(std::uint8_t proto, const endpoint& src, const endpoint& dst) noexcept
      : src_addr(src.address.raw()),
        dst_addr(dst.address.raw()),
        src_port(src.port),
        dst_port(dst.port),
        protocol(proto),
        family(src.address.family()) {}

  [[nodiscard]] ip_address src_address() const noexcept {
    return ip_address::from_bytes(family, src_addr.data());
  }
  [[nodiscard]] ip_address dst_address() const noexcept {
    return ip_address::from_bytes(family, dst_addr.data());
  }
  [[nodiscard]] endpoint src() const noexcept { return {src_address(), src_port}; }
  [[nodiscard]] endpoint dst() const noexcept { return {dst_address(), dst_port}; }

  /// The same flow seen from the other side.
  [[nodiscard]] constexpr flow_key reversed() const noexcept {
    flow_key r = *this;
    std::swap(r.src_addr, r.dst_addr);
    std::swap(r.src_port, r.dst_port);
    return r;
  }

  /// Direction-dependent hash, for tables keyed by one direction.
  [[nodiscard]] std::uint64_t hash(std::uint64_t seed = 0) const noexcept {
    using detail::load_u64;
    std::uint64_t meta = (std::uint64_t{src_port} << 32) | (std::uint64_t{dst_port} << 16) |
                         (std::uint64_t{protocol} << 8) | static_cast<std::uint64_t>(family);
    std::uint64_t h = detail::fold_multiply(load_u64(src_addr.data()) ^ seed ^ detail::hash_k0,
                                            load_u64(dst_addr.data()) ^ detail::hash_k1);
    if (family == ip_family::v6) {
      h = detail::fold_multiply(load_u64(src_addr.data() + 8) ^ h ^ detail::hash_k2,
                                load_u64(dst_addr.data() + 8) ^ detail::hash_k0);
    }
    return detail::fold_multiply(h ^ meta, detail::hash_k1 ^ detail::hash_k2);
  }

  /// Same value for a flow and its reverse: the two endpoints are put in a canonical order
  /// (compared as integers, which is cheap; any fixed order works) before mixing.
  [[nodiscard]] std::uint64_t symmetric_hash(std::uint64_t seed = 0) const noexcept {
    using detail::load_u64;
    std::uint64_t a0 = load_u64(src_addr.data()), a1 = load_u64(src_addr.data() + 8);
    std::uint64_t b0 = load_u64(dst_addr.data()), b1 = load_u64(dst_addr.data() + 8);
    std::uint64_t pa = src_port, pb = dst_port;
    if (a0 > b0 || (a0 == b0 && (a1 > b1 || (a1 == b1 && pa > pb)))) {
      std::swap(a0, b0);
      std::swap(a1, b1);
      std::swap(pa, pb);
    }
    std::uint64_t h = detail::fold_multiply(a0 ^ seed ^ detail::hash_k0, b0 ^ detail::hash_k1);
    if (family == ip_family::v6)
      h = detail::fold_multiply(a1 ^ h ^ detail::hash_k2, b1 ^ detail::hash_k0);
    const std::uint64_t meta = (pa << 32) | (pb << 16) | (std::uint64_t{protocol} << 8) |
                               static_cast<std::uint64_t>(family);
    return detail::fold_multiply(h ^ meta, detail::hash_k1 ^ detail::hash_k2);
  }

  [[nodiscard]] std::string to_string() const {
    std::string s;
    switch (protocol) {
      case ip_proto::tcp: s = "tcp "; break;
      case ip_proto::udp: s = "udp "; break;
      case ip_proto::icmp: s = "icmp "; break;
      case ip_proto::icmpv6: s = "icmpv6 "; break;
      case ip_proto::sctp: s = "sctp "; break;
      default: s = "proto "; detail::append_decimal(s, protocol); s.push_back(' ');
    }
    src().append_to(s);
    s += " -> ";
    dst().append_to(s);
    return s;
  }

  friend constexpr bool operator==(const flow_key&, const flow_key&) = default;
  friend constexpr auto operator<=>(const flow_key&, const flow_key&) = default;
};

}  // namespace l4lb::wire

template <>
struct std::hash<l4lb::wire::flow_key> {
  std::size_t operator()(const l4lb::wire::flow_key& k) const noexcept {
    return static_cast<std::size_t>(k.hash());
  }
};
