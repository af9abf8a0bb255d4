// What the connection table reads from a parsed client or server packet: the flags its reuse
// rules and TCP state machine take (lookup_input, apply_input_rules, on_packet), and the SCTP
// event of an SCTP packet, so a director passes the same thing for every protocol.
#pragma once

#include <cstdint>

#include "l4lb/conn/sctp_state.hpp"
#include "l4lb/conn/tcp_state.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::conn {

/// TCP: the header's flags. SCTP: tcp_flag::syn when the first chunk is INIT — the packet that
/// starts an association, which is what ip_vs_core.c is_new_conn tests for both protocols —
/// else 0. Other protocols, non-first fragments (no L4 header) and ICMP errors: 0.
template <class Byte>
[[nodiscard]] std::uint8_t input_flags(const wire::basic_packet_view<Byte>& pkt) noexcept {
  if (!pkt.has_l4_header() || pkt.is_icmp_error()) return 0;
  if (pkt.protocol() == wire::ip_proto::tcp) return pkt.tcp_flags();
  if (pkt.protocol() == wire::ip_proto::sctp &&
      is_sctp_init(std::span<const std::byte>(pkt.l4())))
    return tcp_flag::syn;
  return 0;
}

/// The SCTP event of an SCTP packet for on_packet(ref, sctp_event, ...); no value when the
/// packet is not SCTP or carries no event (then on_packet's flags form keeps the state).
template <class Byte>
[[nodiscard]] expected<sctp_event, sctp_packet_error> packet_sctp_event(
    const wire::basic_packet_view<Byte>& pkt) noexcept {
  if (!pkt.has_l4_header() || pkt.protocol() != wire::ip_proto::sctp)
    return unexpected{sctp_packet_error::not_sctp};
  return sctp_event_of(std::span<const std::byte>(pkt.l4()));
}

}  // namespace l4lb::conn
