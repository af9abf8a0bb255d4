// GRE header (RFC 2784, with RFC 2890's key and sequence number) as a view over caller bytes: the
// flag bits decide which optional 32-bit fields follow, so header_len() is computed, never stored.
// IPVS's `--tun-type gre` writes the 4-byte base header, or 8 bytes with the checksum (C) bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/gue.hpp"  // tunnel_header_error

namespace l4lb::wire {

/// GRE base header as it sits on the wire. Layout only.
struct gre_header {
  boost::endian::big_uint16_buf_t flags_version;  // C R K S s Recur(3) Flags(5) Ver(3)
  boost::endian::big_uint16_buf_t protocol;       // EtherType of the payload
};
static_assert(sizeof(gre_header) == 4 && alignof(gre_header) == 1);

namespace gre_flags {
inline constexpr std::uint16_t checksum = 0x8000;      ///< C: checksum + reserved1 follow
inline constexpr std::uint16_t routing = 0x4000;       ///< R (RFC 1701, deprecated)
inline constexpr std::uint16_t key = 0x2000;           ///< K (RFC 2890)
inline constexpr std::uint16_t sequence = 0x1000;      ///< S (RFC 2890)
inline constexpr std::uint16_t strict_route = 0x0800;  ///< s (RFC 1701)
inline constexpr std::uint16_t recursion = 0x0700;     ///< Recur (RFC 1701)
inline constexpr std::uint16_t version_mask = 0x0007;
}  // namespace gre_flags

template <detail::wire_byte Byte>
class basic_gre_view {
 public:
  static constexpr std::size_t base_header_len = sizeof(gre_header);

  [[nodiscard]] static constexpr basic_gre_view unchecked(std::span<Byte> b) noexcept {
    return basic_gre_view{b};
  }
  /// For untrusted bytes. RFC 2784 section 2.3: a receiver that does not implement RFC 1701 must
  /// discard packets with any of bits 1-5 set; RFC 2890 gives bits 2 and 3 (K, S) a meaning, so
  /// R, s and the first Recur bit are refused. Errors: truncated, bad_version, unsupported_flags.
  [[nodiscard]] static expected<basic_gre_view, tunnel_header_error> make(std::span<Byte> b) noexcept {
    if (b.size() < base_header_len) return unexpected{tunnel_header_error::truncated};
    basic_gre_view v{b};
    if (v.version() != 0) return unexpected{tunnel_header_error::bad_version};
    if ((v.flags_version() & (gre_flags::routing | gre_flags::strict_route | 0x0400u)) != 0)
      return unexpected{tunnel_header_error::unsupported_flags};
    if (b.size() < v.header_len()) return unexpected{tunnel_header_error::truncated};
    return v;
  }

  [[nodiscard]] std::uint16_t flags_version() const noexcept { return detail::load_be16(bytes_.data()); }
  [[nodiscard]] std::uint8_t version() const noexcept {
    return static_cast<std::uint8_t>(flags_version() & gre_flags::version_mask);
  }
  [[nodiscard]] bool has_checksum() const noexcept { return (flags_version() & gre_flags::checksum) != 0; }
  [[nodiscard]] bool has_key() const noexcept { return (flags_version() & gre_flags::key) != 0; }
  [[nodiscard]] bool has_sequence() const noexcept { return (flags_version() & gre_flags::sequence) != 0; }
  [[nodiscard]] std::uint16_t protocol() const noexcept { return detail::load_be16(bytes_.data() + 2); }
  /// 4 + 4 per present optional field (checksum+reserved1, key, sequence number).
  [[nodiscard]] std::size_t header_len() const noexcept {
    return base_header_len + (has_checksum() ? 4u : 0u) + (has_key() ? 4u : 0u) + (has_sequence() ? 4u : 0u);
  }
  /// Checksum field (offset 4).                                         [has_checksum()]
  [[nodiscard]] std::uint16_t checksum() const noexcept { return detail::load_be16(bytes_.data() + 4); }
  [[nodiscard]] std::uint32_t key() const noexcept {
    return detail::load_be32(bytes_.data() + 4 + (has_checksum() ? 4u : 0u));
  }
  [[nodiscard]] std::uint32_t sequence() const noexcept {
    return detail::load_be32(bytes_.data() + 4 + (has_checksum() ? 4u : 0u) + (has_key() ? 4u : 0u));
  }
  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len()); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

  void set_flags_version(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data(), v);
  }
  void set_protocol(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 2, v);
  }
  /// Checksum and reserved1.                                            [has_checksum()]
  void set_checksum(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 4, v);
  }
  void set_reserved1(std::uint16_t v) const noexcept requires(!std::is_const_v<Byte>) {
    detail::store_be16(bytes_.data() + 6, v);
  }

 private:
  explicit constexpr basic_gre_view(std::span<Byte> b) noexcept : bytes_(b) {}
  std::span<Byte> bytes_;
};

using gre_view = basic_gre_view<const std::byte>;
using gre_mut_view = basic_gre_view<std::byte>;

}  // namespace l4lb::wire
