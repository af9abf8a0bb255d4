// l4lb-replay's loop on an in-memory capture: the bundled client-side capture (406 frames: 133
// to the VIP, the rest answers and ARP) repeated with shifted timestamps, pushed through the
// replay engine (copy into the burst, one director, verdicts to a sink that counts what would be
// written). Baseline in the same binary: the copy-and-parse loop alone. Disk excluded.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include <l4lb/config/rules.hpp>
#include <l4lb/io/pcap_file.hpp>
#include <l4lb/wire/parse.hpp>

#include "../examples/pcap_replay/replay.hpp"

namespace {

using namespace l4lb;

struct capture {
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::int64_t> times;
};

const capture& load() {
  static capture c = [] {
    capture out;
    auto f = io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/client-vip-http.pcap");
    if (!f) return out;
    for (const auto& r : f->records()) {
      out.frames.emplace_back(r.data.begin(), r.data.end());
      out.times.push_back(r.timestamp_ns);
    }
    return out;
  }();
  return c;
}

void BM_replay(benchmark::State& state) {
  const capture& cap = load();
  if (cap.frames.empty()) {
    state.SkipWithError("capture not found");
    return;
  }
  director::director_control control;
  director::director_identity id;
  id.mac = replay::derived_mac(*wire::ip_address::parse("198.18.0.1"));
  id.addresses = {*wire::ip_address::parse("198.18.0.1")};
  control.set_identity(id);
  const char* rules =
      "-A -t 198.18.0.100:80 -s rr\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";
  auto loaded = config::load_rules(control.config(), rules);
  if (!loaded || !control.apply_all(loaded->applied).ok()) {
    state.SkipWithError("rules");
    return;
  }
  for (const char* a : {"198.18.0.12", "198.18.0.13"}) {
    const auto ip = *wire::ip_address::parse(a);
    control.set_neighbour(ip, replay::derived_mac(ip));
  }
  std::uint64_t written = 0, bytes = 0;
  director::director_config cfg;
  cfg.conn_capacity_v4 = 1u << 16;
  replay::replayer r(control, cfg, [&](std::uint64_t, std::int64_t, const director::verdict& v) {
    if (v.kind == director::verdict_kind::forward || v.kind == director::verdict_kind::reply) {
      ++written;
      bytes += v.frame.size();
    }
  });
  // Each pass continues the capture's clock one second after its last frame (its 13 connections
  // are new each time: the client ports repeat, but the old connections are in FIN_WAIT and the
  // SYNs reuse them as the kernel does).
  const std::int64_t span = cap.times.back() - cap.times.front() + 1'000'000'000;
  std::int64_t shift = 0;
  std::size_t frames = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < cap.frames.size(); ++i) r.push(cap.times[i] + shift, cap.frames[i]);
    r.flush();
    shift += span;
    frames += cap.frames.size();
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.counters["frames_written"] = static_cast<double>(written) / static_cast<double>(state.iterations());
}

void BM_baseline_copy_parse(benchmark::State& state) {
  const capture& cap = load();
  std::vector<std::byte> buf(70000);
  std::size_t frames = 0, ok = 0;
  for (auto _ : state) {
    for (const auto& f : cap.frames) {
      std::copy(f.begin(), f.end(), buf.begin() + 128);
      auto p = wire::parse(std::span(buf.data() + 128, f.size()));
      ok += p.has_value();
    }
    frames += cap.frames.size();
  }
  benchmark::DoNotOptimize(ok);
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
}

}  // namespace

BENCHMARK(BM_replay);
BENCHMARK(BM_baseline_copy_parse);
