// NAT (IPVS `-m`, masquerading) in both directions, on the caller's buffer: inbound packets get the
// real server's address and port as destination, replies get the VIP's as source; TTL - 1, the
// IPv4 header and TCP/UDP checksums updated incrementally (RFC 1624), SCTP's CRC32c recomputed
// (ip_vs_proto_sctp.c), IP ID kept. ICMP errors that quote a connection's TCP, UDP or SCTP packet
// are rewritten too, as ip_vs_core.c ip_vs_nat_icmp does (ipvs-notes 0A).
#pragma once

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <span>

#include "l4lb/forward/detail/ip_rewrite.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/ip_id.hpp"
#include "l4lb/forward/l2_rewrite.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

/// The connection's endpoints, as the connection table knows them.
struct nat_connection {
  wire::endpoint client;  ///< the client's address and port
  wire::endpoint vip;     ///< the virtual service
  wire::endpoint real;    ///< the real server chosen for the connection
};

struct nat_config {
  l2_config l2;                 ///< next hop: the real server (inbound) or the gateway (outbound)
  bool rewrite_l2 = true;       ///< false: MACs and tags left as they are (or no Ethernet at all)
  bool decrement_ttl = true;
  /// IPVS gives an absent (0) IPv4 UDP checksum a full, valid one after rewriting; true keeps 0.
  bool keep_zero_udp_checksum = false;
  /// An ICMP error's quoted TCP/UDP checksum is left as it was, as the kernel leaves it
  /// (ip_vs_nat_icmp; ipvs-notes 0A). false updates it with the quoted addresses and ports
  /// (RFC 1624; when the field is inside the quote), so every checksum in the message holds.
  /// A quoted SCTP CRC32c is always left as it was, as the kernel does (see rewrite_icmp_error).
  bool keep_quoted_l4_checksum = true;
  std::size_t mtu = 0;          ///< egress MTU for the frag-needed / too-big rule; 0: no check
  ip_id_generator* ip_ids = nullptr;  ///< IDs of the IPv4 MTU answers; null: default_ip_id_generator()
  std::uint32_t reply_flow_label = 0;  ///< flow label of the IPv6 MTU answers
};

namespace detail {

/// The protocols NAT rewrites: ports at offsets 0 and 2 of the L4 header (ip_vs_proto_tcp.c,
/// ip_vs_proto_udp.c, ip_vs_proto_sctp.c; ip_vs_nat_icmp handles the same three in quotes).
[[nodiscard]] constexpr bool nat_protocol(std::uint8_t p) noexcept {
  return p == wire::ip_proto::tcp || p == wire::ip_proto::udp || p == wire::ip_proto::sctp;
}

[[nodiscard]] inline forward_error nat_common_checks(const wire::packet_view& pkt,
                                                     const wire::endpoint* const* eps, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (!of_family(*eps[i], pkt.family())) return forward_error::family_mismatch;
  if (pkt.is_fragment()) return forward_error::fragmented;
  if (pkt.is_icmp_error()) {
    if (!pkt.quote_has_l4() || !nat_protocol(pkt.quote_protocol())) return forward_error::unsupported_protocol;
    return forward_error::none;
  }
  // An SCTP packet reaches here only with its whole 12-byte common header (wire::parse refuses
  // less with truncated_sctp), so the CRC32c field is there to rewrite.
  if (!pkt.has_l4_header() || !nat_protocol(pkt.protocol())) return forward_error::unsupported_protocol;
  return forward_error::none;
}

[[nodiscard]] inline rewrite_options nat_rewrite_options(const nat_config& cfg) noexcept {
  rewrite_options o;
  o.decrement_ttl = cfg.decrement_ttl;
  o.keep_zero_udp_checksum = cfg.keep_zero_udp_checksum;
  o.update_quoted_l4_checksum = !cfg.keep_quoted_l4_checksum;
  return o;
}

/// The steps every NAT-style rewrite shares once the flow has been matched: TTL check, L2 plan,
/// the MTU rule DR and TUN follow too (an ICMP error over the MTU is fragmented when it may be,
/// and otherwise dropped, never answered: RFC 1122 3.2.2), the rewrite, L2.
template <class Rewrite>
[[nodiscard]] inline forward_result nat_finish(frame_buffer& buf, const wire::packet_view& pkt,
                                               const nat_config& cfg, std::span<std::byte> reply,
                                               Rewrite&& rewrite) noexcept {
  if (cfg.decrement_ttl && ip_ttl(pkt.l3(), pkt.family()) <= 1) return unexpected{forward_error::ttl_exceeded};
  l2_plan l2;
  if (auto e = plan_l2(pkt, cfg.rewrite_l2 ? &cfg.l2 : nullptr, pkt.ethertype(), l2); e != forward_error::none)
    return unexpected{e};
  const std::size_t l3_start = buf.frame_offset() + pkt.l3_offset();
  if (l3_start < l2.len) return unexpected{forward_error::no_headroom};
  mtu_verdict verdict{};
  std::uint32_t threshold = 0;
  if (auto e = mtu_check(pkt, cfg.mtu, 0, verdict, threshold); e != forward_error::none) return unexpected{e};
  // The answer quotes the packet as received (before the address rewrite), TTL - 1.
  if (verdict == mtu_verdict::answer)
    return too_big_result(reply, pkt, threshold, {cfg.l2.src, cfg.decrement_ttl, cfg.ip_ids, cfg.reply_flow_label});
  rewrite();
  const auto frame = apply_l2(buf, l2, l3_start, l3_start + pkt.l3_len());
  if (verdict == mtu_verdict::fragment)
    return forwarded{forward_action::fragment, frame, static_cast<std::uint32_t>(cfg.mtu),
                     static_cast<std::uint16_t>(l2.len)};
  return forwarded{forward_action::forward, frame, 0, static_cast<std::uint16_t>(l2.len)};
}

/// nat_finish for the common frame, without the plan: TCP, or UDP with a checksum, over IPv4
/// without options or IPv6, not a fragment or an ICMP error, Ethernet without VLAN tags in or
/// out, within the MTU, TTL / hop limit above 1. Rewrites it exactly as
/// nat_finish(rewrite_endpoints) would and returns the frame; returns an empty span, having
/// written nothing, for any other frame. Precondition: pkt was parsed from buf.frame() and
/// belongs to the flow being translated (the director's fast lane; nat_translate checks both
/// first). Endpoints: of the packet's family, nullptr for a side left unchanged.
[[nodiscard, gnu::always_inline]] inline std::span<std::byte> plain_nat_translate(
    frame_buffer& buf, const wire::packet_view& pkt, const wire::endpoint* to_src,
    const wire::endpoint* to_dst, const nat_config& cfg) noexcept {
  if (!pkt.has_ethernet() || pkt.vlan_count() != 0 || pkt.l3_offset() != 14 ||
      !cfg.rewrite_l2 || cfg.l2.vlan.count != 0 || pkt.is_fragment() || pkt.is_icmp_error() ||
      !pkt.has_l4_header())
    return {};
  const bool v4 = pkt.is_ipv4();
  if ((to_src != nullptr && to_src->address.is_v4() != v4) || (to_dst != nullptr && to_dst->address.is_v4() != v4))
    return {};
  const std::uint8_t proto = pkt.protocol();
  if (proto != wire::ip_proto::udp ? proto != wire::ip_proto::tcp : pkt.udp().checksum() == 0) return {};
  // Over the MTU, or an MTU under the family's minimum (mtu_check's mtu_too_small): general path.
  if (cfg.mtu != 0 && (cfg.mtu < wire::min_mtu(v4) || pkt.l3_len() > cfg.mtu)) return {};
  std::byte* const frame = pkt.frame().data();
  if (cfg.decrement_ttl && wire::detail::load_u8(frame + 14 + (v4 ? 8 : 7)) <= 1) return {};
  rewrite_endpoints(pkt, {to_src, to_dst}, nat_rewrite_options(cfg));
  std::memcpy(frame, cfg.l2.dst.bytes.data(), 6);
  std::memcpy(frame + 6, cfg.l2.src.bytes.data(), 6);
  (void)buf.set_frame(buf.frame_offset(), 14 + pkt.l3_len());  // Ethernet padding is not forwarded
  return buf.frame();
}

/// One NAT-style translation, shared by NAT and FullNAT in both directions. The packet must
/// belong to the flow `from_src -> from_dst`; it leaves as `to_src -> to_dst` (nullptr: that
/// side is unchanged). An ICMP error travelling the same way must be addressed to from_dst and
/// quote the reverse flow (from_dst -> from_src): its outer addresses change like the data's and
/// the quote changes mirror-wise (ip_vs_core.c ip_vs_nat_icmp). Every endpoint must be of the
/// packet's family.
[[nodiscard]] inline forward_result nat_translate(frame_buffer& buf, const wire::packet_view& pkt,
                                                  const wire::endpoint& from_src, const wire::endpoint& from_dst,
                                                  const wire::endpoint* to_src, const wire::endpoint* to_dst,
                                                  const nat_config& cfg, std::span<std::byte> reply) noexcept {
  if (auto e = check_view(buf, pkt); e != forward_error::none) return unexpected{e};
  const wire::endpoint* eps[] = {&from_src, &from_dst, to_src ? to_src : &from_src, to_dst ? to_dst : &from_dst};
  if (auto e = nat_common_checks(pkt, eps, 4); e != forward_error::none) return unexpected{e};
  const auto opt = nat_rewrite_options(cfg);
  if (pkt.is_icmp_error()) {
    const auto q = pkt.quoted_flow_key();
    if (!same_address(pkt.l3(), dst_addr_offset(pkt.family()), from_dst.address) || !key_src_is(q, from_dst) ||
        !key_dst_is(q, from_src))
      return unexpected{forward_error::flow_mismatch};
    return nat_finish(buf, pkt, cfg, reply, [&] {
      icmp_change c;
      c.outer_src = to_src ? &to_src->address : nullptr;
      c.outer_dst = to_dst ? &to_dst->address : nullptr;
      c.quote_src = to_dst;
      c.quote_dst = to_src;
      rewrite_icmp_error(pkt, c, opt);
    });
  }
  if (!key_src_is(pkt.key(), from_src) || !key_dst_is(pkt.key(), from_dst))
    return unexpected{forward_error::flow_mismatch};
  if (const auto f = plain_nat_translate(buf, pkt, to_src, to_dst, cfg); !f.empty())
    return forwarded{forward_action::forward, f, 0, 14};
  return nat_finish(buf, pkt, cfg, reply, [&] {
    endpoint_change c;
    c.src = to_src;
    c.dst = to_dst;
    rewrite_endpoints(pkt, c, opt);
  });
}

}  // namespace detail

/// Client -> real server. A TCP/UDP/SCTP packet client -> VIP gets destination = real server
/// (address and port); an ICMP error sent to the VIP that quotes a packet VIP -> client (a router
/// or the client reporting on a reply) gets outer destination = real server and, in the quote,
/// source = real server (address and port).
/// Errors: view_not_in_buffer, family_mismatch, fragmented, unsupported_protocol, flow_mismatch,
/// ttl_exceeded, no_ethernet (rewrite_l2 without Ethernet), vlan_mismatch, no_headroom,
/// mtu_too_small, too_big_no_reply, no_reply_buffer, too_big. Over the MTU without permission to
/// fragment: reply_icmp (an ICMP error: too_big_no_reply); IPv4 without DF: fragment.
[[nodiscard]] inline forward_result nat_inbound(frame_buffer& buf, const wire::packet_view& pkt,
                                                const nat_connection& conn, const nat_config& cfg,
                                                std::span<std::byte> reply = {}) noexcept {
  return detail::nat_translate(buf, pkt, conn.client, conn.vip, nullptr, &conn.real, cfg, reply);
}

/// Real server -> client (the reply direction, ip_vs_core.c handle_response). A TCP/UDP/SCTP
/// packet real server -> client gets source = VIP (address and port); an ICMP error sent to the
/// client that quotes a packet client -> real server gets outer source = VIP (even when a router
/// sent it) and, in the quote, destination = VIP (address and port). Errors as nat_inbound.
[[nodiscard]] inline forward_result nat_outbound(frame_buffer& buf, const wire::packet_view& pkt,
                                                 const nat_connection& conn, const nat_config& cfg,
                                                 std::span<std::byte> reply = {}) noexcept {
  return detail::nat_translate(buf, pkt, conn.real, conn.client, &conn.vip, nullptr, cfg, reply);
}

}  // namespace l4lb::forward
