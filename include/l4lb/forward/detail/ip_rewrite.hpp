// Internals shared by the DR, NAT and FullNAT rewriters: TTL / hop-limit decrement, address and
// port rewriting with RFC 1624 incremental checksum updates (SCTP: the CRC32c recomputed), and the
// rewriting of ICMP errors that quote a connection's packet (ip_vs_core.c ip_vs_nat_icmp,
// ip_vs_proto_tcp.c/udp.c/sctp.c *_nat_handler).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/crc32c.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward::detail {

namespace d = wire::detail;

/// The packet_view must have been parsed from exactly the buffer's current frame.
[[nodiscard]] inline forward_error check_view(const frame_buffer& buf, const wire::packet_view& pkt) noexcept {
  return buf.is_frame(pkt.frame()) ? forward_error::none : forward_error::view_not_in_buffer;
}

/// TTL / hop limit of the IP header at `ip`.
[[nodiscard]] inline std::uint8_t ip_ttl(std::span<const std::byte> ip, wire::ip_family f) noexcept {
  return d::load_u8(ip.data() + (f == wire::ip_family::v4 ? 8 : 7));
}

/// Decrements the TTL (IPv4, header checksum updated by RFC 1624) or hop limit (IPv6).
/// Precondition: TTL > 0 (callers refuse TTL <= 1 first, as ip_vs_xmit.c decrement_ttl does).
[[gnu::always_inline]] inline void decrement_ttl(std::span<std::byte> ip, wire::ip_family f) noexcept {
  if (f == wire::ip_family::v6) {
    d::store_u8(ip.data() + 7, static_cast<std::uint8_t>(d::load_u8(ip.data() + 7) - 1u));
    return;
  }
  // TTL - 1 takes 0x0100 from the TTL|protocol word, so the checksum gains 0x0100 in ones'
  // complement (RFC 1624 eqn 3 reduces to it; the kernel's ip_decrease_ttl adds it the same way).
  // tests/forward/plain_rewrite_test.cpp checks it against checksum_update_u16 for every checksum.
  const std::uint32_t sum = std::uint32_t{d::load_be16(ip.data() + 10)} + 0x0100u;
  d::store_be16(ip.data() + 10, static_cast<std::uint16_t>(sum + (sum >= 0xFFFFu ? 1u : 0u)));
  d::store_u8(ip.data() + 8, static_cast<std::uint8_t>(d::load_u8(ip.data() + 8) - 1u));
}

/// Offsets of the addresses inside an IP header.
[[nodiscard]] constexpr std::size_t src_addr_offset(wire::ip_family f) noexcept {
  return f == wire::ip_family::v4 ? 12 : 8;
}
[[nodiscard]] constexpr std::size_t dst_addr_offset(wire::ip_family f) noexcept {
  return f == wire::ip_family::v4 ? 16 : 24;
}
[[nodiscard]] constexpr std::size_t addr_len(wire::ip_family f) noexcept {
  return f == wire::ip_family::v4 ? 4 : 16;
}

/// Adds "address at `off` becomes `a`" to `delta` and writes it.
inline void replace_address(std::span<std::byte> ip, std::size_t off, const wire::ip_address& a,
                            wire::checksum_delta& delta) noexcept {
  const std::size_t n = a.byte_size();
  if (n == 4) {  // two words: the span form's byte loop showed in NAT's profile
    delta.replace_u32(d::load_be32(ip.data() + off), a.v4().to_u32());
  } else {
    auto new_bytes = std::as_bytes(std::span{a.raw()}).first(n);
    delta.replace(std::span<const std::byte>(ip.subspan(off, n)), new_bytes);
  }
  std::memcpy(ip.data() + off, a.raw().data(), n);
}

/// Adds "port at `off` of `l4` becomes `p`" to `delta` and writes it.
inline void replace_port(std::span<std::byte> l4, std::size_t off, std::uint16_t p,
                         wire::checksum_delta& delta) noexcept {
  delta.replace_u16(d::load_be16(l4.data() + off), p);
  d::store_be16(l4.data() + off, p);
}

[[nodiscard]] inline bool same_address(std::span<const std::byte> ip, std::size_t off,
                                       const wire::ip_address& a) noexcept {
  return std::memcmp(ip.data() + off, a.raw().data(), a.byte_size()) == 0;
}

/// What a rewrite changes; a null pointer leaves that field alone.
struct endpoint_change {
  const wire::endpoint* src = nullptr;
  const wire::endpoint* dst = nullptr;
};

struct rewrite_options {
  bool decrement_ttl = true;
  bool keep_zero_udp_checksum = false;  ///< IPv4 only: leave an absent UDP checksum absent
  bool update_quoted_l4_checksum = false;
};

/// Rewrites addresses and ports of a TCP/UDP/SCTP packet in place, TTL - 1, with the IPv4 header
/// checksum and the TCP/UDP checksum updated incrementally (ip_vs_proto_tcp.c tcp_fast_csum_update,
/// ip_vs_proto_udp.c udp_fast_csum_update; RFC 1624). An IPv4 UDP checksum of 0 gets a full,
/// valid checksum (IPVS's "full checksum calculation" path) unless keep_zero_udp_checksum; over
/// IPv6 a zero UDP checksum is always computed in full. SCTP (ports at the same offsets as
/// TCP/UDP): its CRC32c has no pseudo-header, so only the ports matter to it, and it is
/// recomputed in full over the SCTP packet (to the end of the IP payload) as ip_vs_proto_sctp.c
/// sctp_nat_csum does. Like IPVS this gives a valid CRC to a packet that arrived corrupted.
/// Preconditions: pkt has an L4 header of protocol TCP, UDP or SCTP, not a fragment; endpoints are
/// of the packet's family (callers check).
inline void rewrite_endpoints(const wire::packet_view& pkt, const endpoint_change& c,
                              const rewrite_options& o) noexcept {
  const auto f = pkt.family();
  auto ip = pkt.l3();
  auto l4 = pkt.l4();
  wire::checksum_delta addr_delta, l4_delta;
  if (c.src != nullptr) {
    replace_address(ip, src_addr_offset(f), c.src->address, addr_delta);
    replace_port(l4, 0, c.src->port, l4_delta);
  }
  if (c.dst != nullptr) {
    replace_address(ip, dst_addr_offset(f), c.dst->address, addr_delta);
    replace_port(l4, 2, c.dst->port, l4_delta);
  }
  l4_delta.add(addr_delta);  // the pseudo-header covers the addresses
  if (f == wire::ip_family::v4) {
    wire::checksum_delta ip_delta = addr_delta;
    if (o.decrement_ttl) {
      const std::uint16_t old_word = d::load_be16(ip.data() + 8);
      const auto new_word = static_cast<std::uint16_t>(old_word - 0x0100u);
      ip_delta.replace_u16(old_word, new_word);
      d::store_be16(ip.data() + 8, new_word);
    }
    d::store_be16(ip.data() + 10, ip_delta.apply(d::load_be16(ip.data() + 10)));
  } else if (o.decrement_ttl) {
    d::store_u8(ip.data() + 7, static_cast<std::uint8_t>(d::load_u8(ip.data() + 7) - 1u));
  }
  if (pkt.protocol() == wire::ip_proto::tcp) {
    d::store_be16(l4.data() + 16, l4_delta.apply(d::load_be16(l4.data() + 16)));
    return;
  }
  if (pkt.protocol() == wire::ip_proto::sctp) {
    wire::store_sctp_checksum(l4);  // the parser checked the 12-byte common header
    return;
  }
  // UDP
  const std::uint16_t old_sum = d::load_be16(l4.data() + 6);
  if (old_sum != 0) {
    d::store_be16(l4.data() + 6, l4_delta.apply_udp(old_sum));
    return;
  }
  if (f == wire::ip_family::v4 && o.keep_zero_udp_checksum) return;
  const std::size_t udp_len = d::load_be16(l4.data() + 4);
  auto dgram = std::span<const std::byte>(l4.first(udp_len));
  auto pseudo = wire::pseudo_header(f, std::span<const std::byte>(ip.subspan(src_addr_offset(f), addr_len(f))),
                                    std::span<const std::byte>(ip.subspan(dst_addr_offset(f), addr_len(f))),
                                    wire::ip_proto::udp, static_cast<std::uint32_t>(udp_len));
  d::store_be16(l4.data() + 6, wire::udp_checksum(pseudo, dgram));
}

/// What an ICMP error rewrite changes: the outer addresses (ports unused), and the quoted
/// packet's endpoints.
struct icmp_change {
  const wire::ip_address* outer_src = nullptr;
  const wire::ip_address* outer_dst = nullptr;
  const wire::endpoint* quote_src = nullptr;
  const wire::endpoint* quote_dst = nullptr;
};

/// Rewrites an ICMP/ICMPv6 error and the packet it quotes (ip_vs_core.c ip_vs_nat_icmp,
/// ipvs-notes 0A "ICMP errors in NAT"): outer addresses, TTL - 1 and the outer IPv4 header
/// checksum (incrementally); quoted addresses and ports, the quoted IPv4 header checksum
/// recomputed in full; the quoted TTL left as it was; the quoted TCP/UDP checksum left as it was
/// (IPVS) unless update_quoted_l4_checksum and the field is inside the quote; the ICMP checksum
/// recomputed in full (ICMPv6: over the pseudo-header with the new outer addresses).
/// A quoted SCTP packet gets its ports rewritten (ip_vs_nat_icmp does TCP, UDP and SCTP alike)
/// and its CRC32c always left as it was, as IPVS leaves it: a CRC is not patched from the
/// changed words alone like the Internet checksum (it would also need the original SCTP length),
/// a quote is usually cut short (RFC 792: 8 bytes) so no one can check it, and SCTP validates an
/// ICMP error by the quoted verification tag instead (the ICMP handling appendix of RFC 9260,
/// RFC 4960 Appendix C), which NAT does not change.
/// Preconditions: pkt.is_icmp_error() && pkt.quote_has_l4(); addresses of the packet's family.
inline void rewrite_icmp_error(const wire::packet_view& pkt, const icmp_change& c,
                               const rewrite_options& o) noexcept {
  const auto f = pkt.family();
  auto ip = pkt.l3();
  wire::checksum_delta outer;
  if (c.outer_src != nullptr) {
    wire::checksum_delta unused;
    replace_address(ip, src_addr_offset(f), *c.outer_src, f == wire::ip_family::v4 ? outer : unused);
  }
  if (c.outer_dst != nullptr) {
    wire::checksum_delta unused;
    replace_address(ip, dst_addr_offset(f), *c.outer_dst, f == wire::ip_family::v4 ? outer : unused);
  }
  if (f == wire::ip_family::v4) {
    if (o.decrement_ttl) {
      const std::uint16_t old_word = d::load_be16(ip.data() + 8);
      const auto new_word = static_cast<std::uint16_t>(old_word - 0x0100u);
      outer.replace_u16(old_word, new_word);
      d::store_be16(ip.data() + 8, new_word);
    }
    d::store_be16(ip.data() + 10, outer.apply(d::load_be16(ip.data() + 10)));
  } else if (o.decrement_ttl) {
    d::store_u8(ip.data() + 7, static_cast<std::uint8_t>(d::load_u8(ip.data() + 7) - 1u));
  }

  auto quote = pkt.quote();
  const std::size_t q_l4 = pkt.quote_l4_offset() - pkt.quote_l3_offset();
  auto ql4 = quote.subspan(q_l4);
  wire::checksum_delta q_delta;  // for the quoted L4 checksum, if asked
  if (c.quote_src != nullptr) {
    replace_address(quote, src_addr_offset(f), c.quote_src->address, q_delta);
    replace_port(ql4, 0, c.quote_src->port, q_delta);
  }
  if (c.quote_dst != nullptr) {
    replace_address(quote, dst_addr_offset(f), c.quote_dst->address, q_delta);
    replace_port(ql4, 2, c.quote_dst->port, q_delta);
  }
  if (f == wire::ip_family::v4) {
    auto qh = quote.first(q_l4);
    d::store_be16(qh.data() + 10, wire::ipv4_header_checksum(qh));
  }
  if (o.update_quoted_l4_checksum) {
    if (pkt.quote_protocol() == wire::ip_proto::tcp && ql4.size() >= 18) {
      d::store_be16(ql4.data() + 16, q_delta.apply(d::load_be16(ql4.data() + 16)));
    } else if (pkt.quote_protocol() == wire::ip_proto::udp && ql4.size() >= 8) {
      const std::uint16_t s = d::load_be16(ql4.data() + 6);
      if (s != 0) d::store_be16(ql4.data() + 6, q_delta.apply_udp(s));
    }
  }
  auto msg = pkt.l4();
  if (f == wire::ip_family::v4) {
    d::store_be16(msg.data() + 2, wire::icmpv4_checksum(msg));
  } else {
    wire::ipv6_address s, t;
    std::memcpy(s.bytes.data(), ip.data() + 8, 16);
    std::memcpy(t.bytes.data(), ip.data() + 24, 16);
    d::store_be16(msg.data() + 2, wire::icmpv6_checksum(s, t, msg));
  }
}

/// Whether the endpoint is of the family `f`.
[[nodiscard]] inline bool of_family(const wire::endpoint& e, wire::ip_family f) noexcept {
  return e.address.family() == f;
}

/// flow_key endpoints compared with an endpoint (address bytes and port).
[[nodiscard]] inline bool key_src_is(const wire::flow_key& k, const wire::endpoint& e) noexcept {
  return k.src_port == e.port && std::memcmp(k.src_addr.data(), e.address.raw().data(), e.address.byte_size()) == 0;
}
[[nodiscard]] inline bool key_dst_is(const wire::flow_key& k, const wire::endpoint& e) noexcept {
  return k.dst_port == e.port && std::memcmp(k.dst_addr.data(), e.address.raw().data(), e.address.byte_size()) == 0;
}

}  // namespace l4lb::forward::detail
