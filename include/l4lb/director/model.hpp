// The director's configuration model: what a virtual service and a real server are, the
// kernel-equivalent options (IPVS's sysctls) and the commands that change them. Plain values with
// ipvsadm's defaults; the rule-file grammar (config/) parses text into these, the director
// (director.hpp) runs them. Control plane only: nothing here is on the data path.
//
// Design notes
// - A command is one of ipvsadm's operations (-A -E -D -C -a -e -d --set -Z) as a value, so a rule
//   file, l4lbadm and an application calling the library all go through the same validation.
// - -E and -e carry a complete description, as ipvsadm sends one built from its defaults
//   (ipvs-notes 5.7): fields not given on the command line are reset, not kept.
// - Defaults are the kernel's and ipvsadm's (ipvs-notes 1.1, 3.5, 3.8, 5.7): scheduler wlc,
//   forwarding -g (Route), weight 1, persistence 360 s, netmask /32 (/128), sysctls as shipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "l4lb/conn/timeouts.hpp"
#include "l4lb/expected.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/sched/any_scheduler.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::director {

/// IPVS's forwarding methods with the kernel's numbers (IP_VS_CONN_F_FWD_MASK values), plus
/// l4lb's FullNAT (both addresses rewritten; DPVS's FNAT), outside the kernel's range.
enum class forward_method : std::uint8_t {
  masq = 0,    ///< -m, NAT ("Masq")
  local = 1,   ///< the director itself ("Local"): l4lb passes such packets to the host stack
  tunnel = 2,  ///< -i ("Tunnel")
  route = 3,   ///< -g, direct routing ("Route"; ipvsadm's default)
  full_nat = 16,  ///< --fullnat (ours): source = a local address of the director
};

/// The Forward column of ipvsadm -L ("Masq", "Local", "Tunnel", "Route"; ours "FullNat").
[[nodiscard]] constexpr std::string_view to_string(forward_method m) noexcept {
  switch (m) {
    case forward_method::masq: return "Masq";
    case forward_method::local: return "Local";
    case forward_method::tunnel: return "Tunnel";
    case forward_method::route: return "Route";
    case forward_method::full_nat: return "FullNat";
  }
  return "unknown";
}

/// --tun-nocsum / --tun-csum / --tun-remcsum (GUE; GRE takes the first two).
enum class tunnel_checksum : std::uint8_t { none, checksum, remote };

/// A tunnel real server's encapsulation (ipvsadm 1.31 --tun-type, --tun-port, --tun-*csum).
struct tunnel_settings {
  forward::tunnel_type type = forward::tunnel_type::ipip;
  std::uint16_t port = 0;  ///< GUE's UDP port; required for gue, refused otherwise
  tunnel_checksum checksum = tunnel_checksum::none;
  friend bool operator==(const tunnel_settings&, const tunnel_settings&) = default;
};

/// Identifies a virtual service: (protocol, VIP, port), or a firewall mark and a family.
struct service_key {
  std::uint32_t fwmark = 0;  ///< non-zero: a firewall-mark service (-f); protocol/address unused
  std::uint8_t protocol = wire::ip_proto::tcp;  ///< tcp, udp or sctp; 0 for fwmark services
  wire::ip_address address;                     ///< the VIP (family = the service's family)
  std::uint16_t port = 0;                       ///< 0: all ports (must be persistent)

  [[nodiscard]] static service_key tcp(const wire::endpoint& e) noexcept {
    return {0, wire::ip_proto::tcp, e.address, e.port};
  }
  [[nodiscard]] static service_key udp(const wire::endpoint& e) noexcept {
    return {0, wire::ip_proto::udp, e.address, e.port};
  }
  [[nodiscard]] static service_key sctp(const wire::endpoint& e) noexcept {
    return {0, wire::ip_proto::sctp, e.address, e.port};
  }
  /// -f mark (-6 for IPv6): the address only carries the family.
  [[nodiscard]] static service_key mark(std::uint32_t m,
                                        wire::ip_family f = wire::ip_family::v4) noexcept {
    service_key k;
    k.fwmark = m;
    k.protocol = 0;
    k.address = f == wire::ip_family::v4 ? wire::ip_address(wire::ipv4_address{})
                                         : wire::ip_address(wire::ipv6_address{});
    return k;
  }
  [[nodiscard]] bool is_fwmark() const noexcept { return fwmark != 0; }
  [[nodiscard]] wire::ip_family family() const noexcept { return address.family(); }
  friend bool operator==(const service_key&, const service_key&) = default;
};

/// A real server as configured (-a / -e).
struct real_server_spec {
  wire::endpoint endpoint;  ///< port 0: the packet's own port (fwmark and port-0 services)
  std::uint32_t weight = 1;           ///< 0..65535 (ipvsadm's range); 0 quiesces
  std::uint32_t upper_threshold = 0;  ///< -x; 0 = none
  std::uint32_t lower_threshold = 0;  ///< -y; 0 = none; must not exceed -x
  forward_method method = forward_method::route;
  tunnel_settings tunnel{};           ///< method == tunnel only
  /// FullNAT's source addresses toward this server (ours); at least one of the server's family.
  std::vector<wire::ip_address> full_nat_local;
  /// Egress MTU toward this server (ours; the kernel takes it from the route). 0 = no check.
  std::uint32_t mtu = 0;
  friend bool operator==(const real_server_spec&, const real_server_spec&) = default;
};

/// A virtual service as configured (-A / -E).
struct service_spec {
  service_key key;
  std::string scheduler = "wlc";        ///< -s: an any_scheduler name
  sched::scheduler_flags sched_flags{};  ///< -b
  /// --sched-opt (ours): the policy's named options ("table-bits=12"); a configuration keeps
  /// them in the policy's canonical form (any_scheduler::canonical_options).
  sched::scheduler_options sched_options{};
  bool persistent = false;              ///< -p
  std::uint32_t persistence_timeout = 360;  ///< -p N seconds (1 .. 31 days)
  std::uint32_t netmask_v4 = 0xFFFF'FFFF;  ///< -M for IPv4 services (host order)
  std::uint8_t prefix_v6 = 128;            ///< -M for IPv6 services (a prefix length, 1..128)
  bool one_packet = false;              ///< -o (UDP and fwmark services)
  std::string pe_name;                  ///< --pe; only "" (no persistence engine) is supported
  friend bool operator==(const service_spec&, const service_spec&) = default;
};

/// IPVS's sysctls (net.ipv4.vs.*) with the kernel's defaults (ipvs-notes 3.8), and l4lb's
/// extensions, off by default.
struct director_settings {
  std::uint8_t conn_reuse_mode = 1;
  bool expire_nodest_conn = false;
  bool expire_quiescent_template = false;
  bool sloppy_tcp = false;
  bool sloppy_sctp = false;
  /// 0..3 as the kernel's; the defence state table is used from 2 on (l4lb has no memory
  /// pressure trigger: 1 behaves as 0, 2 and 3 as "always on").
  std::uint8_t secure_tcp = 0;
  // --- l4lb's extensions
  /// A SYN for a live connection of a removed or quiesced server is scheduled afresh
  /// (conn::reuse_policy). Off by default: the kernel does it only with expire_nodest_conn.
  bool reschedule_syn_to_unavailable_dest = false;
  /// Drop IPv4 packets whose header checksum is wrong (the kernel's ip_rcv does).
  bool verify_ipv4_checksum = true;
  // --- scheduler sysctls
  /// net.ipv4.vs.lblc_expiration / lblcr_expiration, in seconds: how long an lblc / lblcr cache
  /// entry may go unused before the half-hourly full check drops it. The kernel's default is
  /// DEFAULT_EXPIRATION = 24*60*60*HZ jiffies, read and written as seconds through
  /// proc_dointvec_jiffies (net/netfilter/ipvs/ip_vs_lblc.c, ip_vs_lblcr.c). Applied to the
  /// lblc / lblcr services that do not set `expiration` in their own options.
  std::uint32_t lblc_expiration = 86400;
  std::uint32_t lblcr_expiration = 86400;
  friend bool operator==(const director_settings&, const director_settings&) = default;
};

/// Why a configuration change was refused. Nothing changes on error.
enum class config_error : std::uint8_t {
  ok = 0,
  service_exists,         ///< -A of a service that exists
  no_such_service,        ///< -E / -D / -a / -e / -d / -Z on a service that does not exist
  dest_exists,            ///< -a of a real server already in the service
  no_such_dest,           ///< -e / -d of a real server not in the service
  unknown_scheduler,      ///< -s NAME that is not a scheduler
  bad_sched_flags,        ///< -b flags the scheduler does not take
  bad_sched_options,      ///< --sched-opt: a name the scheduler does not take, a bad value
  bad_weight,             ///< weight above 65535
  bad_threshold,          ///< lower threshold above the upper one
  bad_persistence,        ///< timeout 0 or above 31 days, or a bad netmask / prefix
  bad_netmask,            ///< -M that is not a contiguous IPv4 mask / a prefix of 1..128
  port_zero_not_persistent,  ///< a port-0 service must be persistent (ipvsadm)
  one_packet_not_udp,     ///< -o on a TCP or SCTP service
  family_mismatch,        ///< real server of another family than the service (DR/NAT/FullNAT)
  method_not_valid,       ///< e.g. a tunnel option without -i, FullNAT without a local address
  bad_tunnel,             ///< gue without --tun-port, a port for ipip/gre, remcsum for gre
  unsupported_pe,         ///< --pe with a persistence engine l4lb does not have
  bad_timeout,            ///< --set value above the maximum
  bad_sysctl,             ///< unknown sysctl name or value out of range
  capacity_exhausted,     ///< the director's fixed service / real-server capacity is used up
  bad_address,            ///< a VIP or real server address that cannot be one (multicast, 0...)
};

[[nodiscard]] constexpr std::string_view to_string(config_error e) noexcept {
  switch (e) {
    case config_error::ok: return "ok";
    case config_error::service_exists: return "service_exists";
    case config_error::no_such_service: return "no_such_service";
    case config_error::dest_exists: return "dest_exists";
    case config_error::no_such_dest: return "no_such_dest";
    case config_error::unknown_scheduler: return "unknown_scheduler";
    case config_error::bad_sched_flags: return "bad_sched_flags";
    case config_error::bad_sched_options: return "bad_sched_options";
    case config_error::bad_weight: return "bad_weight";
    case config_error::bad_threshold: return "bad_threshold";
    case config_error::bad_persistence: return "bad_persistence";
    case config_error::bad_netmask: return "bad_netmask";
    case config_error::port_zero_not_persistent: return "port_zero_not_persistent";
    case config_error::one_packet_not_udp: return "one_packet_not_udp";
    case config_error::family_mismatch: return "family_mismatch";
    case config_error::method_not_valid: return "method_not_valid";
    case config_error::bad_tunnel: return "bad_tunnel";
    case config_error::unsupported_pe: return "unsupported_pe";
    case config_error::bad_timeout: return "bad_timeout";
    case config_error::bad_sysctl: return "bad_sysctl";
    case config_error::capacity_exhausted: return "capacity_exhausted";
    case config_error::bad_address: return "bad_address";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------- commands

struct add_service {  ///< -A
  service_spec spec;
  friend bool operator==(const add_service&, const add_service&) = default;
};
struct edit_service {  ///< -E (a complete description)
  service_spec spec;
  friend bool operator==(const edit_service&, const edit_service&) = default;
};
struct delete_service {  ///< -D
  service_key key;
  friend bool operator==(const delete_service&, const delete_service&) = default;
};
struct clear_all {  ///< -C
  friend bool operator==(const clear_all&, const clear_all&) = default;
};
struct add_dest {  ///< -a
  service_key service;
  real_server_spec dest;
  friend bool operator==(const add_dest&, const add_dest&) = default;
};
struct edit_dest {  ///< -e (complete description)
  service_key service;
  real_server_spec dest;
  friend bool operator==(const edit_dest&, const edit_dest&) = default;
};
struct delete_dest {  ///< -d
  service_key service;
  wire::endpoint endpoint;
  friend bool operator==(const delete_dest&, const delete_dest&) = default;
};
/// --set tcp tcpfin udp (0 keeps a value).
struct set_timeouts {
  std::uint32_t tcp = 0, tcp_fin = 0, udp = 0;
  friend bool operator==(const set_timeouts&, const set_timeouts&) = default;
};
/// -Z: zero the counters of one service, or of everything.
struct zero_counters {
  std::optional<service_key> service;
  friend bool operator==(const zero_counters&, const zero_counters&) = default;
};
/// A sysctl by its name (net.ipv4.vs.NAME), l4lb's extensions included.
struct set_sysctl {
  std::string name;
  std::int64_t value = 0;
  friend bool operator==(const set_sysctl&, const set_sysctl&) = default;
};

using command = std::variant<add_service, edit_service, delete_service, clear_all, add_dest,
                             edit_dest, delete_dest, set_timeouts, zero_counters, set_sysctl>;

/// The largest lblc_expiration / lblcr_expiration (seconds): INT_MAX / 1000, what the kernel
/// takes at HZ 1000.
inline constexpr std::int64_t max_expiration_sysctl = 2147483647 / 1000;

/// Applies `name = value` to `s` (net.ipv4.vs.NAME; the names IPVS has that l4lb implements,
/// and ours). Errors: bad_sysctl.
[[nodiscard]] inline config_error apply_sysctl(director_settings& s, std::string_view name,
                                               std::int64_t value) noexcept {
  const auto boolean = [&](bool& field) {
    if (value != 0 && value != 1) return config_error::bad_sysctl;
    field = value == 1;
    return config_error::ok;
  };
  if (name == "conn_reuse_mode") {
    if (value < 0 || value > 3) return config_error::bad_sysctl;
    s.conn_reuse_mode = static_cast<std::uint8_t>(value);
    return config_error::ok;
  }
  if (name == "secure_tcp") {
    if (value < 0 || value > 3) return config_error::bad_sysctl;
    s.secure_tcp = static_cast<std::uint8_t>(value);
    return config_error::ok;
  }
  if (name == "expire_nodest_conn") return boolean(s.expire_nodest_conn);
  if (name == "expire_quiescent_template") return boolean(s.expire_quiescent_template);
  if (name == "sloppy_tcp") return boolean(s.sloppy_tcp);
  if (name == "sloppy_sctp") return boolean(s.sloppy_sctp);
  if (name == "reschedule_syn_to_unavailable_dest")
    return boolean(s.reschedule_syn_to_unavailable_dest);
  if (name == "verify_ipv4_checksum") return boolean(s.verify_ipv4_checksum);
  if (name == "lblc_expiration" || name == "lblcr_expiration") {
    // proc_dointvec_jiffies refuses seconds above INT_MAX / HZ; this bound fits every HZ.
    if (value < 0 || value > max_expiration_sysctl) return config_error::bad_sysctl;
    (name == "lblc_expiration" ? s.lblc_expiration : s.lblcr_expiration) =
        static_cast<std::uint32_t>(value);
    return config_error::ok;
  }
  return config_error::bad_sysctl;
}

/// The names apply_sysctl takes, for help texts and listings.
inline constexpr std::string_view sysctl_names[] = {
    "conn_reuse_mode",   "expire_nodest_conn", "expire_quiescent_template",
    "sloppy_tcp",        "sloppy_sctp",        "secure_tcp",
    "reschedule_syn_to_unavailable_dest", "verify_ipv4_checksum",
    "lblc_expiration",   "lblcr_expiration"};

}  // namespace l4lb::director
