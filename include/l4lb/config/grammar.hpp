// The ipvsadm command grammar: one tokenizer and parser for a command line (argv, or one string
// split on whitespace) and for a line of a rules file (ipvsadm -R / -S format). The result is a
// director::command for a change (the validation with IPVS's semantics happens when it is applied
// to a director::configuration), or a listing / save / restore request with its flags; or an
// error naming the column, the token and what was expected. No I/O: service and host names are
// resolved only through a name_resolver the caller may pass (the library never reads
// /etc/services or /etc/hosts itself; l4lbadm may pass one built on getservbyname & co.).
//
// Followed from ipvsadm 1.31 (ipvsadm.c): parse_options (popt's option table, the option forms
// "-Ln", "-w5", "--weight=5", -p's optional argument, "--"), process_options (defaults:
// weight 1, -g, netmask /32, scheduler wlc; "-e/-E send a complete description", ipvs-notes 5.7;
// the port of a -g/-i server is the service's), generic_opt_check (the commands_v_options table
// and its messages), tunnel_opt_check (tunnel_types_v_options), parse_service, parse_netmask,
// parse_timeout, parse_fwmark, parse_sched_flags, string_to_number; config_stream_read for the
// tokens of a rules line (split on space, tab, CR; a token "ipvsadm" is skipped).
//
// Where l4lb differs from ipvsadm, on purpose:
// - IPv4 addresses and netmasks are dotted quads only (inet_aton's one-number and hexadecimal
//   forms are refused); host names need the resolver (ipvsadm: gethostbyname, IPv4 only, as
//   here).
// - In a rules line a token that starts with '#' starts a comment to the end of the line
//   (ipvsadm 1.31 means to, but its check looks at the wrong character, so `ipvsadm -R` refuses
//   such lines); blank lines are skipped as ipvsadm does.
// - Extensions, as long options ipvsadm does not have: `--fullnat` (a fourth forwarding method;
//   ipvsadm's letters -b and -f are taken), `--local-address ADDR` (repeatable, FullNAT's source
//   addresses toward the server), `--mtu N` (per real server, 0 = none), `--sched-opt
//   NAME=VALUE[,NAME=VALUE...]` (with -A / -E: the scheduler's named options, e.g.
//   "table-bits=12" for sh/dh or "expiration=3600" for lblc; any_scheduler.hpp lists them and
//   each is checked against the scheduler given, as -b is); after -s, l4lb's own schedulers
//   (swrr, ring, wmh, twos) are accepted like the kernel's names.
// - The sync daemon is not part of l4lb: --start-daemon / --stop-daemon are refused, --daemon
//   lists nothing (as ipvsadm with no daemon running). -h and -v are refused (l4lbadm's own).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "l4lb/config/error.hpp"
#include "l4lb/director/model.hpp"
#include "l4lb/expected.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::config {

/// Optional name lookups (ipvsadm: gethostbyname, getservbyname, gethostbyaddr, getservbyport).
/// Any member may be empty; an empty or failing lookup means "no name", and listings then print
/// numbers exactly as ipvsadm does when a lookup fails.
struct name_resolver {
  /// "www.example" -> its IPv4 address (ipvsadm's host_to_addr takes IPv4 only).
  std::function<std::optional<wire::ipv4_address>(std::string_view host)> host_to_address;
  /// "http" for protocol 6 -> 80.
  std::function<std::optional<std::uint16_t>(std::string_view name, std::uint8_t protocol)>
      service_to_port;
  /// address -> host name, for listings without -n.
  std::function<std::optional<std::string>(const wire::ip_address&)> address_to_host;
  /// 80 for protocol 6 -> "http", for listings without -n.
  std::function<std::optional<std::string>(std::uint16_t port, std::uint8_t protocol)>
      port_to_service;
};

/// -L / -l and its flags.
struct list_request {
  bool numeric = false;          ///< -n
  bool connections = false;      ///< -c
  bool stats = false;            ///< --stats
  bool rate = false;             ///< --rate
  bool thresholds = false;       ///< --thresholds
  bool persistent_conn = false;  ///< --persistent-conn
  bool nosort = false;           ///< --nosort
  bool exact = false;            ///< --exact / -X
  bool timeout = false;          ///< --timeout
  bool daemon = false;           ///< --daemon
  bool tun_info = false;         ///< --tun-info
  /// -L -t VIP:port lists that service only.
  std::optional<director::service_key> service = std::nullopt;
  friend bool operator==(const list_request&, const list_request&) = default;
};

/// -S [-n].
struct save_request {
  bool numeric = false;
  friend bool operator==(const save_request&, const save_request&) = default;
};

/// -R: the caller reads the rules text and hands it to load_rules (rules.hpp).
struct restore_request {
  friend bool operator==(const restore_request&, const restore_request&) = default;
};

/// What a command line asks for.
using action = std::variant<director::command, list_request, save_request, restore_request>;

/// Which token of a parsed line an apply error points at.
enum class anchor_role : std::uint8_t {
  command,
  service,
  real_server,
  scheduler,
  sched_flags,
  persistent,
  netmask,
  weight,
  u_threshold,
  l_threshold,
  forward,
  tun_type,
  pe,
  ops,
  local_address,
  mtu,
  sched_options,
  count_,
};

/// A token's place: 1-based column and length in the parsed line (0 = absent).
struct anchor {
  std::uint32_t column = 0;
  std::uint32_t length = 0;
  friend bool operator==(const anchor&, const anchor&) = default;
};

struct parsed_command {
  action what;
  std::array<anchor, static_cast<std::size_t>(anchor_role::count_)> anchors{};

  [[nodiscard]] const anchor& at(anchor_role r) const noexcept {
    return anchors[static_cast<std::size_t>(r)];
  }
  /// The change, when the line is one (-A -E -D -C -a -e -d -Z --set).
  [[nodiscard]] const director::command* change() const noexcept {
    return std::get_if<director::command>(&what);
  }
};

namespace detail {

/// One token and its 1-based column in the line (the argv form counts columns in the arguments
/// joined by single spaces).
struct token {
  std::string_view text;
  std::uint32_t column = 0;
};

/// config_stream_read's split: space, tab, CR and LF separate tokens; "ipvsadm" tokens are
/// skipped; with `comments`, a token that starts with '#' ends the line.
inline void split_line(std::string_view line, bool comments, std::vector<token>& out) {
  out.clear();
  std::size_t i = 0;
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    const std::string_view t = line.substr(start, i - start);
    if (comments && t.front() == '#') break;
    if (t == "ipvsadm") continue;
    out.push_back({t, static_cast<std::uint32_t>(start + 1)});
  }
}

// ---- ipvsadm's commands and options (ipvsadm.c: CMD_*, OPT_*, cmdnames, optnames)

enum class cmd : std::uint8_t {
  none,
  add,
  edit,
  del,
  flush,
  list,
  adddest,
  deldest,
  editdest,
  timeout,
  startdaemon,
  stopdaemon,
  restore,
  save,
  zero,
};
inline constexpr std::size_t command_count = 14;

inline constexpr std::array<std::string_view, command_count> command_names = {
    "add-service", "edit-service", "delete-service", "flush",        "list",
    "add-server",  "delete-server", "edit-server",   "set",          "start-daemon",
    "stop-daemon", "restore",       "save",          "zero"};

enum class opt : std::uint8_t {
  numeric,
  connection,
  service,
  scheduler,
  persistent,
  netmask,
  server,
  forward,
  weight,
  u_threshold,
  l_threshold,
  mcast,
  timeout,
  daemon,
  stats,
  rate,
  thresholds,
  persistent_conn,
  nosort,
  syncid,
  exact,
  ops,
  pe,
  sched_flags,
  mcast_group,
  mcast_port,
  mcast_ttl,
  sync_maxlen,
  tun_info,
  tun_type,
  tun_port,
  tun_nocsum,
  tun_csum,
  tun_remcsum,
  local_address,  // ours
  mtu,            // ours
  sched_opt,      // ours
};
inline constexpr std::size_t option_count = 37;

inline constexpr std::array<std::string_view, option_count> option_names = {
    "numeric",     "connection", "service-address", "scheduler",   "persistent",
    "netmask",     "real-server", "forwarding-method", "weight",    "u-threshold",
    "l-threshold", "mcast-interface", "timeout",    "daemon",      "stats",
    "rate",        "thresholds", "persistent-conn", "nosort",      "syncid",
    "exact",       "ops",        "pe",              "sched-flags", "mcast-group",
    "mcast-port",  "mcast-ttl",  "sync-maxlen",     "tun-info",    "tun-type",
    "tun-port",    "tun-nocsum", "tun-csum",        "tun-remcsum", "local-address",
    "mtu",         "sched-opt"};

// commands_v_options: per command, per option: '+' required, 'x' illegal, '1' exclusive,
// ' ' optional. The first 34 columns are ipvsadm 1.31's; the last three are ours:
// local-address and mtu belong to -a / -e only, sched-opt to -A / -E only.
//                          0         1         2         3
//                          0123456789012345678901234567890123456
inline constexpr std::array<std::string_view, command_count> legal_options = {
    /* add */            "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxxx ",
    /* edit */           "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxxx ",
    /* delete */         "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /* flush */          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /* list */           " 11xxxxxxxxx11       xxxxxxx xxxxxxxx",
    /* add-server */     "xx+xxx+    xxxxxxxxxxxxxxxxxx       x",
    /* delete-server */  "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /* edit-server */    "xx+xxx+    xxxxxxxxxxxxxxxxxx       x",
    /* set */            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /* start-daemon */   "xxxxxxxxxxx xxxxxxx xxxx    xxxxxxxxx",
    /* stop-daemon */    "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxxxx",
    /* restore */        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /* save */           " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    /* zero */           "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
};

consteval bool legal_table_ok() {
  for (auto row : legal_options)
    if (row.size() != option_count) return false;
  return true;
}
static_assert(legal_table_ok());

// ---- the option table (parse_options' poptOption table, plus ours)

enum class tag : std::uint8_t {
  // commands
  add_service, edit_service, delete_service, clear, list, zero, add_server, edit_server,
  delete_server, set, help, version, restore, save, start_daemon, stop_daemon,
  // options
  tcp_service, udp_service, sctp_service, fwmark_service, scheduler, persistent, netmask,
  real_server, masquerading, ipip, gatewaying, weight, u_threshold, l_threshold, numeric,
  connection, mcast_interface, syncid, timeout, daemon, stats, rate, thresholds,
  persistent_conn, nosort, sort, exact, ipv6, ops, pe, sched_flags, mcast_group, mcast_port,
  mcast_ttl, sync_maxlen, tun_info, tun_type, tun_port, tun_nocsum, tun_csum, tun_remcsum,
  fullnat, local_address, mtu, sched_opt,
};

enum class arg_kind : std::uint8_t { none, required, optional };

struct option_spec {
  std::string_view long_name;
  char short_name;
  arg_kind arg;
  tag id;
};

inline constexpr option_spec option_table[] = {
    {"add-service", 'A', arg_kind::none, tag::add_service},
    {"edit-service", 'E', arg_kind::none, tag::edit_service},
    {"delete-service", 'D', arg_kind::none, tag::delete_service},
    {"clear", 'C', arg_kind::none, tag::clear},
    {"list", 'L', arg_kind::none, tag::list},
    {"", 'l', arg_kind::none, tag::list},
    {"zero", 'Z', arg_kind::none, tag::zero},
    {"add-server", 'a', arg_kind::none, tag::add_server},
    {"edit-server", 'e', arg_kind::none, tag::edit_server},
    {"delete-server", 'd', arg_kind::none, tag::delete_server},
    {"set", '\0', arg_kind::none, tag::set},
    {"help", 'h', arg_kind::none, tag::help},
    {"version", 'v', arg_kind::none, tag::version},
    {"restore", 'R', arg_kind::none, tag::restore},
    {"save", 'S', arg_kind::none, tag::save},
    {"start-daemon", '\0', arg_kind::required, tag::start_daemon},
    {"stop-daemon", '\0', arg_kind::required, tag::stop_daemon},
    {"tcp-service", 't', arg_kind::required, tag::tcp_service},
    {"udp-service", 'u', arg_kind::required, tag::udp_service},
    {"sctp-service", '\0', arg_kind::required, tag::sctp_service},
    {"fwmark-service", 'f', arg_kind::required, tag::fwmark_service},
    {"scheduler", 's', arg_kind::required, tag::scheduler},
    {"persistent", 'p', arg_kind::optional, tag::persistent},
    {"netmask", 'M', arg_kind::required, tag::netmask},
    {"real-server", 'r', arg_kind::required, tag::real_server},
    {"masquerading", 'm', arg_kind::none, tag::masquerading},
    {"ipip", 'i', arg_kind::none, tag::ipip},
    {"gatewaying", 'g', arg_kind::none, tag::gatewaying},
    {"weight", 'w', arg_kind::required, tag::weight},
    {"u-threshold", 'x', arg_kind::required, tag::u_threshold},
    {"l-threshold", 'y', arg_kind::required, tag::l_threshold},
    {"numeric", 'n', arg_kind::none, tag::numeric},
    {"connection", 'c', arg_kind::none, tag::connection},
    {"mcast-interface", '\0', arg_kind::required, tag::mcast_interface},
    {"syncid", '\0', arg_kind::required, tag::syncid},
    {"timeout", '\0', arg_kind::none, tag::timeout},
    {"daemon", '\0', arg_kind::none, tag::daemon},
    {"stats", '\0', arg_kind::none, tag::stats},
    {"rate", '\0', arg_kind::none, tag::rate},
    {"thresholds", '\0', arg_kind::none, tag::thresholds},
    {"persistent-conn", '\0', arg_kind::none, tag::persistent_conn},
    {"nosort", '\0', arg_kind::none, tag::nosort},
    {"sort", '\0', arg_kind::none, tag::sort},
    {"exact", 'X', arg_kind::none, tag::exact},
    {"ipv6", '6', arg_kind::none, tag::ipv6},
    {"ops", 'o', arg_kind::none, tag::ops},
    {"pe", '\0', arg_kind::required, tag::pe},
    {"sched-flags", 'b', arg_kind::required, tag::sched_flags},
    {"mcast-group", '\0', arg_kind::required, tag::mcast_group},
    {"mcast-port", '\0', arg_kind::required, tag::mcast_port},
    {"mcast-ttl", '\0', arg_kind::required, tag::mcast_ttl},
    {"sync-maxlen", '\0', arg_kind::required, tag::sync_maxlen},
    {"tun-info", '\0', arg_kind::none, tag::tun_info},
    {"tun-type", '\0', arg_kind::required, tag::tun_type},
    {"tun-port", '\0', arg_kind::required, tag::tun_port},
    {"tun-nocsum", '\0', arg_kind::none, tag::tun_nocsum},
    {"tun-csum", '\0', arg_kind::none, tag::tun_csum},
    {"tun-remcsum", '\0', arg_kind::none, tag::tun_remcsum},
    // l4lb's extensions (long options only).
    {"fullnat", '\0', arg_kind::none, tag::fullnat},
    {"local-address", '\0', arg_kind::required, tag::local_address},
    {"mtu", '\0', arg_kind::required, tag::mtu},
    {"sched-opt", '\0', arg_kind::required, tag::sched_opt},
};

inline const option_spec* find_long(std::string_view name) noexcept {
  for (const auto& o : option_table)
    if (!o.long_name.empty() && o.long_name == name) return &o;
  return nullptr;
}
inline const option_spec* find_short(char c) noexcept {
  for (const auto& o : option_table)
    if (o.short_name == c) return &o;
  return nullptr;
}

/// The longest -p and --set value (ipvsadm's MAX_TIMEOUT: 31 days).
inline constexpr std::int64_t max_timeout = 86400 * 31;

/// string_to_number: strtol's form (an optional sign, then decimal digits, nothing after) in
/// [min, max].
[[nodiscard]] inline std::optional<std::int64_t> to_number(std::string_view s, std::int64_t min,
                                                           std::int64_t max) noexcept {
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i == s.size()) return std::nullopt;
  std::int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    if (v > (std::int64_t{1} << 40)) return std::nullopt;  // far outside any range used here
    v = v * 10 + (s[i] - '0');
  }
  if (negative) v = -v;
  if (v < min || v > max) return std::nullopt;
  return v;
}

inline void append_number(std::string& out, std::int64_t v) { out += std::to_string(v); }

// One option occurrence: its spec, the option's own token (for messages) and its value.
struct occurrence {
  const option_spec* spec = nullptr;
  token option;       // as written: "-w", "--weight", or the cluster's letter "-n"
  token value;        // empty text and column 0 when there is none
  bool has_value = false;
};

/// The state process_options builds (ipvs_command_entry) plus where each piece came from.
class line_parser {
 public:
  line_parser(std::span<const token> tokens, const name_resolver* resolver)
      : tokens_(tokens), resolver_(resolver) {}

  expected<parsed_command, error> run() {
    if (tokens_.empty()) {  // ipvsadm without arguments lists the table
      parsed_command pc;
      pc.what = list_request{};
      return pc;
    }
    if (!scan()) return unexpected{err_};
    if (!finish()) return unexpected{err_};
    return std::move(out_);
  }

 private:
  // ------------------------------------------------------------------ errors and anchors
  bool fail(const token& t, std::string message, int status = exit_code::bad_arguments) {
    err_ = error{0, t.column, std::string(t.text), std::move(message), status};
    return false;
  }
  void mark(anchor_role r, const token& t) {
    out_.anchors[static_cast<std::size_t>(r)] = {t.column,
                                                 static_cast<std::uint32_t>(t.text.size())};
  }
  static token sub(const token& t, std::size_t from, std::size_t len = std::string_view::npos) {
    return {t.text.substr(from, len), static_cast<std::uint32_t>(t.column + from)};
  }

  // ------------------------------------------------------------------ pass 1: popt
  // Splits the tokens into option occurrences (short clusters "-Ln", attached values "-w5",
  // "--weight=5", -p's optional value) and positional arguments, and runs each option through
  // the same per-option handling as parse_options, in order.
  bool scan() {
    bool options_done = false;
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const token& t = tokens_[i];
      const std::string_view s = t.text;
      if (options_done || s.size() < 2 || s[0] != '-') {
        positional_.push_back(t);
        continue;
      }
      if (s == "--") {
        options_done = true;
        continue;
      }
      if (s[1] == '-') {  // --long or --long=value
        const std::size_t eq = s.find('=');
        const std::string_view name = s.substr(2, eq == std::string_view::npos ? eq : eq - 2);
        const option_spec* spec = find_long(name);
        const token opt_tok = eq == std::string_view::npos ? t : sub(t, 0, eq);
        if (!spec) return fail(opt_tok, "unknown option", exit_code::rejected);
        occurrence o{spec, opt_tok, {}, false};
        if (eq != std::string_view::npos) {
          if (spec->arg == arg_kind::none)
            return fail(opt_tok, "option does not take an argument", exit_code::rejected);
          o.value = sub(t, eq + 1);
          o.has_value = true;
        } else if (!take_value(o, i)) {
          return false;
        }
        if (!handle(o)) return false;
        continue;
      }
      // A cluster of short options: each letter until one that takes a value, which takes the
      // rest of the cluster or the next token.
      for (std::size_t k = 1; k < s.size(); ++k) {
        const option_spec* spec = find_short(s[k]);
        const token letter{s.substr(k, 1), static_cast<std::uint32_t>(t.column + k)};
        if (!spec) {  // popt names it "-q" also inside a cluster
          err_ = error{0, letter.column, "-" + std::string(letter.text), "unknown option",
                       exit_code::rejected};
          return false;
        }
        const token opt_tok = k == 1 ? sub(t, 0, 2) : letter;
        occurrence o{spec, opt_tok, {}, false};
        if (spec->arg != arg_kind::none) {
          if (k + 1 < s.size()) {
            o.value = sub(t, k + 1);
            o.has_value = true;
          } else if (!take_value(o, i)) {
            return false;
          }
          if (!handle(o)) return false;
          break;
        }
        if (!handle(o)) return false;
      }
    }
    if (command_ == cmd::none) {
      return fail(positional_.empty() ? tokens_.front() : positional_.front(),
                  "expected a command first (-A, -E, -D, -C, -R, -S, -a, -e, -d, -L, -Z or --set)",
                  exit_code::rejected);
    }
    return true;
  }

  // The next token as the value of o (required: always; optional: unless it starts with '-').
  bool take_value(occurrence& o, std::size_t& i) {
    if (o.spec->arg == arg_kind::none) return true;
    if (i + 1 < tokens_.size()) {
      const token& next = tokens_[i + 1];
      if (o.spec->arg == arg_kind::required || next.text.empty() || next.text[0] != '-') {
        o.value = next;
        o.has_value = true;
        ++i;
        return true;
      }
    }
    if (o.spec->arg == arg_kind::required)
      return fail(o.option, "missing argument", exit_code::rejected);
    return true;
  }

  bool set_command(const occurrence& o, cmd c) {
    if (command_ != cmd::none) return fail(o.option, "multiple commands specified");
    command_ = c;
    command_token_ = o.option;
    mark(anchor_role::command, o.option);
    return true;
  }
  bool set_option(const occurrence& o, opt which) {
    const std::uint64_t bit = std::uint64_t{1} << static_cast<unsigned>(which);
    if (options_ & bit) {
      std::string m = "multiple '";
      m += option_names[static_cast<std::size_t>(which)];
      m += "' options specified";
      return fail(o.option, std::move(m));
    }
    options_ |= bit;
    return true;
  }
  [[nodiscard]] bool has(opt which) const noexcept {
    return (options_ & (std::uint64_t{1} << static_cast<unsigned>(which))) != 0;
  }

  // parse_service: "host[:port]", "[v6]:port", or a bare IPv6 address (port 0).
  // Returns false with the error set; `with_port` tells whether a port was written.
  bool parse_endpoint(const token& t, std::uint8_t protocol, wire::ip_address& addr,
                      std::uint16_t& port, bool& with_port) {
    const std::string_view s = t.text;
    bool digits_only = true;
    for (char c : s) digits_only = digits_only && c >= '0' && c <= '9';
    if (digits_only) return fail(t, "expected host[:port] or [IPv6]:port");
    with_port = false;
    token host = t, port_tok{};
    if (s[0] == '[') {
      const std::size_t close = s.find(']');
      if (close == std::string_view::npos) return fail(t, "missing ']' after the IPv6 address");
      if (close + 1 >= s.size() || s[close + 1] != ':')
        return fail(t, "expected ':' and a port after ']'");
      host = sub(t, 1, close - 1);
      port_tok = sub(t, close + 2);
      auto a = wire::ipv6_address::parse(host.text);
      if (!a) return fail(host, "not an IPv6 address");
      addr = *a;
      with_port = true;
    } else if (auto a6 = wire::ipv6_address::parse(s); a6 && s.find(':') != s.rfind(':')) {
      addr = *a6;  // a bare IPv6 address: no port
    } else {
      const std::size_t colon = s.rfind(':');
      if (colon != std::string_view::npos) {
        host = sub(t, 0, colon);
        port_tok = sub(t, colon + 1);
        with_port = true;
      }
      if (auto a4 = wire::ipv4_address::parse(host.text)) {
        addr = *a4;
      } else if (resolver_ && resolver_->host_to_address && !host.text.empty() &&
                 !looks_numeric(host.text)) {
        auto r = resolver_->host_to_address(host.text);
        if (!r) return fail(host, "unknown host name");
        addr = *r;
      } else {
        return fail(host, "not an IPv4 address");
      }
    }
    if (with_port) {
      if (auto n = to_number(port_tok.text, 0, 65535)) {
        port = static_cast<std::uint16_t>(*n);
      } else if (resolver_ && resolver_->service_to_port && !port_tok.text.empty() &&
                 !looks_numeric(port_tok.text)) {
        auto p = resolver_->service_to_port(port_tok.text, protocol);
        if (!p) return fail(port_tok, "unknown service name");
        port = *p;
      } else {
        return fail(port_tok, "not a port number (0-65535)");
      }
    }
    return true;
  }
  static bool looks_numeric(std::string_view s) noexcept {
    for (char c : s)
      if (!((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-')) return false;
    return true;
  }

  bool handle(const occurrence& o) {
    const token& v = o.value;
    switch (o.spec->id) {
      case tag::add_service: return set_command(o, cmd::add);
      case tag::edit_service: return set_command(o, cmd::edit);
      case tag::delete_service: return set_command(o, cmd::del);
      case tag::clear: return set_command(o, cmd::flush);
      case tag::list: return set_command(o, cmd::list);
      case tag::zero: return set_command(o, cmd::zero);
      case tag::add_server: return set_command(o, cmd::adddest);
      case tag::edit_server: return set_command(o, cmd::editdest);
      case tag::delete_server: return set_command(o, cmd::deldest);
      case tag::set: return set_command(o, cmd::timeout);
      case tag::restore: return set_command(o, cmd::restore);
      case tag::save: return set_command(o, cmd::save);
      case tag::help:
      case tag::version:
      case tag::start_daemon:
      case tag::stop_daemon:
        return fail(o.option, "not supported by l4lb", exit_code::rejected);
      default: break;
    }
    // ipvsadm: the first option must be a command (poptGetNextOpt, then tryhelp_exit).
    if (command_ == cmd::none)
      return fail(o.option,
                  "expected a command first (-A, -E, -D, -C, -R, -S, -a, -e, -d, -L, -Z or --set)",
                  exit_code::rejected);
    switch (o.spec->id) {
      case tag::tcp_service:
      case tag::udp_service:
      case tag::sctp_service: {
        if (!set_option(o, opt::service)) return false;
        protocol_ = o.spec->id == tag::tcp_service   ? wire::ip_proto::tcp
                    : o.spec->id == tag::udp_service ? wire::ip_proto::udp
                                                     : wire::ip_proto::sctp;
        bool with_port = false;
        if (!parse_endpoint(v, protocol_, vaddr_, vport_, with_port)) return false;
        if (vaddr_.is_v6()) netmask_ = 128;
        mark(anchor_role::service, v);
        return true;
      }
      case tag::fwmark_service: {
        if (!set_option(o, opt::service)) return false;
        const auto m = to_number(v.text, 1, 0xFFFF'FFFFLL);
        if (!m) return fail(v, "invalid fwmark value `" + std::string(v.text) +
                                   "' specified (1-4294967295)");
        fwmark_ = static_cast<std::uint32_t>(*m);
        vaddr_ = wire::ipv4_address{};
        protocol_ = wire::ip_proto::tcp;  // ipvsadm: "a sane value, even though it is not used"
        mark(anchor_role::service, v);
        return true;
      }
      case tag::ipv6:
        if (fwmark_ == 0) return fail(o.option, "-6 used before -f");
        vaddr_ = wire::ipv6_address{};
        netmask_ = 128;
        return true;
      case tag::scheduler:
        if (!set_option(o, opt::scheduler)) return false;
        scheduler_ = v.text;
        mark(anchor_role::scheduler, v);
        return true;
      case tag::persistent: {
        if (!set_option(o, opt::persistent)) return false;
        persistent_ = true;
        mark(anchor_role::persistent, o.has_value ? v : o.option);
        if (!o.has_value) {
          timeout_ = 360;  // IPVS_SVC_PERSISTENT_TIMEOUT
          return true;
        }
        const auto n = to_number(v.text, 1, max_timeout);
        if (!n) return fail(v, "invalid timeout value `" + std::string(v.text) +
                                   "' specified (1-2678400)");
        timeout_ = static_cast<std::uint32_t>(*n);
        return true;
      }
      case tag::netmask: {
        if (!set_option(o, opt::netmask)) return false;
        mark(anchor_role::netmask, v);
        if (!vaddr_.is_v6()) {
          if (auto a = wire::ipv4_address::parse(v.text)) {
            netmask_ = a->to_u32();
          } else if (resolver_ && resolver_->host_to_address && !looks_numeric(v.text)) {
            auto r = resolver_->host_to_address(v.text);
            if (!r) return fail(v, "illegal virtual server persistent mask specified");
            netmask_ = r->to_u32();
          } else {
            return fail(v, "illegal virtual server persistent mask specified");
          }
        } else {
          const auto n = to_number(v.text, 1, 128);
          if (!n) return fail(v, "illegal ipv6 netmask specified (1-128)");
          netmask_ = static_cast<std::uint32_t>(*n);
        }
        return true;
      }
      case tag::real_server: {
        if (!set_option(o, opt::server)) return false;
        bool with_port = false;
        std::uint16_t port = vport_;
        if (!parse_endpoint(v, protocol_, daddr_, port, with_port)) return false;
        dport_ = with_port ? port : vport_;  // "copy vport to dport if not specified"
        mark(anchor_role::real_server, v);
        return true;
      }
      case tag::masquerading:
      case tag::ipip:
      case tag::gatewaying:
      case tag::fullnat:
        if (!set_option(o, opt::forward)) return false;
        method_ = o.spec->id == tag::masquerading ? director::forward_method::masq
                  : o.spec->id == tag::ipip       ? director::forward_method::tunnel
                  : o.spec->id == tag::gatewaying ? director::forward_method::route
                                                  : director::forward_method::full_nat;
        mark(anchor_role::forward, o.option);
        return true;
      case tag::weight: {
        if (!set_option(o, opt::weight)) return false;
        const auto n = to_number(v.text, 0, 65535);
        if (!n) return fail(v, "illegal weight specified (0-65535)");
        weight_ = static_cast<std::uint32_t>(*n);
        mark(anchor_role::weight, v);
        return true;
      }
      case tag::u_threshold:
      case tag::l_threshold: {
        const bool upper = o.spec->id == tag::u_threshold;
        if (!set_option(o, upper ? opt::u_threshold : opt::l_threshold)) return false;
        const auto n = to_number(v.text, 0, 0x7FFF'FFFF);
        if (!n)
          return fail(v, upper ? "illegal u_threshold specified (0-2147483647)"
                               : "illegal l_threshold specified (0-2147483647)");
        (upper ? upper_ : lower_) = static_cast<std::uint32_t>(*n);
        mark(upper ? anchor_role::u_threshold : anchor_role::l_threshold, v);
        return true;
      }
      case tag::numeric: return set_option(o, opt::numeric) && (list_.numeric = true);
      case tag::connection: return set_option(o, opt::connection) && (list_.connections = true);
      case tag::mcast_interface: return set_option(o, opt::mcast);
      case tag::syncid: return set_option(o, opt::syncid);
      case tag::mcast_group: return set_option(o, opt::mcast_group);
      case tag::mcast_port: return set_option(o, opt::mcast_port);
      case tag::mcast_ttl: return set_option(o, opt::mcast_ttl);
      case tag::sync_maxlen: return set_option(o, opt::sync_maxlen);
      case tag::timeout: return set_option(o, opt::timeout) && (list_.timeout = true);
      case tag::daemon: return set_option(o, opt::daemon) && (list_.daemon = true);
      case tag::stats: return set_option(o, opt::stats) && (list_.stats = true);
      case tag::rate: return set_option(o, opt::rate) && (list_.rate = true);
      case tag::thresholds: return set_option(o, opt::thresholds) && (list_.thresholds = true);
      case tag::persistent_conn:
        return set_option(o, opt::persistent_conn) && (list_.persistent_conn = true);
      case tag::nosort: return set_option(o, opt::nosort) && (list_.nosort = true);
      case tag::sort: return true;  // "does nothing, for backwards compatibility"
      case tag::exact: return set_option(o, opt::exact) && (list_.exact = true);
      case tag::tun_info: return set_option(o, opt::tun_info) && (list_.tun_info = true);
      case tag::ops:
        if (!set_option(o, opt::ops)) return false;
        ops_ = true;
        mark(anchor_role::ops, o.option);
        return true;
      case tag::pe:
        if (!set_option(o, opt::pe)) return false;
        pe_ = v.text;
        mark(anchor_role::pe, v);
        return true;
      case tag::sched_flags:
        if (!set_option(o, opt::sched_flags)) return false;
        sched_flags_ = v;
        mark(anchor_role::sched_flags, v);
        return true;
      case tag::sched_opt:
        if (!set_option(o, opt::sched_opt)) return false;
        sched_opt_ = v;
        mark(anchor_role::sched_options, v);
        return true;
      case tag::tun_type: {
        if (!set_option(o, opt::tun_type)) return false;
        if (v.text == "ipip") tun_type_ = forward::tunnel_type::ipip;
        else if (v.text == "gue") tun_type_ = forward::tunnel_type::gue;
        else if (v.text == "gre") tun_type_ = forward::tunnel_type::gre;
        else return fail(v, "illegal tunnel type specified (ipip, gue or gre)");
        mark(anchor_role::tun_type, v);
        return true;
      }
      case tag::tun_port: {
        if (!set_option(o, opt::tun_port)) return false;
        const auto n = to_number(v.text, 1, 65535);
        if (!n) return fail(v, "illegal tunnel port specified (1-65535)");
        tun_port_ = static_cast<std::uint16_t>(*n);
        return true;
      }
      case tag::tun_nocsum:
        return set_option(o, opt::tun_nocsum);
      case tag::tun_csum:
        if (!set_option(o, opt::tun_csum)) return false;
        tun_checksum_ = director::tunnel_checksum::checksum;
        return true;
      case tag::tun_remcsum:
        if (!set_option(o, opt::tun_remcsum)) return false;
        tun_checksum_ = director::tunnel_checksum::remote;
        return true;
      case tag::local_address: {
        options_ |= std::uint64_t{1} << static_cast<unsigned>(opt::local_address);  // repeatable
        auto a = wire::ip_address::parse(v.text);
        if (!a) return fail(v, "not an IPv4 or IPv6 address");
        locals_.push_back(*a);
        if (out_.at(anchor_role::local_address).column == 0) mark(anchor_role::local_address, v);
        return true;
      }
      case tag::mtu: {
        if (!set_option(o, opt::mtu)) return false;
        const auto n = to_number(v.text, 0, 65535);
        if (!n) return fail(v, "illegal mtu specified (0, or 68-65535; 1280-65535 for IPv6)");
        mtu_ = static_cast<std::uint32_t>(*n);
        mtu_token_ = v;
        mark(anchor_role::mtu, v);
        return true;
      }
      default: break;
    }
    return fail(o.option, "unknown option", exit_code::rejected);
  }

  // ------------------------------------------------------------------ pass 2: process_options
  bool finish() {
    // --set tcp tcpfin udp: three positional values.
    std::size_t next_positional = 0;
    std::array<std::uint32_t, 3> set_values{};
    if (command_ == cmd::timeout) {
      if (positional_.size() < 3)
        return fail(command_token_, "--set option requires 3 timeout values");
      for (std::size_t k = 0; k < 3; ++k) {
        const token& t = positional_[k];
        const auto n = to_number(t.text, 0, max_timeout);
        if (!n) return fail(t, "invalid timeout value `" + std::string(t.text) +
                                   "' specified (0-2678400)");
        set_values[k] = static_cast<std::uint32_t>(*n);
      }
      next_positional = 3;
    }
    if (next_positional < positional_.size()) {
      const token& t = positional_[next_positional];
      return fail(t, "unexpected argument " + std::string(t.text));
    }
    // -b is read last, against the scheduler given (or ipvsadm's default).
    sched::scheduler_flags flags{};
    const bool flags_ok = for_each_item(sched_flags_, [&](const token& word) {
      const auto f = sched::parse_sched_flags(scheduler_name(), word.text);
      if (!f) {
        const bool incompatible = f.error() == sched::scheduler_error::incompatible_flag;
        return fail(word, std::string(incompatible ? "incompatible" : "invalid") +
                              " scheduler flag `" + std::string(word.text) + "'");
      }
      flags = flags | *f;
      return true;
    });
    if (!flags_ok) return false;
    if (!generic_opt_check()) return false;
    sched::scheduler_options sched_options;
    if (!parse_sched_options(sched_options)) return false;

    const bool v6 = vaddr_.is_v6();
    director::service_key key;
    if (fwmark_ != 0) {
      key = director::service_key::mark(fwmark_, v6 ? wire::ip_family::v6 : wire::ip_family::v4);
    } else {
      key = {0, protocol_, vaddr_, vport_};
    }

    switch (command_) {
      case cmd::add:
      case cmd::edit: {
        if (fwmark_ == 0 && vport_ == 0 && !persistent_)
          return fail(at_or_command(anchor_role::service),
                      "Zero port specified for non-persistent service");
        if (ops_ && fwmark_ == 0 && protocol_ != wire::ip_proto::udp)
          return fail(at_or_command(anchor_role::ops),
                      "One-Packet Scheduling is only for UDP virtual services");
        director::service_spec spec;
        spec.key = key;
        spec.scheduler = scheduler_.empty() ? std::string("wlc") : std::string(scheduler_);
        spec.sched_flags = flags;
        spec.sched_options = std::move(sched_options);
        spec.persistent = persistent_;
        if (persistent_) spec.persistence_timeout = timeout_;
        if (v6)
          spec.prefix_v6 = static_cast<std::uint8_t>(netmask_);
        else
          spec.netmask_v4 = netmask_;
        spec.one_packet = ops_;
        spec.pe_name = std::string(pe_);
        if (command_ == cmd::add)
          out_.what = director::command{director::add_service{std::move(spec)}};
        else
          out_.what = director::command{director::edit_service{std::move(spec)}};
        return true;
      }
      case cmd::del: out_.what = director::command{director::delete_service{key}}; return true;
      case cmd::flush: out_.what = director::command{director::clear_all{}}; return true;
      case cmd::zero:
        out_.what = director::command{director::zero_counters{
            has(opt::service) ? std::optional<director::service_key>(key) : std::nullopt}};
        return true;
      case cmd::timeout:
        out_.what = director::command{
            director::set_timeouts{set_values[0], set_values[1], set_values[2]}};
        return true;
      case cmd::restore: out_.what = restore_request{}; return true;
      case cmd::save: out_.what = save_request{list_.numeric}; return true;
      case cmd::list: {
        const bool first = list_.connections || list_.timeout || list_.daemon;
        if ((first && (list_.stats || list_.rate || list_.thresholds)) ||
            ((list_.timeout || list_.daemon) && list_.persistent_conn))
          return fail(command_token_, "options conflicts in the list command");
        list_request r = list_;
        if (has(opt::service)) r.service = key;
        out_.what = std::move(r);
        return true;
      }
      case cmd::adddest:
      case cmd::editdest:
      case cmd::deldest: break;
      default: return fail(command_token_, "not supported by l4lb", exit_code::rejected);
    }

    // -a / -e / -d
    if (command_ == cmd::deldest) {
      out_.what = director::command{director::delete_dest{key, {daddr_, dport_}}};
      return true;
    }
    director::real_server_spec d;
    d.endpoint = {daddr_, dport_};
    // "The destination port must be equal to the service port if the IP_VS_CONN_F_TUNNEL or
    // IP_VS_CONN_F_DROUTE is set", fwmark services aside.
    if (fwmark_ == 0 && (method_ == director::forward_method::tunnel ||
                         method_ == director::forward_method::route))
      d.endpoint.port = vport_;
    if (daddr_.family() != vaddr_.family() && method_ != director::forward_method::tunnel)
      return fail(at_or_command(anchor_role::real_server),
                  "Different address family is allowed only for tunneling servers");
    const bool tunnel_options = has(opt::tun_type) || has(opt::tun_port) ||
                                has(opt::tun_nocsum) || has(opt::tun_csum) ||
                                has(opt::tun_remcsum);
    if (tunnel_options && method_ != director::forward_method::tunnel)
      return fail(at_or_command(anchor_role::forward),
                  "Tunnel options conflict with forward method");
    if (!tunnel_opt_check()) return false;
    if (has(opt::local_address) && method_ != director::forward_method::full_nat)
      return fail(at_or_command(anchor_role::local_address),
                  "Local addresses need the --fullnat forwarding method");
    if (method_ == director::forward_method::full_nat) {
      bool family_ok = false;
      for (const auto& a : locals_) family_ok = family_ok || a.family() == daddr_.family();
      if (!family_ok)
        return fail(at_or_command(anchor_role::forward),
                    daddr_.is_v4() ? "--fullnat needs an IPv4 --local-address"
                                   : "--fullnat needs an IPv6 --local-address");
    }
    if (mtu_ != 0 && mtu_ < wire::min_mtu(daddr_.is_v4()))
      return fail(mtu_token_, "illegal mtu specified (0, or 68-65535; 1280-65535 for IPv6)");
    d.weight = weight_;
    d.upper_threshold = upper_;
    d.lower_threshold = lower_;
    d.method = method_;
    if (method_ == director::forward_method::tunnel)
      d.tunnel = {tun_type_, tun_port_, tun_checksum_};
    d.full_nat_local = std::move(locals_);
    d.mtu = mtu_;
    if (command_ == cmd::adddest)
      out_.what = director::command{director::add_dest{key, std::move(d)}};
    else
      out_.what = director::command{director::edit_dest{key, std::move(d)}};
    return true;
  }

  // --sched-opt, read after -b against the scheduler given (or ipvsadm's default): each
  // NAME=VALUE in turn, an error pointing at the pair, name or value it is about. A scheduler
  // that does not exist is left to the configuration (unknown_scheduler, as without options).
  bool parse_sched_options(sched::scheduler_options& out) {
    const std::string_view sched = scheduler_name();
    const bool known = std::find(sched::any_scheduler::names.begin(),
                                 sched::any_scheduler::names.end(),
                                 sched) != sched::any_scheduler::names.end();
    return for_each_item(sched_opt_, [&](const token& item_tok) {
      const std::size_t eq = item_tok.text.find('=');
      if (eq == std::string_view::npos || eq == 0)
        return fail(item_tok, "invalid scheduler option `" + std::string(item_tok.text) +
                                  "' (expected NAME=VALUE)");
      const token name_tok = sub(item_tok, 0, eq);
      const token value_tok = sub(item_tok, eq + 1);
      if (out.find(name_tok.text) != nullptr)
        return fail(name_tok, "multiple '" + std::string(name_tok.text) +
                                  "' scheduler options specified");
      sched::scheduler_options one;
      one.set(name_tok.text, value_tok.text);
      if (known) {
        const auto c = sched::any_scheduler::canonical_options(sched, one);
        if (!c && c.error() == sched::scheduler_error::unknown_option)
          return fail(name_tok, "scheduler " + std::string(sched) + " has no option `" +
                                    std::string(name_tok.text) + "'");
        if (!c)
          return fail(value_tok, "invalid value `" + std::string(value_tok.text) +
                                     "' for scheduler option `" + std::string(name_tok.text) +
                                     "'");
      }
      out.set(name_tok.text, value_tok.text);
      return true;
    });
  }

  /// -s's value, or ipvsadm's default.
  [[nodiscard]] std::string_view scheduler_name() const noexcept {
    return scheduler_.empty() ? std::string_view{"wlc"} : scheduler_;
  }

  /// f(item) for each non-empty item of a comma-separated list (-b, --sched-opt), each with its
  /// own column; stops at the first f that returns false.
  template <class F>
  static bool for_each_item(const token& list, F&& f) {
    std::size_t offset = 0;
    while (offset <= list.text.size()) {
      const std::size_t comma = list.text.find(',', offset);
      const std::size_t end = comma == std::string_view::npos ? list.text.size() : comma;
      if (end > offset && !f(sub(list, offset, end - offset))) return false;
      offset = end + 1;
    }
    return true;
  }

  token at_or_command(anchor_role r) const {
    const anchor& a = out_.at(r);
    if (a.column == 0) return command_token_;
    for (const token& t : tokens_) {
      if (a.column >= t.column && a.column + a.length <= t.column + t.text.size())
        return {t.text.substr(a.column - t.column, a.length), a.column};
    }
    return command_token_;
  }

  // generic_opt_check: required, illegal and mutually exclusive options per command.
  bool generic_opt_check() {
    const std::size_t row = static_cast<std::size_t>(command_) - 1;
    const std::string_view legal = legal_options[row];
    std::size_t count = 0, last = 0;
    for (std::size_t j = 0; j < option_count; ++j) {
      const bool given = (options_ >> j) & 1u;
      std::string m;
      if (!given) {
        if (legal[j] == '+') {
          m = "You need to supply the '";
          m += option_names[j];
          m += "' option for the '";
          m += command_names[row];
          m += "' command";
          return fail(command_token_, std::move(m));
        }
        continue;
      }
      if (legal[j] == 'x') {
        m = "Illegal '";
        m += option_names[j];
        m += "' option with the '";
        m += command_names[row];
        m += "' command";
        return fail(command_token_, std::move(m));
      }
      if (legal[j] == '1') {
        if (++count == 1) {
          last = j;
          continue;
        }
        m = "The option '";
        m += option_names[j];
        m += "' conflicts with the '";
        m += option_names[last];
        m += "' option in the '";
        m += command_names[row];
        m += "' command";
        return fail(command_token_, std::move(m));
      }
    }
    return true;
  }

  // tunnel_opt_check with ipvsadm 1.31's tunnel_types_v_options
  // (columns tun-port, tun-nocsum, tun-csum, tun-remcsum).
  bool tunnel_opt_check() {
    static constexpr std::array<std::string_view, 3> table = {"xxxx", "+111", "x11x"};
    static constexpr std::array<std::string_view, 3> names = {"ipip", "gue", "gre"};
    static constexpr std::array<opt, 4> columns = {opt::tun_port, opt::tun_nocsum, opt::tun_csum,
                                                   opt::tun_remcsum};
    const std::size_t i = static_cast<std::size_t>(tun_type_);
    std::size_t count = 0, last = 0;
    for (std::size_t j = 0; j < columns.size(); ++j) {
      const std::size_t k = static_cast<std::size_t>(columns[j]);
      std::string m;
      if (!has(columns[j])) {
        if (table[i][j] == '+') {
          m = "You need to supply the '";
          m += option_names[k];
          m += "' option for the '";
          m += names[i];
          m += "' tunnel type";
          return fail(at_or_command(anchor_role::tun_type), std::move(m));
        }
        continue;
      }
      if (table[i][j] == 'x') {
        m = "Illegal '";
        m += option_names[k];
        m += "' option with the '";
        m += names[i];
        m += "' tunnel type";
        return fail(at_or_command(anchor_role::tun_type), std::move(m));
      }
      if (table[i][j] == '1') {
        if (++count == 1) {
          last = k;
          continue;
        }
        m = "The option '";
        m += option_names[k];
        m += "' conflicts with the '";
        m += option_names[last];
        m += "' option in the '";
        m += names[i];
        m += "' tunnel type";
        return fail(at_or_command(anchor_role::tun_type), std::move(m));
      }
    }
    return true;
  }

  std::span<const token> tokens_;
  const name_resolver* resolver_;
  parsed_command out_;
  error err_;
  std::vector<token> positional_;

  cmd command_ = cmd::none;
  token command_token_;
  std::uint64_t options_ = 0;
  list_request list_;
  // the service (ipvs_service_t)
  std::uint32_t fwmark_ = 0;
  std::uint8_t protocol_ = 0;
  wire::ip_address vaddr_ = wire::ipv4_address{};
  std::uint16_t vport_ = 0;
  std::string_view scheduler_;
  token sched_flags_;
  token sched_opt_;
  bool persistent_ = false;
  std::uint32_t timeout_ = 360;
  std::uint32_t netmask_ = 0xFFFF'FFFF;  // host-order IPv4 mask, or an IPv6 prefix length
  bool ops_ = false;
  std::string_view pe_;
  // the real server (ipvs_dest_t)
  wire::ip_address daddr_ = wire::ipv4_address{};
  std::uint16_t dport_ = 0;
  director::forward_method method_ = director::forward_method::route;
  std::uint32_t weight_ = 1, upper_ = 0, lower_ = 0;
  forward::tunnel_type tun_type_ = forward::tunnel_type::ipip;
  std::uint16_t tun_port_ = 0;
  director::tunnel_checksum tun_checksum_ = director::tunnel_checksum::none;
  std::vector<wire::ip_address> locals_;
  std::uint32_t mtu_ = 0;
  token mtu_token_;
};

}  // namespace detail

/// Parses one command line given as its arguments, without the program name
/// (`{"-A", "-t", "198.18.0.100:80", "-s", "rr"}`). Error columns count in the arguments joined
/// by single spaces (join_arguments). No arguments: a plain listing, as ipvsadm without any.
[[nodiscard]] inline expected<parsed_command, error> parse_command_line(
    std::span<const std::string_view> args, const name_resolver* resolver = nullptr) {
  std::vector<detail::token> tokens;
  tokens.reserve(args.size());
  std::uint32_t column = 1;
  for (std::string_view a : args) {
    tokens.push_back({a, column});
    column += static_cast<std::uint32_t>(a.size() + 1);
  }
  return detail::line_parser(tokens, resolver).run();
}

/// The arguments joined by single spaces: the text parse_command_line's columns refer to.
[[nodiscard]] inline std::string join_arguments(std::span<const std::string_view> args) {
  std::string s;
  for (std::string_view a : args) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

/// Parses one command line written as a single string, split on whitespace as ipvsadm -R splits
/// a line (no quoting; "ipvsadm" tokens skipped).
[[nodiscard]] inline expected<parsed_command, error> parse_command_line(
    std::string_view line, const name_resolver* resolver = nullptr) {
  std::vector<detail::token> tokens;
  detail::split_line(line, false, tokens);
  return detail::line_parser(tokens, resolver).run();
}

/// Parses line `line_no` of a rules file: blank and comment-only lines give no command.
[[nodiscard]] inline expected<std::optional<parsed_command>, error> parse_rule_line(
    std::string_view line, std::size_t line_no, const name_resolver* resolver = nullptr) {
  std::vector<detail::token> tokens;
  detail::split_line(line, true, tokens);
  if (tokens.empty()) return std::optional<parsed_command>{};
  auto r = detail::line_parser(tokens, resolver).run();
  if (!r) {
    error e = r.error();
    e.line = line_no;
    return unexpected{std::move(e)};
  }
  return std::optional<parsed_command>{std::move(*r)};
}

/// The error for a change `pc` that the configuration refused with `e`: ipvsadm's text and exit
/// status (ipvsadm_refusal), pointing at the token the refusal is about in `source` (the line
/// parsed, or join_arguments of the argv parsed), at line `line_no` (0: a command line).
[[nodiscard]] inline error apply_error(director::config_error e, const parsed_command& pc,
                                       std::string_view source, std::size_t line_no = 0) {
  using director::config_error;
  const director::command* c = pc.change();
  const refusal r = c ? ipvsadm_refusal(e, *c) : refusal{"not a change"};
  anchor_role role = anchor_role::command;
  switch (e) {
    case config_error::service_exists:
    case config_error::no_such_service:
    case config_error::port_zero_not_persistent:
    case config_error::bad_address: role = anchor_role::service; break;
    case config_error::dest_exists:
    case config_error::no_such_dest:
    case config_error::family_mismatch: role = anchor_role::real_server; break;
    case config_error::unknown_scheduler: role = anchor_role::scheduler; break;
    case config_error::bad_sched_flags: role = anchor_role::sched_flags; break;
    case config_error::bad_sched_options: role = anchor_role::sched_options; break;
    case config_error::bad_weight: role = anchor_role::weight; break;
    case config_error::bad_threshold: role = anchor_role::l_threshold; break;
    case config_error::bad_persistence: role = anchor_role::persistent; break;
    case config_error::bad_netmask: role = anchor_role::netmask; break;
    case config_error::one_packet_not_udp: role = anchor_role::ops; break;
    case config_error::method_not_valid: role = anchor_role::forward; break;
    case config_error::bad_tunnel: role = anchor_role::tun_type; break;
    case config_error::unsupported_pe: role = anchor_role::pe; break;
    default: break;
  }
  anchor a = pc.at(role);
  if (a.column == 0) a = pc.at(anchor_role::command);
  if ((e == config_error::bad_sched_flags || e == config_error::bad_sched_options) &&
      a.column == 0)
    a = pc.at(anchor_role::scheduler);
  error out;
  out.line = line_no;
  out.message = std::string(r.message);
  out.exit_status = r.exit_status;
  if (a.column != 0 && a.column - 1 + a.length <= source.size()) {
    out.column = a.column;
    out.token = std::string(source.substr(a.column - 1, a.length));
  }
  return out;
}

}  // namespace l4lb::config
