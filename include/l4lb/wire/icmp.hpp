// ICMP (RFC 792) and ICMPv6 (RFC 4443) header view: both share the 8-byte layout type, code,
// checksum, 4 bytes of type-specific data. Also the quoted packet inside an ICMP error: where its
// IP and L4 headers are and which flow it names, so NAT and connection tracking can match it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/ipv4.hpp"
#include "l4lb/wire/ipv6.hpp"

namespace l4lb::wire {

/// The common ICMP/ICMPv6 header. Layout only.
struct icmp_header {
  unsigned char type;
  unsigned char code;
  boost::endian::big_uint16_buf_t checksum;
  boost::endian::big_uint32_buf_t rest;  ///< echo: identifier, sequence; 3/4: unused, next-hop MTU; v6 2: MTU
};
static_assert(sizeof(icmp_header) == 8 && alignof(icmp_header) == 1);
static_assert(std::is_standard_layout_v<icmp_header>);

namespace icmpv4_type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t dest_unreachable = 3;
inline constexpr std::uint8_t source_quench = 4;
inline constexpr std::uint8_t redirect = 5;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
inline constexpr std::uint8_t parameter_problem = 12;
}  // namespace icmpv4_type

namespace icmpv6_type {
inline constexpr std::uint8_t dest_unreachable = 1;
inline constexpr std::uint8_t packet_too_big = 2;
inline constexpr std::uint8_t time_exceeded = 3;
inline constexpr std::uint8_t parameter_problem = 4;
inline constexpr std::uint8_t echo_request = 128;
inline constexpr std::uint8_t echo_reply = 129;
inline constexpr std::uint8_t neighbor_solicitation = 135;
inline constexpr std::uint8_t neighbor_advertisement = 136;
}  // namespace icmpv6_type

/// ICMPv4 messages that quote the offending datagram (RFC 792): 3, 4, 5, 11, 12.
[[nodiscard]] constexpr bool is_icmpv4_error(std::uint8_t type) noexcept {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}
/// ICMPv6 error messages defined by RFC 4443: 1, 2, 3, 4.
[[nodiscard]] constexpr bool is_icmpv6_error(std::uint8_t type) noexcept { return type >= 1 && type <= 4; }
/// An error that carries a quote, for ICMP (protocol 1) or ICMPv6 (protocol 58).
[[nodiscard]] constexpr bool is_icmp_error(std::uint8_t protocol, std::uint8_t type) noexcept {
  return protocol == ip_proto::icmp ? is_icmpv4_error(type)
                                    : protocol == ip_proto::icmpv6 && is_icmpv6_error(type);
}
/// Echo request or reply (ICMP 8/0, ICMPv6 128/129).
[[nodiscard]] constexpr bool is_icmp_echo(std::uint8_t protocol, std::uint8_t type) noexcept {
  return protocol == ip_proto::icmp ? (type == 0 || type == 8)
                                    : protocol == ip_proto::icmpv6 && (type == 128 || type == 129);
}

template <detail::wire_byte Byte>
class basic_icmp_view {
 public:
  static constexpr std::size_t header_len = sizeof(icmp_header);

  [[nodiscard]] static constexpr basic_icmp_view unchecked(std::span<Byte> b) noexcept {
    return basic_icmp_view{b};
  }
  /// Errors: truncated_icmp (< 8 bytes).
  [[nodiscard]] static expected<basic_icmp_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_icmp};
    return basic_icmp_view{b};
  }

  [[nodiscard]] std::uint8_t type() const noexcept { return detail::load_u8(bytes_.data()); }
  [[nodiscard]] std::uint8_t code() const noexcept { return detail::load_u8(bytes_.data() + 1); }
  [[nodiscard]] std::uint16_t checksum() const noexcept { return u16(offsetof(icmp_header, checksum)); }
  [[nodiscard]] std::uint32_t rest_of_header() const noexcept {
    return detail::load_be32(bytes_.data() + offsetof(icmp_header, rest));
  }
  /// Echo identifier / sequence number (bytes 4-5 / 6-7).
  [[nodiscard]] std::uint16_t echo_ident() const noexcept { return u16(4); }
  [[nodiscard]] std::uint16_t echo_seq() const noexcept { return u16(6); }
  /// ICMPv4 3/4 "fragmentation needed": next-hop MTU in bytes 6-7 (RFC 1191 section 4).
  [[nodiscard]] std::uint16_t next_hop_mtu() const noexcept { return u16(6); }
  /// ICMPv6 2 "packet too big": 32-bit MTU in bytes 4-7 (RFC 4443 section 3.2).
  [[nodiscard]] std::uint32_t mtu() const noexcept { return rest_of_header(); }
  /// Everything after the 8-byte header: the quote of an error, the data of an echo.
  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  void set_type(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) { detail::store_u8(bytes_.data(), v); }
  void set_code(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) { detail::store_u8(bytes_.data() + 1, v); }
  void set_checksum(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + offsetof(icmp_header, checksum), v);
  }
  void set_rest_of_header(std::uint32_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be32(bytes_.data() + offsetof(icmp_header, rest), v);
  }
  void set_echo_ident(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 4, v);
  }
  void set_echo_seq(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 6, v);
  }
  void set_next_hop_mtu(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 6, v);
  }
  void set_mtu(std::uint32_t v) const noexcept requires(!std::is_const_v<Byte>) { set_rest_of_header(v); }

 private:
  explicit constexpr basic_icmp_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] std::uint16_t u16(std::size_t off) const noexcept { return detail::load_be16(bytes_.data() + off); }

  std::span<Byte> bytes_;
};

using icmp_view = basic_icmp_view<const std::byte>;
using icmp_mut_view = basic_icmp_view<std::byte>;

/// ICMP header values (smoltcp's Repr). emit() writes checksum 0; the caller fills it.
struct icmp_repr {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint32_t rest_of_header = 0;

  static constexpr std::size_t buffer_len = icmp_view::header_len;

  template <class Byte>
  [[nodiscard]] static icmp_repr parse(basic_icmp_view<Byte> v) noexcept {
    return {v.type(), v.code(), v.rest_of_header()};
  }
  void emit(icmp_mut_view v) const noexcept {
    v.set_type(type);
    v.set_code(code);
    v.set_checksum(0);
    v.set_rest_of_header(rest_of_header);
  }

  friend constexpr bool operator==(const icmp_repr&, const icmp_repr&) = default;
};

namespace detail {

/// The ports a flow_key gets from an L4 header with at least 8 bytes present: TCP, UDP and SCTP
/// ports; for echo (ICMP in IPv4, ICMPv6 in IPv6) the identifier as both ports, so that a reply's
/// key is the request's key reversed. Others: 0, 0. Reads k.family, so set the addresses first.
inline void read_flow_ports(std::uint8_t protocol, const std::byte* l4, flow_key& k) noexcept {
  switch (protocol) {
    case ip_proto::tcp:
    case ip_proto::udp:
    case ip_proto::sctp:
      k.src_port = load_be16(l4);
      k.dst_port = load_be16(l4 + 2);
      return;
    case ip_proto::icmp:
    case ip_proto::icmpv6:
      if ((protocol == ip_proto::icmp) != (k.family == ip_family::v4)) return;  // wrong family
      if (is_icmp_echo(protocol, load_u8(l4))) k.src_port = k.dst_port = load_be16(l4 + 4);
      return;
    default:
      return;
  }
}

inline void read_flow_addresses(ip_family f, const std::byte* ip, flow_key& k) noexcept {
  k.family = f;
  if (f == ip_family::v4) {
    std::memcpy(k.src_addr.data(), ip + offsetof(ipv4_header, src), 4);
    std::memcpy(k.dst_addr.data(), ip + offsetof(ipv4_header, dst), 4);
  } else {
    std::memcpy(k.src_addr.data(), ip + offsetof(ipv6_header, src), 16);
    std::memcpy(k.dst_addr.data(), ip + offsetof(ipv6_header, dst), 16);
  }
}

}  // namespace detail

/// Where the quoted packet of an ICMP error keeps its headers (offsets from the quote's start).
struct icmp_quote {
  std::uint16_t l4_offset = 0;  ///< quoted L4 header, after the quoted IP header and extensions
  std::uint8_t protocol = 0;    ///< quoted upper-layer protocol
  bool has_l4 = false;          ///< false if the quoted packet is a non-first fragment
};

/// The RFC 792 minimum of a quote beyond the IP header: "the first 64 bits of the original
/// datagram's data" (RFC 4443 asks for more, never less).
inline constexpr std::size_t icmp_quote_min_l4 = 8;

/// Locates the headers of the packet quoted by an ICMP error. `quote` is the ICMP payload (after
/// the 8-byte header) up to the end of the outer IP packet; the quoted packet must be of the outer
/// family. The quoted total/payload length is not checked: quotes are truncated by design.
/// Errors: truncated_icmp_quote (fewer than the quoted IP header, extensions included, + 8),
/// bad_icmp_quote (wrong version, IPv4 IHL < 5, an unacceptable IPv6 extension chain).
[[nodiscard]] inline expected<icmp_quote, drop_reason> parse_icmp_quote(
    ip_family family, std::span<const std::byte> quote) noexcept {
  icmp_quote q;
  if (family == ip_family::v4) {
    if (quote.size() < ipv4_view::min_header_len) return unexpected{drop_reason::truncated_icmp_quote};
    auto ip = ipv4_view::unchecked(quote);
    if (ip.version() != 4 || ip.ihl() < 5) return unexpected{drop_reason::bad_icmp_quote};
    if (quote.size() < ip.header_len() + icmp_quote_min_l4)
      return unexpected{drop_reason::truncated_icmp_quote};
    q.l4_offset = static_cast<std::uint16_t>(ip.header_len());
    q.protocol = ip.protocol();
    q.has_l4 = ip.frag_offset() == 0;
    return q;
  }
  if (quote.size() < ipv6_view::header_len) return unexpected{drop_reason::truncated_icmp_quote};
  auto ip = ipv6_view::unchecked(quote);
  if (ip.version() != 6) return unexpected{drop_reason::bad_icmp_quote};
  auto chain = walk_ipv6_extensions(quote, ip.next_header());
  if (!chain)
    return unexpected{chain.error() == drop_reason::truncated_ipv6_extension ? drop_reason::truncated_icmp_quote
                                                                             : drop_reason::bad_icmp_quote};
  if (quote.size() < std::size_t{chain->l4_offset} + icmp_quote_min_l4)
    return unexpected{drop_reason::truncated_icmp_quote};
  q.l4_offset = chain->l4_offset;
  q.protocol = chain->protocol;
  q.has_l4 = chain->reached_upper_layer;
  return q;
}

/// The flow named by a quote, as written in it, i.e. as the original sender saw it (for an error
/// about a packet the VIP sent, the source is the VIP). Precondition: `q` came from
/// parse_icmp_quote(family, quote) on these bytes.
[[nodiscard]] inline flow_key quoted_flow_key(ip_family family, std::span<const std::byte> quote,
                                              const icmp_quote& q) noexcept {
  flow_key k;
  detail::read_flow_addresses(family, quote.data(), k);
  k.protocol = q.protocol;
  if (q.has_l4) detail::read_flow_ports(q.protocol, quote.data() + q.l4_offset, k);
  return k;
}

}  // namespace l4lb::wire
