// IPv4 fragmentation of a frame the director forwards, into buffers the caller lends: what the
// kernel does to an over-MTU IPv4 packet without DF after IPVS let it through (DR: the packet
// itself; TUN: the outer packet after encapsulation; ipvs-notes 0A "Egress MTU", 0B "Fragments").
// IPv6 is never fragmented on the way (RFC 8200 5: Packet Too Big instead), except the outer
// packet of a reassembled datagram the director tunnels in IPv6 (fragment_ipv6).
//
// The procedure of RFC 791 3.2 "An Example Fragmentation Procedure", with the choices of Linux's
// ip_do_fragment (net/ipv4/ip_output.c, slow path) and ip_options_fragment (ip_options.c):
//  * every fragment but the last carries the largest multiple of 8 data bytes that fits in
//    `max_ip_len` with the header; offsets are in 8-byte units from the original's own offset;
//  * MF on every fragment but the last, which keeps the original's MF (a fragment may be
//    fragmented again); ID, TOS, TTL, protocol and addresses as in the original; DF is clear;
//  * the first fragment keeps the header as it was; the others keep its length, with the options
//    whose copy flag is clear (Record Route, Timestamp, ...) overwritten by No-Operation options
//    (RFC 791: only options with the copy flag go into every fragment);
//  * each header's checksum is computed anew; the L2 header (MACs, VLAN tags, EtherType) is
//    repeated in front of every fragment.
// How to use it with the rewriters: direct_route(), tunnel_encapsulate() and nat_*() return
// forward_action::fragment for such a packet (rewritten, in the frame_buffer); the director then
// calls fragment_forwarded(result, outputs) and sends the frames it returns. For §0B's TUN case
// (a reassembled datagram) call fragment_ipv4() with the largest fragment received as max_ip_len.
// Never allocates, never writes outside the spans it is given; nothing is written on error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/expected.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/ipv6.hpp"

namespace l4lb::forward {

/// Data bytes in every fragment but the last: the largest multiple of 8 that fits in `max_ip_len`
/// after a `header_len`-byte header (0 if not even 8 fit).
[[nodiscard]] constexpr std::size_t ipv4_fragment_data_len(std::size_t header_len, std::size_t max_ip_len) noexcept {
  return max_ip_len > header_len ? ((max_ip_len - header_len) & ~std::size_t{7}) : 0;
}

/// How many fragments an IPv4 packet of `ip_len` bytes with a `header_len`-byte header becomes at
/// `max_ip_len` bytes per fragment: 1 if it fits, 0 if the fragment size cannot hold 8 data bytes.
[[nodiscard]] constexpr std::size_t ipv4_fragment_count(std::size_t ip_len, std::size_t header_len,
                                                        std::size_t max_ip_len) noexcept {
  if (ip_len <= max_ip_len) return 1;
  const std::size_t unit = ipv4_fragment_data_len(header_len, max_ip_len);
  if (unit == 0 || ip_len < header_len) return 0;
  return (ip_len - header_len + unit - 1) / unit;
}

namespace detail {

/// ip_options_fragment: options without the copy flag become No-Operation (1) bytes; the walk
/// stops at End of Option List or at a length that does not fit, as the kernel's does.
inline void blank_uncopied_options(std::span<std::byte> options) noexcept {
  namespace wd = wire::detail;
  std::size_t i = 0;
  while (i < options.size()) {
    const std::uint8_t type = wd::load_u8(options.data() + i);
    if (type == 0) return;  // End of Option List
    if (type == 1) {        // No-Operation
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) return;
    const std::size_t len = wd::load_u8(options.data() + i + 1);
    if (len < 2 || len > options.size() - i) return;
    if ((type & 0x80u) == 0) std::memset(options.data() + i, 1, len);
    i += len;
  }
}

}  // namespace detail

/// Fragments the IPv4 packet at `l3_offset` in `frame` (the bytes before it, if any, are the L2
/// header to repeat) into fragments of at most `max_ip_len` IP bytes, written to out[0], out[1],
/// ... in offset order. On success each used out[i] is shortened to its frame and the count is
/// returned; a packet that fits is copied as one frame (Ethernet padding after it is dropped).
/// `max_ip_len`: the egress MTU, or, for a reassembled datagram IPVS tunnels (ipvs-notes 0B), the
/// largest fragment received (1432 gives 1408 data bytes per fragment).
/// Errors: truncated (frame shorter than l3_offset + its IPv4 header or total length), malformed
/// (bad IHL / total length, or a fragment to split whose datagram would end past 65 535 bytes),
/// not_fragmentable (not IPv4, or DF set), mtu_too_small (max_ip_len cannot hold the header and 8
/// data bytes), fragment_buffers_too_small (fewer outputs than fragments, or one too small for
/// its frame; see ipv4_fragment_count()).
[[nodiscard]] inline expected<std::size_t, forward_error> fragment_ipv4(std::span<const std::byte> frame,
                                                                       std::size_t l3_offset, std::size_t max_ip_len,
                                                                       std::span<std::span<std::byte>> out) noexcept {
  namespace wd = wire::detail;
  if (frame.size() < l3_offset + 1) return unexpected{forward_error::truncated};
  const auto ip = frame.subspan(l3_offset);
  if ((wd::load_u8(ip.data()) >> 4) != 4) return unexpected{forward_error::not_fragmentable};
  if (ip.size() < 20) return unexpected{forward_error::truncated};
  const std::size_t hlen = std::size_t{wd::load_u8(ip.data()) & 0x0Fu} * 4;
  const std::size_t ip_len = wd::load_be16(ip.data() + 2);
  if (hlen < 20 || ip_len < hlen) return unexpected{forward_error::malformed};
  if (ip.size() < ip_len) return unexpected{forward_error::truncated};
  const std::uint16_t frag_word = wd::load_be16(ip.data() + 6);
  if (ip_len > max_ip_len && (frag_word & 0x4000u) != 0) return unexpected{forward_error::not_fragmentable};
  const std::size_t count = ipv4_fragment_count(ip_len, hlen, max_ip_len);
  if (count == 0) return unexpected{forward_error::mtu_too_small};
  if (count > out.size()) return unexpected{forward_error::fragment_buffers_too_small};
  const std::size_t data_len = ip_len - hlen;
  // A fragment whose datagram would end past 65 535 bytes cannot be reassembled (ip_frag_reasm's
  // oversize rule), and its pieces' offsets would not fit the 13-bit field (RFC 791): refused
  // rather than written with wrapped offsets.
  if (count > 1 && std::size_t{frag_word & 0x1FFFu} * 8 + data_len + hlen > 0xFFFF)
    return unexpected{forward_error::malformed};
  const std::size_t unit = count == 1 ? data_len : ipv4_fragment_data_len(hlen, max_ip_len);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t len = std::min(unit, data_len - i * unit);
    if (out[i].size() < l3_offset + hlen + len) return unexpected{forward_error::fragment_buffers_too_small};
  }
  if (count == 1) {
    std::memcpy(out[0].data(), frame.data(), l3_offset + ip_len);
    out[0] = out[0].first(l3_offset + ip_len);
    return count;
  }
  const std::size_t base_units = frag_word & 0x1FFFu;
  const bool last_mf = (frag_word & 0x2000u) != 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t start = i * unit;
    const std::size_t len = std::min(unit, data_len - start);
    auto f = out[i].first(l3_offset + hlen + len);
    std::memcpy(f.data(), frame.data(), l3_offset + hlen);
    std::memcpy(f.data() + l3_offset + hlen, ip.data() + hlen + start, len);
    auto h = f.subspan(l3_offset, hlen);
    if (i != 0) detail::blank_uncopied_options(h.subspan(20));
    const bool mf = i + 1 < count || last_mf;
    wd::store_be16(h.data() + 2, static_cast<std::uint16_t>(hlen + len));
    wd::store_be16(h.data() + 6, static_cast<std::uint16_t>((mf ? 0x2000u : 0u) | ((base_units + start / 8) & 0x1FFFu)));
    wd::store_be16(h.data() + 10, 0);
    wd::store_be16(h.data() + 10, wire::ipv4_header_checksum(h));
    out[i] = f;
  }
  return count;
}

/// The unfragmentable part of an IPv6 packet (RFC 8200 4.5, ip6_find_1stfragopt): the IPv6
/// header, then Hop-by-Hop, Routing, and Destination Options that precede a Routing header.
/// Returns its length and the offset of the byte naming what follows it (6: the IPv6 header's
/// next header); 0 if the chain does not fit in `ip`.
[[nodiscard]] inline std::size_t ipv6_unfragmentable_len(std::span<const std::byte> ip, std::size_t& names) noexcept {
  namespace wd = wire::detail;
  std::size_t off = 40;
  names = 6;
  std::uint8_t nh = wd::load_u8(ip.data() + 6);
  for (std::size_t i = 0; i < wire::max_ipv6_extensions; ++i) {
    bool take = nh == wire::ip_proto::hopopt || nh == wire::ip_proto::ipv6_route;
    if (nh == wire::ip_proto::ipv6_opts) {
      // Destination Options belong to the unfragmentable part only when a Routing header follows.
      if (ip.size() < off + 2) return 0;
      take = wd::load_u8(ip.data() + off) == wire::ip_proto::ipv6_route;
    }
    if (!take) return off;
    if (ip.size() < off + 2) return 0;
    const std::size_t len = (std::size_t{wd::load_u8(ip.data() + off + 1)} + 1) * 8;
    if (ip.size() < off + len) return 0;
    names = off;
    nh = wd::load_u8(ip.data() + off);
    off += len;
  }
  return off;
}

/// How many fragments an IPv6 packet of `ip_len` bytes with a `unfragmentable`-byte
/// unfragmentable part becomes at `max_ip_len` bytes per fragment (each with an 8-byte fragment
/// header): 1 if it fits, 0 if a fragment cannot hold 8 data bytes.
[[nodiscard]] constexpr std::size_t ipv6_fragment_count(std::size_t ip_len, std::size_t unfragmentable,
                                                        std::size_t max_ip_len) noexcept {
  if (ip_len <= max_ip_len) return 1;
  const std::size_t unit = ipv4_fragment_data_len(unfragmentable + 8, max_ip_len);
  if (unit == 0 || ip_len < unfragmentable) return 0;
  return (ip_len - unfragmentable + unit - 1) / unit;
}

/// Splits the IPv6 packet after `l3_offset` bytes of `frame` into fragments of at most
/// `max_ip_len` bytes each (ip6_fragment's slow path, RFC 8200 4.5), written to `out` (each
/// span is shrunk to its frame). Every fragment: the L2 header, the unfragmentable part with its
/// payload length set and its last next-header naming the fragment header, a fragment header
/// (the original next header, the offset, M on all but the last, `ident`), then the data; all but
/// the last carry the largest multiple of 8 data bytes that fits. A packet that fits is copied
/// whole. The director uses it for a reassembled datagram it tunnels in IPv6 (ipvs-notes 0B:
/// fragments no larger than the largest one received).
/// Errors: truncated, malformed (not IPv6, a chain that does not fit, or a packet that already
/// has a fragment header), mtu_too_small, fragment_buffers_too_small (see ipv6_fragment_count()).
[[nodiscard]] inline expected<std::size_t, forward_error> fragment_ipv6(std::span<const std::byte> frame,
                                                                       std::size_t l3_offset, std::size_t max_ip_len,
                                                                       std::uint32_t ident,
                                                                       std::span<std::span<std::byte>> out) noexcept {
  namespace wd = wire::detail;
  if (frame.size() < l3_offset + 40) return unexpected{forward_error::truncated};
  const auto ip = frame.subspan(l3_offset);
  if ((wd::load_u8(ip.data()) >> 4) != 6) return unexpected{forward_error::malformed};
  const std::size_t ip_len = 40 + std::size_t{wd::load_be16(ip.data() + 4)};
  if (ip.size() < ip_len) return unexpected{forward_error::truncated};
  std::size_t names = 0;
  const std::size_t unfrag = ipv6_unfragmentable_len(ip.first(ip_len), names);
  if (unfrag == 0) return unexpected{forward_error::malformed};
  const std::size_t count = ipv6_fragment_count(ip_len, unfrag, max_ip_len);
  if (count == 0) return unexpected{forward_error::mtu_too_small};
  if (count > out.size()) return unexpected{forward_error::fragment_buffers_too_small};
  const std::uint8_t next = wd::load_u8(ip.data() + names);
  if (count > 1 && next == wire::ip_proto::ipv6_frag) return unexpected{forward_error::malformed};
  const std::size_t data_len = ip_len - unfrag;
  const std::size_t unit = count == 1 ? data_len : ipv4_fragment_data_len(unfrag + 8, max_ip_len);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t len = std::min(unit, data_len - i * unit);
    if (out[i].size() < l3_offset + unfrag + (count > 1 ? 8 : 0) + len)
      return unexpected{forward_error::fragment_buffers_too_small};
  }
  if (count == 1) {
    std::memcpy(out[0].data(), frame.data(), l3_offset + ip_len);
    out[0] = out[0].first(l3_offset + ip_len);
    return count;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t start = i * unit;
    const std::size_t len = std::min(unit, data_len - start);
    auto f = out[i].first(l3_offset + unfrag + 8 + len);
    std::memcpy(f.data(), frame.data(), l3_offset + unfrag);
    std::byte* h = f.data() + l3_offset;
    wd::store_be16(h + 4, static_cast<std::uint16_t>(unfrag - 40 + 8 + len));
    wd::store_u8(h + names, wire::ip_proto::ipv6_frag);
    std::byte* fh = h + unfrag;
    wd::store_u8(fh, next);
    wd::store_u8(fh + 1, 0);
    wd::store_be16(fh + 2, static_cast<std::uint16_t>(((start / 8) << 3) | (i + 1 < count ? 1u : 0u)));
    wd::store_be32(fh + 4, ident);
    std::memcpy(fh + 8, ip.data() + unfrag + start, len);
    out[i] = f;
  }
  return count;
}

/// The frames of a rewriter's forward_action::fragment result: fragment_ipv4(r.frame,
/// r.l3_offset, r.mtu, out). Errors as fragment_ipv4().
[[nodiscard]] inline expected<std::size_t, forward_error> fragment_forwarded(
    const forwarded& r, std::span<std::span<std::byte>> out) noexcept {
  return fragment_ipv4(r.frame, r.l3_offset, r.mtu, out);
}

}  // namespace l4lb::forward
