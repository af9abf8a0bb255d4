// Hashing and locality policies: ns per pick at 8, 64, 1000 and 10000 real servers, and table
// build times. Baselines in the same binary: a plain `flow hash % n` pick (what any hash policy
// costs at least) and the flow hash alone.
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "l4lb/sched/consistent_hash_ring.hpp"
#include "l4lb/sched/destination_hashing.hpp"
#include "l4lb/sched/locality_least_connection.hpp"
#include "l4lb/sched/locality_least_connection_replicated.hpp"
#include "l4lb/sched/maglev.hpp"
#include "l4lb/sched/source_hashing.hpp"
#include "l4lb/sched/stable_hash.hpp"
#include "l4lb/sched/weighted_maglev.hpp"

using namespace l4lb;
using namespace l4lb::sched;

namespace {

constexpr std::size_t flow_count = 4096;  // distinct flows cycled through (a power of two)

std::vector<real_server> servers(std::size_t n) {
  std::vector<real_server> d(n);
  for (std::size_t i = 0; i < n; ++i) {
    d[i].endpoint = {wire::ipv4_address::from_u32(0xC6120100u + static_cast<std::uint32_t>(i) + 1),
                     80};
    d[i].handle = static_cast<std::uint32_t>(i + 1);
  }
  return d;
}

// Clients spread over a /16, ports varied; destinations over 1024 addresses (for dh/lblc/lblcr,
// which key on the destination).
std::vector<wire::flow_key> flows() {
  std::vector<wire::flow_key> f(flow_count);
  for (std::size_t i = 0; i < flow_count; ++i) {
    const auto k = static_cast<std::uint32_t>(i);
    f[i] = {wire::ip_proto::tcp,
            {wire::ipv4_address::from_u32(0xC6120000u + k * 2654435761u % 65536),
             static_cast<std::uint16_t>(1024 + k * 7919 % 60000)},
            {wire::ipv4_address::from_u32(0xC6130100u + k % 1024), 80}};
  }
  return f;
}

void set_counters(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["ns_per_pick"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

template <class Policy>
void run_picks(benchmark::State& state, Policy& p, const std::vector<real_server>& d) {
  const auto f = flows();
  std::size_t i = 0;
  std::int64_t now = 1'000'000'000;
  for (auto _ : state) {
    const dest_id id = p.pick(d, {f[i], now});
    benchmark::DoNotOptimize(id);
    i = (i + 1) & (flow_count - 1);
    now += 1000;
  }
  set_counters(state);
}

// ---- baselines ------------------------------------------------------------------------------

void BM_baseline_flow_hash_modulo(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto f = flows();
  std::size_t i = 0;
  for (auto _ : state) {
    const std::uint64_t h = stable_hash::flow_hash(f[i], stable_hash::flow_hash_key::flow, false);
    benchmark::DoNotOptimize(h % n);
    i = (i + 1) & (flow_count - 1);
  }
  set_counters(state);
}
BENCHMARK(BM_baseline_flow_hash_modulo)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

void BM_baseline_flow_hash_only(benchmark::State& state) {
  const auto f = flows();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(stable_hash::flow_hash(f[i], stable_hash::flow_hash_key::flow, false));
    i = (i + 1) & (flow_count - 1);
  }
  set_counters(state);
}
BENCHMARK(BM_baseline_flow_hash_only);

// ---- picks ----------------------------------------------------------------------------------

void BM_pick_dh(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  destination_hashing p;
  (void)p.rebuild(d, {});
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_dh)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

void BM_pick_sh(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  source_hashing p({.fallback = false, .port = true});
  (void)p.rebuild(d, {});
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_sh)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

void BM_pick_mh(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = servers(n);
  // IPVS refuses more servers than slots: 10000 servers need CONFIG_IP_VS_MH_TAB_INDEX 16.
  maglev_hashing p({.fallback = false, .port = true}, n > 4093 ? 16 : 12);
  (void)p.rebuild(d, {});
  state.SetLabel("M=" + std::to_string(p.table_size()));
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_mh)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

void BM_pick_wmh(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  weighted_maglev p;
  (void)p.rebuild(d, {});
  state.SetLabel("M=65537");
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_wmh)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

void BM_pick_ring(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  consistent_hash_ring p;
  (void)p.rebuild(d, {});
  state.SetLabel("points=" + std::to_string(p.point_hashes().size()));
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_ring)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

// lblc/lblcr with 1024 destination addresses: after the first round every pick is a cache hit.
void BM_pick_lblc_hit(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  locality_least_connection p;
  (void)p.rebuild(d, {dest_change::kind::init});
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_lblc_hit)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

// Every pick a miss (a one-entry cache): the kernel's O(n) weighted-least-connection scan.
void BM_pick_lblc_miss(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  locality_least_connection p({.capacity = 1});
  (void)p.rebuild(d, {dest_change::kind::init});
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_lblc_miss)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

void BM_pick_lblcr_hit(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  locality_least_connection_replicated p;
  (void)p.rebuild(d, {dest_change::kind::init});
  run_picks(state, p, d);
}
BENCHMARK(BM_pick_lblcr_hit)->Arg(8)->Arg(64)->Arg(1000)->Arg(10000);

// ---- builds ---------------------------------------------------------------------------------

void BM_build_wmh(benchmark::State& state) {
  const auto m = static_cast<std::uint32_t>(state.range(0));
  const auto d = servers(static_cast<std::size_t>(state.range(1)));
  weighted_maglev p({.table_size = m});
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.rebuild(d, {}));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_build_wmh)
    ->Args({65537, 1000})
    ->Args({65537, 100})
    ->Args({65537, 10000})
    ->Args({655373, 1000})
    ->Args({655373, 10000})
    ->Unit(benchmark::kMicrosecond);

void BM_build_mh(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(1)));
  maglev_hashing p({}, static_cast<unsigned>(state.range(0)));
  state.SetLabel("M=" + std::to_string(p.table_size()));
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.rebuild(d, {}));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_build_mh)->Args({12, 1000})->Args({16, 1000})->Unit(benchmark::kMicrosecond);

void BM_build_ring(benchmark::State& state) {
  const auto d = servers(static_cast<std::size_t>(state.range(0)));
  consistent_hash_ring p;
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.rebuild(d, {}));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_build_ring)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
