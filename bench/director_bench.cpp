// The whole director pipeline (parse + connection lookup + state + rewrite + stats + verdict),
// with its baseline in the same binary:
//   pipeline/<method>/conns:N      established flows, bursts of 32, frames copied into the
//                                  receive buffers first (as a NIC writes them)
//   naive/<method>/conns:N         the same frames through a naive pipeline: the same parser,
//                                  std::unordered_map keyed by the 5-tuple, full checksum
//                                  recomputation (IPv4 header; TCP for NAT)
//   copy_only                      the frame copies alone (the floor both pay)
//   new_conn/<sched>               SYN → schedule → insert → rewrite, in bursts of 32
//   two_directors (threads:1 / 2)  one director per thread on its own flows, one published
//                                  configuration: items/s summed over threads
// Counters: bytes_per_conn = the director's tables (both families, templates) / capacity.
// *_hugepages: the connection tables on transparent huge pages (conn/huge_page_resource.hpp).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#include "l4lb/conn/huge_page_resource.hpp"
#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::director;
using l4lb::test::bytes;
using l4lb::test::packet_builder;
namespace tf = l4lb::wire::tcp_flags;

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::size_t burst = 32;
constexpr std::int64_t burst_i = 32;
constexpr std::size_t pool = 1u << 16;  // distinct frames cycled (4 MiB of 64-byte frames)
constexpr std::size_t frame_len = 64;   // Ethernet + IPv4 + TCP, padded
constexpr std::size_t headroom = 64;
constexpr std::size_t slot = 256;

const wire::mac_address director_mac = l4lb::test::mac("02:00:c6:12:00:01");
const wire::mac_address router_mac = l4lb::test::mac("02:00:c6:12:00:fe");

wire::ip_address ip(const char* s) { return *wire::ip_address::parse(s); }
wire::endpoint ep(const char* s) { return *wire::endpoint::parse(s); }

// Client i: 198.18.128.0/17 .. 198.19.x.x, ports 1024.. (distinct for i < 2^24).
std::string client_ip(std::uint32_t i) {
  const std::uint32_t a = 0xC612'8000u + (i >> 6);
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}
std::uint16_t client_port(std::uint32_t i) { return static_cast<std::uint16_t>(1024 + (i & 63) * 97); }

bytes frame_for(std::uint32_t i, std::uint8_t flags) {
  bytes f = packet_builder{}
                .eth(director_mac, router_mac)
                .ipv4(client_ip(i), "198.18.0.100")
                .tcp(client_port(i), 80, flags)
                .build();
  f.resize(frame_len);  // Ethernet minimum-size padding after the IP packet
  return f;
}

enum class method_kind { dr, nat, tun };

struct setup {
  director_control control;
  std::unique_ptr<l4lb::director::director> d;
  std::vector<bytes> frames;  // pool of established-flow frames (ACKs)
  std::vector<std::byte> rx;  // receive buffers: burst slots
  std::vector<forward::frame_buffer> bufs;
  std::vector<verdict> out;
  std::int64_t now = sec;

  setup(method_kind m, std::uint32_t conns, const char* sched, bool huge, std::uint32_t seed = 1) {
    director_identity id;
    id.mac = director_mac;
    id.addresses = {ip("198.18.0.1")};
    id.gateway_v4 = ip("198.18.0.254");
    control.set_identity(id);
    control.set_neighbour(ip("198.18.0.254"), router_mac);
    const auto svc = service_key::tcp(ep("198.18.0.100:80"));
    service_spec s;
    s.key = svc;
    s.scheduler = sched;
    (void)control.apply(add_service{s});
    for (int k = 0; k < 8; ++k) {
      const std::string a = "198.18.0." + std::to_string(10 + k);
      control.set_neighbour(ip(a.c_str()), l4lb::test::mac("02:00:c6:12:00:" + std::to_string(10 + k)));
      real_server_spec r;
      r.endpoint = {ip(a.c_str()), static_cast<std::uint16_t>(m == method_kind::nat ? 8080 : 80)};
      r.method = m == method_kind::dr ? forward_method::route
                 : m == method_kind::nat ? forward_method::masq : forward_method::tunnel;
      (void)control.apply(add_dest{svc, r});
    }
    director_config cfg;
    cfg.conn_capacity_v4 = std::max<std::uint32_t>(conns + conns / 4, 1024);
    cfg.conn_capacity_v6 = 64;
    cfg.template_capacity = 0;
    cfg.seed = seed;
    static conn::huge_page_resource huge_pages;
    if (huge) cfg.memory = &huge_pages;
    d = std::make_unique<l4lb::director::director>(control, cfg);
    rx.resize(burst * slot);
    bufs.resize(burst);
    out.resize(burst);
    // Establish the connections (SYN then ACK), through the director itself.
    for (std::uint32_t i = 0; i < conns; i += burst) {
      const std::uint32_t n = std::min<std::uint32_t>(burst, conns - i);
      for (std::uint8_t fl : {std::uint8_t{tf::syn}, std::uint8_t{tf::ack}}) {
        for (std::uint32_t j = 0; j < n; ++j) load(j, frame_for(i + j, fl));
        d->process_burst(std::span(bufs).first(n), std::span(out).first(n), now);
      }
    }
    std::mt19937 rng(seed);
    const std::size_t k = std::min<std::size_t>(pool, conns);
    frames.reserve(k);
    for (std::size_t j = 0; j < k; ++j)
      frames.push_back(frame_for(conns <= pool ? static_cast<std::uint32_t>(j) : static_cast<std::uint32_t>(rng() % conns), tf::ack));
  }
  void load(std::size_t j, const bytes& f) {
    std::byte* p = rx.data() + j * slot;
    std::memcpy(p + headroom, f.data(), f.size());
    bufs[j] = *forward::frame_buffer::make(std::span(p, slot), headroom, f.size());
  }
  [[nodiscard]] double bytes_per_conn(std::uint32_t conns) const {
    return static_cast<double>(d->memory_bytes()) / conns;
  }
};

void BM_pipeline(benchmark::State& state, method_kind m, bool huge) {
  const auto conns = static_cast<std::uint32_t>(state.range(0));
  setup s(m, conns, "rr", huge);
  std::size_t at = 0;
  std::uint64_t forwarded = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      s.load(j, s.frames[at]);
      at = (at + 1) % s.frames.size();
    }
    s.d->process_burst(s.bufs, s.out, s.now);
    for (const auto& v : s.out) forwarded += v.kind == verdict_kind::forward;
    benchmark::DoNotOptimize(s.out.data());
  }
  if (forwarded != static_cast<std::uint64_t>(state.iterations() * burst_i)) state.SkipWithError("a frame was not forwarded");
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_conn"] = s.bytes_per_conn(conns);
}

// The naive pipeline: the same parser; a std::unordered_map from the 5-tuple to the server;
// the rewrite with full checksums.
struct five_tuple {
  std::uint32_t src, dst;
  std::uint16_t sport, dport;
  std::uint8_t proto;
  bool operator==(const five_tuple&) const = default;
};
struct five_tuple_hash {
  std::size_t operator()(const five_tuple& k) const noexcept {
    return std::hash<std::uint64_t>{}((std::uint64_t{k.src} << 32) ^ k.dst) ^
           std::hash<std::uint32_t>{}((std::uint32_t{k.sport} << 16 | k.dport) ^ k.proto);
  }
};
struct naive_value {
  std::uint32_t server;
  std::uint16_t port;
  std::uint8_t state;
  std::int64_t deadline;
};

void BM_naive(benchmark::State& state, method_kind m) {
  const auto conns = static_cast<std::uint32_t>(state.range(0));
  std::unordered_map<five_tuple, naive_value, five_tuple_hash> map;
  map.reserve(conns);
  const auto key_of = [](const wire::packet_view& p) {
    const auto& k = p.key();
    std::uint32_t s, d;
    std::memcpy(&s, k.src_addr.data(), 4);
    std::memcpy(&d, k.dst_addr.data(), 4);
    return five_tuple{s, d, k.src_port, k.dst_port, k.protocol};
  };
  for (std::uint32_t i = 0; i < conns; ++i) {
    bytes f = frame_for(i, tf::ack);
    auto p = wire::parse(std::span(f));
    map[key_of(*p)] = {0xC612000Au + (i & 7), 8080, 1, 0};
  }
  std::vector<bytes> frames;
  std::mt19937 rng(1);
  const std::size_t k = std::min<std::size_t>(pool, conns);
  for (std::size_t j = 0; j < k; ++j)
    frames.push_back(frame_for(conns <= pool ? static_cast<std::uint32_t>(j) : static_cast<std::uint32_t>(rng() % conns), tf::ack));
  std::vector<std::byte> rx(burst * slot);
  std::size_t at = 0;
  const std::int64_t now = sec;
  std::uint64_t forwarded = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      std::memcpy(rx.data() + j * slot + headroom, frames[at].data(), frame_len);
      at = (at + 1) % frames.size();
    }
    for (std::size_t j = 0; j < burst; ++j) {
      std::byte* f = rx.data() + j * slot + headroom;
      auto p = wire::parse(std::span(f, frame_len), {true, true});
      if (!p) continue;
      auto it = map.find(key_of(*p));
      if (it == map.end()) continue;
      it->second.deadline = now + 900 * sec;
      it->second.state = (p->tcp_flags() & tf::fin) ? 4 : 1;
      auto l3 = p->l3();
      if (m == method_kind::dr || m == method_kind::tun) {
        std::memcpy(f, "\x02\x00\xc6\x12\x00\x0a", 6);
        std::memcpy(f + 6, director_mac.bytes.data(), 6);
      }
      l3[8] = std::byte{static_cast<std::uint8_t>(std::to_integer<std::uint8_t>(l3[8]) - 1)};
      if (m == method_kind::nat) {
        std::memcpy(l3.data() + 16, &it->second.server, 4);
        auto l4 = p->l4();
        l4[2] = std::byte{static_cast<std::uint8_t>(it->second.port >> 8)};
        l4[3] = std::byte{static_cast<std::uint8_t>(it->second.port)};
        l4[16] = l4[17] = std::byte{0};
        wire::ipv4_address src, dst;
        std::memcpy(src.bytes.data(), l3.data() + 12, 4);
        std::memcpy(dst.bytes.data(), l3.data() + 16, 4);
        const std::uint16_t c = wire::l4_checksum_v4(src, dst, 6, l4);
        l4[16] = std::byte{static_cast<std::uint8_t>(c >> 8)};
        l4[17] = std::byte{static_cast<std::uint8_t>(c)};
      }
      l3[10] = l3[11] = std::byte{0};
      const std::uint16_t c = wire::ipv4_header_checksum(l3.first(20));
      l3[10] = std::byte{static_cast<std::uint8_t>(c >> 8)};
      l3[11] = std::byte{static_cast<std::uint8_t>(c)};
      ++forwarded;
    }
    benchmark::DoNotOptimize(rx.data());
  }
  if (forwarded != static_cast<std::uint64_t>(state.iterations() * burst_i)) state.SkipWithError("a frame was not forwarded");
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_copy_only(benchmark::State& state) {
  std::vector<bytes> frames;
  for (std::uint32_t j = 0; j < pool; ++j) frames.push_back(frame_for(j, tf::ack));
  std::vector<std::byte> rx(burst * slot);
  std::size_t at = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      std::memcpy(rx.data() + j * slot + headroom, frames[at].data(), frame_len);
      at = (at + 1) % frames.size();
    }
    benchmark::DoNotOptimize(rx.data());
  }
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// New connections: every SYN is a new flow; the table is rebuilt (untimed) before it fills.
void BM_new_conn(benchmark::State& state, const char* sched) {
  constexpr std::uint32_t capacity = 1u << 20;
  auto s = std::make_unique<setup>(method_kind::dr, 0, sched, false);
  std::uint32_t next = 0;
  std::uint64_t forwarded = 0;
  std::vector<bytes> syns;
  for (std::uint32_t j = 0; j < pool; ++j) syns.push_back(frame_for(j, tf::syn));
  std::uint32_t epoch = 0;
  for (auto _ : state) {
    if (next + burst > capacity) {
      state.PauseTiming();
      s = std::make_unique<setup>(method_kind::dr, 0, sched, false, ++epoch + 1);
      next = 0;
      state.ResumeTiming();
    }
    for (std::size_t j = 0; j < burst; ++j) {
      // Distinct flows: the pool's frames with the source port rewritten per round.
      const bytes& f = syns[(next + j) % pool];
      s->load(j, f);
      std::byte* tcp = s->rx.data() + j * slot + headroom + 34;
      const auto round = static_cast<std::uint16_t>((next + j) / pool);
      tcp[0] = std::byte{static_cast<std::uint8_t>(std::to_integer<std::uint8_t>(tcp[0]) ^ (round >> 8))};
      tcp[1] = std::byte{static_cast<std::uint8_t>(std::to_integer<std::uint8_t>(tcp[1]) ^ round)};
    }
    next += burst;
    s->d->process_burst(s->bufs, s->out, s->now);
    for (const auto& v : s->out) forwarded += v.kind == verdict_kind::forward;
  }
  if (forwarded != static_cast<std::uint64_t>(state.iterations() * burst_i)) state.SkipWithError("a SYN was not forwarded");
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_conn"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Two directors on two threads share one configuration; each has its own flows and tables.
struct shared_setup {
  std::unique_ptr<setup> s[2];
};
shared_setup& shared(std::uint32_t conns) {
  static shared_setup sh;
  static std::uint32_t made_for = 0;
  if (made_for != conns) {
    for (int t = 0; t < 2; ++t) sh.s[t] = std::make_unique<setup>(method_kind::dr, conns, "rr", false, 7 + t);
    made_for = conns;
  }
  return sh;
}
void BM_two_directors(benchmark::State& state) {
  const auto conns = static_cast<std::uint32_t>(state.range(0));
  setup& s = *shared(conns).s[state.thread_index()];
  std::size_t at = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      s.load(j, s.frames[at]);
      at = (at + 1) % s.frames.size();
    }
    s.d->process_burst(s.bufs, s.out, s.now);
    benchmark::DoNotOptimize(s.out.data());
  }
  state.SetItemsProcessed(state.iterations() * burst_i);
}

void sizes(benchmark::internal::Benchmark* b) { b->Arg(1000)->Arg(1000000); }

}  // namespace

BENCHMARK(BM_copy_only);
BENCHMARK_CAPTURE(BM_pipeline, dr, method_kind::dr, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_naive, dr, method_kind::dr)->Apply(sizes);
BENCHMARK_CAPTURE(BM_pipeline, tun, method_kind::tun, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_naive, tun, method_kind::tun)->Apply(sizes);
BENCHMARK_CAPTURE(BM_pipeline, nat, method_kind::nat, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_naive, nat, method_kind::nat)->Apply(sizes);
BENCHMARK_CAPTURE(BM_pipeline, dr_hugepages, method_kind::dr, true)->Arg(1000000)->Arg(4000000);
BENCHMARK_CAPTURE(BM_pipeline, dr_4M, method_kind::dr, false)->Arg(4000000);
BENCHMARK_CAPTURE(BM_new_conn, rr, "rr");
BENCHMARK_CAPTURE(BM_new_conn, wlc, "wlc");
BENCHMARK_CAPTURE(BM_new_conn, mh, "mh");
BENCHMARK(BM_two_directors)->Arg(1000000)->Threads(1)->Threads(2)->UseRealTime();
