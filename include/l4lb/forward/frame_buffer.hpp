// frame_buffer: the caller's storage with a frame somewhere inside it, headroom before and
// tailroom after. Rewriters may move the frame's start into the headroom (encapsulation) or trim
// it; they never touch a byte outside storage(). Moves that do not fit fail without side effects.
#pragma once

#include <cstddef>
#include <span>

#include "l4lb/expected.hpp"
#include "l4lb/forward/forward_error.hpp"

namespace l4lb::forward {

class frame_buffer {
 public:
  constexpr frame_buffer() noexcept = default;

  /// `storage` is everything a rewriter may touch; the frame is `frame_len` bytes after
  /// `headroom` bytes of it. Errors: truncated (headroom + frame_len > storage.size()).
  [[nodiscard]] static constexpr expected<frame_buffer, forward_error> make(
      std::span<std::byte> storage, std::size_t headroom, std::size_t frame_len) noexcept {
    if (headroom > storage.size() || frame_len > storage.size() - headroom)
      return unexpected{forward_error::truncated};
    frame_buffer b;
    b.storage_ = storage;
    b.offset_ = headroom;
    b.len_ = frame_len;
    return b;
  }

  [[nodiscard]] constexpr std::span<std::byte> storage() const noexcept { return storage_; }
  [[nodiscard]] constexpr std::span<std::byte> frame() const noexcept {
    return storage_.subspan(offset_, len_);
  }
  [[nodiscard]] constexpr std::size_t headroom() const noexcept { return offset_; }
  [[nodiscard]] constexpr std::size_t tailroom() const noexcept {
    return storage_.size() - offset_ - len_;
  }
  [[nodiscard]] constexpr std::size_t frame_offset() const noexcept { return offset_; }
  [[nodiscard]] constexpr std::size_t frame_len() const noexcept { return len_; }

  /// Makes the frame storage[offset, offset + len). False (and no change) if it does not fit.
  [[nodiscard]] constexpr bool set_frame(std::size_t offset, std::size_t len) noexcept {
    if (offset > storage_.size() || len > storage_.size() - offset) return false;
    offset_ = offset;
    len_ = len;
    return true;
  }
  /// Extends the frame `n` bytes into the headroom. False (no change) if the headroom is smaller.
  [[nodiscard]] constexpr bool push_front(std::size_t n) noexcept {
    if (n > offset_) return false;
    offset_ -= n;
    len_ += n;
    return true;
  }
  /// Drops `n` bytes from the frame's front (they become headroom).
  [[nodiscard]] constexpr bool pull_front(std::size_t n) noexcept {
    if (n > len_) return false;
    offset_ += n;
    len_ -= n;
    return true;
  }
  /// Extends the frame `n` bytes into the tailroom.
  [[nodiscard]] constexpr bool push_back(std::size_t n) noexcept {
    if (n > tailroom()) return false;
    len_ += n;
    return true;
  }
  /// Drops `n` bytes from the frame's end (they become tailroom).
  [[nodiscard]] constexpr bool trim_back(std::size_t n) noexcept {
    if (n > len_) return false;
    len_ -= n;
    return true;
  }

  /// Whether `s` is exactly the current frame (a packet_view parsed from it refers to it).
  [[nodiscard]] constexpr bool is_frame(std::span<const std::byte> s) const noexcept {
    return s.data() == storage_.data() + offset_ && s.size() == len_;
  }

 private:
  std::span<std::byte> storage_;
  std::size_t offset_ = 0;
  std::size_t len_ = 0;
};

}  // namespace l4lb::forward
