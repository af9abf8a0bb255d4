// l4lb-replay: what would my LVS rules do with this traffic? Loads an ipvsadm rule file into one
// director, pushes every frame of a capture through it with the capture's own timestamps, writes
// what the director forwards or answers to an output capture, and prints a summary (and, on
// request, ipvsadm's listings). Deterministic, no root, no kernel. See README.md.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <l4lb/wire/checksum.hpp>

#include "capture_io.hpp"
#include "replay.hpp"
#include "rules.hpp"

namespace {

using namespace l4lb;
namespace ld = l4lb::director;

constexpr const char* usage_text =
    "usage: l4lb-replay --rules FILE --in IN.pcap --out OUT.pcap [options]\n"
    "  --rules FILE        ipvsadm -S / -R syntax (one command per line, '#' comments)\n"
    "  --in FILE           pcap or pcapng (Ethernet, Linux cooked SLL/SLL2)\n"
    "  --out FILE          forwarded frames and answers (.pcapng: pcapng; else pcap, ns);\n"
    "                      /dev/null to measure without writing\n"
    "  --neigh FILE        neighbours, lines 'IP MAC' ('#' comments); default: 02:00 + the\n"
    "                      address's last 4 bytes for every real server\n"
    "  --mac MAC           the director's MAC (default: derived from its IPv4 address)\n"
    "  --addr IP           the director's address, once per family (default 198.18.0.1 and\n"
    "                      fd00:198:18::1): tunnel outer source, never a client\n"
    "  --gateway-mac MAC   next hop for NAT replies toward clients (default 02:00:00:00:00:fe)\n"
    "  --set TCP TCPFIN UDP   timeouts, as ipvsadm --set\n"
    "  --sysctl NAME=VALUE    a kernel-equivalent option (conn_reuse_mode, expire_nodest_conn,\n"
    "                      sloppy_tcp, sloppy_sctp, expire_quiescent_template, secure_tcp, ...)\n"
    "  --at N:'COMMAND'    an ipvsadm command applied right after input frame N (1-based)\n"
    "  --mark 'FILTER=MARK'  frames the pcap filter matches carry firewall mark MARK\n"
    "  --capacity N        the director's IPv4 connection table size (default 1048576)\n"
    "  --mtu N             egress MTU toward the real servers (as a route MTU is for the kernel):\n"
    "                      over it, DF packets are answered (frag needed / too big), others\n"
    "                      fragmented\n"
    "  --list --stats --rate --conns --save   ipvsadm -Ln / -Ln --stats / -Ln --rate / -Lnc / -Sn\n"
    "                      printed after the replay\n"
    "  --verdicts FILE.pcapng  every input frame with its verdict as a packet comment\n"
    "  --explain 'PROTO SRC:PORT DST:PORT'  why a flow goes where it goes, after the replay\n"
    "  --quiet             no summary\n";

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "l4lb-replay: %s\n%s", what.c_str(), usage_text);
  std::exit(2);
}

std::optional<wire::mac_address> parse_mac(std::string_view s) {
  wire::mac_address m;
  std::size_t at = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    if (i && (at >= s.size() || s[at++] != ':')) return std::nullopt;
    int v = 0;
    for (int k = 0; k < 2; ++k) {
      if (at >= s.size()) return std::nullopt;
      const int h = wire::detail::hex_value(s[at++]);
      if (h < 0) return std::nullopt;
      v = v * 16 + h;
    }
    m.bytes[i] = static_cast<std::uint8_t>(v);
  }
  if (at != s.size()) return std::nullopt;
  return m;
}

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream f(path, std::ios::binary);
  ok = static_cast<bool>(f);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct mark_rule {
  std::string filter;
  std::uint32_t mark = 0;
  bpf_program program{};
};

struct at_rule {
  std::uint64_t after = 0;
  std::string command;
};

struct options {
  std::string rules, in, out, neigh, verdicts, explain;
  std::optional<wire::mac_address> mac;
  wire::mac_address gateway_mac = *parse_mac("02:00:00:00:00:fe");
  std::vector<wire::ip_address> addrs;
  std::optional<ld::set_timeouts> timeouts;
  std::vector<std::pair<std::string, std::int64_t>> sysctls;
  std::vector<at_rule> at;
  std::vector<mark_rule> marks;
  std::uint32_t capacity = 1u << 20;
  std::uint32_t mtu = 0;
  bool list = false, stats = false, rate = false, conns = false, save = false, quiet = false;
};

options parse_args(int argc, char** argv) {
  options o;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  auto number = [&](const std::string& s, const char* what) -> std::uint64_t {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') usage_error(std::string(what) + ": '" + s + "' is not a number");
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rules") o.rules = need(i);
    else if (a == "--in") o.in = need(i);
    else if (a == "--out") o.out = need(i);
    else if (a == "--neigh") o.neigh = need(i);
    else if (a == "--verdicts") o.verdicts = need(i);
    else if (a == "--explain") o.explain = need(i);
    else if (a == "--mac") {
      const std::string v = need(i);
      o.mac = parse_mac(v);
      if (!o.mac) usage_error("--mac: '" + v + "' is not a MAC address");
    } else if (a == "--gateway-mac") {
      const std::string v = need(i);
      auto m = parse_mac(v);
      if (!m) usage_error("--gateway-mac: '" + v + "' is not a MAC address");
      o.gateway_mac = *m;
    } else if (a == "--addr") {
      const std::string v = need(i);
      auto ip = wire::ip_address::parse(v);
      if (!ip) usage_error("--addr: '" + v + "' is not an IP address");
      for (const auto& x : o.addrs)
        if (x.family() == ip->family()) usage_error("--addr: one address per family");
      o.addrs.push_back(*ip);
    } else if (a == "--set") {
      ld::set_timeouts t;
      t.tcp = static_cast<std::uint32_t>(number(need(i), "--set"));
      t.tcp_fin = static_cast<std::uint32_t>(number(need(i), "--set"));
      t.udp = static_cast<std::uint32_t>(number(need(i), "--set"));
      o.timeouts = t;
    } else if (a == "--sysctl") {
      const std::string v = need(i);
      const auto eq = v.find('=');
      if (eq == std::string::npos) usage_error("--sysctl takes NAME=VALUE");
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str() + eq + 1, &end, 10);
      if (*end != '\0' || eq + 1 == v.size()) usage_error("--sysctl: '" + v + "': the value is not a number");
      o.sysctls.emplace_back(v.substr(0, eq), n);
    } else if (a == "--at") {
      const std::string v = need(i);
      const auto colon = v.find(':');
      if (colon == std::string::npos) usage_error("--at takes N:'COMMAND'");
      o.at.push_back({number(v.substr(0, colon), "--at"), v.substr(colon + 1)});
    } else if (a == "--mark") {
      const std::string v = need(i);
      const auto eq = v.rfind('=');
      if (eq == std::string::npos) usage_error("--mark takes 'FILTER=MARK'");
      mark_rule m;
      m.filter = v.substr(0, eq);
      m.mark = static_cast<std::uint32_t>(number(v.substr(eq + 1), "--mark"));
      if (m.mark == 0) usage_error("--mark: the mark must not be 0");
      o.marks.push_back(std::move(m));
    } else if (a == "--capacity") {
      const auto n = number(need(i), "--capacity");
      if (n == 0 || n > (1u << 31)) usage_error("--capacity: 1 .. 2147483648");
      o.capacity = static_cast<std::uint32_t>(n);
    } else if (a == "--mtu") {
      const auto n = number(need(i), "--mtu");
      if (n < 68 || n > 65535) usage_error("--mtu: 68 .. 65535");
      o.mtu = static_cast<std::uint32_t>(n);
    } else if (a == "--list") o.list = true;
    else if (a == "--stats") o.stats = true;
    else if (a == "--rate") o.rate = true;
    else if (a == "--conns") o.conns = true;
    else if (a == "--save") o.save = true;
    else if (a == "--quiet") o.quiet = true;
    else if (a == "-h" || a == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else usage_error("unknown option '" + a + "'");
  }
  if (o.rules.empty() || o.in.empty() || o.out.empty()) usage_error("--rules, --in and --out are required");
  std::stable_sort(o.at.begin(), o.at.end(), [](const at_rule& x, const at_rule& y) { return x.after < y.after; });
  return o;
}

/// Loads `--neigh` lines "IP MAC".
bool load_neighbours(const std::string& path, ld::director_control& c) {
  bool ok = false;
  const std::string text = read_file(path, ok);
  if (!ok) {
    std::fprintf(stderr, "l4lb-replay: %s: cannot read\n", path.c_str());
    return false;
  }
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (const auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream words(line);
    std::string ip, mac, extra;
    if (!(words >> ip)) continue;
    auto a = wire::ip_address::parse(ip);
    words >> mac;
    auto m = parse_mac(mac);
    if (!a || !m || (words >> extra)) {
      std::fprintf(stderr, "l4lb-replay: %s: line %d: expected 'IP MAC'\n", path.c_str(), n);
      return false;
    }
    c.set_neighbour(*a, *m);
  }
  return true;
}

/// Real servers without a neighbour entry get the derived MAC (when --neigh is not given).
void derive_neighbours(ld::director_control& c) {
  const auto snap = c.current();
  const ld::configuration config = c.config();  // a copy: keep it alive for the loop
  for (const auto& svc : config.services())
    for (const auto& d : svc.dests)
      if (!snap->neighbours->find(d.spec.endpoint.address))
        c.set_neighbour(d.spec.endpoint.address, replay::derived_mac(d.spec.endpoint.address));
}

struct summary {
  std::uint64_t in = 0, written = 0, bytes = 0;
};

void print_summary(const summary& s, const ld::director& d, std::FILE* f) {
  std::fprintf(f, "frames in            %12llu\n", static_cast<unsigned long long>(s.in));
  std::fputs(ld::counters_table(d.verdicts()).c_str(), f);
  std::fprintf(f, "frames written       %12llu\n", static_cast<unsigned long long>(s.written));
  // The full-table policy at work (--capacity): what was evicted to make room, what was refused.
  const auto table = [&](const char* family, const auto& t) {
    const auto& st = t.stats();
    std::fprintf(f, "%s connections: capacity %u, inserted %llu, evicted embryonic %llu, evicted inactive %llu, refused full %llu\n",
                 family, t.capacity(), static_cast<unsigned long long>(st.inserted),
                 static_cast<unsigned long long>(st.evicted_embryonic),
                 static_cast<unsigned long long>(st.evicted_inactive),
                 static_cast<unsigned long long>(st.refused_full));
  };
  table("IPv4", d.table_v4());
  table("IPv6", d.table_v6());
}

/// A frame for --explain: 'tcp SRC:PORT DST:PORT' (udp, sctp too) as a first packet (SYN).
std::optional<std::vector<std::byte>> explain_frame(const std::string& spec, const wire::mac_address& mac) {
  std::istringstream in(spec);
  std::string proto, src, dst;
  if (!(in >> proto >> src >> dst)) return std::nullopt;
  auto s = wire::endpoint::parse(src);
  auto d = wire::endpoint::parse(dst);
  if (!s || !d || s->address.family() != d->address.family()) return std::nullopt;
  std::uint8_t p;
  if (proto == "tcp") p = wire::ip_proto::tcp;
  else if (proto == "udp") p = wire::ip_proto::udp;
  else return std::nullopt;
  const bool v4 = s->address.is_v4();
  const std::size_t l3 = v4 ? 20 : 40, l4 = p == wire::ip_proto::tcp ? 20 : 8;
  std::vector<std::byte> f(14 + l3 + l4);
  auto put = [&](std::size_t at, std::uint32_t v, int n) {
    for (int i = n - 1; i >= 0; --i, v >>= 8) f[at + static_cast<std::size_t>(i)] = std::byte(v & 0xFF);
  };
  std::memcpy(f.data(), mac.bytes.data(), 6);
  put(6, 0x0200'0000, 4);
  put(12, v4 ? 0x0800 : 0x86DD, 2);
  if (v4) {
    put(14, 0x4500, 2);
    put(16, static_cast<std::uint32_t>(l3 + l4), 2);
    put(22, 64, 1);
    put(23, p, 1);
    std::memcpy(f.data() + 26, s->address.raw().data(), 4);
    std::memcpy(f.data() + 30, d->address.raw().data(), 4);
    const auto c = wire::ipv4_header_checksum(std::span<const std::byte>(f).subspan(14, 20));
    put(24, c, 2);
  } else {
    put(14, 0x6000'0000, 4);
    put(18, static_cast<std::uint32_t>(l4), 2);
    put(20, p, 1);
    put(21, 64, 1);
    std::memcpy(f.data() + 22, s->address.raw().data(), 16);
    std::memcpy(f.data() + 38, d->address.raw().data(), 16);
  }
  const std::size_t at = 14 + l3;
  put(at, s->port, 2);
  put(at + 2, d->port, 2);
  if (p == wire::ip_proto::tcp) {
    put(at + 12, 0x5002, 2);  // data offset 5, SYN
    put(at + 14, 65535, 2);
  } else {
    put(at + 4, static_cast<std::uint32_t>(l4), 2);
  }
  // L4 checksum (explain does not check it, but keep the frame honest).
  const auto seg = std::span<const std::byte>(f).subspan(at);
  const std::uint16_t c =
      v4 ? wire::l4_checksum_v4(s->address.v4(), d->address.v4(), p, seg)
         : wire::l4_checksum_v6(s->address.v6(), d->address.v6(), p, seg);
  put(at + (p == wire::ip_proto::tcp ? 16 : 6), p == wire::ip_proto::udp && c == 0 ? 0xFFFF : c, 2);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse_args(argc, argv);

  // The director and its rules.
  ld::director_control control;
  ld::director_identity id;
  id.addresses = opt.addrs;
  if (!id.address_of(wire::ip_family::v4)) id.addresses.push_back(*wire::ip_address::parse("198.18.0.1"));
  if (!id.address_of(wire::ip_family::v6)) id.addresses.push_back(*wire::ip_address::parse("fd00:198:18::1"));
  id.mac = opt.mac ? *opt.mac : replay::derived_mac(*id.address_of(wire::ip_family::v4));
  // NAT replies toward clients go to the gateway (an address-less neighbour key: 0.0.0.0 / ::).
  id.gateway_v4 = wire::ip_address(wire::ipv4_address{});
  id.gateway_v6 = wire::ip_address(wire::ipv6_address{});
  id.mtu = opt.mtu;
  control.set_identity(id);
  control.set_neighbour(*id.gateway_v4, opt.gateway_mac);
  control.set_neighbour(*id.gateway_v6, opt.gateway_mac);

  bool ok = false;
  const std::string rules_text = read_file(opt.rules, ok);
  if (!ok) {
    std::fprintf(stderr, "l4lb-replay: %s: cannot read\n", opt.rules.c_str());
    return 2;
  }
  if (auto err = rules::load(control, rules_text, opt.rules); !err.empty()) {
    std::fprintf(stderr, "l4lb-replay: %s\n", err.c_str());
    return 2;
  }
  if (opt.timeouts && control.apply(*opt.timeouts) != ld::config_error::ok) {
    std::fprintf(stderr, "l4lb-replay: --set: a timeout is out of range\n");
    return 2;
  }
  for (const auto& [name, value] : opt.sysctls)
    if (control.apply(ld::set_sysctl{name, value}) != ld::config_error::ok) {
      std::fprintf(stderr, "l4lb-replay: --sysctl %s=%lld: unknown name or value out of range\n",
                   name.c_str(), static_cast<long long>(value));
      return 2;
    }
  if (!opt.neigh.empty()) {
    if (!load_neighbours(opt.neigh, control)) return 2;
  } else {
    derive_neighbours(control);
  }

  // Capture files.
  replay::capture_reader reader;
  if (!reader.open(opt.in)) {
    std::fprintf(stderr, "l4lb-replay: %s: %s\n", opt.in.c_str(), reader.error().c_str());
    return 1;
  }
  std::vector<mark_rule> marks = opt.marks;
  for (auto& m : marks)
    if (pcap_compile(reader.handle(), &m.program, m.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      std::fprintf(stderr, "l4lb-replay: --mark '%s': %s\n", m.filter.c_str(), pcap_geterr(reader.handle()));
      return 2;
    }
  const bool discard = opt.out == "/dev/null";
  replay::capture_writer out, verdicts;
  if (!discard && !out.open(opt.out)) {
    std::fprintf(stderr, "l4lb-replay: %s: cannot write\n", opt.out.c_str());
    return 1;
  }
  if (!opt.verdicts.empty() && !verdicts.open(opt.verdicts)) {
    std::fprintf(stderr, "l4lb-replay: %s: cannot write\n", opt.verdicts.c_str());
    return 1;
  }

  // The replay.
  summary sum;
  // Input frames kept for --verdicts: the replayer holds at most one burst, so frame i's copy
  // lives at i % burst until its verdict is out.
  std::vector<std::vector<std::byte>> originals(opt.verdicts.empty() ? 0 : replay::replayer::burst);
  bool write_failed = false;
  ld::director_config cfg;
  cfg.conn_capacity_v4 = opt.capacity;
  cfg.conn_capacity_v6 = std::max<std::uint32_t>(opt.capacity / 4, 1024);
  cfg.template_capacity = std::max<std::uint32_t>(opt.capacity / 16, 1024);
  cfg.full_nat = true;  // --fullnat servers work in replays
  replay::replayer* rp = nullptr;
  replay::replayer r(control, cfg, [&](std::uint64_t index, std::int64_t t, const ld::verdict& v) {
    if (v.kind == ld::verdict_kind::forward || v.kind == ld::verdict_kind::reply) {
      if (v.frames.empty()) {
        ++sum.written;
        if (!discard && !out.write(t, v.frame)) write_failed = true;
      } else {  // a fragmented datagram: every fragment, in order
        for (const auto& f : v.frames) {
          ++sum.written;
          if (!discard && !out.write(t, f)) write_failed = true;
        }
      }
    }
    if (!opt.verdicts.empty()) {
      const auto& original = originals[index % replay::replayer::burst];
      if (!verdicts.write(t, original, replay::describe(v, rp->director().current()))) write_failed = true;
    }
  });
  rp = &r;

  const bool progress = isatty(STDERR_FILENO) != 0;
  const auto started = std::chrono::steady_clock::now();
  auto last_report = started;
  std::size_t next_at = 0;
  replay::input_frame f;
  int rc;
  std::string read_error;
  while ((rc = reader.next(f)) == 1) {
    std::uint32_t mark = 0;
    if (!marks.empty()) {
      pcap_pkthdr h{};
      h.caplen = h.len = static_cast<bpf_u_int32>(f.bytes.size());
      for (const auto& m : marks)
        if (pcap_offline_filter(&m.program, &h, reinterpret_cast<const u_char*>(f.bytes.data()))) {
          mark = m.mark;
          break;
        }
    }
    if (!opt.verdicts.empty()) originals[sum.in % replay::replayer::burst].assign(f.bytes.begin(), f.bytes.end());
    ++sum.in;
    sum.bytes += f.bytes.size();
    r.push(f.time_ns, f.bytes, mark);
    while (next_at < opt.at.size() && opt.at[next_at].after == sum.in) {
      r.flush();
      const auto& cmd = opt.at[next_at++];
      if (auto err = rules::command(control, cmd.command); !err.empty()) {
        std::fprintf(stderr, "l4lb-replay: --at %llu:'%s': %s\n",
                     static_cast<unsigned long long>(cmd.after), cmd.command.c_str(), err.c_str());
        return 2;
      }
      if (opt.neigh.empty()) derive_neighbours(control);
    }
    if (progress && (sum.in & 0xFFFF) == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::milliseconds(500)) {
        last_report = now;
        const double secs = std::chrono::duration<double>(now - started).count();
        const double fps = static_cast<double>(sum.in) / secs;
        const long pos = reader.position(), size = reader.size();
        const double eta = pos > 0 && size > pos ? secs * static_cast<double>(size - pos) / static_cast<double>(pos) : 0;
        std::fprintf(stderr, "\r%llu frames, %.1f MB, %.0f frames/s, ETA %.0f s   ",
                     static_cast<unsigned long long>(sum.in), static_cast<double>(pos) / 1e6, fps, eta);
      }
    }
  }
  if (rc < 0) read_error = reader.error();
  r.flush();
  if (progress) std::fprintf(stderr, "\r%60s\r", "");
  if (!opt.at.empty() && next_at < opt.at.size())
    std::fprintf(stderr, "l4lb-replay: warning: --at %llu is past the capture's %llu frames; not applied\n",
                 static_cast<unsigned long long>(opt.at[next_at].after), static_cast<unsigned long long>(sum.in));
  for (auto& m : marks) pcap_freecode(&m.program);
  out.close();
  verdicts.close();

  const std::int64_t end = r.last_time();
  if (!opt.quiet) print_summary(sum, r.director(), stdout);
  if (opt.list) std::fputs(rules::listing(control, r.director(), end, "-Ln").c_str(), stdout);
  if (opt.stats) std::fputs(rules::listing(control, r.director(), end, "-Ln --stats").c_str(), stdout);
  if (opt.rate) std::fputs(rules::listing(control, r.director(), end, "-Ln --rate").c_str(), stdout);
  if (opt.conns) std::fputs(rules::listing(control, r.director(), end, "-Lnc").c_str(), stdout);
  if (opt.save) std::fputs(rules::listing(control, r.director(), end, "-Sn").c_str(), stdout);
  if (!opt.explain.empty()) {
    auto frame = explain_frame(opt.explain, id.mac);
    if (!frame) {
      std::fprintf(stderr, "l4lb-replay: --explain takes 'tcp|udp SRC:PORT DST:PORT'\n");
      return 2;
    }
    std::printf("explain %s\n%s", opt.explain.c_str(), r.director().explain(*frame, end).to_text().c_str());
  }
  if (!read_error.empty()) {
    std::fprintf(stderr, "l4lb-replay: %s: frame %llu: %s (the output holds every frame before it)\n",
                 opt.in.c_str(), static_cast<unsigned long long>(sum.in + 1), read_error.c_str());
    return 1;
  }
  if (write_failed) {
    std::fprintf(stderr, "l4lb-replay: writing the output failed (disk full?)\n");
    return 1;
  }
  return 0;
}
