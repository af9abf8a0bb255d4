// A plain reference model of the connection table: std::map of live entries, deadlines in
// nanoseconds, expiry done explicitly, the TCP table from ipvs_reference.hpp. It implements the
// documented rules (conn_table.hpp notes) without any of the table's machinery; the randomized
// test drives both and compares every answer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "conn/ipvs_reference.hpp"
#include "l4lb/conn/conn_key.hpp"
#include "l4lb/conn/dest_counters.hpp"
#include "l4lb/conn/tcp_state.hpp"
#include "l4lb/conn/timeouts.hpp"

namespace conn_model {

using namespace l4lb::conn;

template <class Addr>
class model {
 public:
  using key_type = conn_key<Addr>;

  struct entry {
    std::uint32_t dest = 0;
    std::uint8_t protocol = 0;
    tcp_state state = tcp_state::none;
    bool nat = false;
    bool no_output = false;
    std::int64_t deadline = 0;  // ns: gone at now >= deadline
  };
  struct dest {
    Addr address{};
    std::uint16_t port = 0;  // 0: the connection's virtual port
    dest_counts counts{};
  };
  enum class outcome { ok, exists, full };

  model(std::uint32_t capacity, const timeouts& t, std::vector<dest> dests)
      : capacity_(capacity), timeouts_(t), dests_(std::move(dests)) {}

  // conn_table.hpp, "Time": deadline = ceil_to_tick(last packet) + timeout of the state.
  static std::int64_t ceil_to_tick(std::int64_t now) {
    return (now + tick_ns - 1) / tick_ns * tick_ns;
  }
  static bool alive(const entry& e, std::int64_t now) { return now < e.deadline; }
  static bool counted_active(const entry& e) {
    return e.protocol == l4lb::wire::ip_proto::tcp && conn_reference::active(e.state);
  }

  const entry* find(const key_type& k, std::int64_t now) const {
    auto it = entries_.find(k);
    return it != entries_.end() && alive(it->second, now) ? &it->second : nullptr;
  }

  // ip_vs_conn_out_get: a NAT entry whose client endpoint is the packet's destination and whose
  // server endpoint is its source; else a non-NAT entry whose virtual endpoint is the source.
  std::optional<key_type> find_reply(const reply_key<Addr>& rk, std::int64_t now) const {
    for (const auto& [k, e] : entries_) {
      if (!e.nat || k.protocol != rk.protocol || !(k.client_addr == rk.client_addr) ||
          k.client_port != rk.client_port)
        continue;
      const dest& d = dests_[e.dest];
      const std::uint16_t port = d.port != 0 ? d.port : k.virtual_port;
      if (d.address == rk.server_addr && port == rk.server_port)
        return alive(e, now) ? std::optional<key_type>(k) : std::nullopt;
    }
    const key_type k{rk.client_addr, rk.server_addr, rk.client_port, rk.server_port, rk.protocol};
    const entry* e = find(k, now);
    if (e && !e->nat) return k;
    return std::nullopt;
  }

  // Full-table rule (conn_table.hpp, "Full table"): among `window` (the keys in the insert's
  // two-group window, in probe order) take a reached entry, else an embryonic TCP one (NONE,
  // SYN_RECV, SYNACK), else an inactive one — the earliest deadline first, ties to the first in
  // window order — never an active one.
  outcome insert(const key_type& k, std::uint32_t d, bool nat, std::int64_t now,
                 const std::vector<key_type>& window) {
    if (auto it = entries_.find(k); it != entries_.end()) {
      if (alive(it->second, now)) return outcome::exists;
      remove(it);
    }
    if (entries_.size() == capacity_) {
      auto best = entries_.end();
      int best_tier = 3;
      for (const key_type& w : window) {
        auto it = entries_.find(w);
        if (it == entries_.end()) continue;
        const entry& e = it->second;
        int tier;
        if (!alive(e, now))
          tier = 0;
        else if (e.protocol == l4lb::wire::ip_proto::tcp &&
                 (e.state == tcp_state::none || e.state == tcp_state::syn_recv ||
                  e.state == tcp_state::synack))
          tier = 1;
        else if (!counted_active(e))
          tier = 2;
        else
          continue;
        if (tier < best_tier || (tier == best_tier && e.deadline < best->second.deadline)) {
          best = it;
          best_tier = tier;
        }
      }
      if (best == entries_.end()) return outcome::full;
      remove(best);
    }
    entry e;
    e.dest = d;
    e.protocol = k.protocol;
    e.nat = nat;
    e.no_output = !nat;
    e.deadline = ceil_to_tick(now) + std::int64_t{timeouts_.initial} * 1'000'000'000;
    entries_.emplace(k, e);
    ++dests_[d].counts.inactive_conns;  // every new connection starts inactive
    return outcome::ok;
  }

  // set_tcp_state / udp_state_transition as the notes describe them.
  std::pair<std::uint8_t, std::uint8_t> on_packet(const key_type& k, std::uint8_t flags,
                                                  direction dir, std::int64_t now) {
    entry& e = entries_.at(k);
    const auto from = static_cast<std::uint8_t>(e.state);
    std::uint32_t timeout;
    if (e.protocol == l4lb::wire::ip_proto::tcp) {
      std::size_t row = dir == direction::output ? 1 : 0;
      if (e.no_output) {
        if (dir == direction::output)
          e.no_output = false;
        else
          row = 2;
      }
      const tcp_state next = conn_reference::next(row, flags, e.state);
      auto& c = dests_[e.dest].counts;
      if (conn_reference::active(e.state) && !conn_reference::active(next)) {
        --c.active_conns;
        ++c.inactive_conns;
      } else if (!conn_reference::active(e.state) && conn_reference::active(next)) {
        ++c.active_conns;
        --c.inactive_conns;
      }
      e.state = next;
      timeout = timeouts_.tcp_at(next);
    } else {
      timeout = e.protocol == l4lb::wire::ip_proto::udp ? timeouts_.udp : timeouts_.other;
    }
    e.deadline = ceil_to_tick(now) + std::int64_t{timeout} * 1'000'000'000;
    return {from, static_cast<std::uint8_t>(e.state)};
  }

  // ip_vs_in_hook with conn_reuse_mode 1 and all servers available: a SYN on an uncontrolled
  // TCP entry in TIME_WAIT or CLOSE removes it. Returns 0 miss, 1 hit, 2 rescheduled.
  int lookup_syn(const key_type& k, std::int64_t now) {
    auto it = entries_.find(k);
    if (it == entries_.end() || !alive(it->second, now)) return 0;
    const entry& e = it->second;
    if (e.protocol == l4lb::wire::ip_proto::tcp &&
        (e.state == tcp_state::time_wait || e.state == tcp_state::close)) {
      remove(it);
      return 2;
    }
    return 1;
  }

  void erase(const key_type& k) { remove(entries_.find(k)); }

  void expire_all(std::int64_t now) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (!alive(it->second, now)) remove(it);
      it = next;
    }
  }

  std::size_t size() const { return entries_.size(); }
  const dest_counts& counts(std::uint32_t d) const { return dests_[d].counts; }
  const std::map<key_type, entry>& entries() const { return entries_; }
  const dest& dest_info(std::uint32_t d) const { return dests_[d]; }

 private:
  void remove(typename std::map<key_type, entry>::iterator it) {
    auto& c = dests_[it->second.dest].counts;
    if (counted_active(it->second))
      --c.active_conns;
    else
      --c.inactive_conns;
    entries_.erase(it);
  }

  std::uint32_t capacity_;
  timeouts timeouts_;
  std::vector<dest> dests_;
  std::map<key_type, entry> entries_;
};

}  // namespace conn_model
