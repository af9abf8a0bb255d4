// Helpers shared by the config/ tests: parse a line and get its change, build a configuration
// from a rules text, list it.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "l4lb/config/grammar.hpp"
#include "l4lb/config/listing.hpp"
#include "l4lb/config/rules.hpp"
#include "l4lb/director/configuration.hpp"

namespace l4lb::config::test {

/// The change a command line parses to (fails the test when it does not parse or is no change).
inline director::command change_of(std::string_view line) {
  auto r = parse_command_line(line);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : to_string(r.error())));
  const director::command* c = r->change();
  REQUIRE(c != nullptr);
  return *c;
}

/// The full error text a command line is refused with ("" when it parses).
inline std::string error_of(std::string_view line) {
  auto r = parse_command_line(line);
  return r ? std::string() : to_string(r.error());
}

/// A configuration loaded from rules text (fails the test on error).
inline director::configuration load(std::string_view rules,
                                    const director::configuration& base = {}) {
  auto r = load_rules(base, rules);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : to_string(r.error())));
  return std::move(r->config);
}

inline std::string listing(const listing_input& in, const list_request& r) {
  std::string out;
  const auto e = write_listing(out, in, r);
  REQUIRE_MESSAGE(!e.has_value(), (e ? to_string(*e) : std::string()));
  return out;
}

inline std::string listing(const director::configuration& cfg, std::string_view flags) {
  auto p = parse_command_line(flags);
  REQUIRE_MESSAGE(p.has_value(), (p ? std::string() : to_string(p.error())));
  const auto* req = std::get_if<list_request>(&p->what);
  REQUIRE(req != nullptr);
  return listing(listing_input{cfg}, *req);
}

}  // namespace l4lb::config::test
