// A hashed timing wheel (Varghese & Lauck, scheme 6) over small integer items — here the groups
// of 15 slots of a table, not single connections: a group is armed at the earliest deadline of
// its members and, when due, is scanned whole. Links live with the items (intrusive), so the
// wheel itself is one bucket array and a bitmap of non-empty buckets. Work per poll is bounded.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "l4lb/conn/timeouts.hpp"

namespace l4lb::conn {

/// Per-item wheel state, stored by the owner of the items.
struct wheel_links {
  static constexpr std::uint32_t nil = 0xFFFF'FFFFu;
  static constexpr std::uint32_t unlinked = 0xFFFF'FFFEu;
  std::uint32_t next = nil;
  std::uint32_t prev = unlinked;  // nil: first in its bucket; unlinked: not armed
  std::uint32_t deadline = 0;     // tick at which the item wants to be visited
};

struct poll_result {
  std::uint32_t visited = 0;  // items examined (the budget spent)
  bool caught_up = true;      // false: the budget ran out before every due item was visited
};

class timer_wheel {
 public:
  timer_wheel() = default;
  /// `buckets` is rounded up to a power of two (at least 64). Control plane; may throw.
  explicit timer_wheel(std::uint32_t buckets)
      : bucket_count_(std::bit_ceil(buckets < 64 ? 64u : buckets)),
        heads_(new std::uint32_t[bucket_count_]),
        nonempty_(new std::uint64_t[bucket_count_ / 64]()) {
    for (std::uint32_t i = 0; i < bucket_count_; ++i) heads_[i] = wheel_links::nil;
  }

  [[nodiscard]] std::uint32_t bucket_count() const noexcept { return bucket_count_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return std::size_t{bucket_count_} * 4 + std::size_t{bucket_count_} / 64 * 8;
  }

  /// Makes sure `item` is visited no later than `deadline`: links it if unarmed, moves it if it
  /// is armed later, leaves it if armed earlier (it will be re-armed from its members then).
  template <class Links>
  void arm(Links&& links, std::uint32_t item, std::uint32_t deadline,
           std::uint32_t now_tick) noexcept {
    start(now_tick);
    wheel_links& l = links(item);
    if (l.prev != wheel_links::unlinked) {
      if (static_cast<std::int32_t>(deadline - l.deadline) >= 0) return;
      unlink(links, item);
    }
    link(links, item, deadline);
  }

  template <class Links>
  void disarm(Links&& links, std::uint32_t item) noexcept {
    if (links(item).prev != wheel_links::unlinked) unlink(links, item);
  }

  /// Visits items whose deadline has been reached at `now_tick`, at most `budget` items
  /// (due or not) per call. Each due item is unlinked and handed to `fire(item)`, which may
  /// re-arm that item (and no other). The bucket in hand is detached first, so every visit is
  /// progress even when a call stops half-way: the next call resumes where it stopped. Empty
  /// buckets are skipped through the bitmap; a gap of a whole revolution or more costs one pass
  /// over the buckets.
  template <class Links, class Fire>
  poll_result poll(Links&& links, std::uint32_t now_tick, std::uint32_t budget,
                   Fire&& fire) noexcept {
    poll_result r;
    start(now_tick);
    for (;;) {
      while (pending_ != wheel_links::nil) {
        if (r.visited == budget) {
          r.caught_up = false;
          return r;
        }
        ++r.visited;
        const std::uint32_t it = pending_;
        wheel_links& l = links(it);
        pending_ = l.next;
        if (pending_ != wheel_links::nil) links(pending_).prev = wheel_links::nil;
        l.prev = wheel_links::unlinked;
        l.next = wheel_links::nil;
        if (tick_reached(l.deadline, now_tick))
          fire(it);
        else
          link(links, it, l.deadline);  // a later revolution: back into its bucket
      }
      if (in_hand_) {
        ++cursor_;
        in_hand_ = false;
      }
      if (static_cast<std::int32_t>(now_tick - cursor_) < 0) break;
      // Buckets repeat every revolution and each visit compares with now, so one revolution
      // back from now covers everything older.
      if (now_tick - cursor_ >= bucket_count_) cursor_ = now_tick - (bucket_count_ - 1);
      const std::uint32_t skip = distance_to_nonempty(cursor_ & (bucket_count_ - 1));
      if (skip > now_tick - cursor_) {
        cursor_ = now_tick + 1;
        break;
      }
      cursor_ += skip;
      const std::uint32_t b = cursor_ & (bucket_count_ - 1);
      pending_ = heads_[b];
      heads_[b] = wheel_links::nil;
      nonempty_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
      in_hand_ = true;
    }
    return r;
  }

 private:
  void start(std::uint32_t now_tick) noexcept {
    if (!started_) {
      cursor_ = now_tick;
      started_ = true;
    }
  }

  template <class Links>
  void link(Links&& links, std::uint32_t item, std::uint32_t deadline) noexcept {
    wheel_links& l = links(item);
    // A deadline the cursor has passed is filed at the cursor: visited at the next poll. The
    // stored deadline is the filing tick, so the bucket is always deadline % bucket_count.
    l.deadline = static_cast<std::int32_t>(deadline - cursor_) < 0 ? cursor_ : deadline;
    const std::uint32_t b = l.deadline & (bucket_count_ - 1);
    l.prev = wheel_links::nil;
    l.next = heads_[b];
    if (l.next != wheel_links::nil) links(l.next).prev = item;
    heads_[b] = item;
    nonempty_[b / 64] |= std::uint64_t{1} << (b % 64);
  }

  template <class Links>
  void unlink(Links&& links, std::uint32_t item) noexcept {
    wheel_links& l = links(item);
    if (l.next != wheel_links::nil) links(l.next).prev = l.prev;
    if (l.prev != wheel_links::nil) {
      links(l.prev).next = l.next;
    } else if (pending_ == item) {
      pending_ = l.next;
    } else {
      const std::uint32_t b = l.deadline & (bucket_count_ - 1);
      heads_[b] = l.next;
      if (l.next == wheel_links::nil) nonempty_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
    }
    l.prev = wheel_links::unlinked;
    l.next = wheel_links::nil;
  }

  // Buckets from b (inclusive) to the next non-empty one, circularly; bucket_count_ if none.
  [[nodiscard]] std::uint32_t distance_to_nonempty(std::uint32_t b) const noexcept {
    const std::uint32_t words = bucket_count_ / 64;
    std::uint32_t w = b / 64;
    std::uint64_t bits = nonempty_[w] & (~std::uint64_t{0} << (b % 64));
    for (std::uint32_t n = 0; n <= words; ++n) {
      if (bits != 0) {
        const std::uint32_t found = w * 64 + static_cast<std::uint32_t>(std::countr_zero(bits));
        return (found - b) & (bucket_count_ - 1);
      }
      w = (w + 1) % words;
      bits = nonempty_[w];
    }
    return bucket_count_;
  }

  std::uint32_t bucket_count_ = 0;
  std::unique_ptr<std::uint32_t[]> heads_;
  std::unique_ptr<std::uint64_t[]> nonempty_;
  std::uint32_t cursor_ = 0;  // next tick to visit (or the one in hand)
  std::uint32_t pending_ = wheel_links::nil;  // unvisited rest of the bucket in hand
  bool in_hand_ = false;
  bool started_ = false;
};

}  // namespace l4lb::conn
