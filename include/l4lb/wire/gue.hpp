// Generic UDP Encapsulation header (draft-ietf-intarea-gue): the 4-byte base header that follows
// the outer UDP header in IPVS's `--tun-type gue` tunnels, as a view over caller bytes plus the
// header-length arithmetic decapsulation needs. Version 1 (direct IP, no GUE header) is recognised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/detail/byte_access.hpp"

namespace l4lb::wire {

/// Why bytes are not a usable GUE or GRE header (shared by gue.hpp and gre.hpp).
enum class tunnel_header_error : std::uint8_t {
  truncated,           ///< fewer bytes than the base header, or than its optional fields
  bad_version,         ///< GUE version 2/3; GRE version != 0
  control_message,     ///< GUE C bit: a control message, not a data packet
  unsupported_flags,   ///< GRE routing present / strict source route / recursion (RFC 2784 bits 1-5)
};

[[nodiscard]] constexpr std::string_view to_string(tunnel_header_error e) noexcept {
  switch (e) {
    case tunnel_header_error::truncated: return "truncated";
    case tunnel_header_error::bad_version: return "bad_version";
    case tunnel_header_error::control_message: return "control_message";
    case tunnel_header_error::unsupported_flags: return "unsupported_flags";
  }
  return "unknown";
}

/// GUE base header as it sits on the wire. Layout only.
///   byte 0: version (2 bits) | C (1 bit) | hlen (5 bits, optional fields in 32-bit words)
///   byte 1: proto/ctype (IP protocol of the payload, e.g. 4 = IPv4, 41 = IPv6)
///   bytes 2-3: flags
struct gue_header {
  boost::endian::big_uint8_buf_t ver_c_hlen;
  boost::endian::big_uint8_buf_t proto_ctype;
  boost::endian::big_uint16_buf_t flags;
};
static_assert(sizeof(gue_header) == 4 && alignof(gue_header) == 1);

template <detail::wire_byte Byte>
class basic_gue_view {
 public:
  static constexpr std::size_t header_len = sizeof(gue_header);

  [[nodiscard]] static constexpr basic_gue_view unchecked(std::span<Byte> b) noexcept {
    return basic_gue_view{b};
  }
  /// For untrusted bytes (the UDP payload). On success, header_len() bytes are present, whatever
  /// the version, so every accessor stays inside `b`. Version 1 (first nibble 4 or 6: the payload
  /// is an IP packet with no GUE header; any IP header is longer than 4 bytes) is accepted; check
  /// is_direct_ip(). Errors: truncated, bad_version, control_message.
  [[nodiscard]] static expected<basic_gue_view, tunnel_header_error> make(std::span<Byte> b) noexcept {
    if (b.empty()) return unexpected{tunnel_header_error::truncated};
    basic_gue_view v{b};
    if (v.version() > 1) return unexpected{tunnel_header_error::bad_version};
    if (b.size() < header_len) return unexpected{tunnel_header_error::truncated};
    if (v.version() == 1) return v;
    if (v.control()) return unexpected{tunnel_header_error::control_message};
    if (b.size() < v.header_len_total()) return unexpected{tunnel_header_error::truncated};
    return v;
  }

  [[nodiscard]] std::uint8_t version() const noexcept { return static_cast<std::uint8_t>(b0() >> 6); }
  /// Version 1: the UDP payload is the inner IP packet itself.
  [[nodiscard]] bool is_direct_ip() const noexcept { return version() == 1; }
  [[nodiscard]] bool control() const noexcept { return (b0() & 0x20u) != 0; }
  /// Length of the optional fields in 32-bit words.
  [[nodiscard]] std::uint8_t hlen() const noexcept { return static_cast<std::uint8_t>(b0() & 0x1fu); }
  /// Base header + optional fields, in bytes (0 for version 1).
  [[nodiscard]] std::size_t header_len_total() const noexcept {
    return is_direct_ip() ? 0 : header_len + std::size_t{hlen()} * 4;
  }
  [[nodiscard]] std::uint8_t proto_ctype() const noexcept { return detail::load_u8(bytes_.data() + 1); }
  [[nodiscard]] std::uint16_t flags() const noexcept { return detail::load_be16(bytes_.data() + 2); }
  /// The encapsulated bytes, after the header and its optional fields.
  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len_total()); }

  void set_version_control_hlen(std::uint8_t version, bool control, std::uint8_t hlen) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    detail::store_u8(bytes_.data(), static_cast<std::uint8_t>(((version & 3u) << 6) | (control ? 0x20u : 0u) |
                                                               (hlen & 0x1fu)));
  }
  void set_proto_ctype(std::uint8_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_u8(bytes_.data() + 1, v);
  }
  void set_flags(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 2, v);
  }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

 private:
  explicit constexpr basic_gue_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] std::uint8_t b0() const noexcept { return detail::load_u8(bytes_.data()); }
  std::span<Byte> bytes_;
};

using gue_view = basic_gue_view<const std::byte>;
using gue_mut_view = basic_gue_view<std::byte>;

/// Writes IPVS's GUE header for a data packet with no options: version 0, C 0, hlen 0,
/// proto = the inner IP protocol (4 or 41), flags 0 (ip_vs_xmit.c ipvs_gue_encap).
/// Precondition: out.size() >= 4.
inline void emit_gue_header(std::span<std::byte> out, std::uint8_t inner_protocol) noexcept {
  auto v = gue_mut_view::unchecked(out);
  v.set_version_control_hlen(0, false, 0);
  v.set_proto_ctype(inner_protocol);
  v.set_flags(0);
}

}  // namespace l4lb::wire
