// Idle timeouts per protocol state, with IPVS's defaults (ip_vs_proto_tcp.c tcp_timeouts,
// ip_vs_proto_udp.c udp_timeouts, ip_vs_proto_sctp.c sctp_timeouts, ip_vs_conn.c) and ipvsadm's
// `--set tcp tcpfin udp` semantics.
// Connection expiry is kept in ticks of 1/16 s; this header holds the conversions too.
#pragma once

#include <array>
#include <cstdint>

#include "l4lb/conn/errc.hpp"
#include "l4lb/conn/sctp_state.hpp"
#include "l4lb/conn/tcp_state.hpp"

namespace l4lb::conn {

/// Expiry resolution. Deadlines are 32-bit tick counts compared with wrap-around, so every
/// deadline must lie within 2^31 ticks (about 4 years) of `now`.
inline constexpr std::int64_t tick_ns = 62'500'000;
inline constexpr std::uint32_t ticks_per_second = 16;

/// Ticks that have fully elapsed at `now` (now >= 0, nanoseconds).
[[nodiscard]] constexpr std::uint32_t floor_tick(std::int64_t now) noexcept {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(now) /
                                    static_cast<std::uint64_t>(tick_ns));
}
/// `now` rounded up to a tick: deadlines count from here, so nothing expires early.
[[nodiscard]] constexpr std::uint32_t ceil_tick(std::int64_t now) noexcept {
  return static_cast<std::uint32_t>(
      (static_cast<std::uint64_t>(now) + static_cast<std::uint64_t>(tick_ns) - 1) /
      static_cast<std::uint64_t>(tick_ns));
}
/// True when `deadline` has been reached at tick `now_tick` (wrap-around safe).
[[nodiscard]] constexpr bool tick_reached(std::uint32_t deadline, std::uint32_t now_tick) noexcept {
  return static_cast<std::int32_t>(now_tick - deadline) >= 0;
}

/// Idle timeouts in seconds. A connection is gone once `now` reaches
/// ceil_to_tick(time of its last packet) + timeout of its current state.
struct timeouts {
  /// Refused above this (IPVS refuses > INT_MAX / HZ; ours keeps deadlines within 2^31 ticks).
  static constexpr std::uint32_t max_seconds = 1u << 26;

  /// Per TCP state, in tcp_state order: NONE 2, ESTABLISHED 900, SYN_SENT 120, SYN_RECV 60,
  /// FIN_WAIT 120, TIME_WAIT 120, CLOSE 10, CLOSE_WAIT 60, LAST_ACK 30, LISTEN 120, SYNACK 120.
  std::array<std::uint32_t, tcp_state_count> tcp{2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120};
  /// UDP's single state (named "UDP"), refreshed by every datagram.
  std::uint32_t udp = 300;
  /// Per SCTP state, in sctp_state order (ipvs_sctp_timeouts: NONE 2, INIT1 and REJECTED 4,
  /// ESTABLISHED 900, the others 61). ipvsadm --set does not reach them (as in IPVS).
  std::array<std::uint32_t, sctp_state_count> sctp = ipvs_sctp_timeouts;
  /// Protocols without a state machine here (IPVS only tracks TCP, UDP, SCTP): l4lb's choice,
  /// the UDP value.
  std::uint32_t other = 300;
  /// A new connection before its first transition (ip_vs_conn_new sets 3*HZ).
  std::uint32_t initial = 3;
  /// A persistence template whose timer fires while it still controls connections is kept and
  /// re-armed with this timeout, which it keeps from then on (ip_vs_conn_expire, 60*HZ).
  std::uint32_t template_busy = 60;

  [[nodiscard]] constexpr std::uint32_t& tcp_at(tcp_state s) noexcept {
    return tcp[static_cast<std::size_t>(s)];
  }
  [[nodiscard]] constexpr std::uint32_t tcp_at(tcp_state s) const noexcept {
    return tcp[static_cast<std::size_t>(s)];
  }
  [[nodiscard]] constexpr std::uint32_t& sctp_at(sctp_state s) noexcept {
    return sctp[static_cast<std::size_t>(s)];
  }
  [[nodiscard]] constexpr std::uint32_t sctp_at(sctp_state s) const noexcept {
    return sctp[static_cast<std::size_t>(s)];
  }

  /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP; 0 keeps the current value
  /// (ip_vs_set_timeout).
  [[nodiscard]] constexpr errc set_ipvsadm(std::uint32_t tcp_s, std::uint32_t tcpfin_s,
                                           std::uint32_t udp_s) noexcept {
    if (tcp_s > max_seconds || tcpfin_s > max_seconds || udp_s > max_seconds)
      return errc::bad_timeout;
    if (tcp_s != 0) tcp_at(tcp_state::established) = tcp_s;
    if (tcpfin_s != 0) tcp_at(tcp_state::fin_wait) = tcpfin_s;
    if (udp_s != 0) udp = udp_s;
    return errc::ok;
  }

  /// What `ipvsadm --timeout` prints: `Timeout (tcp tcpfin udp): 900 120 300`.
  struct ipvsadm_triple {
    std::uint32_t tcp, tcpfin, udp;
  };
  [[nodiscard]] constexpr ipvsadm_triple ipvsadm() const noexcept {
    return {tcp_at(tcp_state::established), tcp_at(tcp_state::fin_wait), udp};
  }

  [[nodiscard]] constexpr bool valid() const noexcept {
    for (auto t : tcp)
      if (t > max_seconds) return false;
    for (auto t : sctp)
      if (t > max_seconds) return false;
    return udp <= max_seconds && other <= max_seconds && initial <= max_seconds &&
           template_busy != 0 && template_busy <= max_seconds;
  }
};

}  // namespace l4lb::conn
