// Configuration changes while directors run on other threads (run under ThreadSanitizer by
// scripts/test's tsan preset): a packet never sees half a change — whether it comes as commands
// or as a whole rule file reloaded — live connections of untouched services keep their servers,
// and retired handles come back once their connections are gone.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>

#include "director/director_support.hpp"
#include "l4lb/config/reload.hpp"

using namespace director_test;

namespace {
// Two server sets a rule reload swaps between, as one change each time.
const service_key swap_svc = service_key::udp(ep("198.18.0.100:53"));
const service_key steady = service_key::tcp(ep("198.18.0.100:80"));

std::vector<command> rules(bool second) {
  auto s = service(swap_svc, "rr");
  s.one_packet = true;  // every datagram scheduled on its own: it shows the snapshot it saw
  std::vector<command> c{delete_service{swap_svc}, add_service{s}};
  const char* a = second ? "198.18.0.13:53" : "198.18.0.11:53";
  const char* b = second ? "198.18.0.12:53" : "198.18.0.20:53";
  c.push_back(add_dest{swap_svc, server(a)});
  c.push_back(add_dest{swap_svc, server(b)});
  return c;
}
// The same two states as a whole rule file, as SIGHUP reloads it (config::reload_rules): the
// steady service as it is, the swapped one with the other set.
std::string rules_file(bool second) {
  std::string t = "-A -t 198.18.0.100:80 -s rr\n"
                  "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
                  "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n"
                  "-A -u 198.18.0.100:53 -s rr -o\n";
  t += second ? "-a -u 198.18.0.100:53 -r 198.18.0.13:53 -g -w 1\n-a -u 198.18.0.100:53 -r 198.18.0.12:53 -g -w 1\n"
              : "-a -u 198.18.0.100:53 -r 198.18.0.11:53 -g -w 1\n-a -u 198.18.0.100:53 -r 198.18.0.20:53 -g -w 1\n";
  return t;
}
}  // namespace

TEST_SUITE("director") {
TEST_CASE("runtime changes: two directors on two threads while the control plane reloads") {
  lab l;
  l.control.set_neighbour(ip("198.18.0.20"), mac_of(ip("198.18.0.20")));
  l.must(add_service{service(steady, "rr")});
  l.must(add_dest{steady, server("198.18.0.12:80")});
  l.must(add_dest{steady, server("198.18.0.13:80")});
  {
    auto s = service(swap_svc, "rr");
    l.must(add_service{s});
  }
  l4lb::director::director second(l.control, lab::small());
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0}, moved{0}, forwarded{0};

  auto worker = [&](l4lb::director::director& d, std::uint16_t base) {
    std::vector<bytes> frames;
    for (std::uint16_t i = 0; i < 16; ++i)
      frames.push_back(udp4("198.18.1.10", static_cast<std::uint16_t>(base + i), "198.18.0.100", 53));
    // A long-lived TCP flow on the untouched service.
    const bytes syn = tcp4("198.18.1.20", base, "198.18.0.100", 80, tf::syn);
    const bytes ack = tcp4("198.18.1.20", base, "198.18.0.100", 80, tf::ack);
    std::vector<bytes> storage(frames.size() + 1, bytes(2048));
    std::vector<forward::frame_buffer> bufs(frames.size() + 1);
    std::vector<verdict> out(frames.size() + 1);
    wire::mac_address steady_mac{};
    std::int64_t now = sec;
    for (int round = 0; !stop.load(std::memory_order_relaxed) || round < 50; ++round) {
      now += sec / 100;
      for (std::size_t i = 0; i < frames.size(); ++i) {
        std::copy(frames[i].begin(), frames[i].end(), storage[i].begin() + 128);
        bufs[i] = *forward::frame_buffer::make(storage[i], 128, frames[i].size());
      }
      const bytes& t = round == 0 ? syn : ack;
      std::copy(t.begin(), t.end(), storage.back().begin() + 128);
      bufs.back() = *forward::frame_buffer::make(storage.back(), 128, t.size());
      d.process_burst(bufs, out, now);
      // Within one burst every pick comes from one snapshot: one set or the other, never both.
      bool first_set = false, second_set = false;
      for (std::size_t i = 0; i < frames.size(); ++i) {
        if (out[i].kind != verdict_kind::forward) continue;
        forwarded.fetch_add(1, std::memory_order_relaxed);
        const auto m = eth_dst(out[i].frame);
        if (m == mac_of(ip("198.18.0.11")) || m == mac_of(ip("198.18.0.20"))) first_set = true;
        if (m == mac_of(ip("198.18.0.13")) || m == mac_of(ip("198.18.0.12"))) second_set = true;
      }
      if (first_set && second_set) torn.fetch_add(1);
      if (out.back().kind == verdict_kind::forward) {
        const auto m = eth_dst(out.back().frame);
        if (round == 0) steady_mac = m;
        else if (m != steady_mac) moved.fetch_add(1);
      } else {
        moved.fetch_add(1);
      }
    }
  };
  std::thread t1(worker, std::ref(*l.d), std::uint16_t{10000});
  std::thread t2(worker, std::ref(second), std::uint16_t{20000});
  // ThreadSanitizer runs this about 20x slower: fewer reloads there keep CI short.
#if defined(__SANITIZE_THREAD__)
  constexpr int reloads = 500;
#else
  constexpr int reloads = 2000;
#endif
  int applied = 0;
  for (int i = 0; i < reloads; ++i) {
    if (i % 4 == 3) {
      // Every fourth: the rule file's text, parsed and turned into the changes it needs.
      auto cmds = l4lb::config::reload_rules(l.control.config(), rules_file(i % 2 == 1));
      if (cmds && l.control.apply_all(*cmds).ok()) ++applied;
    } else if (l.control.apply_all(rules(i % 2 == 1)).ok()) {
      ++applied;
    }
    if (i % 50 == 0) {
      // Edits and removals on the steady service's other servers, and neighbour refreshes.
      (void)l.control.apply(add_dest{steady, server("198.18.0.11:80", forward_method::route, 0)});
      (void)l.control.apply(delete_dest{steady, ep("198.18.0.11:80")});
      l.control.set_neighbour(ip("198.18.0.20"), mac_of(ip("198.18.0.20")));
    }
    (void)l.control.service_stats(0);
    (void)l.control.dest_stats(0);
    (void)l.control.collect_retired();
  }
  stop = true;
  t1.join();
  t2.join();
  CHECK(applied == reloads);
  CHECK(torn.load() == 0);
  CHECK(moved.load() == 0);
  CHECK(forwarded.load() > 0);
}
}
