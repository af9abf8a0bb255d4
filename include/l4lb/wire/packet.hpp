// packet_view: what wire::parse() learned about one frame, kept as 16-bit offsets into the
// caller's bytes plus the flow key, so the director, connection tracking and the rewriters never
// parse a packet twice. 80 bytes, trivially copyable; it owns nothing.
//
// API in brief (see l4lb/wire/parse.hpp for how to get one):
//   frame()                       the whole span parse() was given (Byte = std::byte or const std::byte)
//   has_ethernet()                false for parse_ip() results (tun devices, decapsulated packets)
//   ethernet()                    Ethernet header view at offset 0          [has_ethernet()]
//   vlan_count()                  0, 1 (802.1Q) or 2 (QinQ: S-tag then C-tag)
//   vlan_tpid(i), vlan(i)         tag i, outermost first: TPID at 12 + 4i; vlan(i) views the TCI and
//                                 the following EtherType at 14 + 4i          [i < vlan_count()]
//   ethertype()                   0x0800 or 0x86dd (the innermost EtherType, or implied by parse_ip)
//   l3_offset(), l3_len(), l3()   the IP packet, bounded by its own length field (Ethernet padding
//                                 after it is excluded)
//   family(), is_ipv4/is_ipv6()   ipv4(), ipv6(): header views over l3()
//   ip_header_len()               IPv4 IHL*4, or IPv6 40 + every extension header walked
//   protocol()                    final upper-layer protocol (after IPv6 extensions; for a
//                                 non-first IPv6 fragment, the fragment header's next header)
//   l4_offset(), l4()             where the upper-layer header starts, to the end of the IP packet
//   has_l4_header()               a TCP/UDP/SCTP/ICMP(v6) header was found and checked there; false
//                                 for non-first fragments and for protocols l4lb does not parse
//   tcp(), udp(), icmp()          views over l4()                              [has_l4_header()]
//   payload_offset(), payload()   after the L4 header; UDP: bounded by the UDP length
//   key()                         flow_key snapshot taken at parse time: addresses, protocol(),
//                                 ports (TCP/UDP/SCTP; ICMP/ICMPv6 echo: identifier in BOTH ports
//                                 so a reply's key == request's key.reversed(); otherwise 0)
//   has_ports()                   key() carries ports (false for non-first fragments, ICMP non-echo...)
//   tcp_flags()                   byte 13 of TCP (tcp_flags::syn...), 0 if not TCP
//   is_fragment()                 IPv4 MF or offset != 0; IPv6 fragment header with M or offset != 0
//                                 (an RFC 6946 atomic fragment is not a fragment)
//   is_first_fragment(), more_fragments(), fragment_offset() (bytes)
//   has_ipv4_options()
//   icmp_type(), icmp_code()      0 unless protocol() is ICMP in IPv4 / ICMPv6 in IPv6 with a header
//   is_icmp_error()               ICMP 3,4,5,11,12 / ICMPv6 1,2,3,4: a quote was found and checked
//   quote_l3_offset(), quote()    the quoted IP packet, to the end of the outer IP packet
//   quote_l4_offset(), quote_protocol(), quote_has_l4()
//   quoted_flow_key()             the quoted flow as written in the quote (the original sender's
//                                 view), read from the bytes when called    [is_icmp_error()]
// icmp_error_connection(pkt, d)   free function: the connection an ICMP error belongs to, keyed
//                                 client first (see below)                  [is_icmp_error()]
// Everything except key() and quoted_flow_key() reads the frame's bytes when called: after a
// rewrite (NAT), the views see new values while key() keeps the parsed one. Changing lengths or
// header sizes invalidates the offsets; parse again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/icmp.hpp"
#include "l4lb/wire/ipv4.hpp"
#include "l4lb/wire/ipv6.hpp"
#include "l4lb/wire/tcp.hpp"
#include "l4lb/wire/udp.hpp"
#include "l4lb/wire/vlan.hpp"

namespace l4lb::wire {

/// At most this many VLAN tags are parsed (802.1ad S-tag + 802.1Q C-tag).
inline constexpr std::size_t max_vlan_tags = 2;

/// The family's smallest link MTU: ipv4_min_mtu (68) or ipv6_min_mtu (1280).
[[nodiscard]] constexpr std::size_t min_mtu(bool ipv4) noexcept {
  return ipv4 ? ipv4_min_mtu : ipv6_min_mtu;
}

namespace detail {
struct packet_parser;

/// The byte-type-independent facts parse() records (what a basic_packet_view holds besides the span).
struct packet_facts {
  flow_key key;
  std::uint16_t l3_offset = 0;
  std::uint16_t l3_len = 0;
  std::uint16_t l4_offset = 0;
  std::uint16_t payload_offset = 0;
  std::uint16_t payload_end = 0;
  std::uint16_t fragment_offset = 0;  ///< bytes
  std::uint16_t quote_l3_offset = 0;
  std::uint16_t quote_l4_offset = 0;
  std::uint8_t vlan_count = 0;
  std::uint8_t tcp_flags = 0;
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  std::uint8_t quote_protocol = 0;
  std::uint8_t bits = 0;

  static constexpr std::uint8_t has_ethernet = 1u << 0;
  static constexpr std::uint8_t is_fragment = 1u << 1;
  static constexpr std::uint8_t more_fragments = 1u << 2;
  static constexpr std::uint8_t has_l4_header = 1u << 3;
  static constexpr std::uint8_t has_ports = 1u << 4;
  static constexpr std::uint8_t has_ipv4_options = 1u << 5;
  static constexpr std::uint8_t is_icmp_error = 1u << 6;
  static constexpr std::uint8_t quote_has_l4 = 1u << 7;
  friend bool operator==(const packet_facts&, const packet_facts&) = default;
};
}  // namespace detail

template <detail::wire_byte Byte>
class basic_packet_view {
 public:
  [[nodiscard]] std::span<Byte> frame() const noexcept { return frame_; }

  // --- L2
  [[nodiscard]] bool has_ethernet() const noexcept { return bit(facts::has_ethernet); }
  [[nodiscard]] basic_ethernet_view<Byte> ethernet() const noexcept {
    return basic_ethernet_view<Byte>::unchecked(frame_);
  }
  [[nodiscard]] std::size_t vlan_count() const noexcept { return f_.vlan_count; }
  /// Offset of tag i's TPID; the TCI follows it.
  [[nodiscard]] static constexpr std::size_t vlan_tag_offset(std::size_t i) noexcept { return 12 + 4 * i; }
  [[nodiscard]] std::uint16_t vlan_tpid(std::size_t i) const noexcept {
    return detail::load_be16(frame_.data() + vlan_tag_offset(i));
  }
  [[nodiscard]] basic_vlan_view<Byte> vlan(std::size_t i) const noexcept {
    return basic_vlan_view<Byte>::unchecked(frame_.subspan(vlan_tag_offset(i) + 2, vlan_view::header_len));
  }
  [[nodiscard]] std::uint16_t ethertype() const noexcept { return is_ipv4() ? ethertype::ipv4 : ethertype::ipv6; }

  // --- L3
  [[nodiscard]] ip_family family() const noexcept { return f_.key.family; }
  [[nodiscard]] bool is_ipv4() const noexcept { return f_.key.family == ip_family::v4; }
  [[nodiscard]] bool is_ipv6() const noexcept { return f_.key.family == ip_family::v6; }
  [[nodiscard]] std::size_t l3_offset() const noexcept { return f_.l3_offset; }
  [[nodiscard]] std::size_t l3_len() const noexcept { return f_.l3_len; }
  [[nodiscard]] std::span<Byte> l3() const noexcept { return frame_.subspan(f_.l3_offset, f_.l3_len); }
  [[nodiscard]] basic_ipv4_view<Byte> ipv4() const noexcept { return basic_ipv4_view<Byte>::unchecked(l3()); }
  [[nodiscard]] basic_ipv6_view<Byte> ipv6() const noexcept { return basic_ipv6_view<Byte>::unchecked(l3()); }
  [[nodiscard]] std::size_t ip_header_len() const noexcept {
    return std::size_t{f_.l4_offset} - f_.l3_offset;
  }
  [[nodiscard]] bool has_ipv4_options() const noexcept { return bit(facts::has_ipv4_options); }
  [[nodiscard]] bool is_fragment() const noexcept { return bit(facts::is_fragment); }
  [[nodiscard]] bool is_first_fragment() const noexcept { return is_fragment() && f_.fragment_offset == 0; }
  [[nodiscard]] bool more_fragments() const noexcept { return bit(facts::more_fragments); }
  /// Offset of this fragment's data in the original packet, in bytes.
  [[nodiscard]] std::size_t fragment_offset() const noexcept { return f_.fragment_offset; }

  // --- L4
  [[nodiscard]] std::uint8_t protocol() const noexcept { return f_.key.protocol; }
  [[nodiscard]] std::size_t l4_offset() const noexcept { return f_.l4_offset; }
  [[nodiscard]] std::size_t l4_len() const noexcept { return l3_end() - f_.l4_offset; }
  [[nodiscard]] std::span<Byte> l4() const noexcept { return frame_.subspan(f_.l4_offset, l4_len()); }
  [[nodiscard]] bool has_l4_header() const noexcept { return bit(facts::has_l4_header); }
  [[nodiscard]] bool has_ports() const noexcept { return bit(facts::has_ports); }
  [[nodiscard]] basic_tcp_view<Byte> tcp() const noexcept { return basic_tcp_view<Byte>::unchecked(l4()); }
  [[nodiscard]] basic_udp_view<Byte> udp() const noexcept { return basic_udp_view<Byte>::unchecked(l4()); }
  [[nodiscard]] basic_icmp_view<Byte> icmp() const noexcept { return basic_icmp_view<Byte>::unchecked(l4()); }
  [[nodiscard]] std::size_t payload_offset() const noexcept { return f_.payload_offset; }
  [[nodiscard]] std::size_t payload_len() const noexcept {
    return std::size_t{f_.payload_end} - f_.payload_offset;
  }
  [[nodiscard]] std::span<Byte> payload() const noexcept { return frame_.subspan(f_.payload_offset, payload_len()); }

  [[nodiscard]] const flow_key& key() const noexcept { return f_.key; }
  [[nodiscard]] std::uint8_t tcp_flags() const noexcept { return f_.tcp_flags; }

  // --- ICMP
  [[nodiscard]] std::uint8_t icmp_type() const noexcept { return f_.icmp_type; }
  [[nodiscard]] std::uint8_t icmp_code() const noexcept { return f_.icmp_code; }
  [[nodiscard]] bool is_icmp_error() const noexcept { return bit(facts::is_icmp_error); }
  [[nodiscard]] std::size_t quote_l3_offset() const noexcept { return f_.quote_l3_offset; }
  [[nodiscard]] std::size_t quote_l4_offset() const noexcept { return f_.quote_l4_offset; }
  [[nodiscard]] std::uint8_t quote_protocol() const noexcept { return f_.quote_protocol; }
  [[nodiscard]] bool quote_has_l4() const noexcept { return bit(facts::quote_has_l4); }
  /// The quoted packet, from its IP header to the end of the outer IP packet.
  [[nodiscard]] std::span<Byte> quote() const noexcept {
    return frame_.subspan(f_.quote_l3_offset, l3_end() - f_.quote_l3_offset);
  }
  [[nodiscard]] flow_key quoted_flow_key() const noexcept {
    icmp_quote q{static_cast<std::uint16_t>(f_.quote_l4_offset - f_.quote_l3_offset), f_.quote_protocol,
                 quote_has_l4()};
    return wire::quoted_flow_key(family(), std::span<const std::byte>(quote()), q);
  }

  /// The same facts over read-only bytes.
  [[nodiscard]] basic_packet_view<const std::byte> as_const() const noexcept { return {frame_, f_}; }

 private:
  using facts = detail::packet_facts;
  friend struct detail::packet_parser;
  template <detail::wire_byte>
  friend class basic_packet_view;

  basic_packet_view(std::span<Byte> frame, const detail::packet_facts& f) noexcept : frame_(frame), f_(f) {}
  [[nodiscard]] bool bit(std::uint8_t b) const noexcept { return (f_.bits & b) != 0; }
  [[nodiscard]] std::size_t l3_end() const noexcept { return std::size_t{f_.l3_offset} + f_.l3_len; }

  std::span<Byte> frame_;
  detail::packet_facts f_;
};

using packet_view = basic_packet_view<std::byte>;
using const_packet_view = basic_packet_view<const std::byte>;

/// Which way an ICMP error travels relative to the connection it is about.
enum class icmp_error_direction : std::uint8_t {
  inbound,   ///< toward the service (from the client, or a router on its side): it quotes a packet
             ///< the service sent to the client, so the client is the quote's destination
  outbound,  ///< toward the client (from the real server, or a router on its side): it quotes a
             ///< packet the client sent, so the client is the quote's source
};

/// The flow key of the connection the ICMP error `pkt` is about, in the connection's own
/// orientation (client -> service, as its first packet travelled): the quoted flow reversed for
/// an inbound error, as quoted for an outbound one (ip_vs_core.c ip_vs_in_icmp / ip_vs_out_icmp
/// look the quote up the same way). Precondition: pkt.is_icmp_error().
template <detail::wire_byte Byte>
[[nodiscard]] flow_key icmp_error_connection(const basic_packet_view<Byte>& pkt, icmp_error_direction d) noexcept {
  const flow_key q = pkt.quoted_flow_key();
  return d == icmp_error_direction::inbound ? q.reversed() : q;
}

static_assert(std::is_trivially_copyable_v<packet_view>);
static_assert(sizeof(packet_view) <= 80, "packet_view is copied per packet: keep it small");

}  // namespace l4lb::wire
