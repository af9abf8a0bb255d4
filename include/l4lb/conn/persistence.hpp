// Persistence templates as IPVS makes them (ip_vs_core.c ip_vs_sched_persist, ip_vs_conn.c
// ip_vs_check_template / ip_vs_conn_expire): the template key of a service (-p timeout,
// -M netmask, fwmark services, the "port 0" rule for all-ports and FTP services) and a fixed-
// capacity table of templates, each naming the real server a client (network) sticks to.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory_resource>

#include "l4lb/conn/conn_key.hpp"
#include "l4lb/conn/dest_counters.hpp"
#include "l4lb/conn/detail/group_storage.hpp"
#include "l4lb/conn/errc.hpp"
#include "l4lb/conn/timeouts.hpp"
#include "l4lb/conn/timer_wheel.hpp"
#include "l4lb/expected.hpp"

namespace l4lb::conn {

/// What a template matches: (protocol, client address under the netmask, cport 0, virtual
/// address, virtual port). Fwmark templates use protocol 0 (IPPROTO_IP) and the mark, big-endian,
/// in the first four bytes of the virtual address.
template <class Addr>
struct template_key {
  static_assert(is_address_v<Addr>);
  Addr client_net{};
  Addr virtual_addr{};
  std::uint16_t virtual_port = 0;
  std::uint8_t protocol = 0;

  [[nodiscard]] std::uint64_t hash(std::uint64_t seed = 0) const noexcept {
    const std::uint64_t tail = (std::uint64_t{protocol} << 32) | virtual_port |
                               0x2f69'3a7d'0000'0000ull;
    return detail::hash_addresses(client_net, virtual_addr, tail, seed);
  }
  friend bool operator==(const template_key&, const template_key&) = default;
  friend auto operator<=>(const template_key&, const template_key&) = default;
};

inline constexpr std::uint16_t ftp_control_port = 21;

/// A service's persistence settings (ipvsadm -p, -M; the service's port or fwmark).
template <class Addr>
struct persistence {
  static_assert(is_address_v<Addr>);
  /// ipvsadm's default for a bare -p is 360 s (libipvs IPVS_SVC_PERSISTENT_TIMEOUT).
  std::uint32_t timeout_s = 360;
  /// -M: 255.255.255.255 (IPv4) or /128 (IPv6) by default: one template per client address.
  Addr netmask = all_ones();
  /// Non-zero for a fwmark service (-f).
  std::uint32_t fwmark = 0;
  /// The virtual service's port; 0 for fwmark and all-ports services.
  std::uint16_t service_port = 0;

  [[nodiscard]] static constexpr Addr all_ones() noexcept {
    Addr a{};
    for (auto& b : a.bytes) b = 0xFF;
    return a;
  }
  /// A netmask of `len` leading one bits (IPv6 -M takes a prefix length).
  [[nodiscard]] static constexpr Addr mask_from_prefix(unsigned len) noexcept {
    Addr a{};
    for (std::size_t i = 0; i < Addr::size; ++i) {
      const unsigned bits = len >= 8 ? 8u : len;
      a.bytes[i] = static_cast<std::uint8_t>(0xFF00u >> bits);
      len -= bits;
    }
    return a;
  }

  /// The template key for a new connection (ip_vs_sched_persist): a packet to the service's own
  /// port keys on that port, except FTP (port 21) which keys on port 0 so the data connections
  /// share it; a fwmark service keys on (IPPROTO_IP, mark, 0); an all-ports service on port 0.
  [[nodiscard]] constexpr template_key<Addr> key_for(std::uint8_t protocol, const Addr& client,
                                                     const Addr& vaddr,
                                                     std::uint16_t vport) const noexcept {
    template_key<Addr> k;
    for (std::size_t i = 0; i < Addr::size; ++i)
      k.client_net.bytes[i] = static_cast<std::uint8_t>(client.bytes[i] & netmask.bytes[i]);
    k.protocol = protocol;
    k.virtual_addr = vaddr;
    k.virtual_port = 0;
    if (vport == service_port) {
      if (service_port != ftp_control_port) k.virtual_port = vport;
    } else if (fwmark != 0) {
      k.protocol = 0;
      k.virtual_addr = Addr{};
      k.virtual_addr.bytes[0] = static_cast<std::uint8_t>(fwmark >> 24);
      k.virtual_addr.bytes[1] = static_cast<std::uint8_t>(fwmark >> 16);
      k.virtual_addr.bytes[2] = static_cast<std::uint8_t>(fwmark >> 8);
      k.virtual_addr.bytes[3] = static_cast<std::uint8_t>(fwmark);
    }
    return k;
  }

  /// The template's destination port as `ipvsadm -Lnc` shows it: the server's port only for a
  /// packet to the service's own (non-FTP) port, else 0.
  [[nodiscard]] constexpr std::uint16_t template_dest_port(std::uint16_t vport,
                                                           std::uint16_t dest_port) const noexcept {
    return (vport == service_port && service_port != ftp_control_port) ? dest_port : 0;
  }
  /// A persistent connection's destination port: the server's port when the packet went to the
  /// service's port and the server has one, else the packet's port.
  [[nodiscard]] constexpr std::uint16_t conn_dest_port(std::uint16_t vport,
                                                       std::uint16_t dest_port) const noexcept {
    return (vport == service_port && dest_port != 0) ? dest_port : vport;
  }
};

struct template_stats {
  std::uint64_t inserted = 0;
  std::uint64_t expired = 0;          // timer ran out with no connection left
  std::uint64_t kept_busy = 0;        // timer ran out while controlling connections: +60 s
  std::uint64_t invalidated = 0;      // server gone (or quiesced with expire_quiescent_template)
  std::uint64_t dropped_unassured = 0;// last controlled conn removed by force (ip_vs_conn_expire)
  std::uint64_t evicted = 0;          // removed to make room
  std::uint64_t refused_full = 0;
};

namespace detail {
template <class Addr>
struct template_slot {
  Addr client_net;
  Addr virtual_addr;
  std::uint16_t virtual_port;
  std::uint8_t protocol;
  std::uint8_t flags;  // template_slot_flag
  std::uint32_t deadline;
  std::uint32_t timeout_ticks;
  std::uint32_t n_control;  // connections it controls (IPVS n_control)
  std::uint32_t dest;
  // Tick at which n_control fell to 0 (creation tick before); while it controls connections, the
  // latest end among the controlled connections already removed.
  std::uint32_t released;
  // While it controls connections: the latest deadline set on any of them (basic_template_table::
  // control_deadline), so that their end is known without reaping them.
  std::uint32_t conn_deadline;
};
inline constexpr std::uint8_t template_assured = 0x01;  // IP_VS_CTPL_S_ASSURED
inline constexpr std::uint8_t template_detached = 0x02; // invalidated: no longer matches
}  // namespace detail

/// Fixed-capacity table of persistence templates. Owned by the connection table, which links
/// connections to templates; callable alone for tests. `registry` is the table's dest registry.
///
/// When full, room is made in the new key's probe window (its home group and the next): an
/// expired template controlling nothing first, then a non-ASSURED one controlling nothing (IPVS's
/// random_dropentry drops those), then the ASSURED one nearest its deadline controlling nothing.
/// A template that controls connections is never evicted; if nothing qualifies, the insert is
/// refused (errc::template_table_full), as IPVS drops the packet when no template can be made.
template <class Addr>
class basic_template_table {
 public:
  using key_type = template_key<Addr>;
  using slot_type = detail::template_slot<Addr>;

  basic_template_table() = default;
  basic_template_table(std::uint32_t capacity, std::uint32_t wheel_buckets, std::uint64_t seed,
                       std::uint32_t busy_ticks = timeouts{}.template_busy * ticks_per_second,
                       std::pmr::memory_resource* memory = nullptr)
      : store_(capacity ? detail::groups_for(capacity) : 0, memory),
        wheel_(capacity ? timer_wheel(wheel_buckets) : timer_wheel()),
        capacity_(capacity),
        seed_(seed),
        busy_ticks_(busy_ticks ? busy_ticks : 1) {}

  /// The timeout a template gets when its timer runs out while it controls connections.
  void set_busy_ticks(std::uint32_t ticks) noexcept { busy_ticks_ = ticks ? ticks : 1; }

  [[nodiscard]] bool enabled() const noexcept { return capacity_ != 0; }
  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] const template_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return store_.memory_bytes() + (enabled() ? wheel_.memory_bytes() : 0);
  }
  [[nodiscard]] std::uint64_t hash(const key_type& k) const noexcept { return k.hash(seed_); }

  /// A live template with this key, or no_template. Live: not detached, and IPVS would still
  /// hold it: its deadline is not reached, or it still controls a live connection (IPVS re-arms
  /// such a template by 60 s each time its timer fires), or it controlled some until after its
  /// deadline and the 60-s re-arm in force then has not run out. The end of its connections is
  /// taken from their deadlines (control_deadline), not from their removal, so the answer does
  /// not depend on how late expire() runs. It is exact while the template controls one
  /// connection at a time and whenever deadlines only move forward; when one of several
  /// controlled connections has its deadline shortened (RST, FIN) or is removed early, the
  /// later deadline is kept, and the template may outlive IPVS's by up to that difference
  /// (rounded up to 60 s): persistence held a little long, never cut short.
  [[nodiscard]] template_ref find(const key_type& k, std::uint32_t now_floor) const noexcept {
    if (!enabled()) return no_template;
    const std::uint32_t r = find_any(k);
    return r != detail::npos32 && alive(store_.slot(r), now_floor) ? r : no_template;
  }

  /// Creates a template bound to `dest` (persist_conns + 1). The caller has checked that no
  /// live template has this key.
  [[nodiscard]] expected<template_ref, errc> insert(const key_type& k, std::uint32_t dest,
                                                    std::uint32_t timeout_ticks, std::int64_t now,
                                                    dest_registry<Addr>& registry) noexcept {
    if (!enabled()) return unexpected{errc::no_template_table};
    const std::uint32_t now_floor = floor_tick(now);
    const std::uint64_t h = hash(k);
    // A detached template never matches; a dead one with this key is reaped now.
    const std::uint32_t old = find_any(k);
    if (old != detail::npos32) {
      slot_type& o = store_.slot(old);
      if (alive(o, now_floor)) return unexpected{errc::exists};
      if (o.n_control == 0) {
        remove(old, registry);
        ++stats_.expired;
      } else {
        // IPVS removed it already, but its connections (past their deadlines) are not reaped
        // and still name it: it stops matching and goes once they are reaped (expire()).
        o.flags = static_cast<std::uint8_t>(o.flags | detail::template_detached);
      }
    }
    if (size_ == capacity_ && !make_room(h, now_floor, registry)) {
      ++stats_.refused_full;
      return unexpected{errc::template_table_full};
    }
    const std::uint32_t ref = store_.claim(h);
    slot_type& s = store_.slot(ref);
    s.client_net = k.client_net;
    s.virtual_addr = k.virtual_addr;
    s.virtual_port = k.virtual_port;
    s.protocol = k.protocol;
    s.flags = 0;
    s.timeout_ticks = timeout_ticks;
    s.deadline = ceil_tick(now) + timeout_ticks;
    s.n_control = 0;
    s.dest = dest;
    s.released = now_floor;
    s.conn_deadline = now_floor;
    ++size_;
    ++stats_.inserted;
    registry.template_bound(dest);
    wheel_.arm(links(), detail::group_storage<slot_type, wheel_links>::group_of(ref), s.deadline,
               now_floor);
    return ref;
  }

  /// ip_vs_check_template: valid while its server is available (and, with
  /// expire_quiescent_template, not quiesced). An invalid template is detached so it no longer
  /// matches; it stays until its timer runs out with no connection left.
  [[nodiscard]] bool check(template_ref ref, const dest_registry<Addr>& registry,
                           bool expire_quiescent_template) noexcept {
    slot_type& s = store_.slot(ref);
    const auto& d = registry[s.dest];
    if (d.available && !(expire_quiescent_template && d.quiesced)) return true;
    detach(ref);
    return false;
  }

  void detach(template_ref ref) noexcept {
    slot_type& s = store_.slot(ref);
    if ((s.flags & detail::template_detached) == 0) ++stats_.invalidated;
    s.flags = static_cast<std::uint8_t>(s.flags | detail::template_detached);
  }

  /// A connection now depends on the template; its timer restarts at now + its timeout
  /// (ip_vs_control_add, then ip_vs_conn_put re-arms the template). Precondition: live.
  void add_control(template_ref ref, std::int64_t now) noexcept {
    slot_type& s = store_.slot(ref);
    const std::uint32_t now_floor = floor_tick(now);
    // Past its deadline yet alive: IPVS's timer has fired and left the 60-s timeout in force.
    if (tick_reached(s.deadline, now_floor)) s.timeout_ticks = busy_ticks_;
    if (s.n_control == 0) s.released = s.conn_deadline = now_floor;  // a new episode of control
    ++s.n_control;
    set_deadline(ref, ceil_tick(now) + s.timeout_ticks, now_floor);
  }

  /// A controlled connection's deadline is now `deadline` (its insert and every packet). Keeps
  /// the latest deadline among the controlled connections: exactly this one while it is the only
  /// one (so a shortened deadline counts), else the max (see find()). O(1).
  void control_deadline(template_ref ref, std::uint32_t deadline) noexcept {
    slot_type& s = store_.slot(ref);
    if (s.n_control <= 1 || static_cast<std::int32_t>(deadline - s.conn_deadline) > 0)
      s.conn_deadline = deadline;
  }

  /// A controlled connection is gone at tick `at` (its deadline when it expired). `forced`
  /// (eviction or flush): if it was the last one and the template is not ASSURED, the template
  /// goes too (ip_vs_conn_expire, "drop CTL or non-assured TPL").
  void remove_control(template_ref ref, bool forced, std::uint32_t at,
                      dest_registry<Addr>& registry) noexcept {
    slot_type& s = store_.slot(ref);
    if (s.n_control > 0) --s.n_control;
    // Connections are reaped in no particular order: IPVS's n_control fell to 0 at the latest
    // end among them, which is not necessarily the last one reaped.
    if (static_cast<std::int32_t>(at - s.released) > 0) s.released = at;
    if (s.n_control != 0) return;
    if (forced && (s.flags & detail::template_assured) == 0) {
      remove(ref, registry);
      ++stats_.dropped_unassured;
    }
  }

  void assure(template_ref ref) noexcept {
    slot_type& s = store_.slot(ref);
    s.flags = static_cast<std::uint8_t>(s.flags | detail::template_assured);
  }

  /// Removes a template regardless of its state (control plane flush). Its connections keep
  /// their reference; call only when it controls none.
  void erase(template_ref ref, dest_registry<Addr>& registry) noexcept { remove(ref, registry); }

  /// Templates whose deadline is reached: removed, or kept 60 s at a time while they control
  /// connections (and keep that timeout), exactly as IPVS's timer would have done by `now`.
  /// `budget` counts groups examined.
  poll_result expire(std::int64_t now, std::uint32_t budget,
                     dest_registry<Addr>& registry) noexcept {
    if (!enabled()) return {};
    const std::uint32_t now_floor = floor_tick(now);
    return wheel_.poll(links(), now_floor, budget, [&](std::uint32_t g) {
      auto& grp = store_.group(g);
      bool any = false;
      std::uint32_t earliest = 0;
      for (std::uint32_t m = grp.meta.match_occupied(); m != 0; m &= m - 1) {
        const std::uint32_t ref =
            g * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m));
        slot_type& s = store_.slot(ref);
        std::uint32_t wake = s.deadline;
        if (tick_reached(s.deadline, now_floor)) {
          // Firings at deadline + k * busy; the template dies at the first one that finds it
          // controlling nothing.
          std::uint32_t firings;
          if (controls_live(s, now_floor)) {
            firings = (now_floor - s.deadline) / busy_ticks_ + 1;
          } else {
            firings = firings_until_end(s);
            if (tick_reached(s.deadline + firings * busy_ticks_, now_floor)) {
              stats_.kept_busy += firings;
              if (s.n_control == 0) {
                remove(ref, registry);
                ++stats_.expired;
                continue;
              }
              // Dead for IPVS, but connections past their deadlines still name it until they
              // are reaped: keep it (find() answers no, firings_until_end() is now 0) and look
              // again a re-arm period later.
              s.timeout_ticks = busy_ticks_;
              s.deadline += firings * busy_ticks_;
              wake = now_floor + busy_ticks_;
              if (!any || static_cast<std::int32_t>(wake - earliest) < 0) earliest = wake;
              any = true;
              continue;
            }
          }
          stats_.kept_busy += firings;
          s.timeout_ticks = busy_ticks_;
          s.deadline += firings * busy_ticks_;
          wake = s.deadline;
        }
        if (!any || static_cast<std::int32_t>(wake - earliest) < 0) earliest = wake;
        any = true;
      }
      if (any) wheel_.arm(links(), g, earliest, now_floor);
    });
  }

  // Accessors (ref must be a live template).
  [[nodiscard]] bool live(template_ref ref) const noexcept {
    return enabled() && ref < store_.slot_count() && store_.occupied(ref);
  }
  [[nodiscard]] std::uint32_t dest(template_ref ref) const noexcept { return store_.slot(ref).dest; }
  [[nodiscard]] bool assured(template_ref ref) const noexcept {
    return store_.slot(ref).flags & detail::template_assured;
  }
  [[nodiscard]] bool detached(template_ref ref) const noexcept {
    return store_.slot(ref).flags & detail::template_detached;
  }
  [[nodiscard]] std::uint32_t controls(template_ref ref) const noexcept {
    return store_.slot(ref).n_control;
  }
  [[nodiscard]] std::uint32_t timeout_ticks(template_ref ref) const noexcept {
    return store_.slot(ref).timeout_ticks;
  }
  [[nodiscard]] key_type key(template_ref ref) const noexcept {
    const slot_type& s = store_.slot(ref);
    return {s.client_net, s.virtual_addr, s.virtual_port, s.protocol};
  }
  /// Nanoseconds until the template's deadline (negative once reached).
  [[nodiscard]] std::int64_t remaining_ns(template_ref ref, std::int64_t now) const noexcept {
    const auto d = static_cast<std::int32_t>(store_.slot(ref).deadline - floor_tick(now));
    return std::int64_t{d} * tick_ns - (now % tick_ns);
  }

  /// Visits every template (listing, `ipvsadm -Lnc`): f(ref).
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t g = 0; g < store_.group_count(); ++g)
      for (std::uint32_t m = store_.group(g).meta.match_occupied(); m != 0; m &= m - 1)
        f(g * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m)));
  }

 private:
  using storage = detail::group_storage<slot_type, wheel_links>;

  [[nodiscard]] std::uint32_t find_any(const key_type& k) const noexcept {
    return store_.find(hash(k), [&](const slot_type& s) {
      return (s.flags & detail::template_detached) == 0 && same_key(s, k);
    });
  }
  // Whether a controlled connection may still be live at now_floor (by its deadline).
  [[nodiscard]] static bool controls_live(const slot_type& s, std::uint32_t now_floor) noexcept {
    return s.n_control != 0 && !tick_reached(s.conn_deadline, now_floor);
  }
  // When IPVS's n_control fell (or falls) to 0: the latest end among its connections.
  [[nodiscard]] static std::uint32_t control_end(const slot_type& s) noexcept {
    if (s.n_control == 0) return s.released;
    return static_cast<std::int32_t>(s.conn_deadline - s.released) > 0 ? s.conn_deadline
                                                                        : s.released;
  }
  // Re-arms after the deadline until the first firing at or after control_end (0 if it ends
  // before the deadline). At a firing on the tick a connection ends, the connection has gone.
  [[nodiscard]] std::uint32_t firings_until_end(const slot_type& s) const noexcept {
    const auto late = static_cast<std::int32_t>(control_end(s) - s.deadline);
    return late <= 0 ? 0 : (static_cast<std::uint32_t>(late) + busy_ticks_ - 1) / busy_ticks_;
  }
  [[nodiscard]] bool alive(const slot_type& s, std::uint32_t now_floor) const noexcept {
    if (!tick_reached(s.deadline, now_floor) || controls_live(s, now_floor)) return true;
    return !tick_reached(s.deadline + firings_until_end(s) * busy_ticks_, now_floor);
  }

  [[nodiscard]] static bool same_key(const slot_type& s, const key_type& k) noexcept {
    return s.protocol == k.protocol && s.virtual_port == k.virtual_port &&
           std::memcmp(s.client_net.bytes.data(), k.client_net.bytes.data(), Addr::size) == 0 &&
           std::memcmp(s.virtual_addr.bytes.data(), k.virtual_addr.bytes.data(), Addr::size) == 0;
  }

  auto links() noexcept {
    return [this](std::uint32_t g) -> wheel_links& { return store_.group(g).tail; };
  }

  void set_deadline(template_ref ref, std::uint32_t deadline, std::uint32_t now_floor) noexcept {
    slot_type& s = store_.slot(ref);
    const bool earlier = static_cast<std::int32_t>(deadline - s.deadline) < 0;
    s.deadline = deadline;
    if (earlier) wheel_.arm(links(), storage::group_of(ref), deadline, now_floor);
  }

  void remove(template_ref ref, dest_registry<Addr>& registry) noexcept {
    slot_type& s = store_.slot(ref);
    registry.template_unbound(s.dest);
    store_.release(ref, hash(key(ref)));
    --size_;
  }

  bool make_room(std::uint64_t h, std::uint32_t now_floor, dest_registry<Addr>& registry) noexcept {
    const std::uint32_t g0 = store_.home(h);
    const std::uint32_t window[2] = {g0, store_.next(g0)};
    const std::uint32_t groups = store_.group_count() > 1 ? 2 : 1;
    std::uint32_t best = detail::npos32;
    int best_tier = 3;
    std::int32_t best_left = 0;
    for (std::uint32_t w = 0; w < groups; ++w) {
      const std::uint32_t g = window[w];
      for (std::uint32_t m = store_.group(g).meta.match_occupied(); m != 0; m &= m - 1) {
        const std::uint32_t ref =
            g * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m));
        const slot_type& s = store_.slot(ref);
        if (s.n_control != 0) continue;
        const auto left = static_cast<std::int32_t>(s.deadline - now_floor);
        const int tier = left <= 0 ? 0 : (s.flags & detail::template_assured) == 0 ? 1 : 2;
        if (tier < best_tier || (tier == best_tier && left < best_left)) {
          best = ref;
          best_tier = tier;
          best_left = left;
        }
      }
    }
    if (best == detail::npos32) return false;
    remove(best, registry);
    if (best_tier == 0)
      ++stats_.expired;
    else
      ++stats_.evicted;
    return true;
  }

  storage store_;
  timer_wheel wheel_;
  std::uint32_t capacity_ = 0;
  std::uint32_t size_ = 0;
  std::uint64_t seed_ = 0;
  std::uint32_t busy_ticks_ = 60 * ticks_per_second;
  template_stats stats_{};
};

}  // namespace l4lb::conn
