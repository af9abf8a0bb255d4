// What the director decided for one frame: forward it (rewritten, to a real server or back to a
// client), reply with a frame the director built, pass it to the host stack, or drop it with a
// named reason. Every verdict is counted per reason (verdict_counters).
//
// Design notes
// - A drop names its cause in one place: the parser's reason (wire::drop_reason), the
//   rewriter's (forward::forward_error) or the director's own (director_drop). A reader switches
//   on `kind` and `cause` and gets a stable name from to_string().
// - Spans point into the caller's buffer (forward) or into the director's reply arena (reply);
//   both stay valid until the next process call on that director.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include "l4lb/director/model.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/ethernet.hpp"

namespace l4lb::director {

/// forward / reply / pass / drop, and `queued`: an IP fragment the director keeps until its
/// datagram is complete (then the completing frame's verdict carries every fragment).
enum class verdict_kind : std::uint8_t { forward, reply, pass, drop, queued };

[[nodiscard]] constexpr std::string_view to_string(verdict_kind k) noexcept {
  switch (k) {
    case verdict_kind::forward: return "forward";
    case verdict_kind::reply: return "reply";
    case verdict_kind::pass: return "pass";
    case verdict_kind::drop: return "drop";
    case verdict_kind::queued: return "queued";
  }
  return "unknown";
}

/// Why a frame is not the director's (hand it to the host stack).
enum class pass_reason : std::uint8_t {
  none = 0,
  not_ip,            ///< ARP, LLDP, ... (wire::drop_reason::not_ip)
  no_service,        ///< no virtual service and no connection matches
  not_schedulable,   ///< a service matched but the packet may not start a connection (TCP
                     ///< without SYN, SCTP without INIT, unless sloppy; ip_vs_in_hook)
  local_dest,        ///< the connection's server is the director itself (-g to a local address)
  icmp_not_ours,     ///< an ICMP message that quotes no connection and is not to a VIP
};

[[nodiscard]] constexpr std::string_view to_string(pass_reason r) noexcept {
  switch (r) {
    case pass_reason::none: return "none";
    case pass_reason::not_ip: return "not_ip";
    case pass_reason::no_service: return "no_service";
    case pass_reason::not_schedulable: return "not_schedulable";
    case pass_reason::local_dest: return "local_dest";
    case pass_reason::icmp_not_ours: return "icmp_not_ours";
  }
  return "unknown";
}
inline constexpr std::size_t pass_reason_count = 6;

/// The director's own reasons to drop (beyond the parser's and the rewriters').
enum class director_drop : std::uint8_t {
  none = 0,
  martian_source,       ///< source multicast, broadcast, loopback, unspecified or link-scope
                        ///< invalid (ip_route_input's martian rules)
  land,                 ///< source is a VIP or one of the director's addresses
  ipv6_udp_zero_checksum,  ///< RFC 8200 8.1: IPv6 UDP must carry a checksum
  fragment_duplicate,   ///< an exact duplicate of a fragment held (ip_frag_queue)
  fragment_overlap,     ///< overlapping fragments: the whole datagram dropped
  fragment_invalid,     ///< past 65 535 bytes, a non-last fragment not a multiple of 8, an
                        ///< empty one, an IPv6 first fragment without its L4 header (RFC 7112)
  fragment_too_large,   ///< a fragment bigger than the reassembly slots
  fragment_too_many,    ///< more fragments than one datagram may have (64)
  fragment_no_room,     ///< the reassembly pool (or this burst's output room) is full
  dest_removed,         ///< the connection's real server was removed (expire_nodest_conn 0)
  no_neighbour,         ///< the next hop's MAC is not in the neighbour table
  table_full,           ///< no room for the connection (conn_table's full-table policy)
  template_table_full,  ///< no room for the persistence template
  icmp_unknown_conn,    ///< an ICMP error to a VIP quoting no connection (ip_vs_in_icmp)
  no_destination,       ///< no real server available and no answer could be sent
  icmp_about_icmp,      ///< no answer to an ICMP error / non-first fragment (RFC 1122 3.2.2)
  method_unsupported,   ///< a forwarding method this director cannot run here (FullNAT)
  family_unsupported,   ///< a tunnel toward a family the director has no address of
};

[[nodiscard]] constexpr std::string_view to_string(director_drop r) noexcept {
  switch (r) {
    case director_drop::none: return "none";
    case director_drop::martian_source: return "martian_source";
    case director_drop::land: return "land";
    case director_drop::ipv6_udp_zero_checksum: return "ipv6_udp_zero_checksum";
    case director_drop::fragment_duplicate: return "fragment_duplicate";
    case director_drop::fragment_overlap: return "fragment_overlap";
    case director_drop::fragment_invalid: return "fragment_invalid";
    case director_drop::fragment_too_large: return "fragment_too_large";
    case director_drop::fragment_too_many: return "fragment_too_many";
    case director_drop::fragment_no_room: return "fragment_no_room";
    case director_drop::dest_removed: return "dest_removed";
    case director_drop::no_neighbour: return "no_neighbour";
    case director_drop::table_full: return "table_full";
    case director_drop::template_table_full: return "template_table_full";
    case director_drop::icmp_unknown_conn: return "icmp_unknown_conn";
    case director_drop::no_destination: return "no_destination";
    case director_drop::icmp_about_icmp: return "icmp_about_icmp";
    case director_drop::method_unsupported: return "method_unsupported";
    case director_drop::family_unsupported: return "family_unsupported";
  }
  return "unknown";
}
inline constexpr std::size_t director_drop_count = 20;

/// Which layer named a drop.
enum class drop_layer : std::uint8_t { none, parse, forward, director };

/// Why a generated reply was sent.
enum class reply_reason : std::uint8_t {
  none = 0,
  port_unreachable,  ///< no real server available (ip_vs_leave: ICMP port unreachable)
  too_big,           ///< over the egress MTU with DF (ICMP frag-needed / Packet Too Big)
};

[[nodiscard]] constexpr std::string_view to_string(reply_reason r) noexcept {
  switch (r) {
    case reply_reason::none: return "none";
    case reply_reason::port_unreachable: return "port_unreachable";
    case reply_reason::too_big: return "too_big";
  }
  return "unknown";
}

struct verdict {
  verdict_kind kind = verdict_kind::pass;
  /// forward / reply: the bytes to send.
  std::span<std::byte> frame;
  /// A fragmented datagram: every frame to send (or to pass), in order; `frame` is the first.
  /// Empty for a single frame.
  std::span<const std::span<std::byte>> frames;
  /// forward: how, to which real server (handle), and whether toward the client (NAT reply).
  forward_method method = forward_method::route;
  std::uint32_t dest = 0;
  bool to_client = false;
  /// forward: the Ethernet destination written (the next hop).
  wire::mac_address next_hop{};
  pass_reason pass = pass_reason::none;
  reply_reason reply = reply_reason::none;
  drop_layer layer = drop_layer::none;
  wire::drop_reason parse_error = wire::drop_reason::none;
  forward::forward_error forward_error = forward::forward_error::none;
  director_drop director_error = director_drop::none;

  /// The drop's name ("bad_ipv4_header_checksum", "no_neighbour", ...), or the pass / reply
  /// reason's; "" for a forward.
  [[nodiscard]] std::string_view reason() const noexcept {
    switch (kind) {
      case verdict_kind::forward: return {};
      case verdict_kind::reply: return to_string(reply);
      case verdict_kind::pass: return to_string(pass);
      case verdict_kind::queued: return "fragment";
      case verdict_kind::drop:
        switch (layer) {
          case drop_layer::parse: return wire::to_string(parse_error);
          case drop_layer::forward: return forward::to_string(forward_error);
          case drop_layer::director: return to_string(director_error);
          case drop_layer::none: return "none";
        }
    }
    return "unknown";
  }
};

/// How many frames got each verdict, by reason (one block per director; sum to read all).
struct verdict_counters {
  std::uint64_t forwarded = 0;
  std::array<std::uint64_t, 5> forwarded_by_method{};  ///< masq, local, tunnel, route, full_nat
  std::uint64_t forwarded_to_client = 0;               ///< NAT replies
  std::uint64_t replies = 0;
  std::array<std::uint64_t, 3> replies_by_reason{};
  std::uint64_t passed = 0;
  std::array<std::uint64_t, pass_reason_count> passed_by_reason{};
  std::uint64_t dropped = 0;
  std::uint64_t queued = 0;  ///< fragments kept for reassembly (sent with their datagram)
  std::array<std::uint64_t, 64> dropped_parse{};    ///< by wire::drop_reason
  std::array<std::uint64_t, 64> dropped_forward{};  ///< by forward::forward_error
  std::array<std::uint64_t, director_drop_count> dropped_director{};

  [[nodiscard]] static constexpr std::size_t method_index(forward_method m) noexcept {
    return m == forward_method::full_nat ? 4 : static_cast<std::size_t>(m);
  }
  /// count() of a forward verdict: the director's lanes know the kind, and the call to the
  /// whole switch showed in their profile (16 of DR's 641 instructions per packet).
  void count_forward(forward_method m, bool to_client) noexcept {
    ++forwarded;
    ++forwarded_by_method[method_index(m)];
    forwarded_to_client += to_client;
  }
  void count(const verdict& v) noexcept {
    switch (v.kind) {
      case verdict_kind::forward: count_forward(v.method, v.to_client); break;
      case verdict_kind::reply:
        ++replies;
        ++replies_by_reason[static_cast<std::size_t>(v.reply) % 3];
        break;
      case verdict_kind::pass:
        ++passed;
        ++passed_by_reason[static_cast<std::size_t>(v.pass) % pass_reason_count];
        break;
      case verdict_kind::queued: ++queued; break;
      case verdict_kind::drop:
        ++dropped;
        if (v.layer == drop_layer::parse) ++dropped_parse[static_cast<std::size_t>(v.parse_error) % 64];
        if (v.layer == drop_layer::forward)
          ++dropped_forward[static_cast<std::size_t>(v.forward_error) % 64];
        if (v.layer == drop_layer::director)
          ++dropped_director[static_cast<std::size_t>(v.director_error) % director_drop_count];
        break;
    }
  }
  verdict_counters& operator+=(const verdict_counters& o) noexcept {
    forwarded += o.forwarded;
    forwarded_to_client += o.forwarded_to_client;
    replies += o.replies;
    passed += o.passed;
    dropped += o.dropped;
    queued += o.queued;
    for (std::size_t i = 0; i < forwarded_by_method.size(); ++i) forwarded_by_method[i] += o.forwarded_by_method[i];
    for (std::size_t i = 0; i < replies_by_reason.size(); ++i) replies_by_reason[i] += o.replies_by_reason[i];
    for (std::size_t i = 0; i < passed_by_reason.size(); ++i) passed_by_reason[i] += o.passed_by_reason[i];
    for (std::size_t i = 0; i < dropped_parse.size(); ++i) dropped_parse[i] += o.dropped_parse[i];
    for (std::size_t i = 0; i < dropped_forward.size(); ++i) dropped_forward[i] += o.dropped_forward[i];
    for (std::size_t i = 0; i < dropped_director.size(); ++i) dropped_director[i] += o.dropped_director[i];
    return *this;
  }
};

/// The counters as a table (what l4lb-replay and l4lb-director print at the end): each verdict's
/// total, then its non-zero reasons indented under it. Control plane: allocates.
[[nodiscard]] inline std::string counters_table(const verdict_counters& v) {
  std::string out;
  char line[96];
  const auto row = [&](const char* fmt, std::string_view name, std::uint64_t n) {
    std::snprintf(line, sizeof line, fmt, std::string(name).c_str(), static_cast<unsigned long long>(n));
    out += line;
  };
  const auto total = [&](std::string_view name, std::uint64_t n) { row("%-20s %12llu\n", name, n); };
  const auto reason = [&](std::string_view name, std::uint64_t n) { row("  %-18s %12llu\n", name, n); };
  const auto drop = [&](std::string_view name, std::uint64_t n) { row("  %-30s %llu\n", name, n); };
  total("forwarded", v.forwarded);
  constexpr std::string_view methods[] = {"nat", "local", "tun", "dr", "fullnat"};
  for (std::size_t i = 0; i < v.forwarded_by_method.size(); ++i)
    if (v.forwarded_by_method[i]) reason(methods[i], v.forwarded_by_method[i]);
  if (v.forwarded_to_client) row("  of them NAT replies%s %11llu\n", "", v.forwarded_to_client);
  total("replies", v.replies);
  for (std::size_t i = 1; i < v.replies_by_reason.size(); ++i)
    if (v.replies_by_reason[i]) reason(to_string(static_cast<reply_reason>(i)), v.replies_by_reason[i]);
  total("passed", v.passed);
  for (std::size_t i = 1; i < v.passed_by_reason.size(); ++i)
    if (v.passed_by_reason[i]) reason(to_string(static_cast<pass_reason>(i)), v.passed_by_reason[i]);
  total("dropped", v.dropped);
  for (std::size_t i = 1; i < v.dropped_parse.size(); ++i)
    if (v.dropped_parse[i]) drop(wire::to_string(static_cast<wire::drop_reason>(i)), v.dropped_parse[i]);
  for (std::size_t i = 1; i < v.dropped_forward.size(); ++i)
    if (v.dropped_forward[i])
      drop(forward::to_string(static_cast<forward::forward_error>(i)), v.dropped_forward[i]);
  for (std::size_t i = 1; i < v.dropped_director.size(); ++i)
    if (v.dropped_director[i]) drop(to_string(static_cast<director_drop>(i)), v.dropped_director[i]);
  return out;
}

}  // namespace l4lb::director
