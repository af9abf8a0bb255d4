// TCP header view (RFC 9293 section 3.1) with a bounds-safe option walker and the options a
// load balancer reads or clamps: MSS, window scale, SACK-permitted, timestamps.
// The view's payload runs to the end of the span it was made from: give it the IP payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/detail/tlv_options.hpp"
#include "l4lb/wire/drop_reason.hpp"

namespace l4lb::wire {

/// The fixed 20 bytes of a TCP header as on the wire. Layout only.
struct tcp_header {
  boost::endian::big_uint16_buf_t src_port;
  boost::endian::big_uint16_buf_t dst_port;
  boost::endian::big_uint32_buf_t seq;
  boost::endian::big_uint32_buf_t ack;
  unsigned char data_offset;  ///< data offset in 32-bit words (high 4 bits) | reserved | AE (RFC 3540, historic)
  unsigned char flags;        ///< CWR ECE URG ACK PSH RST SYN FIN
  boost::endian::big_uint16_buf_t window;
  boost::endian::big_uint16_buf_t checksum;
  boost::endian::big_uint16_buf_t urgent;
};
static_assert(sizeof(tcp_header) == 20 && alignof(tcp_header) == 1);
static_assert(std::is_standard_layout_v<tcp_header>);

/// The flag bits of byte 13 (RFC 9293, RFC 3168 for ECE/CWR).
namespace tcp_flags {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
}  // namespace tcp_flags

/// TCP option kinds (IANA "TCP Option Kind Numbers").
namespace tcp_option_kind {
inline constexpr std::uint8_t end_of_list = 0;
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t mss = 2;             ///< length 4, RFC 9293
inline constexpr std::uint8_t window_scale = 3;    ///< length 3, RFC 7323
inline constexpr std::uint8_t sack_permitted = 4;  ///< length 2, RFC 2018
inline constexpr std::uint8_t sack = 5;            ///< length 2 + 8n, RFC 2018
inline constexpr std::uint8_t timestamp = 8;       ///< length 10, RFC 7323
}  // namespace tcp_option_kind

template <detail::wire_byte Byte>
class basic_tcp_view {
 public:
  static constexpr std::size_t min_header_len = sizeof(tcp_header);
  static constexpr std::size_t max_header_len = 60;

  [[nodiscard]] static constexpr basic_tcp_view unchecked(std::span<Byte> b) noexcept {
    return basic_tcp_view{b};
  }
  /// For untrusted input (`b` = the IP payload). Errors, in order: truncated_tcp (< 20),
  /// bad_tcp_data_offset (< 5), truncated_tcp (< data offset * 4).
  [[nodiscard]] static expected<basic_tcp_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < min_header_len) return unexpected{drop_reason::truncated_tcp};
    basic_tcp_view v{b};
    if (v.data_offset() < 5) return unexpected{drop_reason::bad_tcp_data_offset};
    if (b.size() < v.header_len()) return unexpected{drop_reason::truncated_tcp};
    return v;
  }

  [[nodiscard]] std::uint16_t src_port() const noexcept { return u16(offsetof(tcp_header, src_port)); }
  [[nodiscard]] std::uint16_t dst_port() const noexcept { return u16(offsetof(tcp_header, dst_port)); }
  [[nodiscard]] std::uint32_t seq_number() const noexcept {
    return detail::load_be32(bytes_.data() + offsetof(tcp_header, seq));
  }
  [[nodiscard]] std::uint32_t ack_number() const noexcept {
    return detail::load_be32(bytes_.data() + offsetof(tcp_header, ack));
  }
  /// Header length in 32-bit words.
  [[nodiscard]] std::uint8_t data_offset() const noexcept {
    return static_cast<std::uint8_t>(u8(offsetof(tcp_header, data_offset)) >> 4);
  }
  [[nodiscard]] std::size_t header_len() const noexcept { return std::size_t{data_offset()} * 4; }
  /// Byte 13: see tcp_flags.
  [[nodiscard]] std::uint8_t flags() const noexcept { return u8(offsetof(tcp_header, flags)); }
  [[nodiscard]] bool fin() const noexcept { return (flags() & tcp_flags::fin) != 0; }
  [[nodiscard]] bool syn() const noexcept { return (flags() & tcp_flags::syn) != 0; }
  [[nodiscard]] bool rst() const noexcept { return (flags() & tcp_flags::rst) != 0; }
  [[nodiscard]] bool ack() const noexcept { return (flags() & tcp_flags::ack) != 0; }
  [[nodiscard]] std::uint16_t window() const noexcept { return u16(offsetof(tcp_header, window)); }
  [[nodiscard]] std::uint16_t checksum() const noexcept { return u16(offsetof(tcp_header, checksum)); }
  [[nodiscard]] std::uint16_t urgent_pointer() const noexcept { return u16(offsetof(tcp_header, urgent)); }

  [[nodiscard]] std::span<Byte> options_bytes() const noexcept {
    return bytes_.subspan(min_header_len, header_len() - min_header_len);
  }
  [[nodiscard]] tlv_options<Byte> options() const noexcept { return tlv_options<Byte>{options_bytes()}; }
  /// Errors: bad_tcp_option (an option's length byte missing, < 2 or past the header).
  [[nodiscard]] drop_reason check_options() const noexcept {
    return options().is_malformed() ? drop_reason::bad_tcp_option : drop_reason::none;
  }
  /// Maximum segment size, if an MSS option of the right length (4) is present.
  [[nodiscard]] std::optional<std::uint16_t> mss() const noexcept {
    auto o = options().find(tcp_option_kind::mss);
    if (!o || o->data.size() != 2) return std::nullopt;
    return detail::load_be16(o->data.data());
  }
  /// Window scale shift count, if present with length 3 (RFC 7323 section 2.2).
  [[nodiscard]] std::optional<std::uint8_t> window_scale() const noexcept {
    auto o = options().find(tcp_option_kind::window_scale);
    if (!o || o->data.size() != 1) return std::nullopt;
    return detail::load_u8(o->data.data());
  }
  [[nodiscard]] bool sack_permitted() const noexcept {
    auto o = options().find(tcp_option_kind::sack_permitted);
    return o && o->data.empty();
  }
  /// (TSval, TSecr), if a timestamp option of length 10 is present.
  [[nodiscard]] std::optional<std::pair<std::uint32_t, std::uint32_t>> timestamps() const noexcept {
    auto o = options().find(tcp_option_kind::timestamp);
    if (!o || o->data.size() != 8) return std::nullopt;
    return std::pair{detail::load_be32(o->data.data()), detail::load_be32(o->data.data() + 4)};
  }

  /// Segment data: everything after the header, to the end of the span given to make().
  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len()); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  void set_src_port(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(tcp_header, src_port), v);
  }
  void set_dst_port(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(tcp_header, dst_port), v);
  }
  void set_seq_number(std::uint32_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be32(bytes_.data() + offsetof(tcp_header, seq), v);
  }
  void set_ack_number(std::uint32_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be32(bytes_.data() + offsetof(tcp_header, ack), v);
  }
  /// Writes the whole byte 12: data offset (words) in the high nibble, reserved bits and AE 0.
  void set_data_offset(std::uint8_t words) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data() + offsetof(tcp_header, data_offset), static_cast<std::uint8_t>(words << 4));
  }
  void set_flags(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data() + offsetof(tcp_header, flags), v);
  }
  void set_window(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(tcp_header, window), v);
  }
  void set_checksum(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(tcp_header, checksum), v);
  }
  void set_urgent_pointer(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(tcp_header, urgent), v);
  }
  /// Rewrites an existing MSS option's value (MSS clamping). Returns false if there is none.
  /// The caller updates the checksum (RFC 1624) afterwards.
  bool set_mss(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    auto o = options().find(tcp_option_kind::mss);
    if (!o || o->data.size() != 2) return false;
    detail::store_be16(o->data.data(), v);
    return true;
  }

 private:
  explicit constexpr basic_tcp_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] std::uint8_t u8(std::size_t off) const noexcept { return detail::load_u8(bytes_.data() + off); }
  [[nodiscard]] std::uint16_t u16(std::size_t off) const noexcept { return detail::load_be16(bytes_.data() + off); }
  void set_u16(std::size_t off, std::uint16_t v) const noexcept { detail::store_be16(bytes_.data() + off, v); }

  std::span<Byte> bytes_;
};

using tcp_view = basic_tcp_view<const std::byte>;
using tcp_mut_view = basic_tcp_view<std::byte>;

/// The fixed fields of a TCP header (smoltcp's Repr). Options stay bytes; the checksum needs the
/// IP pseudo-header, so emit() writes 0 there and the caller fills it (l4lb/wire/checksum.hpp).
struct tcp_repr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq_number = 0;
  std::uint32_t ack_number = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::uint16_t urgent_pointer = 0;

  static constexpr std::size_t buffer_len = tcp_view::min_header_len;

  template <class Byte>
  [[nodiscard]] static tcp_repr parse(basic_tcp_view<Byte> v) noexcept {
    return {v.src_port(), v.dst_port(), v.seq_number(), v.ack_number(), v.flags(), v.window(), v.urgent_pointer()};
  }
  /// Writes a 20-byte header without options (data offset 5), checksum 0.
  void emit(tcp_mut_view v) const noexcept {
    v.set_src_port(src_port);
    v.set_dst_port(dst_port);
    v.set_seq_number(seq_number);
    v.set_ack_number(ack_number);
    v.set_data_offset(5);
    v.set_flags(flags);
    v.set_window(window);
    v.set_checksum(0);
    v.set_urgent_pointer(urgent_pointer);
  }

  friend constexpr bool operator==(const tcp_repr&, const tcp_repr&) = default;
};

}  // namespace l4lb::wire
