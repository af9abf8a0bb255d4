// Ethernet II header view (IEEE 802.3 with an EtherType): MAC addresses and the EtherType.
// DR forwarding rewrites only the MACs, so both are settable on a mutable view.
// Layout: destination MAC (6), source MAC (6), EtherType (2); no FCS (NICs strip it).
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"

namespace l4lb::wire {

/// EtherType values l4lb looks at (IEEE registry).
namespace ethertype {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100;       ///< IEEE 802.1Q C-tag
inline constexpr std::uint16_t qinq = 0x88a8;       ///< IEEE 802.1ad S-tag
inline constexpr std::uint16_t vlan_9100 = 0x9100;  ///< pre-802.1ad QinQ S-tag, still seen
inline constexpr std::uint16_t ipv6 = 0x86dd;
/// Values below this are 802.3 length fields, not EtherTypes (IEEE 802.3 clause 3.2.6).
inline constexpr std::uint16_t min_ethertype = 0x0600;
}  // namespace ethertype

/// A 48-bit MAC address as its six bytes in wire order.
struct mac_address {
  std::array<std::uint8_t, 6> bytes{};

  [[nodiscard]] constexpr bool is_broadcast() const noexcept {
    for (auto b : bytes)
      if (b != 0xff) return false;
    return true;
  }
  /// Group bit: the least significant bit of the first octet (IEEE 802).
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (bytes[0] & 1u) != 0; }

  /// Six groups of two hex digits (either case) separated by ':' or '-' (IEEE 802 canonical
  /// form; one separator throughout): "02:00:c6:12:00:0a", "02-00-C6-12-00-0A".
  /// Errors: empty, bad_character, bad_mac_group, wrong_mac_group_count.
  [[nodiscard]] static constexpr expected<mac_address, address_error> parse(std::string_view s) noexcept {
    if (s.empty()) return unexpected{address_error::empty};
    mac_address m;
    const char sep = s.size() > 2 ? s[2] : ':';
    if (sep != ':' && sep != '-') return unexpected{detail::hex_value(sep) < 0 ? address_error::bad_character
                                                                               : address_error::bad_mac_group};
    std::size_t group = 0, start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
      if (i < s.size() && s[i] != sep) {
        if (detail::hex_value(s[i]) < 0) return unexpected{address_error::bad_character};
        continue;
      }
      if (group == 6) return unexpected{address_error::wrong_mac_group_count};
      if (i - start != 2) return unexpected{address_error::bad_mac_group};
      m.bytes[group++] = static_cast<std::uint8_t>(detail::hex_value(s[start]) * 16 + detail::hex_value(s[start + 1]));
      start = i + 1;
    }
    if (group != 6) return unexpected{address_error::wrong_mac_group_count};
    return m;
  }

  /// "02:00:c6:12:00:01"
  [[nodiscard]] std::string to_string() const {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    s.reserve(17);
    for (std::size_t i = 0; i < 6; ++i) {
      if (i) s.push_back(':');
      s.push_back(hex[bytes[i] >> 4]);
      s.push_back(hex[bytes[i] & 0xfu]);
    }
    return s;
  }

  friend constexpr auto operator<=>(const mac_address&, const mac_address&) = default;
};

/// The Ethernet II header as it sits on the wire. Layout only: views use its offsets.
struct ethernet_header {
  std::array<unsigned char, 6> dst;
  std::array<unsigned char, 6> src;
  boost::endian::big_uint16_buf_t ethertype;
};
static_assert(sizeof(ethernet_header) == 14 && alignof(ethernet_header) == 1);
static_assert(std::is_standard_layout_v<ethernet_header>);

/// View of an Ethernet II header over caller bytes. Byte = std::byte (mutable) or const std::byte.
template <detail::wire_byte Byte>
class basic_ethernet_view {
 public:
  static constexpr std::size_t header_len = sizeof(ethernet_header);

  /// No checks: for writing a header into a buffer the caller sized (>= header_len).
  [[nodiscard]] static constexpr basic_ethernet_view unchecked(std::span<Byte> b) noexcept {
    return basic_ethernet_view{b};
  }
  /// For untrusted input: after success every accessor stays inside `b`.
  /// Errors: truncated_ethernet.
  [[nodiscard]] static expected<basic_ethernet_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_ethernet};
    return basic_ethernet_view{b};
  }

  [[nodiscard]] mac_address dst() const noexcept { return mac_at(offsetof(ethernet_header, dst)); }
  [[nodiscard]] mac_address src() const noexcept { return mac_at(offsetof(ethernet_header, src)); }
  [[nodiscard]] std::uint16_t ethertype() const noexcept {
    return detail::load_be16(bytes_.data() + offsetof(ethernet_header, ethertype));
  }

  void set_dst(const mac_address& m) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    std::memcpy(bytes_.data() + offsetof(ethernet_header, dst), m.bytes.data(), 6);
  }
  void set_src(const mac_address& m) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    std::memcpy(bytes_.data() + offsetof(ethernet_header, src), m.bytes.data(), 6);
  }
  void set_ethertype(std::uint16_t v) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    detail::store_be16(bytes_.data() + offsetof(ethernet_header, ethertype), v);
  }

  /// Everything after the 14-byte header (VLAN tags, if any, included).
  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

 private:
  explicit constexpr basic_ethernet_view(std::span<Byte> b) noexcept : bytes_(b) {}
  [[nodiscard]] mac_address mac_at(std::size_t off) const noexcept {
    mac_address m;
    std::memcpy(m.bytes.data(), bytes_.data() + off, 6);
    return m;
  }

  std::span<Byte> bytes_;
};

using ethernet_view = basic_ethernet_view<const std::byte>;
using ethernet_mut_view = basic_ethernet_view<std::byte>;

/// The header's values, parsed out of a view or emitted into one (smoltcp's Repr).
struct ethernet_repr {
  mac_address dst;
  mac_address src;
  std::uint16_t ethertype = 0;

  static constexpr std::size_t buffer_len = ethernet_view::header_len;

  template <class Byte>
  [[nodiscard]] static ethernet_repr parse(basic_ethernet_view<Byte> v) noexcept {
    return {v.dst(), v.src(), v.ethertype()};
  }
  /// Writes all 14 bytes. Precondition: the view spans at least buffer_len bytes.
  void emit(ethernet_mut_view v) const noexcept {
    v.set_dst(dst);
    v.set_src(src);
    v.set_ethertype(ethertype);
  }

  friend constexpr bool operator==(const ethernet_repr&, const ethernet_repr&) = default;
};

}  // namespace l4lb::wire
