// Fixed-capacity open-addressing storage in groups of 15 slots, after Boost's FOA tables
// (boost/unordered/detail/foa/core.hpp): a 16-byte metadata word per group holds 15 reduced
// hashes and one overflow byte, and a lookup that misses stops at the first group whose overflow
// bit for its hash class is clear. No tombstones. Because this table never rehashes, each
// overflow bit is backed by a small count, so erasing an element clears the bits it set.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace l4lb::conn::detail {

inline constexpr std::uint32_t group_width = 15;
inline constexpr std::uint32_t npos32 = 0xFFFF'FFFFu;

/// Byte i < 15: 0 = empty slot, else the slot's reduced hash (1..255). Byte 15: overflow bits,
/// bit c set when some element of hash class c (hash bits 8..10) was placed past this group.
struct alignas(16) group_meta {
  std::uint8_t bytes[16];

  [[nodiscard]] std::uint32_t match(std::uint8_t reduced) const noexcept {
#if defined(__SSE2__)
    // Our own 16-aligned storage: the intrinsic load is the defined way to read it as a vector.
    const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(bytes));
    const __m128i eq = _mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(reduced)));
    return static_cast<std::uint32_t>(_mm_movemask_epi8(eq)) & 0x7FFFu;
#else
    std::uint32_t m = 0;
    for (std::uint32_t i = 0; i < group_width; ++i)
      m |= static_cast<std::uint32_t>(bytes[i] == reduced) << i;
    return m;
#endif
  }
  [[nodiscard]] std::uint32_t match_empty() const noexcept { return match(0); }
  [[nodiscard]] std::uint32_t match_occupied() const noexcept { return ~match_empty() & 0x7FFFu; }
  [[nodiscard]] bool overflowed(std::uint32_t hash_class) const noexcept {
    return (bytes[15] >> hash_class) & 1u;
  }
};
static_assert(sizeof(group_meta) == 16);

/// The tail of a group that needs nothing more.
struct no_tail {};

/// One group. The bookkeeping sits right after the metadata, so an insert (metadata, overflow
/// counts, timer links) touches the metadata's cache line and the slot's, nothing else.
template <class Slot, class Tail>
struct slot_group {
  group_meta meta{};
  /// Eight 4-bit saturating counts, one per hash class: how many live elements of that class
  /// were placed past this group. A count that reached 15 stays (its bit stays set).
  std::uint32_t overflow_counts = 0;
  [[no_unique_address]] Tail tail{};
  Slot slots[group_width]{};
};

/// The slot-level mechanics shared by the connection table, its NAT reply index and the
/// persistence templates. Positions (refs) are group * 15 + slot and never move.
template <class Slot, class Tail>
class group_storage {
 public:
  using group_type = slot_group<Slot, Tail>;

  group_storage() = default;
  /// Allocates `groups` empty groups from `memory` (the default: new/delete). Control plane;
  /// may throw std::bad_alloc.
  explicit group_storage(std::uint32_t groups, std::pmr::memory_resource* memory = nullptr)
      : memory_(memory ? memory : std::pmr::new_delete_resource()), group_count_(groups) {
    if (groups == 0) return;
    void* p = memory_->allocate(bytes(), alignof(group_type));
    groups_ = static_cast<group_type*>(p);
    std::uninitialized_value_construct_n(groups_, group_count_);
  }
  group_storage(group_storage&& o) noexcept
      : memory_(o.memory_),
        groups_(std::exchange(o.groups_, nullptr)),
        group_count_(std::exchange(o.group_count_, 0)) {}
  group_storage& operator=(group_storage&& o) noexcept {
    if (this != &o) {
      release_all();
      memory_ = o.memory_;
      groups_ = std::exchange(o.groups_, nullptr);
      group_count_ = std::exchange(o.group_count_, 0);
    }
    return *this;
  }
  group_storage(const group_storage&) = delete;
  group_storage& operator=(const group_storage&) = delete;
  ~group_storage() { release_all(); }

  [[nodiscard]] std::uint32_t group_count() const noexcept { return group_count_; }
  [[nodiscard]] std::uint32_t slot_count() const noexcept { return group_count_ * group_width; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return bytes(); }
  [[nodiscard]] bool empty_storage() const noexcept { return group_count_ == 0; }

  [[nodiscard]] static constexpr std::uint8_t reduced_hash(std::uint64_t h) noexcept {
    const auto r = static_cast<std::uint8_t>(h);
    return static_cast<std::uint8_t>(r + (r == 0));
  }
  [[nodiscard]] static constexpr std::uint32_t hash_class(std::uint64_t h) noexcept {
    return static_cast<std::uint32_t>(h >> 8) & 7u;
  }
  /// Lemire's multiply-shift range reduction on the high half: any group count, no modulo.
  [[nodiscard]] std::uint32_t home(std::uint64_t h) const noexcept {
    return static_cast<std::uint32_t>(((h >> 32) * group_count_) >> 32);
  }
  [[nodiscard]] std::uint32_t next(std::uint32_t g) const noexcept {
    return g + 1 == group_count_ ? 0 : g + 1;
  }

  [[nodiscard]] group_type& group(std::uint32_t g) noexcept { return groups_[g]; }
  [[nodiscard]] const group_type& group(std::uint32_t g) const noexcept { return groups_[g]; }
  [[nodiscard]] static constexpr std::uint32_t group_of(std::uint32_t ref) noexcept {
    return ref / group_width;
  }
  [[nodiscard]] static constexpr std::uint32_t index_in_group(std::uint32_t ref) noexcept {
    return ref % group_width;
  }
  [[nodiscard]] Slot& slot(std::uint32_t ref) noexcept {
    return groups_[group_of(ref)].slots[index_in_group(ref)];
  }
  [[nodiscard]] const Slot& slot(std::uint32_t ref) const noexcept {
    return groups_[group_of(ref)].slots[index_in_group(ref)];
  }
  [[nodiscard]] bool occupied(std::uint32_t ref) const noexcept {
    return groups_[group_of(ref)].meta.bytes[index_in_group(ref)] != 0;
  }

  void prefetch_group(std::uint32_t g) const noexcept {
    __builtin_prefetch(&groups_[g].meta, 0, 3);
  }
  /// Both ends of the slot: a slot may straddle two cache lines.
  static void prefetch_slot(const Slot& s) noexcept {
    const auto* p = reinterpret_cast<const char*>(&s);
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + sizeof(Slot) - 1, 0, 3);
  }

  /// First slot on h's probe path for which `eq(slot)` holds, or npos32. `eq` sees only slots
  /// whose reduced hash matches.
  template <class Eq>
  [[nodiscard]] std::uint32_t find(std::uint64_t h, Eq&& eq) const noexcept {
    if (group_count_ == 0) return npos32;
    return find_from(home(h), h, eq);
  }
  template <class Eq>
  [[nodiscard]] std::uint32_t find_from(std::uint32_t g, std::uint64_t h, Eq&& eq) const noexcept {
    const std::uint8_t rh = reduced_hash(h);
    const std::uint32_t cls = hash_class(h);
    for (std::uint32_t probes = 0; probes < group_count_; ++probes) {
      const group_type& grp = groups_[g];
      if (const std::uint32_t i = match_in(grp, grp.meta.match(rh), eq); i != npos32)
        return g * group_width + i;
      if (!grp.meta.overflowed(cls)) return npos32;
      g = next(g);
    }
    return npos32;
  }
  /// The first slot of `grp` among `candidates` (a match() mask) for which eq(slot) holds.
  template <class Eq>
  [[nodiscard]] static std::uint32_t match_in(const group_type& grp, std::uint32_t candidates,
                                              Eq&& eq) noexcept {
    for (; candidates != 0; candidates &= candidates - 1) {
      const auto i = static_cast<std::uint32_t>(std::countr_zero(candidates));
      if (eq(grp.slots[i])) return i;
    }
    return npos32;
  }

  /// Takes the first empty slot on h's probe path and marks it with h; counts an overflow in
  /// every full group passed. Precondition: an empty slot exists (the owner keeps the load
  /// below 1).
  std::uint32_t claim(std::uint64_t h) noexcept {
    const std::uint32_t cls = hash_class(h);
    std::uint32_t g = home(h);
    for (;;) {
      group_type& grp = groups_[g];
      const std::uint32_t empty = grp.meta.match_empty();
      if (empty != 0) {
        const auto i = static_cast<std::uint32_t>(std::countr_zero(empty));
        grp.meta.bytes[i] = reduced_hash(h);
        return g * group_width + i;
      }
      const std::uint32_t shift = cls * 4;
      const std::uint32_t count = (grp.overflow_counts >> shift) & 0xFu;
      if (count < 15) grp.overflow_counts += 1u << shift;
      grp.meta.bytes[15] = static_cast<std::uint8_t>(grp.meta.bytes[15] | (1u << cls));
      g = next(g);
    }
  }

  /// Frees `ref`, whose element hashed to h, and withdraws the overflow marks it left on the
  /// groups before it (a saturated count keeps its bit).
  void release(std::uint32_t ref, std::uint64_t h) noexcept {
    const std::uint32_t at = group_of(ref);
    groups_[at].meta.bytes[index_in_group(ref)] = 0;
    const std::uint32_t cls = hash_class(h);
    const std::uint32_t shift = cls * 4;
    for (std::uint32_t g = home(h); g != at; g = next(g)) {
      group_type& grp = groups_[g];
      const std::uint32_t count = (grp.overflow_counts >> shift) & 0xFu;
      if (count == 15 || count == 0) continue;  // saturated: sticky; 0 cannot happen
      grp.overflow_counts -= 1u << shift;
      if (count == 1)
        grp.meta.bytes[15] = static_cast<std::uint8_t>(grp.meta.bytes[15] & ~(1u << cls));
    }
  }

 private:
  [[nodiscard]] std::size_t bytes() const noexcept {
    return std::size_t{group_count_} * sizeof(group_type);
  }
  void release_all() noexcept {
    static_assert(std::is_trivially_destructible_v<group_type>);
    if (groups_) memory_->deallocate(groups_, bytes(), alignof(group_type));
    groups_ = nullptr;
  }

  std::pmr::memory_resource* memory_ = std::pmr::new_delete_resource();
  group_type* groups_ = nullptr;
  std::uint32_t group_count_ = 0;
};

/// Groups needed to hold `capacity` elements at a maximum load of 7/8 (Boost FOA's mlf).
[[nodiscard]] constexpr std::uint32_t groups_for(std::uint32_t capacity) noexcept {
  // capacity / (15 * 7/8) = capacity * 8 / 105, rounded up.
  return static_cast<std::uint32_t>((std::uint64_t{capacity} * 8 + 104) / 105);
}

}  // namespace l4lb::conn::detail
