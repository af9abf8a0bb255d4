// wire::parse cost per packet over each bundled capture, against two baselines in the same
// binary: reading only the EtherType, and copying the first 64 bytes of each frame (what any
// parser must at least touch). Each iteration walks every frame of the file once.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/parse.hpp"

namespace {

using l4lb::wire::parse;

// The frames of one file copied into one mutable arena (parse() is given writable spans, as a
// director would give it), plus the spans.
struct frames {
  std::vector<std::byte> arena;
  std::vector<std::span<std::byte>> spans;
  bool ok = false;
};

const frames& load(const std::string& file) {
  static std::vector<std::pair<std::string, frames>> cache;
  for (auto& [name, f] : cache)
    if (name == file) return f;
  frames f;
  auto pcap = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
  if (pcap) {
    std::size_t total = 0;
    for (const auto& r : pcap->records()) total += r.data.size();
    f.arena.resize(total);
    std::size_t at = 0;
    for (const auto& r : pcap->records()) {
      std::memcpy(f.arena.data() + at, r.data.data(), r.data.size());
      at += r.data.size();
    }
    at = 0;
    for (const auto& r : pcap->records()) {
      f.spans.emplace_back(f.arena.data() + at, r.data.size());
      at += r.data.size();
    }
    f.ok = true;
  }
  cache.emplace_back(file, std::move(f));
  return cache.back().second;
}

void report(benchmark::State& state, std::size_t packets) {
  const auto n = static_cast<double>(packets);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(packets));
  // Seconds per packet (shown with an SI prefix: "25n" = 25 ns/packet).
  state.counters["per_pkt"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
}

void BM_baseline_ethertype(benchmark::State& state, const std::string& file) {
  const auto& f = load(file);
  if (!f.ok) return state.SkipWithError("capture not found");
  for (auto _ : state) {
    unsigned sum = 0;
    for (auto s : f.spans) sum += static_cast<unsigned>(s[12]) << 8 | static_cast<unsigned>(s[13]);
    benchmark::DoNotOptimize(sum);
  }
  report(state, f.spans.size());
}

void BM_baseline_copy64(benchmark::State& state, const std::string& file) {
  const auto& f = load(file);
  if (!f.ok) return state.SkipWithError("capture not found");
  std::byte local[64];
  for (auto _ : state) {
    unsigned sum = 0;
    for (auto s : f.spans) {
      const std::size_t n = std::min<std::size_t>(64, s.size());
      std::memcpy(local, s.data(), n);
      benchmark::ClobberMemory();
      sum += static_cast<unsigned>(local[n - 1]);
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, f.spans.size());
}

void BM_parse(benchmark::State& state, const std::string& file) {
  const auto& f = load(file);
  if (!f.ok) return state.SkipWithError("capture not found");
  for (auto _ : state) {
    std::size_t sum = 0;
    for (auto s : f.spans) {
      auto p = parse(s);
      sum += p ? p->l4_offset() + p->key().dst_port : static_cast<std::size_t>(p.error());
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, f.spans.size());
}

// With the opt-in checks: IPv4 header checksum and option lengths.
void BM_parse_strict(benchmark::State& state, const std::string& file) {
  const auto& f = load(file);
  if (!f.ok) return state.SkipWithError("capture not found");
  const l4lb::wire::parse_options strict{.verify_ipv4_checksum = true, .check_options = true};
  for (auto _ : state) {
    std::size_t sum = 0;
    for (auto s : f.spans) {
      auto p = parse(s, strict);
      sum += p ? p->l4_offset() + p->key().dst_port : static_cast<std::size_t>(p.error());
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, f.spans.size());
}

// What a director does first: parse, then the symmetric flow hash for core steering.
void BM_parse_and_hash(benchmark::State& state, const std::string& file) {
  const auto& f = load(file);
  if (!f.ok) return state.SkipWithError("capture not found");
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (auto s : f.spans) {
      auto p = parse(s);
      if (p) sum += p->key().symmetric_hash();
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, f.spans.size());
}

#define L4LB_WIRE_BENCH_FILE(name, file)                            \
  BENCHMARK_CAPTURE(BM_baseline_ethertype, name, std::string(file)); \
  BENCHMARK_CAPTURE(BM_baseline_copy64, name, std::string(file));    \
  BENCHMARK_CAPTURE(BM_parse, name, std::string(file));              \
  BENCHMARK_CAPTURE(BM_parse_strict, name, std::string(file));       \
  BENCHMARK_CAPTURE(BM_parse_and_hash, name, std::string(file))

L4LB_WIRE_BENCH_FILE(client_vip_http, "client-vip-http.pcap");
L4LB_WIRE_BENCH_FILE(udp_dns_like, "udp-dns-like.pcap");
L4LB_WIRE_BENCH_FILE(icmp, "icmp.pcap");
L4LB_WIRE_BENCH_FILE(ipv6_http, "ipv6-http.pcap");
L4LB_WIRE_BENCH_FILE(vlan_tagged, "vlan-tagged.pcap");

}  // namespace
