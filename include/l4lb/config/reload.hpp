// Reloading a rule file into a running director (SIGHUP): the changes that turn the current
// configuration into the file's, keeping everything the file did not change. A flush and
// restore (-C then -R) would retire every real server and drop their established connections;
// this keeps a server that is still in the file, with its connections, counters and place.
//
// Design notes
// - Services: in the file and not running -> -A; running and not in the file -> -D; in both
//   with another scheduler, flags or persistence -> -E (the kernel keeps the server list).
// - Real servers: the same per service (-a / -d / -e). New servers are added in the order
//   ipvsadm -R would add them, so they take the places the file gives them relative to each
//   other; servers kept keep their places (list order matters to rr and wrr: this is the order
//   a kernel holding the same rules after the same edits has).
// - --set lines and sysctls in the file are applied again; ones the file does not mention keep
//   their running values (ipvsadm's save format has neither).
// - Control plane only; the result goes to director_control::apply_all (all or nothing).
#pragma once

#include <string_view>
#include <variant>
#include <vector>

#include "l4lb/config/error.hpp"
#include "l4lb/config/rules.hpp"
#include "l4lb/director/configuration.hpp"
#include "l4lb/expected.hpp"

namespace l4lb::config {

/// The commands that make `current` equal to `target` as ipvsadm -Sn shows them.
[[nodiscard]] inline std::vector<director::command> reload_commands(
    const director::configuration& current, const director::configuration& target) {
  using namespace director;
  std::vector<command> out;
  for (const service_entry& s : current.services())
    if (target.find(s.spec.key) == nullptr) out.push_back(delete_service{s.spec.key});
  for (const service_entry& t : target.services()) {
    const service_entry* s = current.find(t.spec.key);
    if (s == nullptr) {
      out.push_back(add_service{t.spec});
      // target lists the newest first; adding oldest first gives that order again.
      for (auto d = t.dests.rbegin(); d != t.dests.rend(); ++d)
        out.push_back(add_dest{t.spec.key, d->spec});
      continue;
    }
    if (!(s->spec == t.spec)) out.push_back(edit_service{t.spec});
    for (const dest_entry& d : s->dests)
      if (t.find_dest(d.spec.endpoint) == nullptr)
        out.push_back(delete_dest{t.spec.key, d.spec.endpoint});
    for (auto d = t.dests.rbegin(); d != t.dests.rend(); ++d) {
      const dest_entry* have = s->find_dest(d->spec.endpoint);
      if (have == nullptr) out.push_back(add_dest{t.spec.key, d->spec});
      else if (!(have->spec == d->spec)) out.push_back(edit_dest{t.spec.key, d->spec});
    }
  }
  return out;
}

/// Parses `text` as a whole rule file (what the file alone describes, on an empty
/// configuration with `current`'s limits, timeouts and sysctls) and returns the commands that
/// move `current` to it. Errors: load_rules's (the line and the problem).
[[nodiscard]] inline expected<std::vector<director::command>, error> reload_rules(
    const director::configuration& current, std::string_view text,
    const name_resolver* resolver = nullptr) {
  director::configuration empty = current;
  (void)empty.apply(director::clear_all{});
  auto r = load_rules(empty, text, resolver);
  if (!r) return unexpected{r.error()};
  std::vector<director::command> out = reload_commands(current, r->config);
  for (const director::command& c : r->applied)
    if (std::holds_alternative<director::set_timeouts>(c) ||
        std::holds_alternative<director::set_sysctl>(c))
      out.push_back(c);
  return out;
}

}  // namespace l4lb::config
