// One ipvsadm invocation against a running director's control plane: what `l4lbadm` sends to
// `l4lb-director` and what `l4lb-replay --list` asks for. A change, a listing (-L and all its
// flags), a save (-S) or a restore (-R) gives ipvsadm's standard output, its error text and its
// exit status, so scripts written for ipvsadm read l4lb the same way.
//
// Design notes
// - -R applies the whole input as one change (load_rules + apply_all): ipvsadm applies line by
//   line and leaves the lines before a bad one applied; l4lb changes nothing and names the line.
//   This is the one place l4lbadm differs, on purpose: a half-applied rule file is a state no
//   operator asked for.
// - -Lc / -Lnc read every director's connection table (director_control::connections), which the
//   caller must do while the directors are not processing (a single-threaded application, or
//   workers paused at a burst boundary): `before_connections` is called first for that.
// - A refused change prints ipvsadm's sentence alone ("Service already exists"), as ipvsadm does;
//   a line that does not parse prints where and why (column, token), which ipvsadm's popt
//   messages do not, since nobody matches those texts.
// - Control plane only: allocates, takes the control mutex, never touches a data path.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "l4lb/config/error.hpp"
#include "l4lb/config/grammar.hpp"
#include "l4lb/config/listing.hpp"
#include "l4lb/config/rules.hpp"
#include "l4lb/director/control.hpp"

namespace l4lb::config {

/// What ipvsadm would have printed, and its exit status.
struct ipvsadm_result {
  int exit_status = exit_code::ok;
  std::string out;  ///< standard output
  std::string err;  ///< standard error (one line per error, newline-terminated)
};

/// Where one invocation runs.
struct ipvsadm_context {
  director::director_control& control;
  std::int64_t now = 0;          ///< for -Lnc's expire column and templates' state
  std::string_view input{};      ///< -R's standard input (the rules text)
  std::uint32_t conn_table_size = 4096;  ///< the banner's (size=N), the kernel's default
  const name_resolver* resolver = nullptr;
  /// Called before the connection tables are read (-Lc): pause or quiesce the directors.
  std::function<void()> before_connections{};
  /// Called after them (resume the directors).
  std::function<void()> after_connections{};
};

namespace detail {

inline ipvsadm_result failed(const error& e) {
  return {e.exit_status, {}, to_string(e) + "\n"};
}

}  // namespace detail

/// `ipvsadm ARGS` (without the program name) run against ctx.control.
[[nodiscard]] inline ipvsadm_result run_ipvsadm(const ipvsadm_context& ctx,
                                                std::span<const std::string_view> args) {
  auto pc = parse_command_line(args, ctx.resolver);
  if (!pc) return detail::failed(pc.error());
  if (const director::command* c = pc->change()) {
    if (auto e = ctx.control.apply(*c); e != director::config_error::ok) {
      // ipvsadm prints the sentence alone (ipvs_strerror, or fail()'s text).
      const error err = apply_error(e, *pc, join_arguments(args));
      return {err.exit_status, {}, err.message + "\n"};
    }
    return {};
  }
  if (std::holds_alternative<restore_request>(pc->what)) {
    auto r = load_rules(ctx.control.config(), ctx.input, ctx.resolver);
    if (!r) return detail::failed(r.error());
    const director::apply_result a = ctx.control.apply_all(r->applied);
    if (!a.ok()) {
      // load_rules validated against the same configuration; only a change made in between by
      // another client can get here.
      return detail::failed(error{0, 0, {}, std::string(director::to_string(a.error)),
                                  exit_code::rejected});
    }
    return {};
  }
  ipvsadm_result res;
  const director::configuration config = ctx.control.config();
  if (const auto* save = std::get_if<save_request>(&pc->what)) {
    save_options o;
    o.numeric = save->numeric;
    save_rules(res.out, config, o);
    return res;
  }
  const auto& list = std::get<list_request>(pc->what);
  std::vector<director::conn_row> rows;
  if (list.connections) {
    if (ctx.before_connections) ctx.before_connections();
    rows = ctx.control.connections(ctx.now);
    if (ctx.after_connections) ctx.after_connections();
  }
  listing_input in{config};
  in.service_status = [&](std::uint32_t id) { return ctx.control.service_stats(id); };
  in.dest_status = [&](std::uint32_t h) { return ctx.control.dest_stats(h); };
  in.connections = rows;
  in.conn_table_size = ctx.conn_table_size;
  in.resolver = ctx.resolver;
  if (auto e = write_listing(res.out, in, list)) return detail::failed(*e);
  return res;
}

/// The same, from one string split on whitespace ("-Ln --stats").
[[nodiscard]] inline ipvsadm_result run_ipvsadm(const ipvsadm_context& ctx, std::string_view line) {
  std::vector<std::string_view> args;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\n') ++j;
    if (j > i) args.push_back(line.substr(i, j - i));
    i = j;
  }
  return run_ipvsadm(ctx, args);
}

}  // namespace l4lb::config
