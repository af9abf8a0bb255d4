// Why a connection-tracking call did not do what was asked: one enum for the conn area, with
// to_string, so a caller can count refusals per cause (the way Katran counts every drop).
#pragma once

#include <cstdint>
#include <string_view>

namespace l4lb::conn {

enum class errc : std::uint8_t {
  ok = 0,
  table_full,           // no room and nothing in the probe window may be evicted (policy in conn_table.hpp)
  exists,               // a live connection with this key is already in the table
  bad_dest,             // real-server handle >= max_dests, or above 24 bits
  unknown_dest_endpoint,// a NAT connection's server has no endpoint registered (set_dest)
  dest_in_use,          // set_dest would change the endpoint of a server that still has connections
  no_nat_index,         // a NAT connection on a table built without the reply index
  bad_template,         // the template reference is not a live template
  template_table_full,  // no room for a persistence template and none may be evicted
  no_template_table,    // persistence used on a table built with template_capacity = 0
  bad_timeout,          // a timeout above timeouts::max_seconds
  bad_config,           // capacity 0 or above the limits in conn_table_config
  bad_dest_port,        // new_conn::dest_port is neither the server's port nor the virtual port
};

[[nodiscard]] constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::table_full: return "table_full";
    case errc::exists: return "exists";
    case errc::bad_dest: return "bad_dest";
    case errc::unknown_dest_endpoint: return "unknown_dest_endpoint";
    case errc::dest_in_use: return "dest_in_use";
    case errc::no_nat_index: return "no_nat_index";
    case errc::bad_template: return "bad_template";
    case errc::template_table_full: return "template_table_full";
    case errc::no_template_table: return "no_template_table";
    case errc::bad_timeout: return "bad_timeout";
    case errc::bad_config: return "bad_config";
    case errc::bad_dest_port: return "bad_dest_port";
  }
  return "unknown";
}

}  // namespace l4lb::conn
