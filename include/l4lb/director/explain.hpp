// explanation: the answer to "which real server would this packet go to, and why" — what
// director::explain() returns without changing anything: the service matched, the connection or
// persistence template found and its state, or the scheduler's decision with its inputs, or the
// reason the packet is passed or dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "l4lb/director/verdict.hpp"
#include "l4lb/wire/address.hpp"

namespace l4lb::director {

struct explanation {
  verdict_kind kind = verdict_kind::pass;
  std::string reason;                    ///< the pass / drop / reply reason's name, if any
  std::optional<std::string> service;    ///< "TCP 198.18.0.100:80 rr" as -Ln names it
  enum class via : std::uint8_t { none, connection, persistence_template, scheduler };
  via decided_by = via::none;
  std::string conn_state;                ///< connection or template state ("ESTABLISHED", "ASSURED")
  std::int64_t conn_remaining_ns = 0;
  std::optional<wire::endpoint> real_server;
  forward_method method = forward_method::route;
  std::string scheduler_inputs;          ///< what the pick looked at (weights, counts)

  /// One paragraph for people.
  [[nodiscard]] std::string to_text() const {
    std::string s = std::string(to_string(kind));
    if (!reason.empty()) s += " " + reason;
    if (real_server) s += " -> " + real_server->to_string() + " (" + std::string(to_string(method)) + ")";
    s += "\n";
    if (service) s += "  service: " + *service + "\n";
    switch (decided_by) {
      case via::connection:
        s += "  existing connection, state " + conn_state + ", expires in " +
             std::to_string(conn_remaining_ns / 1'000'000'000) + " s\n";
        break;
      case via::persistence_template:
        s += "  persistence template, state " + conn_state + ", expires in " +
             std::to_string(conn_remaining_ns / 1'000'000'000) + " s\n";
        break;
      case via::scheduler: s += "  new connection, scheduler picked it\n"; break;
      case via::none: break;
    }
    if (!scheduler_inputs.empty()) s += "  " + scheduler_inputs + "\n";
    return s;
  }
};

}  // namespace l4lb::director
