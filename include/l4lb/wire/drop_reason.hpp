// Why the parser (or a header view's make()) refused a packet: one named value per cause, so a
// director can keep one drop counter per reason (Katran's habit) and tests can ask for the exact one.
// `not_ip` is the one value that is not a defect: the frame is fine but not IPv4/IPv6 (ARP, LLDP...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace l4lb::wire {

enum class drop_reason : std::uint8_t {
  none = 0,  ///< no error; never returned by parse(), present so a default value means "nothing"

  /// PASS, not malformed: the Ethernet frame carries no IP (ARP, LLDP, 802.3 length frames...).
  /// A director hands such frames to the host stack; it does not count them as drops.
  not_ip,

  frame_too_large,  ///< over 65535 bytes: packet_view keeps 16-bit offsets

  truncated_ethernet,  ///< fewer than 14 bytes
  truncated_vlan,      ///< a VLAN TPID with fewer than 4 bytes (TCI + next type) after it
  too_many_vlan_tags,  ///< a third tag: only 802.1Q and QinQ (802.1ad + 802.1Q) are carried

  truncated_ip,     ///< parse_ip() on an empty buffer: not even a version nibble
  bad_ip_version,   ///< version nibble not 4/6, or not what the ethertype said

  truncated_ipv4,                   ///< fewer than 20 bytes, or fewer than IHL * 4
  bad_ipv4_ihl,                     ///< IHL < 5 (RFC 791: the minimum header is 5 words)
  ipv4_total_length_exceeds_frame,  ///< total length > bytes present
  ipv4_total_length_below_header,   ///< total length < IHL * 4
  bad_ipv4_header_checksum,         ///< only with parse_options::verify_ipv4_checksum
  bad_ipv4_option,                  ///< option length < 2 or past the header (validation only)

  truncated_ipv6,                     ///< fewer than 40 bytes
  ipv6_payload_length_exceeds_frame,  ///< 40 + payload length > bytes present
  truncated_ipv6_extension,           ///< an extension header runs past the IPv6 payload
  too_many_ipv6_extensions,           ///< more than max_ipv6_extensions in the chain
  misplaced_ipv6_hop_by_hop,          ///< hop-by-hop not first (RFC 8200 section 4.1)

  truncated_tcp,        ///< fewer than 20 bytes, or fewer than data offset * 4
  bad_tcp_data_offset,  ///< data offset < 5
  bad_tcp_option,       ///< option length < 2 or past the header (validation only)

  truncated_udp,    ///< fewer than 8 bytes
  bad_udp_length,   ///< UDP length < 8 or > the IP payload (unfragmented datagrams only)
  truncated_sctp,   ///< fewer than the 12-byte SCTP common header

  truncated_icmp,        ///< fewer than the 8-byte ICMP/ICMPv6 header
  truncated_icmp_quote,  ///< an ICMP error's quote lacks the IP header + 8 bytes (RFC 792)
  bad_icmp_quote,        ///< the quote is not an IP header of the outer packet's family
};

inline constexpr std::size_t drop_reason_count =
    static_cast<std::size_t>(drop_reason::bad_icmp_quote) + 1;

[[nodiscard]] constexpr std::string_view to_string(drop_reason r) noexcept {
  switch (r) {
    case drop_reason::none: return "none";
    case drop_reason::not_ip: return "not_ip";
    case drop_reason::frame_too_large: return "frame_too_large";
    case drop_reason::truncated_ethernet: return "truncated_ethernet";
    case drop_reason::truncated_vlan: return "truncated_vlan";
    case drop_reason::too_many_vlan_tags: return "too_many_vlan_tags";
    case drop_reason::truncated_ip: return "truncated_ip";
    case drop_reason::bad_ip_version: return "bad_ip_version";
    case drop_reason::truncated_ipv4: return "truncated_ipv4";
    case drop_reason::bad_ipv4_ihl: return "bad_ipv4_ihl";
    case drop_reason::ipv4_total_length_exceeds_frame: return "ipv4_total_length_exceeds_frame";
    case drop_reason::ipv4_total_length_below_header: return "ipv4_total_length_below_header";
    case drop_reason::bad_ipv4_header_checksum: return "bad_ipv4_header_checksum";
    case drop_reason::bad_ipv4_option: return "bad_ipv4_option";
    case drop_reason::truncated_ipv6: return "truncated_ipv6";
    case drop_reason::ipv6_payload_length_exceeds_frame: return "ipv6_payload_length_exceeds_frame";
    case drop_reason::truncated_ipv6_extension: return "truncated_ipv6_extension";
    case drop_reason::too_many_ipv6_extensions: return "too_many_ipv6_extensions";
    case drop_reason::misplaced_ipv6_hop_by_hop: return "misplaced_ipv6_hop_by_hop";
    case drop_reason::truncated_tcp: return "truncated_tcp";
    case drop_reason::bad_tcp_data_offset: return "bad_tcp_data_offset";
    case drop_reason::bad_tcp_option: return "bad_tcp_option";
    case drop_reason::truncated_udp: return "truncated_udp";
    case drop_reason::bad_udp_length: return "bad_udp_length";
    case drop_reason::truncated_sctp: return "truncated_sctp";
    case drop_reason::truncated_icmp: return "truncated_icmp";
    case drop_reason::truncated_icmp_quote: return "truncated_icmp_quote";
    case drop_reason::bad_icmp_quote: return "bad_icmp_quote";
  }
  return "unknown";
}

/// True for reasons that mean a defective packet (count and drop); false for `none` and `not_ip`.
[[nodiscard]] constexpr bool is_malformed(drop_reason r) noexcept {
  return r != drop_reason::none && r != drop_reason::not_ip;
}

}  // namespace l4lb::wire
