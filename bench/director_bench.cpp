// The whole director pipeline (parse + connection lookup + state + rewrite + stats + verdict),
// with its baseline in the same binary:
//   pipeline/<method>/N            N established flows (1K .. 10M), bursts of 32, frames copied
//                                  into the receive buffers first (as a NIC writes them)
//   naive/<method>/N               the same frames through a naive pipeline: the same parser,
//                                  std::unordered_map keyed by the 5-tuple, full checksum
//                                  recomputation (IPv4 header; TCP for NAT)
//   nat_replies/lane/N             NAT's reply direction: the real servers' answers to the same
//                                  N flows (server -> client, from the VIP); .../general_path/N
//                                  the same with the fast lanes off
//   pipeline/<method>_ipv6/N       the same over IPv6 (74-byte frames; Ethernet + IPv6 + TCP)
//   copy_only                      the frame copies alone (the floor both pay)
//   new_conn/<sched>               SYN → schedule → insert → rewrite, in bursts of 32
//   new_conn_servers/<sched>/N     the same with N real servers in the service (8, 64, 1000)
//   two_directors (threads:1 / 2)  one director per thread on its own flows, one published
//                                  configuration: items/s summed over threads
//   memory/<tables>/N              a director whose IPv4 table holds exactly N connections,
//                                  filled: its bytes per connection all-in, as the connection
//                                  table's budget counts them (at the load the table runs at);
//                                  dr_only = director_config::nat_reply_index off
// Counters: bytes_per_conn = what grows with the tables (both families: slots, NAT reply index,
// templates, wheel) / connections held; pipeline tables have room for 1.25x their connections.
// *_hugepages: the connection tables on transparent huge pages (conn/huge_page_resource.hpp).
// *_general_path: the same director with director_config::established_fast_lane off.
// The director and its frames are built by support/director_setup.hpp, which the callgrind
// driver (instructions/instructions.cpp) shares.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#include "l4lb/wire/parse.hpp"
#include "support/director_setup.hpp"
#include "support/naive_pipeline.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::director;
using namespace l4lb::bench;
using setup = l4lb::bench::director_setup;

// The 1M and 10M fixtures take seconds to fill, and Benchmark calls a function several times (to
// size the iteration count, then once per repetition): the last fixture built is kept for the
// next call with the same arguments. Only one (pipeline or naive) is held at a time, so a 10M
// run needs memory for one 10M table, not two.
std::unique_ptr<setup> pipeline_kept;
std::unique_ptr<naive_fixture> naive_kept;

setup& pipeline_fixture(method_kind m, std::uint32_t conns, bool huge, bool ipv6) {
  static std::tuple<method_kind, std::uint32_t, bool, bool> made_for{};
  if (!pipeline_kept || made_for != std::tuple{m, conns, huge, ipv6}) {
    pipeline_kept.reset();
    naive_kept.reset();
    pipeline_kept = std::make_unique<setup>(m, conns, "rr", huge, 1, 0, 0, true, ipv6);
    made_for = {m, conns, huge, ipv6};
  }
  return *pipeline_kept;
}

// NAT's other half: the real servers' answers to the same flows, to the clients from the VIP.
void BM_nat_replies(benchmark::State& state, bool fast_lane) {
  const auto conns = static_cast<std::uint32_t>(state.range(0));
  setup& s = pipeline_fixture(method_kind::nat, conns, false, false);
  s.d->set_established_fast_lane(fast_lane);
  struct restore {
    setup& s;
    ~restore() { s.d->set_established_fast_lane(true); }
  } restore_lane{s};
  static std::vector<bytes> replies;
  static const setup* replies_of = nullptr;
  if (replies_of != &s) {
    replies = s.nat_replies();
    replies_of = &s;
  }
  if (replies.empty()) {
    state.SkipWithError("the pool's flows were not forwarded");
    return;
  }
  std::size_t at = 0;
  std::uint64_t forwarded = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      s.load(j, replies[at]);
      at = (at + 1) % replies.size();
    }
    s.d->process_burst(s.bufs, s.out, s.now);
    for (const auto& v : s.out) forwarded += v.kind == verdict_kind::forward && v.to_client;
    benchmark::DoNotOptimize(s.out.data());
  }
  if (forwarded != static_cast<std::uint64_t>(state.iterations() * burst_i)) state.SkipWithError("a reply was not forwarded");
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_pipeline(benchmark::State& state, method_kind m, bool huge, bool fast_lane = true,
                 bool ipv6 = false) {
  const auto conns = static_cast<std::uint32_t>(state.range(0));
  setup& s = pipeline_fixture(m, conns, huge, ipv6);
  s.d->set_established_fast_lane(fast_lane);
  struct restore {
    setup& s;
    ~restore() { s.d->set_established_fast_lane(true); }
  } restore_lane{s};
  std::size_t at = 0;
  std::uint64_t forwarded = 0;
  for (auto _ : state) {
    s.load_burst(at);
    s.d->process_burst(s.bufs, s.out, s.now);
    forwarded += s.forwarded();
    benchmark::DoNotOptimize(s.out.data());
  }
  if (forwarded != static_cast<std::uint64_t>(state.iterations() * burst_i)) state.SkipWithError("a frame was not forwarded");
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_conn"] = s.bytes_per_conn(conns);
}

naive_fixture& naive_fixture_for(std::uint32_t conns) {
  if (!naive_kept || naive_kept->conns != conns) {
    pipeline_kept.reset();
    naive_kept.reset();
    naive_kept = std::make_unique<naive_fixture>(conns);
  }
  return *naive_kept;
}

void BM_naive(benchmark::State& state, method_kind m) {
  auto& fx = naive_fixture_for(static_cast<std::uint32_t>(state.range(0)));
  const auto& frames = fx.frames;
  std::vector<std::byte> rx(burst * slot);
  std::size_t at = 0;
  const std::int64_t now = sec;
  std::uint64_t forwarded = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < burst; ++j) {
      std::memcpy(rx.data() + j * slot + headroom, frames[at].data(), frame_len);
      at = (at + 1) % frames.size();
    }
    forwarded += fx.process_burst(rx.data(), m, now);
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

// New connections: every SYN is a new flow; the table (sized for `capacity` connections, load
// 0.8, so inserts never have to evict) is rebuilt untimed before it holds that many.
// `servers`: the service's real servers (new_conn/<sched>: 8; new_conn_servers/<sched>/N: N).
void new_conn_run(benchmark::State& state, const char* sched, std::uint32_t servers) {
  constexpr std::uint32_t capacity = 1u << 20;
  auto make = [&](std::uint32_t seed) {
    return std::make_unique<setup>(method_kind::dr, 0, sched, false, seed, capacity, 0, true, false, servers);
  };
  auto s = make(1);
  std::uint32_t next = 0;
  std::uint64_t forwarded = 0, evicted = 0;
  const std::vector<bytes> syns = syn_pool();
  std::uint32_t epoch = 0;
  for (auto _ : state) {
    if (next + burst > capacity) {
      state.PauseTiming();
      evicted += s->d->table_v4().stats().evicted_embryonic;
      s = make(++epoch + 1);
      next = 0;
      state.ResumeTiming();
    }
    for (std::size_t j = 0; j < burst; ++j) s->load_new_flow(j, syns, next + static_cast<std::uint32_t>(j));
    next += burst;
    s->d->process_burst(s->bufs, s->out, s->now);
    forwarded += s->forwarded();
  }
  evicted += s->d->table_v4().stats().evicted_embryonic;
  if (forwarded != static_cast<std::uint64_t>(state.iterations() * burst_i)) state.SkipWithError("a SYN was not forwarded");
  // A new connection that had to evict another is the flood path, not this one.
  if (evicted != 0) state.SkipWithError("an insert evicted a connection: table too small");
  state.SetItemsProcessed(state.iterations() * burst_i);
  state.counters["ns_per_conn"] = benchmark::Counter(
      static_cast<double>(state.iterations() * burst_i), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
void BM_new_conn(benchmark::State& state, const char* sched) { new_conn_run(state, sched, 8); }
void BM_new_conn_servers(benchmark::State& state, const char* sched) {
  new_conn_run(state, sched, static_cast<std::uint32_t>(state.range(0)));
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
    s.load_burst(at);
    s.d->process_burst(s.bufs, s.out, s.now);
    benchmark::DoNotOptimize(s.out.data());
  }
  state.SetItemsProcessed(state.iterations() * burst_i);
}

// Memory per IPv4 connection, all-in, as tests/conn and bench/conn_bench.cpp count it: the table
// sized for exactly N connections and holding them (its running load, 7/8 of the slots), through
// the director. Fixed parts (reassembly pool, buffers, per-server state) are reported apart.
void BM_memory(benchmark::State& state, bool nat_reply_index) {
  const auto n = static_cast<std::uint32_t>(state.range(0));
  const setup s(method_kind::dr, n, "rr", false, 1, 0, n, nat_reply_index);
  for (auto _ : state) benchmark::DoNotOptimize(s.d->memory_bytes());
  if (s.d->table_v4().size() != n) state.SkipWithError("the table does not hold every connection");
  const auto m = s.d->memory();
  state.counters["bytes_per_conn"] = static_cast<double>(m.conn_v4.total()) / n;
  state.counters["nat_index_bytes_per_conn"] = static_cast<double>(m.conn_v4.nat_index) / n;
  state.counters["fixed_MiB"] = static_cast<double>(m.total() - m.connections()) / (1u << 20);
}

// The goals name 1K and 1M; the rest make the report's curve of ns/packet against connections.
// 10M takes some seconds to fill and about 0.5 GB in either column.
void sizes(benchmark::internal::Benchmark* b) {
  for (const int n : {1000, 10000, 100000, 1000000, 10000000}) b->Arg(n);
}

}  // namespace

BENCHMARK(BM_copy_only);
BENCHMARK_CAPTURE(BM_pipeline, dr, method_kind::dr, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_naive, dr, method_kind::dr)->Apply(sizes);
BENCHMARK_CAPTURE(BM_pipeline, tun, method_kind::tun, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_naive, tun, method_kind::tun)->Apply(sizes);
BENCHMARK_CAPTURE(BM_pipeline, nat, method_kind::nat, false)->Apply(sizes);
BENCHMARK_CAPTURE(BM_naive, nat, method_kind::nat)->Apply(sizes);
// The same director with its established-flow fast lane off: what the lane saves.
BENCHMARK_CAPTURE(BM_pipeline, dr_general_path, method_kind::dr, false, false)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, nat_general_path, method_kind::nat, false, false)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_nat_replies, lane, true)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_nat_replies, general_path, false)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, dr_ipv6, method_kind::dr, false, true, true)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, tun_ipv6, method_kind::tun, false, true, true)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, nat_ipv6, method_kind::nat, false, true, true)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, dr_ipv6_general_path, method_kind::dr, false, false, true)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, nat_ipv6_general_path, method_kind::nat, false, false, true)->Arg(1000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_pipeline, dr_hugepages, method_kind::dr, true)->Arg(1000000)->Arg(4000000);
BENCHMARK_CAPTURE(BM_pipeline, dr_4M, method_kind::dr, false)->Arg(4000000);
BENCHMARK_CAPTURE(BM_new_conn, rr, "rr");
BENCHMARK_CAPTURE(BM_new_conn, wlc, "wlc");
BENCHMARK_CAPTURE(BM_new_conn, mh, "mh");
BENCHMARK_CAPTURE(BM_new_conn_servers, rr, "rr")->Arg(8)->Arg(64)->Arg(1000);
BENCHMARK_CAPTURE(BM_new_conn_servers, wlc, "wlc")->Arg(8)->Arg(64)->Arg(1000);
BENCHMARK_CAPTURE(BM_new_conn_servers, mh, "mh")->Arg(8)->Arg(64)->Arg(1000);
BENCHMARK_CAPTURE(BM_memory, dr_only, false)->Arg(1000)->Arg(1000000)->Iterations(1);
BENCHMARK_CAPTURE(BM_memory, nat_index, true)->Arg(1000)->Arg(1000000)->Iterations(1);
BENCHMARK(BM_two_directors)->Arg(1000000)->Threads(1)->Threads(2)->UseRealTime();
