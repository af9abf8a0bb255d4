// director: one core's LVS director. It takes frames in the caller's buffers and the caller's
// `now`, and returns a verdict per frame: parse → service / connection / NAT reply → connection
// lookup, or persistence template / scheduler + insert → state and counts → rewrite. It follows
// ip_vs_core.c (ip_vs_in_hook, ip_vs_out_hook, ip_vs_in_icmp, ip_vs_schedule,
// ip_vs_sched_persist, ip_vs_leave) and ipvs-notes §3 with §0A/§0B.
//
// Design notes
// - One director per core, all attached to one director_control. The published snapshot is
//   shared; connection tables, counts, scheduler state (rr cursors, lc load trees) and counters
//   are this director's own. OVERLOAD and the lc family's loads are therefore per core (the
//   kernel's are global): with one director they are the kernel's exactly.
// - A configuration change is picked up at the start of the next burst: the director replays
//   the scheduler hooks the change ran (snapshot.hpp), which may allocate in the policy's
//   rebuild — configuration work done on this thread, never per packet. Packets of a stable
//   configuration never allocate, lock or throw.
// - process_burst parses and hashes the whole burst, prefetches the connection groups with one
//   bulk lookup per family, then decides packet by packet in order (a SYN that creates a connection is seen
//   by the next packet of the same flow in the same burst). A found ref is trusted while the
//   table's structure_version() is unchanged since the lookup, and re-checked by key after an
//   insert or removal; a key the lookup missed is looked up again only when a 256-bit filter of
//   the burst's own inserts says it may have been inserted since.
// - Established TCP/UDP packets (IPv4 and IPv6) that no rule touches (no martian, fragment,
//   options, reuse SYN, removed server, missing neighbour) take a fast lane: decided without
//   decide()'s layers, DR, NAT and IPIP rewritten by the forwarders' plain short cuts
//   (plain_direct_route, plain_nat_translate, plain_ipip_v4, plain_ip6ip6) when the frame needs
//   no VLAN, MTU or TTL handling (a new connection's first DR or NAT packet takes them too).
//   Everything else, and every packet with director_config::established_fast_lane off, takes
//   the general path; the outcome is the same (tests/director/fast_lane_test.cpp compares them packet for packet).
// - Expiry runs once per burst with a budget that grows with the connection rate and with the
//   backlog the previous call left, so counts never go stale for long. IPVS's 2-second rate
//   estimator steps from `now` too.
// - IPv4 and IPv6 fragments toward a service, and from NAT / FullNAT real servers (replies), are
//   reassembled in a bounded queue (fragment_table.hpp); the datagram is decided once and its
//   fragments leave together as the kernel sends them (ipvs-notes 0B; IPv6 fragments with a new
//   identification).
// - FullNAT (ours, DPVS's FNAT; director_config::full_nat): a connection gets a local address
//   and port of the director; replies are found by that local endpoint through an index over
//   every local port, and the port is freed when the connection table removes the connection
//   (its count event names the connection). ICMP errors follow FullNAT connections both ways:
//   from the client side by the connection, from the server side by the quoted local endpoint.
// Cost: see bench/director_bench.cpp (ns per packet against a naive pipeline in the same binary).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "l4lb/conn/conn_table.hpp"
#include "l4lb/conn/packet_input.hpp"
#include "l4lb/director/control.hpp"
#include "l4lb/director/explain.hpp"
#include "l4lb/director/fragment_table.hpp"
#include "l4lb/director/snapshot.hpp"
#include "l4lb/director/stats.hpp"
#include "l4lb/director/verdict.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/fragment.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/icmp_reply.hpp"
#include "l4lb/forward/ip_id.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/record_route.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"

namespace l4lb::director {

/// Sizes of one director's tables (fixed at construction).
struct director_config {
  std::uint32_t conn_capacity_v4 = 1u << 16;
  std::uint32_t conn_capacity_v6 = 1u << 12;
  /// Persistence templates per family (the kernel shares its connection table with them).
  std::uint32_t template_capacity = 1u << 12;
  /// IPv4 reassembly (the kernel's limits by default).
  fragment_config fragments{};
  /// FullNAT (--fullnat servers): off by default, since it costs 4 bytes per connection slot
  /// plus 768 KiB per local address (a reply index over every local port); without it such
  /// servers' packets are dropped as method_unsupported.
  bool full_nat = false;
  /// Local addresses FullNAT can use at once (the first ones the configuration names).
  std::uint32_t full_nat_local_addresses = 4;
  /// Local ports this director may give out: those p with p % count == index. Directors that
  /// share local addresses (one per core) take disjoint shares, and the application steers a
  /// real server's reply to the director whose share holds its destination port.
  std::uint16_t full_nat_port_share_count = 1;
  std::uint16_t full_nat_port_share_index = 0;
  std::uint64_t seed = 0;
  /// NAT (masq) servers need the connection tables' reply-direction index: 6.1 bytes per IPv4
  /// connection slot at full load (16 % of an IPv4 table's memory). A director that serves only
  /// DR, TUN and local servers can do without it; masq servers' new connections are then dropped
  /// as method_unsupported (as FullNAT's are without `full_nat`).
  bool nat_reply_index = true;
  /// Established TCP/UDP packets whose outcome no rule changes take a short lane (DR and NAT
  /// rewritten in a few stores), and so do NAT servers' replies of known connections. The
  /// outcome is the same either way; false sends every packet through the general path (to
  /// compare the two, or to measure what the lanes save).
  bool established_fast_lane = true;
  /// Where the connection tables' arrays come from (nullptr: new/delete).
  std::pmr::memory_resource* memory = nullptr;
};

/// A director's memory, by part, in bytes: what its constructor allocated (fixed from then on).
struct director_memory {
  conn::conn_table_v4::memory_use conn_v4;  ///< slots, NAT reply index, templates, wheel, counts
  conn::conn_table_v6::memory_use conn_v6;
  std::size_t full_nat = 0;   ///< FullNAT: a port per connection slot, a reply index per local port
  std::size_t fragments = 0;  ///< the reassembly pool
  std::size_t buffers = 0;    ///< reply arena, reassembly scratch, refragmented output
  std::size_t servers = 0;    ///< per-service and per-real-server state (configuration_limits)
  /// What grows with the connection capacities: the tables and FullNAT's per-slot ports.
  [[nodiscard]] std::size_t connections() const noexcept {
    return conn_v4.total() + conn_v6.total() + full_nat;
  }
  [[nodiscard]] std::size_t total() const noexcept {
    return connections() + fragments + buffers + servers;
  }
};

class director {
 public:
  static constexpr std::size_t max_burst = 64;
  /// Bytes of reply arena per frame of a burst (an ICMP answer: L2 + 1280 at most).
  static constexpr std::size_t reply_room = 1280 + 64;
  static constexpr std::uint32_t no_position = 0xFFFF'FFFFu;

  explicit director(director_control& control, const director_config& cfg = {})
      : control_(control),
        limits_(control.config().limits()),
        v4_(table_config<wire::ipv4_address>(cfg, cfg.conn_capacity_v4)),
        v6_(table_config<wire::ipv6_address>(cfg, cfg.conn_capacity_v6)),
        services_(std::make_unique<service_state[]>(limits_.max_services)),
        dests_(std::make_unique<dest_state[]>(limits_.max_dests)),
        reply_arena_(std::make_unique<std::byte[]>(max_burst * reply_room)),
        frags_(cfg.fragments),
        scratch_(std::make_unique<std::byte[]>(scratch_bytes)),
        frag_out_(std::make_unique<std::byte[]>(frag_out_bytes)),
        fast_lane_(cfg.established_fast_lane) {
    v4_.set_observer({&director::on_count_v4, this});
    v6_.set_observer({&director::on_count_v6, this});
    if (cfg.full_nat) {
      fn_locals_max_ = cfg.full_nat_local_addresses;
      fn_port_v4_ = std::make_unique<std::uint32_t[]>(v4_.slot_count());
      fn_port_v6_ = std::make_unique<std::uint32_t[]>(v6_.slot_count());
      std::fill_n(fn_port_v4_.get(), v4_.slot_count(), fn_none);
      std::fill_n(fn_port_v6_.get(), v6_.slot_count(), fn_none);
      const std::size_t n = std::size_t{fn_locals_max_} * 3 * 65536;
      fn_reply_ = std::make_unique<std::uint32_t[]>(n);
      std::fill_n(fn_reply_.get(), n, fn_none);
      fn_cursor_.assign(std::size_t{fn_locals_max_} * 3, 0);
      fn_share_count_ = std::max<std::uint32_t>(cfg.full_nat_port_share_count, 1);
      fn_share_index_ = cfg.full_nat_port_share_index % fn_share_count_;
      fn_locals_.reserve(fn_locals_max_);
    }
    port_.read_service = [this](std::uint32_t id, service_status& s) { read_service(id, s); };
    port_.read_dest = [this](std::uint32_t h, dest_status& s) { read_dest(h, s); };
    port_.read_conns = [this](std::vector<conn_row>& rows, std::int64_t now) { read_conns(rows, now); };
    control_.attach(port_);
    sync();
  }
  ~director() { control_.detach(port_); }
  director(const director&) = delete;
  director& operator=(const director&) = delete;

  // ------------------------------------------------------------------ data path

  /// One frame (a burst of one). `fwmark`: the firewall mark the application gives the frame.
  verdict process(forward::frame_buffer& frame, std::int64_t now, std::uint32_t fwmark = 0) noexcept {
    verdict v;
    process_burst(std::span<forward::frame_buffer>(&frame, 1), std::span<verdict>(&v, 1), now,
                  fwmark ? std::span<const std::uint32_t>(&fwmark, 1) : std::span<const std::uint32_t>{});
    return v;
  }

  /// Frames in order; out[i] is frames[i]'s verdict. At most max_burst frames are taken per
  /// call (the rest get nothing: pass smaller bursts). `marks`: empty, or one per frame.
  void process_burst(std::span<forward::frame_buffer> frames, std::span<verdict> out,
                     std::int64_t now, std::span<const std::uint32_t> marks = {}) noexcept {
    if (control_.generation() != seen_generation_) sync();
    release_fragments();
    housekeeping(now);
    const std::size_t n = std::min({frames.size(), out.size(), max_burst});
    // Stage 1: parse everything and look the client-direction keys up in bulk, per family.
    // Uninitialised views and keys (zeroing them per burst showed in the profile); `parsed`
    // and key_at say which hold one.
    uninitialized_array<wire::packet_view, max_burst> pkts;
    std::uint64_t parsed = 0;
    uninitialized_array<conn::conn_key_v4, max_burst> keys4;
    uninitialized_array<conn::conn_key_v6, max_burst> keys6;
    std::array<std::uint64_t, max_burst> hashes4, hashes6;
    std::array<std::uint8_t, max_burst> key_at;  // frame i's key in keys4/keys6 (by its family)
    std::array<std::uint8_t, max_burst> frame_of4, frame_of6;  // and back
    std::size_t n4 = 0, n6 = 0;
    const wire::parse_options popt{snap_->settings.verify_ipv4_checksum, true};
    for (std::size_t i = 0; i < n; ++i) {
      key_at[i] = no_key;
      if (const auto e = wire::parse_into(frames[i].frame(), popt, &pkts.at[i]); e != wire::drop_reason::none) {
        out[i] = parse_failure(e);
        continue;
      }
      const wire::packet_view* p = &pkts.at[i];
      parsed |= std::uint64_t{1} << i;
      if (!p->has_ports() || p->is_icmp_error()) continue;
      if (p->is_ipv4()) {
        keys4.at[n4] = conn::conn_key_v4::from_flow(p->key());
        hashes4[n4] = v4_.hash(keys4.at[n4]);
        frame_of4[n4] = static_cast<std::uint8_t>(i);
        key_at[i] = static_cast<std::uint8_t>(n4++);
      } else {
        keys6.at[n6] = conn::conn_key_v6::from_flow(p->key());
        hashes6[n6] = v6_.hash(keys6.at[n6]);
        frame_of6[n6] = static_cast<std::uint8_t>(i);
        key_at[i] = static_cast<std::uint8_t>(n6++);
      }
    }
    std::array<conn::conn_ref, max_burst> refs4, refs6;
    std::uint64_t misses4 = 0, misses6 = 0;  // by key index
    if (n4 != 0)
      misses4 = ~v4_.find_burst(std::span(keys4.at, n4), std::span(hashes4.data(), n4), std::span(refs4.data(), n4), now) &
                (~std::uint64_t{0} >> (64 - n4));
    if (n6 != 0)
      misses6 = ~v6_.find_burst(std::span(keys6.at, n6), std::span(hashes6.data(), n6), std::span(refs6.data(), n6), now) &
                (~std::uint64_t{0} >> (64 - n6));
    // A NAT director's misses may be its servers' replies (a client's SYN is not): start
    // loading their reply index groups (the key read the other way round) while the burst is
    // decided. reply_hashes4/6[k] is written for exactly the keys nat_reply_fast is tried on.
    std::array<std::uint64_t, max_burst> reply_hashes4, reply_hashes6;
    if (v4_.has_nat_index())
      for (std::uint64_t m = misses4; m != 0; m &= m - 1) {
        const auto j = static_cast<std::size_t>(std::countr_zero(m));
        if (!opens_connection(pkts.at[frame_of4[j]])) reply_hashes4[j] = prefetch_reply(v4_, keys4.at[j]);
      }
    if (v6_.has_nat_index())
      for (std::uint64_t m = misses6; m != 0; m &= m - 1) {
        const auto j = static_cast<std::size_t>(std::countr_zero(m));
        if (!opens_connection(pkts.at[frame_of6[j]])) reply_hashes6[j] = prefetch_reply(v6_, keys6.at[j]);
      }
    // Refs found while these stay the same still hold their keys (the lane skips the re-check).
    const std::uint64_t found_v4 = v4_.structure_version(), found_v6 = v6_.structure_version();
    burst_inserts_ = {};
    // Stage 2: decide in order.
    for (std::size_t i = 0; i < n; ++i) {
      if (!(parsed >> i & 1)) {
        counters_.count(out[i]);
        continue;
      }
      const wire::packet_view& p = pkts.at[i];
      const std::uint8_t ka = key_at[i];
      const bool v4 = p.is_ipv4();
      if (fast_lane_ && ka != no_key &&
          (v4 ? refs4[ka] != conn::no_conn &&
                    established_fast<wire::ipv4_address>(frames[i], p, refs4[ka], keys4.at[ka], found_v4, now, i, out[i])
              : refs6[ka] != conn::no_conn &&
                    established_fast<wire::ipv6_address>(frames[i], p, refs6[ka], keys6.at[ka], found_v6, now, i, out[i]))) {
        ++fast_lane_packets_;
        count_lane(out[i]);
        continue;
      }
      const std::uint32_t mark = marks.size() > i ? marks[i] : 0;
      // A packet of no connection, from a NAT real server to its client: the reply lane.
      if (fast_lane_ && ka != no_key && mark == 0 &&
          (v4 ? refs4[ka] == conn::no_conn &&
                    nat_reply_fast<wire::ipv4_address>(frames[i], p, hashes4[ka], &reply_hashes4[ka], now, out[i])
              : refs6[ka] == conn::no_conn &&
                    nat_reply_fast<wire::ipv6_address>(frames[i], p, hashes6[ka], &reply_hashes6[ka], now, out[i]))) {
        ++fast_lane_packets_;
        count_lane(out[i]);
        continue;
      }
      burst_hint hint;
      if (ka != no_key)
        hint = v4 ? burst_hint{refs4[ka], &keys4.at[ka], nullptr, hashes4[ka]}
                  : burst_hint{refs6[ka], nullptr, &keys6.at[ka], hashes6[ka]};
      reply_slot_ = reply_room_of(i);
      out[i] = decide(frames[i], p, hint, mark, now);
      counters_.count(out[i]);
    }
  }

  /// What would happen to this frame now, and why; changes nothing.
  [[nodiscard]] explanation explain(std::span<const std::byte> frame, std::int64_t now,
                                    std::uint32_t fwmark = 0) const;

  // ------------------------------------------------------------------ inspection

  [[nodiscard]] const verdict_counters& verdicts() const noexcept { return counters_; }
  /// Packets the established-flow fast lane or the NAT reply lane decided
  /// (director_config::established_fast_lane).
  [[nodiscard]] std::uint64_t fast_lane_packets() const noexcept { return fast_lane_packets_; }
  /// Turns the fast lane on or off between bursts (this director's thread only).
  void set_established_fast_lane(bool on) noexcept { fast_lane_ = on; }
  /// Next hops that had no neighbour entry since the last clear (at most 16, oldest replaced):
  /// the application resolves them (ARP / ND, the kernel's table) and calls set_neighbour.
  [[nodiscard]] std::span<const wire::ip_address> missing_neighbours() const noexcept {
    return std::span(missing_).first(std::min(missing_count_, missing_.size()));
  }
  void clear_missing_neighbours() noexcept { missing_count_ = 0; }
  [[nodiscard]] const conn::conn_table_v4& table_v4() const noexcept { return v4_; }
  [[nodiscard]] const conn::conn_table_v6& table_v6() const noexcept { return v6_; }
  [[nodiscard]] const snapshot& current() const noexcept { return *snap_; }
  /// This director's view of a service's real servers (kernel order, with its counts).
  [[nodiscard]] std::span<const sched::real_server> dests_of(std::uint32_t service_id) const noexcept {
    return services_[service_id].list;
  }
  /// What the constructor allocated, by part (the configuration's own vectors, which grow with
  /// the services and servers added, are not included).
  [[nodiscard]] director_memory memory() const noexcept {
    director_memory m;
    m.conn_v4 = v4_.memory();
    m.conn_v6 = v6_.memory();
    if (fn_reply_)
      m.full_nat = (v4_.slot_count() + v6_.slot_count() + std::size_t{fn_locals_max_} * 3 * 65536) *
                   sizeof(std::uint32_t);
    m.fragments = frags_.memory_bytes();
    m.buffers = max_burst * reply_room + scratch_bytes + frag_out_bytes;
    m.servers = std::size_t{limits_.max_services} * sizeof(service_state) +
                std::size_t{limits_.max_dests} * sizeof(dest_state);
    return m;
  }
  /// memory().total(): every byte the constructor allocated.
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return memory().total(); }
  [[nodiscard]] const fragment_stats& fragments() const noexcept { return frags_.stats(); }
  /// The reassembly table itself (read-only: what it holds against its bounds).
  [[nodiscard]] const fragment_table& fragment_state() const noexcept { return frags_; }
  /// Runs expiry until it has caught up at `now` (tests, shutdown listings).
  void expire_all(std::int64_t now) noexcept {
    while (!v4_.expire(now, 1u << 16).caught_up) {
    }
    while (!v6_.expire(now, 1u << 16).caught_up) {
    }
  }

 private:
  /// An array left uninitialised (a burst's views and keys: zeroing them per burst showed in the
  /// profile); the burst loop tracks which elements it wrote.
  template <class T, std::size_t N>
  union uninitialized_array {
    uninitialized_array() noexcept {}
    T at[N];
  };
  static constexpr std::uint8_t no_key = 0xFF;  // key_at: the frame has no key (max_burst < 255)
  static_assert(max_burst < no_key);

  struct rate_block {
    std::atomic<std::uint64_t> v[5]{};
    void store(const rates& r) noexcept {
      v[0].store(r.cps, std::memory_order_relaxed);
      v[1].store(r.in_pps, std::memory_order_relaxed);
      v[2].store(r.out_pps, std::memory_order_relaxed);
      v[3].store(r.in_bps, std::memory_order_relaxed);
      v[4].store(r.out_bps, std::memory_order_relaxed);
    }
    [[nodiscard]] rates load() const noexcept {
      return {v[0].load(std::memory_order_relaxed), v[1].load(std::memory_order_relaxed),
              v[2].load(std::memory_order_relaxed), v[3].load(std::memory_order_relaxed),
              v[4].load(std::memory_order_relaxed)};
    }
  };
  struct service_state {
    std::uint64_t generation = 0;  // 0: no service with this id
    std::uint64_t sched_version = 0;
    std::uint64_t zero_epoch = 0;
    std::optional<sched::any_scheduler> sched;
    /// sched's counts_use() (none without a scheduler), read by every count event.
    sched::count_use counts_use = sched::count_use::none;
    std::vector<sched::real_server> list;  // kernel order, this director's counts
    counter_block stats;
    rate_estimator est;
    rate_block published_rates;
  };
  struct dest_state {
    std::uint64_t generation = 0;
    std::uint64_t zero_epoch = 0;
    std::uint32_t service_id = 0;
    std::uint32_t position = no_position;
    std::uint32_t upper = 0;
    bool overloaded = false;
    counter_block stats;
    rate_estimator est;
    rate_block published_rates;
    std::atomic<std::uint32_t> active{0}, inactive{0}, persist{0};
  };

  template <class Addr>
  static conn::conn_table_config table_config(const director_config& cfg, std::uint32_t capacity) {
    conn::conn_table_config c;
    c.capacity = capacity;
    c.template_capacity = cfg.template_capacity;
    c.seed = cfg.seed ^ (Addr::size == 4 ? 0 : 0x5555'5555'5555'5555ull);
    c.memory = cfg.memory;
    c.nat_index = cfg.nat_reply_index;
    return c;
  }
  template <class Addr>
  auto& table() noexcept {
    if constexpr (Addr::size == 4) return v4_; else return v6_;
  }
  template <class Addr>
  const auto& table() const noexcept {
    if constexpr (Addr::size == 4) return v4_; else return v6_;
  }

  // ------------------------------------------------------------------ verdict helpers

  static verdict parse_failure(wire::drop_reason r) noexcept {
    verdict v;
    if (r == wire::drop_reason::not_ip) {
      v.kind = verdict_kind::pass;
      v.pass = pass_reason::not_ip;
      return v;
    }
    v.kind = verdict_kind::drop;
    v.layer = drop_layer::parse;
    v.parse_error = r;
    return v;
  }
  static verdict pass(pass_reason r) noexcept {
    verdict v;
    v.kind = verdict_kind::pass;
    v.pass = r;
    return v;
  }
  static verdict drop(director_drop r) noexcept {
    verdict v;
    v.kind = verdict_kind::drop;
    v.layer = drop_layer::director;
    v.director_error = r;
    return v;
  }
  static verdict drop(forward::forward_error e) noexcept {
    verdict v;
    v.kind = verdict_kind::drop;
    v.layer = drop_layer::forward;
    v.forward_error = e;
    return v;
  }

  // ------------------------------------------------------------------ the decision

  /// An IPv4 source's first octet: this-net, loopback, class D/E (no branches: the fast lane's).
  [[nodiscard]] static bool martian_source_v4(std::uint8_t first) noexcept {
    return (first == 0) | (first == 127) | (first >= 224);
  }
  /// The reply arena's room for frame `i` of the burst (answers the director builds).
  [[nodiscard]] std::span<std::byte> reply_room_of(std::size_t i) const noexcept {
    return std::span<std::byte>(reply_arena_.get() + i * reply_room, reply_room);
  }

  /// An IPv6 source that is unspecified (::), loopback (::1) or multicast (ff00::/8), in two
  /// word compares.
  [[nodiscard]] static bool martian_source_v6(const std::array<std::uint8_t, 16>& a) noexcept {
    const std::uint64_t hi = boost::endian::load_big_u64(a.data());
    const std::uint64_t lo = boost::endian::load_big_u64(a.data() + 8);
    return (hi == 0 && lo <= 1) | ((hi >> 56) == 0xff);
  }

  /// ip_route_input's martian source rules (the 'land' rule is decide_family's).
  [[nodiscard]] static bool martian_source(const wire::flow_key& k) noexcept {
    return k.family == wire::ip_family::v4 ? martian_source_v4(k.src_addr[0])
                                           : martian_source_v6(k.src_addr);
  }

  /// What the burst lookup gave a packet: its connection (no_conn: none found), and its key
  /// and hash in its family (both keys null: the burst did not look it up).
  struct burst_hint {
    conn::conn_ref ref = conn::no_conn;
    const conn::conn_key_v4* v4 = nullptr;
    const conn::conn_key_v6* v6 = nullptr;
    std::uint64_t hash = 0;
  };

  verdict decide(forward::frame_buffer& buf, const wire::packet_view& pkt, const burst_hint& hint,
                 std::uint32_t mark, std::int64_t now) noexcept {
    const wire::flow_key& k = pkt.key();
    if (martian_source(k)) return drop(director_drop::martian_source);
    if (pkt.is_fragment()) {
      // Only fragments toward a service, or from a NAT real server (replies), are kept; others
      // are the host's.
      if (mark == 0 && !snap_->is_vip(k.dst_addr, k.family) && !snap_->is_nat_source(k.src_addr, k.family))
        return pass(pass_reason::no_service);
      return fragment(pkt, mark, now);
    }
    if (k.family == wire::ip_family::v6 && k.protocol == wire::ip_proto::udp &&
        pkt.has_l4_header() && pkt.udp().checksum() == 0)
      return drop(director_drop::ipv6_udp_zero_checksum);
    if (k.family == wire::ip_family::v4)
      return decide_family<wire::ipv4_address>(buf, pkt, hint.ref, mark, now, hint.v4, hint.hash);
    return decide_family<wire::ipv6_address>(buf, pkt, hint.ref, mark, now, hint.v6, hint.hash);
  }

  template <class Addr>
  verdict decide_family(forward::frame_buffer& buf, const wire::packet_view& pkt,
                        conn::conn_ref pre, std::uint32_t mark, std::int64_t now,
                        const conn::conn_key<Addr>* hint = nullptr, std::uint64_t hint_hash = 0) noexcept {
    auto& t = table<Addr>();
    const wire::flow_key& k = pkt.key();
    if (pkt.is_icmp_error()) return icmp_error<Addr>(buf, pkt, now);
    if (!pkt.has_ports()) {
      // ICMP echo and protocols without ports are not IPVS's (the host answers a ping to a VIP).
      return pass(pass_reason::no_service);
    }
    const auto key = hint ? *hint : conn::conn_key<Addr>::from_flow(k);
    const std::uint64_t h = hint ? hint_hash : t.hash(key);
    const std::uint8_t flags = conn::input_flags(pkt);
    conn::conn_ref ref = pre;
    // A key the burst lookup missed is still absent unless this burst inserted it since.
    if (ref == conn::no_conn && (hint == nullptr || maybe_inserted_this_burst(h))) ref = t.find(key, h, now);
    const conn::input_lookup lk = t.apply_input_rules(ref, key, flags, now);
    if (lk.action == conn::input_action::hit) return established<Addr>(buf, pkt, lk.ref, flags, now);
    if (lk.action == conn::input_action::drop) return drop(director_drop::dest_removed);
    // No connection (or an old one just removed for reuse): a service, or a NAT reply?
    const service_runtime* svc = snap_->find_service(mark, k);
    if (!svc) return reply_direction<Addr>(buf, pkt, now);
    // The 'land' rule: a packet from a VIP or from the director itself never starts a
    // connection (no connection can have such a client, so established flows skip the test).
    if (wire::equal_16(k.src_addr, k.dst_addr) || snap_->is_own_address(k.src_addr, k.family) ||
        snap_->is_vip(k.src_addr, k.family))
      return drop(director_drop::land);
    if (!may_schedule(pkt, flags)) return pass(pass_reason::not_schedulable);
    return schedule<Addr>(buf, pkt, key, h, *svc, flags, now);
  }

  // Which hashes this burst inserted into either table (a 256-bit Bloom filter, cleared per
  // burst; the families share it, which costs only a second lookup now and then): a
  // burst-lookup miss whose bit is clear needs no second lookup.
  [[nodiscard]] bool maybe_inserted_this_burst(std::uint64_t h) const noexcept {
    const auto b = static_cast<unsigned>(h >> 24) & 255u;
    return (burst_inserts_[b >> 6] >> (b & 63u)) & 1u;
  }
  void note_inserted_this_burst(std::uint64_t h) noexcept {
    const auto b = static_cast<unsigned>(h >> 24) & 255u;
    burst_inserts_[b >> 6] |= std::uint64_t{1} << (b & 63u);
  }

  /// tcp_conn_schedule / udp_conn_schedule / sctp_conn_schedule: which first packets may create
  /// a connection.
  template <class Byte>
  [[nodiscard]] bool may_schedule(const wire::basic_packet_view<Byte>& pkt,
                                  std::uint8_t flags) const noexcept {
    switch (pkt.protocol()) {
      case wire::ip_proto::tcp: {
        if (flags & conn::tcp_flag::rst) return false;
        return (flags & conn::tcp_flag::syn) || snap_->settings.sloppy_tcp;
      }
      case wire::ip_proto::udp: return true;
      case wire::ip_proto::sctp: return (flags & conn::tcp_flag::syn) || snap_->settings.sloppy_sctp;
      default: return false;
    }
  }

  // Inlined into decide_family, its only caller: the call and its seven arguments showed in the
  // new-connection profile.
  template <class Addr>
  [[gnu::always_inline]] verdict schedule(forward::frame_buffer& buf, const wire::packet_view& pkt,
                                          const conn::conn_key<Addr>& key, std::uint64_t h,
                                          const service_runtime& svc, std::uint8_t flags,
                                          std::int64_t now) noexcept {
    auto& t = table<Addr>();
    service_state& ss = services_[svc.id];
    if (!ss.sched) return drop(director_drop::no_destination);
    const wire::flow_key& k = pkt.key();
    const auto& persist = persistence_of<Addr>(svc);
    std::uint32_t handle = 0;
    conn::template_ref tref = conn::no_template;
    if (svc.spec.persistent) {
      const auto tk = persist.key_for(k.protocol, key.client_addr, key.virtual_addr, key.virtual_port);
      tref = t.find_template(tk, now);
      if (tref != conn::no_template) {
        handle = t.templates().dest(tref);
      } else {
        const sched::dest_id pos = ss.sched->pick(ss.list, {k, now, false});
        if (pos == sched::no_dest) return no_destination(pkt);
        handle = ss.list[pos].handle;
        auto tr = t.insert_template(tk, handle, svc.spec.persistence_timeout, now);
        if (!tr) return drop(director_drop::template_table_full);
        tref = *tr;
      }
    } else {
      const sched::dest_id pos = ss.sched->pick(ss.list, {k, now, false});
      if (pos == sched::no_dest) return no_destination(pkt);
      handle = ss.list[pos].handle;
    }
    const dest_runtime& d = snap_->dests[handle];
    dest_state& ds = dests_[handle];
    const std::uint16_t dport =
        svc.spec.persistent ? persist.conn_dest_port(key.virtual_port, d.spec.endpoint.port) : 0;
    const std::uint32_t bytes = static_cast<std::uint32_t>(pkt.l3_len());
    if (svc.spec.one_packet && k.protocol == wire::ip_proto::udp) {
      // ip_vs_schedule: never hashed, counted, expired after its packet.
      ss.stats.add_conn();
      ds.stats.add_conn();
      ss.stats.add_in(bytes);
      ds.stats.add_in(bytes);
      return to_real_server(buf, pkt, d, handle, d.spec.endpoint.port ? d.spec.endpoint.port : k.dst_port);
    }
    // FullNAT: a local address and port first (ours; DPVS's FNAT).
    std::uint32_t fn_li = fn_none, fn_port = 0;
    if (d.spec.method == forward_method::full_nat) {
      if (!fn_reply_) return drop(director_drop::method_unsupported);
      fn_li = fn_local_for(d);
      if (fn_li == fn_none) return drop(director_drop::method_unsupported);
      fn_port = fn_allocate(fn_li, k.protocol);
      if (fn_port == 0) return drop(forward::forward_error::port_pool_exhausted);
    }
    conn::new_conn nc;
    nc.dest = handle;
    nc.nat = d.spec.method == forward_method::masq;
    if (nc.nat && !t.has_nat_index()) return drop(director_drop::method_unsupported);
    nc.control = tref;
    nc.dest_port = dport;
    // The first packet goes in with the insert (one count event, not two); SCTP's needs its
    // chunks, so it follows through state_update.
    const bool sctp = k.protocol == wire::ip_proto::sctp;
    nc.first_packet = !sctp;
    nc.first_tcp_flags = flags;
    hold_counts(handle);
    auto ins = t.insert(key, h, nc, now);
    if (!ins) {
      release_counts();
      return drop(director_drop::table_full);
    }
    note_inserted_this_burst(h);
    ss.stats.add_conn();
    ds.stats.add_conn();
    if (sctp) state_update<Addr>(pkt, *ins, flags, conn::direction::input, now);
    release_counts();
    ss.stats.add_in(bytes);
    ds.stats.add_in(bytes);
    if (fn_li != fn_none) {
      fn_bind(Addr::size == 16, *ins, fn_li, k.protocol, fn_port);
      const wire::endpoint local{fn_locals_[fn_li], static_cast<std::uint16_t>(fn_port)};
      fn_local_ = &local;
      verdict v = to_real_server(buf, pkt, d, handle, t.dest_port(*ins));
      fn_local_ = nullptr;
      return v;
    }
    // Of the other methods only NAT rewrites the port: DR, TUN and local need no slot read.
    return to_real_server(buf, pkt, d, handle, nc.nat ? t.dest_port(*ins) : std::uint16_t{0});
  }

  template <class Addr>
  [[nodiscard]] static const conn::persistence<Addr>& persistence_of(const service_runtime& s) noexcept {
    if constexpr (Addr::size == 4) return s.persist_v4; else return s.persist_v6;
  }

  /// The real server's endpoint for a connection: its address, and the connection's port.
  template <class Table>
  [[nodiscard]] static wire::endpoint real_endpoint(const Table& t, conn::conn_ref ref,
                                                    const dest_runtime& d) noexcept {
    std::uint16_t port = t.dest_port(ref);
    return {d.spec.endpoint.address, port};
  }

  // Inlined (with the table's on_packet) into every packet that updates a connection.
  template <class Addr>
  [[gnu::always_inline]] void state_update(const wire::packet_view& pkt, conn::conn_ref ref,
                                           std::uint8_t flags, conn::direction dir,
                                           std::int64_t now) noexcept {
    auto& t = table<Addr>();
    if (pkt.protocol() == wire::ip_proto::sctp) {
      if (auto ev = conn::packet_sctp_event(pkt)) {
        (void)t.on_packet(ref, *ev, dir, now);
        return;
      }
    }
    (void)t.on_packet(ref, flags, dir, now);
  }

  template <class Addr>
  verdict established(forward::frame_buffer& buf, const wire::packet_view& pkt, conn::conn_ref ref,
                      std::uint8_t flags, std::int64_t now) noexcept {
    auto& t = table<Addr>();
    const std::uint32_t handle = t.dest(ref);
    const dest_runtime& d = snap_->dests[handle];
    state_update<Addr>(pkt, ref, flags, conn::direction::input, now);
    count_in(d, handle, pkt);
    return toward_server<Addr>(buf, pkt, ref, d, handle);
  }

  /// A lane's verdict: almost always a forward (a tunnel may answer too big or fail).
  [[gnu::always_inline]] void count_lane(const verdict& v) noexcept {
    if (v.kind == verdict_kind::forward) [[likely]]
      counters_.count_forward(v.method, v.to_client);
    else
      counters_.count(v);
  }

  /// A client-side packet of a tracked connection, counted as IPVS counts it (IP-level length)
  /// on its server and, while the server is in a service, on the service. Inlined: the lane's
  /// call showed in the profile.
  [[gnu::always_inline]] void count_in(const dest_runtime& d, std::uint32_t handle, const wire::packet_view& pkt) noexcept {
    const std::uint32_t bytes = static_cast<std::uint32_t>(pkt.l3_len());
    dests_[handle].stats.add_in(bytes);
    if (d.live) services_[d.service_id].stats.add_in(bytes);
  }

  /// The established-flow fast lane: a TCP/UDP packet of a connection found in the burst
  /// lookup, whose outcome decide() would reach through established() with no rule firing (no
  /// martian, fragment, options, zero IPv6 UDP checksum, reuse, removed server or missing
  /// neighbour), decided without the general path's layers; DR and NAT frames (IPv4 and IPv6)
  /// and IPIP frames (4in4, 6in6) that need no VLAN, MTU or TTL handling are rewritten by the
  /// forwarders' plain short cuts, other tunnels by tunnel_encapsulate. Returns false, having
  /// changed nothing, for every other packet; decide() then takes it. The outcome is the same
  /// either way (tests/director/fast_lane_test.cpp, packet by packet and in bursts). Cost:
  /// bench/director_bench.cpp's pipeline/<m> against pipeline/<m>_general_path. Inlined into
  /// process_burst: the call and its arguments showed in the profile (about 5 % of DR's packet).
  template <class Addr>
  [[gnu::always_inline]] bool established_fast(forward::frame_buffer& buf, const wire::packet_view& pkt,
                                               conn::conn_ref ref, const conn::conn_key<Addr>& key,
                                               std::uint64_t found_version, std::int64_t now,
                                               std::size_t index, verdict& out) noexcept {
    constexpr bool v4 = Addr::size == 4;
    auto& t = table<Addr>();
    if (pkt.is_fragment() || pkt.has_ipv4_options()) return false;
    if constexpr (v4) {
      if (martian_source_v4(pkt.key().src_addr[0])) return false;
    } else {
      if (martian_source_v6(pkt.key().src_addr)) return false;
    }
    const std::uint8_t proto = pkt.protocol();
    if (proto != wire::ip_proto::tcp && proto != wire::ip_proto::udp) return false;
    // RFC 8200: decide() drops an IPv6 UDP datagram without a checksum.
    if (!v4 && proto == wire::ip_proto::udp && (!pkt.has_l4_header() || pkt.udp().checksum() == 0))
      return false;
    // conn::input_flags for a TCP/UDP packet with its L4 header.
    const std::uint8_t flags = proto == wire::ip_proto::tcp && pkt.has_l4_header() ? pkt.tcp_flags() : 0;
    const std::uint32_t handle = t.plain_hit_dest(ref, key, found_version, flags);
    if (handle == t.no_dest) return false;
    const dest_runtime& d = snap_->dests[handle];
    if (!d.has_mac) return false;
    const forward_method m = d.spec.method;
    if (m == forward_method::tunnel && !d.has_tunnel_source) return false;
    std::span<std::byte> frame;
    if (m == forward_method::route) {
      frame = forward::detail::plain_direct_route(buf, pkt, d.dr);
    } else if (m == forward_method::masq) {
      const wire::endpoint real{d.spec.endpoint.address, t.dest_port(ref)};
      frame = forward::detail::plain_nat_translate(buf, pkt, nullptr, &real, d.nat);
    } else if (m == forward_method::tunnel) {
      frame = v4 ? forward::detail::plain_ipip_v4(buf, pkt, d.spec.endpoint.address, d.tunnel)
                 : forward::detail::plain_ip6ip6(buf, pkt, d.spec.endpoint.address, d.tunnel);
    } else {
      return false;  // local, FullNAT: the general path
    }
    // DR and NAT frames the short cuts decline take the general path; a TUN frame is
    // encapsulated below by tunnel_encapsulate (GUE, GRE, IPv6, over the MTU).
    if (frame.empty() && m != forward_method::tunnel) return false;
    if (!frame.empty())
      set_forwarded_plain(out, frame, m, handle,
                          m == forward_method::route  ? d.dr.l2.dst
                          : m == forward_method::masq ? d.nat.l2.dst
                                                      : d.tunnel.l2.dst);
    // From here on, what established() does.
    (void)t.on_packet(ref, flags, conn::direction::input, now);
    count_in(d, handle, pkt);
    if (frame.empty()) {
      reply_slot_ = reply_room_of(index);
      out = from_forward(forward::tunnel_encapsulate(buf, pkt, d.spec.endpoint.address, d.tunnel, reply_slot_),
                         m, handle, d.tunnel.l2.dst, false);
    }
    return true;
  }

  /// A TCP segment with SYN and without ACK: a client opening, never a server's reply.
  [[nodiscard]] static bool opens_connection(const wire::packet_view& p) noexcept {
    return p.protocol() == wire::ip_proto::tcp &&
           (p.tcp_flags() & (wire::tcp_flags::syn | wire::tcp_flags::ack)) == wire::tcp_flags::syn;
  }
  /// The hash of a client-side key's reply key (the same fields read as server -> client), with
  /// a prefetch of its reply index group (none without the index).
  template <class Table, class Key>
  static std::uint64_t prefetch_reply(const Table& t, const Key& k) noexcept {
    const std::uint64_t hr = t.hash(typename Table::reply_key_type{k.client_addr, k.virtual_addr, k.client_port,
                                                                   k.virtual_port, k.protocol});
    t.prefetch_reply(hr);
    return hr;
  }

  /// The reply lane: a TCP/UDP packet that the burst lookup found no connection for, with no
  /// firewall mark, whose outcome decide() would reach through reply_direction() and nat_reply()
  /// with no rule firing: not to a VIP (so no service), no FullNAT, no insert of this burst that
  /// could be its connection, a NAT connection found by its reply key, the client's next hop
  /// known, and a frame plain_nat_translate takes (source = the VIP, L2 toward the client).
  /// Returns false, having changed nothing, for every other packet. The outcome is decide()'s
  /// (tests/director/fast_lane_test.cpp sends replies of NAT servers in both families).
  /// `*reply_hash`: prefetch_reply's hash of the packet's reply key (written when the table has a
  /// NAT reply index and the packet opens no connection, so read only then).
  template <class Addr>
  [[gnu::always_inline]] bool nat_reply_fast(forward::frame_buffer& buf, const wire::packet_view& pkt,
                                             std::uint64_t client_hash, const std::uint64_t* reply_hash,
                                             std::int64_t now, verdict& out) noexcept {
    constexpr bool v4 = Addr::size == 4;
    auto& t = table<Addr>();
    if (opens_connection(pkt) || !t.has_nat_index() || fn_reply_ || maybe_inserted_this_burst(client_hash))
      return false;
    if (pkt.is_fragment() || pkt.has_ipv4_options() || !pkt.has_l4_header()) return false;
    const wire::flow_key& k = pkt.key();
    if (v4 ? martian_source_v4(k.src_addr[0]) : martian_source_v6(k.src_addr)) return false;
    const std::uint8_t proto = k.protocol;
    if (proto != wire::ip_proto::tcp && (proto != wire::ip_proto::udp || (!v4 && pkt.udp().checksum() == 0)))
      return false;
    // find_service(0, k) finds nothing for a destination that is no VIP.
    if (snap_->is_vip(k.dst_addr, k.family)) return false;
    const conn::conn_ref ref = t.find_reply(conn::reply_key<Addr>::from_flow(k), *reply_hash, now);
    if (ref == conn::no_conn || !t.is_nat(ref)) return false;
    const auto ck = t.key(ref);
    const wire::ip_address client(ck.client_addr);
    const wire::mac_address* mac = client_next_hop(client);
    if (!mac) return false;
    forward::nat_config cfg;  // what toward_client gives nat_outbound
    cfg.l2.src = snap_->identity.mac;
    cfg.l2.dst = *mac;
    cfg.keep_quoted_l4_checksum = true;
    const wire::endpoint vip{wire::ip_address(ck.virtual_addr), ck.virtual_port};
    const auto frame = forward::detail::plain_nat_translate(buf, pkt, &vip, nullptr, cfg);
    if (frame.empty()) return false;
    // From here on, what toward_client does (the rewrite does not depend on it).
    const std::uint32_t handle = t.dest(ref);
    set_forwarded_plain(out, frame, forward_method::masq, handle, *mac);
    out.to_client = true;
    (void)t.on_packet(ref, pkt.tcp_flags(), conn::direction::output, now);
    const dest_runtime& d = snap_->dests[handle];
    const auto bytes = static_cast<std::uint32_t>(pkt.l3_len());
    dests_[handle].stats.add_out(bytes);
    if (d.live) services_[d.service_id].stats.add_out(bytes);
    return true;
  }

  /// to_real_server for a tracked connection: a FullNAT one goes out from its own local endpoint.
  template <class Addr>
  verdict toward_server(forward::frame_buffer& buf, const wire::packet_view& pkt, conn::conn_ref ref,
                        const dest_runtime& d, std::uint32_t handle) noexcept {
    auto& t = table<Addr>();
    if (d.spec.method == forward_method::full_nat && fn_reply_) {
      const std::uint32_t packed = (Addr::size == 16 ? fn_port_v6_ : fn_port_v4_)[ref];
      if (packed == fn_none) return drop(director_drop::method_unsupported);
      const wire::endpoint local{fn_locals_[packed >> 18], static_cast<std::uint16_t>(packed & 0xFFFF)};
      fn_local_ = &local;
      verdict v = to_real_server(buf, pkt, d, handle, t.dest_port(ref));
      fn_local_ = nullptr;
      return v;
    }
    return to_real_server(buf, pkt, d, handle, t.dest_port(ref));
  }

  /// The next hop's MAC, or nullptr.
  [[nodiscard]] const wire::mac_address* neighbour(const wire::ip_address& ip) const noexcept {
    return snap_->neighbours ? snap_->neighbours->find(ip) : nullptr;
  }
  /// Toward a client: its own neighbour entry, else its family's gateway's, or nullptr.
  [[nodiscard]] const wire::mac_address* client_next_hop(const wire::ip_address& client) const noexcept {
    if (const wire::mac_address* mac = neighbour(client)) return mac;
    return snap_->gateway_mac(client.family());
  }

  /// The verdict for a frame a plain short cut forwarded (what from_forward gives a forward).
  static verdict forwarded_plain(std::span<std::byte> frame, forward_method m, std::uint32_t handle,
                                 const wire::mac_address& next_hop) noexcept {
    verdict v;
    set_forwarded_plain(v, frame, m, handle, next_hop);
    return v;
  }
  /// The same, written in place (the lane's: no 64-byte temporary copied per packet).
  static void set_forwarded_plain(verdict& v, std::span<std::byte> frame, forward_method m,
                                  std::uint32_t handle, const wire::mac_address& next_hop) noexcept {
    v = verdict{};
    v.kind = verdict_kind::forward;
    v.frame = frame;
    v.method = m;
    v.dest = handle;
    v.next_hop = next_hop;
  }

  verdict from_forward(const forward::forward_result& r, forward_method m, std::uint32_t handle,
                       const wire::mac_address& next_hop, bool to_client) noexcept {
    if (!r) return drop(r.error());
    verdict v;
    if (r->action == forward::forward_action::reply_icmp) {
      v.kind = verdict_kind::reply;
      v.reply = reply_reason::too_big;
      v.frame = r->frame;
      return v;
    }
    v.kind = verdict_kind::forward;
    v.frame = r->frame;
    v.method = m;
    v.dest = handle;
    v.next_hop = next_hop;
    v.to_client = to_client;
    // Over the egress MTU without DF: fragmented as the kernel does (ip_fragment).
    if (r->action == forward::forward_action::fragment) {
      std::span<std::byte>* out = take_frames(fragment_config::max_fragments);
      if (!out) return drop(director_drop::fragment_no_room);
      return refragment(v, r->frame, r->l3_offset, r->mtu, out);
    }
    return v;
  }

  verdict to_real_server(forward::frame_buffer& buf, const wire::packet_view& pkt,
                         const dest_runtime& d, std::uint32_t handle,
                         std::uint16_t real_port) noexcept {
    if (reassembled_) [[unlikely]] return reassembled_to_real_server(buf, pkt, d, handle, real_port);
    const forward_method m = d.spec.method;
    if (m == forward_method::local) return pass(pass_reason::local_dest);
    if (m == forward_method::full_nat && fn_local_ == nullptr) return drop(director_drop::method_unsupported);
    if (!d.has_mac) {
      note_missing_neighbour(d.spec.endpoint.address);
      return drop(director_drop::no_neighbour);
    }
    // Record Route gets the VIP (ip_forward_options on the director; ipvs-notes 0B).
    if ((m == forward_method::route || m == forward_method::masq) && pkt.has_ipv4_options()) {
      wire::ipv4_address vip;
      std::memcpy(vip.bytes.data(), pkt.key().dst_addr.data(), 4);
      (void)forward::record_route(pkt.l3(), vip);
    }
    switch (m) {
      case forward_method::route:
        // A new connection's first packet, mostly: the plain short cut first, as the lane does.
        if (const auto f = forward::detail::plain_direct_route(buf, pkt, d.dr); !f.empty())
          return forwarded_plain(f, m, handle, d.dr.l2.dst);
        return from_forward(forward::direct_route(buf, pkt, d.dr, reply_slot_), m, handle,
                            d.dr.l2.dst, false);
      case forward_method::masq: {
        forward::nat_connection c;
        client_and_vip(pkt, c.client, c.vip);
        c.real = {d.spec.endpoint.address, real_port};
        if (const auto f = forward::detail::plain_nat_translate(buf, pkt, nullptr, &c.real, d.nat); !f.empty())
          return forwarded_plain(f, m, handle, d.nat.l2.dst);
        return from_forward(forward::nat_inbound(buf, pkt, c, d.nat, reply_slot_), m, handle,
                            d.nat.l2.dst, false);
      }
      case forward_method::full_nat: {
        forward::full_nat_connection c;
        client_and_vip(pkt, c.client, c.vip);
        c.local = *fn_local_;
        c.real = {d.spec.endpoint.address, real_port};
        return from_forward(forward::full_nat_inbound(buf, pkt, c, d.nat, reply_slot_), m, handle,
                            d.nat.l2.dst, false);
      }
      case forward_method::tunnel:
        if (!d.has_tunnel_source) return drop(director_drop::family_unsupported);
        return from_forward(
            forward::tunnel_encapsulate(buf, pkt, d.spec.endpoint.address, d.tunnel, reply_slot_),
            m, handle, d.tunnel.l2.dst, false);
      default: break;
    }
    return drop(director_drop::method_unsupported);
  }

  /// A reassembled datagram is rewritten whole, whatever its length: the kernel holds the
  /// largest fragment received, not the datagram, to the MTU (frag_max_size in ip_fragment,
  /// ip6_fragment, __mtu_check_toobig_v6), which fragment() does when it sends the pieces.
  [[gnu::cold]] verdict reassembled_to_real_server(forward::frame_buffer& buf, const wire::packet_view& pkt,
                                                   const dest_runtime& d, std::uint32_t handle,
                                                   std::uint16_t real_port) noexcept {
    dest_runtime whole = d;
    whole.dr.mtu = whole.nat.mtu = whole.tunnel.mtu = 0;
    reassembled_ = false;
    const verdict v = to_real_server(buf, pkt, whole, handle, real_port);
    reassembled_ = true;
    return v;
  }

  /// A client-side packet's client and VIP: its own addresses, or for an ICMP error those of the
  /// packet it quotes (VIP -> client).
  static void client_and_vip(const wire::packet_view& pkt, wire::endpoint& client, wire::endpoint& vip) noexcept {
    if (pkt.is_icmp_error()) {
      const wire::flow_key q = pkt.quoted_flow_key();
      client = {q.dst_address(), q.dst_port};
      vip = {q.src_address(), q.src_port};
    } else {
      const wire::flow_key& k = pkt.key();
      client = {k.src_address(), k.src_port};
      vip = {k.dst_address(), k.dst_port};
    }
  }

  /// Remembers a next hop without a MAC, for the application to resolve (missing_neighbours()).
  void note_missing_neighbour(const wire::ip_address& a) noexcept {
    for (std::size_t i = 0; i < missing_count_ && i < missing_.size(); ++i)
      if (missing_[i] == a) return;
    missing_[missing_count_ % missing_.size()] = a;
    ++missing_count_;
  }

  /// A packet from a real server to a client (ip_vs_out_hook, handle_response): NAT rewrites
  /// its source back to the VIP; replies of other methods are not the director's.
  template <class Addr>
  verdict reply_direction(forward::frame_buffer& buf, const wire::packet_view& pkt,
                          std::int64_t now) noexcept {
    auto& t = table<Addr>();
    if (fn_reply_) {
      const conn::conn_ref fr = fn_find<Addr>(pkt, now);
      if (fr != conn::no_conn) return full_nat_reply<Addr>(buf, pkt, fr, now);
    }
    const auto rk = conn::reply_key<Addr>::from_flow(pkt.key());
    const conn::conn_ref ref = t.find_reply(rk, now);
    if (ref == conn::no_conn || !t.is_nat(ref)) return pass(pass_reason::no_service);
    return nat_reply<Addr>(buf, pkt, ref, now, false);
  }

  // ------------------------------------------------------------------ FullNAT

  static constexpr std::uint32_t fn_none = 0xFFFF'FFFFu;
  static constexpr std::uint32_t fn_min_port = 1024;

  static int fn_proto(std::uint8_t p) noexcept {
    return p == wire::ip_proto::tcp ? 0 : p == wire::ip_proto::udp ? 1 : p == wire::ip_proto::sctp ? 2 : -1;
  }
  [[nodiscard]] std::uint32_t fn_index(const wire::ip_address& a) const noexcept {
    for (std::uint32_t i = 0; i < fn_locals_.size(); ++i)
      if (fn_locals_[i] == a) return i;
    return fn_none;
  }
  /// The server's first local address of its family that this director indexes.
  [[nodiscard]] std::uint32_t fn_local_for(const dest_runtime& d) const noexcept {
    for (const auto& a : d.spec.full_nat_local)
      if (a.family() == d.spec.endpoint.address.family())
        if (const std::uint32_t i = fn_index(a); i != fn_none) return i;
    return fn_none;
  }
  std::uint32_t* fn_slot(std::uint32_t li, int pi, std::uint32_t port) noexcept {
    return fn_reply_.get() + ((std::size_t{li} * 3 + static_cast<std::size_t>(pi)) << 16) + port;
  }
  /// A free local port (clock order from the last one given), or 0 after a bounded search.
  std::uint32_t fn_allocate(std::uint32_t li, std::uint8_t protocol) noexcept {
    const int pi = fn_proto(protocol);
    if (pi < 0) return 0;
    std::uint32_t& cursor = fn_cursor_[std::size_t{li} * 3 + static_cast<std::size_t>(pi)];
    const std::uint32_t count = fn_share_count_, index = fn_share_index_;
    const auto in_share = [&](std::uint32_t p) { return p + (index + count - p % count) % count; };
    for (std::uint32_t probe = 0; probe < 4096; ++probe) {
      std::uint32_t next = cursor + 1 > 65535 || cursor < fn_min_port ? fn_min_port : cursor + 1;
      next = in_share(next);
      if (next > 65535) next = in_share(fn_min_port);
      cursor = next;
      if (*fn_slot(li, pi, cursor) == fn_none) return cursor;
    }
    return 0;
  }
  void fn_bind(bool v6, conn::conn_ref ref, std::uint32_t li, std::uint8_t protocol, std::uint32_t port) noexcept {
    const int pi = fn_proto(protocol);
    *fn_slot(li, pi, port) = ref | (v6 ? 0x8000'0000u : 0u);
    (v6 ? fn_port_v6_ : fn_port_v4_)[ref] = li << 18 | static_cast<std::uint32_t>(pi) << 16 | port;
  }
  void fn_unbind(bool v6, std::uint32_t ref) noexcept {
    std::uint32_t& packed = (v6 ? fn_port_v6_ : fn_port_v4_)[ref];
    if (packed == fn_none) return;
    std::uint32_t* e = fn_slot(packed >> 18, static_cast<int>((packed >> 16) & 3), packed & 0xFFFF);
    if (*e == (ref | (v6 ? 0x8000'0000u : 0u))) *e = fn_none;
    packed = fn_none;
  }
  /// The FullNAT connection a real server's packet to a local endpoint belongs to.
  template <class Addr>
  [[nodiscard]] conn::conn_ref fn_find(const wire::packet_view& pkt, std::int64_t now) noexcept {
    const wire::flow_key& k = pkt.key();
    return fn_lookup<Addr>(k.protocol, k.dst_address(), k.dst_port, k.src_addr, k.src_port, now);
  }
  /// The FullNAT connection of local endpoint (local, lport) toward real server (real, rport).
  template <class Addr>
  [[nodiscard]] conn::conn_ref fn_lookup(std::uint8_t protocol, const wire::ip_address& local,
                                         std::uint16_t lport, const std::array<std::uint8_t, 16>& real,
                                         std::uint16_t rport, std::int64_t now) noexcept {
    const int pi = fn_proto(protocol);
    if (pi < 0) return conn::no_conn;
    const std::uint32_t li = fn_index(local);
    if (li == fn_none) return conn::no_conn;
    const std::uint32_t e = *fn_slot(li, pi, lport);
    if (e == fn_none || ((e >> 31) != 0) != (Addr::size == 16)) return conn::no_conn;
    const conn::conn_ref ref = e & 0x7FFF'FFFFu;
    auto& t = table<Addr>();
    if (t.remaining_ns(ref, now) <= 0) return conn::no_conn;
    const dest_runtime& d = snap_->dests[t.dest(ref)];
    if (d.spec.endpoint.address.raw() != real || t.dest_port(ref) != rport) return conn::no_conn;
    return ref;
  }
  template <class Addr>
  verdict full_nat_reply(forward::frame_buffer& buf, const wire::packet_view& pkt, conn::conn_ref ref,
                         std::int64_t now, bool icmp = false) noexcept {
    auto& t = table<Addr>();
    const std::uint32_t handle = t.dest(ref);
    const dest_runtime& d = snap_->dests[handle];
    const auto ck = t.key(ref);
    forward::full_nat_connection c;
    c.client = {wire::ip_address(ck.client_addr), ck.client_port};
    c.vip = {wire::ip_address(ck.virtual_addr), ck.virtual_port};
    if (icmp) {  // the quote is local -> real server
      const wire::flow_key q = pkt.quoted_flow_key();
      c.local = {q.src_address(), q.src_port};
    } else {
      c.local = {pkt.key().dst_address(), pkt.key().dst_port};
    }
    c.real = {d.spec.endpoint.address, t.dest_port(ref)};
    forward::nat_config cfg;
    if (!toward_client<Addr>(pkt, ref, c.client.address, !icmp, now, cfg))
      return drop(director_drop::no_neighbour);
    return from_forward(forward::full_nat_outbound(buf, pkt, c, cfg, reply_slot_),
                        forward_method::full_nat, handle, cfg.l2.dst, true);
  }

  template <class Addr>
  verdict nat_reply(forward::frame_buffer& buf, const wire::packet_view& pkt, conn::conn_ref ref,
                    std::int64_t now, bool icmp) noexcept {
    auto& t = table<Addr>();
    const std::uint32_t handle = t.dest(ref);
    const dest_runtime& d = snap_->dests[handle];
    const auto ck = t.key(ref);
    const wire::endpoint client{wire::ip_address(ck.client_addr), ck.client_port};
    const wire::endpoint vip{wire::ip_address(ck.virtual_addr), ck.virtual_port};
    forward::nat_config cfg;
    if (!toward_client<Addr>(pkt, ref, client.address, !icmp, now, cfg))
      return drop(director_drop::no_neighbour);
    forward::nat_connection c{client, vip, real_endpoint(t, ref, d)};
    return from_forward(forward::nat_outbound(buf, pkt, c, cfg, reply_slot_), forward_method::masq,
                        handle, cfg.l2.dst, true);
  }

  /// The common part of a reply toward a client (NAT and FullNAT): the next hop (the client's
  /// neighbour entry, else its family's gateway), the state update, the OutPkts/OutBytes
  /// counters, and the rewrite's configuration. False when no next hop is known (noted).
  template <class Addr>
  bool toward_client(const wire::packet_view& pkt, conn::conn_ref ref, const wire::ip_address& client,
                     bool update_state, std::int64_t now, forward::nat_config& cfg) noexcept {
    auto& t = table<Addr>();
    const wire::mac_address* mac = client_next_hop(client);
    if (!mac) {
      note_missing_neighbour(client);
      return false;
    }
    if (update_state) state_update<Addr>(pkt, ref, pkt.tcp_flags(), conn::direction::output, now);
    const std::uint32_t handle = t.dest(ref);
    const dest_runtime& d = snap_->dests[handle];
    const std::uint32_t bytes = static_cast<std::uint32_t>(pkt.l3_len());
    dests_[handle].stats.add_out(bytes);
    if (d.live) services_[d.service_id].stats.add_out(bytes);
    cfg.l2.src = snap_->identity.mac;
    cfg.l2.dst = *mac;
    cfg.keep_quoted_l4_checksum = true;  // the kernel leaves it (ipvs-notes 0A)
    return true;
  }

  /// ip_vs_in_icmp / ip_vs_out_icmp: an ICMP error follows the connection it quotes.
  template <class Addr>
  verdict icmp_error(forward::frame_buffer& buf, const wire::packet_view& pkt,
                     std::int64_t now) noexcept {
    auto& t = table<Addr>();
    const wire::flow_key q = pkt.quoted_flow_key();
    // Toward the client side of a connection: the quote is a packet VIP -> client.
    conn::conn_key<Addr> key;
    key.client_addr = conn::detail::address_from<Addr>(q.dst_addr);
    key.virtual_addr = conn::detail::address_from<Addr>(q.src_addr);
    key.client_port = q.dst_port;
    key.virtual_port = q.src_port;
    key.protocol = q.protocol;
    const conn::conn_ref ref = t.find(key, now);
    if (ref != conn::no_conn) {
      const std::uint32_t handle = t.dest(ref);
      const dest_runtime& d = snap_->dests[handle];
      if (!d.live) return drop(director_drop::dest_removed);
      count_in(d, handle, pkt);
      return toward_server<Addr>(buf, pkt, ref, d, handle);
    }
    // From a FullNAT server: the quote is a packet local endpoint -> real server.
    if (fn_reply_) {
      const conn::conn_ref fr = fn_lookup<Addr>(q.protocol, q.src_address(), q.src_port,
                                                q.dst_addr, q.dst_port, now);
      if (fr != conn::no_conn) return full_nat_reply<Addr>(buf, pkt, fr, now, true);
    }
    // From the server side: the quote is a packet client -> real server.
    const conn::reply_key<Addr> rk{conn::detail::address_from<Addr>(q.dst_addr),
                                   conn::detail::address_from<Addr>(q.src_addr), q.dst_port,
                                   q.src_port, q.protocol};
    const conn::conn_ref rref = t.find_reply(rk, now);
    if (rref != conn::no_conn && t.is_nat(rref)) return nat_reply<Addr>(buf, pkt, rref, now, true);
    if (snap_->is_vip(pkt.key().dst_addr, pkt.key().family))
      return drop(director_drop::icmp_unknown_conn);
    return pass(pass_reason::icmp_not_ours);
  }

  /// ip_vs_leave: no real server available → ICMP port unreachable from the VIP (0A), as a
  /// `reply` verdict built in the reply arena.
  verdict no_destination(const wire::packet_view& pkt) noexcept {
    forward::icmp_reply_options o;
    o.src_mac = snap_->identity.mac;
    if (pkt.is_ipv4())
      o.ip_id = forward::default_ip_id_generator().next(wire::ip_family::v4, pkt.key().dst_addr.data(),
                                                        pkt.key().src_addr.data(), wire::ip_proto::icmp);
    auto r = forward::make_port_unreachable(reply_slot_, pkt, o);
    if (!r) return drop(director_drop::no_destination);  // RFC 1122: not about this packet
    verdict v;
    v.kind = verdict_kind::reply;
    v.reply = reply_reason::port_unreachable;
    v.frame = *r;
    return v;
  }


  // ------------------------------------------------------------------ fragments

  static constexpr std::size_t scratch_headroom = 128;
  static constexpr std::size_t scratch_bytes = scratch_headroom + 65535 + 64 + 64;
  static constexpr std::size_t frag_out_bytes = 1u << 18;  // this burst's refragmented output
  static constexpr std::size_t max_out_frames = 512;

  static director_drop fragment_drop(fragment_status s) noexcept {
    switch (s) {
      case fragment_status::duplicate: return director_drop::fragment_duplicate;
      case fragment_status::overlap: return director_drop::fragment_overlap;
      case fragment_status::invalid: return director_drop::fragment_invalid;
      case fragment_status::too_large: return director_drop::fragment_too_large;
      case fragment_status::too_many: return director_drop::fragment_too_many;
      default: return director_drop::fragment_no_room;
    }
  }

  /// Frees the datagrams whose fragments the previous call handed out.
  void release_fragments() noexcept {
    for (std::size_t i = 0; i < n_release_; ++i) frags_.release(release_[i]);
    n_release_ = 0;
    out_used_ = 0;
    n_out_frames_ = 0;
  }

  /// Room for `n` more output frame spans this burst, or nullptr.
  std::span<std::byte>* take_frames(std::size_t n) noexcept {
    if (n_out_frames_ + n > max_out_frames) return nullptr;
    std::span<std::byte>* p = out_frames_.data() + n_out_frames_;
    n_out_frames_ += n;
    return p;
  }

  verdict fragment(const wire::packet_view& pkt, std::uint32_t mark, std::int64_t now) noexcept {
    std::uint32_t q = fragment_table::none;
    const fragment_status st = frags_.add(pkt, now, q);
    if (st == fragment_status::queued) {
      verdict v;
      v.kind = verdict_kind::queued;
      return v;
    }
    if (st != fragment_status::complete) return drop(fragment_drop(st));
    release_[n_release_++] = q;  // at most one datagram completes per frame of the burst
    const auto pieces = frags_.pieces(q);
    const fragment_table::queue_info& where = frags_.info(q);
    const bool v6 = where.family == wire::ip_family::v6;
    // The reassembled datagram: the first fragment's L2 and IP header (IPv6: its unfragmentable
    // part, without the fragment header), every payload in place.
    const fragment_table::piece& first = pieces.front();
    const std::size_t l2 = first.l3_offset;
    const std::size_t hlen = first.l3_len - first.payload;
    const std::size_t keep = v6 ? where.fragment_header_at : hlen;
    const std::size_t ip_len = keep + frags_.total(q);
    std::byte* base = scratch_.get() + scratch_headroom;
    std::memcpy(base, first.frame.data(), l2 + keep);
    for (const auto& p : pieces) {
      const std::size_t phlen = p.l3_len - p.payload;
      std::memcpy(base + l2 + keep + p.offset, p.frame.data() + p.l3_offset + phlen, p.payload);
    }
    if (v6) {
      // The byte that named the fragment header now names what the fragment header named.
      base[l2 + where.next_header_at] = first.frame[l2 + where.fragment_header_at];
      wire::basic_ipv6_view<std::byte>::unchecked(std::span(base + l2, ip_len))
          .set_payload_len(static_cast<std::uint16_t>(ip_len - wire::ipv6_view::header_len));
    } else {
      auto ip = wire::basic_ipv4_view<std::byte>::unchecked(std::span(base + l2, ip_len));
      ip.set_total_len(static_cast<std::uint16_t>(ip_len));
      ip.set_flags_frag(ip.dont_frag(), false, 0);
      ip.fill_checksum();
    }
    auto rb = forward::frame_buffer::make(std::span(scratch_.get(), scratch_bytes), scratch_headroom,
                                          l2 + ip_len);
    const wire::parse_options popt{false, true};
    auto rp = rb ? wire::parse(rb->frame(), popt) : wire::parse(std::span<std::byte>{}, popt);
    if (!rp) return parse_failure(rp.error());
    if (v6 && rp->protocol() == wire::ip_proto::udp && rp->has_l4_header() && rp->udp().checksum() == 0)
      return drop(director_drop::ipv6_udp_zero_checksum);
    reassembled_ = true;
    verdict v = v6 ? decide_family<wire::ipv6_address>(*rb, *rp, conn::no_conn, mark, now)
                   : decide_family<wire::ipv4_address>(*rb, *rp, conn::no_conn, mark, now);
    reassembled_ = false;
    if (v.kind == verdict_kind::drop || v.kind == verdict_kind::reply) return v;
    std::span<std::byte>* out = take_frames(fragment_config::max_fragments);
    if (!out) return drop(director_drop::fragment_no_room);
    if (v.kind == verdict_kind::pass) {  // not ours after all: the host gets every fragment
      for (std::size_t i = 0; i < pieces.size(); ++i) out[i] = pieces[i].frame;
      return with_frames(v, out, pieces.size());
    }
    const dest_runtime& d = snap_->dests[v.dest];
    const std::size_t largest = frags_.largest_l3(q);
    if (v.frame.size() < ip_len) return drop(director_drop::fragment_invalid);
    // The rewritten datagram ends the frame (DR and NAT keep the IP length; the L2 may change).
    const std::size_t out_l2 = v.frame.size() - ip_len;
    switch (v.method) {
      case forward_method::route:
      case forward_method::masq:
      case forward_method::full_nat: {
        // A fragment over the MTU: IPv6 is too big; IPv4 is refragmented at the MTU (ip_fragment
        // with frag_max_size; fragments do not carry DF). Toward a client (a NAT reply) no MTU
        // is configured.
        const std::size_t mtu = v.to_client ? 0 : v.method == forward_method::route ? d.dr.mtu : d.nat.mtu;
        if (mtu != 0 && largest > mtu) {
          if (v6) return drop(forward::forward_error::too_big);
          return refragment(v, v.frame, out_l2, mtu, out);
        }
        // NAT changes the first fragment's L4 header: it must be there (IPv6 guarantees it,
        // RFC 7112), or the datagram is refragmented (ipvs-notes 0B); so is one whose L2 header
        // changes length, which the fragments cannot take in place.
        const bool l4_changes = v.method != forward_method::route;
        bool in_place = out_l2 == l2 && (v6 || !l4_changes || first.payload >= l4_header_len(*rp));
        for (const auto& p : pieces) in_place = in_place && p.l3_offset == l2;
        if (!in_place) return refragment(v, v.frame, out_l2, largest, out);
        const std::byte* rewritten = v.frame.data() + l2;
        for (std::size_t i = 0; i < pieces.size(); ++i) {
          // DR: every fragment as received, MACs rewritten and TTL / hop limit - 1
          // (ip_vs_dr_xmit). NAT (either way) and FullNAT: the new addresses in every fragment;
          // the new ports and the L4 checksum (over the whole datagram, computed on the
          // reassembled copy) in the first.
          const auto& p = pieces[i];
          std::byte* fl3 = p.frame.data() + l2;
          std::memcpy(p.frame.data(), v.frame.data(), l2);  // the L2 header as the rewriter wrote it
          if (v6) {
            std::memcpy(fl3 + 8, rewritten + 8, 32);  // source and destination
            fl3[7] = rewritten[7];                    // hop limit - 1
          } else {
            std::memcpy(fl3 + 12, rewritten + 12, 8);
            fl3[8] = rewritten[8];  // TTL - 1
          }
          if (p.offset == 0 && l4_changes)
            std::memcpy(fl3 + (p.l3_len - p.payload), rewritten + keep, p.payload);
          if (!v6) wire::basic_ipv4_view<std::byte>::unchecked(std::span(fl3, p.l3_len)).fill_checksum();
          out[i] = p.frame.first(l2 + p.l3_len);
        }
        if (v6) renumber_ipv6_fragments(std::span(out, pieces.size()), pieces);
        return with_frames(v, out, pieces.size());
      }
      case forward_method::tunnel: {
        // TUN: the whole datagram encapsulated, the outer packet fragmented at the size of the
        // largest fragment received (or the MTU, if smaller), with a fresh outer ID (ipvs-notes
        // 0B). An IPv6 datagram whose largest fragment would not fit the tunnel is too big
        // (__mtu_check_toobig_v6).
        const std::size_t mtu = d.tunnel.mtu;
        if (v6 && mtu != 0 && largest + forward::encapsulation_overhead(d.tunnel) > mtu)
          return drop(forward::forward_error::too_big);
        auto outer = wire::parse(v.frame, popt);
        if (!outer) return drop(director_drop::fragment_invalid);
        return refragment(v, v.frame, outer->l3_offset(), mtu != 0 ? std::min(largest, mtu) : largest, out);
      }
      default: return v;
    }
  }

  /// IPv6 fragments leave with a new identification, one for the datagram (ip6_fragment takes
  /// ipv6_select_ident's; ipvs-notes 0B: "the same geometry ... but a new fragment
  /// identification"), keyed by the addresses they leave with.
  static void renumber_ipv6_fragments(std::span<const std::span<std::byte>> frames,
                                      std::span<const fragment_table::piece> pieces) noexcept {
    const std::byte* l3 = frames[0].data() + (frames[0].size() - pieces[0].l3_len);
    const std::uint32_t id = forward::default_ip_id_generator().next_ipv6_fragment(l3 + 8, l3 + 24);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      std::byte* fl3 = frames[i].data() + (frames[i].size() - pieces[i].l3_len);
      // Every fragment's unfragmentable part has the first one's length (RFC 8200 4.5).
      const std::size_t at = pieces[i].l3_len - pieces[i].payload - 8;
      wire::ipv6_fragment_mut_view::unchecked(std::span(fl3 + at, 8)).set_ident(id);
    }
  }

  static verdict with_frames(verdict v, std::span<std::byte>* out, std::size_t n) noexcept {
    v.frames = std::span<const std::span<std::byte>>(out, n);
    v.frame = n ? out[0] : std::span<std::byte>{};
    return v;
  }

  static std::size_t l4_header_len(const wire::packet_view& p) noexcept {
    switch (p.protocol()) {
      case wire::ip_proto::tcp: return p.payload_offset() - p.l4_offset();
      case wire::ip_proto::udp: return 8;
      case wire::ip_proto::sctp: return 12;
      default: return 0;
    }
  }

  /// Splits the IPv4 packet after `l2` bytes of `frame` into fragments of at most `max_ip`
  /// bytes (forward::fragment_ipv4: the kernel's geometry and option rules), written to this
  /// burst's output room.
  verdict refragment(verdict v, std::span<const std::byte> frame, std::size_t l2, std::size_t max_ip,
                     std::span<std::byte>* out) noexcept {
    if (frame.size() < l2 + 40) return drop(director_drop::fragment_invalid);
    const bool v6 = std::to_integer<std::uint8_t>(frame[l2]) >> 4 == 6;
    const auto ip = frame.subspan(l2);
    std::size_t names = 0;
    const std::size_t n =
        v6 ? forward::ipv6_fragment_count(frame.size() - l2, forward::ipv6_unfragmentable_len(ip, names), max_ip)
           : forward::ipv4_fragment_count(wire::basic_ipv4_view<const std::byte>::unchecked(ip).total_len(),
                                          wire::basic_ipv4_view<const std::byte>::unchecked(ip).header_len(), max_ip);
    if (n == 0 || n > fragment_config::max_fragments) return drop(director_drop::fragment_invalid);
    const std::size_t each = l2 + max_ip;
    if (out_used_ + n * each > frag_out_bytes) return drop(director_drop::fragment_no_room);
    for (std::size_t i = 0; i < n; ++i) out[i] = std::span(frag_out_.get() + out_used_ + i * each, each);
    auto r = v6 ? forward::fragment_ipv6(frame, l2, max_ip,
                                         forward::default_ip_id_generator().next_ipv6_fragment(
                                             ip.data() + 8, ip.data() + 24),
                                         std::span(out, n))
                : forward::fragment_ipv4(frame, l2, max_ip, std::span(out, n));
    if (!r) return drop(r.error());
    out_used_ += n * each;
    return with_frames(v, out, *r);
  }

  // ------------------------------------------------------------------ counts (observer)

  static void on_count_v4(void* ctx, const conn::count_event& e) noexcept {
    auto* self = static_cast<director*>(ctx);
    if (e.change == conn::count_change::conn_unbound && self->fn_reply_) self->fn_unbind(false, e.conn);
    on_count(self, e);
  }
  static void on_count_v6(void* ctx, const conn::count_event& e) noexcept {
    auto* self = static_cast<director*>(ctx);
    if (e.change == conn::count_change::conn_unbound && self->fn_reply_) self->fn_unbind(true, e.conn);
    on_count(self, e);
  }
  static void on_count(director* self, const conn::count_event& e) noexcept {
    dest_state& ds = self->dests_[e.dest];
    ds.active.store(e.counts.active_conns, std::memory_order_relaxed);
    ds.inactive.store(e.counts.inactive_conns, std::memory_order_relaxed);
    ds.persist.store(e.counts.persist_conns, std::memory_order_relaxed);
    if (ds.position == no_position) return;  // removed from its service
    service_state& ss = self->services_[ds.service_id];
    if (ds.position >= ss.list.size()) return;
    sched::real_server& r = ss.list[ds.position];
    r.active_conns = e.counts.active_conns;
    r.inactive_conns = e.counts.inactive_conns;
    r.persist_conns = e.counts.persist_conns;
    const bool was_overloaded = r.overloaded;
    switch (e.change) {
      case conn::count_change::conn_bound:
      case conn::count_change::template_bound: r.after_bind(); break;
      case conn::count_change::conn_unbound:
      case conn::count_change::template_unbound: r.after_unbind(); break;
      default: break;
    }
    ds.overloaded = r.overloaded;
    // Only the changes the policy reads (sched::count_use): the hashing policies read none, rr,
    // wrr, fo, swrr and twos only the overload flag. Every other change of that flag and every
    // weight change reach the policy through sync(), so what it keeps stays current.
    const sched::count_use use = ss.counts_use;
    if (use == sched::count_use::none ||
        (use == sched::count_use::availability && r.overloaded == was_overloaded))
      return;
    // A new connection's insert and first packet (schedule): told once, after both.
    if (e.dest == self->held_dest_) {
      self->held_changed_ = true;
      return;
    }
    ss.sched->counts_changed(ss.list, ds.position);
  }

  // schedule() holds the policy's counts_changed for the server it picked while the table binds
  // the connection and takes its first packet (one count event, or two for SCTP, whose first
  // packet follows the insert; no pick between them): every policy's counts_changed depends
  // only on the server's values at the time, so one call after both leaves it as the two would.
  void hold_counts(std::uint32_t handle) noexcept {
    held_dest_ = handle;
    held_changed_ = false;
  }
  void release_counts() noexcept {
    const std::uint32_t handle = held_dest_;
    held_dest_ = no_held_dest;
    if (!held_changed_) return;
    const dest_state& ds = dests_[handle];  // on_count checked its position and scheduler
    service_state& ss = services_[ds.service_id];
    ss.sched->counts_changed(ss.list, ds.position);
  }

  // ------------------------------------------------------------------ per burst

  void housekeeping(std::int64_t now) noexcept {
    // Expiry: a budget that keeps up with the insert rate, doubled while a backlog remains.
    const std::uint64_t inserted = v4_.stats().inserted + v6_.stats().inserted;
    const auto fresh = static_cast<std::uint32_t>(std::min<std::uint64_t>(inserted - last_inserted_, 1u << 16));
    last_inserted_ = inserted;
    const std::uint32_t budget = std::min<std::uint32_t>(8 + fresh + backlog_, 1u << 16);
    const bool c4 = v4_.expire(now, budget).caught_up;
    const bool c6 = v6_.expire(now, budget).caught_up;
    backlog_ = (c4 && c6) ? 0 : std::min<std::uint32_t>(backlog_ * 2 + 64, 1u << 16);
    (void)frags_.expire(now);
    // IPVS's estimator: one step per 2 s of `now`.
    if (next_estimate_ == 0) next_estimate_ = now + rate_estimator::period_ns;
    for (int steps = 0; now >= next_estimate_ && steps < 64; ++steps) {
      estimate();
      next_estimate_ += rate_estimator::period_ns;
    }
    if (now >= next_estimate_) next_estimate_ = now + rate_estimator::period_ns;
  }

  void estimate() noexcept {
    for (const std::uint32_t id : live_services_) {
      service_state& ss = services_[id];
      ss.est.step(ss.stats.read());
      ss.published_rates.store(ss.est.read());
    }
    for (const std::uint32_t h : live_dests_) {
      dest_state& ds = dests_[h];
      ds.est.step(ds.stats.read());
      ds.published_rates.store(ds.est.read());
    }
    report_free_handles();
  }

  void report_free_handles() noexcept {
    for (std::uint32_t h : snap_->retired) {
      if (h >= limits_.max_dests) continue;
      const auto c4 = v4_.counts(h), c6 = v6_.counts(h);
      if (c4.active_conns + c4.inactive_conns + c4.persist_conns + c6.active_conns +
              c6.inactive_conns + c6.persist_conns ==
          0)
        port_.handle_free[h].store(snap_->dests[h].generation, std::memory_order_release);
    }
  }

  // ------------------------------------------------------------------ configuration changes

  void sync() {
    snap_ = control_.acquire();
    const snapshot& s = *snap_;
    seen_generation_ = s.generation;
    (void)v4_.set_timeouts(s.timeouts);
    (void)v6_.set_timeouts(s.timeouts);
    conn::reuse_policy rp;
    rp.conn_reuse_mode = s.settings.conn_reuse_mode;
    rp.expire_nodest_conn = s.settings.expire_nodest_conn;
    rp.reschedule_syn_to_unavailable_dest = s.settings.reschedule_syn_to_unavailable_dest;
    v4_.set_reuse_policy(rp);
    v6_.set_reuse_policy(rp);
    v4_.set_secure_tcp(s.settings.secure_tcp >= 2);
    v6_.set_secure_tcp(s.settings.secure_tcp >= 2);
    v4_.set_expire_quiescent_template(s.settings.expire_quiescent_template);
    v6_.set_expire_quiescent_template(s.settings.expire_quiescent_template);
    // Real servers by handle.
    for (std::uint32_t h = 0; h < limits_.max_dests && h < s.dests.size(); ++h) {
      const dest_runtime& d = s.dests[h];
      dest_state& ds = dests_[h];
      if (d.generation == 0) continue;
      if (ds.generation != d.generation) {
        ds.generation = d.generation;
        ds.zero_epoch = d.zero_epoch;
        ds.stats.clear();
        ds.est.reset({});
        ds.published_rates.store({});
        ds.overloaded = false;
        ds.upper = d.spec.upper_threshold;
        const auto& a = d.spec.endpoint.address;
        if (a.is_v4())
          (void)v4_.set_dest(h, a.v4(), d.spec.endpoint.port);
        else
          (void)v6_.set_dest(h, a.v6(), d.spec.endpoint.port);
      }
      if (ds.zero_epoch != d.zero_epoch) {
        ds.zero_epoch = d.zero_epoch;
        ds.stats.clear();
        ds.est.reset({});
        ds.published_rates.store({});
      }
      // An edit clears OVERLOAD when the upper threshold is removed or raised (__ip_vs_update_dest).
      if (d.spec.upper_threshold == 0 || d.spec.upper_threshold > ds.upper) ds.overloaded = false;
      ds.upper = d.spec.upper_threshold;
      (void)v4_.set_dest_available(h, d.live);
      (void)v6_.set_dest_available(h, d.live);
      (void)v4_.set_dest_quiesced(h, d.live && d.spec.weight == 0);
      (void)v6_.set_dest_quiesced(h, d.live && d.spec.weight == 0);
      ds.position = no_position;
      if (d.live) ds.service_id = d.service_id;
      // FullNAT local addresses keep their index for the director's life (replies find them).
      if (fn_reply_ && d.live && d.spec.method == forward_method::full_nat)
        for (const auto& a : d.spec.full_nat_local)
          if (fn_index(a) == fn_none && fn_locals_.size() < fn_locals_max_) fn_locals_.push_back(a);
    }
    // Services and their schedulers.
    for (std::uint32_t id = 0; id < limits_.max_services; ++id) {
      service_state& ss = services_[id];
      const service_runtime* rt = id < s.services.size() ? s.services[id].get() : nullptr;
      if (!rt) {
        if (ss.generation != 0) {
          ss.generation = 0;
          ss.sched.reset();
          ss.counts_use = sched::count_use::none;
          ss.list.clear();
        }
        continue;
      }
      const bool fresh = ss.generation != rt->generation;
      if (fresh || ss.zero_epoch != rt->zero_epoch) {
        ss.stats.clear();
        ss.est.reset({});
        ss.published_rates.store({});
        ss.zero_epoch = rt->zero_epoch;
      }
      if (fresh || ss.sched_version != rt->sched_version) {
        if (!fresh && rt->events_complete && ss.sched_version == rt->events_from && ss.sched) {
          for (const auto& ev : rt->events) {
            with_counts(ss.list, ev.list);
            (void)ss.sched->rebuild(ss.list, ev.change);
          }
        } else {
          ss.sched = rt->prototype;
        }
        ss.generation = rt->generation;
        ss.sched_version = rt->sched_version;
      }
      ss.counts_use = ss.sched ? ss.sched->counts_use() : sched::count_use::none;
      with_counts(ss.list, rt->dests);
      for (std::uint32_t p = 0; p < ss.list.size(); ++p) {
        dests_[ss.list[p].handle].position = p;
        dests_[ss.list[p].handle].service_id = id;
        if (ss.sched) ss.sched->counts_changed(ss.list, p);
      }
    }
    // What the estimator steps: every service and real server this director has state for.
    live_services_.clear();
    live_dests_.clear();
    for (std::uint32_t id = 0; id < limits_.max_services; ++id)
      if (services_[id].generation != 0) live_services_.push_back(id);
    for (std::uint32_t h = 0; h < limits_.max_dests; ++h)
      if (dests_[h].generation != 0) live_dests_.push_back(h);
    port_.seen_generation.store(s.generation, std::memory_order_release);
    report_free_handles();
  }

  /// `out` = `config` with this director's counts and OVERLOAD flags.
  void with_counts(std::vector<sched::real_server>& out, const std::vector<sched::real_server>& config) {
    out = config;
    for (auto& r : out) {
      const auto& ds = dests_[r.handle];
      const conn::dest_counts c4 = v4_.counts(r.handle), c6 = v6_.counts(r.handle);
      r.active_conns = c4.active_conns + c6.active_conns;
      r.inactive_conns = c4.inactive_conns + c6.inactive_conns;
      r.persist_conns = c4.persist_conns + c6.persist_conns;
      r.overloaded = ds.overloaded;
    }
  }

  // ------------------------------------------------------------------ status (control plane)

  void read_service(std::uint32_t id, service_status& s) const {
    if (id >= limits_.max_services) return;
    s.stats += services_[id].stats.read();
    s.rate += services_[id].published_rates.load();
  }
  void read_dest(std::uint32_t h, dest_status& s) const {
    if (h >= limits_.max_dests) return;
    const dest_state& ds = dests_[h];
    s.stats += ds.stats.read();
    s.rate += ds.published_rates.load();
    s.active_conns += ds.active.load(std::memory_order_relaxed);
    s.inactive_conns += ds.inactive.load(std::memory_order_relaxed);
    s.persist_conns += ds.persist.load(std::memory_order_relaxed);
  }
  /// Connection rows; call from this director's thread or while it is not processing.
  void read_conns(std::vector<conn_row>& rows, std::int64_t now) const {
    const snapshot& s = *snap_;
    append_conns(v4_, s, rows, now);
    append_conns(v6_, s, rows, now);
  }
  template <class Table>
  static void append_conns(const Table& t, const snapshot& s, std::vector<conn_row>& rows,
                           std::int64_t now) {
    t.for_each(
        [&](const auto& v) {
          conn_row r;
          r.protocol = v.key.protocol;
          r.state = conn::state_name(v.key.protocol, v.state);
          r.remaining_ns = v.remaining_ns;
          r.client = {wire::ip_address(v.key.client_addr), v.key.client_port};
          r.virtual_endpoint = {wire::ip_address(v.key.virtual_addr), v.key.virtual_port};
          const auto& d = s.dests[v.dest];
          r.dest = {d.spec.endpoint.address, t.dest_port(v.ref)};
          r.order = v.ref;
          rows.push_back(r);
        },
        now);
    const auto& tt = t.templates();
    if (!tt.enabled()) return;
    tt.for_each([&](conn::template_ref ref) {
      const auto k = tt.key(ref);
      const std::int64_t rem = tt.remaining_ns(ref, now);
      if (rem <= 0) return;
      conn_row r;
      r.is_template = true;
      r.protocol = k.protocol;
      r.state = tt.assured(ref) ? "ASSURED" : "NONE";
      r.remaining_ns = rem;
      r.client = {wire::ip_address(k.client_net), 0};
      r.virtual_endpoint = {wire::ip_address(k.virtual_addr), k.virtual_port};
      const auto& d = s.dests[tt.dest(ref)];
      r.dest = {d.spec.endpoint.address, k.virtual_port != 0 ? d.spec.endpoint.port : std::uint16_t{0}};
      r.order = (std::uint64_t{1} << 40) | ref;
      rows.push_back(r);
    });
  }

  director_control& control_;
  configuration_limits limits_;
  conn::conn_table_v4 v4_;
  conn::conn_table_v6 v6_;
  std::unique_ptr<service_state[]> services_;
  std::unique_ptr<dest_state[]> dests_;
  std::unique_ptr<std::byte[]> reply_arena_;
  std::span<std::byte> reply_slot_;
  director_port port_;
  const snapshot* snap_ = nullptr;
  std::uint64_t seen_generation_ = 0;
  verdict_counters counters_;
  std::uint64_t last_inserted_ = 0;
  std::uint32_t backlog_ = 0;
  std::int64_t next_estimate_ = 0;
  // hold_counts / release_counts: the server whose policy update waits (no_held_dest: none).
  static constexpr std::uint32_t no_held_dest = 0xFFFF'FFFFu;
  std::uint32_t held_dest_ = no_held_dest;
  bool held_changed_ = false;
  // FullNAT (director_config::full_nat): ports by connection, connections by local port.
  std::unique_ptr<std::uint32_t[]> fn_port_v4_, fn_port_v6_;
  std::unique_ptr<std::uint32_t[]> fn_reply_;
  std::vector<std::uint32_t> fn_cursor_;
  std::uint32_t fn_share_count_ = 1, fn_share_index_ = 0;
  std::vector<wire::ip_address> fn_locals_;
  std::uint32_t fn_locals_max_ = 0;
  const wire::endpoint* fn_local_ = nullptr;  // the local endpoint of the packet being forwarded
  std::vector<std::uint32_t> live_services_, live_dests_;
  fragment_table frags_;
  bool reassembled_ = false;  // fragment() is deciding a reassembled datagram
  std::unique_ptr<std::byte[]> scratch_;
  std::unique_ptr<std::byte[]> frag_out_;
  bool fast_lane_ = true;
  std::array<std::uint64_t, 4> burst_inserts_{};  // maybe_inserted_this_burst
  std::uint64_t fast_lane_packets_ = 0;
  std::size_t out_used_ = 0;
  std::array<std::span<std::byte>, max_out_frames> out_frames_{};
  std::size_t n_out_frames_ = 0;
  std::array<std::uint32_t, max_burst> release_{};
  std::size_t n_release_ = 0;
  std::array<wire::ip_address, 16> missing_{};
  std::size_t missing_count_ = 0;
};

// ------------------------------------------------------------------ explain

inline explanation director::explain(std::span<const std::byte> frame, std::int64_t now,
                                     std::uint32_t fwmark) const {
  explanation e;
  // The newest configuration, even if this director has not picked it up yet.
  const snapshot& s = *control_.acquire();
  const wire::parse_options popt{s.settings.verify_ipv4_checksum, true};
  auto p = wire::parse(frame, popt);
  if (!p) {
    const verdict v = parse_failure(p.error());
    e.kind = v.kind;
    e.reason = std::string(v.reason());
    return e;
  }
  const wire::flow_key& k = p->key();
  const auto describe = [&](const service_runtime& svc) {
    std::string d = svc.spec.key.is_fwmark()
                        ? "FWM  " + std::to_string(svc.spec.key.fwmark)
                        : std::string(svc.spec.key.protocol == wire::ip_proto::tcp   ? "TCP  "
                                      : svc.spec.key.protocol == wire::ip_proto::udp ? "UDP  "
                                                                                     : "SCTP ") +
                              wire::endpoint{svc.spec.key.address, svc.spec.key.port}.to_string();
    return d + " " + svc.spec.scheduler;
  };
  const auto lookup = [&](const auto& t, const auto& key) -> bool {
    const conn::conn_ref ref = t.find(key, now);
    if (ref == conn::no_conn) return false;
    const auto v = t.view(ref, now);
    const dest_runtime& d = s.dests[v.dest];
    e.decided_by = explanation::via::connection;
    e.conn_state = std::string(conn::state_name(v.key.protocol, v.state));
    e.conn_remaining_ns = v.remaining_ns;
    e.real_server = wire::endpoint{d.spec.endpoint.address, t.dest_port(ref)};
    e.method = d.spec.method;
    if (d.live && s.services[d.service_id]) e.service = describe(*s.services[d.service_id]);
    e.kind = d.live ? verdict_kind::forward : verdict_kind::drop;
    if (!d.live) e.reason = "dest_removed";
    return true;
  };
  // A fragment the director keeps (toward a service, or a NAT server's): held for reassembly.
  if (p->is_fragment() && !s.is_vip(k.dst_addr, k.family) && s.is_nat_source(k.src_addr, k.family)) {
    e.kind = verdict_kind::queued;
    e.reason = "fragment";
    return e;
  }
  if (p->has_ports() && !p->is_icmp_error() && !p->is_fragment()) {
    const bool hit = k.family == wire::ip_family::v4
                         ? lookup(v4_, conn::conn_key_v4::from_flow(k))
                         : lookup(v6_, conn::conn_key_v6::from_flow(k));
    if (hit) return e;
  }
  const service_runtime* svc = p->has_ports() ? s.find_service(fwmark, k) : nullptr;
  if (!svc) {
    e.kind = verdict_kind::pass;
    e.reason = "no_service";
    return e;
  }
  e.service = describe(*svc);
  if (p->is_fragment()) {
    e.kind = verdict_kind::queued;
    e.reason = "fragment";
    return e;
  }
  if (!may_schedule(*p, conn::input_flags(*p))) {
    e.kind = verdict_kind::pass;
    e.reason = "not_schedulable";
    return e;
  }
  const service_state& ss = services_[svc->id];
  const bool current = ss.generation == svc->generation && ss.sched_version == svc->sched_version;
  if (svc->spec.persistent) {
    const auto from_template = [&](const auto& t, const auto& persist, const auto& key) -> bool {
      const auto tk = persist.key_for(k.protocol, key.client_addr, key.virtual_addr, key.virtual_port);
      const auto& tt = t.templates();
      const conn::template_ref ref = tt.find(tk, conn::floor_tick(now));
      if (ref == conn::no_template) return false;
      const dest_runtime& d = s.dests[tt.dest(ref)];
      if (!d.live) return false;
      e.decided_by = explanation::via::persistence_template;
      e.conn_state = tt.assured(ref) ? "ASSURED" : "NONE";
      e.conn_remaining_ns = tt.remaining_ns(ref, now);
      e.real_server = d.spec.endpoint;
      e.method = d.spec.method;
      e.kind = verdict_kind::forward;
      return true;
    };
    const bool hit = k.family == wire::ip_family::v4
                         ? from_template(v4_, svc->persist_v4, conn::conn_key_v4::from_flow(k))
                         : from_template(v6_, svc->persist_v6, conn::conn_key_v6::from_flow(k));
    if (hit) return e;
  }
  // Pick on a copy: the real policy's cursor must not move. A service this director has not
  // synced yet is asked through the published prototype (with this director's counts).
  sched::any_scheduler copy = current && ss.sched ? *ss.sched : svc->prototype;
  std::vector<sched::real_server> list = svc->dests;
  for (auto& r : list) {
    const dest_state& ds = dests_[r.handle];
    if (ds.generation != s.dests[r.handle].generation) continue;
    r.active_conns = ds.active.load(std::memory_order_relaxed);
    r.inactive_conns = ds.inactive.load(std::memory_order_relaxed);
    r.persist_conns = ds.persist.load(std::memory_order_relaxed);
    r.overloaded = ds.overloaded;
  }
  if (!(current && ss.sched))
    for (sched::dest_id p2 = 0; p2 < list.size(); ++p2) copy.counts_changed(list, p2);
  const sched::dest_id pos = copy.pick(list, {k, now, false});
  std::string inputs = "candidates (kernel order):";
  for (const auto& r : list)
    inputs += " " + r.endpoint.to_string() + " w=" + std::to_string(r.weight) + " active=" +
              std::to_string(r.active_conns) + " inactive=" + std::to_string(r.inactive_conns) +
              (r.overloaded ? " OVERLOAD" : "") + ";";
  e.scheduler_inputs = inputs;
  if (pos == sched::no_dest) {
    e.kind = verdict_kind::drop;
    e.reason = "no_destination";
    return e;
  }
  const dest_runtime& d = s.dests[list[pos].handle];
  e.decided_by = explanation::via::scheduler;
  e.real_server = d.spec.endpoint;
  e.method = d.spec.method;
  e.kind = d.spec.method == forward_method::local ? verdict_kind::pass : verdict_kind::forward;
  return e;
}

}  // namespace l4lb::director
