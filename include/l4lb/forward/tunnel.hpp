// Tunnel forwarding (IPVS `-i`): the whole IP packet, TTL - 1, is wrapped in an outer IPv4 or
// IPv6 header to the real server, directly (IPIP: RFC 2003 4in4, RFC 2473 6in6, and mixed), in
// UDP + GUE (`--tun-type gue`) or in GRE (`--tun-type gre`, RFC 2784). The outer header is written
// into the headroom as ip_vs_xmit.c ip_vs_tunnel_xmit / ipvs_gue_encap / ipvs_gre_encap write it
// (ipvs-notes 0A): DF copied from the inner IPv4 header, ID 0 when DF is set (otherwise the next
// ID of an ip_id_generator, as ip_select_ident gives one), TOS/traffic class copied with the ECN
// rule, TTL = inner TTL after its decrement, source = the director's address. Over the egress MTU:
// the frag-needed / packet too big answer, or, for IPv4 without DF inside an IPv4 outer header,
// the encapsulated frame marked for fragment_forwarded() (fragment.hpp), as the kernel fragments
// the outer packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "l4lb/forward/detail/ip_rewrite.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/ip_id.hpp"
#include "l4lb/forward/l2_rewrite.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/gre.hpp"
#include "l4lb/wire/gue.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

/// ipvsadm --tun-type.
enum class tunnel_type : std::uint8_t { ipip, gue, gre };

/// ipvsadm --tun-nocsum / --tun-csum / --tun-remcsum.
enum class tunnel_checksum : std::uint8_t {
  none,     ///< GUE: UDP checksum 0; GRE: no checksum (4-byte header)
  csum,     ///< GUE: a full UDP checksum; GRE: the C bit and a checksum (8-byte header)
  /// GUE only: remote checksum offload (draft-herbert-remotecsumoffload; the kernel's
  /// GUE_PFLAG_REMCSUM). For a packet whose inner L4 checksum is still to be computed
  /// (CHECKSUM_PARTIAL, a locally sent packet) the kernel writes the checksum's start and offset
  /// into a GUE private option and leaves the inner checksum to the receiver. Forwarded packets
  /// already carry complete checksums, so the kernel falls back to a full UDP checksum: the bytes
  /// are csum's (recorded on Linux 6.1, ipvs-notes 0A), and so are ours.
  remcsum,
};

struct tunnel_config {
  tunnel_type type = tunnel_type::ipip;
  /// The director's address toward the real server: the outer source (not the VIP). Its family
  /// is the outer family; the real server's address must be of the same family. Required: left
  /// unspecified (0.0.0.0 or ::) it is a bad_config.
  wire::ip_address local;
  std::uint16_t gue_port = 0;   ///< GUE: UDP destination port (--tun-port); required, not 0
  /// GUE and GRE (ipip has no checksum and ignores it); remcsum is GUE's only (else bad_config).
  tunnel_checksum checksum = tunnel_checksum::none;
  /// GUE source port: a per-flow hash mapped into this range (Linux's default ephemeral range).
  std::uint16_t gue_src_port_min = 32768;
  std::uint16_t gue_src_port_max = 60999;
  bool decrement_ttl = true;    ///< the inner TTL / hop limit - 1, as IPVS does
  l2_config l2;                 ///< next hop toward the real server
  bool rewrite_l2 = true;       ///< false: MACs and tags kept (EtherType follows the outer family)
  std::size_t mtu = 0;          ///< egress MTU (outer packet); 0: no check
  /// Outer IPv4 IDs when the inner packet has no DF, and the IDs of IPv4 MTU answers (the kernel
  /// numbers both with ip_select_ident); null: default_ip_id_generator().
  ip_id_generator* ip_ids = nullptr;
  std::uint32_t reply_flow_label = 0;  ///< flow label of the IPv6 MTU answers
};

/// Bytes the encapsulation adds: outer IP (20 / 40) + UDP and GUE (8 + 4) or GRE (4, 8 with the
/// checksum). The MTU threshold is mtu minus this (ipvs-notes 0A "Egress MTU").
[[nodiscard]] constexpr std::size_t encapsulation_overhead(const tunnel_config& cfg) noexcept {
  const std::size_t ip = cfg.local.is_v4() ? 20 : 40;
  switch (cfg.type) {
    case tunnel_type::ipip: return ip;
    case tunnel_type::gue: return ip + 8 + wire::gue_view::header_len;
    case tunnel_type::gre: return ip + (cfg.checksum != tunnel_checksum::none ? 8 : 4);
  }
  return ip;
}

/// The GUE UDP source port for a flow: stable per flow, in [min, max] (Linux's udp_flow_src_port
/// maps a flow hash into the ephemeral range the same way; its hash is seeded per boot, ours is not).
[[nodiscard]] inline std::uint16_t gue_source_port(const wire::flow_key& key, std::uint16_t min,
                                                   std::uint16_t max) noexcept {
  if (max <= min) return min;
  const auto h = static_cast<std::uint32_t>(key.hash(0x6775655f73706f72ULL) >> 32);
  const std::uint64_t range = std::uint64_t{max} - min + 1;
  return static_cast<std::uint16_t>(min + ((h * range) >> 32));
}

/// RFC 6040 / Linux INET_ECN_encapsulate: the outer DS byte copies the inner one, except that an
/// inner CE becomes ECT(0) outside.
[[nodiscard]] constexpr std::uint8_t encapsulated_ds(std::uint8_t inner) noexcept {
  return (inner & 3u) == 3u ? static_cast<std::uint8_t>((inner & 0xFCu) | 2u) : inner;
}

namespace detail {
/// Writes a 20-byte outer IPv4 header at `out`. Its checksum is summed from the values (RFC 1071's
/// sum of 16-bit words), not read back from the bytes just stored: a wide load over narrow stores
/// waits for them to retire (about 12 ns of a tunnelled packet in the director, issue #9).
[[gnu::always_inline]] inline void write_outer_ipv4(std::byte* out, std::uint8_t ds, std::uint16_t total,
                                                    std::uint16_t id, bool df, std::uint8_t ttl,
                                                    std::uint8_t protocol, const wire::ip_address& src,
                                                    const wire::ip_address& dst) noexcept {
  namespace d = wire::detail;
  const std::uint16_t flags = df ? std::uint16_t{0x4000} : std::uint16_t{0};
  const std::uint8_t* const s = src.raw().data();
  const std::uint8_t* const t = dst.raw().data();
  d::store_u8(out, 0x45);
  d::store_u8(out + 1, ds);
  d::store_be16(out + 2, total);
  d::store_be16(out + 4, id);
  d::store_be16(out + 6, flags);
  d::store_u8(out + 8, ttl);
  d::store_u8(out + 9, protocol);
  std::memcpy(out + 12, s, 4);
  std::memcpy(out + 16, t, 4);
  const auto word = [](const std::uint8_t* p) { return std::uint32_t{p[0]} << 8 | p[1]; };
  std::uint32_t sum = (0x4500u | ds) + total + id + flags + (std::uint32_t{ttl} << 8 | protocol) + word(s) +
                      word(s + 2) + word(t) + word(t + 2);
  sum = (sum & 0xFFFFu) + (sum >> 16);
  sum = (sum & 0xFFFFu) + (sum >> 16);
  d::store_be16(out + 10, static_cast<std::uint16_t>(~sum));
}

/// tunnel_encapsulate for the common case, in a few stores: IPIP, IPv4 inside IPv4, no VLAN tag
/// in or out, the L2 header rewritten, within the MTU threshold, TTL above 1, room for the outer
/// headers. Writes exactly what tunnel_encapsulate writes (an inner packet without DF takes the
/// same outer ID from the generator) and returns the frame; returns an empty span, having written
/// nothing and taken no ID, in every other case. Precondition: `pkt` was parsed from buf.frame()
/// (the director's fast lane; tunnel_encapsulate checks it first).
[[nodiscard]] inline std::span<std::byte> plain_ipip_v4(frame_buffer& buf, const wire::packet_view& pkt,
                                                        const wire::ip_address& real_server,
                                                        const tunnel_config& cfg) noexcept {
  namespace d = wire::detail;
  constexpr std::size_t eth = 14, outer = 20;
  if (cfg.type != tunnel_type::ipip || cfg.checksum == tunnel_checksum::remcsum || !cfg.rewrite_l2 ||
      cfg.l2.vlan.count != 0 || !cfg.local.is_v4() || !real_server.is_v4() || cfg.local.v4().is_unspecified())
    return {};
  if (!pkt.is_ipv4() || !pkt.has_ethernet() || pkt.vlan_count() != 0 || pkt.l3_offset() != eth) return {};
  const std::size_t inner_len = pkt.l3_len();
  // mtu_check's "fits" with the 20-byte overhead (and its mtu_too_small case declined).
  if (cfg.mtu != 0 && (cfg.mtu < outer + wire::ipv4_min_mtu || inner_len > cfg.mtu - outer)) return {};
  const std::size_t inner_start = buf.frame_offset() + eth;
  if (inner_start < outer + eth || inner_len + outer > 0xFFFF) return {};
  std::byte* const inner = buf.storage().data() + inner_start;
  std::uint8_t ttl = d::load_u8(inner + 8);
  if (cfg.decrement_ttl) {
    if (ttl <= 1) return {};
    decrement_ttl(pkt.l3(), wire::ip_family::v4);
    --ttl;
  }
  const bool df = (d::load_be16(inner + 6) & 0x4000u) != 0;
  std::byte* const out = inner - outer;
  const std::uint16_t id = df ? std::uint16_t{0}
                              : ip_ids_or_default(cfg.ip_ids).next(wire::ip_family::v4, cfg.local.raw().data(),
                                                                   real_server.raw().data(), wire::ip_proto::ipip);
  write_outer_ipv4(out, encapsulated_ds(d::load_u8(inner + 1)), static_cast<std::uint16_t>(inner_len + outer), id,
                   df, ttl, wire::ip_proto::ipip, cfg.local, real_server);
  std::byte* const l2 = out - eth;
  std::memcpy(l2, cfg.l2.dst.bytes.data(), 6);
  std::memcpy(l2 + 6, cfg.l2.src.bytes.data(), 6);
  d::store_be16(l2 + 12, wire::ethertype::ipv4);
  (void)buf.set_frame(inner_start - outer - eth, eth + outer + inner_len);
  return buf.frame();
}

/// The same short cut for IPv6 inside IPv6 (RFC 2473; the kernel's ip6ip6 as IPVS's TUN uses
/// it): IPIP, no VLAN tag in or out, the L2 header rewritten, within the MTU threshold, hop limit
/// above 1, room for the outer headers. The outer header carries the inner traffic class as
/// encapsulated_ds gives it, flow label 0, the inner hop limit (after the decrement), next header
/// 41. Writes exactly what tunnel_encapsulate writes; returns an empty span, having written
/// nothing, in every other case.
[[nodiscard]] inline std::span<std::byte> plain_ip6ip6(frame_buffer& buf, const wire::packet_view& pkt,
                                                       const wire::ip_address& real_server,
                                                       const tunnel_config& cfg) noexcept {
  namespace d = wire::detail;
  constexpr std::size_t eth = 14, outer = 40;
  if (cfg.type != tunnel_type::ipip || cfg.checksum == tunnel_checksum::remcsum || !cfg.rewrite_l2 ||
      cfg.l2.vlan.count != 0 || !cfg.local.is_v6() || !real_server.is_v6() || cfg.local.v6().is_unspecified())
    return {};
  if (!pkt.is_ipv6() || !pkt.has_ethernet() || pkt.vlan_count() != 0 || pkt.l3_offset() != eth) return {};
  const std::size_t inner_len = pkt.l3_len();
  // mtu_check's "fits" with the 40-byte overhead (and its mtu_too_small case declined).
  if (cfg.mtu != 0 && (cfg.mtu < outer + wire::ipv6_min_mtu || inner_len > cfg.mtu - outer)) return {};
  const std::size_t inner_start = buf.frame_offset() + eth;
  if (inner_start < outer + eth || inner_len > 0xFFFF) return {};
  std::byte* const inner = buf.storage().data() + inner_start;
  std::uint8_t hop_limit = d::load_u8(inner + 7);
  if (cfg.decrement_ttl) {
    if (hop_limit <= 1) return {};
    decrement_ttl(pkt.l3(), wire::ip_family::v6);
    --hop_limit;
  }
  const auto traffic_class = static_cast<std::uint8_t>((d::load_be32(inner) >> 20) & 0xFFu);
  std::byte* const out = inner - outer;
  d::store_be32(out, 0x6000'0000u | (std::uint32_t{encapsulated_ds(traffic_class)} << 20));
  d::store_be16(out + 4, static_cast<std::uint16_t>(inner_len));
  d::store_u8(out + 6, wire::ip_proto::ipv6);
  d::store_u8(out + 7, hop_limit);
  std::memcpy(out + 8, cfg.local.raw().data(), 16);
  std::memcpy(out + 24, real_server.raw().data(), 16);
  std::byte* const l2 = out - eth;
  std::memcpy(l2, cfg.l2.dst.bytes.data(), 6);
  std::memcpy(l2 + 6, cfg.l2.src.bytes.data(), 6);
  d::store_be16(l2 + 12, wire::ethertype::ipv6);
  (void)buf.set_frame(inner_start - outer - eth, eth + outer + inner_len);
  return buf.frame();
}
}  // namespace detail

/// Encapsulates the IP packet of `pkt` (parsed from buf.frame()) for `real_server`: inner TTL - 1,
/// outer headers written into the headroom, then the L2 header (rewrite_l2: cfg.l2; otherwise the
/// received one, EtherType = outer family). The returned frame starts earlier in the buffer.
/// Outer IPv4 identification: 0 when the inner packet sets DF, as in the kernel; otherwise `ip_id`
/// when given, else the next ID of cfg.ip_ids (or the shared generator) for local -> real server.
/// Errors: view_not_in_buffer, bad_config (cfg.local unspecified, GUE port 0, remcsum without
/// GUE), family_mismatch (real server vs cfg.local), ttl_exceeded, no_ethernet, vlan_mismatch,
/// no_headroom, mtu_too_small, too_big_no_reply, no_reply_buffer, too_big, not_fragmentable (IPv4
/// without DF over the threshold inside an IPv6 outer header: l4lb fragments IPv4 only).
/// Over the MTU threshold with IPv6 inside, or IPv4 with DF: reply_icmp (answer in `reply`);
/// IPv4 without DF in an IPv4 outer header: fragment (the outer packet, DF 0, at cfg.mtu).
[[nodiscard]] inline forward_result tunnel_encapsulate(frame_buffer& buf, const wire::packet_view& pkt,
                                                       const wire::ip_address& real_server,
                                                       const tunnel_config& cfg,
                                                       std::span<std::byte> reply = {},
                                                       std::optional<std::uint16_t> ip_id = std::nullopt) noexcept;

namespace detail {
/// tunnel_encapsulate's every case (plain_ipip_v4 and plain_ip6ip6 are the common ones' short
/// cuts). Precondition:
/// `pkt` was parsed from buf.frame().
[[nodiscard]] inline forward_result tunnel_encapsulate_general(frame_buffer& buf, const wire::packet_view& pkt,
                                                               const wire::ip_address& real_server,
                                                               const tunnel_config& cfg, std::span<std::byte> reply,
                                                               std::optional<std::uint16_t> ip_id) noexcept {
  namespace d = wire::detail;
  const bool local_unset = cfg.local.is_v4() ? cfg.local.v4().is_unspecified() : cfg.local.v6().is_unspecified();
  if (local_unset) return unexpected{forward_error::bad_config};
  if (cfg.type == tunnel_type::gue && cfg.gue_port == 0) return unexpected{forward_error::bad_config};
  if (cfg.checksum == tunnel_checksum::remcsum && cfg.type != tunnel_type::gue)
    return unexpected{forward_error::bad_config};
  if (real_server.family() != cfg.local.family()) return unexpected{forward_error::family_mismatch};
  const auto inner_family = pkt.family();
  if (cfg.decrement_ttl && detail::ip_ttl(pkt.l3(), inner_family) <= 1)
    return unexpected{forward_error::ttl_exceeded};
  const std::size_t overhead = encapsulation_overhead(cfg);
  detail::mtu_verdict verdict{};
  std::uint32_t threshold = 0;
  if (auto e = detail::mtu_check(pkt, cfg.mtu, overhead, verdict, threshold); e != forward_error::none)
    return unexpected{e};
  if (verdict == detail::mtu_verdict::answer)
    return detail::too_big_result(reply, pkt, threshold,
                                  {cfg.l2.src, cfg.decrement_ttl, cfg.ip_ids, cfg.reply_flow_label});
  const bool outer_v4 = cfg.local.is_v4();
  if (verdict == detail::mtu_verdict::fragment && !outer_v4) return unexpected{forward_error::not_fragmentable};
  const std::size_t inner_len = pkt.l3_len();
  if (inner_len + overhead > 0xFFFF + (cfg.local.is_v6() ? 40u : 0u)) return unexpected{forward_error::too_big};
  detail::l2_plan l2;
  if (auto e = detail::plan_l2(pkt, cfg.rewrite_l2 ? &cfg.l2 : nullptr,
                               outer_v4 ? wire::ethertype::ipv4 : wire::ethertype::ipv6, l2);
      e != forward_error::none)
    return unexpected{e};
  const std::size_t inner_start = buf.frame_offset() + pkt.l3_offset();
  if (inner_start < overhead + l2.len) return unexpected{forward_error::no_headroom};

  // Nothing has been written so far; from here on the rewrite cannot fail.
  auto inner = pkt.l3();
  if (cfg.decrement_ttl) detail::decrement_ttl(inner, inner_family);
  std::uint8_t ds = 0, ttl = 0;
  bool df = false;
  if (inner_family == wire::ip_family::v4) {
    ds = d::load_u8(inner.data() + 1);
    ttl = d::load_u8(inner.data() + 8);
    df = (d::load_be16(inner.data() + 6) & 0x4000u) != 0;
  } else {
    ds = static_cast<std::uint8_t>((d::load_be32(inner.data()) >> 20) & 0xFFu);
    ttl = d::load_u8(inner.data() + 7);
  }
  std::uint8_t outer_proto = wire::ip_proto::udp;
  switch (cfg.type) {
    case tunnel_type::ipip:
      outer_proto = inner_family == wire::ip_family::v4 ? wire::ip_proto::ipip : wire::ip_proto::ipv6;
      break;
    case tunnel_type::gue: outer_proto = wire::ip_proto::udp; break;
    case tunnel_type::gre: outer_proto = wire::ip_proto::gre; break;
  }
  const std::size_t outer_start = inner_start - overhead;
  auto out = buf.storage().subspan(outer_start, overhead + inner_len);
  const std::size_t ip_len = outer_v4 ? 20 : 40;
  if (outer_v4) {
    std::uint16_t id = 0;
    if (!df)
      id = ip_id ? *ip_id
                 : ip_ids_or_default(cfg.ip_ids).next(wire::ip_family::v4, cfg.local.raw().data(),
                                                      real_server.raw().data(), outer_proto);
    write_outer_ipv4(out.data(), encapsulated_ds(ds), static_cast<std::uint16_t>(out.size()), id, df, ttl,
                     outer_proto, cfg.local, real_server);
  } else {
    d::store_be32(out.data(), 0x6000'0000u | (std::uint32_t{encapsulated_ds(ds)} << 20));  // flow label 0
    d::store_be16(out.data() + 4, static_cast<std::uint16_t>(out.size() - 40));
    d::store_u8(out.data() + 6, outer_proto);
    d::store_u8(out.data() + 7, ttl);
    std::memcpy(out.data() + 8, cfg.local.raw().data(), 16);
    std::memcpy(out.data() + 24, real_server.raw().data(), 16);
  }
  const std::uint8_t inner_proto = inner_family == wire::ip_family::v4 ? wire::ip_proto::ipip : wire::ip_proto::ipv6;
  if (cfg.type == tunnel_type::gue) {
    auto udp = out.subspan(ip_len);
    d::store_be16(udp.data(), gue_source_port(pkt.key(), cfg.gue_src_port_min, cfg.gue_src_port_max));
    d::store_be16(udp.data() + 2, cfg.gue_port);
    d::store_be16(udp.data() + 4, static_cast<std::uint16_t>(udp.size()));
    d::store_be16(udp.data() + 6, 0);
    wire::emit_gue_header(udp.subspan(8), inner_proto);
    if (cfg.checksum != tunnel_checksum::none) {  // csum, and remcsum on complete packets
      const auto a = std::as_bytes(std::span{cfg.local.raw()}).first(cfg.local.byte_size());
      const auto b = std::as_bytes(std::span{real_server.raw()}).first(real_server.byte_size());
      auto pseudo = wire::pseudo_header(cfg.local.family(), a, b, wire::ip_proto::udp,
                                        static_cast<std::uint32_t>(udp.size()));
      d::store_be16(udp.data() + 6, wire::udp_checksum(pseudo, udp));
    }
  } else if (cfg.type == tunnel_type::gre) {
    auto gre = wire::gre_mut_view::unchecked(out.subspan(ip_len));
    const bool gre_csum = cfg.checksum != tunnel_checksum::none;
    gre.set_flags_version(gre_csum ? wire::gre_flags::checksum : std::uint16_t{0});
    gre.set_protocol(inner_family == wire::ip_family::v4 ? wire::ethertype::ipv4 : wire::ethertype::ipv6);
    if (gre_csum) {
      gre.set_checksum(0);
      gre.set_reserved1(0);
      // RFC 2784 2.5: over the GRE header and the payload, the checksum field taken as zero.
      gre.set_checksum(wire::internet_checksum(gre.bytes()));
    }
  }
  const auto frame = detail::apply_l2(buf, l2, outer_start, inner_start + inner_len);
  if (verdict == detail::mtu_verdict::fragment)
    return forwarded{forward_action::fragment, frame, static_cast<std::uint32_t>(cfg.mtu),
                     static_cast<std::uint16_t>(l2.len)};
  return forwarded{forward_action::forward, frame, 0, static_cast<std::uint16_t>(l2.len)};
}
}  // namespace detail

inline forward_result tunnel_encapsulate(frame_buffer& buf, const wire::packet_view& pkt,
                                         const wire::ip_address& real_server, const tunnel_config& cfg,
                                         std::span<std::byte> reply, std::optional<std::uint16_t> ip_id) noexcept {
  if (auto e = detail::check_view(buf, pkt); e != forward_error::none) return unexpected{e};
  if (!ip_id)
    if (const auto f = pkt.is_ipv4() ? detail::plain_ipip_v4(buf, pkt, real_server, cfg)
                                     : detail::plain_ip6ip6(buf, pkt, real_server, cfg);
        !f.empty())
      return forwarded{forward_action::forward, f, 0, 14};
  return detail::tunnel_encapsulate_general(buf, pkt, real_server, cfg, reply, ip_id);
}

}  // namespace l4lb::forward
