// Scheduler pick cost at 8, 64, 1000 and 10000 real servers, as the data path uses it:
// - BM_policy / BM_scan ...: pick, then bind the new connection as active (after_bind +
//   counts_changed): one counts_changed per pick;
// - ..._steady: also expire the connection bound 2n + 16 picks earlier (after_unbind +
//   counts_changed), so counters stay level as under steady traffic: two per pick.
// Baselines in the same binary: the kernel's O(n) list walks (tests/sched/ipvs_scan_reference.hpp)
// driven by the same workload, without the counts_changed calls they do not need.
// Hashing policies (dh, sh, mh, lblc, lblcr, ring, wmh) are measured in sched_hash_bench.cpp.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "l4lb/sched/any_scheduler.hpp"
#include "l4lb/sched/least_connection.hpp"
#include "l4lb/sched/never_queue.hpp"
#include "l4lb/sched/overflow.hpp"
#include "l4lb/sched/round_robin.hpp"
#include "l4lb/sched/shortest_expected_delay.hpp"
#include "l4lb/sched/smooth_weighted_round_robin.hpp"
#include "l4lb/sched/two_choices.hpp"
#include "l4lb/sched/weighted_failover.hpp"
#include "l4lb/sched/weighted_least_connection.hpp"
#include "l4lb/sched/weighted_round_robin.hpp"
#include "sched/ipvs_scan_reference.hpp"

namespace {

using namespace l4lb::sched;

const l4lb::wire::flow_key bench_flow{};

// n servers, weights 1..10, a few hundred connections each; fixed seed so every policy and its
// baseline see the same list.
// sparse: only the last server may take connections (the rest overloaded), the case where the
// kernel's cursor walks cover the whole list.
std::vector<real_server> make_list(std::size_t n, bool equal_weights = false, bool sparse = false) {
  std::mt19937 rng(42);
  std::vector<real_server> dests(n);
  for (std::size_t i = 0; i < n; ++i) {
    real_server& r = dests[i];
    r.handle = static_cast<std::uint32_t>(i + 1);
    r.weight = equal_weights ? 1 : static_cast<std::uint32_t>(1 + rng() % 10);
    r.last_weight = r.weight;
    r.active_conns = static_cast<std::uint32_t>(rng() % 200);
    r.inactive_conns = static_cast<std::uint32_t>(rng() % 2000);
    r.overloaded = sparse && i + 1 != n;
  }
  return dests;
}

// Connections in flight: each pick binds one and (when expiring) expires the one bound
// ring.size() picks earlier.
struct churn {
  std::vector<dest_id> ring;
  std::size_t at = 0;
  bool expire = true;
  churn(std::size_t n, bool expire_old) : ring(n * 2 + 16, no_dest), expire(expire_old) {}

  template <class Changed>
  void after_pick(std::vector<real_server>& dests, dest_id id, Changed&& changed) {
    if (id != no_dest) {
      ++dests[id].active_conns;
      dests[id].after_bind();
      changed(id);
    }
    if (!expire) return;
    const dest_id old = ring[at];
    ring[at] = id;
    at = at + 1 == ring.size() ? 0 : at + 1;
    if (old != no_dest && dests[old].active_conns > 0) {
      --dests[old].active_conns;
      dests[old].after_unbind();
      changed(old);
    }
  }
};

void finish(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["ns/pick"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

// Ours: pick + counts_changed for every counter change.
template <class Policy, bool Steady = false, bool EqualWeights = false, bool Sparse = false>
void BM_policy(benchmark::State& state) {
  auto dests = make_list(static_cast<std::size_t>(state.range(0)), EqualWeights, Sparse);
  Policy policy;
  policy.rebuild(dests, {dest_change::kind::init, 0});
  churn c(dests.size(), Steady);
  const pick_context ctx{bench_flow};
  for (auto _ : state) {
    const dest_id id = policy.pick(dests, ctx);
    benchmark::DoNotOptimize(id);
    c.after_pick(dests, id, [&](dest_id d) { policy.counts_changed(dests, d); });
  }
  finish(state);
}

// The kernel's way: walk the list on every pick (no per-change maintenance).
template <dest_id (*Scan)(std::span<const real_server>), bool Steady = false>
void BM_scan(benchmark::State& state) {
  auto dests = make_list(static_cast<std::size_t>(state.range(0)));
  churn c(dests.size(), Steady);
  for (auto _ : state) {
    const dest_id id = Scan(dests);
    benchmark::DoNotOptimize(id);
    c.after_pick(dests, id, [](dest_id) {});
  }
  finish(state);
}

template <class Model, bool Sparse = false>
void BM_model(benchmark::State& state) {
  auto dests = make_list(static_cast<std::size_t>(state.range(0)), false, Sparse);
  constexpr bool Steady = true;
  Model m;
  if constexpr (requires { m.init(std::span<const real_server>(dests)); }) {
    m.init(dests);
  } else {
    m.init();
  }
  churn c(dests.size(), Steady);
  for (auto _ : state) {
    const dest_id id = m.pick(dests);
    benchmark::DoNotOptimize(id);
    c.after_pick(dests, id, [](dest_id) {});
  }
  finish(state);
}

// twos as the kernel walks it: two draws, then the list until both choices are found.
void BM_scan_twos(benchmark::State& state) {
  auto dests = make_list(static_cast<std::size_t>(state.range(0)));
  churn c(dests.size(), true);
  pcg32 gen{7};
  for (auto _ : state) {
    const std::uint64_t total = reference::twos_total(dests);
    const std::uint64_t r1 = uniform_below(gen, total + 1);
    const std::uint64_t r2 = uniform_below(gen, total + 1);
    const dest_id id = reference::twos(dests, r1, r2);
    benchmark::DoNotOptimize(id);
    c.after_pick(dests, id, [](dest_id) {});
  }
  finish(state);
}

// any_scheduler: dispatch through the variant on every call, or once per burst of 32 via visit().
template <bool PerBurst>
void BM_any(benchmark::State& state) {
  auto dests = make_list(1000);
  auto s = make_scheduler(state.range(0) == 0 ? "wlc" : "rr");
  s->rebuild(dests, {dest_change::kind::init, 0});
  churn c(dests.size(), true);
  const pick_context ctx{bench_flow};
  constexpr int burst = 32;
  for (auto _ : state) {
    if constexpr (PerBurst) {
      s->visit([&](auto& policy) {
        for (int i = 0; i < burst; ++i) {
          const dest_id id = policy.pick(dests, ctx);
          benchmark::DoNotOptimize(id);
          c.after_pick(dests, id, [&](dest_id d) { policy.counts_changed(dests, d); });
        }
      });
    } else {
      for (int i = 0; i < burst; ++i) {
        const dest_id id = s->pick(dests, ctx);
        benchmark::DoNotOptimize(id);
        c.after_pick(dests, id, [&](dest_id d) { s->counts_changed(dests, d); });
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * burst);
  state.counters["ns/pick"] = benchmark::Counter(static_cast<double>(state.iterations()) * burst,
                                                 benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
  state.SetLabel(state.range(0) == 0 ? "wlc, 1000 servers" : "rr, 1000 servers");
}

void sizes(benchmark::internal::Benchmark* b) {
  for (const int n : {8, 64, 1000, 10000}) b->Arg(n);
}

}  // namespace

// lc family: O(log n) maintenance + O(1) pick vs the kernel's O(n) scan; one counts_changed per
// pick, then the steady state with two.
BENCHMARK_TEMPLATE(BM_policy, least_connection)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::lc)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, weighted_least_connection)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::wlc)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, shortest_expected_delay)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::sed)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, never_queue)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::nq)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, least_connection, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::lc, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, weighted_least_connection, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::wlc, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, shortest_expected_delay, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::sed, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, never_queue, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::nq, true)->Apply(sizes);

// fo, ovf: same tree, steady state.
BENCHMARK_TEMPLATE(BM_policy, weighted_failover, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::fo, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, overflow, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_scan, reference::ovf, true)->Apply(sizes);

// Cursor policies vs the kernel's loops (steady state; their counts_changed only looks at the
// overload flag).
BENCHMARK_TEMPLATE(BM_policy, round_robin, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_model, reference::rr_model)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, weighted_round_robin, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_model, reference::wrr_model)->Apply(sizes);
// ... and with every server but the last overloaded.
BENCHMARK_TEMPLATE(BM_policy, round_robin, true, false, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_model, reference::rr_model, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, weighted_round_robin, true, false, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_model, reference::wrr_model, true)->Apply(sizes);

// Ours: smooth WRR (weights 1..10; then equal weights), twos (tree draw vs the kernel's walk).
BENCHMARK_TEMPLATE(BM_policy, smooth_weighted_round_robin, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, smooth_weighted_round_robin, true, true)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_policy, two_choices, true)->Apply(sizes);
BENCHMARK(BM_scan_twos)->Apply(sizes);

// Variant dispatch per packet vs per burst (arg 0 = wlc, 1 = rr).
BENCHMARK_TEMPLATE(BM_any, false)->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(BM_any, true)->Arg(0)->Arg(1);
