// ipvsadm -L listings, byte for byte as ipvsadm 1.31 prints them (trailing spaces and the banner
// line included), from a director's configuration, its counters (through callbacks) and its
// connection rows. No I/O: the text is appended to a std::string or written to a std::ostream.
//
// Followed from ipvsadm.c 1.31: list_all (banner "IP Virtual Server version 1.2.1 (size=N)",
// sorting unless --nosort), list_service (-L -t VIP:port: no banner; "No such service", exit 1),
// print_title, print_service_entry (the column formats of -Ln, --stats, --rate, --thresholds,
// --persistent-conn, --tun-info; IPv4 names cut at 33 / 28 characters), fwd_name, fwd_tun_info,
// print_largenum (--exact), list_conn + print_conn (-Lnc: remaining time as mm:ss of whole
// seconds, minutes not capped), list_timeout, list_daemon (nothing: l4lb has no sync daemon).
// Formats: ipvs-notes 5.2, 5.3, 5.5, 5.7 and 0A (observed on Linux 6.1 + ipvsadm 1.31).
//
// l4lb's choices:
// - (size=N) prints listing_input::conn_table_size. The kernel prints its connection hash
//   table's bucket count (1 << ip_vs_conn_tab_bits, 4096 by default); l4lb's connection tables
//   are per core and open-addressed, so the caller chooses what to report (the default keeps
//   the kernel's 4096, so scripts that match the banner keep working).
// - A FullNAT real server's Forward column is "FullNat" (our extension); its --tun-info is "n/a".
// - -Lnc prints the rows in the order given: pass them in table order (conn_row::order), which is
//   what the kernel's hash-bucket walk gives ipvsadm.
// - Without -n, names come from listing_input::resolver (none: numbers, as when ipvsadm's
//   lookups fail).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/config/detail/format.hpp"
#include "l4lb/config/error.hpp"
#include "l4lb/config/grammar.hpp"
#include "l4lb/director/configuration.hpp"
#include "l4lb/director/stats.hpp"

namespace l4lb::config {

/// Everything a listing reads.
struct listing_input {
  const director::configuration& config;
  /// Counters and rates of a service (by service_entry::id); empty: zeros.
  std::function<director::service_status(std::uint32_t service_id)> service_status{};
  /// Counters, rates and connection counts of a real server (by dest_entry::handle); empty: zeros.
  std::function<director::dest_status(std::uint32_t handle)> dest_status{};
  /// -Lnc rows (connections and persistence templates), printed in this order.
  std::span<const director::conn_row> connections{};
  /// What the banner's (size=N) shows (see the header comment).
  std::uint32_t conn_table_size = 4096;
  /// Names for listings without -n.
  const name_resolver* resolver = nullptr;
};

/// IPVS's version as the banner prints it (IP_VS_VERSION_CODE 0x010201).
inline constexpr std::string_view ipvs_version = "1.2.1";

namespace detail {

/// print_title for the format flags of `r`.
inline void append_title(std::string& out, const list_request& r) {
  const auto five = [&](std::string_view a, std::string_view b, std::string_view c,
                        std::string_view d, std::string_view e) {
    append_left(out, "Prot LocalAddress:Port", 33);
    for (std::string_view s : {a, b, c, d, e}) {
      out += ' ';
      append_right(out, s, 8);
    }
    out += "\n  -> RemoteAddress:Port\n";
  };
  if (r.stats) {
    five("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes");
  } else if (r.rate) {
    five("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS");
  } else if (r.thresholds) {
    append_left(out, "Prot LocalAddress:Port", 33);
    for (std::string_view s : {"Uthreshold", "Lthreshold", "ActiveConn", "InActConn"}) {
      out += ' ';
      append_left(out, s, 10);
    }
    out += "\n  -> RemoteAddress:Port\n";
  } else if (r.persistent_conn) {
    append_left(out, "Prot LocalAddress:Port", 33);
    out += ' ';
    append_left(out, "Weight", 9);
    out += ' ';
    append_left(out, "PersistConn", 11);
    out += ' ';
    append_left(out, "ActiveConn", 10);
    out += ' ';
    append_left(out, "InActConn", 10);
    out += "\n  -> RemoteAddress:Port\n";
  } else if (r.tun_info) {
    out +=
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
  } else {
    out +=
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
  }
}

[[nodiscard]] inline std::string_view protocol_name(std::uint8_t p) noexcept {
  switch (p) {
    case wire::ip_proto::tcp: return "TCP";
    case wire::ip_proto::udp: return "UDP";
    case wire::ip_proto::sctp: return "SCTP";
    default: return "?";
  }
}

/// fwd_tun_info: "ipip", "gue:6080:-c", "gre:+c"; empty for other methods ("n/a").
inline std::string tunnel_info(const director::real_server_spec& d) {
  if (d.method != director::forward_method::tunnel) return "n/a";
  static constexpr std::string_view flags[] = {"-c", "+c", "r+c"};
  const std::string_view f = flags[static_cast<std::size_t>(d.tunnel.checksum)];
  std::string s;
  switch (d.tunnel.type) {
    case forward::tunnel_type::ipip: s = "ipip"; break;
    case forward::tunnel_type::gue:
      s = "gue:";
      append_uint(s, d.tunnel.port);
      (s += ':') += f;
      break;
    case forward::tunnel_type::gre: (s = "gre:") += f; break;
  }
  return s;
}

inline void append_service_entry(std::string& out, const listing_input& in,
                                 const list_request& r, const director::service_entry& s,
                                 std::vector<const director::dest_entry*>& dests,
                                 std::vector<const director::dest_entry*>& tmp) {
  const director::service_spec& sp = s.spec;
  const director::service_key& k = sp.key;
  std::string name;
  if (k.is_fwmark()) {
    name = "FWM  ";
    append_uint(name, k.fwmark);
    if (k.address.is_v6()) name += " IPv6";
  } else {
    append_left(name, protocol_name(k.protocol), 4);
    name += ' ';
    append_addrport(name, k.address, k.port, k.protocol, r.numeric, in.resolver);
    if (k.address.is_v4() && name.size() > 33) name.resize(33);
  }
  if (r.stats || r.rate) {
    const director::service_status st = in.service_status ? in.service_status(s.id)
                                                          : director::service_status{};
    append_left(out, name, 33);
    if (r.stats) {
      for (std::uint64_t v : {st.stats.conns, st.stats.in_packets, st.stats.out_packets,
                              st.stats.in_bytes, st.stats.out_bytes})
        append_largenum(out, v, r.exact);
    } else {
      for (std::uint64_t v :
           {st.rate.cps, st.rate.in_pps, st.rate.out_pps, st.rate.in_bps, st.rate.out_bps})
        append_largenum(out, v, r.exact);
    }
  } else {
    out += name;
    out += ' ';
    out += sp.scheduler;
    if (has_sched_flags(sp)) {
      out += " (";
      append_sched_flags(out, sp);
      out += ')';
    }
    if (sp.persistent) {
      out += " persistent ";
      append_uint(out, sp.persistence_timeout);
      if (k.address.is_v4()) {
        if (sp.netmask_v4 != 0xFFFF'FFFFu) {
          out += " mask ";
          append_ipv4(out, sp.netmask_v4);
        }
      } else if (sp.prefix_v6 != 128) {
        out += " mask ";
        append_uint(out, sp.prefix_v6);
      }
      if (!sp.pe_name.empty()) (out += " pe ") += sp.pe_name;
    }
    if (sp.one_packet) out += " ops";
  }
  out += '\n';

  ordered_dests(s, r.nosort, dests, tmp);
  std::string dname;
  for (const director::dest_entry* d : dests) {
    const director::real_server_spec& ds = d->spec;
    const director::dest_status st = in.dest_status ? in.dest_status(d->handle)
                                                    : director::dest_status{};
    dname.clear();
    append_addrport(dname, ds.endpoint.address, ds.endpoint.port, k.protocol, r.numeric,
                    in.resolver);
    if (ds.endpoint.address.is_v4() && dname.size() > 28) dname.resize(28);
    out += "  -> ";
    if (r.stats) {
      append_left(out, dname, 28);
      for (std::uint64_t v : {st.stats.conns, st.stats.in_packets, st.stats.out_packets,
                              st.stats.in_bytes, st.stats.out_bytes})
        append_largenum(out, v, r.exact);
    } else if (r.rate) {
      append_left(out, dname, 28);
      for (std::uint64_t v : {st.rate.cps, st.rate.in_pps, st.rate.out_pps}) {
        out += ' ';
        append_right(out, v, 8);
      }
      append_largenum(out, st.rate.in_bps, r.exact);
      append_largenum(out, st.rate.out_bps, r.exact);
    } else if (r.thresholds) {
      append_left(out, dname, 28);
      for (std::uint64_t v : {std::uint64_t{ds.upper_threshold}, std::uint64_t{ds.lower_threshold},
                              std::uint64_t{st.active_conns}, std::uint64_t{st.inactive_conns}}) {
        out += ' ';
        append_left(out, v, 10);
      }
    } else if (r.persistent_conn) {
      append_left(out, dname, 28);
      out += ' ';
      append_left(out, ds.weight, 9);
      out += ' ';
      append_left(out, st.persist_conns, 11);
      out += ' ';
      append_left(out, st.active_conns, 10);
      out += ' ';
      append_left(out, st.inactive_conns, 10);
    } else {
      append_left(out, dname, 28);
      out += ' ';
      append_left(out, director::to_string(ds.method), 7);
      if (r.tun_info) {
        out += ' ';
        append_left(out, tunnel_info(ds), 13);
      }
      out += ' ';
      append_left(out, ds.weight, 6);
      out += ' ';
      append_left(out, st.active_conns, 10);
      out += ' ';
      append_left(out, st.inactive_conns, 10);
    }
    out += '\n';
  }
}

/// The protocol column of -Lnc (the kernel's ip_vs_proto_name).
inline void append_conn_protocol(std::string& out, std::uint8_t p) {
  switch (p) {
    case 0: out += "IP"; return;
    case wire::ip_proto::tcp: out += "TCP"; return;
    case wire::ip_proto::udp: out += "UDP"; return;
    case wire::ip_proto::sctp: out += "SCTP"; return;
    case 1: out += "ICMP"; return;
    case 58: out += "ICMPv6"; return;
    default: out += "IP_"; append_uint(out, p); return;
  }
}

}  // namespace detail

/// -L / -Ln with its format flags: the banner, the title and every service (sorted unless
/// --nosort); with r.service, that service only and no banner.
/// Errors: "No such service" (exit 1) when r.service is not configured.
[[nodiscard]] inline std::optional<error> list_services(std::string& out, const listing_input& in,
                                                        const list_request& r) {
  std::vector<const director::dest_entry*> dests, tmp;
  if (r.service) {
    const director::service_entry* s = in.config.find(*r.service);
    if (s == nullptr) return error{0, 0, {}, "No such service", exit_code::listing_failed};
    detail::append_title(out, r);
    detail::append_service_entry(out, in, r, *s, dests, tmp);
    return std::nullopt;
  }
  out += "IP Virtual Server version ";
  out += ipvs_version;
  out += " (size=";
  detail::append_uint(out, in.conn_table_size);
  out += ")\n";
  detail::append_title(out, r);
  for (const director::service_entry* s : detail::ordered_services(in.config, r.nosort))
    detail::append_service_entry(out, in, r, *s, dests, tmp);
  return std::nullopt;
}

/// -Lc / -Lnc: "IPVS connection entries", the header, one row per connection or template.
inline void list_connections(std::string& out, const listing_input& in, const list_request& r) {
  using namespace detail;
  out += "IPVS connection entries\n";
  if (r.persistent_conn) {
    out += "pro expire ";
    append_left(out, "state", 11);
    out += ' ';
    append_left(out, "source", 18);
    out += ' ';
    append_left(out, "virtual", 18);
    out += ' ';
    append_left(out, "destination", 18);
    out += ' ';
    append_left(out, "pe name", 16);
    out += " pe_data\n";
  } else {
    out += "pro expire state       source             virtual            destination\n";
  }
  std::string field;
  for (const director::conn_row& c : in.connections) {
    field.clear();
    append_conn_protocol(field, c.protocol);
    append_left(out, field, 3);
    out += ' ';
    const std::uint64_t secs =
        c.remaining_ns <= 0 ? 0 : static_cast<std::uint64_t>(c.remaining_ns / 1'000'000'000);
    field.clear();
    const std::uint64_t minutes = secs / 60, seconds = secs % 60;
    if (minutes < 10) field += '0';
    append_uint(field, minutes);
    field += ':';
    if (seconds < 10) field += '0';
    append_uint(field, seconds);
    append_left(out, field, 6);
    out += ' ';
    append_left(out, c.state, 11);
    out += ' ';
    field.clear();
    append_addrport(field, c.client.address, c.client.port, c.protocol, r.numeric, in.resolver);
    append_left(out, field, 18);
    out += ' ';
    field.clear();
    append_addrport(field, c.virtual_endpoint.address, c.virtual_endpoint.port, c.protocol,
                    r.numeric, in.resolver);
    append_left(out, field, 18);
    out += ' ';
    append_addrport(out, c.dest.address, c.dest.port, c.protocol, r.numeric, in.resolver);
    out += '\n';
  }
}

/// --timeout: "Timeout (tcp tcpfin udp): 900 120 300".
inline void list_timeout(std::string& out, const director::configuration& cfg) {
  const auto t = cfg.timeouts().ipvsadm();
  out += "Timeout (tcp tcpfin udp): ";
  detail::append_uint(out, t.tcp);
  out += ' ';
  detail::append_uint(out, t.tcpfin);
  out += ' ';
  detail::append_uint(out, t.udp);
  out += '\n';
}

/// Whatever -L asks for (ipvsadm's CMD_LIST dispatch: -c, then a service, then --timeout, then
/// --daemon, else everything), appended to `out`. The request is assumed to come from the parser
/// (which refuses ipvsadm's conflicting combinations).
[[nodiscard]] inline std::optional<error> write_listing(std::string& out, const listing_input& in,
                                                        const list_request& r) {
  if (r.connections) {
    list_connections(out, in, r);
    return std::nullopt;
  }
  if (r.service) return list_services(out, in, r);
  if (r.timeout) {
    list_timeout(out, in.config);
    return std::nullopt;
  }
  if (r.daemon) return std::nullopt;  // no sync daemon: ipvsadm prints nothing
  return list_services(out, in, r);
}

/// write_listing onto a stream (nothing is written when it fails).
[[nodiscard]] inline std::optional<error> write_listing(std::ostream& os, const listing_input& in,
                                                        const list_request& r) {
  std::string s;
  auto e = write_listing(s, in, r);
  if (!e) os.write(s.data(), static_cast<std::streamsize>(s.size()));
  return e;
}

}  // namespace l4lb::config
