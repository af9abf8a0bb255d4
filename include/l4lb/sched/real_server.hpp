// What every scheduling policy reads about a destination: the real server's endpoint, weight,
// connection counts and flags, kept in IPVS's list order (the most recently added first,
// ipvs-notes 1.1). The service owns the list; policies get it as a span.
#pragma once

#include <cstdint>
#include <limits>
#include <span>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::sched {

/// Position of a real server in the service's list (its index in the span handed to policies).
/// Positions shift when a server is added at the head; `real_server::handle` is the stable name.
using dest_id = std::uint32_t;
inline constexpr dest_id no_dest = std::numeric_limits<dest_id>::max();

struct real_server {
  wire::endpoint endpoint;
  /// Stable identity assigned by the service (what a connection entry stores); not a position.
  std::uint32_t handle = 0;
  /// 0 = quiesced: never picked for new connections; existing ones continue.
  std::uint32_t weight = 1;
  /// The latest non-zero weight (IPVS's last_weight, used by mh, ring and wmh so a quiesced
  /// server keeps its slots): set on add even when 0, and on edit only when the new weight is
  /// non-zero. `same_as_weight` (the default) means "follow weight": right for a server as added;
  /// a control plane that quiesces with weight 0 sets the old weight here (set_weight does).
  static constexpr std::uint32_t same_as_weight = 0xFFFFFFFFu;
  std::uint32_t last_weight = same_as_weight;
  std::uint32_t active_conns = 0;
  std::uint32_t inactive_conns = 0;
  std::uint32_t persist_conns = 0;  // templates; not part of the threshold total (ipvs-notes 2)
  std::uint32_t upper_threshold = 0;  // 0 = unset
  std::uint32_t lower_threshold = 0;
  /// Set/cleared by the threshold rule (ipvs-notes 2); every policy skips overloaded servers.
  bool overloaded = false;
  /// Linked in the service (IPVS's AVAILABLE flag); cleared when the server is removed.
  bool available = true;

  /// May take a new connection under every shipped IPVS policy's basic test: not quiesced
  /// (weight 0) and not overloaded. Policies add their own conditions (ovf: active <= weight).
  [[nodiscard]] constexpr bool accepts_new_connections() const noexcept {
    return weight != 0 && !overloaded;
  }

  /// The weight hash tables are built from (IPVS's last_weight, resolved).
  [[nodiscard]] constexpr std::uint32_t table_weight() const noexcept {
    return last_weight == same_as_weight ? weight : last_weight;
  }
  /// An edit of the weight as IPVS applies it (__ip_vs_update_dest): last_weight follows only
  /// non-zero weights, so quiescing keeps the server's hash-table share.
  constexpr void set_weight(std::uint32_t w) noexcept {
    if (w == 0 && last_weight == same_as_weight) last_weight = weight;
    if (w != 0) last_weight = w;
    weight = w;
  }

  /// IPVS's load metric for lc/wlc/lblc/lblcr: 256 * active + inactive (ip_vs_dest_conn_overhead).
  [[nodiscard]] constexpr std::uint64_t overhead() const noexcept {
    return (std::uint64_t{active_conns} << 8) + inactive_conns;
  }

  /// Re-evaluates OVERLOAD after a connection was bound (ip_vs_bind_dest).
  constexpr void after_bind() noexcept {
    if (upper_threshold != 0 && std::uint64_t{active_conns} + inactive_conns >= upper_threshold)
      overloaded = true;
  }
  /// Re-evaluates OVERLOAD after a connection was unbound (ip_vs_unbind_dest).
  constexpr void after_unbind() noexcept {
    const std::uint64_t total = std::uint64_t{active_conns} + inactive_conns;
    if (lower_threshold != 0) {
      if (total < lower_threshold) overloaded = false;
    } else if (upper_threshold != 0) {
      if (total * 4 < std::uint64_t{upper_threshold} * 3) overloaded = false;
    } else {
      overloaded = false;
    }
  }
};

/// What a policy may look at for one new connection. `now_ns` is the caller's clock (lblc/lblcr
/// expiry); the library never reads a clock itself.
struct pick_context {
  const wire::flow_key& flow;
  std::int64_t now_ns = 0;
  /// The packet is an ICMP error quoting this flow: sh/mh hash the quoted flow's *destination*
  /// port when their port flag is set (IPVS's "inverse" header).
  bool inverse = false;
};

/// What changed in the list before a `rebuild` (IPVS's scheduler hooks, ipvs-notes 1.2).
struct dest_change {
  enum class kind : std::uint8_t {
    init,     // the policy was bound to the service (ipvsadm -A, or -E with another scheduler)
    added,    // a server was inserted at the head: it is dests[0] now
    removed,  // the server at position `id` (before removal) is gone from dests
    edited,   // dests[id]'s weight, flags or thresholds changed
  };
  kind what = kind::init;
  dest_id id = 0;
};

}  // namespace l4lb::sched
