// Floods through one director (issue #14): frames per second that process_burst sustains for a
// spoofed SYN flood, a spoofed UDP flood, ICMP errors quoting random flows and first fragments
// that never complete, each against a table holding 10 000 established flows (16 384 slots, so
// the SYN and UDP floods run with the table full). Baseline in the same binary: the same director
// forwarding those established flows' packets. tests/director/flood_test.cpp checks that no
// established flow is lost under each flood; this measures the price.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "support/director_setup.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::director;
using l4lb::test::bytes;
using l4lb::test::packet_builder;
namespace tf = l4lb::wire::tcp_flags;

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::size_t burst = 32, headroom = 128, slot = 2048;
constexpr std::uint32_t capacity = 16384, flows = 10000;
const wire::mac_address director_mac = l4lb::test::mac("02:00:00:00:00:01");
const wire::mac_address router_mac = l4lb::test::mac("02:00:00:00:00:fe");

wire::ip_address ip(const std::string& s) { return *wire::ip_address::parse(s); }
std::string dotted(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
         std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255);
}
// Flows' clients in 198.19.0.0/17, spoofed sources in 198.19.128.0/17.
std::string client(std::uint32_t i) { return dotted(0xC6130000u + i); }
std::string spoofed(std::uint32_t r) { return dotted(0xC6138000u + (r & 0x7FFF)); }

bytes tcp(const std::string& src, std::uint16_t sport, std::uint8_t flags) {
  return packet_builder{}.eth(director_mac, router_mac).ipv4(src, "198.18.0.100").tcp(sport, 80, flags).build();
}

enum class flood { established, syn, udp, icmp, fragments };

struct fixture {
  director_control control;
  std::unique_ptr<l4lb::director::director> d;
  std::vector<bytes> frames;
  std::vector<std::byte> rx = std::vector<std::byte>(burst * slot);
  std::vector<forward::frame_buffer> bufs = std::vector<forward::frame_buffer>(burst);
  std::vector<verdict> out = std::vector<verdict>(burst);
  std::int64_t now = sec;

  explicit fixture(flood kind) {
    l4lb::bench::set_bench_identity(control, director_mac, router_mac);
    for (const auto& [key, port] : {std::pair{service_key::tcp({ip("198.18.0.100"), 80}), 80},
                                    std::pair{service_key::udp({ip("198.18.0.100"), 53}), 53}}) {
      service_spec s;
      s.key = key;
      s.scheduler = "rr";
      (void)control.apply(add_service{s});
      for (int k = 12; k <= 13; ++k) {
        const std::string a = "198.18.0." + std::to_string(k);
        control.set_neighbour(ip(a), l4lb::test::mac("02:00:c6:12:00:" + std::to_string(k)));
        real_server_spec r;
        r.endpoint = {ip(a), static_cast<std::uint16_t>(port)};
        (void)control.apply(add_dest{key, r});
      }
    }
    director_config cfg;
    cfg.conn_capacity_v4 = capacity;
    cfg.conn_capacity_v6 = 64;
    cfg.template_capacity = 0;
    d = std::make_unique<l4lb::director::director>(control, cfg);
    for (std::uint32_t i = 0; i < flows; ++i)
      for (std::uint8_t fl : {std::uint8_t{tf::syn}, std::uint8_t{tf::ack}}) run_one(tcp(client(i), static_cast<std::uint16_t>(10000 + i % 50000), fl));
    std::mt19937 rng(5);
    const auto r = [&] { return static_cast<std::uint32_t>(rng()); };
    // The SYN and UDP floods cycle through twice the table's capacity of distinct sources, so
    // the table stays full and every new entry evicts an old one (or is refused).
    const std::size_t pool = kind == flood::syn || kind == flood::udp ? 2 * capacity : 4096;
    for (std::size_t j = 0; j < pool; ++j) {
      const auto port = static_cast<std::uint16_t>(1024 + r() % 60000);
      switch (kind) {
        case flood::established: {
          const std::uint32_t i = r() % flows;
          frames.push_back(tcp(client(i), static_cast<std::uint16_t>(10000 + i % 50000), tf::ack));
          break;
        }
        case flood::syn: frames.push_back(tcp(spoofed(r()), port, tf::syn)); break;
        case flood::udp:
          frames.push_back(packet_builder{}.eth(director_mac, router_mac).ipv4(spoofed(r()), "198.18.0.100")
                               .udp(port, 53).payload("query").build());
          break;
        case flood::icmp: {
          const packet_builder quoted = packet_builder{}.ipv4("198.18.0.100", spoofed(r())).tcp(80, port, tf::ack);
          frames.push_back(packet_builder{}.eth(director_mac, router_mac).ipv4("198.18.2.1", "198.18.0.100")
                               .icmp(3, 1).quote(quoted).build());
          break;
        }
        case flood::fragments: {
          // The first 8 bytes (the UDP header) of a datagram that never completes: MF set, a
          // fresh identification each time.
          bytes f = packet_builder{}.eth(director_mac, router_mac).ipv4(spoofed(r()), "198.18.0.100")
                        .udp(port, 53).payload("12345678").build();
          f.resize(14 + 28);
          f[16] = std::byte{0};
          f[17] = std::byte{28};
          f[18] = static_cast<std::byte>(j >> 8);
          f[19] = static_cast<std::byte>(j & 255);
          f[20] = std::byte{0x20};
          l4lb::test::refresh_ipv4_checksum(f);
          frames.push_back(std::move(f));
          break;
        }
      }
    }
  }
  void load(std::size_t j, const bytes& f) {
    std::byte* p = rx.data() + j * slot;
    std::memcpy(p + headroom, f.data(), f.size());
    bufs[j] = *forward::frame_buffer::make(std::span(p, slot), headroom, f.size());
  }
  void run_one(const bytes& f) {
    load(0, f);
    d->process_burst(std::span(bufs).first(1), std::span(out).first(1), now);
  }
};

void BM_flood(benchmark::State& state, flood kind) {
  fixture fx(kind);
  std::size_t at = 0;
  std::uint64_t bursts = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      fx.load(j, fx.frames[at]);
      at = (at + 1) % fx.frames.size();
    }
    fx.d->process_burst(fx.bufs, fx.out, fx.now);
    if (++bursts % 1024 == 0) fx.now += sec / 100;  // time moves: timers and fragments expire
    benchmark::DoNotOptimize(fx.out.data());
  }
  const auto& v = fx.d->verdicts();
  if (kind == flood::established && v.dropped != 0) state.SkipWithError("an established packet was dropped");
  const auto packets = state.iterations() * static_cast<std::int64_t>(burst);
  state.SetItemsProcessed(packets);
  state.counters["ns_per_packet"] = benchmark::Counter(static_cast<double>(packets),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["table_full"] = static_cast<double>(v.dropped_director[static_cast<std::size_t>(director_drop::table_full)]);
  state.counters["evicted"] = static_cast<double>(fx.d->table_v4().stats().evicted_embryonic +
                                                  fx.d->table_v4().stats().evicted_inactive);
}

BENCHMARK_CAPTURE(BM_flood, established_baseline, flood::established);
BENCHMARK_CAPTURE(BM_flood, spoofed_syn, flood::syn);
BENCHMARK_CAPTURE(BM_flood, spoofed_udp, flood::udp);
BENCHMARK_CAPTURE(BM_flood, icmp_errors, flood::icmp);
BENCHMARK_CAPTURE(BM_flood, fragments_never_completed, flood::fragments);

}  // namespace
