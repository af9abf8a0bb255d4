// lblc: IPVS's locality-based least-connection scheduler (net/netfilter/ipvs/ip_vs_lblc.c), for
// cache clusters: a destination address keeps going to the real server it went to last, unless
// that server is gone or overloaded; then the least-loaded server (weighted) takes it over.
// Also the parts lblcr (locality_least_connection_replicated.hpp) shares: the fixed-capacity
// address cache with IPVS's garbage-collection timer, driven by the caller's clock.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/ipvs_hash.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"
#include "l4lb/sched/scheduler_options.hpp"

namespace l4lb::sched {

struct locality_options {
  /// net.ipv4.vs.lblc_expiration / lblcr_expiration: an entry unused this long is dropped by the
  /// half-hourly full check (default 24 h).
  std::int64_t expiration_ns = std::int64_t{24} * 3600 * 1'000'000'000;
  /// CONFIG_IP_VS_LBLC_TAB_BITS / CONFIG_IP_VS_LBLCR_TAB_BITS: 2^bits buckets (1..20, default 10).
  /// IPVS starts collecting idle entries above 16 * 2^bits entries.
  unsigned table_bits = 10;
  /// Entries that can be stored (IPVS allocates per entry; we reserve at construction).
  /// 0 = 2 * 16 * 2^table_bits; at most 2 * 16 * 2^20. A new entry that does not fit is not cached (counted in
  /// cache_full()), which is what IPVS does when its allocation fails: the pick still stands.
  std::uint32_t capacity = 0;
  /// lblcr only: server-set members that can be stored over all entries; 0 = 2 * capacity; at
  /// most 2 * 2 * 16 * 2^20.
  /// A member that does not fit is not added (counted in cache_full()), as on IPVS's failed
  /// allocation.
  std::uint32_t member_capacity = 0;
};

namespace detail {

inline constexpr std::int64_t locality_check_interval_ns = std::int64_t{60} * 1'000'000'000;
inline constexpr std::int64_t locality_entry_timeout_ns = std::int64_t{6} * 60 * 1'000'000'000;
inline constexpr int locality_count_for_full_expiration = 30;

__extension__ using locality_u128 = unsigned __int128;

/// __ip_vs_lblc_schedule / __ip_vs_lblcr_schedule: weighted least connection over the service.
/// The seed is the first server (list order) that is not overloaded and has weight > 0; a later
/// server that is not overloaded replaces it when overhead(least) * w(d) > overhead(d) * w(least)
/// (strict, so ties keep the earlier server; a weight-0 server can never win).
[[nodiscard]] inline dest_id locality_wlc(std::span<const real_server> dests) noexcept {
  std::size_t i = 0;
  for (; i < dests.size(); ++i)
    if (!dests[i].overloaded && dests[i].weight > 0) break;
  if (i == dests.size()) return no_dest;
  std::size_t least = i;
  std::uint64_t loh = dests[i].overhead();
  std::uint64_t lw = dests[i].weight;
  for (++i; i < dests.size(); ++i) {
    const real_server& d = dests[i];
    if (d.overloaded) continue;
    const std::uint64_t doh = d.overhead();
    // A branch, not a conditional move: replacements are rare, and a cmov chain through
    // (least, loh, lw) would serialise the scan.
    if (locality_u128{loh} * d.weight > locality_u128{doh} * lw) [[unlikely]] {
      least = i;
      loh = doh;
      lw = d.weight;
    }
  }
  return static_cast<dest_id>(least);
}

/// is_overloaded() of ip_vs_lblc.c / ip_vs_lblcr.c (not the OVERLOAD flag): more active
/// connections than its weight while some server of the service (list order, any) has
/// 2 * active < weight.
[[nodiscard]] inline bool locality_overloaded(std::span<const real_server> dests,
                                              const real_server& d) noexcept {
  if (d.active_conns <= d.weight) return false;
  for (const real_server& m : dests)
    if (std::uint64_t{m.active_conns} * 2 < m.weight) return true;
  return false;
}

/// The destination-address cache of lblc/lblcr: 2^bits hash chains (bucket hash_32(fold(addr),
/// bits), new entries at the head) over a pool of `capacity` entries reserved up front, and the
/// periodic collection of ip_vs_lblc_check_expire / ip_vs_lblcr_check_expire. The kernel runs it
/// from a 60 s timer started with the service; here it runs from `catch_up(now)` (called by every
/// pick and by the policies' collect()), which plays every 60 s tick that fell due since the last
/// call at its own time, so the outcome is the kernel's. A long idle gap costs O(1) for the ticks
/// that only count and one full sweep for the full checks it spans (later ones remove a superset
/// of what earlier ones would, and leave the rover where it was).
template <class Payload>
class locality_cache {
 public:
  static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();

  struct entry {
    std::array<std::uint8_t, 16> addr{};
    std::int64_t lastuse = 0;
    std::uint32_t next = none;
    wire::ip_family family = wire::ip_family::v4;
    bool used = false;
    Payload payload{};
  };

  locality_cache(unsigned bits, std::uint32_t capacity, std::int64_t expiration_ns)
      : bits_(bits), expiration_ns_(expiration_ns) {
    buckets_.assign(std::size_t{1} << bits, none);
    max_size_ = std::uint32_t{16} << bits;
    entries_.resize(capacity != 0 ? capacity : 2 * max_size_);
    clear();
  }

  void clear() noexcept {
    std::fill(buckets_.begin(), buckets_.end(), none);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      entries_[i].used = false;
      entries_[i].next = i + 1 < entries_.size() ? static_cast<std::uint32_t>(i + 1) : none;
    }
    free_ = entries_.empty() ? none : 0;
    size_ = 0;
    counter_ = 1;
    rover_ = 0;
    clock_started_ = false;
    next_tick_ = 0;
  }

  [[nodiscard]] std::uint32_t find(wire::ip_family family, const std::uint8_t* addr) const noexcept {
    for (std::uint32_t e = buckets_[bucket_of(family, addr)]; e != none; e = entries_[e].next)
      if (entries_[e].family == family &&
          std::memcmp(entries_[e].addr.data(), addr, byte_size(family)) == 0)
        return e;
    return none;
  }

  /// A new entry at its bucket's head, or `none` when the pool is used up.
  std::uint32_t insert(wire::ip_family family, const std::uint8_t* addr,
                       std::int64_t now) noexcept {
    if (free_ == none) {
      ++full_;
      return none;
    }
    const std::uint32_t e = free_;
    entry& en = entries_[e];
    free_ = en.next;
    en.addr = {};
    std::memcpy(en.addr.data(), addr, byte_size(family));
    en.family = family;
    en.lastuse = now;
    en.used = true;
    en.payload = Payload{};
    std::uint32_t& head = buckets_[bucket_of(family, addr)];
    en.next = head;
    head = e;
    ++size_;
    return e;
  }

  [[nodiscard]] entry& at(std::uint32_t e) noexcept { return entries_[e]; }
  [[nodiscard]] const entry& at(std::uint32_t e) const noexcept { return entries_[e]; }

  /// Visits every entry in use (control plane: position fix-ups).
  template <class F>
  void for_each(F&& f) {
    for (entry& en : entries_)
      if (en.used) f(en);
  }

  /// Starts the 60 s timer at `now` unless it runs already (the kernel starts it with the service).
  void start_clock(std::int64_t now) noexcept {
    if (clock_started_) return;
    clock_started_ = true;
    next_tick_ = now + locality_check_interval_ns;
  }

  /// Plays the timer ticks due at or before `now`; on_erase(entry&) runs for each dropped entry.
  template <class OnErase>
  void catch_up(std::int64_t now, OnErase&& on_erase) noexcept {
    if (!clock_started_) {
      start_clock(now);
      return;
    }
    while (next_tick_ <= now) {
      if (size_ <= max_size_) {
        // Until `now` every tick either counts or runs a full check (entries only shrink here).
        const std::int64_t due = (now - next_tick_) / locality_check_interval_ns + 1;
        const int c = counter_ % locality_count_for_full_expiration;
        const std::int64_t before_full = c == 0 ? 0 : locality_count_for_full_expiration - c;
        if (due <= before_full) {
          counter_ += static_cast<int>(due);
        } else {
          const std::int64_t last_full =
              before_full + locality_count_for_full_expiration *
                                ((due - 1 - before_full) / locality_count_for_full_expiration);
          full_check(next_tick_ + last_full * locality_check_interval_ns, on_erase);
          counter_ = 1 + static_cast<int>(due - 1 - last_full);
        }
        next_tick_ += due * locality_check_interval_ns;
        return;
      }
      tick(next_tick_, on_erase);
      next_tick_ += locality_check_interval_ns;
    }
  }

  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] std::uint32_t capacity() const noexcept {
    return static_cast<std::uint32_t>(entries_.size());
  }
  /// IPVS's max_size: above it, idle entries are collected every minute.
  [[nodiscard]] std::uint32_t max_size() const noexcept { return max_size_; }
  [[nodiscard]] std::uint64_t full_count() const noexcept { return full_; }
  [[nodiscard]] bool clock_started() const noexcept { return clock_started_; }
  [[nodiscard]] std::int64_t next_tick() const noexcept { return next_tick_; }

 private:
  static std::size_t byte_size(wire::ip_family f) noexcept {
    return f == wire::ip_family::v4 ? 4 : 16;
  }
  std::uint32_t bucket_of(wire::ip_family family, const std::uint8_t* addr) const noexcept {
    return ipvs::hash_32(ipvs::fold_address(family, addr), bits_);
  }

  // Removes the entries of bucket j idle since `t - idle` or longer; returns how many.
  template <class OnErase>
  std::uint32_t sweep_bucket(std::uint32_t j, std::int64_t t, std::int64_t idle,
                             OnErase& on_erase) noexcept {
    std::uint32_t removed = 0;
    std::uint32_t* link = &buckets_[j];
    while (*link != none) {
      const std::uint32_t e = *link;
      entry& en = entries_[e];
      if (t < en.lastuse + idle) {  // time_before(now, lastuse + timeout): keep
        link = &en.next;
        continue;
      }
      *link = en.next;
      on_erase(en);
      en.used = false;
      en.next = free_;
      free_ = e;
      --size_;
      ++removed;
    }
    return removed;
  }

  template <class OnErase>
  void full_check(std::int64_t t, OnErase& on_erase) noexcept {
    const std::uint32_t mask = static_cast<std::uint32_t>(buckets_.size() - 1);
    std::uint32_t j = rover_;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      j = (j + 1) & mask;
      sweep_bucket(j, t, expiration_ns_, on_erase);
    }
    rover_ = j;
  }

  // One timer run (ip_vs_lblc_check_expire).
  template <class OnErase>
  void tick(std::int64_t t, OnErase& on_erase) noexcept {
    if (counter_ % locality_count_for_full_expiration == 0) {
      full_check(t, on_erase);
      counter_ = 1;
      return;
    }
    if (size_ <= max_size_) {
      ++counter_;
      return;
    }
    std::int64_t goal = (std::int64_t{size_} - max_size_) * 4 / 3;
    if (goal > max_size_ / 2) goal = max_size_ / 2;
    const std::uint32_t mask = static_cast<std::uint32_t>(buckets_.size() - 1);
    std::uint32_t j = rover_;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      j = (j + 1) & mask;
      goal -= sweep_bucket(j, t, locality_entry_timeout_ns, on_erase);
      if (goal <= 0) break;
    }
    rover_ = j;
  }

  std::vector<std::uint32_t> buckets_;
  std::vector<entry> entries_;
  unsigned bits_;
  std::int64_t expiration_ns_;
  std::uint32_t max_size_ = 0;
  std::uint32_t free_ = none;
  std::uint32_t size_ = 0;
  std::uint64_t full_ = 0;
  int counter_ = 1;
  std::uint32_t rover_ = 0;
  bool clock_started_ = false;
  std::int64_t next_tick_ = 0;
};

/// The most entries (and, lblcr, twice as many members) a cache may reserve: what the default
/// capacity is at the largest table (2 * 16 * 2^20), so a typo cannot reserve gigabytes.
inline constexpr std::uint32_t locality_max_capacity = std::uint32_t{2 * 16} << 20;

[[nodiscard]] inline build_error check_locality_options(const locality_options& o) noexcept {
  if (o.table_bits < 1 || o.table_bits > 20 || o.expiration_ns < 0 ||
      o.capacity > locality_max_capacity || o.member_capacity > 2 * locality_max_capacity)
    return build_error::bad_option;
  return build_error::ok;
}

/// lblc's and lblcr's named options: table-bits, expiration (seconds), capacity, and for lblcr
/// member-capacity.
inline locality_options read_locality_options(option_reader& r, bool replicated) {
  locality_options o;
  o.table_bits = r.number("table-bits", o.table_bits);
  o.expiration_ns = r.seconds_as_ns("expiration", o.expiration_ns);
  o.capacity = r.number("capacity", o.capacity);
  if (replicated) o.member_capacity = r.number("member-capacity", o.member_capacity);
  return o;
}

}  // namespace detail

/// IPVS lblc, exactly (ip_vs_lblc_schedule):
/// - key: the packet's destination address (iph->daddr, also for ICMP-quoted headers);
/// - cached entry: its lastuse := now; its server is used when it is still in the service
///   (AVAILABLE), has weight > 0 and is not "overloaded" in lblc's sense (more active
///   connections than its weight while some server has 2 * active < weight; the OVERLOAD flag
///   is not consulted here);
/// - otherwise weighted least connection over the whole service (skipping OVERLOAD servers), and
///   the entry is created or re-pointed to that server (lastuse = now);
/// - collection: every 60 s; every 30th run (only counting runs that found <= 16 * 2^bits
///   entries) drops entries unused for `expiration_ns`; while there are more entries than that,
///   each run drops entries unused for 6 min, bucket by bucket from a rover, until (entries -
///   max) * 4/3 (at most max/2) are gone.
/// Positions: entries store list positions, fixed up on add/remove. An entry whose server was
/// removed keeps the server's handle: if a server with that handle is added again (the kernel
/// revives a dest from its trash with the same identity) the entry points at it again.
/// Handles must therefore be unique within the service.
/// Time: the kernel's timer starts when the service is bound; here at start_clock(), else at the
/// first pick or collect. Times are compared in ns where the kernel compares jiffies (HZ 100 to
/// 1000), so only an event within one jiffy of a boundary can come out differently.
/// Costs: a cache hit is a hash-chain walk plus, only when the server has more active connections
/// than its weight, an O(n) scan; a miss is the kernel's O(n) WLC scan. No allocation. A pick that
/// crosses a collection tick does that tick's work first (a full sweep, O(2^bits + entries),
/// every 30 min); call collect(now) from the control plane every minute to keep it off picks.
class locality_least_connection {
 public:
  static constexpr std::string_view name = "lblc";
  static constexpr count_use uses_counts = count_use::none;

  /// Named options (any_scheduler), the fields of locality_options: table-bits, expiration
  /// (whole seconds, as the sysctl), capacity.
  static constexpr std::array<std::string_view, 3> option_names{"table-bits", "expiration",
                                                                "capacity"};
  [[nodiscard]] static locality_options read_options(option_reader& r) {
    return detail::read_locality_options(r, false);
  }

  explicit locality_least_connection(locality_options options = {})
      : opt_(options),
        config_(detail::check_locality_options(options)),
        cache_(config_ == build_error::ok ? options.table_bits : 1,
               config_ == build_error::ok ? options.capacity : 1, options.expiration_ns) {}

  /// Control plane. init empties the cache (a new binding starts afresh, like init_service).
  build_error rebuild(std::span<const real_server> dests, dest_change change) {
    if (config_ != build_error::ok) return config_;
    switch (change.what) {
      case dest_change::kind::init:
        cache_.clear();
        break;
      case dest_change::kind::added:
        if (dests.empty()) break;
        cache_.for_each([&](auto& en) {
          if (en.payload.dest != no_dest)
            ++en.payload.dest;
          else if (en.payload.handle == dests[0].handle)
            en.payload.dest = 0;
        });
        break;
      case dest_change::kind::removed:
        cache_.for_each([&](auto& en) {
          if (en.payload.dest == change.id)
            en.payload.dest = no_dest;
          else if (en.payload.dest != no_dest && en.payload.dest > change.id)
            --en.payload.dest;
        });
        break;
      case dest_change::kind::edited:
        break;
    }
    return build_error::ok;
  }

  /// Data plane (ip_vs_lblc_schedule). Plays due collection ticks first.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) noexcept {
    if (config_ != build_error::ok) return no_dest;
    cache_.catch_up(ctx.now_ns, [](auto&) {});
    const std::uint8_t* addr = ctx.flow.dst_addr.data();
    const std::uint32_t e = cache_.find(ctx.flow.family, addr);
    if (e != cache_type::none) {
      auto& en = cache_.at(e);
      en.lastuse = ctx.now_ns;
      const dest_id d = en.payload.dest;
      if (d < dests.size() && dests[d].available && dests[d].weight > 0 &&
          !detail::locality_overloaded(dests, dests[d]))
        return d;
    }
    const dest_id d = detail::locality_wlc(dests);
    if (d == no_dest) return no_dest;
    if (e != cache_type::none) {
      cache_.at(e).payload = {d, dests[d].handle};  // ip_vs_lblc_new: re-point (lastuse is now)
    } else {
      const std::uint32_t n = cache_.insert(ctx.flow.family, addr, ctx.now_ns);
      if (n != cache_type::none) cache_.at(n).payload = {d, dests[d].handle};
    }
    return d;
  }

  void counts_changed(std::span<const real_server>, dest_id) noexcept {}

  /// Runs the collection ticks due by `now` (so a caller can keep that work off the data path).
  void collect(std::int64_t now) noexcept { cache_.catch_up(now, [](auto&) {}); }
  /// Starts the 60 s collection timer (otherwise the first pick or collect starts it).
  void start_clock(std::int64_t now) noexcept { cache_.start_clock(now); }

  /// The cached server for a destination address: its list position, no_dest for an entry whose
  /// server was removed, or `not_cached` when there is no entry.
  static constexpr dest_id not_cached = no_dest - 1;
  [[nodiscard]] dest_id cached(const wire::ip_address& daddr) const noexcept {
    const std::uint32_t e = cache_.find(daddr.family(), daddr.raw().data());
    return e == cache_type::none ? not_cached : cache_.at(e).payload.dest;
  }
  [[nodiscard]] std::uint32_t entries() const noexcept { return cache_.size(); }
  [[nodiscard]] const locality_options& options() const noexcept { return opt_; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return cache_.capacity(); }
  /// New entries that did not fit (the pick was still made).
  [[nodiscard]] std::uint64_t cache_full() const noexcept { return cache_.full_count(); }

 private:
  struct target {
    dest_id dest = no_dest;
    std::uint32_t handle = 0;
  };
  using cache_type = detail::locality_cache<target>;

  locality_options opt_;
  build_error config_;
  cache_type cache_;
};

static_assert(scheduler<locality_least_connection>);

using lblc = locality_least_connection;

}  // namespace l4lb::sched
