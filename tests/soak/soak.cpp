// The soak (issue #14): at least 100 M packets through one director with churn — connections
// opening (SYN), carrying data, closing (FIN or RST) and expiring; servers reweighted, removed and
// added back; time moving on — sampling every 10 M packets. It fails when memory grows by more
// than 1 MiB after a warm-up of 30 M packets (RSS from /proc/self/statm: the director allocates
// nothing after construction; the control plane's snapshots are freed as they retire), when
// the listings' counts stop matching the table's contents, when a verdict is anything but forward
// for a tracked flow's packet, or when a sample's throughput falls below a third of the median
// (a leak-like slowdown; the machine is shared, so the bound is loose).
//   l4lb_soak [PACKETS]   (default 100 000 000; ctest -L soak, registered with -DL4LB_SOAK=ON)
#include <algorithm>
#include <array>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::director;
using l4lb::test::packet_builder;
namespace tf = l4lb::wire::tcp_flags;

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::size_t burst = 32, headroom = 128, slot = 256;
constexpr std::uint32_t flows = 200'000, capacity = 1u << 18;

wire::ip_address ip(const std::string& s) { return *wire::ip_address::parse(s); }

long rss_kib() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int fail(const char* what) {
  std::fprintf(stderr, "soak: FAIL: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100'000'000ull;
  const wire::mac_address dmac = l4lb::test::mac("02:00:00:00:00:01"), rmac = l4lb::test::mac("02:00:00:00:00:fe");
  director_control control;
  director_identity id;
  id.mac = dmac;
  id.addresses = {ip("198.18.0.1")};
  control.set_identity(id);
  const service_key svc = service_key::tcp({ip("198.18.0.100"), 80});
  service_spec s;
  s.key = svc;
  s.scheduler = "wlc";
  (void)control.apply(add_service{s});
  std::vector<real_server_spec> servers;
  for (int k = 10; k < 18; ++k) {
    const std::string a = "198.18.0." + std::to_string(k);
    control.set_neighbour(ip(a), l4lb::test::mac("02:00:c6:12:00:" + std::to_string(k)));
    real_server_spec r;
    r.endpoint = {ip(a), 80};
    servers.push_back(r);
    (void)control.apply(add_dest{svc, r});
  }
  director_config cfg;
  cfg.conn_capacity_v4 = capacity;
  cfg.conn_capacity_v6 = 64;
  l4lb::director::director d(control, cfg);

  // One template frame per flag kind; each packet patches the client address and port.
  const auto make = [&](std::uint8_t flags) {
    return packet_builder{}.eth(dmac, rmac).ipv4("198.19.0.1", "198.18.0.100").tcp(1, 80, flags).payload("x").build();
  };
  const l4lb::test::bytes syn = make(tf::syn), ack = make(tf::ack | tf::psh), fin = make(tf::fin | tf::ack),
                          rst = make(tf::rst);
  std::vector<std::byte> rx(burst * slot);
  std::vector<forward::frame_buffer> bufs(burst);
  std::vector<verdict> out(burst);
  std::vector<std::uint8_t> state(flows, 0);  // 1: its SYN was forwarded
  std::mt19937_64 rng(3);
  std::int64_t now = sec;
  std::uint64_t done = 0, unexpected = 0, next_sample = 10'000'000, generation = 0;
  std::vector<double> mpps;
  long rss_warm = 0, rss_max = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::uint64_t at_t0 = 0;
  std::array<std::uint32_t, burst> flow{};
  std::array<int, burst> kind{};  // 0 SYN, 1 data, 2 FIN or RST
  while (done < total) {
    for (std::size_t j = 0; j < burst; ++j) {
      const auto f = static_cast<std::uint32_t>(rng() % flows);
      const l4lb::test::bytes* t;
      flow[j] = f;
      if (state[f] == 0) {
        t = &syn;
        kind[j] = 0;
      } else {
        const auto r = rng() % 64;
        t = r == 0 ? &fin : r == 1 ? &rst : &ack;
        kind[j] = r <= 1 ? 2 : 1;
      }
      std::byte* p = rx.data() + j * slot;
      std::memcpy(p + headroom, t->data(), t->size());
      const std::uint32_t a = 0xC6130000u + (f >> 8);  // 198.19.x.y
      for (std::size_t k = 0; k < 4; ++k) p[headroom + 26 + k] = static_cast<std::byte>(a >> (24 - 8 * k));
      const auto port = static_cast<std::uint16_t>(1024 + (f & 0xFF) * 64);
      p[headroom + 34] = static_cast<std::byte>(port >> 8);
      p[headroom + 35] = static_cast<std::byte>(port & 0xFF);
      // The director verifies the IPv4 header checksum.
      l4lb::test::refresh_ipv4_checksum(std::span(p + headroom, t->size()));
      bufs[j] = *forward::frame_buffer::make(std::span(p, slot), headroom, t->size());
    }
    d.process_burst(bufs, out, now);
    for (std::size_t j = 0; j < burst; ++j) {
      const verdict& v = out[j];
      if (kind[j] == 0) {
        state[flow[j]] = v.kind == verdict_kind::forward ? 1 : 0;  // refused: it tries again later
      } else if (kind[j] == 2) {
        state[flow[j]] = 0;
      } else if (v.kind != verdict_kind::forward) {
        // A tracked flow's data: its server may have been removed (its packets are dropped, as
        // IPVS's) or its connection may have timed out while time jumped; it starts again.
        if (v.reason() != "dest_removed" && v.reason() != "no_service" && v.reason() != "not_schedulable") ++unexpected;
        state[flow[j]] = 0;
      }
    }
    done += burst;
    now += 2'000;  // 2 µs per burst: 100 M packets span about 6 s of director time
    if (done % (1u << 20) < burst) {
      // Churn in the rules: reweight one server, and now and then remove one and add it back.
      const auto& r = servers[rng() % servers.size()];
      real_server_spec e = r;
      e.weight = static_cast<std::uint32_t>(rng() % 4);
      (void)control.apply(edit_dest{svc, e});
      if (rng() % 4 == 0) {
        (void)control.apply(delete_dest{svc, r.endpoint});
        (void)control.apply(add_dest{svc, r});
      }
      control.collect_retired();
      ++generation;
      now += 30 * sec;  // idle flows time out now and then
    }
    if (done >= next_sample) {
      next_sample += 10'000'000;
      const auto t1 = std::chrono::steady_clock::now();
      const double secs = std::chrono::duration<double>(t1 - t0).count();
      mpps.push_back(static_cast<double>(done - at_t0) / secs / 1e6);
      t0 = t1;
      at_t0 = done;
      // Warm-up: the first 30 M packets (the table's pages are first touched, the retired
      // handles fill up); after it, memory must stay where it was.
      const long rss = rss_kib();
      if (done <= 30'000'000) rss_warm = std::max(rss_warm, rss);
      else rss_max = std::max(rss_max, rss);
      // The listings' counts against the table's contents.
      std::uint64_t active = 0, inactive = 0;
      const configuration c = control.config();
      for (const auto& de : c.find(svc)->dests) {
        const dest_status st = control.dest_stats(de.handle);
        active += st.active_conns;
        inactive += st.inactive_conns;
      }
      std::uint64_t retired = 0;  // connections of servers removed and not yet expired
      for (std::uint32_t h : c.retired_handles()) {
        const dest_status st = control.dest_stats(h);
        retired += st.active_conns + st.inactive_conns;
      }
      std::printf("soak: %6.1f M packets  %5.2f Mpps  RSS %ld KiB  table %u  active %llu inactive %llu retired %llu\n",
                  static_cast<double>(done) / 1e6, mpps.back(), rss, d.table_v4().size(),
                  static_cast<unsigned long long>(active), static_cast<unsigned long long>(inactive),
                  static_cast<unsigned long long>(retired));
      std::fflush(stdout);
      if (active + inactive + retired != d.table_v4().size()) return fail("counts differ from the table's contents");
    }
  }
  std::sort(mpps.begin(), mpps.end());
  const double median = mpps[mpps.size() / 2];
  std::printf("soak: %llu packets, median %.2f Mpps (min %.2f), RSS after warm-up %ld KiB, max %ld KiB, %llu unexpected verdicts\n",
              static_cast<unsigned long long>(done), median, mpps.front(), rss_warm, rss_max,
              static_cast<unsigned long long>(unexpected));
  if (rss_max > rss_warm + 1024) return fail("memory grew more than 1 MiB after the warm-up");
  if (done <= 30'000'000) return fail("too few packets to judge memory after the warm-up (30 M)");
  if (mpps.front() < median / 3) return fail("a sample's throughput fell below a third of the median");
  if (unexpected != 0) return fail("a tracked flow's packet was not forwarded");
  std::printf("soak: PASS\n");
  return 0;
}
