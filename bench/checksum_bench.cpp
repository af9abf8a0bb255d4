// Internet checksum throughput (GB/s) for 64, 576 and 1500-byte buffers against byte-at-a-time and
// 16-bit-word baselines in this binary, and an RFC 1624 incremental TCP checksum update against a
// full recomputation over a 1500-byte packet. CRC32c (SCTP's checksum) at the same sizes: crc32c()
// (the SSE4.2 instruction when built for it), the portable slicing-by-8 tables, and a one-table,
// byte-at-a-time baseline; ns per buffer (Time) and decimal GB/s (counter "GB").
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/crc32c.hpp"

namespace {

using namespace l4lb::wire;

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// Baseline 1: RFC 1071 read literally, one byte per step.
std::uint16_t sum_bytewise(const std::byte* p, std::size_t n) {
  std::uint32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto b = std::to_integer<std::uint32_t>(p[i]);
    s += (i & 1) ? b : (b << 8);
  }
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}

// Baseline 2: the common textbook loop, one big-endian 16-bit word per step.
std::uint16_t sum_words(const std::byte* p, std::size_t n) {
  std::uint32_t s = 0;
  std::size_t i = 0;
  for (; i + 1 < n; i += 2)
    s += (std::to_integer<std::uint32_t>(p[i]) << 8) | std::to_integer<std::uint32_t>(p[i + 1]);
  if (i < n) s += std::to_integer<std::uint32_t>(p[i]) << 8;
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}

// Arg 0: buffer size; arg 1: start offset (1 = misaligned).
void BM_sum_l4lb(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto off = static_cast<std::size_t>(state.range(1));
  auto buf = random_bytes(n + off, 1);
  std::span<const std::byte> s(buf.data() + off, n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.data());
    auto v = checksum_accumulator{}.add(s).folded();
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

void BM_sum_baseline_bytewise(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto off = static_cast<std::size_t>(state.range(1));
  auto buf = random_bytes(n + off, 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(buf.data());
    auto v = sum_bytewise(buf.data() + off, n);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

void BM_sum_baseline_words(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto off = static_cast<std::size_t>(state.range(1));
  auto buf = random_bytes(n + off, 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(buf.data());
    auto v = sum_words(buf.data() + off, n);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int n : {64, 576, 1500}) b->Args({n, 0});
  b->Args({1500, 1});
}
BENCHMARK(BM_sum_l4lb)->Apply(sizes);
BENCHMARK(BM_sum_baseline_bytewise)->Apply(sizes);
BENCHMARK(BM_sum_baseline_words)->Apply(sizes);

// A 1500-byte IPv4/TCP packet: 20-byte IP header + 1480-byte segment. NAT changes the
// destination address and port; the TCP checksum is updated either way.
struct tcp_packet {
  std::vector<std::byte> segment = random_bytes(1480, 7);
  ipv4_address src = ipv4_address::from_u32(0xC6120002);
  ipv4_address vip = ipv4_address::from_u32(0xC6120064);
  ipv4_address real = ipv4_address::from_u32(0xC612000B);
};

void BM_tcp_checksum_full_recompute(benchmark::State& state) {
  tcp_packet p;
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.segment.data());
    auto c = tcp_checksum(pseudo_header_v4(p.src, p.real, 6, 1480), p.segment);
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_tcp_checksum_full_recompute);

void BM_tcp_checksum_incremental(benchmark::State& state) {
  tcp_packet p;
  std::uint16_t old_checksum = tcp_checksum(pseudo_header_v4(p.src, p.vip, 6, 1480), p.segment);
  for (auto _ : state) {
    benchmark::DoNotOptimize(old_checksum);
    auto c = checksum_delta{}.replace(p.vip, p.real).replace_u16(80, 8080).apply(old_checksum);
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_tcp_checksum_incremental);

// ---- CRC32c ----------------------------------------------------------------------------------

// Baseline: the textbook table-driven CRC32c, one 256-entry table, one byte per step.
struct bytewise_crc32c {
  std::array<std::uint32_t, 256> table{};
  bytewise_crc32c() {
    for (std::uint32_t b = 0; b < 256; ++b) {
      std::uint32_t r = b;
      for (int i = 0; i < 8; ++i) r = (r & 1u) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
      table[b] = r;
    }
  }
  std::uint32_t operator()(const std::byte* p, std::size_t n) const {
    std::uint32_t r = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) r = (r >> 8) ^ table[(r ^ std::to_integer<std::uint32_t>(p[i])) & 0xFFu];
    return ~r;
  }
};

// Time per buffer is the Time column (ns); "GB" is decimal gigabytes per second (bytes_per_second
// is in binary units).
void set_crc_counters(benchmark::State& state, std::size_t n) {
  const auto it = static_cast<double>(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.SetItemsProcessed(state.iterations());
  state.counters["GB"] = benchmark::Counter(it * static_cast<double>(n) * 1e-9, benchmark::Counter::kIsRate);
}

template <class F>
void crc_loop(benchmark::State& state, F&& f) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto off = static_cast<std::size_t>(state.range(1));
  auto buf = random_bytes(n + off, 3);
  std::span<const std::byte> s(buf.data() + off, n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.data());
    auto v = f(s);
    benchmark::DoNotOptimize(v);
  }
  set_crc_counters(state, n);
}

void BM_crc32c_l4lb(benchmark::State& state) {
#if defined(__SSE4_2__)
  state.SetLabel("sse4.2");
#else
  state.SetLabel("portable");
#endif
  crc_loop(state, [](std::span<const std::byte> s) { return crc32c(s); });
}
void BM_crc32c_l4lb_portable(benchmark::State& state) {
  crc_loop(state, [](std::span<const std::byte> s) { return detail::crc32c_portable(s); });
}
void BM_crc32c_baseline_bytewise(benchmark::State& state) {
  const bytewise_crc32c crc;
  crc_loop(state, [&](std::span<const std::byte> s) { return crc(s.data(), s.size()); });
}
BENCHMARK(BM_crc32c_l4lb)->Apply(sizes);
BENCHMARK(BM_crc32c_l4lb_portable)->Apply(sizes);
BENCHMARK(BM_crc32c_baseline_bytewise)->Apply(sizes);

}  // namespace
