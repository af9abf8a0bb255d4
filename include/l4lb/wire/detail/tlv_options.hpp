// A bounds-safe walker over kind-length-value options, the format shared by IPv4 options
// (RFC 791 section 3.1) and TCP options (RFC 9293 section 3.1): kind 0 ends the list, kind 1 is a
// one-byte pad, every other option has a length byte that counts the kind and length bytes too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>

#include "l4lb/wire/detail/byte_access.hpp"

namespace l4lb::wire {

/// One option with a length byte. `data` is the value (after kind and length); `offset` is the
/// kind byte's position inside the options area.
template <detail::wire_byte Byte>
struct tlv_option {
  std::uint8_t kind = 0;
  std::span<Byte> data;
  std::size_t offset = 0;
};

namespace detail {

enum class tlv_step : std::uint8_t { option, end, malformed };

/// Advances from `pos` past padding to the next option. End of list: kind 0 or the end of the
/// area. Malformed: a length byte missing, below 2, or reaching past the area.
template <wire_byte Byte>
tlv_step next_tlv(std::span<Byte> area, std::size_t& pos, tlv_option<Byte>& out) noexcept {
  while (pos < area.size()) {
    const std::uint8_t kind = load_u8(area.data() + pos);
    if (kind == 0) {
      pos = area.size();
      return tlv_step::end;
    }
    if (kind == 1) {
      ++pos;
      continue;
    }
    if (area.size() - pos < 2) return tlv_step::malformed;
    const std::size_t len = load_u8(area.data() + pos + 1);
    if (len < 2 || len > area.size() - pos) return tlv_step::malformed;
    out = tlv_option<Byte>{kind, area.subspan(pos + 2, len - 2), pos};
    pos += len;
    return tlv_step::option;
  }
  return tlv_step::end;
}

}  // namespace detail

/// The options of one header, as a range of tlv_option (padding skipped). Iteration stops at the
/// end-of-list option, at the end of the area, or at the first malformed option; is_malformed()
/// tells the last case apart.
template <detail::wire_byte Byte>
class tlv_options {
 public:
  class iterator {
   public:
    using value_type = tlv_option<Byte>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(std::span<Byte> area) noexcept : area_(area) { advance(); }

    const value_type& operator*() const noexcept { return current_; }
    const value_type* operator->() const noexcept { return &current_; }
    iterator& operator++() noexcept {
      advance();
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      advance();
      return old;
    }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.done_; }

   private:
    void advance() noexcept {
      done_ = detail::next_tlv(area_, pos_, current_) != detail::tlv_step::option;
    }
    std::span<Byte> area_;
    std::size_t pos_ = 0;
    value_type current_{};
    bool done_ = true;
  };

  explicit constexpr tlv_options(std::span<Byte> area) noexcept : area_(area) {}

  [[nodiscard]] iterator begin() const noexcept { return iterator{area_}; }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

  /// True if walking the list meets an option whose length is missing, < 2, or too long.
  [[nodiscard]] bool is_malformed() const noexcept {
    std::size_t pos = 0;
    tlv_option<Byte> o;
    detail::tlv_step s;
    while ((s = detail::next_tlv(area_, pos, o)) == detail::tlv_step::option) {
    }
    return s == detail::tlv_step::malformed;
  }

  /// The first well-formed option of this kind, if any comes before the list ends.
  [[nodiscard]] std::optional<tlv_option<Byte>> find(std::uint8_t kind) const noexcept {
    for (const auto& o : *this)
      if (o.kind == kind) return o;
    return std::nullopt;
  }

  [[nodiscard]] std::span<Byte> bytes() const noexcept { return area_; }

 private:
  std::span<Byte> area_;
};

}  // namespace l4lb::wire
