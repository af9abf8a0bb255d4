// The answer a director sends instead of forwarding a packet that would exceed the egress MTU and
// may not be fragmented: ICMP "fragmentation needed" (type 3 code 4, RFC 1191) or ICMPv6 "packet
// too big" (RFC 8201, RFC 4443 3.2), from the packet's destination (the VIP) back to its source,
// built as IPVS's kernel builds it (ipvs-notes 0A "Egress MTU"; ip_vs_xmit.c, icmp.c).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/expected.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/l2_rewrite.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

/// Linux answers within 576 bytes for IPv4 (RFC 1812 4.3.2.3) and 1280 for IPv6 (RFC 4443 2.4c).
inline constexpr std::size_t icmpv4_error_max_len = 576;
inline constexpr std::size_t icmpv6_error_max_len = 1280;

/// Bytes make_too_big_reply() writes for `pkt`: L2 (as received) + IP + ICMP + quote.
template <class Byte>
[[nodiscard]] inline std::size_t too_big_reply_len(const wire::basic_packet_view<Byte>& pkt) noexcept {
  const std::size_t l2 = pkt.has_ethernet() ? pkt.l3_offset() : 0;
  const std::size_t max_ip = pkt.is_ipv4() ? icmpv4_error_max_len : icmpv6_error_max_len;
  const std::size_t hdr = pkt.is_ipv4() ? 20 + 8 : 40 + 8;
  return l2 + hdr + std::min(pkt.l3_len(), max_ip - hdr);
}

struct too_big_options {
  wire::mac_address src_mac;        ///< the director's MAC (the answer's source)
  bool quote_ttl_decremented = true;  ///< quote the packet as it would have left (IPVS: TTL - 1)
  std::uint16_t ip_id = 0;          ///< IPv4 identification (the kernel's is not reproducible)
};

/// Writes the answer to `pkt` into `out` and returns the bytes written. IPv4: TOS 0xc0, TTL 64,
/// DF 0, next-hop MTU = `mtu`, the quote is the first 548 bytes at most; IPv6: hop limit 64,
/// traffic class and flow label 0, MTU = `mtu`, at most 1232 quoted bytes. With Ethernet the
/// answer goes back to the packet's source MAC from `opt.src_mac`, with the packet's VLAN tags.
/// Source address = the packet's destination (the VIP), destination = its source.
/// Errors: too_big (out is smaller than too_big_reply_len(pkt)).
template <class Byte>
[[nodiscard]] inline expected<std::span<std::byte>, forward_error> make_too_big_reply(
    std::span<std::byte> out, const wire::basic_packet_view<Byte>& pkt, std::uint32_t mtu,
    const too_big_options& opt) noexcept {
  namespace d = wire::detail;
  const std::size_t total = too_big_reply_len(pkt);
  if (out.size() < total) return unexpected{forward_error::too_big};
  const auto frame = pkt.frame();
  const auto ip_in = pkt.l3();
  std::size_t at = 0;
  if (pkt.has_ethernet()) {
    // Back where it came from: swap the MACs, keep the tags and EtherType.
    std::memcpy(out.data(), frame.data() + 6, 6);
    std::memcpy(out.data() + 6, opt.src_mac.bytes.data(), 6);
    std::memcpy(out.data() + 12, frame.data() + 12, pkt.l3_offset() - 12);
    at = pkt.l3_offset();
  }
  auto ip = out.subspan(at, total - at);
  if (pkt.is_ipv4()) {
    const std::size_t quote = ip.size() - 28;
    d::store_u8(ip.data(), 0x45);
    d::store_u8(ip.data() + 1, 0xc0);  // IPTOS_PREC_INTERNETCONTROL
    d::store_be16(ip.data() + 2, static_cast<std::uint16_t>(ip.size()));
    d::store_be16(ip.data() + 4, opt.ip_id);
    d::store_be16(ip.data() + 6, 0);  // DF 0
    d::store_u8(ip.data() + 8, 64);
    d::store_u8(ip.data() + 9, wire::ip_proto::icmp);
    d::store_be16(ip.data() + 10, 0);
    std::memcpy(ip.data() + 12, ip_in.data() + 16, 4);  // from the VIP
    std::memcpy(ip.data() + 16, ip_in.data() + 12, 4);  // to the client
    d::store_be16(ip.data() + 10, wire::ipv4_header_checksum(ip.first(20)));
    auto icmp = ip.subspan(20);
    d::store_u8(icmp.data(), 3);      // destination unreachable
    d::store_u8(icmp.data() + 1, 4);  // fragmentation needed and DF set
    d::store_be16(icmp.data() + 2, 0);
    d::store_be16(icmp.data() + 4, 0);
    d::store_be16(icmp.data() + 6, static_cast<std::uint16_t>(mtu));
    std::memcpy(icmp.data() + 8, ip_in.data(), quote);
    if (opt.quote_ttl_decremented) {
      // The quoted header as it would have left: TTL - 1 and its checksum (RFC 1624).
      auto q = icmp.subspan(8);
      const std::uint16_t old_word = d::load_be16(q.data() + 8);
      const auto new_word = static_cast<std::uint16_t>(old_word - 0x0100u);
      d::store_be16(q.data() + 10, wire::checksum_update_u16(d::load_be16(q.data() + 10), old_word, new_word));
      d::store_be16(q.data() + 8, new_word);
    }
    d::store_be16(icmp.data() + 2, wire::icmpv4_checksum(icmp));
  } else {
    const std::size_t quote = ip.size() - 48;
    d::store_be32(ip.data(), 0x6000'0000u);
    d::store_be16(ip.data() + 4, static_cast<std::uint16_t>(ip.size() - 40));
    d::store_u8(ip.data() + 6, wire::ip_proto::icmpv6);
    d::store_u8(ip.data() + 7, 64);
    std::memcpy(ip.data() + 8, ip_in.data() + 24, 16);
    std::memcpy(ip.data() + 24, ip_in.data() + 8, 16);
    auto icmp = ip.subspan(40);
    d::store_u8(icmp.data(), 2);  // packet too big
    d::store_u8(icmp.data() + 1, 0);
    d::store_be16(icmp.data() + 2, 0);
    d::store_be32(icmp.data() + 4, mtu);
    std::memcpy(icmp.data() + 8, ip_in.data(), quote);
    if (opt.quote_ttl_decremented) {
      auto q = icmp.subspan(8);
      d::store_u8(q.data() + 7, static_cast<std::uint8_t>(d::load_u8(q.data() + 7) - 1u));
    }
    wire::ipv6_address s, t;
    std::memcpy(s.bytes.data(), ip.data() + 8, 16);
    std::memcpy(t.bytes.data(), ip.data() + 24, 16);
    d::store_be16(icmp.data() + 2, wire::icmpv6_checksum(s, t, icmp));
  }
  return out.first(total);
}

namespace detail {

/// IPVS's egress-MTU rule for the packet `pkt` that would leave with `overhead` bytes added
/// (ip_vs_xmit.c ensure_mtu_is_adequate, ipvs-notes 0A): passes if its IP size <= mtu - overhead;
/// otherwise IPv6, or IPv4 with DF, is answered; IPv4 without DF passes (the caller's stack
/// fragments it). `mtu` 0 means no check. Returns the threshold in `threshold`.
/// Errors: mtu_too_small (threshold under 68 for IPv4 / 1280 for IPv6 packets).
template <class Byte>
[[nodiscard]] inline forward_error mtu_check(const wire::basic_packet_view<Byte>& pkt, std::size_t mtu,
                                             std::size_t overhead, bool& too_big,
                                             std::uint32_t& threshold) noexcept {
  too_big = false;
  if (mtu == 0) return forward_error::none;
  const std::size_t minimum = pkt.is_ipv4() ? 68 : 1280;
  if (mtu < overhead || mtu - overhead < minimum) return forward_error::mtu_too_small;
  threshold = static_cast<std::uint32_t>(mtu - overhead);
  if (pkt.l3_len() <= threshold) return forward_error::none;
  too_big = pkt.is_ipv6() || pkt.ipv4().dont_frag();
  return forward_error::none;
}

/// The too-big answer as a forward_result: reply_icmp with the answer, or too_big if `reply` is
/// too small for it.
template <class Byte>
[[nodiscard]] inline forward_result too_big_result(std::span<std::byte> reply,
                                                   const wire::basic_packet_view<Byte>& pkt,
                                                   std::uint32_t threshold, const wire::mac_address& src_mac,
                                                   bool ttl_decremented) noexcept {
  too_big_options o;
  o.src_mac = src_mac;
  o.quote_ttl_decremented = ttl_decremented;
  auto r = make_too_big_reply(reply, pkt, threshold, o);
  if (!r) return unexpected{r.error()};
  return forwarded{forward_action::reply_icmp, *r};
}

}  // namespace detail
}  // namespace l4lb::forward
