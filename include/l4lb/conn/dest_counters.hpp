// Per-real-server state the connection table keeps for itself, in a fixed array indexed by
// real_server::handle: ActiveConn / InActConn / PersistConn counts exactly as IPVS keeps them
// (ip_vs_bind_dest, set_tcp_state, ip_vs_unbind_dest), the server's endpoint (for the NAT reply
// index) and whether it is available or quiesced (for connection reuse and templates).
//
// How counts reach the scheduler: the table is the authority for its own connections (one table
// per core; DESIGN.md sums per-core counts where a policy needs them). Every change is also
// reported through an optional count_observer — a plain function pointer, so the table does not
// depend on the scheduler code. A director copies `counts` into its sched::real_server, then
// calls real_server::after_bind() on conn_bound/template_bound and after_unbind() on
// conn_unbound/template_unbound (OVERLOAD, ipvs-notes section 2), and the policy's
// counts_changed(). Moves between active and inactive do not re-evaluate OVERLOAD in IPVS.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "l4lb/conn/errc.hpp"

namespace l4lb::conn {

struct dest_counts {
  std::uint32_t active_conns = 0;    // TCP in ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK
  std::uint32_t inactive_conns = 0;  // every other connection (all UDP)
  std::uint32_t persist_conns = 0;   // persistence templates
  friend bool operator==(const dest_counts&, const dest_counts&) = default;
};

enum class count_change : std::uint8_t {
  conn_bound,        // a connection was created: inactive + 1 (IPVS counts every new conn
                     // inactive), or active + 1 when it starts in its first packet's state
  conn_unbound,      // a connection was removed: active or inactive - 1
  became_active,     // state change: inactive - 1, active + 1
  became_inactive,   // state change: active - 1, inactive + 1
  template_bound,    // persist + 1
  template_unbound,  // persist - 1
};

[[nodiscard]] constexpr std::string_view to_string(count_change c) noexcept {
  switch (c) {
    case count_change::conn_bound: return "conn_bound";
    case count_change::conn_unbound: return "conn_unbound";
    case count_change::became_active: return "became_active";
    case count_change::became_inactive: return "became_inactive";
    case count_change::template_bound: return "template_bound";
    case count_change::template_unbound: return "template_unbound";
  }
  return "unknown";
}

struct count_event {
  std::uint32_t dest;   // real_server::handle
  count_change change;
  dest_counts counts;   // after the change
  /// conn_bound / conn_unbound: the connection's ref (a director keeps per-connection state
  /// beside the table, e.g. FullNAT's local port, and frees it here); otherwise 0xFFFFFFFF.
  std::uint32_t conn = 0xFFFF'FFFFu;
};

/// Called on the data path: must not throw, should be cheap.
struct count_observer {
  void (*notify)(void* context, const count_event& event) noexcept = nullptr;
  void* context = nullptr;
};

/// The table's view of one real server.
template <class Addr>
struct dest_record {
  dest_counts counts;
  Addr address{};
  /// The real server's port as a NAT connection sees it; 0 = the connection's virtual port
  /// (IPVS: dport = dest->port ? dest->port : vport, ip_vs_schedule / ip_vs_sched_persist).
  std::uint16_t port = 0;
  bool has_endpoint = false;
  bool available = true;  // false once removed from its service (IPVS's AVAILABLE flag)
  bool quiesced = false;  // weight 0: no new connections, existing ones continue
};

template <class Addr>
class dest_registry {
 public:
  static constexpr std::uint32_t max_handles = 1u << 24;  // handles are stored in 24 bits

  dest_registry() = default;
  explicit dest_registry(std::uint32_t size)
      : records_(size ? new dest_record<Addr>[size]() : nullptr), size_(size) {}

  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] bool valid(std::uint32_t dest) const noexcept { return dest < size_; }
  [[nodiscard]] const dest_record<Addr>& operator[](std::uint32_t dest) const noexcept {
    return records_[dest];
  }
  [[nodiscard]] dest_record<Addr>& operator[](std::uint32_t dest) noexcept {
    return records_[dest];
  }
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return std::size_t{size_} * sizeof(dest_record<Addr>);
  }

  void set_observer(count_observer o) noexcept { observer_ = o; }

  void conn_bound(std::uint32_t d, bool active, std::uint32_t conn) noexcept {
    auto& c = records_[d].counts;
    if (active)
      ++c.active_conns;
    else
      ++c.inactive_conns;
    notify(d, count_change::conn_bound, conn);
  }
  void conn_unbound(std::uint32_t d, bool active, std::uint32_t conn = 0xFFFF'FFFFu) noexcept {
    auto& c = records_[d].counts;
    if (active)
      --c.active_conns;
    else
      --c.inactive_conns;
    notify(d, count_change::conn_unbound, conn);
  }
  void became_active(std::uint32_t d) noexcept {
    auto& c = records_[d].counts;
    --c.inactive_conns;
    ++c.active_conns;
    notify(d, count_change::became_active);
  }
  void became_inactive(std::uint32_t d) noexcept {
    auto& c = records_[d].counts;
    --c.active_conns;
    ++c.inactive_conns;
    notify(d, count_change::became_inactive);
  }
  void template_bound(std::uint32_t d) noexcept {
    ++records_[d].counts.persist_conns;
    notify(d, count_change::template_bound);
  }
  void template_unbound(std::uint32_t d) noexcept {
    --records_[d].counts.persist_conns;
    notify(d, count_change::template_unbound);
  }

 private:
  void notify(std::uint32_t d, count_change c, std::uint32_t conn = 0xFFFF'FFFFu) const noexcept {
    if (observer_.notify) observer_.notify(observer_.context, {d, c, records_[d].counts, conn});
  }

  std::unique_ptr<dest_record<Addr>[]> records_;
  std::uint32_t size_ = 0;
  count_observer observer_{};
};

}  // namespace l4lb::conn
