// IPv6 header view (RFC 8200) and its extension-header chain: hop-by-hop, routing, fragment,
// destination options, AH, and the other IANA-listed extension headers. The chain walk is bounded
// by the payload length and by max_ipv6_extensions, and stops at the first header it does not
// know (an upper-layer protocol, ESP, "no next header", or anything new).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::wire {

/// The smallest MTU an IPv6 link may have (RFC 8200 section 5).
inline constexpr std::size_t ipv6_min_mtu = 1280;

/// The fixed 40-byte IPv6 header as on the wire. Layout only.
struct ipv6_header {
  boost::endian::big_uint32_buf_t version_class_flow;  ///< version 4 | traffic class 8 | flow label 20
  boost::endian::big_uint16_buf_t payload_len;
  unsigned char next_header;
  unsigned char hop_limit;
  std::array<unsigned char, 16> src;
  std::array<unsigned char, 16> dst;
};
static_assert(sizeof(ipv6_header) == 40 && alignof(ipv6_header) == 1);
static_assert(std::is_standard_layout_v<ipv6_header>);

/// Longest extension chain the walk accepts. A legitimate chain has at most HBH, DO, RH, FH, AH,
/// DO (RFC 8200 section 4.1), so 8 leaves room and still bounds the work per packet.
inline constexpr std::size_t max_ipv6_extensions = 8;

/// True for the next-header values that are IPv6 extension headers in IANA's "IPv6 Extension
/// Header Types" list, except ESP (its contents are encrypted, so the walk ends there).
[[nodiscard]] constexpr bool is_ipv6_extension(std::uint8_t nh) noexcept {
  switch (nh) {
    case ip_proto::hopopt:     // 0
    case ip_proto::ipv6_route: // 43
    case ip_proto::ipv6_frag:  // 44
    case ip_proto::ah:         // 51
    case ip_proto::ipv6_opts:  // 60
    case 135:                  // Mobility (RFC 6275)
    case 139:                  // HIP (RFC 7401)
    case 140:                  // Shim6 (RFC 5533)
    case 253:                  // experimentation (RFC 3692)
    case 254:
      return true;
    default:
      return false;
  }
}

template <detail::wire_byte Byte>
class basic_ipv6_view {
 public:
  static constexpr std::size_t header_len = sizeof(ipv6_header);

  [[nodiscard]] static constexpr basic_ipv6_view unchecked(std::span<Byte> b) noexcept {
    return basic_ipv6_view{b};
  }
  /// For untrusted input. Errors, in order: truncated_ipv6 (< 40), bad_ip_version,
  /// ipv6_payload_length_exceeds_frame. Jumbograms (RFC 2675, payload length 0 + a hop-by-hop
  /// option) are not supported: payload length 0 means an empty payload.
  [[nodiscard]] static expected<basic_ipv6_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_ipv6};
    basic_ipv6_view v{b};
    if (v.version() != 6) return unexpected{drop_reason::bad_ip_version};
    if (header_len + v.payload_len() > b.size())
      return unexpected{drop_reason::ipv6_payload_length_exceeds_frame};
    return v;
  }

  [[nodiscard]] std::uint8_t version() const noexcept { return static_cast<std::uint8_t>(vcf() >> 28); }
  [[nodiscard]] std::uint8_t traffic_class() const noexcept {
    return static_cast<std::uint8_t>(vcf() >> 20);
  }
  [[nodiscard]] std::uint8_t dscp() const noexcept { return static_cast<std::uint8_t>(traffic_class() >> 2); }
  [[nodiscard]] std::uint8_t ecn() const noexcept { return static_cast<std::uint8_t>(traffic_class() & 3u); }
  [[nodiscard]] std::uint32_t flow_label() const noexcept { return vcf() & 0xfffffu; }
  [[nodiscard]] std::uint16_t payload_len() const noexcept {
    return detail::load_be16(bytes_.data() + offsetof(ipv6_header, payload_len));
  }
  [[nodiscard]] std::uint8_t next_header() const noexcept {
    return detail::load_u8(bytes_.data() + offsetof(ipv6_header, next_header));
  }
  [[nodiscard]] std::uint8_t hop_limit() const noexcept {
    return detail::load_u8(bytes_.data() + offsetof(ipv6_header, hop_limit));
  }
  [[nodiscard]] ipv6_address src() const noexcept { return addr(offsetof(ipv6_header, src)); }
  [[nodiscard]] ipv6_address dst() const noexcept { return addr(offsetof(ipv6_header, dst)); }

  /// The bytes after the fixed header, bounded by payload length (extension headers included).
  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len, payload_len()); }
  /// Header + payload, bounded by payload length.
  [[nodiscard]] std::span<Byte> packet() const noexcept { return bytes_.first(header_len + payload_len()); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  void set_version_class_flow(std::uint8_t version, std::uint8_t tclass, std::uint32_t flow) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    set_vcf((std::uint32_t{version} << 28) | (std::uint32_t{tclass} << 20) | (flow & 0xfffffu));
  }
  void set_traffic_class(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_vcf((vcf() & 0xf00fffffu) | (std::uint32_t{v} << 20));
  }
  void set_dscp(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_traffic_class(static_cast<std::uint8_t>((v << 2) | ecn()));
  }
  void set_ecn(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_traffic_class(static_cast<std::uint8_t>((traffic_class() & 0xfcu) | (v & 3u)));
  }
  void set_flow_label(std::uint32_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_vcf((vcf() & 0xfff00000u) | (v & 0xfffffu));
  }
  void set_payload_len(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + offsetof(ipv6_header, payload_len), v);
  }
  void set_next_header(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data() + offsetof(ipv6_header, next_header), v);
  }
  void set_hop_limit(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data() + offsetof(ipv6_header, hop_limit), v);
  }
  void set_src(const ipv6_address& a) const noexcept requires(!std::is_const_v<Byte>) {
    std::memcpy(bytes_.data() + offsetof(ipv6_header, src), a.bytes.data(), 16);
  }
  void set_dst(const ipv6_address& a) const noexcept requires(!std::is_const_v<Byte>) {
    std::memcpy(bytes_.data() + offsetof(ipv6_header, dst), a.bytes.data(), 16);
  }

 private:
  explicit constexpr basic_ipv6_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] std::uint32_t vcf() const noexcept {
    return detail::load_be32(bytes_.data() + offsetof(ipv6_header, version_class_flow));
  }
  void set_vcf(std::uint32_t v) const noexcept {
    detail::store_be32(bytes_.data() + offsetof(ipv6_header, version_class_flow), v);
  }
  [[nodiscard]] ipv6_address addr(std::size_t off) const noexcept {
    ipv6_address a;
    std::memcpy(a.bytes.data(), bytes_.data() + off, 16);
    return a;
  }

  std::span<Byte> bytes_;
};

using ipv6_view = basic_ipv6_view<const std::byte>;
using ipv6_mut_view = basic_ipv6_view<std::byte>;

/// One extension header: next header (1 byte), length (1 byte), then type-specific data. The
/// length unit depends on the type: AH counts 4-byte words minus 2 (RFC 4302 section 2.2), the
/// fragment header is always 8 bytes (RFC 8200 section 4.5), the rest count 8-byte units beyond
/// the first 8 (RFC 8200 section 4.3, RFC 6564).
template <detail::wire_byte Byte>
class basic_ipv6_ext_view {
 public:
  static constexpr std::size_t min_len = 8;

  /// `type` is the next-header value that announced this header.
  [[nodiscard]] static constexpr basic_ipv6_ext_view unchecked(std::span<Byte> b, std::uint8_t type) noexcept {
    return basic_ipv6_ext_view{b, type};
  }
  /// Errors: truncated_ipv6_extension (fewer than 8 bytes, or than the header's own length).
  [[nodiscard]] static expected<basic_ipv6_ext_view, drop_reason> make(std::span<Byte> b,
                                                                      std::uint8_t type) noexcept {
    if (b.size() < min_len) return unexpected{drop_reason::truncated_ipv6_extension};
    basic_ipv6_ext_view v{b, type};
    if (v.header_len() > b.size()) return unexpected{drop_reason::truncated_ipv6_extension};
    return v;
  }

  [[nodiscard]] std::uint8_t type() const noexcept { return type_; }
  [[nodiscard]] std::uint8_t next_header() const noexcept { return detail::load_u8(bytes_.data()); }
  [[nodiscard]] std::uint8_t length_field() const noexcept { return detail::load_u8(bytes_.data() + 1); }
  [[nodiscard]] std::size_t header_len() const noexcept { return ext_len(type_, length_field()); }
  /// The bytes after next-header and length, up to header_len().
  [[nodiscard]] std::span<Byte> data() const noexcept { return bytes_.subspan(2, header_len() - 2); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  /// Routing header (43) fields, RFC 8200 section 4.4.
  [[nodiscard]] std::uint8_t routing_type() const noexcept { return detail::load_u8(bytes_.data() + 2); }
  [[nodiscard]] std::uint8_t segments_left() const noexcept { return detail::load_u8(bytes_.data() + 3); }

  void set_next_header(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data(), v);
  }

  /// Bytes taken by an extension header of this type with this length byte.
  [[nodiscard]] static constexpr std::size_t ext_len(std::uint8_t type, std::uint8_t len) noexcept {
    if (type == ip_proto::ah) return (std::size_t{len} + 2) * 4;
    if (type == ip_proto::ipv6_frag) return 8;
    return (std::size_t{len} + 1) * 8;
  }

 private:
  constexpr basic_ipv6_ext_view(std::span<Byte> b, std::uint8_t type) noexcept : bytes_(b), type_(type) {}
  std::span<Byte> bytes_;
  std::uint8_t type_;
};

using ipv6_ext_view = basic_ipv6_ext_view<const std::byte>;
using ipv6_ext_mut_view = basic_ipv6_ext_view<std::byte>;

/// The 8-byte fragment header (RFC 8200 section 4.5): next header, reserved, offset (13 bits, in
/// 8-byte units) | reserved (2) | M, identification (32).
template <detail::wire_byte Byte>
class basic_ipv6_fragment_view {
 public:
  static constexpr std::size_t header_len = 8;

  [[nodiscard]] static constexpr basic_ipv6_fragment_view unchecked(std::span<Byte> b) noexcept {
    return basic_ipv6_fragment_view{b};
  }
  /// Errors: truncated_ipv6_extension.
  [[nodiscard]] static expected<basic_ipv6_fragment_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_ipv6_extension};
    return basic_ipv6_fragment_view{b};
  }

  [[nodiscard]] std::uint8_t next_header() const noexcept { return detail::load_u8(bytes_.data()); }
  [[nodiscard]] std::uint16_t frag_offset() const noexcept {
    return static_cast<std::uint16_t>(detail::load_be16(bytes_.data() + 2) >> 3);
  }
  [[nodiscard]] std::uint32_t frag_offset_bytes() const noexcept { return std::uint32_t{frag_offset()} * 8; }
  [[nodiscard]] bool more_frags() const noexcept { return (detail::load_be16(bytes_.data() + 2) & 1u) != 0; }
  [[nodiscard]] std::uint32_t ident() const noexcept { return detail::load_be32(bytes_.data() + 4); }

  void set_next_header(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data(), v);
  }
  /// Writes reserved byte 0, the offset (8-byte units), reserved bits 0 and M.
  void set_offset_more(std::uint16_t units, bool more) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data() + 1, 0);
    detail::store_be16(bytes_.data() + 2, static_cast<std::uint16_t>(((units & 0x1fffu) << 3) | (more ? 1u : 0u)));
  }
  void set_ident(std::uint32_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be32(bytes_.data() + 4, v);
  }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

 private:
  explicit constexpr basic_ipv6_fragment_view(std::span<Byte> b) noexcept : bytes_(b) {}
  std::span<Byte> bytes_;
};

using ipv6_fragment_view = basic_ipv6_fragment_view<const std::byte>;
using ipv6_fragment_mut_view = basic_ipv6_fragment_view<std::byte>;

/// What walking an extension chain found.
struct ipv6_chain {
  std::uint8_t protocol = 0;        ///< the first next-header value that is not a known extension
  std::uint16_t l4_offset = 0;      ///< where that header starts, from the start of the IPv6 header
  std::uint8_t extension_count = 0;
  bool has_fragment_header = false;
  bool more_frags = false;
  std::uint16_t frag_offset = 0;    ///< 8-byte units
  std::uint16_t fragment_header_offset = 0;  ///< from the start of the IPv6 header; valid if has_fragment_header
  /// False when a non-first fragment ends the walk: `protocol` then names the fragmentable part's
  /// first header, which is not in this packet.
  bool reached_upper_layer = true;
};

/// Walks the extension headers of an IPv6 packet. `packet` starts at the IPv6 header and ends
/// where the walk must stop (the payload length, or the end of an ICMP quote). Never reads past it.
/// Errors: truncated_ipv6_extension, too_many_ipv6_extensions, misplaced_ipv6_hop_by_hop.
[[nodiscard]] inline expected<ipv6_chain, drop_reason> walk_ipv6_extensions(
    std::span<const std::byte> packet, std::uint8_t first_next_header) noexcept {
  ipv6_chain c;
  std::size_t off = ipv6_view::header_len;
  std::uint8_t nh = first_next_header;
  while (is_ipv6_extension(nh)) {
    if (nh == ip_proto::hopopt && c.extension_count != 0)
      return unexpected{drop_reason::misplaced_ipv6_hop_by_hop};
    if (c.extension_count == max_ipv6_extensions)
      return unexpected{drop_reason::too_many_ipv6_extensions};
    auto ext = ipv6_ext_view::make(packet.subspan(off), nh);
    if (!ext) return unexpected{ext.error()};
    ++c.extension_count;
    if (nh == ip_proto::ipv6_frag) {
      auto frag = ipv6_fragment_view::unchecked(ext->bytes());
      c.has_fragment_header = true;
      c.more_frags = frag.more_frags();
      c.frag_offset = frag.frag_offset();
      c.fragment_header_offset = static_cast<std::uint16_t>(off);
      if (c.frag_offset != 0) {
        c.protocol = frag.next_header();
        c.l4_offset = static_cast<std::uint16_t>(off + ipv6_fragment_view::header_len);
        c.reached_upper_layer = false;
        return c;
      }
    }
    nh = ext->next_header();
    off += ext->header_len();
  }
  c.protocol = nh;
  c.l4_offset = static_cast<std::uint16_t>(off);
  return c;
}

/// The values of an IPv6 header without extension headers (smoltcp's Repr).
struct ipv6_repr {
  ipv6_address src;
  ipv6_address dst;
  std::uint8_t next_header = 0;
  std::uint16_t payload_len = 0;
  std::uint8_t hop_limit = 64;
  std::uint8_t traffic_class = 0;
  std::uint32_t flow_label = 0;

  static constexpr std::size_t buffer_len = ipv6_view::header_len;

  template <class Byte>
  [[nodiscard]] static ipv6_repr parse(basic_ipv6_view<Byte> v) noexcept {
    return {v.src(), v.dst(), v.next_header(), v.payload_len(), v.hop_limit(), v.traffic_class(), v.flow_label()};
  }
  void emit(ipv6_mut_view v) const noexcept {
    v.set_version_class_flow(6, traffic_class, flow_label);
    v.set_payload_len(payload_len);
    v.set_next_header(next_header);
    v.set_hop_limit(hop_limit);
    v.set_src(src);
    v.set_dst(dst);
  }

  friend constexpr bool operator==(const ipv6_repr&, const ipv6_repr&) = default;
};

}  // namespace l4lb::wire
