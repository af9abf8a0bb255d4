// IPVS's TCP transition table, active states and default timeouts transcribed as text from
// ../shared/ipvs-notes.md section 3.3/3.4 (the spec), independently of l4lb/conn/tcp_state.hpp,
// so the tests compare the library against the notes and not against itself.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "l4lb/conn/tcp_state.hpp"

namespace conn_reference {

using l4lb::conn::tcp_state;

// Column order of the notes' table.
inline constexpr std::array<std::string_view, 11> abbrev = {"NO", "ES", "SS", "SR", "FW", "TW",
                                                            "CL", "CW", "LA", "LI", "SA"};

struct row {
  const char* dir;    // INPUT, OUTPUT, INPUT_ONLY
  const char* event;  // syn, fin, ack, rst
  const char* cells;  // next state for NO ES SS SR FW TW CL CW LA LI SA
};

// ipvs-notes 3.3, "Transition table", copied row by row.
inline constexpr row normal_rows[] = {
    {"INPUT", "syn", "SR ES ES SR SR SR SR SR SR SR SR"},
    {"INPUT", "fin", "CL CW SS TW TW TW CL CW LA LI TW"},
    {"INPUT", "ack", "ES ES SS ES FW TW CL CW CL LI ES"},
    {"INPUT", "rst", "CL CL CL SR CL CL CL CL LA LI SR"},
    {"OUTPUT", "syn", "SS ES SS SR SS SS SS SS SS LI SR"},
    {"OUTPUT", "fin", "TW FW SS TW FW TW CL TW LA LI TW"},
    {"OUTPUT", "ack", "ES ES SS ES FW TW CL CW LA ES ES"},
    {"OUTPUT", "rst", "CL CL SS CL CL TW CL CL CL CL CL"},
    {"INPUT_ONLY", "syn", "SR ES ES SR SR SR SR SR SR SR SR"},
    {"INPUT_ONLY", "fin", "CL FW SS TW FW TW CL CW LA LI TW"},
    {"INPUT_ONLY", "ack", "ES ES SS ES FW TW CL CW CL LI ES"},
    {"INPUT_ONLY", "rst", "CL CL CL SR CL CL CL CL LA LI CL"},
};

// ipvs-notes 3.3: "Defense table (secure_tcp) differs only in: INPUT syn SA→SA, fin SA→SA, ack
// SR→SR and SA→SA, rst SA→CL; OUTPUT syn SR→SA, SA→SA; INPUT_ONLY syn from
// NO/FW/TW/CL/CW/LA/LI/SA → SA."
struct difference {
  const char* dir;
  const char* event;
  const char* from;
  const char* to;
};
inline constexpr difference secure_differences[] = {
    {"INPUT", "syn", "SA", "SA"},      {"INPUT", "fin", "SA", "SA"},
    {"INPUT", "ack", "SR", "SR"},      {"INPUT", "ack", "SA", "SA"},
    {"INPUT", "rst", "SA", "CL"},      {"OUTPUT", "syn", "SR", "SA"},
    {"OUTPUT", "syn", "SA", "SA"},     {"INPUT_ONLY", "syn", "NO", "SA"},
    {"INPUT_ONLY", "syn", "FW", "SA"}, {"INPUT_ONLY", "syn", "TW", "SA"},
    {"INPUT_ONLY", "syn", "CL", "SA"}, {"INPUT_ONLY", "syn", "CW", "SA"},
    {"INPUT_ONLY", "syn", "LA", "SA"}, {"INPUT_ONLY", "syn", "LI", "SA"},
    {"INPUT_ONLY", "syn", "SA", "SA"},
};

inline tcp_state parse_state(std::string_view s) {
  for (std::size_t i = 0; i < abbrev.size(); ++i)
    if (abbrev[i] == s) return static_cast<tcp_state>(i);
  throw std::logic_error("bad state abbreviation");
}

inline constexpr std::array<std::string_view, 3> dir_names = {"INPUT", "OUTPUT", "INPUT_ONLY"};
inline constexpr std::array<std::string_view, 4> event_names = {"syn", "fin", "ack", "rst"};

// table[dir][event][state]
using table = std::array<std::array<std::array<tcp_state, 11>, 4>, 3>;

inline std::size_t index_of(const auto& names, std::string_view s) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return i;
  throw std::logic_error("bad name");
}

inline table build_normal() {
  table t{};
  for (const row& r : normal_rows) {
    auto& cells = t[index_of(dir_names, r.dir)][index_of(event_names, r.event)];
    std::string_view rest = r.cells;
    for (std::size_t col = 0; col < 11; ++col) {
      cells[col] = parse_state(rest.substr(0, 2));
      rest.remove_prefix(rest.size() > 2 ? 3 : 2);
    }
  }
  return t;
}

inline table build_secure() {
  table t = build_normal();
  for (const difference& d : secure_differences)
    t[index_of(dir_names, d.dir)][index_of(event_names, d.event)]
     [static_cast<std::size_t>(parse_state(d.from))] = parse_state(d.to);
  return t;
}

inline const table& normal() {
  static const table t = build_normal();
  return t;
}
inline const table& secure() {
  static const table t = build_secure();
  return t;
}

// ipvs-notes 3.3: "Event from TCP flags, priority RST > SYN > FIN > ACK; a segment with none of
// these → next state is CLOSE". Returns -1 for "none".
inline int event_index(std::uint8_t flags) {
  if (flags & 0x04) return 3;
  if (flags & 0x02) return 0;
  if (flags & 0x01) return 1;
  if (flags & 0x10) return 2;
  return -1;
}

inline tcp_state next(std::size_t dir, std::uint8_t flags, tcp_state cur, bool secure_tcp = false) {
  const int e = event_index(flags);
  if (e < 0) return tcp_state::close;
  return (secure_tcp ? secure() : normal())[dir][static_cast<std::size_t>(e)]
                                            [static_cast<std::size_t>(cur)];
}

// ipvs-notes 3.4: "Active states = ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK; all others inactive."
inline bool active(tcp_state s) {
  return s == tcp_state::established || s == tcp_state::syn_sent || s == tcp_state::syn_recv ||
         s == tcp_state::synack;
}

// ipvs-notes 3.3 default TCP timeouts (s): NONE 2, ESTABLISHED 900, SYN_SENT 120, SYN_RECV 60,
// FIN_WAIT 120, TIME_WAIT 120, CLOSE 10, CLOSE_WAIT 60, LAST_ACK 30, LISTEN 120, SYNACK 120.
inline constexpr std::array<std::uint32_t, 11> default_tcp_timeouts = {2,   900, 120, 60, 120, 120,
                                                                       10,  60,  30,  120, 120};

}  // namespace conn_reference
