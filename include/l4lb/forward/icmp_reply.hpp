// The ICMP / ICMPv6 messages a director writes itself, and the rule that says when it may:
//  * may_send_icmp_error_about(): RFC 1122 3.2.2 and RFC 4443 2.4(e) — never an ICMP error about
//    an ICMP error (or an ICMPv6 redirect), a non-first fragment, a packet whose source is not one
//    host, a packet to a broadcast / multicast address or one that arrived as link-layer
//    broadcast / multicast (for IPv6 Packet Too Big the last two are allowed, RFC 4443 2.4(e.3-5)).
//    Linux applies the same rule in icmp.c icmp_send and icmp6.c icmp6_send.
//  * make_port_unreachable(): what IPVS answers when no real server is available (ip_vs_core.c
//    ip_vs_leave -> icmp_send / icmpv6_send; ipvs-notes 0A: from the VIP, TOS 0xc0, TTL 64, DF 0,
//    quoting the packet as received, at most 576 bytes of IPv4 / 1280 of IPv6).
//  * make_echo_reply(): the answer to a ping to a VIP the kernel holds locally (icmp.c icmp_echo,
//    icmp6.c icmpv6_echo_reply; RFC 792, RFC 4443 4.2).
// Answers go back where the packet came from: the sender's MAC from the director's, the received
// VLAN tags and EtherType kept. The MTU answer (icmp_too_big.hpp) is built by the same code.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/expected.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/icmp.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

/// Linux answers within 576 bytes for IPv4 (RFC 1812 4.3.2.3) and 1280 for IPv6 (RFC 4443 2.4c).
inline constexpr std::size_t icmpv4_error_max_len = 576;
inline constexpr std::size_t icmpv6_error_max_len = 1280;

/// Which error is about to be sent: RFC 4443 2.4(e.3)-(e.5) let an ICMPv6 Packet Too Big answer
/// a packet sent to a multicast address or as link-layer multicast / broadcast (multicast path
/// MTU discovery); every other error may not.
enum class icmp_error_kind : std::uint8_t { other, packet_too_big };

namespace detail {

[[nodiscard]] inline wire::ipv4_address ipv4_at(const std::byte* p) noexcept {
  wire::ipv4_address a;
  std::memcpy(a.bytes.data(), p, 4);
  return a;
}
[[nodiscard]] inline wire::ipv6_address ipv6_at(const std::byte* p) noexcept {
  wire::ipv6_address a;
  std::memcpy(a.bytes.data(), p, 16);
  return a;
}

/// RFC 1122 3.2.2: an address that names one host — not 0/8, loopback, multicast or class E
/// (which holds 255.255.255.255). RFC 4443 2.4(e.6): not ::, ::1 or multicast.
[[nodiscard]] inline bool is_one_host(wire::ip_family f, const std::byte* addr) noexcept {
  if (f == wire::ip_family::v4) {
    const auto a = ipv4_at(addr);
    return !a.is_this_network() && !a.is_loopback() && !a.is_multicast() && !a.is_class_e();
  }
  const auto a = ipv6_at(addr);
  return !a.is_unspecified() && !a.is_loopback() && !a.is_multicast();
}

/// A destination that is a group: IPv4 multicast, limited broadcast (or the rest of class E),
/// IPv6 multicast.
[[nodiscard]] inline bool is_group_destination(wire::ip_family f, const std::byte* addr) noexcept {
  if (f == wire::ip_family::v4) {
    const auto a = ipv4_at(addr);
    return a.is_multicast() || a.is_class_e();
  }
  return ipv6_at(addr).is_multicast();
}

}  // namespace detail

/// Whether an ICMP / ICMPv6 error may be sent about `pkt` (RFC 1122 3.2.2, RFC 4443 2.4(e)).
/// False for: an ICMP error (ICMPv4 3, 4, 5, 11, 12; ICMPv6 types below 128) or an ICMPv6
/// redirect (137); a non-first fragment; a source that is not one host (IPv4 0/8, 127/8,
/// 224/4, 240/4 with 255.255.255.255; IPv6 ::, ::1, ff00::/8); and, unless `kind` is IPv6
/// packet_too_big, a destination that is a group (IPv4 multicast / broadcast, IPv6 multicast) or
/// a frame whose Ethernet destination has the group bit (link-layer broadcast / multicast).
template <class Byte>
[[nodiscard]] inline bool may_send_icmp_error_about(const wire::basic_packet_view<Byte>& pkt,
                                                    icmp_error_kind kind = icmp_error_kind::other) noexcept {
  if (pkt.is_fragment() && pkt.fragment_offset() != 0) return false;
  if (pkt.has_l4_header()) {
    const std::uint8_t t = pkt.icmp_type();
    if (pkt.is_ipv4() && pkt.protocol() == wire::ip_proto::icmp && wire::is_icmpv4_error(t)) return false;
    if (pkt.is_ipv6() && pkt.protocol() == wire::ip_proto::icmpv6 && (t < 128 || t == 137)) return false;
  }
  const auto f = pkt.family();
  const std::byte* ip = pkt.l3().data();
  const bool v4 = f == wire::ip_family::v4;
  if (!detail::is_one_host(f, ip + (v4 ? 12 : 8))) return false;
  if (!v4 && kind == icmp_error_kind::packet_too_big) return true;
  if (detail::is_group_destination(f, ip + (v4 ? 16 : 24))) return false;
  if (pkt.has_ethernet() && (std::to_integer<unsigned>(pkt.frame()[0]) & 1u) != 0) return false;
  return true;
}

/// The header fields of an answer that are the caller's to choose.
struct icmp_reply_options {
  wire::mac_address src_mac;     ///< the director's MAC: the answer's source (with Ethernet)
  std::uint16_t ip_id = 0;       ///< IPv4 identification (the kernel's ip_select_ident: see ip_id.hpp)
  std::uint32_t flow_label = 0;  ///< IPv6 flow label (20 bits; the kernel's is 0 or a flow hash)
};

namespace detail {

namespace wd = wire::detail;

/// Bytes of the Ethernet header (tags included) an answer to `pkt` starts with: 0 without one.
template <class Byte>
[[nodiscard]] inline std::size_t reply_l2_len(const wire::basic_packet_view<Byte>& pkt) noexcept {
  return pkt.has_ethernet() ? pkt.l3_offset() : 0;
}

/// Back where `pkt` came from: destination = its source MAC, source = `src_mac`, the received
/// tags and EtherType. Precondition: out.size() >= reply_l2_len(pkt).
template <class Byte>
inline void write_reply_l2(std::span<std::byte> out, const wire::basic_packet_view<Byte>& pkt,
                           const wire::mac_address& src_mac) noexcept {
  if (!pkt.has_ethernet()) return;
  const auto frame = pkt.frame();
  std::memcpy(out.data(), frame.data() + 6, 6);
  std::memcpy(out.data() + 6, src_mac.bytes.data(), 6);
  std::memcpy(out.data() + 12, frame.data() + 12, pkt.l3_offset() - 12);
}

/// A 20-byte IPv4 header from `pkt`'s destination to its source: DF 0, TTL 64, protocol ICMP,
/// header checksum. `ip` spans the whole answer (its size is the total length).
template <class Byte>
inline void write_ipv4_reply_header(std::span<std::byte> ip, const wire::basic_packet_view<Byte>& pkt,
                                    std::uint8_t tos, std::uint16_t id) noexcept {
  const auto in = pkt.l3();
  wd::store_u8(ip.data(), 0x45);
  wd::store_u8(ip.data() + 1, tos);
  wd::store_be16(ip.data() + 2, static_cast<std::uint16_t>(ip.size()));
  wd::store_be16(ip.data() + 4, id);
  wd::store_be16(ip.data() + 6, 0);
  wd::store_u8(ip.data() + 8, 64);  // sysctl_ip_default_ttl
  wd::store_u8(ip.data() + 9, wire::ip_proto::icmp);
  wd::store_be16(ip.data() + 10, 0);
  std::memcpy(ip.data() + 12, in.data() + 16, 4);
  std::memcpy(ip.data() + 16, in.data() + 12, 4);
  wd::store_be16(ip.data() + 10, wire::ipv4_header_checksum(ip.first(20)));
}

/// A 40-byte IPv6 header from `pkt`'s destination to its source: hop limit 64, next header 58.
template <class Byte>
inline void write_ipv6_reply_header(std::span<std::byte> ip, const wire::basic_packet_view<Byte>& pkt,
                                    std::uint8_t traffic_class, std::uint32_t flow_label) noexcept {
  const auto in = pkt.l3();
  wd::store_be32(ip.data(), 0x6000'0000u | (std::uint32_t{traffic_class} << 20) | (flow_label & 0xF'FFFFu));
  wd::store_be16(ip.data() + 4, static_cast<std::uint16_t>(ip.size() - 40));
  wd::store_u8(ip.data() + 6, wire::ip_proto::icmpv6);
  wd::store_u8(ip.data() + 7, 64);  // the default hop limit
  std::memcpy(ip.data() + 8, in.data() + 24, 16);
  std::memcpy(ip.data() + 24, in.data() + 8, 16);
}

/// The ICMP checksum of the message after the IP header (ICMPv6: with the pseudo-header).
inline void store_icmp_checksum(std::span<std::byte> ip, bool v4) noexcept {
  if (v4) {
    auto icmp = ip.subspan(20);
    wd::store_be16(icmp.data() + 2, 0);
    wd::store_be16(icmp.data() + 2, wire::icmpv4_checksum(icmp));
    return;
  }
  auto icmp = ip.subspan(40);
  wd::store_be16(icmp.data() + 2, 0);
  wd::store_be16(icmp.data() + 2, wire::icmpv6_checksum(ipv6_at(ip.data() + 8), ipv6_at(ip.data() + 24), icmp));
}

/// Bytes of an ICMP error about `pkt`: L2 + IP + ICMP + as much of the packet as fits in 576
/// (IPv4) / 1280 (IPv6) bytes of IP.
template <class Byte>
[[nodiscard]] inline std::size_t icmp_error_len(const wire::basic_packet_view<Byte>& pkt) noexcept {
  const std::size_t max_ip = pkt.is_ipv4() ? icmpv4_error_max_len : icmpv6_error_max_len;
  const std::size_t hdr = pkt.is_ipv4() ? 20 + 8 : 40 + 8;
  return reply_l2_len(pkt) + hdr + std::min(pkt.l3_len(), max_ip - hdr);
}

/// Checks shared by the builders: the RFC 1122 rule, then the buffer.
[[nodiscard]] inline forward_error reply_room(std::span<std::byte> out, std::size_t need, bool allowed) noexcept {
  if (!allowed) return forward_error::reply_not_allowed;
  if (out.empty()) return forward_error::no_reply_buffer;
  if (out.size() < need) return forward_error::too_big;
  return forward_error::none;
}

/// Writes an ICMP error (`type`, `code`, 32-bit rest of header) about `pkt` into `out`, quoting
/// the packet as received (or with its TTL / hop limit one lower, the way it would have left,
/// when `quote_ttl_decremented`; IPv4: its header checksum updated, RFC 1624). IPv4: TOS 0xc0
/// (IPTOS_PREC_INTERNETCONTROL), ID opt.ip_id; IPv6: traffic class 0, flow label opt.flow_label.
/// Precondition: out.size() >= icmp_error_len(pkt). Returns the answer's span.
template <class Byte>
inline std::span<std::byte> write_icmp_error(std::span<std::byte> out, const wire::basic_packet_view<Byte>& pkt,
                                             std::uint8_t type, std::uint8_t code, std::uint32_t rest,
                                             const icmp_reply_options& opt, bool quote_ttl_decremented) noexcept {
  const std::size_t total = icmp_error_len(pkt);
  const std::size_t l2 = reply_l2_len(pkt);
  write_reply_l2(out, pkt, opt.src_mac);
  auto ip = out.subspan(l2, total - l2);
  const bool v4 = pkt.is_ipv4();
  const std::size_t ip_hdr = v4 ? 20 : 40;
  if (v4)
    write_ipv4_reply_header(ip, pkt, 0xc0, opt.ip_id);
  else
    write_ipv6_reply_header(ip, pkt, 0, opt.flow_label);
  auto icmp = ip.subspan(ip_hdr);
  wd::store_u8(icmp.data(), type);
  wd::store_u8(icmp.data() + 1, code);
  wd::store_be16(icmp.data() + 2, 0);
  wd::store_be32(icmp.data() + 4, rest);
  auto quote = icmp.subspan(8);
  std::memcpy(quote.data(), pkt.l3().data(), quote.size());
  if (quote_ttl_decremented) {
    if (v4) {
      const std::uint16_t old_word = wd::load_be16(quote.data() + 8);
      const auto new_word = static_cast<std::uint16_t>(old_word - 0x0100u);
      wd::store_be16(quote.data() + 10, wire::checksum_update_u16(wd::load_be16(quote.data() + 10), old_word, new_word));
      wd::store_be16(quote.data() + 8, new_word);
    } else {
      wd::store_u8(quote.data() + 7, static_cast<std::uint8_t>(wd::load_u8(quote.data() + 7) - 1u));
    }
  }
  store_icmp_checksum(ip, v4);
  return out.first(total);
}

}  // namespace detail

/// Bytes make_port_unreachable() writes for `pkt`: L2 (as received) + IP + ICMP + quote.
template <class Byte>
[[nodiscard]] inline std::size_t port_unreachable_len(const wire::basic_packet_view<Byte>& pkt) noexcept {
  return detail::icmp_error_len(pkt);
}

/// ICMP port unreachable (3/3) or ICMPv6 port unreachable (1/4) about `pkt`, from its destination
/// (the VIP) to its source, quoting the packet as received (TTL not decremented): IPv4 TOS 0xc0,
/// TTL 64, DF 0, ID opt.ip_id, at most 548 quoted bytes; IPv6 hop limit 64, traffic class 0,
/// flow label opt.flow_label, at most 1232 quoted bytes. With Ethernet: to the sender's MAC from
/// opt.src_mac, the received VLAN tags kept.
/// Errors: reply_not_allowed (may_send_icmp_error_about(pkt) is false), no_reply_buffer (`out`
/// empty), too_big (`out` smaller than port_unreachable_len(pkt)).
template <class Byte>
[[nodiscard]] inline expected<std::span<std::byte>, forward_error> make_port_unreachable(
    std::span<std::byte> out, const wire::basic_packet_view<Byte>& pkt, const icmp_reply_options& opt) noexcept {
  if (auto e = detail::reply_room(out, port_unreachable_len(pkt), may_send_icmp_error_about(pkt));
      e != forward_error::none)
    return unexpected{e};
  if (pkt.is_ipv4())
    return detail::write_icmp_error(out, pkt, wire::icmpv4_type::dest_unreachable, 3, 0, opt, false);
  return detail::write_icmp_error(out, pkt, wire::icmpv6_type::dest_unreachable, 4, 0, opt, false);
}

/// Bytes make_echo_reply() writes for the echo request `pkt`: L2 + a 20 / 40-byte IP header +
/// the whole ICMP message (IPv4 options and IPv6 extension headers are not repeated).
template <class Byte>
[[nodiscard]] inline std::size_t echo_reply_len(const wire::basic_packet_view<Byte>& pkt) noexcept {
  return detail::reply_l2_len(pkt) + (pkt.is_ipv4() ? 20 : 40) + pkt.l4_len();
}

/// The echo reply (ICMP 0, ICMPv6 129) to the echo request `pkt`, from its destination to its
/// source: identifier, sequence number and data as received; TTL / hop limit 64; the request's
/// TOS / traffic class (icmp.c icmp_reply, icmp6.c icmpv6_echo_reply copy it); IPv4 DF 0 and ID
/// opt.ip_id; IPv6 flow label opt.flow_label. With Ethernet: to the sender's MAC from
/// opt.src_mac, tags kept. The IP header is written without options.
/// Errors: not_echo_request, fragmented (a fragment of one: answer the reassembled request),
/// reply_not_allowed (a source that is not one host, a group destination or a link-layer
/// broadcast / multicast frame: RFC 1122 3.2.2.6 lets a host ignore those, Linux does by default),
/// no_reply_buffer, too_big (`out` smaller than echo_reply_len(pkt)).
template <class Byte>
[[nodiscard]] inline expected<std::span<std::byte>, forward_error> make_echo_reply(
    std::span<std::byte> out, const wire::basic_packet_view<Byte>& pkt, const icmp_reply_options& opt) noexcept {
  namespace wd = wire::detail;
  const bool v4 = pkt.is_ipv4();
  const std::uint8_t request = v4 ? wire::icmpv4_type::echo_request : wire::icmpv6_type::echo_request;
  if (pkt.is_fragment()) return unexpected{forward_error::fragmented};
  if (!pkt.has_l4_header() || pkt.protocol() != (v4 ? wire::ip_proto::icmp : wire::ip_proto::icmpv6) ||
      pkt.icmp_type() != request || pkt.icmp_code() != 0)
    return unexpected{forward_error::not_echo_request};
  // An echo request is not an error, so the rule's verdict is about the addresses and the frame.
  const std::size_t total = echo_reply_len(pkt);
  if (auto e = detail::reply_room(out, total, may_send_icmp_error_about(pkt)); e != forward_error::none)
    return unexpected{e};
  const std::size_t l2 = detail::reply_l2_len(pkt);
  detail::write_reply_l2(out, pkt, opt.src_mac);
  auto ip = out.subspan(l2, total - l2);
  const auto in = pkt.l3();
  if (v4)
    detail::write_ipv4_reply_header(ip, pkt, wd::load_u8(in.data() + 1), opt.ip_id);
  else
    detail::write_ipv6_reply_header(ip, pkt, static_cast<std::uint8_t>(wd::load_be32(in.data()) >> 20), opt.flow_label);
  auto icmp = ip.subspan(v4 ? 20 : 40);
  std::memcpy(icmp.data(), pkt.l4().data(), icmp.size());
  wd::store_u8(icmp.data(), v4 ? wire::icmpv4_type::echo_reply : wire::icmpv6_type::echo_reply);
  detail::store_icmp_checksum(ip, v4);
  return out.first(total);
}

}  // namespace l4lb::forward
