// IPVS's SCTP association states as a load balancer sees them (net/netfilter/ipvs/ip_vs_proto_sctp.c:
// sctp_states, sctp_events, sctp_timeouts, sctp_state_name_table, set_sctp_state): the event an SCTP
// packet carries, the next state for that event and direction, default timeouts and ActiveConn.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <boost/endian/conversion.hpp>

#include "l4lb/conn/tcp_state.hpp"  // direction
#include "l4lb/expected.hpp"

namespace l4lb::conn {

/// The numeric values are IPVS's (include/net/ip_vs.h, enum ip_vs_sctp_states; the sync protocol
/// carries them). The states are those of the real server's side of the association; INIT1,
/// INIT, COOKIE_SENT, COOKIE_REPLIED, COOKIE, REJECTED are IPVS's own refinements of RFC 9260's
/// diagram, mostly so that half-open associations get short timeouts.
enum class sctp_state : std::uint8_t {
  none = 0,
  init1 = 1,              ///< first client INIT seen, waiting for the server's INIT ACK
  init = 2,               ///< a further client INIT (retransmission) seen
  cookie_sent = 3,        ///< server sent INIT ACK, waiting for the client's COOKIE ECHO
  cookie_replied = 4,     ///< client sent COOKIE ECHO, waiting for the server's COOKIE ACK
  cookie_wait = 5,        ///< server sent INIT (server-initiated association)
  cookie = 6,             ///< client answered the server's INIT with INIT ACK
  cookie_echoed = 7,      ///< server sent COOKIE ECHO, waiting for the client's COOKIE ACK
  established = 8,
  shutdown_sent = 9,      ///< server sent SHUTDOWN
  shutdown_received = 10, ///< client sent SHUTDOWN
  shutdown_ack_sent = 11, ///< SHUTDOWN ACK sent in answer to the client's SHUTDOWN
  rejected = 12,          ///< an INIT was answered with ABORT
  closed = 13,
};
inline constexpr std::size_t sctp_state_count = 14;

/// Names as `ipvsadm -Lnc` prints them (sctp_state_name_table); "ERR!" for a value outside the
/// enum, as the kernel's sctp_state_name does.
[[nodiscard]] constexpr std::string_view to_string(sctp_state s) noexcept {
  switch (s) {
    case sctp_state::none: return "NONE";
    case sctp_state::init1: return "INIT1";
    case sctp_state::init: return "INIT";
    case sctp_state::cookie_sent: return "C-SENT";
    case sctp_state::cookie_replied: return "C-REPLIED";
    case sctp_state::cookie_wait: return "C-WAIT";
    case sctp_state::cookie: return "COOKIE";
    case sctp_state::cookie_echoed: return "C-ECHOED";
    case sctp_state::established: return "ESTABLISHED";
    case sctp_state::shutdown_sent: return "S-SENT";
    case sctp_state::shutdown_received: return "S-RECEIVED";
    case sctp_state::shutdown_ack_sent: return "S-ACK-SENT";
    case sctp_state::rejected: return "REJECTED";
    case sctp_state::closed: return "CLOSED";
  }
  return "ERR!";
}

/// Only ESTABLISHED counts in a real server's ActiveConn; every other state is InActConn
/// (set_sctp_state moves the connection between the two counters on exactly this test).
[[nodiscard]] constexpr bool is_active(sctp_state s) noexcept {
  return s == sctp_state::established;
}

/// Chunk type numbers (RFC 9260 section 3.2; 12 and 13 are the ECN chunks ECNE and CWR).
namespace sctp_chunk {
inline constexpr std::uint8_t data = 0;
inline constexpr std::uint8_t init = 1;
inline constexpr std::uint8_t init_ack = 2;
inline constexpr std::uint8_t sack = 3;
inline constexpr std::uint8_t heartbeat = 4;
inline constexpr std::uint8_t heartbeat_ack = 5;
inline constexpr std::uint8_t abort = 6;
inline constexpr std::uint8_t shutdown = 7;
inline constexpr std::uint8_t shutdown_ack = 8;
inline constexpr std::uint8_t error = 9;
inline constexpr std::uint8_t cookie_echo = 10;
inline constexpr std::uint8_t cookie_ack = 11;
inline constexpr std::uint8_t ecne = 12;
inline constexpr std::uint8_t cwr = 13;
inline constexpr std::uint8_t shutdown_complete = 14;
}  // namespace sctp_chunk

/// The table row a packet selects (IP_VS_SCTP_DATA ... IP_VS_SCTP_ABORT, same order).
enum class sctp_event : std::uint8_t {
  data = 0,  ///< DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR, and every chunk type above 14
  init = 1,
  init_ack = 2,
  cookie_echo = 3,
  cookie_ack = 4,
  shutdown = 5,
  shutdown_ack = 6,
  shutdown_complete = 7,
  error = 8,
  abort = 9,
};
inline constexpr std::size_t sctp_event_count = 10;

[[nodiscard]] constexpr std::string_view to_string(sctp_event e) noexcept {
  switch (e) {
    case sctp_event::data: return "DATA";
    case sctp_event::init: return "INIT";
    case sctp_event::init_ack: return "INIT_ACK";
    case sctp_event::cookie_echo: return "COOKIE_ECHO";
    case sctp_event::cookie_ack: return "COOKIE_ACK";
    case sctp_event::shutdown: return "SHUTDOWN";
    case sctp_event::shutdown_ack: return "SHUTDOWN_ACK";
    case sctp_event::shutdown_complete: return "SHUTDOWN_COMPLETE";
    case sctp_event::error: return "ERROR";
    case sctp_event::abort: return "ABORT";
  }
  return "unknown";
}

/// The event of one chunk type (sctp_events[]): types the kernel's table does not list, i.e.
/// everything above SHUTDOWN COMPLETE (AUTH, I-DATA, ASCONF, FORWARD TSN, PAD, ...), count as DATA.
[[nodiscard]] constexpr sctp_event sctp_event_of_chunk(std::uint8_t type) noexcept {
  switch (type) {
    case sctp_chunk::init: return sctp_event::init;
    case sctp_chunk::init_ack: return sctp_event::init_ack;
    case sctp_chunk::abort: return sctp_event::abort;
    case sctp_chunk::shutdown: return sctp_event::shutdown;
    case sctp_chunk::shutdown_ack: return sctp_event::shutdown_ack;
    case sctp_chunk::error: return sctp_event::error;
    case sctp_chunk::cookie_echo: return sctp_event::cookie_echo;
    case sctp_chunk::cookie_ack: return sctp_event::cookie_ack;
    case sctp_chunk::shutdown_complete: return sctp_event::shutdown_complete;
    default: return sctp_event::data;
  }
}

/// Why a packet gives no event. IPVS then leaves the state alone (set_sctp_state returns early).
enum class sctp_packet_error : std::uint8_t {
  truncated_common_header = 1,  ///< fewer than the 12 bytes of the SCTP common header
  truncated_chunk_header = 2,   ///< no complete 4-byte header of a first chunk after it
  not_sctp = 3,                 ///< the packet is not SCTP, or has no L4 header (packet_input.hpp)
};

[[nodiscard]] constexpr std::string_view to_string(sctp_packet_error e) noexcept {
  switch (e) {
    case sctp_packet_error::truncated_common_header: return "truncated_common_header";
    case sctp_packet_error::truncated_chunk_header: return "truncated_chunk_header";
    case sctp_packet_error::not_sctp: return "not_sctp";
  }
  return "unknown";
}

/// Byte layout used below (RFC 9260 sections 3.1, 3.2).
inline constexpr std::size_t sctp_common_header_size = 12;
inline constexpr std::size_t sctp_chunk_header_size = 4;  // type, flags, 16-bit length

/// The event IPVS derives from an SCTP packet. `l4` is the SCTP packet: from the common header to
/// the end of the IP payload (bounded by the IP length, without link-layer padding). Only the
/// bytes in `l4` are read.
///
/// The event is that of the first chunk, except that a COOKIE ECHO or COOKIE ACK followed by an
/// ABORT counts as ABORT (control chunks may be bundled before an ABORT, RFC 9260 section
/// 3.3.7). The second chunk is looked for where the first chunk's length field, rounded up to 4,
/// says; a length field below 4, or one pointing past the bytes present, means there is no second
/// chunk (as in the kernel, which never treats a lying length as an error here). Chunk lengths
/// and the checksum are otherwise not checked: IPVS does not check them either.
[[nodiscard]] inline expected<sctp_event, sctp_packet_error> sctp_event_of(
    std::span<const std::uint8_t> l4) noexcept {
  if (l4.size() < sctp_common_header_size)
    return unexpected{sctp_packet_error::truncated_common_header};
  if (l4.size() < sctp_common_header_size + sctp_chunk_header_size)
    return unexpected{sctp_packet_error::truncated_chunk_header};
  constexpr std::size_t first = sctp_common_header_size;
  std::uint8_t type = l4[first];
  if (type == sctp_chunk::cookie_echo || type == sctp_chunk::cookie_ack) {
    const std::size_t length = boost::endian::load_big_u16(l4.data() + first + 2);
    if (length >= sctp_chunk_header_size) {
      const std::size_t second = first + ((length + 3) & ~std::size_t{3});
      // The whole 4-byte chunk header must be present, as skb_header_pointer requires.
      if (second <= l4.size() && l4.size() - second >= sctp_chunk_header_size &&
          l4[second] == sctp_chunk::abort)
        type = sctp_chunk::abort;
    }
  }
  return sctp_event_of_chunk(type);
}

/// The packet's first chunk is an INIT: is_new_conn's test in ip_vs_core.c, which decides
/// whether conn_reuse_mode applies to a packet that matched an existing connection.
[[nodiscard]] inline bool is_sctp_init(std::span<const std::uint8_t> l4) noexcept {
  return l4.size() >= sctp_common_header_size + sctp_chunk_header_size &&
         l4[sctp_common_header_size] == sctp_chunk::init;
}

/// The packet's first chunk is an ABORT (is_sctp_abort in ip_vs_core.c: with nat_icmp_send, a
/// server's packet of no known connection gets an ICMP port unreachable unless it is this).
/// Only the first chunk counts here, unlike sctp_event_of.
[[nodiscard]] inline bool is_sctp_abort(std::span<const std::uint8_t> l4) noexcept {
  return l4.size() >= sctp_common_header_size + sctp_chunk_header_size &&
         l4[sctp_common_header_size] == sctp_chunk::abort;
}

/// With conn_reuse_mode on, an INIT (is_sctp_init) for an existing connection in this state
/// expires it and is scheduled as a new association (is_new_conn_expected). Unlike TCP, only
/// CLOSED qualifies and conn_reuse_mode's bit 2 plays no part. The caller checks the rest of the
/// kernel's conditions: the connection is not controlled by a template, the packet is not a
/// non-first fragment.
[[nodiscard]] constexpr bool sctp_new_conn_expected(sctp_state s) noexcept {
  return s == sctp_state::closed;
}

namespace detail {
// unsigned char may alias any object representation; no header struct is overlaid.
[[nodiscard]] inline std::span<const std::uint8_t> as_u8(std::span<const std::byte> b) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()};
}
}  // namespace detail

/// The same three, for bytes held as std::byte (the l4lb::wire views' byte type).
[[nodiscard]] inline expected<sctp_event, sctp_packet_error> sctp_event_of(
    std::span<const std::byte> l4) noexcept {
  return sctp_event_of(detail::as_u8(l4));
}
[[nodiscard]] inline bool is_sctp_init(std::span<const std::byte> l4) noexcept {
  return is_sctp_init(detail::as_u8(l4));
}
[[nodiscard]] inline bool is_sctp_abort(std::span<const std::byte> l4) noexcept {
  return is_sctp_abort(detail::as_u8(l4));
}

/// next[direction][event][current state].
struct sctp_transition_table {
  std::array<std::array<std::array<sctp_state, sctp_state_count>, sctp_event_count>, 3> next;

  [[nodiscard]] constexpr sctp_state operator()(direction d, sctp_event e,
                                                sctp_state current) const noexcept {
    return next[static_cast<std::size_t>(d)][static_cast<std::size_t>(e)]
               [static_cast<std::size_t>(current)];
  }
};

namespace detail::sctp_abbrev {
// The kernel's short names, so the table below can be read against sctp_states cell by cell.
inline constexpr sctp_state sNO = sctp_state::none, sI1 = sctp_state::init1,
                            sIN = sctp_state::init, sCS = sctp_state::cookie_sent,
                            sCR = sctp_state::cookie_replied, sCW = sctp_state::cookie_wait,
                            sCO = sctp_state::cookie, sCE = sctp_state::cookie_echoed,
                            sES = sctp_state::established, sSS = sctp_state::shutdown_sent,
                            sSR = sctp_state::shutdown_received,
                            sSA = sctp_state::shutdown_ack_sent, sRJ = sctp_state::rejected,
                            sCL = sctp_state::closed;
}  // namespace detail::sctp_abbrev

/// IPVS's table (ip_vs_proto_sctp.c, sctp_states). Input is the client's side, output the real
/// server's (NAT only); input-only is used for client packets while a connection has never shown
/// an output packet (DR/TUN), and lets the handshake complete on client packets alone.
inline constexpr sctp_transition_table ipvs_sctp_transitions = [] {
  using namespace detail::sctp_abbrev;
  sctp_transition_table t{};
  // columns:  NO   I1   IN   CS   CR   CW   CO   CE   ES   SS   SR   SA   RJ   CL
  t.next[0] = {{{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // data
                {sI1, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},    // init
                {sCW, sCW, sCW, sCS, sCR, sCO, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // init_ack
                {sCR, sIN, sIN, sCR, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // cookie_echo
                {sES, sI1, sIN, sCS, sCR, sCW, sCO, sES, sES, sSS, sSR, sSA, sRJ, sCL},    // cookie_ack
                {sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},    // shutdown
                {sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sCL, sSR, sCL, sRJ, sCL},    // shutdown_ack
                {sCL, sCL, sCL, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sCL, sRJ, sCL},    // shutdown_complete
                {sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCL, sES, sSS, sSR, sSA, sRJ, sCL},    // error
                {sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL}}};  // abort
  t.next[1] = {{{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // data
                {sCW, sCW, sCW, sCW, sCW, sCW, sCW, sCW, sES, sCW, sCW, sCW, sCW, sCW},    // init
                {sCS, sCS, sCS, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // init_ack
                {sCE, sCE, sCE, sCE, sCE, sCE, sCE, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // cookie_echo
                {sES, sES, sES, sES, sES, sES, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},    // cookie_ack
                {sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSR, sSA, sRJ, sCL},    // shutdown
                {sSA, sSA, sSA, sSA, sSA, sCW, sCO, sCE, sES, sSA, sSA, sSA, sRJ, sCL},    // shutdown_ack
                {sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // shutdown_complete
                {sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // error
                {sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL}}};  // abort
  t.next[2] = {{{sES, sI1, sIN, sCS, sCR, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // data
                {sI1, sIN, sIN, sIN, sIN, sIN, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},    // init
                {sCE, sCE, sCE, sCE, sCE, sCE, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // init_ack
                {sES, sES, sES, sES, sES, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // cookie_echo
                {sES, sI1, sIN, sES, sES, sCW, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},    // cookie_ack
                {sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},    // shutdown
                {sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sCL, sCL, sSR, sCL, sRJ, sCL},    // shutdown_ack
                {sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sCL, sCL, sRJ, sCL},    // shutdown_complete
                {sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},    // error
                {sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL}}};  // abort
  return t;
}();

/// The state after an `e` packet travelling in `d` (already `input_only` where the connection
/// has the NOOUTPUT flag; the first output packet clears that flag, as for TCP). A state, event
/// or direction outside its enum (only possible through a cast) leaves the state as it is.
[[nodiscard]] constexpr sctp_state next_sctp_state(sctp_state current, sctp_event e,
                                                   direction d) noexcept {
  if (static_cast<std::size_t>(current) >= sctp_state_count ||
      static_cast<std::size_t>(e) >= sctp_event_count || static_cast<std::size_t>(d) >= 3)
    return current;
  return ipvs_sctp_transitions(d, e, current);
}

/// The state after packet `l4` (see sctp_event_of). A packet without an event leaves the state
/// as it is, as set_sctp_state does.
[[nodiscard]] inline sctp_state next_sctp_state(sctp_state current,
                                                std::span<const std::uint8_t> l4,
                                                direction d) noexcept {
  const auto e = sctp_event_of(l4);
  return e ? next_sctp_state(current, *e, d) : current;
}

/// IPVS's default idle timeouts in seconds, in sctp_state order (sctp_timeouts[]): NONE 2;
/// INIT1 and REJECTED 4 (3 s initial RTO + 1, so a lost or refused INIT is forgotten quickly);
/// ESTABLISHED 900; every other state 61 (RTO.Max of 60 s + 1).
inline constexpr std::array<std::uint32_t, sctp_state_count> ipvs_sctp_timeouts = {
    2,    // NONE
    4,    // INIT1
    61,   // INIT
    61,   // C-SENT
    61,   // C-REPLIED
    61,   // C-WAIT
    61,   // COOKIE
    61,   // C-ECHOED
    900,  // ESTABLISHED
    61,   // S-SENT
    61,   // S-RECEIVED
    61,   // S-ACK-SENT
    4,    // REJECTED
    61,   // CLOSED
};

}  // namespace l4lb::conn
