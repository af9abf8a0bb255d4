// lblcr: IPVS's locality-based least-connection scheduler with replication
// (net/netfilter/ipvs/ip_vs_lblcr.c): like lblc, but a destination address maps to a *set* of
// real servers that grows when all its members are busy and shrinks again when left unchanged
// for lblcr_expiration, so one very popular address can be served by several caches.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/build_error.hpp"
#include "l4lb/sched/locality_least_connection.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// IPVS lblcr, exactly (ip_vs_lblcr_schedule):
/// - key: the packet's destination address; entry = {server set, lastmod} + lastuse;
/// - with an entry: lastuse := now; m := the weighted-least-connection member (seed: the first
///   member, newest first, that is not OVERLOAD, has weight > 0 and is still in the service;
///   replaced under the same conditions when overhead(m) * w(d) > overhead(d) * w(m)); then, if
///   the set has more than one member and now > lastmod + expiration, the weighted-*most*-loaded
///   member (seed: first with weight > 0; replaced when overhead(most) * w(d) < overhead(d) *
///   w(most) and w(d) > 0; OVERLOAD and removal not considered) is erased (lastmod := now);
///   m is used unless there is none or it is "overloaded" in lblc's sense; otherwise WLC over
///   the service picks, and that server is added at the head of the set (if not yet in it;
///   lastmod := now);
/// - without an entry: WLC over the service, and a new entry holding just that server;
/// - collection: the same 60 s timer as lblc (see locality_least_connection.hpp).
/// Members store list positions, fixed up on add/remove. A member whose server was removed stays
/// in its set like the kernel's reference to a dest in its trash: never the least-loaded pick, but
/// counted in the set's size and a candidate for the most-loaded erase, with the weight and the
/// load (256 * active + inactive) it had when removed (the kernel would see its connections
/// drain meanwhile; we cannot). The load snapshot comes from the last rebuild or counts_changed
/// for that position. A server added again with the same handle is that member again.
/// Costs: per pick, a walk over the entry's set plus the lblc rules' O(n) scans when needed.
class locality_least_connection_replicated {
 public:
  static constexpr std::string_view name = "lblcr";

  /// Named options (any_scheduler): lblc's (table-bits, expiration, capacity) and
  /// member-capacity.
  static constexpr std::array<std::string_view, 4> option_names{"table-bits", "expiration",
                                                                "capacity", "member-capacity"};
  [[nodiscard]] static locality_options read_options(option_reader& r) {
    return detail::read_locality_options(r, true);
  }

  explicit locality_least_connection_replicated(locality_options options = {})
      : opt_(options),
        config_(detail::check_locality_options(options)),
        cache_(config_ == build_error::ok ? options.table_bits : 1,
               config_ == build_error::ok ? options.capacity : 1, options.expiration_ns) {
    const std::uint32_t n = options.member_capacity != 0 ? options.member_capacity
                                                         : 2 * cache_.capacity();
    members_.resize(config_ == build_error::ok ? n : 1);
    clear_members();
  }

  /// Control plane. init empties the cache.
  build_error rebuild(std::span<const real_server> dests, dest_change change) {
    if (config_ != build_error::ok) return config_;
    switch (change.what) {
      case dest_change::kind::init:
        cache_.clear();
        clear_members();
        break;
      case dest_change::kind::added:
        if (dests.empty()) break;
        for (member& m : members_) {
          if (!m.used) continue;
          if (m.dest != no_dest)
            ++m.dest;
          else if (m.handle == dests[0].handle)
            m.dest = 0;
        }
        break;
      case dest_change::kind::removed:
        for (member& m : members_) {
          if (!m.used) continue;
          if (m.dest == change.id) {
            m.dest = no_dest;
            if (change.id < seen_.size()) {
              m.ghost_weight = seen_[change.id].weight;
              m.ghost_overhead = seen_[change.id].overhead;
            }
          } else if (m.dest != no_dest && m.dest > change.id) {
            --m.dest;
          }
        }
        break;
      case dest_change::kind::edited:
        break;
    }
    seen_.resize(dests.size());
    for (std::size_t i = 0; i < dests.size(); ++i)
      seen_[i] = {dests[i].weight, dests[i].overhead()};
    return build_error::ok;
  }

  /// Data plane (ip_vs_lblcr_schedule). Plays due collection ticks first.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests,
                             const pick_context& ctx) noexcept {
    if (config_ != build_error::ok) return no_dest;
    collect(ctx.now_ns);
    const std::int64_t now = ctx.now_ns;
    const std::uint8_t* addr = ctx.flow.dst_addr.data();
    const std::uint32_t e = cache_.find(ctx.flow.family, addr);
    if (e != cache_type::none) {
      auto& en = cache_.at(e);
      en.lastuse = now;
      const dest_id least = set_min(en.payload, dests);
      if (en.payload.size > 1 && now > en.payload.lastmod + opt_.expiration_ns) {
        const std::uint32_t most = set_max(en.payload, dests);
        if (most != none) erase_member(en.payload, most, now);
      }
      if (least != no_dest && !detail::locality_overloaded(dests, dests[least])) return least;
      const dest_id d = detail::locality_wlc(dests);
      if (d == no_dest) return no_dest;
      insert_member(en.payload, dests, d, true, now);
      return d;
    }
    const dest_id d = detail::locality_wlc(dests);
    if (d == no_dest) return no_dest;
    const std::uint32_t n = cache_.insert(ctx.flow.family, addr, now);
    if (n != cache_type::none) insert_member(cache_.at(n).payload, dests, d, false, now);
    return d;
  }

  /// Keeps the load snapshot of dests[id] current (used only if that server is later removed
  /// while it is still in some set).
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    if (id < seen_.size() && id < dests.size()) seen_[id].overhead = dests[id].overhead();
  }

  /// Runs the collection ticks due by `now`.
  void collect(std::int64_t now) noexcept {
    cache_.catch_up(now, [this](auto& en) { free_set(en.payload); });
  }
  void start_clock(std::int64_t now) noexcept { cache_.start_clock(now); }

  /// The set cached for a destination address, newest member first (no_dest = a removed server);
  /// empty when not cached. Control plane / tests (allocates).
  [[nodiscard]] std::vector<dest_id> cached_set(const wire::ip_address& daddr) const {
    std::vector<dest_id> out;
    const std::uint32_t e = cache_.find(daddr.family(), daddr.raw().data());
    if (e == cache_type::none) return out;
    for (std::uint32_t m = cache_.at(e).payload.head; m != none; m = members_[m].next)
      out.push_back(members_[m].dest);
    return out;
  }
  [[nodiscard]] std::uint32_t entries() const noexcept { return cache_.size(); }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return cache_.capacity(); }
  [[nodiscard]] std::uint32_t member_capacity() const noexcept {
    return static_cast<std::uint32_t>(members_.size());
  }
  [[nodiscard]] const locality_options& options() const noexcept { return opt_; }
  /// Entries plus members that did not fit (the pick was still made).
  [[nodiscard]] std::uint64_t cache_full() const noexcept { return cache_.full_count() + member_full_; }

 private:
  static constexpr std::uint32_t none = 0xFFFFFFFFu;
  struct server_set {
    std::uint32_t head = none;
    std::uint32_t size = 0;
    std::int64_t lastmod = 0;
  };
  struct member {
    std::uint64_t ghost_overhead = 0;
    dest_id dest = no_dest;
    std::uint32_t handle = 0;
    std::uint32_t ghost_weight = 0;
    std::uint32_t next = none;
    bool used = false;
  };
  struct seen {
    std::uint32_t weight = 0;
    std::uint64_t overhead = 0;
  };
  using cache_type = detail::locality_cache<server_set>;
  using u128 = detail::locality_u128;

  void clear_members() noexcept {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      members_[i].used = false;
      members_[i].next = i + 1 < members_.size() ? static_cast<std::uint32_t>(i + 1) : none;
    }
    free_member_ = members_.empty() ? none : 0;
  }

  void free_set(server_set& s) noexcept {
    std::uint32_t m = s.head;
    while (m != none) {
      const std::uint32_t next = members_[m].next;
      members_[m].used = false;
      members_[m].next = free_member_;
      free_member_ = m;
      m = next;
    }
    s = {};
  }

  // ip_vs_dest_set_insert.
  void insert_member(server_set& s, std::span<const real_server> dests, dest_id d, bool check,
                     std::int64_t now) noexcept {
    if (check)
      for (std::uint32_t m = s.head; m != none; m = members_[m].next)
        if (members_[m].dest == d) return;
    if (free_member_ == none) {
      ++member_full_;
      return;
    }
    const std::uint32_t m = free_member_;
    free_member_ = members_[m].next;
    members_[m] = {0, d, dests[d].handle, 0, s.head, true};
    s.head = m;
    ++s.size;
    s.lastmod = now;
  }

  void erase_member(server_set& s, std::uint32_t victim, std::int64_t now) noexcept {
    for (std::uint32_t* link = &s.head; *link != none; link = &members_[*link].next) {
      if (*link != victim) continue;
      *link = members_[victim].next;
      members_[victim].used = false;
      members_[victim].next = free_member_;
      free_member_ = victim;
      --s.size;
      s.lastmod = now;
      return;
    }
  }

  // ip_vs_dest_set_min: a removed member is never AVAILABLE, so it never seeds nor replaces.
  dest_id set_min(const server_set& s, std::span<const real_server> dests) const noexcept {
    std::uint32_t m = s.head;
    for (; m != none; m = members_[m].next) {
      const dest_id d = members_[m].dest;
      if (d >= dests.size()) continue;
      if (dests[d].overloaded) continue;
      if (dests[d].weight > 0 && dests[d].available) break;
    }
    if (m == none) return no_dest;
    dest_id least = members_[m].dest;
    std::uint64_t loh = dests[least].overhead();
    for (m = members_[m].next; m != none; m = members_[m].next) {
      const dest_id d = members_[m].dest;
      if (d >= dests.size() || dests[d].overloaded) continue;
      const std::uint64_t doh = dests[d].overhead();
      if (u128{loh} * dests[d].weight > u128{doh} * dests[least].weight && dests[d].available) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }

  // ip_vs_dest_set_max: returns the member (not the server) to erase, or none.
  std::uint32_t set_max(const server_set& s, std::span<const real_server> dests) const noexcept {
    auto weight = [&](const member& x) -> std::uint64_t {
      return x.dest < dests.size() ? dests[x.dest].weight : x.dest == no_dest ? x.ghost_weight : 0;
    };
    auto load = [&](const member& x) -> std::uint64_t {
      return x.dest < dests.size() ? dests[x.dest].overhead()
                                   : x.dest == no_dest ? x.ghost_overhead : 0;
    };
    std::uint32_t m = s.head;
    for (; m != none; m = members_[m].next)
      if (weight(members_[m]) > 0) break;
    if (m == none) return none;
    std::uint32_t most = m;
    std::uint64_t moh = load(members_[m]);
    for (m = members_[m].next; m != none; m = members_[m].next) {
      const std::uint64_t dw = weight(members_[m]);
      const std::uint64_t doh = load(members_[m]);
      if (u128{moh} * dw < u128{doh} * weight(members_[most]) && dw > 0) {
        most = m;
        moh = doh;
      }
    }
    return most;
  }

  locality_options opt_;
  build_error config_;
  cache_type cache_;
  std::vector<member> members_;
  std::uint32_t free_member_ = none;
  std::uint64_t member_full_ = 0;
  std::vector<seen> seen_;
};

static_assert(scheduler<locality_least_connection_replicated>);

using lblcr = locality_least_connection_replicated;

}  // namespace l4lb::sched
