// Direct routing (IPVS `-g`, gatewaying): the frame goes to the real server's MAC from the
// director's; only the TTL / hop limit changes in the IP header (and, for IPv4, its checksum),
// as ip_vs_xmit.c ip_vs_dr_xmit does; L4 is untouched, so ICMP errors pass the same way. Over the
// egress MTU: the frag-needed / packet too big answer (icmp_too_big.hpp), or, for IPv4 without
// DF, the rewritten frame marked for fragment_forwarded() (fragment.hpp).
#pragma once

#include <cstddef>
#include <cstring>
#include <span>

#include "l4lb/forward/detail/ip_rewrite.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/ip_id.hpp"
#include "l4lb/forward/l2_rewrite.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

struct dr_config {
  l2_config l2;                ///< src = the director's MAC, dst = the real server's MAC
  bool decrement_ttl = true;   ///< false: the IP header is left untouched (not IPVS's behaviour)
  std::size_t mtu = 0;         ///< egress MTU for IPVS's frag-needed / too-big rule; 0: no check
  ip_id_generator* ip_ids = nullptr;  ///< IDs of the IPv4 MTU answers; null: default_ip_id_generator()
  std::uint32_t reply_flow_label = 0;  ///< flow label of the IPv6 MTU answers
};

namespace detail {
/// direct_route for the common frame, in a few stores: IPv4 without options or IPv6 (extension
/// headers go through untouched), no VLAN tag in or out, within the MTU, TTL / hop limit above 1.
/// Writes the frame exactly as direct_route would and returns it; returns an empty span, having
/// written nothing, for any other frame. Precondition: `pkt` was parsed from buf.frame() (the
/// director's fast lane; direct_route checks it first).
[[nodiscard, gnu::always_inline]] inline std::span<std::byte> plain_direct_route(
    frame_buffer& buf, const wire::packet_view& pkt, const dr_config& cfg) noexcept {
  const bool v4 = pkt.is_ipv4();
  if (!pkt.has_ethernet() || pkt.vlan_count() != 0 || cfg.l2.vlan.count != 0 ||
      pkt.has_ipv4_options() || pkt.l3_offset() != 14)
    return {};
  // Over the MTU, or an MTU under the family's minimum (mtu_check's mtu_too_small): general path.
  if (cfg.mtu != 0 && (cfg.mtu < wire::min_mtu(v4) || pkt.l3_len() > cfg.mtu)) return {};
  std::byte* const frame = pkt.frame().data();
  if (cfg.decrement_ttl) {
    // TTL at 8 of the IPv4 header, hop limit at 7 of the IPv6 one.
    if (wire::detail::load_u8(frame + 14 + (v4 ? 8 : 7)) <= 1) return {};
    decrement_ttl(pkt.l3(), pkt.family());
  }
  std::memcpy(frame, cfg.l2.dst.bytes.data(), 6);
  std::memcpy(frame + 6, cfg.l2.src.bytes.data(), 6);
  (void)buf.set_frame(buf.frame_offset(), 14 + pkt.l3_len());  // Ethernet padding is not forwarded
  return buf.frame();
}

/// direct_route's every case (plain_direct_route is the common one's short cut).
[[nodiscard]] inline forward_result direct_route_general(frame_buffer& buf, const wire::packet_view& pkt,
                                                         const dr_config& cfg,
                                                         std::span<std::byte> reply) noexcept {
  if (!pkt.has_ethernet()) return unexpected{forward_error::no_ethernet};
  if (cfg.decrement_ttl && detail::ip_ttl(pkt.l3(), pkt.family()) <= 1)
    return unexpected{forward_error::ttl_exceeded};
  detail::l2_plan l2;
  if (auto e = detail::plan_l2(pkt, &cfg.l2, pkt.ethertype(), l2); e != forward_error::none) return unexpected{e};
  const std::size_t l3_start = buf.frame_offset() + pkt.l3_offset();
  if (l3_start < l2.len) return unexpected{forward_error::no_headroom};
  detail::mtu_verdict verdict{};
  std::uint32_t threshold = 0;
  if (auto e = detail::mtu_check(pkt, cfg.mtu, 0, verdict, threshold); e != forward_error::none)
    return unexpected{e};
  if (verdict == detail::mtu_verdict::answer)
    return detail::too_big_result(reply, pkt, threshold,
                                  {cfg.l2.src, cfg.decrement_ttl, cfg.ip_ids, cfg.reply_flow_label});
  if (cfg.decrement_ttl) detail::decrement_ttl(pkt.l3(), pkt.family());
  const auto frame = detail::apply_l2(buf, l2, l3_start, l3_start + pkt.l3_len());
  if (verdict == detail::mtu_verdict::fragment)
    return forwarded{forward_action::fragment, frame, static_cast<std::uint32_t>(cfg.mtu),
                     static_cast<std::uint16_t>(l2.len)};
  return forwarded{forward_action::forward, frame, 0, static_cast<std::uint16_t>(l2.len)};
}
}  // namespace detail

/// Rewrites `pkt` (parsed from buf.frame(), with Ethernet) for direct routing, in place. The
/// returned frame ends at the IP packet's end (Ethernet padding is not forwarded).
/// Errors: view_not_in_buffer, no_ethernet, ttl_exceeded (TTL/hop limit <= 1), vlan_mismatch,
/// no_headroom (a VLAN replace that adds tags), mtu_too_small, and over the MTU without permission
/// to fragment: too_big_no_reply (no ICMP error may be sent about it), no_reply_buffer, too_big
/// (the answer does not fit `reply`). Results: forward; reply_icmp with the answer in `reply` (the
/// packet is left as it was); fragment (IPv4 without DF over the MTU: rewritten, to be fragmented).
[[nodiscard]] inline forward_result direct_route(frame_buffer& buf, const wire::packet_view& pkt,
                                                 const dr_config& cfg,
                                                 std::span<std::byte> reply = {}) noexcept {
  if (auto e = detail::check_view(buf, pkt); e != forward_error::none) return unexpected{e};
  if (const auto f = detail::plain_direct_route(buf, pkt, cfg); !f.empty())
    return forwarded{forward_action::forward, f, 0, 14};
  return detail::direct_route_general(buf, pkt, cfg, reply);
}

}  // namespace l4lb::forward
