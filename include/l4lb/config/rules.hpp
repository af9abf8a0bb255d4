// Rules files: `ipvsadm -R` (load a whole text as one change) and `ipvsadm -S` / `-Sn` (write a
// configuration as ipvsadm 1.31 writes it, byte for byte). No I/O: text in, text out.
//
// -R (load_rules): every line is parsed first (grammar.hpp, rules-line form: blank lines and
// '#' comments skipped); then the changes are applied, in order, to a copy of the caller's
// configuration. The first refused line (parse or apply) is returned as an error with its line,
// column, token and what was expected or ipvsadm's text, and the caller's configuration is left as
// it was. Only changes belong in a rules file (-A -E -D -C -a -e -d -Z --set); a -L, -S or -R line
// is refused. ipvsadm differs: restore_table runs each line as it reads it, so the lines before a
// bad one stay applied, a kernel refusal is printed and the next line runs, and the exit status
// is the last line's (ipvsadm.c restore_table, process_options).
//
// -S (save_rules): print_service_entry with FMT_RULE: services and then each one's real servers
// in listing order (detail/format.hpp), "-A -t 198.18.0.100:80 -s rr" then
// "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1"; -p / -M / --pe / -o / -b as set; tunnel
// servers with ipvsadm 1.31's --tun-type/--tun-port/--tun-*csum (print_tunnel_rule). Like
// ipvsadm, thresholds (-x/-y) are not written unless save_options::thresholds asks for them (our
// extension), and a LOCALNODE server saves as -g. l4lb's extensions are written only where they
// are set, after everything ipvsadm writes: "--sched-opt NAME=VALUE,..." at the end of a
// service's line (the options in the policy's canonical form, as the configuration keeps them);
// "--fullnat" in the method's place, then "--local-address A" for each local address and
// "--mtu N" on a server's. Loading what save_rules wrote gives
// the same configuration back (same services, servers and settings; the kernel order of a
// reloaded service's servers is the reverse of the saved order).
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "l4lb/config/detail/format.hpp"
#include "l4lb/config/error.hpp"
#include "l4lb/config/grammar.hpp"
#include "l4lb/director/configuration.hpp"
#include "l4lb/expected.hpp"

namespace l4lb::config {

/// What a successful load produced.
struct load_result {
  director::configuration config;        ///< the caller's configuration with every line applied
  std::vector<director::command> applied;  ///< the changes, in file order (for the director's
                                           ///< scheduler hooks)
};

/// ipvsadm -R: applies the whole `text` to a copy of `current`, or nothing (see the header).
[[nodiscard]] inline expected<load_result, error> load_rules(
    const director::configuration& current, std::string_view text,
    const name_resolver* resolver = nullptr) {
  struct line_ref {
    std::string_view text;
    std::size_t number;
  };
  std::vector<director::command> commands;
  std::vector<line_ref> lines;
  // Pass 1: parse everything.
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no;
    auto parsed = parse_rule_line(line, line_no, resolver);
    if (!parsed) return unexpected{parsed.error()};
    if (parsed->has_value()) {
      parsed_command& pc = **parsed;
      director::command* c = std::get_if<director::command>(&pc.what);
      if (c == nullptr) {
        const anchor a = pc.at(anchor_role::command);
        return unexpected{error{line_no, a.column,
                                std::string(line.substr(a.column - 1, a.length)),
                                "not a change: a rules file holds -A -E -D -C -a -e -d -Z --set",
                                exit_code::rejected}};
      }
      commands.push_back(std::move(*c));
      lines.push_back({line, line_no});
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  // Pass 2: apply to a copy.
  load_result out{current, {}};
  for (std::size_t i = 0; i < commands.size(); ++i) {
    const director::config_error e = out.config.apply(commands[i]);
    if (e != director::config_error::ok) {
      // Parse the line again for the token positions (only on this error path).
      auto again = parse_rule_line(lines[i].text, lines[i].number, resolver);
      parsed_command pc;
      if (again && again->has_value()) pc = std::move(**again);
      pc.what = std::move(commands[i]);
      return unexpected{apply_error(e, pc, lines[i].text, lines[i].number)};
    }
  }
  out.applied = std::move(commands);
  return out;
}

/// How -S writes.
struct save_options {
  bool numeric = false;  ///< -n: numbers even where the resolver has names
  /// Ours: also write " -x U -y L" (only those not 0) after a server's other options; ipvsadm
  /// never writes them, so a saved file loses its thresholds.
  bool thresholds = false;
  const name_resolver* resolver = nullptr;  ///< names without -n (none: numbers)
};

namespace detail {

inline void append_rule_service(std::string& out, const director::service_key& k, bool numeric,
                                const name_resolver* r) {
  if (k.is_fwmark()) {
    out += "-f ";
    append_uint(out, k.fwmark);
    if (k.address.is_v6()) out += " -6";
    return;
  }
  out += k.protocol == wire::ip_proto::tcp   ? "-t "
         : k.protocol == wire::ip_proto::udp ? "-u "
         : k.protocol == wire::ip_proto::sctp ? "--sctp-service "
                                              : "--xxx-service ";
  append_addrport(out, k.address, k.port, k.protocol, numeric, r);
}

}  // namespace detail

/// ipvsadm -S / -Sn into `out` (appended).
inline void save_rules(std::string& out, const director::configuration& cfg,
                       const save_options& opts = {}) {
  using namespace detail;
  std::vector<const director::dest_entry*> dests, tmp;
  std::string svc;
  for (const director::service_entry* s : ordered_services(cfg, false)) {
    const director::service_spec& sp = s->spec;
    svc.clear();
    append_rule_service(svc, sp.key, opts.numeric, opts.resolver);
    out += "-A ";
    out += svc;
    out += " -s ";
    out += sp.scheduler;
    if (sp.persistent) {
      out += " -p ";
      append_uint(out, sp.persistence_timeout);
      if (sp.key.address.is_v4()) {
        if (sp.netmask_v4 != 0xFFFF'FFFFu) {
          out += " -M ";
          append_ipv4(out, sp.netmask_v4);
        }
      } else if (sp.prefix_v6 != 128) {
        out += " -M ";
        append_uint(out, sp.prefix_v6);
      }
    }
    if (!sp.pe_name.empty()) (out += " --pe ") += sp.pe_name;
    if (sp.one_packet) out += " -o";
    if (has_sched_flags(sp)) {
      out += " -b ";
      append_sched_flags(out, sp);
    }
    if (!sp.sched_options.empty()) {
      out += " --sched-opt ";
      out += sched::to_string(sp.sched_options);
    }
    out += '\n';
    ordered_dests(*s, false, dests, tmp);
    for (const director::dest_entry* d : dests) {
      const director::real_server_spec& ds = d->spec;
      out += "-a ";
      out += svc;
      out += " -r ";
      append_addrport(out, ds.endpoint.address, ds.endpoint.port, sp.key.protocol, opts.numeric,
                      opts.resolver);
      switch (ds.method) {
        case director::forward_method::masq: out += " -m"; break;
        case director::forward_method::tunnel: out += " -i"; break;
        case director::forward_method::full_nat: out += " --fullnat"; break;
        case director::forward_method::local:
        case director::forward_method::route: out += " -g"; break;
      }
      out += " -w ";
      append_uint(out, ds.weight);
      if (ds.method == director::forward_method::tunnel) {
        static constexpr std::string_view csum_opts[] = {"--tun-nocsum", "--tun-csum",
                                                         "--tun-remcsum"};
        const std::string_view csum = csum_opts[static_cast<std::size_t>(ds.tunnel.checksum)];
        switch (ds.tunnel.type) {
          case forward::tunnel_type::ipip: out += " --tun-type ipip"; break;
          case forward::tunnel_type::gue:
            out += " --tun-type gue --tun-port ";
            append_uint(out, ds.tunnel.port);
            (out += ' ') += csum;
            break;
          case forward::tunnel_type::gre:
            (out += " --tun-type gre ") += csum;
            break;
        }
      }
      for (const auto& a : ds.full_nat_local) {
        out += " --local-address ";
        append_address(out, a);
      }
      if (opts.thresholds) {
        if (ds.upper_threshold != 0) {
          out += " -x ";
          append_uint(out, ds.upper_threshold);
        }
        if (ds.lower_threshold != 0) {
          out += " -y ";
          append_uint(out, ds.lower_threshold);
        }
      }
      if (ds.mtu != 0) {
        out += " --mtu ";
        append_uint(out, ds.mtu);
      }
      out += '\n';
    }
  }
}

/// ipvsadm -S / -Sn as a string.
[[nodiscard]] inline std::string save_rules(const director::configuration& cfg,
                                            const save_options& opts = {}) {
  std::string out;
  save_rules(out, cfg, opts);
  return out;
}

/// ipvsadm -S / -Sn onto a stream.
inline void save_rules(std::ostream& os, const director::configuration& cfg,
                       const save_options& opts = {}) {
  const std::string s = save_rules(cfg, opts);
  os.write(s.data(), static_cast<std::streamsize>(s.size()));
}

}  // namespace l4lb::config
