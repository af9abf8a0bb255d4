// Errors of the ipvsadm-compatible configuration layer (config/): one value that says where (line
// and column), what (the token) and why (what was expected, or ipvsadm 1.31's own text), with the
// exit status ipvsadm ends with for the same mistake. Never thrown: parsers and loaders return it.
//
// ipvsadm's exit statuses (ipvsadm.c 1.31), which l4lbadm reproduces:
//   0    success;
//   1    a listing could not be made (list_service: "No such service"; list_conn);
//   2    the arguments were refused before anything was sent (fail(2, ...): bad values, illegal
//        option combinations, "Zero port specified for non-persistent service", ...);
//   255  popt refused the command line (unknown option, missing argument: process_options returns
//        -1), no command was given first (tryhelp_exit(-1)), or the kernel refused the change
//        (ipvs_add_service & co. return -1 and main returns it; the text is libipvs's
//        ipvs_strerror for that call and errno).
// The texts of refused changes follow libipvs.c ipvs_strerror: which sentence depends on the
// operation as well as the errno ("No such service" for -E/-D/-Z, "Service not defined" for
// -a/-e/-d).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "l4lb/director/model.hpp"

namespace l4lb::config {

/// ipvsadm's exit statuses (see the header comment).
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int listing_failed = 1;
inline constexpr int bad_arguments = 2;
inline constexpr int rejected = 255;
}  // namespace exit_code

/// A refused line, command line or change.
struct error {
  std::size_t line = 0;    ///< 1-based line of a rules file; 0 for a command line
  std::size_t column = 0;  ///< 1-based byte column of `token` in its line; 0 when there is none
  std::string token;       ///< the offending text, as written
  std::string message;     ///< what was expected, or ipvsadm's text
  int exit_status = exit_code::bad_arguments;
  friend bool operator==(const error&, const error&) = default;
};

/// "line 3, column 35: '198.18.0.300': not an IPv4 address"; the parts that are absent are left
/// out ("column 7: '-q': unknown option", "Service already exists").
[[nodiscard]] inline std::string to_string(const error& e) {
  std::string s;
  if (e.line != 0) {
    s += "line ";
    s += std::to_string(e.line);
  }
  if (e.column != 0) {
    if (!s.empty()) s += ", ";
    s += "column ";
    s += std::to_string(e.column);
  }
  if (!s.empty()) s += ": ";
  if (e.column != 0 || !e.token.empty()) {
    s += '\'';
    s += e.token;
    s += "': ";
  }
  s += e.message;
  return s;
}

/// What ipvsadm prints for a change the director refused, and its exit status.
struct refusal {
  std::string_view message;
  int exit_status = exit_code::rejected;
};

/// The text and exit status ipvsadm 1.31 gives for the refusal `e` of command `c`:
/// libipvs ipvs_strerror's sentence for the errno the kernel returns (exit 255), or the text of
/// ipvsadm's own pre-check where ipvsadm refuses before asking the kernel (exit 2). Refusals
/// only l4lb makes (scheduler flags a policy does not use, a persistence engine, capacity, ...)
/// get a plain sentence of their own.
[[nodiscard]] inline refusal ipvsadm_refusal(director::config_error e,
                                             const director::command& c) noexcept {
  using director::config_error;
  const bool dest_command = std::holds_alternative<director::add_dest>(c) ||
                            std::holds_alternative<director::edit_dest>(c) ||
                            std::holds_alternative<director::delete_dest>(c);
  switch (e) {
    case config_error::ok: return {"", exit_code::ok};
    // The kernel's errnos through ipvs_strerror (exit 255).
    case config_error::service_exists: return {"Service already exists"};  // EEXIST
    case config_error::no_such_service:  // ESRCH
      return {dest_command ? "Service not defined" : "No such service"};
    case config_error::dest_exists: return {"Destination already exists"};  // EEXIST
    case config_error::no_such_dest: return {"No such destination"};        // ENOENT
    case config_error::unknown_scheduler:                                  // ENOENT
    case config_error::unsupported_pe:
      return {"Scheduler or persistence engine not found"};
    case config_error::bad_threshold: return {"Numerical result out of range"};  // ERANGE
    case config_error::capacity_exhausted: return {"Memory allocation problem"};  // ENOMEM
    case config_error::bad_address:  // EINVAL
      return {"Invalid operation.  Possibly wrong module version, address not unicast, ..."};
    // ipvsadm's own checks (fail(2, ...)).
    case config_error::bad_weight: return {"illegal weight specified", exit_code::bad_arguments};
    case config_error::bad_netmask:
      return {"illegal virtual server persistent mask specified", exit_code::bad_arguments};
    case config_error::port_zero_not_persistent:
      return {"Zero port specified for non-persistent service", exit_code::bad_arguments};
    case config_error::one_packet_not_udp:
      return {"One-Packet Scheduling is only for UDP virtual services", exit_code::bad_arguments};
    case config_error::family_mismatch:
      return {"Different address family is allowed only for tunneling servers",
              exit_code::bad_arguments};
    case config_error::bad_persistence:
      return {"invalid persistence timeout (1-2678400 seconds)", exit_code::bad_arguments};
    case config_error::bad_timeout:
      return {"invalid timeout value", exit_code::bad_arguments};
    // l4lb's own refusals.
    case config_error::bad_sched_flags:
      return {"scheduler flags not used by this scheduler", exit_code::bad_arguments};
    case config_error::bad_sched_options:
      return {"scheduler option not taken by this scheduler, or its value out of range",
              exit_code::bad_arguments};
    case config_error::method_not_valid:
      return {"forwarding options conflict with the forwarding method", exit_code::bad_arguments};
    case config_error::bad_tunnel:
      return {"tunnel options do not fit the tunnel type", exit_code::bad_arguments};
    case config_error::bad_sysctl:
      return {"unknown setting or value out of range", exit_code::bad_arguments};
  }
  return {"unknown error"};
}

}  // namespace l4lb::config
