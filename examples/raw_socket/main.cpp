// l4lb-director: a userspace LVS director on AF_PACKET sockets. It reads frames from one
// interface (one-armed, as the LVS tutorial's DR lab) or two (--inside for the real servers'
// side), runs them through one l4lb director per worker, and sends what the verdicts say. Rules
// come from an ipvsadm-syntax file and from l4lbadm over a UNIX socket; neighbours from the
// kernel's table. See README.md for the design and the lab.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <l4lb/config/ipvsadm.hpp>
#include <l4lb/config/reload.hpp>
#include <l4lb/director/control.hpp>
#include <l4lb/director/director.hpp>

#include "control_channel.hpp"
#include "host.hpp"
#include "nft_guard.hpp"
#include "packet_socket.hpp"
#include "steering.hpp"

namespace {

namespace ld = l4lb::director;
namespace cfg = l4lb::config;
namespace lw = l4lb::wire;
namespace lf = l4lb::forward;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int sig) {
  if (sig == SIGHUP) g_reload = true;
  else g_stop = true;
}

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct options {
  std::string interface, inside, rules, control = "/run/l4lb-director.sock";
  unsigned workers = 1;
  std::uint32_t capacity = 1u << 16;
  bool full_nat = false, nft = true, verbose = false;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: l4lb-director --interface IF [--inside IF] [--rules FILE] [--control PATH]\n"
               "                     [--workers N] [--capacity N] [--full-nat] [--no-nft] [--verbose]\n"
               "  --interface IF   the client-facing interface (one-armed: the only one)\n"
               "  --inside IF      the real servers' interface, when it is another one\n"
               "  --rules FILE     ipvsadm -R syntax, loaded at start; SIGHUP reloads it\n"
               "  --control PATH   the UNIX socket l4lbadm talks to (default %s), mode 0660\n"
               "  --workers N      worker threads, one director each (default 1)\n"
               "  --capacity N     connections per worker and family (default 65536)\n"
               "  --full-nat       enable FullNAT real servers (--fullnat --local-address)\n"
               "  --no-nft         do not install the nftables guard (see README)\n",
               options{}.control.c_str());
  std::exit(code);
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "l4lb-director: %s needs a value\n", a.c_str());
        usage(2);
      }
      return argv[++i];
    };
    const auto number = [&](unsigned long lo, unsigned long hi) {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < lo || n > hi) {
        std::fprintf(stderr, "l4lb-director: %s: '%s' is not a number in %lu..%lu\n", a.c_str(), v.c_str(), lo, hi);
        usage(2);
      }
      return n;
    };
    if (a == "--interface" || a == "-i") o.interface = value();
    else if (a == "--inside") o.inside = value();
    else if (a == "--rules") o.rules = value();
    else if (a == "--control") o.control = value();
    else if (a == "--workers") o.workers = static_cast<unsigned>(number(1, 64));
    else if (a == "--capacity") o.capacity = static_cast<std::uint32_t>(number(16, 1ul << 26));
    else if (a == "--full-nat") o.full_nat = true;
    else if (a == "--no-nft") o.nft = false;
    else if (a == "--verbose" || a == "-v") o.verbose = true;
    else if (a == "--help" || a == "-h") usage(0);
    else {
      std::fprintf(stderr, "l4lb-director: unknown option '%s'\n", a.c_str());
      usage(2);
    }
  }
  if (o.interface.empty()) {
    std::fprintf(stderr, "l4lb-director: --interface is required\n");
    usage(2);
  }
  return o;
}

/// One worker: its director, its sockets (one per interface), its thread.
struct worker {
  std::unique_ptr<ld::director> d;
  std::vector<std::unique_ptr<raw::packet_socket>> sockets;
  std::thread thread;
  std::atomic<bool> parked{false};
  std::uint64_t truncated = 0;
  std::uint64_t sent = 0, send_failed = 0;
};

/// What the workers share with the control thread.
struct shared_state {
  std::atomic<bool> pause{false};
  std::mutex missing_mu;
  std::set<lw::ip_address> missing;  // next hops a director had no neighbour for
};

class director_app {
 public:
  explicit director_app(const options& o) : o_(o) {
    outside_ = raw::query_interface(o.interface);
    if (!o.inside.empty()) inside_ = raw::query_interface(o.inside);
    ld::director_identity id;
    id.mac = outside_.mac;
    id.addresses = outside_.addresses;
    if (inside_) id.addresses.insert(id.addresses.end(), inside_->addresses.begin(), inside_->addresses.end());
    id.gateway_v4 = raw::default_gateway_v4(o.interface);
    id.gateway_v6 = raw::default_gateway_v6(o.interface);
    id.mtu = inside_ ? inside_->mtu : outside_.mtu;
    control_.set_identity(id);
    if (!o.rules.empty()) {
      std::string text;
      if (!read_file(o.rules, text)) throw std::runtime_error(o.rules + ": " + std::strerror(errno));
      auto r = cfg::load_rules(control_.config(), text);
      if (!r) throw std::runtime_error(o.rules + ": " + cfg::to_string(r.error()));
      if (auto a = control_.apply_all(r->applied); !a.ok())
        throw std::runtime_error(o.rules + ": " + std::string(ld::to_string(a.error)));
    }
    if (o.nft) {
      std::vector<std::string> ifs{o.interface};
      if (inside_) ifs.push_back(o.inside);
      guard_ = std::make_unique<raw::nft_guard>(ifs);
    }
    ld::director_config dc;
    dc.conn_capacity_v4 = o.capacity;
    dc.conn_capacity_v6 = o.capacity;
    dc.full_nat = o.full_nat;
    dc.full_nat_port_share_count = static_cast<std::uint16_t>(o.workers);
    workers_.resize(o.workers);
    const auto group = static_cast<std::uint16_t>(::getpid() & 0xFFFF);
    for (unsigned w = 0; w < o.workers; ++w) {
      auto& wk = workers_[w];
      wk = std::make_unique<worker>();
      dc.full_nat_port_share_index = static_cast<std::uint16_t>(w);
      dc.seed = w + 1;
      wk->d = std::make_unique<ld::director>(control_, dc);
      wk->sockets.push_back(std::make_unique<raw::packet_socket>(outside_.index, raw::ring_config{}));
      if (inside_) wk->sockets.push_back(std::make_unique<raw::packet_socket>(inside_->index, raw::ring_config{}));
      if (o.workers > 1) {
        for (std::size_t s = 0; s < wk->sockets.size(); ++s) {
          const auto prog = raw::steering_program(steering());
          // One group per interface; members join in worker order, so member i is worker i.
          wk->sockets[s]->join_fanout(static_cast<std::uint16_t>(group + s), w == 0 ? &prog : nullptr);
        }
      }
    }
    control_fd_ = raw::listen_control(o.control);
    rules_changed();
  }
  ~director_app() {
    if (control_fd_ >= 0) {
      ::close(control_fd_);
      ::unlink(o_.control.c_str());
    }
  }

  int run() {
    for (auto& w : workers_) w->thread = std::thread([this, wp = w.get()] { work(*wp); });
    std::fprintf(stderr, "l4lb-director: %s%s%s, %u worker(s), control %s\n", o_.interface.c_str(),
                 inside_ ? " + " : "", inside_ ? inside_->name.c_str() : "", o_.workers, o_.control.c_str());
    std::int64_t last_collect = 0;
    while (!g_stop) {
      pollfd p{control_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) serve_one();
      if (g_reload.exchange(false)) reload();
      resolve_missing();
      const std::int64_t now = monotonic_ns();
      if (now - last_collect > 1'000'000'000) {
        control_.collect_retired();
        last_collect = now;
      }
    }
    shared_.pause = false;
    for (auto& w : workers_) w->thread.join();
    ld::verdict_counters total;
    std::uint64_t truncated = 0, sent = 0, failed = 0;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      const auto& w = workers_[i];
      if (workers_.size() > 1)
        std::fprintf(stderr, "worker %zu: %llu forwarded, %llu passed, %llu dropped\n", i,
                     static_cast<unsigned long long>(w->d->verdicts().forwarded),
                     static_cast<unsigned long long>(w->d->verdicts().passed),
                     static_cast<unsigned long long>(w->d->verdicts().dropped));
      total += w->d->verdicts();
      truncated += w->truncated;
      sent += w->sent;
      failed += w->send_failed;
    }
    std::fprintf(stderr, "l4lb-director: stopped\n%s", ld::counters_table(total).c_str());
    // The full-table policy at work (--capacity): evicted to make room, refused.
    std::uint64_t inserted = 0, embryonic = 0, inactive = 0, refused = 0;
    for (const auto& w : workers_)
      for (const auto* st : {&w->d->table_v4().stats(), &w->d->table_v6().stats()}) {
        inserted += st->inserted;
        embryonic += st->evicted_embryonic;
        inactive += st->evicted_inactive;
        refused += st->refused_full;
      }
    std::fprintf(stderr, "connections: capacity %u per worker and family, inserted %llu, evicted embryonic %llu, "
                 "evicted inactive %llu, refused full %llu\n", o_.capacity,
                 static_cast<unsigned long long>(inserted), static_cast<unsigned long long>(embryonic),
                 static_cast<unsigned long long>(inactive), static_cast<unsigned long long>(refused));
    std::fprintf(stderr, "%-20s %12llu\n%-20s %12llu\n%-20s %12llu\n", "frames sent",
                 static_cast<unsigned long long>(sent), "send failures", static_cast<unsigned long long>(failed),
                 "truncated by ring", static_cast<unsigned long long>(truncated));
    return 0;
  }

 private:
  static bool read_file(const std::string& path, std::string& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
  }

  raw::steering_rules steering() const {
    raw::steering_rules r;
    r.workers = o_.workers;
    std::set<lw::ip_address> nat, local;
    const ld::configuration c = control_.config();  // services() refers into it
    for (const auto& s : c.services())
      for (const auto& d : s.dests) {
        if (d.spec.method == ld::forward_method::masq) nat.insert(d.spec.endpoint.address);
        if (d.spec.method == ld::forward_method::full_nat)
          local.insert(d.spec.full_nat_local.begin(), d.spec.full_nat_local.end());
      }
    r.nat_servers.assign(nat.begin(), nat.end());
    r.local_addresses.assign(local.begin(), local.end());
    return r;
  }

  /// After any rule change: the guard table, the steering program, the neighbours to learn.
  void rules_changed() {
    const ld::configuration c = control_.config();
    if (guard_ && !guard_->update(c))
      std::fprintf(stderr, "l4lb-director: warning: the host may answer VIP traffic too\n");
    if (o_.workers > 1) {
      const auto prog = raw::steering_program(steering());
      for (std::size_t s = 0; s < workers_[0]->sockets.size(); ++s) workers_[0]->sockets[s]->set_fanout_program(prog);
    }
    std::lock_guard lock(shared_.missing_mu);
    for (const auto& s : c.services())
      for (const auto& d : s.dests)
        if (!neighbours_.count(d.spec.endpoint.address)) shared_.missing.insert(d.spec.endpoint.address);
    const auto id = control_.current()->identity;
    for (const auto& g : {id.gateway_v4, id.gateway_v6})
      if (g && !neighbours_.count(*g)) shared_.missing.insert(*g);
  }

  /// Learns what the kernel knows; asks the kernel to resolve the rest (retried every 100 ms).
  void resolve_missing() {
    std::set<lw::ip_address> want;
    {
      std::lock_guard lock(shared_.missing_mu);
      want.swap(shared_.missing);
    }
    if (want.empty()) return;
    std::vector<raw::neighbour> known = raw::kernel_neighbours(outside_.index);
    if (inside_) {
      auto more = raw::kernel_neighbours(inside_->index);
      known.insert(known.end(), more.begin(), more.end());
    }
    for (const auto& n : known) {
      auto it = neighbours_.find(n.ip);
      if (it == neighbours_.end() || it->second.bytes != n.mac.bytes) {
        control_.set_neighbour(n.ip, n.mac);
        neighbours_[n.ip] = n.mac;
        if (o_.verbose) std::fprintf(stderr, "l4lb-director: neighbour %s\n", n.ip.to_string().c_str());
      }
      want.erase(n.ip);
    }
    for (const auto& ip : want) raw::provoke_resolution(ip);
    if (!want.empty()) {
      std::lock_guard lock(shared_.missing_mu);
      shared_.missing.insert(want.begin(), want.end());
    }
  }

  void reload() {
    if (o_.rules.empty()) {
      std::fprintf(stderr, "l4lb-director: SIGHUP: no --rules file to reload\n");
      return;
    }
    std::string text;
    if (!read_file(o_.rules, text)) {
      std::fprintf(stderr, "l4lb-director: reload: %s: %s (rules unchanged)\n", o_.rules.c_str(), std::strerror(errno));
      return;
    }
    auto cmds = cfg::reload_rules(control_.config(), text);
    if (!cmds) {
      std::fprintf(stderr, "l4lb-director: reload: %s: %s (rules unchanged)\n", o_.rules.c_str(),
                   cfg::to_string(cmds.error()).c_str());
      return;
    }
    if (auto a = control_.apply_all(*cmds); !a.ok()) {
      std::fprintf(stderr, "l4lb-director: reload: %s (rules unchanged)\n", std::string(ld::to_string(a.error)).c_str());
      return;
    }
    std::fprintf(stderr, "l4lb-director: reloaded %s (%zu changes)\n", o_.rules.c_str(), cmds->size());
    rules_changed();
  }

  void pause_workers() {
    shared_.pause = true;
    for (auto& w : workers_)
      while (!w->parked && !g_stop) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }

  void serve_one() {
    const int fd = ::accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    timeval tv{2, 0};  // a client that stalls cannot hold the control thread
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    raw::control_response res;
    const auto text = raw::read_all(fd, raw::max_request_bytes);
    const auto req = text ? raw::parse_request(*text) : std::nullopt;
    if (!req) {
      res = {cfg::exit_code::rejected, {}, "l4lb-director: not an l4lbadm request\n"};
    } else {
      std::vector<std::string_view> args(req->args.begin(), req->args.end());
      cfg::ipvsadm_context ctx{control_};
      ctx.now = monotonic_ns();
      ctx.input = req->input;
      ctx.before_connections = [this] { pause_workers(); };
      ctx.after_connections = [this] { shared_.pause = false; };
      const std::uint64_t generation = control_.generation();
      const cfg::ipvsadm_result r = cfg::run_ipvsadm(ctx, args);
      res = {r.exit_status, r.out, r.err};
      if (control_.generation() != generation) {
        rules_changed();
        // As with ipvsadm, the change is in effect when the command returns: wait (bounded)
        // until every worker's director has taken the new snapshot up.
        const std::uint64_t g = control_.generation();
        for (int i = 0; i < 500 && !control_.all_seen(g) && !g_stop; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    (void)raw::write_all(fd, raw::format_response(res));
    ::close(fd);
  }

  void work(worker& w) {
    constexpr std::size_t burst = ld::director::max_burst;
    std::array<lf::frame_buffer, burst> bufs;
    std::array<ld::verdict, burst> verdicts;
    std::array<int, burst> ingress{};
    std::vector<std::span<std::byte>> tx_out, tx_in;
    tx_out.reserve(4 * burst);
    tx_in.reserve(4 * burst);
    std::vector<pollfd> fds;
    for (auto& s : w.sockets) fds.push_back({s->fd(), POLLIN, 0});
    std::size_t n = 0;
    const auto flush = [&] {
      if (n == 0) return;
      w.d->process_burst(std::span(bufs).first(n), std::span(verdicts).first(n), monotonic_ns());
      for (std::size_t i = 0; i < n; ++i) {
        const ld::verdict& v = verdicts[i];
        if (v.kind != ld::verdict_kind::forward && v.kind != ld::verdict_kind::reply) continue;
        // Egress: toward a real server on the inside, toward a client (a NAT reply) or an
        // answer on the outside; one-armed: the only interface.
        bool inside = false;
        if (inside_) inside = v.kind == ld::verdict_kind::forward ? !v.to_client : ingress[i] == 1;
        auto& tx = inside ? tx_in : tx_out;
        if (v.frames.empty()) tx.push_back(v.frame);
        else tx.insert(tx.end(), v.frames.begin(), v.frames.end());
      }
      if (inside_)
        for (auto f : tx_in)
          if (f.size() >= 12) std::memcpy(f.data() + 6, inside_->mac.bytes.data(), 6);
      for (auto* tx : {&tx_out, &tx_in}) {
        if (tx->empty()) continue;
        const int ifindex = tx == &tx_in ? inside_->index : outside_.index;
        const std::size_t sent = w.sockets[0]->send(*tx, ifindex);
        w.sent += sent;
        w.send_failed += tx->size() - sent;
        tx->clear();
      }
      if (auto m = w.d->missing_neighbours(); !m.empty()) {
        std::lock_guard lock(shared_.missing_mu);
        shared_.missing.insert(m.begin(), m.end());
        w.d->clear_missing_neighbours();
      }
      n = 0;
    };
    while (!g_stop) {
      if (shared_.pause) {
        w.parked = true;
        while (shared_.pause && !g_stop) std::this_thread::sleep_for(std::chrono::microseconds(100));
        w.parked = false;
      }
      bool got = false;
      for (std::size_t s = 0; s < w.sockets.size(); ++s) {
        got |= w.sockets[s]->next_block(
            0,
            [&](raw::rx_frame& f) {
              if (f.truncated) {
                ++w.truncated;
                return;
              }
              auto b = lf::frame_buffer::make(f.storage, f.headroom, f.len);
              if (!b) {
                ++w.truncated;
                return;
              }
              bufs[n] = *b;
              ingress[n] = static_cast<int>(s);
              if (++n == burst) flush();
            },
            flush);
      }
      if (!got) {
        // Idle: expire connections on time, then sleep until a block arrives (or 100 ms).
        w.d->process_burst({}, {}, monotonic_ns());
        ::poll(fds.data(), fds.size(), 100);
      }
    }
  }

  options o_;
  raw::interface_info outside_;
  std::optional<raw::interface_info> inside_;
  ld::director_control control_;
  std::unique_ptr<raw::nft_guard> guard_;
  std::vector<std::unique_ptr<worker>> workers_;
  shared_state shared_;
  std::map<lw::ip_address, lw::mac_address> neighbours_;
  int control_fd_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    director_app app(o);
    return app.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "l4lb-director: %s\n", e.what());
    return 1;
  }
}
