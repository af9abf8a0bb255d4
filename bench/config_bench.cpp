// ipvsadm compatibility at scale: a rules file of 10 000 services x 10 real servers (110 000
// lines, the target: loading and listing each under a second).
// - BM_load_rules: config::load_rules (parse every line, then apply to a copy);
// - BM_list_ln / BM_list_stats: ipvsadm -Ln / -Ln --stats of the loaded configuration (sorting
//   included);
// - BM_save_rules: ipvsadm -Sn;
// - BM_reload_cleared: "-C" and the same file with one weight changed, loaded over the running
//   configuration; BM_edit_one_weight: a single -e line over it (what a director does to swap
//   its snapshot);
// Baselines in the same binary, so the figures read as ratios: BM_baseline_split splits the same
// text into lines and whitespace-separated words with std::istringstream (no parsing, no
// validation), and BM_baseline_copy copies the loaded configuration (the floor of any load that
// leaves the caller's configuration untouched).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "l4lb/config/listing.hpp"
#include "l4lb/config/rules.hpp"

namespace {

using namespace l4lb;

constexpr int services = 10'000;
constexpr int servers_per_service = 10;

const director::configuration_limits limits{services + 16, services * servers_per_service * 2};

// VIPs 198.18.0.1 .. 198.18.39.250 port 80; real servers in 198.19/16, NAT, weights 1..10.
std::string make_rules(int changed_weight_at = -1) {
  std::string text;
  text.reserve(static_cast<std::size_t>(services) * servers_per_service * 56);
  int line = 0;
  for (int s = 0; s < services; ++s) {
    const std::string vip =
        "198.18." + std::to_string(s / 250) + "." + std::to_string(s % 250 + 1) + ":80";
    text += "-A -t " + vip + " -s wrr\n";
    for (int d = 0; d < servers_per_service; ++d, ++line) {
      const int weight = line == changed_weight_at ? 42 : d + 1;
      text += "-a -t " + vip + " -r 198.19." + std::to_string(s / 250) + "." +
              std::to_string((s % 25) * 10 + d + 1) + ":8080 -m -w " + std::to_string(weight) +
              "\n";
    }
  }
  return text;
}

const std::string& rules() {
  static const std::string r = make_rules();
  return r;
}

const director::configuration& loaded() {
  static const director::configuration c = [] {
    auto r = config::load_rules(director::configuration(limits), rules());
    if (!r) std::abort();
    return std::move(r->config);
  }();
  return c;
}

void BM_load_rules(benchmark::State& state) {
  const director::configuration empty(limits);
  for (auto _ : state) {
    auto r = config::load_rules(empty, rules());
    if (!r) state.SkipWithError(config::to_string(r.error()).c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * services * (servers_per_service + 1));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(rules().size()));
  state.SetLabel("110k lines");
}
BENCHMARK(BM_load_rules)->Unit(benchmark::kMillisecond);

// One "-e" line over the running configuration: the cost is the copy the all-or-nothing load
// works on (compare BM_baseline_copy).
void BM_edit_one_weight(benchmark::State& state) {
  const std::string line = "-e -t 198.18.4.235:80 -r 198.19.4.91:8080 -m -w 42\n";
  for (auto _ : state) {
    auto r = config::load_rules(loaded(), line);
    if (!r) state.SkipWithError(config::to_string(r.error()).c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_edit_one_weight)->Unit(benchmark::kMillisecond);

void BM_reload_cleared(benchmark::State& state) {
  const std::string changed = "-C\n" + make_rules(12'345);
  for (auto _ : state) {
    auto r = config::load_rules(loaded(), changed);
    if (!r) state.SkipWithError(config::to_string(r.error()).c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * services * (servers_per_service + 1));
  state.SetLabel("-C + 110k lines over the running configuration");
}
BENCHMARK(BM_reload_cleared)->Unit(benchmark::kMillisecond);

void list(benchmark::State& state, config::list_request req) {
  const config::listing_input in{loaded(), {}, {}, {}, 4096, nullptr};
  std::string out;
  for (auto _ : state) {
    out.clear();
    auto e = config::write_listing(out, in, req);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * services * (servers_per_service + 1));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
void BM_list_ln(benchmark::State& state) {
  list(state, config::list_request{.numeric = true});
}
BENCHMARK(BM_list_ln)->Unit(benchmark::kMillisecond);
void BM_list_ln_nosort(benchmark::State& state) {
  list(state, config::list_request{.numeric = true, .nosort = true});
}
BENCHMARK(BM_list_ln_nosort)->Unit(benchmark::kMillisecond);
void BM_list_stats(benchmark::State& state) {
  list(state, config::list_request{.numeric = true, .stats = true});
}
BENCHMARK(BM_list_stats)->Unit(benchmark::kMillisecond);

void BM_save_rules(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    config::save_rules(out, loaded(), {.numeric = true});
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * services * (servers_per_service + 1));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_save_rules)->Unit(benchmark::kMillisecond);

// Baseline: the same text split into lines and words, nothing else.
void BM_baseline_split(benchmark::State& state) {
  for (auto _ : state) {
    std::istringstream in(rules());
    std::size_t words = 0;
    std::vector<std::string> tokens;
    for (std::string line; std::getline(in, line);) {
      std::istringstream ls(line);
      tokens.clear();
      for (std::string w; ls >> w;) tokens.push_back(std::move(w));
      words += tokens.size();
    }
    benchmark::DoNotOptimize(words);
  }
  state.SetItemsProcessed(state.iterations() * services * (servers_per_service + 1));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(rules().size()));
}
BENCHMARK(BM_baseline_split)->Unit(benchmark::kMillisecond);

// Baseline: a copy of the loaded configuration.
void BM_baseline_copy(benchmark::State& state) {
  for (auto _ : state) {
    director::configuration c = loaded();
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_baseline_copy)->Unit(benchmark::kMillisecond);

}  // namespace
