// IEEE 802.1Q VLAN tag view, also used for each tag of 802.1ad QinQ (S-tag 0x88a8 + C-tag 0x8100).
// The view covers what follows a VLAN TPID: the 16-bit TCI (PCP 3 bits, DEI 1 bit, VID 12 bits)
// and the encapsulated EtherType; the TPID itself is the preceding EtherType field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <boost/endian/buffers.hpp>

#include "l4lb/expected.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/ethernet.hpp"

namespace l4lb::wire {

/// True for the TPIDs that introduce a VLAN tag: 0x8100 (802.1Q), 0x88a8 (802.1ad), 0x9100.
[[nodiscard]] constexpr bool is_vlan_tpid(std::uint16_t t) noexcept {
  return t == ethertype::vlan || t == ethertype::qinq || t == ethertype::vlan_9100;
}

/// The 4 bytes after a VLAN TPID, as on the wire (the layout of Linux's struct vlan_hdr).
struct vlan_header {
  boost::endian::big_uint16_buf_t tci;
  boost::endian::big_uint16_buf_t ethertype;  ///< of what follows the tag
};
static_assert(sizeof(vlan_header) == 4 && alignof(vlan_header) == 1);
static_assert(std::is_standard_layout_v<vlan_header>);

template <detail::wire_byte Byte>
class basic_vlan_view {
 public:
  static constexpr std::size_t header_len = sizeof(vlan_header);

  [[nodiscard]] static constexpr basic_vlan_view unchecked(std::span<Byte> b) noexcept {
    return basic_vlan_view{b};
  }
  /// Errors: truncated_vlan.
  [[nodiscard]] static expected<basic_vlan_view, drop_reason> make(std::span<Byte> b) noexcept {
    if (b.size() < header_len) return unexpected{drop_reason::truncated_vlan};
    return basic_vlan_view{b};
  }

  [[nodiscard]] std::uint16_t tci() const noexcept {
    return detail::load_be16(bytes_.data() + offsetof(vlan_header, tci));
  }
  /// Priority code point (802.1p), 0..7.
  [[nodiscard]] std::uint8_t pcp() const noexcept { return static_cast<std::uint8_t>(tci() >> 13); }
  /// Drop eligible indicator (was CFI).
  [[nodiscard]] bool dei() const noexcept { return (tci() & 0x1000u) != 0; }
  /// VLAN identifier, 0..4095.
  [[nodiscard]] std::uint16_t vid() const noexcept {
    return static_cast<std::uint16_t>(tci() & 0x0fffu);
  }
  [[nodiscard]] std::uint16_t ethertype() const noexcept {
    return detail::load_be16(bytes_.data() + offsetof(vlan_header, ethertype));
  }

  void set_tci(std::uint16_t v) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    detail::store_be16(bytes_.data() + offsetof(vlan_header, tci), v);
  }
  void set_pcp(std::uint8_t v) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    set_tci(static_cast<std::uint16_t>((tci() & 0x1fffu) | ((v & 7u) << 13)));
  }
  void set_dei(bool v) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    set_tci(static_cast<std::uint16_t>((tci() & ~0x1000u) | (v ? 0x1000u : 0u)));
  }
  void set_vid(std::uint16_t v) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    set_tci(static_cast<std::uint16_t>((tci() & 0xf000u) | (v & 0x0fffu)));
  }
  void set_ethertype(std::uint16_t v) const noexcept
    requires(!std::is_const_v<Byte>)
  {
    detail::store_be16(bytes_.data() + offsetof(vlan_header, ethertype), v);
  }

  [[nodiscard]] std::span<Byte> payload() const noexcept { return bytes_.subspan(header_len); }
  [[nodiscard]] std::span<Byte> bytes() const noexcept { return bytes_; }

 private:
  explicit constexpr basic_vlan_view(std::span<Byte> b) noexcept : bytes_(b) {}
  std::span<Byte> bytes_;
};

using vlan_view = basic_vlan_view<const std::byte>;
using vlan_mut_view = basic_vlan_view<std::byte>;

struct vlan_repr {
  std::uint8_t pcp = 0;
  bool dei = false;
  std::uint16_t vid = 0;
  std::uint16_t ethertype = 0;  ///< of what follows the tag

  static constexpr std::size_t buffer_len = vlan_view::header_len;

  template <class Byte>
  [[nodiscard]] static vlan_repr parse(basic_vlan_view<Byte> v) noexcept {
    return {v.pcp(), v.dei(), v.vid(), v.ethertype()};
  }
  void emit(vlan_mut_view v) const noexcept {
    v.set_tci(static_cast<std::uint16_t>(((pcp & 7u) << 13) | (dei ? 0x1000u : 0u) | (vid & 0xfffu)));
    v.set_ethertype(ethertype);
  }

  friend constexpr bool operator==(const vlan_repr&, const vlan_repr&) = default;
};

}  // namespace l4lb::wire
