// Why a rewriter refused a packet, and what a successful rewrite hands back: one named value per
// cause (a director keeps one drop counter per value), and the frame span to send, which for an
// encapsulation starts earlier in the caller's buffer than the frame it was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "l4lb/expected.hpp"

namespace l4lb::forward {

enum class forward_error : std::uint8_t {
  none = 0,  ///< no error; never returned, present so a default value means "nothing"

  view_not_in_buffer,  ///< the packet_view does not describe the frame_buffer's current frame
  no_ethernet,         ///< an L2 rewrite (DR, or rewrite_l2) on a packet parsed without Ethernet
  truncated,           ///< fewer bytes than the headers the rewriter must read or write
  malformed,           ///< a header that the wire parser refuses (decapsulation's outer packet)
  ttl_exceeded,        ///< TTL / hop limit <= 1: not forwarded (IPVS sends time exceeded, drops)
  fragmented,          ///< an IP fragment: ports unknown here (IPVS sees reassembled packets)
  unsupported_protocol,  ///< NAT needs TCP, UDP or SCTP, or an ICMP error quoting one of them
  flow_mismatch,       ///< the packet's addresses/ports are not the connection's
  family_mismatch,     ///< an address of the wrong family in the configuration or connection
  vlan_mismatch,       ///< a VLAN rewrite for more tags than the frame carries
  no_headroom,         ///< too little room before the frame for the headers to prepend
  too_big,             ///< an answer is due (over the MTU, ...) and the reply buffer is too small for it
  no_reply_buffer,     ///< an answer is due and no reply buffer (an empty span) was given
  too_big_no_reply,    ///< over the MTU, may not be fragmented, and no ICMP error may be sent about it
                       ///< (RFC 1122 3.2.2 / RFC 4443 2.4(e), see may_send_icmp_error_about): dropped
  reply_not_allowed,   ///< a reply builder refused: RFC 1122 3.2.2 / RFC 4443 2.4(e) forbid answering
  not_echo_request,    ///< make_echo_reply on something else than an ICMP / ICMPv6 echo request
  not_fragmentable,    ///< the fragmenter got an IPv4 packet with DF set, or not an IPv4 packet
  fragment_buffers_too_small,  ///< fewer or smaller output buffers than the fragments need
  mtu_too_small,       ///< MTU minus encapsulation below 68 (IPv4) / 1280 (IPv6): dropped as IPVS does
  not_tunnel,          ///< decapsulation: not IPIP/IPv6/GRE, or UDP to a port other than GUE's
  bad_tunnel_header,   ///< GUE version/control message, GRE version or routing bit
  tunnel_length_mismatch,  ///< a tunnel or inner length field disagrees with the bytes present
  bad_tunnel_checksum,     ///< a present GRE/UDP checksum does not verify
  unsupported_inner_protocol,  ///< GUE/GRE carrying something other than IPv4/IPv6
  port_pool_exhausted,     ///< FullNAT: no free local port
  bad_config,              ///< a configuration the method cannot use (e.g. GUE without a port)
};

[[nodiscard]] constexpr std::string_view to_string(forward_error e) noexcept {
  switch (e) {
    case forward_error::none: return "none";
    case forward_error::view_not_in_buffer: return "view_not_in_buffer";
    case forward_error::no_ethernet: return "no_ethernet";
    case forward_error::truncated: return "truncated";
    case forward_error::malformed: return "malformed";
    case forward_error::ttl_exceeded: return "ttl_exceeded";
    case forward_error::fragmented: return "fragmented";
    case forward_error::unsupported_protocol: return "unsupported_protocol";
    case forward_error::flow_mismatch: return "flow_mismatch";
    case forward_error::family_mismatch: return "family_mismatch";
    case forward_error::vlan_mismatch: return "vlan_mismatch";
    case forward_error::no_headroom: return "no_headroom";
    case forward_error::too_big: return "too_big";
    case forward_error::no_reply_buffer: return "no_reply_buffer";
    case forward_error::too_big_no_reply: return "too_big_no_reply";
    case forward_error::reply_not_allowed: return "reply_not_allowed";
    case forward_error::not_echo_request: return "not_echo_request";
    case forward_error::not_fragmentable: return "not_fragmentable";
    case forward_error::fragment_buffers_too_small: return "fragment_buffers_too_small";
    case forward_error::mtu_too_small: return "mtu_too_small";
    case forward_error::not_tunnel: return "not_tunnel";
    case forward_error::bad_tunnel_header: return "bad_tunnel_header";
    case forward_error::tunnel_length_mismatch: return "tunnel_length_mismatch";
    case forward_error::bad_tunnel_checksum: return "bad_tunnel_checksum";
    case forward_error::unsupported_inner_protocol: return "unsupported_inner_protocol";
    case forward_error::port_pool_exhausted: return "port_pool_exhausted";
    case forward_error::bad_config: return "bad_config";
  }
  return "unknown";
}

/// What to do with a successful rewrite's output.
enum class forward_action : std::uint8_t {
  forward,     ///< send `frame` (in the caller's frame_buffer) toward the real server / client
  reply_icmp,  ///< do not forward; send `frame` (the ICMP answer in the reply buffer) back instead
  /// `frame` is rewritten but its IPv4 packet is over the egress MTU and may be fragmented (DF
  /// clear), as the kernel then does (ip_fragment): send the frames fragment_forwarded()
  /// (fragment.hpp) makes of it, not `frame` itself.
  fragment,
};

struct forwarded {
  forward_action action = forward_action::forward;
  std::span<std::byte> frame;
  /// reply_icmp: the MTU the answer announces (the egress MTU minus the encapsulation: IPVS's
  /// threshold); fragment: the largest IP packet a fragment may be (the egress MTU); 0 otherwise.
  std::uint32_t mtu = 0;
  /// Where the IP packet starts in `frame` (the L2 header's length; 0 without Ethernet).
  std::uint16_t l3_offset = 0;
};

using forward_result = expected<forwarded, forward_error>;

}  // namespace l4lb::forward
