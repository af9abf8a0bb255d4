// The ipvsadm layer as l4lb-replay uses it: a rules file applied as one change, single commands
// for --at, and listings from the director's control plane and its one director.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <l4lb/config/grammar.hpp>
#include <l4lb/config/ipvsadm.hpp>
#include <l4lb/config/listing.hpp>
#include <l4lb/config/rules.hpp>
#include <l4lb/director/control.hpp>
#include <l4lb/director/director.hpp>

namespace rules {

namespace ld = l4lb::director;
namespace cfg = l4lb::config;

/// ipvsadm -R of `text` (from `file`) into `control`, as one change; "" or the error, prefixed by
/// the file name ("tutorial.rules: line 2, column 35: '198.18.0.300': not an IPv4 address").
inline std::string load(ld::director_control& control, std::string_view text, const std::string& file) {
  auto r = cfg::load_rules(control.config(), text);
  if (!r) return file + ": " + cfg::to_string(r.error());
  const ld::apply_result a = control.apply_all(r->applied);
  if (!a.ok()) return file + ": " + std::string(ld::to_string(a.error));
  return {};
}

/// One ipvsadm command line (a change; listings and saves are not commands here); "" or the error.
inline std::string command(ld::director_control& control, std::string_view line) {
  auto pc = cfg::parse_command_line(line);
  if (!pc) return cfg::to_string(pc.error());
  const ld::command* c = pc->change();
  if (!c) return "only changes (-A -E -D -C -a -e -d -Z --set) can be applied with --at";
  if (auto e = control.apply(*c); e != ld::config_error::ok)
    return cfg::to_string(cfg::apply_error(e, *pc, line));
  return {};
}

/// What `ipvsadm ARGS` prints ("-Ln", "-Ln --stats", "-Lnc", "-Sn", ...). The banner's (size=N)
/// shows 4096, the kernel's default connection hash size, so listings match a default kernel's.
inline std::string listing(ld::director_control& control, ld::director& d, std::int64_t now,
                           std::string_view args) {
  auto pc = cfg::parse_command_line(args);
  if (!pc) return "l4lb-replay: " + cfg::to_string(pc.error()) + "\n";
  if (pc->change() || std::holds_alternative<cfg::restore_request>(pc->what))
    return "l4lb-replay: --list takes listings and saves only\n";
  d.expire_all(now);  // counts as they are at the end of the capture
  cfg::ipvsadm_context ctx{control};
  ctx.now = now;
  const cfg::ipvsadm_result r = cfg::run_ipvsadm(ctx, args);
  if (r.exit_status != cfg::exit_code::ok) return "l4lb-replay: " + r.err;
  return r.out;
}

}  // namespace rules
