// UDP header view (RFC 768): ports, length, checksum. make() holds the length field to the bytes
// present; make_header_only() is for the first fragment of a fragmented datagram, whose length
// field counts bytes that arrive in later fragments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"

namespace l4lb::wire {

/// The UDP header as on the wire. Layout only.
struct udp_header {
  boost::endian::big_uint16_buf_t src_port;
  boost::endian::big_uint16_buf_t dst_port;
  boost::endian::big_uint16_buf_t length;  ///< header + data
  boost::endian::big_uint16_buf_t checksum;
};
static_assert(sizeof(udp_header) == 8 && alignof(udp_header) == 1);
static_assert(std::is_standard_layout_v<udp_header>);

template <detail::wire_byte Byte>
class basic_udp_view {
 public:
  static constexpr std::size_t header_len = sizeof(udp_header);

  [[nodiscard]] static constexpr basic_udp_view unchecked(std::span<Byte> b) noexcept {
    return basic_udp_view{b};
  }
  /// For a whole datagram (`b` = the IP payload). Errors: truncated_udp (< 8), bad_udp_length
  /// (length < 8 or > bytes present). A length below the IP payload is accepted and bounds the
  /// payload (the kernel trims the rest, udp_rcv / __udp4_lib_rcv).
  [[nodiscard]] static expected<basic_udp_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_udp};
    basic_udp_view v{b};
    if (v.length() < header_len || v.length() > b.size()) return unexpected{drop_reason::bad_udp_length};
    return v;
  }
  /// For the first fragment of a datagram: only the 8 header bytes are required.
  /// Errors: truncated_udp.
  [[nodiscard]] static expected<basic_udp_view, drop_reason> make_header_only(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_udp};
    return basic_udp_view{b};
  }

  [[nodiscard]] std::uint16_t src_port() const noexcept { return u16(offsetof(udp_header, src_port)); }
  [[nodiscard]] std::uint16_t dst_port() const noexcept { return u16(offsetof(udp_header, dst_port)); }
  [[nodiscard]] std::uint16_t length() const noexcept { return u16(offsetof(udp_header, length)); }
  /// 0 means "no checksum" over IPv4 (RFC 768); IPv6 requires one (RFC 8200 section 8.1).
  [[nodiscard]] std::uint16_t checksum() const noexcept { return u16(offsetof(udp_header, checksum)); }

  /// Datagram data, bounded by the length field and by the span (whichever ends first).
  [[nodiscard]] std::span<Byte> payload() const noexcept {
    std::size_t end = std::min<std::size_t>(length(), bytes_.size());
    if (end < header_len) end = header_len;
    return bytes_.subspan(header_len, end - header_len);
  }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  void set_src_port(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(udp_header, src_port), v);
  }
  void set_dst_port(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(udp_header, dst_port), v);
  }
  void set_length(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(udp_header, length), v);
  }
  void set_checksum(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    set_u16(offsetof(udp_header, checksum), v);
  }

 private:
  explicit constexpr basic_udp_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] std::uint16_t u16(std::size_t off) const noexcept { return detail::load_be16(bytes_.data() + off); }
  void set_u16(std::size_t off, std::uint16_t v) const noexcept { detail::store_be16(bytes_.data() + off, v); }

  std::span<Byte> bytes_;
};

using udp_view = basic_udp_view<const std::byte>;
using udp_mut_view = basic_udp_view<std::byte>;

/// UDP header values (smoltcp's Repr). emit() writes checksum 0; the caller fills it.
struct udp_repr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint16_t payload_len = 0;

  static constexpr std::size_t buffer_len = udp_view::header_len;

  template <class Byte>
  [[nodiscard]] static udp_repr parse(basic_udp_view<Byte> v) noexcept {
    return {v.src_port(), v.dst_port(), static_cast<std::uint16_t>(v.length() - udp_view::header_len)};
  }
  void emit(udp_mut_view v) const noexcept {
    v.set_src_port(src_port);
    v.set_dst_port(dst_port);
    v.set_length(static_cast<std::uint16_t>(buffer_len + payload_len));
    v.set_checksum(0);
  }

  friend constexpr bool operator==(const udp_repr&, const udp_repr&) = default;
};

}  // namespace l4lb::wire
