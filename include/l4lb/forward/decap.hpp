// The real server's side of TUN forwarding: take the inner IP packet out of an IPIP (4in4, 6in6,
// mixed), GUE or GRE packet, as read from a raw socket or tun device (an IP packet) or from a
// packet socket (an Ethernet frame). Every length the outer headers claim is checked against the
// bytes present and against the inner packet's own length; nothing outside the span is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/expected.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/gre.hpp"
#include "l4lb/wire/gue.hpp"
#include "l4lb/wire/parse.hpp"

namespace l4lb::forward {

struct decap_config {
  std::uint16_t gue_port = 0;    ///< UDP port GUE arrives on; 0: UDP is never taken for GUE
  bool verify_checksums = true;  ///< check a present GRE checksum and a non-zero UDP checksum
};

/// Where the inner packet is, and what carried it.
struct decapsulated {
  tunnel_type type = tunnel_type::ipip;
  std::span<std::byte> inner;  ///< the inner IP packet, exactly its own length
  wire::ip_address outer_src;  ///< the director
  wire::ip_address outer_dst;  ///< this real server
};

namespace detail {

[[nodiscard]] constexpr forward_error from_drop_reason(wire::drop_reason r) noexcept {
  switch (r) {
    case wire::drop_reason::truncated_ethernet:
    case wire::drop_reason::truncated_vlan:
    case wire::drop_reason::truncated_ip:
    case wire::drop_reason::truncated_ipv4:
    case wire::drop_reason::truncated_ipv6:
    case wire::drop_reason::truncated_ipv6_extension:
    case wire::drop_reason::truncated_udp:
      return forward_error::truncated;
    case wire::drop_reason::ipv4_total_length_exceeds_frame:
    case wire::drop_reason::ipv4_total_length_below_header:
    case wire::drop_reason::ipv6_payload_length_exceeds_frame:
    case wire::drop_reason::bad_udp_length:
      return forward_error::tunnel_length_mismatch;
    case wire::drop_reason::not_ip: return forward_error::not_tunnel;
    default: return forward_error::malformed;
  }
}

[[nodiscard]] constexpr forward_error from_header_error(wire::tunnel_header_error e) noexcept {
  return e == wire::tunnel_header_error::truncated ? forward_error::tunnel_length_mismatch
                                                   : forward_error::bad_tunnel_header;
}

/// The inner IP packet must be exactly `rest`: its version agrees with what the outer header said
/// and its own length field covers every remaining byte, no more and no less.
[[nodiscard]] inline forward_error check_inner(std::span<const std::byte> rest, std::uint8_t expect_proto) noexcept {
  namespace d = wire::detail;
  if (rest.empty()) return forward_error::tunnel_length_mismatch;
  const unsigned version = d::load_u8(rest.data()) >> 4;
  if ((expect_proto == wire::ip_proto::ipip && version != 4) || (expect_proto == wire::ip_proto::ipv6 && version != 6))
    return forward_error::bad_tunnel_header;
  if (version == 4) {
    if (rest.size() < 20) return forward_error::tunnel_length_mismatch;
    if (d::load_be16(rest.data() + 2) != rest.size()) return forward_error::tunnel_length_mismatch;
  } else if (version == 6) {
    if (rest.size() < 40) return forward_error::tunnel_length_mismatch;
    if (std::size_t{d::load_be16(rest.data() + 4)} + 40 != rest.size()) return forward_error::tunnel_length_mismatch;
  } else {
    return forward_error::unsupported_inner_protocol;
  }
  return forward_error::none;
}

template <class View>
[[nodiscard]] inline expected<decapsulated, forward_error> decap_parsed(const View& outer,
                                                                       const decap_config& cfg) noexcept {
  namespace d = wire::detail;
  decapsulated r;
  r.outer_src = outer.key().src_address();
  r.outer_dst = outer.key().dst_address();
  if (outer.is_fragment()) return unexpected{forward_error::fragmented};
  const auto l4 = outer.l4();
  std::span<std::byte> rest;
  std::uint8_t expect = 0;  // 4 / 41, or 0 when the inner version decides
  switch (outer.protocol()) {
    case wire::ip_proto::ipip:
    case wire::ip_proto::ipv6:
      r.type = tunnel_type::ipip;
      rest = l4;
      expect = outer.protocol();
      break;
    case wire::ip_proto::gre: {
      r.type = tunnel_type::gre;
      auto g = wire::gre_mut_view::make(l4);
      if (!g) return unexpected{from_header_error(g.error())};
      if (g->protocol() == wire::ethertype::ipv4)
        expect = wire::ip_proto::ipip;
      else if (g->protocol() == wire::ethertype::ipv6)
        expect = wire::ip_proto::ipv6;
      else
        return unexpected{forward_error::unsupported_inner_protocol};
      if (g->has_checksum() && cfg.verify_checksums &&
          !wire::checksum_accumulator{}.add(std::span<const std::byte>(l4)).verifies())
        return unexpected{forward_error::bad_tunnel_checksum};
      rest = g->payload();
      break;
    }
    case wire::ip_proto::udp: {
      if (cfg.gue_port == 0 || !outer.has_l4_header() || outer.udp().dst_port() != cfg.gue_port)
        return unexpected{forward_error::not_tunnel};
      r.type = tunnel_type::gue;
      const std::size_t udp_len = outer.udp().length();
      // The parser bounded the UDP length by the IP payload; trailing bytes after it would be a lie.
      if (udp_len != l4.size()) return unexpected{forward_error::tunnel_length_mismatch};
      const std::uint16_t sum = outer.udp().checksum();
      if (sum != 0 && cfg.verify_checksums) {
        const auto f = outer.family();
        const std::size_t n = f == wire::ip_family::v4 ? 4 : 16;
        auto ip = outer.l3();
        auto pseudo = wire::pseudo_header(f, std::span<const std::byte>(ip.subspan(detail::src_addr_offset(f), n)),
                                          std::span<const std::byte>(ip.subspan(detail::dst_addr_offset(f), n)),
                                          wire::ip_proto::udp, static_cast<std::uint32_t>(udp_len));
        if (!pseudo.add(std::span<const std::byte>(l4)).verifies()) return unexpected{forward_error::bad_tunnel_checksum};
      }
      auto g = wire::gue_mut_view::make(l4.subspan(8));
      if (!g) return unexpected{from_header_error(g.error())};
      if (!g->is_direct_ip()) {
        if (g->proto_ctype() != wire::ip_proto::ipip && g->proto_ctype() != wire::ip_proto::ipv6)
          return unexpected{forward_error::unsupported_inner_protocol};
        expect = g->proto_ctype();
      }
      rest = g->payload();
      break;
    }
    default:
      return unexpected{forward_error::not_tunnel};
  }
  if (auto e = check_inner(rest, expect); e != forward_error::none) return unexpected{e};
  r.inner = rest;
  return r;
}

}  // namespace detail

/// Decapsulates an IP packet (from a raw socket or tun device). The inner packet is a subspan of
/// `packet`; nothing is written. Errors: truncated, malformed (the outer header), fragmented,
/// not_tunnel, bad_tunnel_header, tunnel_length_mismatch (outer total/payload length, UDP length,
/// GUE hlen or the inner packet's own length disagreeing with the bytes), bad_tunnel_checksum,
/// unsupported_inner_protocol.
[[nodiscard]] inline expected<decapsulated, forward_error> decapsulate(std::span<std::byte> packet,
                                                                      const decap_config& cfg = {}) noexcept {
  auto outer = wire::parse_ip(packet);
  if (!outer) return unexpected{detail::from_drop_reason(outer.error())};
  return detail::decap_parsed(*outer, cfg);
}

/// Decapsulates the Ethernet frame in `buf` in place: the L2 header (with its VLAN tags) moves
/// forward to sit right before the inner packet and gets the inner packet's EtherType; the frame
/// then ends with the inner packet. Errors as decapsulate(), plus not_tunnel for non-IP frames.
[[nodiscard]] inline forward_result decapsulate_frame(frame_buffer& buf, const decap_config& cfg = {}) noexcept {
  auto outer = wire::parse(buf.frame());
  if (!outer) return unexpected{detail::from_drop_reason(outer.error())};
  auto r = detail::decap_parsed(*outer, cfg);
  if (!r) return unexpected{r.error()};
  const std::size_t l2_len = outer->l3_offset();
  const std::size_t inner_start = static_cast<std::size_t>(r->inner.data() - buf.storage().data());
  std::byte* dst = buf.storage().data() + inner_start - l2_len;
  std::memmove(dst, buf.frame().data(), l2_len);
  const unsigned version = wire::detail::load_u8(r->inner.data()) >> 4;
  wire::detail::store_be16(dst + l2_len - 2, version == 4 ? wire::ethertype::ipv4 : wire::ethertype::ipv6);
  (void)buf.set_frame(inner_start - l2_len, l2_len + r->inner.size());
  return forwarded{forward_action::forward, buf.frame(), 0, static_cast<std::uint16_t>(l2_len)};
}

}  // namespace l4lb::forward
