// The answer a director sends instead of forwarding a packet that would exceed the egress MTU and
// may not be fragmented: ICMP "fragmentation needed" (type 3 code 4, RFC 1191) or ICMPv6 "packet
// too big" (RFC 8201, RFC 4443 3.2), from the packet's destination (the VIP) back to its source,
// built as IPVS's kernel builds it (ipvs-notes 0A "Egress MTU"; ip_vs_xmit.c, icmp.c), with the
// machinery of icmp_reply.hpp. Also the egress-MTU rule every forwarding method shares: fits,
// answer (unless RFC 1122 3.2.2 / RFC 4443 2.4(e) forbid it: then dropped), or fragment (IPv4
// without DF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "l4lb/expected.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/icmp_reply.hpp"
#include "l4lb/forward/ip_id.hpp"
#include "l4lb/wire/icmp.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

/// Bytes make_too_big_reply() writes for `pkt`: L2 (as received) + IP + ICMP + quote.
template <class Byte>
[[nodiscard]] inline std::size_t too_big_reply_len(const wire::basic_packet_view<Byte>& pkt) noexcept {
  return detail::icmp_error_len(pkt);
}

struct too_big_options {
  wire::mac_address src_mac;        ///< the director's MAC (the answer's source)
  bool quote_ttl_decremented = true;  ///< quote the packet as it would have left (IPVS: TTL - 1)
  std::uint16_t ip_id = 0;          ///< IPv4 identification (the kernel's ip_select_ident: ip_id.hpp)
  std::uint32_t flow_label = 0;     ///< IPv6 flow label of the answer
};

/// Writes the answer to `pkt` into `out` and returns the bytes written. IPv4: TOS 0xc0, TTL 64,
/// DF 0, next-hop MTU = `mtu`, the quote is the first 548 bytes at most; IPv6: hop limit 64,
/// traffic class 0, flow label opt.flow_label, MTU = `mtu`, at most 1232 quoted bytes. With
/// Ethernet the answer goes back to the packet's source MAC from `opt.src_mac`, with the packet's
/// VLAN tags. Source address = the packet's destination (the VIP), destination = its source.
/// Errors: reply_not_allowed (may_send_icmp_error_about(pkt, packet_too_big) is false),
/// no_reply_buffer (`out` empty), too_big (`out` is smaller than too_big_reply_len(pkt)).
template <class Byte>
[[nodiscard]] inline expected<std::span<std::byte>, forward_error> make_too_big_reply(
    std::span<std::byte> out, const wire::basic_packet_view<Byte>& pkt, std::uint32_t mtu,
    const too_big_options& opt) noexcept {
  if (auto e = detail::reply_room(out, too_big_reply_len(pkt),
                                  may_send_icmp_error_about(pkt, icmp_error_kind::packet_too_big));
      e != forward_error::none)
    return unexpected{e};
  const icmp_reply_options o{opt.src_mac, opt.ip_id, opt.flow_label};
  if (pkt.is_ipv4())
    return detail::write_icmp_error(out, pkt, wire::icmpv4_type::dest_unreachable, 4, mtu & 0xFFFFu, o,
                                    opt.quote_ttl_decremented);
  return detail::write_icmp_error(out, pkt, wire::icmpv6_type::packet_too_big, 0, mtu, o, opt.quote_ttl_decremented);
}

namespace detail {

/// What the egress-MTU rule says about a packet.
enum class mtu_verdict : std::uint8_t {
  fits,      ///< forward it
  answer,    ///< too big and may not be fragmented: frag-needed / packet too big (or dropped)
  fragment,  ///< IPv4 without DF over the threshold: forward it in fragments
};

/// IPVS's egress-MTU rule for the packet `pkt` that would leave with `overhead` bytes added
/// (ip_vs_xmit.c ensure_mtu_is_adequate, ipvs-notes 0A): fits if its IP size <= mtu - overhead;
/// otherwise IPv6, or IPv4 with DF, is answered; IPv4 without DF is fragmented. `mtu` 0 means no
/// check. Returns the threshold in `threshold`.
/// Errors: mtu_too_small (threshold under 68 for IPv4 / 1280 for IPv6 packets).
template <class Byte>
[[nodiscard]] inline forward_error mtu_check(const wire::basic_packet_view<Byte>& pkt, std::size_t mtu,
                                             std::size_t overhead, mtu_verdict& verdict,
                                             std::uint32_t& threshold) noexcept {
  verdict = mtu_verdict::fits;
  if (mtu == 0) return forward_error::none;
  const std::size_t minimum = wire::min_mtu(pkt.is_ipv4());
  if (mtu < overhead || mtu - overhead < minimum) return forward_error::mtu_too_small;
  threshold = static_cast<std::uint32_t>(mtu - overhead);
  if (pkt.l3_len() <= threshold) return forward_error::none;
  verdict = pkt.is_ipv6() || pkt.ipv4().dont_frag() ? mtu_verdict::answer : mtu_verdict::fragment;
  return forward_error::none;
}

/// The header knobs of a rewriter's own answers.
struct answer_knobs {
  wire::mac_address src_mac;
  bool ttl_decremented = true;
  ip_id_generator* ip_ids = nullptr;  ///< null: default_ip_id_generator()
  std::uint32_t flow_label = 0;
};

/// The too-big answer as a forward_result: reply_icmp with the answer and the threshold it
/// announces. Errors: too_big_no_reply (the RFC 1122 rule forbids an answer), no_reply_buffer,
/// too_big (`reply` too small). The IPv4 answer's ID comes from the generator, keyed like the
/// kernel's (VIP -> client, ICMP), and is only taken when the answer is written.
template <class Byte>
[[nodiscard]] inline forward_result too_big_result(std::span<std::byte> reply,
                                                   const wire::basic_packet_view<Byte>& pkt,
                                                   std::uint32_t threshold, const answer_knobs& k) noexcept {
  if (!may_send_icmp_error_about(pkt, icmp_error_kind::packet_too_big))
    return unexpected{forward_error::too_big_no_reply};
  if (auto e = reply_room(reply, too_big_reply_len(pkt), true); e != forward_error::none) return unexpected{e};
  too_big_options o;
  o.src_mac = k.src_mac;
  o.quote_ttl_decremented = k.ttl_decremented;
  o.flow_label = k.flow_label;
  if (pkt.is_ipv4()) {
    const auto ip = pkt.l3();
    o.ip_id = ip_ids_or_default(k.ip_ids).next(wire::ip_family::v4, ip.data() + 16, ip.data() + 12, wire::ip_proto::icmp);
  }
  auto r = make_too_big_reply(reply, pkt, threshold, o);
  if (!r) return unexpected{r.error()};
  return forwarded{forward_action::reply_icmp, *r, threshold, static_cast<std::uint16_t>(reply_l2_len(pkt))};
}

}  // namespace detail
}  // namespace l4lb::forward
