// IPVS's TCP connection states and transition tables (net/netfilter/ipvs/ip_vs_proto_tcp.c:
// tcp_states, tcp_states_dos, tcp_state_idx, set_tcp_state): the next state of a connection from
// its current state, the direction of the packet and the packet's TCP flags.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "l4lb/wire/tcp.hpp"

namespace l4lb::conn {

/// The numeric values are IPVS's (the sync protocol carries them).
enum class tcp_state : std::uint8_t {
  none = 0,
  established = 1,
  syn_sent = 2,
  syn_recv = 3,
  fin_wait = 4,
  time_wait = 5,
  close = 6,
  close_wait = 7,
  last_ack = 8,
  listen = 9,
  synack = 10,
};
inline constexpr std::size_t tcp_state_count = 11;

/// Names as `ipvsadm -Lnc` prints them.
[[nodiscard]] constexpr std::string_view to_string(tcp_state s) noexcept {
  switch (s) {
    case tcp_state::none: return "NONE";
    case tcp_state::established: return "ESTABLISHED";
    case tcp_state::syn_sent: return "SYN_SENT";
    case tcp_state::syn_recv: return "SYN_RECV";
    case tcp_state::fin_wait: return "FIN_WAIT";
    case tcp_state::time_wait: return "TIME_WAIT";
    case tcp_state::close: return "CLOSE";
    case tcp_state::close_wait: return "CLOSE_WAIT";
    case tcp_state::last_ack: return "LAST_ACK";
    case tcp_state::listen: return "LISTEN";
    case tcp_state::synack: return "SYNACK";
  }
  return "BUG!";
}

/// States counted in a real server's ActiveConn (tcp_state_active_table); all others count in
/// InActConn. lc/wlc/sed/nq weigh servers by these counts, so this set is part of the schedule.
[[nodiscard]] constexpr bool is_active(tcp_state s) noexcept {
  return s == tcp_state::established || s == tcp_state::syn_sent || s == tcp_state::syn_recv ||
         s == tcp_state::synack;
}

/// TCP header flag bits (byte 13 of the header): the wire layer's constants under the name the
/// connection-tracking calls use.
namespace tcp_flag = wire::tcp_flags;

/// Which way a packet travels relative to the connection. Callers pass `input` (client towards
/// the virtual service) or `output` (real server towards the client, seen only in NAT).
/// `input_only` is the row IPVS uses for input packets of a connection that has never shown an
/// output packet (the NOOUTPUT flag of DR/TUN connections); the table picks it by itself.
enum class direction : std::uint8_t { input = 0, output = 1, input_only = 2 };

[[nodiscard]] constexpr std::string_view to_string(direction d) noexcept {
  switch (d) {
    case direction::input: return "input";
    case direction::output: return "output";
    case direction::input_only: return "input_only";
  }
  return "unknown";
}

/// The table column a segment selects: RST before SYN before FIN before ACK (tcp_state_idx).
enum class tcp_event : std::uint8_t { syn = 0, fin = 1, ack = 2, rst = 3, none = 4 };

namespace detail {
/// FIN, SYN and RST are bits 0..2 of the flags and ACK bit 4: folded into four bits, they index
/// one table read (every packet of a connection asks; the chain of tests showed in the profile).
[[nodiscard]] constexpr unsigned fold_tcp_flags(std::uint8_t flags) noexcept {
  static_assert(tcp_flag::fin == 0x01 && tcp_flag::syn == 0x02 && tcp_flag::rst == 0x04 &&
                tcp_flag::ack == 0x10);
  return (flags & 0x07u) | ((flags & 0x10u) >> 1);
}
inline constexpr std::array<tcp_event, 16> event_by_folded_flags = [] {
  std::array<tcp_event, 16> t{};
  for (unsigned i = 0; i < 16; ++i)
    t[i] = (i & 4) ? tcp_event::rst
           : (i & 2) ? tcp_event::syn
           : (i & 1) ? tcp_event::fin
           : (i & 8) ? tcp_event::ack
                     : tcp_event::none;
  return t;
}();
}  // namespace detail

[[nodiscard]] constexpr tcp_event event_of(std::uint8_t flags) noexcept {
  return detail::event_by_folded_flags[detail::fold_tcp_flags(flags)];
}

/// next[direction][event][current state].
struct tcp_transition_table {
  std::array<std::array<std::array<tcp_state, tcp_state_count>, 4>, 3> next;

  [[nodiscard]] constexpr tcp_state operator()(direction d, tcp_event e,
                                               tcp_state current) const noexcept {
    return next[static_cast<std::size_t>(d)][static_cast<std::size_t>(e)]
               [static_cast<std::size_t>(current)];
  }
};

namespace detail {
// Short names so the tables below read like the kernel's (columns in state order).
inline constexpr tcp_state sNO = tcp_state::none, sES = tcp_state::established,
                           sSS = tcp_state::syn_sent, sSR = tcp_state::syn_recv,
                           sFW = tcp_state::fin_wait, sTW = tcp_state::time_wait,
                           sCL = tcp_state::close, sCW = tcp_state::close_wait,
                           sLA = tcp_state::last_ack, sLI = tcp_state::listen,
                           sSA = tcp_state::synack;
}  // namespace detail

/// IPVS's normal table (ip_vs_proto_tcp.c, tcp_states).
inline constexpr tcp_transition_table ipvs_tcp_transitions = [] {
  using namespace detail;
  tcp_transition_table t{};
  // columns:  NO   ES   SS   SR   FW   TW   CL   CW   LA   LI   SA
  t.next[0] = {{{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},    // input syn
                {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},    // input fin
                {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},    // input ack
                {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR}}};  // input rst
  t.next[1] = {{{sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},    // output syn
                {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},    // output fin
                {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},    // output ack
                {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL}}};  // output rst
  t.next[2] = {{{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},    // input-only syn
                {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},    // input-only fin
                {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},    // input-only ack
                {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL}}};  // input-only rst
  return t;
}();

/// IPVS's defence table, in force while secure_tcp is on (tcp_states_dos): a half-open connection
/// is held in SYNACK/SYN_RECV until the client really acknowledges, so a SYN flood cannot move
/// entries to the long ESTABLISHED timeout.
inline constexpr tcp_transition_table ipvs_tcp_transitions_secure = [] {
  using namespace detail;
  tcp_transition_table t{};
  // columns:  NO   ES   SS   SR   FW   TW   CL   CW   LA   LI   SA
  t.next[0] = {{{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA},
                {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA},
                {sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA},
                {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL}}};
  t.next[1] = {{{sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA},
                {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
                {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
                {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL}}};
  t.next[2] = {{{sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA},
                {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
                {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
                {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL}}};
  return t;
}();

namespace detail {
/// next_tcp_state as one read, indexed by shifts alone (multiplying by 11 states and 3 rows
/// showed in the profile): secure_tcp << 10 | direction << 8 | folded flags << 4 | current
/// state, the event's column already chosen and a segment with no event mapped to CLOSE.
/// 2 KiB, of which a connection's packets touch a few lines.
[[nodiscard]] constexpr std::size_t tcp_next_index(bool secure, direction d, unsigned folded,
                                                   tcp_state current) noexcept {
  return std::size_t{secure} << 10 | static_cast<std::size_t>(d) << 8 | std::size_t{folded} << 4 |
         static_cast<std::size_t>(current);
}
inline constexpr auto tcp_next_by_flags = [] {
  static_assert(tcp_state_count <= 16);
  std::array<tcp_state, 2048> t{};
  for (const bool secure : {false, true})
    for (std::size_t d = 0; d < 3; ++d)
      for (unsigned f = 0; f < 16; ++f)
        for (std::size_t c = 0; c < tcp_state_count; ++c) {
          const tcp_event e = event_by_folded_flags[f];
          const auto dir = static_cast<direction>(d);
          const auto cur = static_cast<tcp_state>(c);
          t[tcp_next_index(secure, dir, f, cur)] =
              e == tcp_event::none
                  ? tcp_state::close
                  : (secure ? ipvs_tcp_transitions_secure : ipvs_tcp_transitions)(dir, e, cur);
        }
  return t;
}();
}  // namespace detail

/// The state after a segment with `flags` travelling in `d` (already `input_only` where the
/// connection has the NOOUTPUT flag). A segment with none of RST/SYN/FIN/ACK moves the
/// connection to CLOSE, as set_tcp_state does when tcp_state_idx finds no event.
[[nodiscard]] constexpr tcp_state next_tcp_state(tcp_state current, direction d,
                                                 std::uint8_t flags,
                                                 bool secure_tcp = false) noexcept {
  return detail::tcp_next_by_flags[detail::tcp_next_index(secure_tcp, d, detail::fold_tcp_flags(flags), current)];
}

}  // namespace l4lb::conn
