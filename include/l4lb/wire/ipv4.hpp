// IPv4 header view (RFC 791) with its options, fragment fields and header checksum.
// make() checks version, IHL and total length against the bytes present; the view's payload is
// bounded by the total length, so Ethernet padding after the packet is never taken as data.
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
#include "l4lb/wire/detail/tlv_options.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/flow_key.hpp"  // ip_proto

namespace l4lb::wire {

/// The fixed 20 bytes of an IPv4 header as on the wire. Layout only.
struct ipv4_header {
  unsigned char version_ihl;  ///< version (4 bits) | IHL in 32-bit words (4 bits)
  unsigned char tos;          ///< DSCP (6 bits) | ECN (2 bits), RFC 2474 / RFC 3168
  boost::endian::big_uint16_buf_t total_len;
  boost::endian::big_uint16_buf_t ident;
  boost::endian::big_uint16_buf_t flags_frag;  ///< reserved, DF, MF | offset in 8-byte units
  unsigned char ttl;
  unsigned char protocol;
  boost::endian::big_uint16_buf_t checksum;
  std::array<unsigned char, 4> src;
  std::array<unsigned char, 4> dst;
};
static_assert(sizeof(ipv4_header) == 20 && alignof(ipv4_header) == 1);
static_assert(std::is_standard_layout_v<ipv4_header>);

/// The smallest MTU an IPv4 link may have (RFC 791: every module must forward 68 bytes whole).
inline constexpr std::size_t ipv4_min_mtu = 68;

/// IPv4 option kinds (IANA "IP Option Numbers"); the walker itself handles any kind.
namespace ipv4_option_kind {
inline constexpr std::uint8_t end_of_list = 0;
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t record_route = 7;
inline constexpr std::uint8_t timestamp = 68;
inline constexpr std::uint8_t loose_source_route = 131;
inline constexpr std::uint8_t strict_source_route = 137;
inline constexpr std::uint8_t router_alert = 148;
}  // namespace ipv4_option_kind

template <detail::wire_byte Byte>
class basic_ipv4_view {
 public:
  static constexpr std::size_t min_header_len = sizeof(ipv4_header);
  static constexpr std::size_t max_header_len = 60;

  /// No checks: for writing a header into a buffer the caller sized. Accessors that use IHL or
  /// total length (options(), payload()) are safe only once those fields are written.
  [[nodiscard]] static constexpr basic_ipv4_view unchecked(std::span<Byte> b) noexcept {
    return basic_ipv4_view{b};
  }
  /// For untrusted input. After success no accessor reads outside `b` (until set_ihl or
  /// set_total_len change the lengths). Errors, in the order checked: truncated_ipv4 (< 20),
  /// bad_ip_version, bad_ipv4_ihl, truncated_ipv4 (< IHL*4), ipv4_total_length_below_header,
  /// ipv4_total_length_exceeds_frame.
  [[nodiscard]] static expected<basic_ipv4_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < min_header_len) return unexpected{drop_reason::truncated_ipv4};
    basic_ipv4_view v{b};
    if (v.version() != 4) return unexpected{drop_reason::bad_ip_version};
    if (v.ihl() < 5) return unexpected{drop_reason::bad_ipv4_ihl};
    if (b.size() < v.header_len()) return unexpected{drop_reason::truncated_ipv4};
    if (v.total_len() < v.header_len())
      return unexpected{drop_reason::ipv4_total_length_below_header};
    if (v.total_len() > b.size()) return unexpected{drop_reason::ipv4_total_length_exceeds_frame};
    return v;
  }

  [[nodiscard]] std::uint8_t version() const noexcept { return static_cast<std::uint8_t>(u8(0) >> 4); }
  /// Header length in 32-bit words.
  [[nodiscard]] std::uint8_t ihl() const noexcept { return static_cast<std::uint8_t>(u8(0) & 0xfu); }
  [[nodiscard]] std::size_t header_len() const noexcept { return std::size_t{ihl()} * 4; }
  [[nodiscard]] std::uint8_t tos() const noexcept { return u8(offsetof(ipv4_header, tos)); }
  [[nodiscard]] std::uint8_t dscp() const noexcept { return static_cast<std::uint8_t>(tos() >> 2); }
  [[nodiscard]] std::uint8_t ecn() const noexcept { return static_cast<std::uint8_t>(tos() & 3u); }
  [[nodiscard]] std::uint16_t total_len() const noexcept { return u16(offsetof(ipv4_header, total_len)); }
  [[nodiscard]] std::uint16_t ident() const noexcept { return u16(offsetof(ipv4_header, ident)); }
  [[nodiscard]] bool dont_frag() const noexcept { return (flags_frag() & 0x4000u) != 0; }
  [[nodiscard]] bool more_frags() const noexcept { return (flags_frag() & 0x2000u) != 0; }
  /// Fragment offset in 8-byte units, as on the wire.
  [[nodiscard]] std::uint16_t frag_offset() const noexcept {
    return static_cast<std::uint16_t>(flags_frag() & 0x1fffu);
  }
  [[nodiscard]] std::uint32_t frag_offset_bytes() const noexcept { return std::uint32_t{frag_offset()} * 8; }
  /// A fragment: MF set or a non-zero offset (RFC 791 section 3.2).
  [[nodiscard]] bool is_fragment() const noexcept { return (flags_frag() & 0x3fffu) != 0; }
  [[nodiscard]] std::uint8_t ttl() const noexcept { return u8(offsetof(ipv4_header, ttl)); }
  [[nodiscard]] std::uint8_t protocol() const noexcept { return u8(offsetof(ipv4_header, protocol)); }
  [[nodiscard]] std::uint16_t checksum() const noexcept { return u16(offsetof(ipv4_header, checksum)); }
  [[nodiscard]] ipv4_address src() const noexcept { return addr(offsetof(ipv4_header, src)); }
  [[nodiscard]] ipv4_address dst() const noexcept { return addr(offsetof(ipv4_header, dst)); }

  /// The option bytes between the fixed header and header_len() (empty when IHL is 5).
  [[nodiscard]] std::span<Byte> options_bytes() const noexcept {
    return bytes_.subspan(min_header_len, header_len() - min_header_len);
  }
  [[nodiscard]] bool has_options() const noexcept { return ihl() > 5; }
  [[nodiscard]] tlv_options<Byte> options() const noexcept { return tlv_options<Byte>{options_bytes()}; }
  /// Errors: bad_ipv4_option (an option's length byte missing, < 2 or past the header).
  [[nodiscard]] drop_reason check_options() const noexcept {
    return options().is_malformed() ? drop_reason::bad_ipv4_option : drop_reason::none;
  }

  /// The bytes after the header up to total length.
  [[nodiscard]] std::span<Byte> payload() const noexcept {
    return bytes_.subspan(header_len(), std::size_t{total_len()} - header_len());
  }
  /// The whole packet: header and payload, bounded by total length.
  [[nodiscard]] std::span<Byte> packet() const noexcept { return bytes_.first(total_len()); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  /// RFC 1071 over the header, options included: a correct header sums to 0xffff.
  [[nodiscard]] bool verify_checksum() const noexcept {
    return detail::ones_sum(bytes_.data(), header_len()) == 0xffffu;
  }
  /// The checksum the header should carry (its own checksum field counted as zero).
  [[nodiscard]] std::uint16_t compute_checksum() const noexcept {
    const std::byte* p = bytes_.data();
    std::uint32_t s = detail::ones_sum(p, offsetof(ipv4_header, checksum));
    const std::size_t after = offsetof(ipv4_header, checksum) + 2;
    s = detail::ones_sum(p + after, header_len() - after, s);
    return detail::fold_complement(s);
  }

  // Setters (mutable views only).
  void set_version_ihl(std::uint8_t version, std::uint8_t ihl) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    set_u8(0, static_cast<std::uint8_t>((unsigned{version} << 4) | (ihl & 0xfu)));
  }
  void set_tos(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) { set_u8(offsetof(ipv4_header, tos), v); }
  void set_dscp(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_tos(static_cast<std::uint8_t>((v << 2) | ecn()));
  }
  void set_ecn(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_tos(static_cast<std::uint8_t>((tos() & 0xfcu) | (v & 3u)));
  }
  void set_total_len(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(ipv4_header, total_len), v);
  }
  void set_ident(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(ipv4_header, ident), v);
  }
  void set_dont_frag(bool v) const noexcept requires(!std::is_const_v<Byte>) { set_flag(0x4000u, v); }
  void set_more_frags(bool v) const noexcept requires(!std::is_const_v<Byte>) { set_flag(0x2000u, v); }
  /// Offset in 8-byte units (0..8191).
  void set_frag_offset(std::uint16_t units) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(ipv4_header, flags_frag),
            static_cast<std::uint16_t>((flags_frag() & 0xe000u) | (units & 0x1fffu)));
  }
  /// Writes the whole flags/offset word: reserved bit 0, DF, MF, offset in 8-byte units.
  void set_flags_frag(bool df, bool mf, std::uint16_t units) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(ipv4_header, flags_frag),
            static_cast<std::uint16_t>((df ? 0x4000u : 0u) | (mf ? 0x2000u : 0u) | (units & 0x1fffu)));
  }
  void set_ttl(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) { set_u8(offsetof(ipv4_header, ttl), v); }
  void set_protocol(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u8(offsetof(ipv4_header, protocol), v);
  }
  void set_checksum(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(ipv4_header, checksum), v);
  }
  void set_src(const ipv4_address& a) const noexcept requires(!std::is_const_v<Byte>) {
    std::memcpy(bytes_.data() + offsetof(ipv4_header, src), a.bytes.data(), 4);
  }
  void set_dst(const ipv4_address& a) const noexcept requires(!std::is_const_v<Byte>) {
    std::memcpy(bytes_.data() + offsetof(ipv4_header, dst), a.bytes.data(), 4);
  }
  /// Writes compute_checksum() into the header.
  void fill_checksum() const noexcept requires(!std::is_const_v<Byte>) { set_checksum(compute_checksum()); }

 private:
  explicit constexpr basic_ipv4_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] std::uint8_t u8(std::size_t off) const noexcept { return detail::load_u8(bytes_.data() + off); }
  [[nodiscard]] std::uint16_t u16(std::size_t off) const noexcept { return detail::load_be16(bytes_.data() + off); }
  [[nodiscard]] std::uint16_t flags_frag() const noexcept { return u16(offsetof(ipv4_header, flags_frag)); }
  [[nodiscard]] ipv4_address addr(std::size_t off) const noexcept {
    ipv4_address a;
    std::memcpy(a.bytes.data(), bytes_.data() + off, 4);
    return a;
  }
  void set_u8(std::size_t off, std::uint8_t v) const noexcept { detail::store_u8(bytes_.data() + off, v); }
  void set_u16(std::size_t off, std::uint16_t v) const noexcept { detail::store_be16(bytes_.data() + off, v); }
  void set_flag(unsigned bit, bool on) const noexcept {
    const unsigned f = flags_frag();
    set_u16(offsetof(ipv4_header, flags_frag), static_cast<std::uint16_t>(on ? (f | bit) : (f & ~bit)));
  }

  std::span<Byte> bytes_;
};

using ipv4_view = basic_ipv4_view<const std::byte>;
using ipv4_mut_view = basic_ipv4_view<std::byte>;

/// True if the header (options included) sums to 0xffff (RFC 1071). Not part of parse() by
/// default: NICs usually checked it already; parse_options::verify_ipv4_checksum asks for it.
template <class Byte>
[[nodiscard]] bool verify_ipv4_header_checksum(basic_ipv4_view<Byte> v) noexcept {
  return v.verify_checksum();
}

/// The values of an option-less IPv4 header (smoltcp's Repr); parse() ignores options.
struct ipv4_repr {
  ipv4_address src;
  ipv4_address dst;
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  std::uint16_t ident = 0;
  bool dont_frag = false;
  bool more_frags = false;
  std::uint16_t frag_offset = 0;  ///< 8-byte units

  static constexpr std::size_t buffer_len = ipv4_view::min_header_len;

  template <class Byte>
  [[nodiscard]] static ipv4_repr parse(basic_ipv4_view<Byte> v) noexcept {
    return {v.src(),
            v.dst(),
            v.protocol(),
            static_cast<std::uint16_t>(v.total_len() - v.header_len()),
            v.ttl(),
            v.tos(),
            v.ident(),
            v.dont_frag(),
            v.more_frags(),
            v.frag_offset()};
  }
  /// Writes a 20-byte header (IHL 5) with a valid checksum. Precondition: v spans >= 20 bytes
  /// and payload_len <= 65515.
  void emit(ipv4_mut_view v) const noexcept {
    v.set_version_ihl(4, 5);
    v.set_tos(tos);
    v.set_total_len(static_cast<std::uint16_t>(buffer_len + payload_len));
    v.set_ident(ident);
    v.set_flags_frag(dont_frag, more_frags, frag_offset);
    v.set_ttl(ttl);
    v.set_protocol(protocol);
    v.set_src(src);
    v.set_dst(dst);
    v.fill_checksum();
  }

  friend constexpr bool operator==(const ipv4_repr&, const ipv4_repr&) = default;
};

}  // namespace l4lb::wire
