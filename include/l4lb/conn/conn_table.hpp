// The connection table: a fixed-capacity, allocation-free map from a flow (protocol, client
// endpoint, virtual endpoint) to the real server chosen for it, with IPVS's TCP and SCTP state
// machines, idle expiry, active/inactive counts per real server, persistence templates, a
// reply-direction index for NAT, and a documented policy when full. One table per core.
//
// IMPLEMENTATION NOTES
//
// Layout. Slots live in groups of 15 (detail/group_storage.hpp): a 16-byte metadata word
// (15 reduced hashes + an overflow byte, Boost FOA style, no tombstones), eight 4-bit overflow
// counts (so erases clear overflow bits; the table never rehashes), the group's timer-wheel
// links, then the 15 slots. A slot holds the key and the value packed together:
//   IPv4 slot, 24 bytes: client addr 4 | virtual addr 4 | client port 2 | virtual port 2 |
//                        deadline 4 | bits 8 = protocol 8, state 4, flags 4, dest 24, template 24
//                        (flags: no_output, controlled, nat, reply_from_vport)
//   IPv6 slot, 48 bytes: the same with 16-byte addresses.
// Group sizes: IPv4 400 bytes, IPv6 752 bytes. Groups = ceil(capacity / (15 * 7/8)), so a full
// table runs at load 7/8: 400 / 15 / 0.875 = 30.5 bytes per IPv4 connection and
// 752 / 15 / 0.875 = 57.3 per IPv6 connection, all-in; the NAT reply index adds one 80-byte
// group per 15 slots (6.1 bytes per connection): its slot is only the connection's position,
// and a match is confirmed against the connection and its real server's registered endpoint.
// The home group is a multiply-shift of the hash's high half (any group count); probing is
// linear over groups.
//
// Time. `now` is the caller's nanoseconds (e.g. pcap timestamps); the table never reads a clock.
// Deadlines are 32-bit ticks of 1/16 s: a connection is gone once now >= ceil_to_tick(time of
// its last packet) + timeout(state). Lookups treat a reached deadline as absent at once; the
// memory and the counts are released by expire(), or earlier when an insert needs the slot.
//
// Expiry. A hashed timing wheel over groups (timer_wheel.hpp): a group is armed at the earliest
// deadline of its members; a packet that extends a deadline touches nothing but the slot; a
// change that shortens one (a new connection, a state with a shorter timeout) re-arms the group
// earlier. expire(now, budget) visits at most `budget` groups: each due group is scanned
// (15 slots), its reached connections removed, and the group re-armed at its new earliest
// deadline. Call it once per burst with a budget that keeps up with the connection rate.
//
// Full table. Capacity is a hard count. When it is reached an insert looks for a victim among
// the occupied slots of its home group and the next one (30 slots) and takes, in this order:
// a connection whose deadline is reached; an embryonic TCP connection (NONE, SYN_RECV,
// SYNACK — what a SYN flood creates, and what IPVS's drop_entry defence drops first); an
// inactive connection (FIN_WAIT, TIME_WAIT, CLOSE..., UDP and others), the one nearest its
// deadline first. Active connections (ESTABLISHED, SYN_SENT) are never evicted; when the window
// holds only those the insert is refused (errc::table_full). Ties go to the first in probe order.
// Every refusal and eviction is counted (conn_table_stats).
//
// Counts. ActiveConn / InActConn / PersistConn per real server are kept in a fixed array indexed
// by real_server::handle and reported through a count_observer (dest_counters.hpp says what a
// director applies). A connection whose deadline is reached is still counted until it is reaped.
//
// Use, per burst on one core: expire(now, budget); find_burst(keys, refs, now); for each packet
// apply_input_rules(ref, key, tcp_flags, now) (reuse and removed-server rules; the key form
// re-checks a ref that an insert or removal earlier in the same burst may have freed); on a hit
// on_packet(ref, flags, direction::input, now); on a miss that may start a connection, the
// persistence template (find_template / insert_template) or the scheduler gives the server, then
// insert() and on_packet() for that first packet. NAT replies: find_reply(), then on_packet(ref,
// flags, direction::output, now). One-packet scheduling (ipvsadm -o, UDP services) inserts
// nothing: IPVS never hashes a ONE_PACKET connection and frees it after its packet, so every
// datagram is scheduled (or follows its persistence template) and no count outlives it.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <span>
#include <string_view>
#include <type_traits>

#include "l4lb/conn/conn_key.hpp"
#include "l4lb/conn/dest_counters.hpp"
#include "l4lb/conn/detail/group_storage.hpp"
#include "l4lb/conn/errc.hpp"
#include "l4lb/conn/persistence.hpp"
#include "l4lb/conn/sctp_state.hpp"
#include "l4lb/conn/tcp_state.hpp"
#include "l4lb/conn/timeouts.hpp"
#include "l4lb/conn/timer_wheel.hpp"
#include "l4lb/expected.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/hash.hpp"

namespace l4lb::conn {

/// When an existing entry must give way to a new connection (ip_vs_core.c ip_vs_in_hook,
/// is_new_conn_expected; sysctls conn_reuse_mode and expire_nodest_conn).
struct reuse_policy {
  /// IPVS's sysctl (default 1): a SYN for an uncontrolled connection in TIME_WAIT or CLOSE
  /// removes it and is scheduled as new; bit 1 (value 2) adds FIN_WAIT of a connection that
  /// never saw an output packet (DR/TUN). 0 turns reuse off.
  std::uint8_t conn_reuse_mode = 1;
  /// IPVS's sysctl (default 0): a packet for a connection whose server was removed removes the
  /// connection (and may be scheduled again) instead of being dropped.
  bool expire_nodest_conn = false;
  /// l4lb's rule, on by default: a SYN for a connection whose server was removed or quiesced
  /// (weight 0) is scheduled afresh, never sent to the old server. (IPVS does this only with
  /// expire_nodest_conn; without it such SYNs were dropped or stuck to a quiesced server — the
  /// Kubernetes stalls of issues 81775 and 93297.) Kept on by default because draining is what
  /// weight 0 is used for; it differs from the kernel only for a SYN on a live entry of a
  /// removed or quiesced server (a client reusing its port, or a retransmitted SYN). Replays
  /// that must match a kernel's decisions exactly set it false.
  bool reschedule_syn_to_unavailable_dest = true;
};

struct conn_table_config {
  static constexpr std::uint32_t max_capacity = 1u << 31;

  /// Connections the table holds; it runs at load 7/8 when full.
  std::uint32_t capacity = 1u << 16;
  /// Build the reply index NAT needs (about 6 bytes per connection).
  bool nat_index = true;
  /// Persistence templates; 0 = no persistence.
  std::uint32_t template_capacity = 0;
  /// Real-server handles must be below this (and below 2^24).
  std::uint32_t max_dests = 1024;
  /// Timer-wheel buckets (ticks of 1/16 s), rounded up to a power of two, at least 64 and at
  /// most max_wheel_buckets; 0 = chosen from the capacity (groups / 4, 64..16384).
  std::uint32_t wheel_buckets = 0;
  static constexpr std::uint32_t max_wheel_buckets = 1u << 24;
  /// Hash seed; per-instance seeds stop an attacker from aiming at one group.
  std::uint64_t seed = 0;
  timeouts idle_timeouts{};
  reuse_policy reuse{};
  /// IPVS secure_tcp: use the defence transition table.
  bool secure_tcp = false;
  /// IPVS sysctl: a template whose server is quiesced is no longer valid.
  bool expire_quiescent_template = false;
  /// Where the slot arrays come from (nullptr: new/delete). E.g. a resource over huge pages or
  /// DPDK memory; it must outlive the table. Only the constructor allocates.
  std::pmr::memory_resource* memory = nullptr;
};

struct conn_table_stats {
  std::uint64_t inserted = 0;
  std::uint64_t refused_full = 0;       // table full and nothing evictable in the window
  std::uint64_t refused_exists = 0;     // a live connection has the key
  std::uint64_t expired = 0;            // deadline reached (by the wheel, or reaped by an insert)
  std::uint64_t evicted_embryonic = 0;  // NONE / SYN_RECV / SYNACK removed to make room
  std::uint64_t evicted_inactive = 0;   // an inactive connection removed to make room
  std::uint64_t reused = 0;             // removed so that a SYN is scheduled afresh
  std::uint64_t nodest_expired = 0;     // removed: server gone, expire_nodest_conn on
  std::uint64_t nodest_dropped = 0;     // lookups answered `drop`: server gone
  std::uint64_t flushed = 0;            // erase()
};

/// A new connection's value.
struct new_conn {
  std::uint32_t dest = 0;            // real_server::handle
  bool nat = false;                  // NAT (masquerade): indexed for replies; others get NOOUTPUT
  template_ref control = no_template;// the persistence template it depends on, if any
  /// The connection's destination port (IPVS cp->dport: the port the server answers from), 0 =
  /// the server's registered port, or the virtual port if that is 0 (ip_vs_schedule). A
  /// persistent service passes persistence::conn_dest_port(): a packet to a port other than the
  /// service's (FTP data, fwmark, port-0 services) keeps its own port (ip_vs_sched_persist).
  /// Must be 0, the server's port or the virtual port (else errc::bad_dest_port).
  std::uint16_t dest_port = 0;
  /// Apply the packet that creates the connection in the same step: it starts in the state that
  /// packet moves it to, with that state's timeout, counted once where insert() then
  /// on_packet(ref, first_tcp_flags, direction::input, now) would count it twice (bound
  /// inactive, then active: two count events, the second half of a new connection's count
  /// work). The outcome is the same. SCTP ignores it (its event needs the packet's chunks):
  /// follow with on_packet(ref, sctp_event, ...).
  bool first_packet = false;
  std::uint8_t first_tcp_flags = 0;
};

/// What the data path should do with a client packet (lookup_input).
enum class input_action : std::uint8_t {
  hit,          // forward on `ref`
  miss,         // no connection: schedule if the packet may start one
  rescheduled,  // an old connection matched and was removed: schedule afresh
  drop,         // the connection's server was removed (expire_nodest_conn off): drop
};

[[nodiscard]] constexpr std::string_view to_string(input_action a) noexcept {
  switch (a) {
    case input_action::hit: return "hit";
    case input_action::miss: return "miss";
    case input_action::rescheduled: return "rescheduled";
    case input_action::drop: return "drop";
  }
  return "unknown";
}

struct input_lookup {
  conn_ref ref = no_conn;
  input_action action = input_action::miss;
};

struct expire_result {
  std::uint32_t conns_expired = 0;
  std::uint32_t templates_expired = 0;
  std::uint32_t visited = 0;  // groups examined (the budget spent)
  bool caught_up = true;      // false: call again, due entries remain
};

/// State before and after a packet (TCP: tcp_state values; UDP and others stay 0).
struct state_change {
  std::uint8_t from = 0;
  std::uint8_t to = 0;
};

/// A connection as listings see it.
template <class Addr>
struct conn_view {
  conn_ref ref = no_conn;
  conn_key<Addr> key;
  std::uint32_t dest = 0;
  std::uint8_t state = 0;
  bool nat = false;
  bool no_output = false;  // IPVS NOOUTPUT: no server→client packet seen (DR/TUN)
  template_ref control = no_template;
  std::int64_t remaining_ns = 0;
};

/// IPVS's state name for a connection of `protocol` (TCP and SCTP states; "UDP" for UDP).
[[nodiscard]] constexpr std::string_view state_name(std::uint8_t protocol,
                                                    std::uint8_t state) noexcept {
  if (protocol == wire::ip_proto::tcp) return to_string(static_cast<tcp_state>(state));
  if (protocol == wire::ip_proto::sctp) return to_string(static_cast<sctp_state>(state));
  if (protocol == wire::ip_proto::udp) return "UDP";
  return "NONE";
}

namespace detail {
template <class Addr>
struct conn_slot {
  Addr client_addr;
  Addr virtual_addr;
  std::uint16_t client_port;
  std::uint16_t virtual_port;
  std::uint32_t deadline;
  std::uint64_t bits;
};

// conn_slot::bits
inline constexpr std::uint64_t bit_no_output = 1ull << 12;
inline constexpr std::uint64_t bit_controlled = 1ull << 13;
inline constexpr std::uint64_t bit_nat = 1ull << 14;
// The server answers from the virtual port, not from its registered port (new_conn::dest_port).
inline constexpr std::uint64_t bit_reply_from_vport = 1ull << 15;
inline constexpr unsigned state_shift = 8;
inline constexpr unsigned dest_shift = 16;
inline constexpr unsigned template_shift = 40;

constexpr std::uint8_t protocol_of(std::uint64_t b) noexcept { return static_cast<std::uint8_t>(b); }
constexpr std::uint8_t state_of(std::uint64_t b) noexcept {
  return static_cast<std::uint8_t>((b >> state_shift) & 0xF);
}
constexpr std::uint32_t dest_of(std::uint64_t b) noexcept {
  return static_cast<std::uint32_t>((b >> dest_shift) & 0xFF'FFFF);
}
constexpr template_ref template_of(std::uint64_t b) noexcept {
  return static_cast<template_ref>((b >> template_shift) & 0xFF'FFFF);
}
constexpr std::uint64_t with_state(std::uint64_t b, std::uint8_t s) noexcept {
  return (b & ~(std::uint64_t{0xF} << state_shift)) | (std::uint64_t{s} << state_shift);
}
// Counted in ActiveConn: TCP in an active state, SCTP in ESTABLISHED (IPVS's INACTIVE flag
// follows the state; UDP and other protocols stay inactive).
constexpr bool active_state(std::uint8_t protocol, std::uint8_t state) noexcept {
  if (protocol == wire::ip_proto::tcp) return is_active(static_cast<tcp_state>(state));
  if (protocol == wire::ip_proto::sctp) return is_active(static_cast<sctp_state>(state));
  return false;
}
// The state that assures a controlled connection's template: ESTABLISHED in both tables
// (set_tcp_state, set_sctp_state); UDP assures on output packets instead.
constexpr bool assures_template(std::uint8_t protocol, std::uint8_t state) noexcept {
  if (protocol == wire::ip_proto::tcp) return state == static_cast<std::uint8_t>(tcp_state::established);
  if (protocol == wire::ip_proto::sctp) return state == static_cast<std::uint8_t>(sctp_state::established);
  return false;
}
constexpr bool counted_active(std::uint64_t b) noexcept {
  return active_state(protocol_of(b), state_of(b));
}
// Half-open: what a SYN (or INIT) flood creates. SCTP: every state before ESTABLISHED.
constexpr bool embryonic(std::uint64_t b) noexcept {
  if (protocol_of(b) == wire::ip_proto::sctp)
    return state_of(b) < static_cast<std::uint8_t>(sctp_state::established);
  const auto s = static_cast<tcp_state>(state_of(b));
  return protocol_of(b) == wire::ip_proto::tcp &&
         (s == tcp_state::none || s == tcp_state::syn_recv || s == tcp_state::synack);
}
}  // namespace detail

template <class Addr>
class basic_conn_table {
 public:
  using address_type = Addr;
  using key_type = conn_key<Addr>;
  using reply_key_type = reply_key<Addr>;
  using template_key_type = template_key<Addr>;
  using template_table_type = basic_template_table<Addr>;
  using view_type = conn_view<Addr>;

  /// The largest burst find_burst takes (the hit mask is 64 bits).
  static constexpr std::size_t max_burst = 64;

  /// Builds the table; allocates everything it will ever use. Precondition: `validate(config)`
  /// is errc::ok (use create() to get the error instead). Control plane; may throw bad_alloc.
  explicit basic_conn_table(const conn_table_config& config)
      : conns_(detail::groups_for(config.capacity), config.memory),
        replies_(config.nat_index ? detail::groups_for(config.capacity) : 0, config.memory),
        templates_(config.template_capacity,
                   wheel_size(detail::groups_for(config.template_capacity), config.wheel_buckets),
                   config.seed ^ 0x9e37'79b9'7f4a'7c15ull,
                   timeouts{}.template_busy * ticks_per_second, config.memory),
        dests_(config.max_dests),
        wheel_(wheel_size(detail::groups_for(config.capacity), config.wheel_buckets)),
        capacity_(config.capacity),
        seed_(config.seed),
        reuse_(config.reuse),
        secure_tcp_(config.secure_tcp),
        expire_quiescent_template_(config.expire_quiescent_template) {
    apply_timeouts(config.idle_timeouts);
  }

  [[nodiscard]] static errc validate(const conn_table_config& c) noexcept {
    if (c.capacity == 0 || c.capacity > conn_table_config::max_capacity) return errc::bad_config;
    if (c.max_dests == 0 || c.max_dests > dest_registry<Addr>::max_handles) return errc::bad_config;
    if (std::uint64_t{detail::groups_for(c.template_capacity)} * detail::group_width >= no_template)
      return errc::bad_config;
    if (c.wheel_buckets > conn_table_config::max_wheel_buckets) return errc::bad_config;
    if (!c.idle_timeouts.valid()) return errc::bad_timeout;
    return errc::ok;
  }
  [[nodiscard]] static expected<basic_conn_table, errc> create(const conn_table_config& c) {
    if (auto e = validate(c); e != errc::ok) return unexpected{e};
    return basic_conn_table(c);
  }

  basic_conn_table(basic_conn_table&&) noexcept = default;
  basic_conn_table& operator=(basic_conn_table&&) noexcept = default;

  // ---------------------------------------------------------------- control plane

  /// Registers a real server's endpoint (needed for its NAT connections). `port` 0 means "the
  /// connection's virtual port". Refused while the server has connections and the endpoint
  /// would change (their reply-index entries were hashed from it).
  [[nodiscard]] errc set_dest(std::uint32_t dest, const Addr& address, std::uint16_t port) noexcept {
    if (!dests_.valid(dest)) return errc::bad_dest;
    auto& d = dests_[dest];
    const bool same = d.has_endpoint && d.address == address && d.port == port;
    if (!same && d.has_endpoint && d.counts.active_conns + d.counts.inactive_conns != 0)
      return errc::dest_in_use;
    d.address = address;
    d.port = port;
    d.has_endpoint = true;
    d.available = true;
    return errc::ok;
  }
  /// false: removed from its service (IPVS clears AVAILABLE); its connections stay until they
  /// expire or are reused (reuse_policy).
  [[nodiscard]] errc set_dest_available(std::uint32_t dest, bool available) noexcept {
    if (!dests_.valid(dest)) return errc::bad_dest;
    dests_[dest].available = available;
    return errc::ok;
  }
  /// true: weight 0 (ipvsadm -e ... -w 0).
  [[nodiscard]] errc set_dest_quiesced(std::uint32_t dest, bool quiesced) noexcept {
    if (!dests_.valid(dest)) return errc::bad_dest;
    dests_[dest].quiesced = quiesced;
    return errc::ok;
  }
  void set_observer(count_observer o) noexcept { dests_.set_observer(o); }
  /// New timeouts apply from each connection's next packet (as in IPVS).
  [[nodiscard]] errc set_timeouts(const timeouts& t) noexcept {
    if (!t.valid()) return errc::bad_timeout;
    apply_timeouts(t);
    return errc::ok;
  }
  [[nodiscard]] const timeouts& current_timeouts() const noexcept { return timeouts_; }
  void set_secure_tcp(bool on) noexcept { secure_tcp_ = on; }
  void set_expire_quiescent_template(bool on) noexcept { expire_quiescent_template_ = on; }
  void set_reuse_policy(const reuse_policy& p) noexcept { reuse_ = p; }

  [[nodiscard]] const dest_counts& counts(std::uint32_t dest) const noexcept {
    return dests_[dest].counts;
  }
  [[nodiscard]] const dest_record<Addr>& dest_info(std::uint32_t dest) const noexcept {
    return dests_[dest];
  }

  // ---------------------------------------------------------------- lookups

  [[nodiscard]] std::uint64_t hash(const key_type& k) const noexcept { return k.hash(seed_); }
  [[nodiscard]] std::uint64_t hash(const reply_key_type& k) const noexcept { return k.hash(seed_); }

  /// Starts loading the home group of hash `h` (before an insert or a find of that key a little
  /// later; find_burst does this itself).
  void prefetch(std::uint64_t h) const noexcept { conns_.prefetch_group(conns_.home(h)); }

  /// The live connection with this key, or no_conn.
  [[nodiscard]] conn_ref find(const key_type& k, std::uint64_t h, std::int64_t now) const noexcept {
    const std::uint32_t r = find_any(k, h);
    return r == detail::npos32 || reached(r, floor_tick(now)) ? no_conn : r;
  }
  [[nodiscard]] conn_ref find(const key_type& k, std::int64_t now) const noexcept {
    return find(k, hash(k), now);
  }

  /// Looks up a burst: hashes every key, prefetches every home group, matches the metadata and
  /// prefetches each first candidate slot, then compares — so the memory accesses of the whole
  /// burst overlap (DPDK rte_hash_lookup_bulk, Boost bulk visit). out[i] = ref or no_conn;
  /// returns the hit mask. Precondition: keys.size() <= max_burst, out.size() >= keys.size().
  std::uint64_t find_burst(std::span<const key_type> keys, std::span<conn_ref> out,
                           std::int64_t now) const noexcept {
    std::uint64_t hashes[max_burst];
    const std::size_t n = std::min(keys.size(), max_burst);
    std::uint32_t home[max_burst];
    for (std::size_t i = 0; i < n; ++i) {
      hashes[i] = hash(keys[i]);
      conns_.prefetch_group(home[i] = conns_.home(hashes[i]));
    }
    return match_burst(keys.first(n), hashes, home, out, now);
  }
  /// The same with hashes computed by the caller (e.g. once per packet, shared with a shard
  /// choice). Precondition: hashes[i] == hash(keys[i]).
  std::uint64_t find_burst(std::span<const key_type> keys, std::span<const std::uint64_t> hashes,
                           std::span<conn_ref> out, std::int64_t now) const noexcept {
    const std::size_t n = std::min(keys.size(), max_burst);
    std::uint32_t home[max_burst];
    for (std::size_t i = 0; i < n; ++i) conns_.prefetch_group(home[i] = conns_.home(hashes[i]));
    return match_burst(keys.first(n), hashes.data(), home, out, now);
  }

  /// Starts loading the NAT reply index's group for hash(rk) == hr (a burst's misses that may be
  /// replies, before find_reply); nothing without the index.
  void prefetch_reply(std::uint64_t hr) const noexcept {
    if (!replies_.empty_storage()) replies_.prefetch_group(replies_.home(hr));
  }

  /// A server→client packet's connection (ip_vs_conn_out_get): a NAT connection whose client
  /// endpoint is the packet's destination and whose real server endpoint is its source; else a
  /// non-NAT connection whose virtual endpoint is the source (replies the director sees in
  /// DR/TUN, e.g. a local server). no_conn if none.
  [[nodiscard]] conn_ref find_reply(const reply_key_type& rk, std::int64_t now) const noexcept {
    return find_reply(rk, hash(rk), now);
  }
  /// The same with the reply key's hash computed by the caller (hr == hash(rk)).
  [[nodiscard]] conn_ref find_reply(const reply_key_type& rk, std::uint64_t hr, std::int64_t now) const noexcept {
    const std::uint32_t now_floor = floor_tick(now);
    if (!replies_.empty_storage()) {
      // Two live NAT connections can share a reply key (two virtual services on one server
      // endpoint, one client ip:port); an entry past its deadline is skipped, not an answer.
      const std::uint32_t rr = replies_.find(hr, [&](std::uint32_t conn) {
        return reply_matches(conns_.slot(conn), rk) && !reached(conn, now_floor);
      });
      if (rr != detail::npos32) return replies_.slot(rr);
    }
    const key_type k{rk.client_addr, rk.server_addr, rk.client_port, rk.server_port, rk.protocol};
    const std::uint32_t r = find_any(k, hash(k));
    if (r == detail::npos32 || (conns_.slot(r).bits & detail::bit_nat) || reached(r, now_floor))
      return no_conn;
    return r;
  }

  /// A client packet's connection with IPVS's reuse rules applied (ip_vs_in_hook): a SYN that
  /// finds an uncontrolled connection in TIME_WAIT/CLOSE (conn_reuse_mode), or one whose server
  /// was removed or quiesced (reschedule_syn_to_unavailable_dest), removes it and answers
  /// `rescheduled`; a packet for a removed server's connection answers `drop`, or removes it
  /// with expire_nodest_conn. SCTP: pass tcp_flag::syn when the packet's first chunk is INIT
  /// (is_sctp_init); an INIT on an uncontrolled CLOSED association is a reuse.
  /// conn::input_flags(packet_view) (packet_input.hpp) gives these flags for any protocol.
  input_lookup lookup_input(const key_type& k, std::uint64_t h, std::uint8_t tcp_flags,
                            std::int64_t now) noexcept {
    return apply_input_rules(find(k, h, now), tcp_flags, now);
  }
  /// Whether `ref` still holds the connection `k`. A ref from find()/find_burst() stays valid
  /// only until the next insert (which may evict), erase, expire or rescheduling removal.
  [[nodiscard]] bool holds(conn_ref ref, const key_type& k) const noexcept {
    return ref < conns_.slot_count() && conns_.occupied(ref) && key_of(conns_.slot(ref)) == k;
  }

  /// apply_input_rules for a ref found earlier in the burst: a ref that no longer holds `k`
  /// (its slot was freed or reused since the lookup) is looked up again first.
  input_lookup apply_input_rules(conn_ref r, const key_type& k, std::uint8_t tcp_flags,
                                 std::int64_t now) noexcept {
    if (r != no_conn && !holds(r, k)) r = find(k, now);
    return apply_input_rules(r, tcp_flags, now);
  }

  /// plain_hit_dest's "not a plain hit" (server handles are 24 bits).
  static constexpr std::uint32_t no_dest = detail::npos32;
  /// Whether apply_input_rules(r, k, tcp_flags, now) would answer `hit` with `r` and change
  /// nothing: `r` still holds `k`, the packet is no SYN that could reuse the connection, and its
  /// server is available. The director's established-flow fast lane asks this first.
  [[nodiscard]] bool plain_hit(conn_ref r, const key_type& k, std::uint8_t tcp_flags) const noexcept {
    return r != no_conn && holds(r, k) && plain_hit_dest(r, tcp_flags) != no_dest;
  }
  /// plain_hit answered as the connection's server (dest(r)), or no_dest: the lane needs both,
  /// and reading the slot once saves its address decode (r / 15, r % 15). `r` is live and came
  /// from find_burst(k) while structure_version() was `found_version`; with no insert or removal
  /// since, it still holds `k` and the key compare is skipped.
  [[nodiscard]] std::uint32_t plain_hit_dest(conn_ref r, const key_type& k, std::uint64_t found_version,
                                             std::uint8_t tcp_flags) const noexcept {
    return structure_version_ == found_version || holds(r, k) ? plain_hit_dest(r, tcp_flags) : no_dest;
  }
  /// plain_hit for a live `r` known to hold its key (found with no insert or removal since).
  [[nodiscard]] bool plain_hit_found(conn_ref r, std::uint8_t tcp_flags) const noexcept {
    return plain_hit_dest(r, tcp_flags) != no_dest;
  }
  [[nodiscard]] std::uint32_t plain_hit_dest(conn_ref r, std::uint8_t tcp_flags) const noexcept {
    const std::uint64_t bits = conns_.slot(r).bits;
    const std::uint8_t protocol = detail::protocol_of(bits);
    if ((tcp_flags & tcp_flag::syn) && (protocol == wire::ip_proto::tcp || protocol == wire::ip_proto::sctp))
      return no_dest;
    const std::uint32_t d = detail::dest_of(bits);
    return dests_[d].available ? d : no_dest;
  }

  /// The rules of lookup_input for a connection just found (no insert or removal since);
  /// no_conn gives `miss`.
  input_lookup apply_input_rules(conn_ref r, std::uint8_t tcp_flags, std::int64_t now) noexcept {
    if (r == no_conn) return {};
    const std::uint64_t bits = conns_.slot(r).bits;
    const auto& d = dests_[detail::dest_of(bits)];
    const std::uint8_t protocol = detail::protocol_of(bits);
    const bool syn = (protocol == wire::ip_proto::tcp || protocol == wire::ip_proto::sctp) &&
                     (tcp_flags & tcp_flag::syn);
    if (syn) {
      bool resched = false;
      if (!d.available || d.quiesced)
        resched = reuse_.reschedule_syn_to_unavailable_dest ||
                  (reuse_.conn_reuse_mode != 0 && reuse_.expire_nodest_conn && d.quiesced);
      if (!resched && reuse_.conn_reuse_mode != 0 && new_conn_expected(bits)) resched = true;
      if (resched) {
        remove(r, removal::reused, floor_tick(now));
        return {no_conn, input_action::rescheduled};
      }
    }
    if (!d.available) {
      if (reuse_.expire_nodest_conn) {
        remove(r, removal::nodest, floor_tick(now));
        return {no_conn, input_action::rescheduled};
      }
      ++stats_.nodest_dropped;
      return {r, input_action::drop};
    }
    return {r, input_action::hit};
  }
  input_lookup lookup_input(const key_type& k, std::uint8_t tcp_flags, std::int64_t now) noexcept {
    return lookup_input(k, hash(k), tcp_flags, now);
  }

  // ---------------------------------------------------------------- changes

  /// Creates a connection in state NONE with the 3 s initial timeout, counted inactive on its
  /// server (ip_vs_conn_new, ip_vs_bind_dest); follow with on_packet() for the packet that
  /// created it, or pass that packet in `nc` (new_conn::first_packet). A connection whose
  /// deadline is reached and has the same key is reaped first.
  /// Errors: exists, table_full, bad_dest, unknown_dest_endpoint, no_nat_index, bad_template.
  [[nodiscard]] expected<conn_ref, errc> insert(const key_type& k, std::uint64_t h,
                                                const new_conn& nc, std::int64_t now) noexcept {
    if (!dests_.valid(nc.dest)) return unexpected{errc::bad_dest};
    if (nc.nat) {
      if (replies_.empty_storage()) return unexpected{errc::no_nat_index};
      if (!dests_[nc.dest].has_endpoint) return unexpected{errc::unknown_dest_endpoint};
    }
    if (nc.control != no_template && !templates_.live(nc.control))
      return unexpected{errc::bad_template};
    // Replies come from the server's port unless the connection's port is the virtual one.
    const std::uint16_t server_port = dests_[nc.dest].port;
    if (nc.dest_port != 0 && nc.dest_port != server_port && nc.dest_port != k.virtual_port)
      return unexpected{errc::bad_dest_port};
    const bool reply_from_vport = server_port != 0 && nc.dest_port == k.virtual_port &&
                                  nc.dest_port != server_port;
    const std::uint32_t now_floor = floor_tick(now);
    if (const std::uint32_t old = find_any(k, h); old != detail::npos32) {
      if (!reached(old, now_floor)) {
        ++stats_.refused_exists;
        return unexpected{errc::exists};
      }
      remove(old, removal::expired, now_floor);
    }
    // Take the template's reference first, so that making room cannot drop it.
    if (nc.control != no_template) templates_.add_control(nc.control, now);
    if (size_ == capacity_ && !make_room(h, now_floor)) {
      if (nc.control != no_template)
        templates_.remove_control(nc.control, false, now_floor, dests_);
      ++stats_.refused_full;
      return unexpected{errc::table_full};
    }
    const std::uint32_t ref = conns_.claim(h);
    slot_type& s = conns_.slot(ref);
    s.client_addr = k.client_addr;
    s.virtual_addr = k.virtual_addr;
    s.client_port = k.client_port;
    s.virtual_port = k.virtual_port;
    // What on_packet would do with the first packet (an input one: NOOUTPUT stays as set).
    std::uint8_t state = 0;  // NONE, of either protocol's table
    std::uint32_t ticks = initial_ticks_;
    if (nc.first_packet && k.protocol != wire::ip_proto::sctp) {
      if (k.protocol == wire::ip_proto::tcp) {
        state = static_cast<std::uint8_t>(next_tcp_state(
            tcp_state::none, nc.nat ? direction::input : direction::input_only, nc.first_tcp_flags, secure_tcp_));
        ticks = tcp_ticks_[state];
      } else {
        ticks = k.protocol == wire::ip_proto::udp ? udp_ticks_ : other_ticks_;
      }
    }
    s.deadline = ceil_tick(now) + ticks;
    std::uint64_t bits = std::uint64_t{k.protocol} | (std::uint64_t{nc.dest} << detail::dest_shift) |
                         detail::with_state(0, state);
    bits |= nc.nat ? detail::bit_nat : detail::bit_no_output;
    if (reply_from_vport) bits |= detail::bit_reply_from_vport;
    if (nc.control != no_template)
      bits |= detail::bit_controlled | (std::uint64_t{nc.control} << detail::template_shift);
    else
      bits |= std::uint64_t{no_template} << detail::template_shift;
    s.bits = bits;
    if (nc.control != no_template) templates_.control_deadline(nc.control, s.deadline);
    ++size_;
    ++structure_version_;
    ++stats_.inserted;
    dests_.conn_bound(nc.dest, detail::active_state(k.protocol, state), ref);
    // As change_state (a sloppy first ACK's ESTABLISHED assures the template).
    if (nc.control != no_template && detail::assures_template(k.protocol, state))
      templates_.assure(nc.control);
    if (nc.nat) {
      const std::uint64_t hr = reply_hash(s);
      replies_.slot(replies_.claim(hr)) = ref;
    }
    wheel_.arm(links(), storage_type::group_of(ref), s.deadline, now_floor);
    return ref;
  }
  [[nodiscard]] expected<conn_ref, errc> insert(const key_type& k, const new_conn& nc,
                                                std::int64_t now) noexcept {
    return insert(k, hash(k), nc, now);
  }

  /// A packet on a live connection: TCP moves through IPVS's table (set_tcp_state: NOOUTPUT
  /// selects the input-only row until the first output packet; counts move between active and
  /// inactive; ESTABLISHED assures the template); every protocol's idle timer restarts with the
  /// new state's timeout. UDP assures its template on an output packet (udp_state_transition).
  /// An SCTP connection keeps its state here (its events come through the sctp_event form).
  /// Always inlined: every established packet takes it, and the call showed in the profile.
  [[gnu::always_inline]] state_change on_packet(conn_ref ref, std::uint8_t tcp_flags, direction dir,
                                                std::int64_t now) noexcept {
    slot_type& s = conns_.slot(ref);
    std::uint64_t bits = s.bits;
    const std::uint8_t protocol = detail::protocol_of(bits);
    const std::uint8_t from = detail::state_of(bits);
    std::uint8_t to = from;
    std::uint32_t timeout;
    if (protocol == wire::ip_proto::tcp) {
      const direction d = row_for(bits, dir);
      to = static_cast<std::uint8_t>(
          next_tcp_state(static_cast<tcp_state>(from), d, tcp_flags, secure_tcp_));
      bits = to == from ? row_taken(bits, dir) : change_state(row_taken(bits, dir), to);
      timeout = tcp_ticks_[to];
    } else if (protocol == wire::ip_proto::sctp) {
      bits = row_taken(bits, dir);
      timeout = sctp_ticks_[from];
    } else {
      if (protocol == wire::ip_proto::udp && dir == direction::output &&
          (bits & detail::bit_controlled))
        templates_.assure(detail::template_of(bits));
      timeout = protocol == wire::ip_proto::udp ? udp_ticks_ : other_ticks_;
    }
    s.bits = bits;
    set_deadline(s, ref, ceil_tick(now) + timeout, floor_tick(now));
    return {from, to};
  }

  /// An SCTP packet on a live SCTP connection, as its event (sctp_event_of; a packet without an
  /// event takes the flags form): IPVS's SCTP table (set_sctp_state) with the same NOOUTPUT row
  /// choice as TCP; only ESTABLISHED counts active and assures the template; the idle timer
  /// restarts with the new state's timeout. A non-SCTP connection is left alone ({} returned).
  state_change on_packet(conn_ref ref, sctp_event event, direction dir, std::int64_t now) noexcept {
    slot_type& s = conns_.slot(ref);
    std::uint64_t bits = s.bits;
    if (detail::protocol_of(bits) != wire::ip_proto::sctp) return {};
    const std::uint8_t from = detail::state_of(bits);
    const direction d = row_for(bits, dir);
    const auto to =
        static_cast<std::uint8_t>(next_sctp_state(static_cast<sctp_state>(from), event, d));
    bits = change_state(row_taken(bits, dir), to);
    s.bits = bits;
    set_deadline(s, ref, ceil_tick(now) + sctp_ticks_[to], floor_tick(now));
    return {from, to};
  }

  /// Puts a TCP connection in `state` with the accounting of a transition and that state's
  /// timeout (what the sync protocol's backup and IPVS's FTP LISTEN helper do).
  /// Returns false (and changes nothing) for a non-TCP connection or a state outside IPVS's
  /// table: a sync message's state byte comes off the network.
  bool set_state(conn_ref ref, tcp_state state, std::int64_t now) noexcept {
    return set_protocol_state(ref, wire::ip_proto::tcp, static_cast<std::uint8_t>(state),
                              tcp_state_count, tcp_ticks_.data(), now);
  }
  /// The same for an SCTP connection (sync messages carry SCTP states too).
  bool set_state(conn_ref ref, sctp_state state, std::int64_t now) noexcept {
    return set_protocol_state(ref, wire::ip_proto::sctp, static_cast<std::uint8_t>(state),
                              sctp_state_count, sctp_ticks_.data(), now);
  }

  /// Removes a connection now (control-plane flush): counts released; a non-ASSURED template
  /// left without connections goes with it.
  /// A ref whose slot is already free is ignored (its counts were released once already).
  void erase(conn_ref ref, std::int64_t now) noexcept {
    if (ref >= conns_.slot_count() || !conns_.occupied(ref)) return;
    remove(ref, removal::flushed, floor_tick(now));
  }

  /// Removes connections (then templates) whose deadline is reached at `now`, examining at most
  /// `budget` groups of 15 slots. Call every burst; `caught_up` false means call again.
  expire_result expire(std::int64_t now, std::uint32_t budget) noexcept {
    expire_result r;
    const std::uint32_t now_floor = floor_tick(now);
    const std::uint64_t before = stats_.expired;
    const poll_result p = wheel_.poll(links(), now_floor, budget,
                                      [&](std::uint32_t g) { visit_group(g, now_floor); });
    r.conns_expired = static_cast<std::uint32_t>(stats_.expired - before);
    r.visited = p.visited;
    r.caught_up = p.caught_up;
    if (templates_.enabled()) {
      const std::uint64_t t_before = templates_.stats().expired;
      const poll_result q = templates_.expire(now, budget - p.visited, dests_);
      r.templates_expired = static_cast<std::uint32_t>(templates_.stats().expired - t_before);
      r.visited += q.visited;
      r.caught_up = r.caught_up && q.caught_up;
    }
    return r;
  }

  // ---------------------------------------------------------------- persistence

  /// A valid template for this key, or no_template. A template whose server is no longer
  /// available (or quiesced, with expire_quiescent_template) is invalidated on the way
  /// (ip_vs_check_template) and the caller schedules afresh.
  [[nodiscard]] template_ref find_template(const template_key_type& k, std::int64_t now) noexcept {
    const template_ref t = templates_.find(k, floor_tick(now));
    if (t == no_template) return no_template;
    return templates_.check(t, dests_, expire_quiescent_template_) ? t : no_template;
  }
  /// Creates a template for a freshly scheduled server, with the service's -p timeout.
  /// Errors: no_template_table, bad_dest, exists, template_table_full, bad_timeout.
  [[nodiscard]] expected<template_ref, errc> insert_template(const template_key_type& k,
                                                             std::uint32_t dest,
                                                             std::uint32_t timeout_s,
                                                             std::int64_t now) noexcept {
    if (!dests_.valid(dest)) return unexpected{errc::bad_dest};
    if (timeout_s > timeouts::max_seconds) return unexpected{errc::bad_timeout};
    return templates_.insert(k, dest, timeout_s * ticks_per_second, now, dests_);
  }
  [[nodiscard]] const template_table_type& templates() const noexcept { return templates_; }

  // ---------------------------------------------------------------- inspection

  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  /// Changes on every insert and removal: a ref found while it stays the same still holds its key.
  [[nodiscard]] std::uint64_t structure_version() const noexcept { return structure_version_; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }
  /// Whether NAT connections can be inserted (conn_table_config::nat_index).
  [[nodiscard]] bool has_nat_index() const noexcept { return !replies_.empty_storage(); }
  [[nodiscard]] std::uint32_t slot_count() const noexcept { return conns_.slot_count(); }
  [[nodiscard]] const conn_table_stats& stats() const noexcept { return stats_; }

  struct memory_use {
    std::size_t conns = 0, nat_index = 0, templates = 0, wheel = 0, dests = 0;
    [[nodiscard]] std::size_t total() const noexcept {
      return conns + nat_index + templates + wheel + dests;
    }
  };
  /// Bytes allocated by the constructor, by part (all of it: nothing is allocated later).
  [[nodiscard]] memory_use memory() const noexcept {
    return {conns_.memory_bytes(), replies_.memory_bytes(), templates_.memory_bytes(),
            wheel_.memory_bytes(), dests_.memory_bytes()};
  }
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return memory().total(); }
  static constexpr std::size_t group_bytes = sizeof(typename detail::group_storage<
      detail::conn_slot<Addr>, wheel_links>::group_type);
  static constexpr std::size_t slot_bytes = sizeof(detail::conn_slot<Addr>);

  // Accessors; `ref` must be a live connection.
  [[nodiscard]] std::uint32_t dest(conn_ref ref) const noexcept {
    return detail::dest_of(conns_.slot(ref).bits);
  }
  [[nodiscard]] std::uint8_t state(conn_ref ref) const noexcept {
    return detail::state_of(conns_.slot(ref).bits);
  }
  [[nodiscard]] std::uint8_t protocol(conn_ref ref) const noexcept {
    return detail::protocol_of(conns_.slot(ref).bits);
  }
  [[nodiscard]] bool is_nat(conn_ref ref) const noexcept {
    return conns_.slot(ref).bits & detail::bit_nat;
  }
  /// The connection's destination port (IPVS cp->dport): where a NAT request is rewritten to
  /// and where its replies come from (new_conn::dest_port). Requires the server's endpoint.
  [[nodiscard]] std::uint16_t dest_port(conn_ref ref) const noexcept {
    const slot_type& s = conns_.slot(ref);
    return reply_port(s, dests_[detail::dest_of(s.bits)]);
  }
  [[nodiscard]] bool no_output(conn_ref ref) const noexcept {
    return conns_.slot(ref).bits & detail::bit_no_output;
  }
  [[nodiscard]] template_ref control(conn_ref ref) const noexcept {
    const std::uint64_t b = conns_.slot(ref).bits;
    return (b & detail::bit_controlled) ? detail::template_of(b) : no_template;
  }
  [[nodiscard]] key_type key(conn_ref ref) const noexcept { return key_of(conns_.slot(ref)); }
  /// Nanoseconds until the connection's deadline (<= 0 once reached).
  [[nodiscard]] std::int64_t remaining_ns(conn_ref ref, std::int64_t now) const noexcept {
    const auto d = static_cast<std::int32_t>(conns_.slot(ref).deadline - floor_tick(now));
    return std::int64_t{d} * tick_ns - (now % tick_ns);
  }
  [[nodiscard]] view_type view(conn_ref ref, std::int64_t now) const noexcept {
    const std::uint64_t b = conns_.slot(ref).bits;
    return {ref,          key(ref),     detail::dest_of(b),
            detail::state_of(b),        (b & detail::bit_nat) != 0,
            (b & detail::bit_no_output) != 0, control(ref), remaining_ns(ref, now)};
  }

  /// Visits every live connection in slot order: f(view).
  template <class F>
  void for_each(F&& f, std::int64_t now) const {
    const std::uint32_t now_floor = floor_tick(now);
    for (std::uint32_t g = 0; g < conns_.group_count(); ++g)
      for (std::uint32_t m = conns_.group(g).meta.match_occupied(); m != 0; m &= m - 1) {
        const std::uint32_t ref = g * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m));
        if (reached(ref, now_floor)) continue;
        const view_type v = view(ref, now);
        f(v);
      }
  }

  /// The groups an insert of hash `h` may evict from, in probe order (structural; for tests and
  /// for reasoning about the full-table policy). Group of a ref: ref / 15.
  [[nodiscard]] std::array<std::uint32_t, 2> eviction_window(std::uint64_t h) const noexcept {
    const std::uint32_t g0 = conns_.home(h);
    return {g0, conns_.group_count() > 1 ? conns_.next(g0) : g0};
  }
  /// Every occupied slot of group g (live or reached), in slot order: f(ref).
  template <class F>
  void for_each_in_group(std::uint32_t g, F&& f) const {
    for (std::uint32_t m = conns_.group(g).meta.match_occupied(); m != 0; m &= m - 1)
      f(g * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m)));
  }
  [[nodiscard]] bool occupied(conn_ref ref) const noexcept { return conns_.occupied(ref); }

 private:
  using slot_type = detail::conn_slot<Addr>;
  using storage_type = detail::group_storage<slot_type, wheel_links>;
  using reply_storage_type = detail::group_storage<std::uint32_t, detail::no_tail>;

  // The key occupies the same leading bytes in both types: compare them as one block.
  static constexpr std::size_t key_bytes = 2 * Addr::size + 4;
  static_assert(std::is_standard_layout_v<slot_type> && std::is_standard_layout_v<key_type>);
  static_assert(offsetof(slot_type, client_port) == offsetof(key_type, client_port) &&
                offsetof(slot_type, virtual_port) == offsetof(key_type, virtual_port) &&
                offsetof(slot_type, virtual_port) + 2 == key_bytes);
  static_assert(sizeof(slot_type) == (Addr::size == 4 ? 24 : 48), "slot layout");

  enum class removal : std::uint8_t {
    expired, evicted_embryonic, evicted_inactive, reused, nodest, flushed
  };

  static std::uint32_t wheel_size(std::uint32_t groups, std::uint32_t requested) noexcept {
    if (requested != 0) return requested;
    return std::clamp<std::uint32_t>(std::bit_ceil(std::max<std::uint32_t>(groups / 4, 1)), 64,
                                     16384);
  }

  void apply_timeouts(const timeouts& t) noexcept {
    timeouts_ = t;
    for (std::size_t i = 0; i < tcp_state_count; ++i) tcp_ticks_[i] = t.tcp[i] * ticks_per_second;
    for (std::size_t i = 0; i < sctp_state_count; ++i)
      sctp_ticks_[i] = t.sctp[i] * ticks_per_second;
    udp_ticks_ = t.udp * ticks_per_second;
    other_ticks_ = t.other * ticks_per_second;
    initial_ticks_ = t.initial * ticks_per_second;
    templates_.set_busy_ticks(t.template_busy * ticks_per_second);
  }

  auto links() noexcept {
    return [this](std::uint32_t g) -> wheel_links& { return conns_.group(g).tail; };
  }

  // Word compares, branch-free (a memcmp call here was not always inlined).
  [[nodiscard]] static bool key_equal(const slot_type& s, const key_type& k) noexcept {
    const auto* a = reinterpret_cast<const unsigned char*>(&s);
    const auto* b = reinterpret_cast<const unsigned char*>(&k);
    std::uint64_t diff = 0;
    for (std::size_t off = 0; off + 8 <= key_bytes; off += 8)
      diff |= wire::detail::load_u64(a + off) ^ wire::detail::load_u64(b + off);
    diff |= wire::detail::load_u32(a + key_bytes - 4) ^ wire::detail::load_u32(b + key_bytes - 4);
    return diff == 0 && detail::protocol_of(s.bits) == k.protocol;
  }
  [[nodiscard]] static key_type key_of(const slot_type& s) noexcept {
    return {s.client_addr, s.virtual_addr, s.client_port, s.virtual_port,
            detail::protocol_of(s.bits)};
  }
  [[nodiscard]] std::uint32_t find_any(const key_type& k, std::uint64_t h) const noexcept {
    return conns_.find(h, [&](const slot_type& s) { return key_equal(s, k); });
  }
  [[nodiscard]] bool reached(std::uint32_t ref, std::uint32_t now_floor) const noexcept {
    return tick_reached(conns_.slot(ref).deadline, now_floor);
  }

  // Stages 2 and 3 of a burst (stage 1, hashing and prefetching the home groups, is done by the
  // caller, which passes the home groups it computed): match every home group's metadata and
  // prefetch the first candidate slot, then compare. A key not in its home group whose hash
  // class overflowed goes the scalar way.
  std::uint64_t match_burst(std::span<const key_type> keys, const std::uint64_t* hashes,
                            const std::uint32_t* home, std::span<conn_ref> out,
                            std::int64_t now) const noexcept {
    const std::size_t n = keys.size();
    const std::uint32_t now_floor = floor_tick(now);
    std::uint32_t cand[max_burst];
    for (std::size_t i = 0; i < n; ++i) {
      const auto& grp = conns_.group(home[i]);
      cand[i] = grp.meta.match(storage_type::reduced_hash(hashes[i]));
      if (cand[i] != 0) storage_type::prefetch_slot(grp.slots[std::countr_zero(cand[i])]);
    }
    std::uint64_t hits = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& grp = conns_.group(home[i]);
      const key_type& k = keys[i];
      std::uint32_t r = detail::npos32;
      const std::uint32_t at =
          storage_type::match_in(grp, cand[i], [&](const slot_type& s) { return key_equal(s, k); });
      if (at != detail::npos32) {
        if (!tick_reached(grp.slots[at].deadline, now_floor))
          r = home[i] * detail::group_width + at;
      } else if (grp.meta.overflowed(storage_type::hash_class(hashes[i]))) {
        r = conns_.find_from(conns_.next(home[i]), hashes[i],
                             [&](const slot_type& s) { return key_equal(s, k); });
        if (r != detail::npos32 && reached(r, now_floor)) r = detail::npos32;
      }
      out[i] = r;
      hits |= std::uint64_t{r != detail::npos32} << i;
    }
    return hits;
  }

  // The port a NAT connection's replies come from: its destination port (cp->dport).
  [[nodiscard]] static std::uint16_t reply_port(const slot_type& s,
                                                const dest_record<Addr>& d) noexcept {
    return (d.port != 0 && !(s.bits & detail::bit_reply_from_vport)) ? d.port : s.virtual_port;
  }
  [[nodiscard]] std::uint64_t reply_hash(const slot_type& s) const noexcept {
    const auto& d = dests_[detail::dest_of(s.bits)];
    const reply_key_type rk{d.address, s.client_addr, reply_port(s, d), s.client_port,
                            detail::protocol_of(s.bits)};
    return hash(rk);
  }
  [[nodiscard]] bool reply_matches(const slot_type& s, const reply_key_type& rk) const noexcept {
    if (!(s.bits & detail::bit_nat) || detail::protocol_of(s.bits) != rk.protocol ||
        s.client_port != rk.client_port || !(s.client_addr == rk.client_addr))
      return false;
    const auto& d = dests_[detail::dest_of(s.bits)];
    return d.address == rk.server_addr && reply_port(s, d) == rk.server_port;
  }

  // is_new_conn_expected (ip_vs_core.c): an uncontrolled TCP connection in TIME_WAIT or CLOSE
  // (FIN_WAIT without output with conn_reuse_mode bit 1), an SCTP one in CLOSED.
  [[nodiscard]] bool new_conn_expected(std::uint64_t bits) const noexcept {
    if (bits & detail::bit_controlled) return false;
    if (detail::protocol_of(bits) == wire::ip_proto::sctp)
      return sctp_new_conn_expected(static_cast<sctp_state>(detail::state_of(bits)));
    if (detail::protocol_of(bits) != wire::ip_proto::tcp) return false;
    const auto s = static_cast<tcp_state>(detail::state_of(bits));
    return s == tcp_state::time_wait || s == tcp_state::close ||
           ((reuse_.conn_reuse_mode & 2) && s == tcp_state::fin_wait &&
            (bits & detail::bit_no_output));
  }

  // The row of the state table a packet uses: input-only while no output packet was seen.
  [[nodiscard]] static direction row_for(std::uint64_t bits, direction dir) noexcept {
    return (bits & detail::bit_no_output) && dir == direction::input ? direction::input_only
                                                                     : dir;
  }
  // The first output packet clears NOOUTPUT.
  [[nodiscard]] static std::uint64_t row_taken(std::uint64_t bits, direction dir) noexcept {
    return dir == direction::output ? bits & ~detail::bit_no_output : bits;
  }

  // Counts and template bookkeeping of a state change (set_tcp_state, set_sctp_state): the
  // connection moves between ActiveConn and InActConn; the state that assures the template
  // (ESTABLISHED in both tables) assures it.
  std::uint64_t change_state(std::uint64_t bits, std::uint8_t nxt) noexcept {
    const std::uint8_t cur = detail::state_of(bits);
    if (nxt == cur) return bits;
    const std::uint8_t protocol = detail::protocol_of(bits);
    const std::uint32_t d = detail::dest_of(bits);
    const bool was = detail::active_state(protocol, cur);
    const bool now_active = detail::active_state(protocol, nxt);
    if (was && !now_active)
      dests_.became_inactive(d);
    else if (!was && now_active)
      dests_.became_active(d);
    if (detail::assures_template(protocol, nxt) && (bits & detail::bit_controlled))
      templates_.assure(detail::template_of(bits));
    return detail::with_state(bits, nxt);
  }

  bool set_protocol_state(conn_ref ref, std::uint8_t protocol, std::uint8_t state,
                          std::size_t state_count, const std::uint32_t* ticks,
                          std::int64_t now) noexcept {
    if (state >= state_count) return false;
    slot_type& s = conns_.slot(ref);
    if (detail::protocol_of(s.bits) != protocol) return false;
    s.bits = change_state(s.bits, state);
    set_deadline(s, ref, ceil_tick(now) + ticks[state], floor_tick(now));
    return true;
  }

  // Always inlined: on_packet's callers (the director inlines those too) had it out of line.
  // `s` is conns_.slot(ref), which the callers hold (its decode is a division by 15).
  [[gnu::always_inline]] void set_deadline(slot_type& s, conn_ref ref, std::uint32_t deadline,
                                           std::uint32_t now_floor) noexcept {
    const bool earlier = static_cast<std::int32_t>(deadline - s.deadline) < 0;
    s.deadline = deadline;
    // The template's life follows its connections' deadlines, reaped or not (persistence.hpp).
    if (s.bits & detail::bit_controlled)
      templates_.control_deadline(detail::template_of(s.bits), deadline);
    // Later deadlines need nothing: the group is armed no later than before.
    if (earlier) wheel_.arm(links(), storage_type::group_of(ref), deadline, now_floor);
  }

  // `now_floor` is when the removal happens; an expiry counts from the deadline instead (when
  // IPVS's timer would have removed it), which is what a template's life depends on.
  void remove(std::uint32_t ref, removal why, std::uint32_t now_floor) noexcept {
    slot_type& s = conns_.slot(ref);
    const std::uint64_t bits = s.bits;
    dests_.conn_unbound(detail::dest_of(bits), detail::counted_active(bits), ref);
    if (bits & detail::bit_nat) {
      const std::uint64_t hr = reply_hash(s);
      const std::uint32_t rr = replies_.find(hr, [&](std::uint32_t conn) { return conn == ref; });
      if (rr != detail::npos32) replies_.release(rr, hr);
    }
    if (bits & detail::bit_controlled) {
      const bool forced = why == removal::evicted_embryonic || why == removal::evicted_inactive ||
                          why == removal::flushed;
      templates_.remove_control(detail::template_of(bits), forced,
                                why == removal::expired ? s.deadline : now_floor, dests_);
    }
    conns_.release(ref, hash(key_of(s)));
    --size_;
    ++structure_version_;
    switch (why) {
      case removal::expired: ++stats_.expired; break;
      case removal::evicted_embryonic: ++stats_.evicted_embryonic; break;
      case removal::evicted_inactive: ++stats_.evicted_inactive; break;
      case removal::reused: ++stats_.reused; break;
      case removal::nodest: ++stats_.nodest_expired; break;
      case removal::flushed: ++stats_.flushed; break;
    }
  }

  void visit_group(std::uint32_t g, std::uint32_t now_floor) noexcept {
    bool any = false;
    std::uint32_t earliest = 0;
    for (std::uint32_t m = conns_.group(g).meta.match_occupied(); m != 0; m &= m - 1) {
      const std::uint32_t ref = g * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m));
      const std::uint32_t dl = conns_.slot(ref).deadline;
      if (tick_reached(dl, now_floor)) {
        remove(ref, removal::expired, now_floor);
        continue;
      }
      if (!any || static_cast<std::int32_t>(dl - earliest) < 0) earliest = dl;
      any = true;
    }
    if (any) wheel_.arm(links(), g, earliest, now_floor);
  }

  // Frees one slot in h's window by the policy in the notes above; false when nothing qualifies.
  bool make_room(std::uint64_t h, std::uint32_t now_floor) noexcept {
    const auto window = eviction_window(h);
    const std::uint32_t groups = conns_.group_count() > 1 ? 2 : 1;
    std::uint32_t best = detail::npos32;
    int best_tier = 3;
    std::int32_t best_left = 0;
    for (std::uint32_t w = 0; w < groups; ++w) {
      for (std::uint32_t m = conns_.group(window[w]).meta.match_occupied(); m != 0; m &= m - 1) {
        const std::uint32_t ref =
            window[w] * detail::group_width + static_cast<std::uint32_t>(std::countr_zero(m));
        const slot_type& s = conns_.slot(ref);
        const auto left = static_cast<std::int32_t>(s.deadline - now_floor);
        int tier;
        if (left <= 0)
          tier = 0;
        else if (detail::embryonic(s.bits))
          tier = 1;
        else if (!detail::counted_active(s.bits))
          tier = 2;
        else
          continue;
        if (tier < best_tier || (tier == best_tier && left < best_left)) {
          best = ref;
          best_tier = tier;
          best_left = left;
        }
      }
    }
    if (best == detail::npos32) return false;
    remove(best,
           best_tier == 0   ? removal::expired
           : best_tier == 1 ? removal::evicted_embryonic
                            : removal::evicted_inactive,
           now_floor);
    return true;
  }

  storage_type conns_;
  reply_storage_type replies_;
  template_table_type templates_;
  dest_registry<Addr> dests_;
  timer_wheel wheel_;
  std::uint32_t capacity_ = 0;
  std::uint64_t structure_version_ = 0;
  std::uint32_t size_ = 0;
  std::uint64_t seed_ = 0;
  reuse_policy reuse_{};
  bool secure_tcp_ = false;
  bool expire_quiescent_template_ = false;
  timeouts timeouts_{};
  std::array<std::uint32_t, tcp_state_count> tcp_ticks_{};
  std::array<std::uint32_t, sctp_state_count> sctp_ticks_{};
  std::uint32_t udp_ticks_ = 0;
  std::uint32_t other_ticks_ = 0;
  std::uint32_t initial_ticks_ = 0;
  conn_table_stats stats_{};
};

using conn_table_v4 = basic_conn_table<wire::ipv4_address>;
using conn_table_v6 = basic_conn_table<wire::ipv6_address>;

}  // namespace l4lb::conn
