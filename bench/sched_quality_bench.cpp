// How well the schedulers schedule, not how fast: each figure is a user counter computed from a
// fixed set of 100 000 flows (no clock, no random seed that varies), so it is the same on every
// run and machine. Time is irrelevant here; each benchmark runs one iteration.
//   disruption/<p>/N/k   k of N equal-weight servers removed (a fixed choice): moved = share of
//                        the flows whose server changed; ideal = k/N; minimal = share of the
//                        flows that were on the removed servers (what even a perfect policy
//                        moves); over_ideal = moved / ideal. For mh (IPVS's table, 4093 slots,
//                        and 65521), wmh (65537) and ring (160 points per server).
//   weights/<p>          servers weighted 1, 2, 3, 4, 10: share_w<w> = the share of picks the
//                        server of weight w got, weight_share_w<w> = w / 20, worst_error_pct =
//                        the largest |share - weight share| / weight share, in %. Every pick
//                        binds a connection and 1000 stay open (the oldest closes), so the
//                        policies that balance connection counts (wlc, sed, nq, twos) see a
//                        steady load.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "l4lb/sched/consistent_hash_ring.hpp"
#include "l4lb/sched/maglev.hpp"
#include "l4lb/sched/never_queue.hpp"
#include "l4lb/sched/shortest_expected_delay.hpp"
#include "l4lb/sched/smooth_weighted_round_robin.hpp"
#include "l4lb/sched/source_hashing.hpp"
#include "l4lb/sched/two_choices.hpp"
#include "l4lb/sched/weighted_least_connection.hpp"
#include "l4lb/sched/weighted_maglev.hpp"
#include "l4lb/sched/weighted_round_robin.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::sched;

constexpr std::uint32_t flow_count = 100'000;

std::vector<real_server> servers(std::size_t n, const std::vector<std::uint32_t>& weights = {}) {
  std::vector<real_server> d(n);
  for (std::size_t i = 0; i < n; ++i) {
    d[i].endpoint = {wire::ipv4_address::from_u32(0xC6120100u + static_cast<std::uint32_t>(i) + 1),
                     80};
    d[i].handle = static_cast<std::uint32_t>(i + 1);
    d[i].weight = weights.empty() ? 1 : weights[i];
    d[i].last_weight = d[i].weight;
  }
  return d;
}

// Flow i: client 198.18.0.0 + i (distinct addresses inside 198.18.0.0/15, so policies that hash
// only the client address see 100 000 keys too), port varied, one virtual service.
const std::vector<wire::flow_key>& flows() {
  static const std::vector<wire::flow_key> f = [] {
    std::vector<wire::flow_key> v(flow_count);
    for (std::uint32_t i = 0; i < flow_count; ++i)
      v[i] = {wire::ip_proto::tcp,
              {wire::ipv4_address::from_u32(0xC612'0000u + i),
               static_cast<std::uint16_t>(1024 + i * 7919u % 60000)},
              {wire::ipv4_address::from_u32(0xC6120064u), 80}};
    return v;
  }();
  return f;
}

// The k positions removed: the first k of a Fisher-Yates shuffle driven by mt19937 (whose output
// the standard fixes, unlike std::shuffle's use of it).
std::vector<std::size_t> removed_positions(std::size_t n, std::size_t k) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937 rng(7);
  for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

// rebuild() for a whole new list; false when the policy refused it (policies without a failure
// mode return void).
template <class Policy>
bool build(Policy& p, std::span<const real_server> dests) {
  const dest_change init{dest_change::kind::init, 0};
  if constexpr (std::is_void_v<decltype(p.rebuild(dests, init))>) {
    p.rebuild(dests, init);
    return true;
  } else {
    return p.rebuild(dests, init) == build_error::ok;
  }
}

template <class Make>
void BM_disruption(benchmark::State& state, Make make) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto k = static_cast<std::size_t>(state.range(1));
  const auto dests = servers(n);
  const auto gone = removed_positions(n, k);
  std::vector<real_server> rest;
  for (std::size_t i = 0; i < n; ++i)
    if (!std::binary_search(gone.begin(), gone.end(), i)) rest.push_back(dests[i]);
  std::uint32_t moved = 0, on_removed = 0, unpicked = 0;
  for (auto _ : state) {
    auto before = make();
    auto after = make();
    if (!build(before, dests) || !build(after, rest)) return state.SkipWithError("build refused");
    moved = on_removed = unpicked = 0;
    for (const auto& f : flows()) {
      const dest_id b = before.pick(dests, {f});
      const dest_id a = after.pick(rest, {f});
      if (b == no_dest || a == no_dest) {
        ++unpicked;
        continue;
      }
      // Positions shift on removal: servers are compared by endpoint.
      if (dests[b].endpoint != rest[a].endpoint) ++moved;
      if (std::binary_search(gone.begin(), gone.end(), b)) ++on_removed;
    }
  }
  if (unpicked != 0) state.SkipWithError("a flow got no server");
  const double ideal = static_cast<double>(k) / static_cast<double>(n);
  state.counters["moved"] = moved / double{flow_count};
  state.counters["minimal"] = on_removed / double{flow_count};
  state.counters["ideal"] = ideal;
  state.counters["over_ideal"] = moved / double{flow_count} / ideal;
}

const std::vector<std::uint32_t> weight_set = {1, 2, 3, 4, 10};

template <class Make>
void BM_weights(benchmark::State& state, Make make) {
  constexpr std::size_t open_conns = 1000;
  auto dests = servers(weight_set.size(), weight_set);
  std::vector<std::uint64_t> picks(dests.size());
  std::uint32_t unpicked = 0;
  for (auto _ : state) {
    for (auto& r : dests) r.active_conns = 0;
    auto policy = make();
    if (!build(policy, dests)) return state.SkipWithError("build refused");
    std::fill(picks.begin(), picks.end(), 0);
    unpicked = 0;
    std::deque<dest_id> open;
    // A warm-up of open_conns picks fills the connections, then every flow is picked once.
    for (std::uint32_t i = 0; i < open_conns + flow_count; ++i) {
      const dest_id id = policy.pick(dests, {flows()[i % flow_count]});
      if (id == no_dest) {
        ++unpicked;
        continue;
      }
      if (i >= open_conns) ++picks[id];
      ++dests[id].active_conns;
      dests[id].after_bind();
      policy.counts_changed(dests, id);
      open.push_back(id);
      if (open.size() > open_conns) {
        const dest_id old = open.front();
        open.pop_front();
        --dests[old].active_conns;
        dests[old].after_unbind();
        policy.counts_changed(dests, old);
      }
    }
  }
  if (unpicked != 0) state.SkipWithError("a pick found no server");
  std::uint64_t total_weight = 0, total_picks = 0;
  for (std::size_t i = 0; i < dests.size(); ++i) {
    total_weight += weight_set[i];
    total_picks += picks[i];
  }
  double worst = 0;
  for (std::size_t i = 0; i < dests.size(); ++i) {
    const std::string w = std::to_string(weight_set[i]);
    const double share = static_cast<double>(picks[i]) / static_cast<double>(total_picks);
    const double want = static_cast<double>(weight_set[i]) / static_cast<double>(total_weight);
    state.counters["share_w" + w] = share;
    state.counters["weight_share_w" + w] = want;
    worst = std::max(worst, std::abs(share - want) / want);
  }
  state.counters["worst_error_pct"] = worst * 100;
}

void removals(benchmark::internal::Benchmark* b) {
  for (const int k : {1, 5, 10, 20, 50}) b->Args({100, k});
  b->Iterations(1);
}

}  // namespace

BENCHMARK_CAPTURE(BM_disruption, mh, [] { return maglev_hashing{}; })->Apply(removals);
BENCHMARK_CAPTURE(BM_disruption, mh_65521, [] { return maglev_hashing({}, 16); })->Apply(removals);
BENCHMARK_CAPTURE(BM_disruption, wmh, [] { return weighted_maglev{}; })->Apply(removals);
BENCHMARK_CAPTURE(BM_disruption, ring, [] { return consistent_hash_ring{}; })->Apply(removals);

// Every weighted policy that shares load by weight. Left out: fo (all to the heaviest server),
// ovf (the heaviest until its active connections reach its weight), lblc/lblcr (by destination
// address, weighted only on a cache miss), and rr, lc, dh (weights play no part).
BENCHMARK_CAPTURE(BM_weights, wrr, [] { return weighted_round_robin{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, swrr, [] { return smooth_weighted_round_robin{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, wlc, [] { return weighted_least_connection{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, sed, [] { return shortest_expected_delay{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, nq, [] { return never_queue{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, twos, [] { return two_choices{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, sh, [] { return source_hashing{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, mh, [] { return maglev_hashing{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, wmh, [] { return weighted_maglev{}; })->Iterations(1);
BENCHMARK_CAPTURE(BM_weights, ring, [] { return consistent_hash_ring{}; })->Iterations(1);
