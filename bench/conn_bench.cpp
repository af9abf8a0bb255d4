// Connection table benchmarks, each with its baselines in the same binary:
//   lookup_single / lookup_burst32   the table (full, load 7/8), random existing keys
//   unordered_map_lookup             std::unordered_map holding the same keys and values
//   memory_floor                     random 8-byte reads over a buffer as large as the table
//   memory_floor_2dep                two dependent reads per lookup (metadata, then slot)
//   one_line_reference/load:L        IPv4 only: a minimal table whose buckets are one cache line
//                                    (3 slots of 20 bytes), two-choice placement, lookahead-16
//                                    burst lookup, no state or expiry: the cost of the lightest
//                                    layout at load L (87.5% is ours; 30% shows what load buys)
//   insert / unordered_map_insert    filling an empty table (map: reserved) with N keys
//   insert_burst32                   the same, 32 keys hashed and prefetched before inserting
//   expire                           removing N connections whose deadlines have passed
// at 1k, 1M and 10M entries, IPv4 and IPv6. bytes_per_conn is measured with glibc's allocator
// statistics (mallinfo2: bytes in use, heap and mmap) around construction and fill, divided by
// the entries held. s_per_op is seconds per lookup/insert/expiry (printed as e.g. "25n" = 25 ns).
// *_hugepages: the table (through conn_table_config::memory) and the floor buffer on
// transparent 2 MiB pages, so that neither pays a page walk per random access.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "l4lb/conn/conn_table.hpp"
#include "l4lb/conn/huge_page_resource.hpp"
#include "support/conn_keys.hpp"

namespace {

using namespace l4lb::conn;
using l4lb::wire::ipv4_address;
using l4lb::wire::ipv6_address;

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t t0 = 1'700'000'000 * sec;  // a pcap-like epoch time
constexpr std::size_t lookup_keys = 1u << 20;     // sampled lookup keys, cycled
constexpr std::size_t burst = 32;

std::size_t allocated_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

using l4lb::bench::key_of;

template <class Addr>
struct key_hash {
  std::size_t operator()(const conn_key<Addr>& k) const noexcept { return k.hash(0x5eed); }
};
struct map_value {
  std::uint32_t dest;
  std::uint32_t deadline;
  std::uint8_t state;
};
template <class Addr>
using baseline_map = std::unordered_map<conn_key<Addr>, map_value, key_hash<Addr>>;

// Memory on transparent huge pages (2 MiB): what a DPDK-style application hands the table.
huge_page_resource huge_pages;

conn_table_config table_config(std::uint32_t n, bool nat, bool huge = false) {
  return l4lb::bench::table_config(n, nat, huge ? &huge_pages : nullptr);
}

// One family and size at a time (the 10M fixtures are large), built on first use.
template <class Addr>
struct fixture {
  std::uint32_t n = 0;
  bool huge = false;
  std::unique_ptr<basic_conn_table<Addr>> table;
  double table_bytes_per_conn = 0;
  std::unique_ptr<baseline_map<Addr>> map;
  double map_bytes_per_conn = 0;
  std::vector<conn_key<Addr>> lookups;
  std::uint64_t* floor_buffer = nullptr;
  std::pmr::memory_resource* floor_memory = nullptr;
  std::size_t floor_words = 0;
  std::vector<std::uint64_t> floor_offsets;
  fixture() = default;
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;
  ~fixture() {
    if (floor_buffer) floor_memory->deallocate(floor_buffer, floor_words * 8, 64);
  }
};

template <class Addr>
std::unique_ptr<fixture<Addr>>& slot_of() {
  static std::unique_ptr<fixture<Addr>> f;
  return f;
}

// huge: the table and the floor buffer on huge pages, no unordered_map.
template <class Addr>
fixture<Addr>& get_fixture(std::uint32_t n, bool huge = false) {
  auto& f = slot_of<Addr>();
  if (f && f->n == n && f->huge == huge) return *f;
  f.reset();
  slot_of<std::conditional_t<Addr::size == 4, ipv6_address, ipv4_address>>().reset();
  f = std::make_unique<fixture<Addr>>();
  f->n = n;
  f->huge = huge;
  const std::size_t before = allocated_bytes();
  f->table = std::make_unique<basic_conn_table<Addr>>(table_config(n, false, huge));
  for (std::uint32_t i = 0; i < n; ++i) {
    auto r = f->table->insert(key_of<Addr>(i), new_conn{i % 64, false, no_template}, t0);
    if (r) f->table->on_packet(*r, tcp_flag::syn, direction::input, t0);
  }
  f->table_bytes_per_conn = double(allocated_bytes() - before) / n;

  if (!huge) {
    const std::size_t map_before = allocated_bytes();
    f->map = std::make_unique<baseline_map<Addr>>();
    f->map->reserve(n);
    for (std::uint32_t i = 0; i < n; ++i)
      f->map->emplace(key_of<Addr>(i), map_value{i % 64, 0, 3});
    f->map_bytes_per_conn = double(allocated_bytes() - map_before) / n;
  }

  std::mt19937_64 rng(42);
  f->lookups.reserve(lookup_keys);
  for (std::size_t i = 0; i < lookup_keys; ++i)
    f->lookups.push_back(key_of<Addr>(static_cast<std::uint32_t>(rng() % n)));

  f->floor_words = f->table->memory_bytes() / 8;
  f->floor_buffer = static_cast<std::uint64_t*>(
      (huge ? static_cast<std::pmr::memory_resource*>(&huge_pages) : std::pmr::new_delete_resource())
          ->allocate(f->floor_words * 8, 64));
  f->floor_memory = huge ? static_cast<std::pmr::memory_resource*>(&huge_pages)
                         : std::pmr::new_delete_resource();
  for (std::size_t i = 0; i < f->floor_words; ++i) f->floor_buffer[i] = i * 0x9e3779b97f4a7c15ull;
  f->floor_offsets.reserve(lookup_keys);
  for (std::size_t i = 0; i < lookup_keys; ++i) f->floor_offsets.push_back(rng() % f->floor_words);
  return *f;
}

void per_op(benchmark::State& state, std::size_t ops_per_iteration) {
  const std::int64_t ops = state.iterations() * static_cast<std::int64_t>(ops_per_iteration);
  state.SetItemsProcessed(ops);
  state.counters["s_per_op"] = benchmark::Counter(
      static_cast<double>(ops), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

template <class Addr>
void lookup_single(benchmark::State& state, std::uint32_t n, bool huge = false) {
  auto& f = get_fixture<Addr>(n, huge);
  const auto& table = *f.table;
  std::size_t pos = 0;
  std::uint64_t sum = 0;
  const std::int64_t now = t0 + sec;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) sum += table.find(f.lookups[pos + i], now);
    pos = (pos + burst) & (lookup_keys - 1);
  }
  benchmark::DoNotOptimize(sum);
  per_op(state, burst);
  state.counters["bytes_per_conn"] = f.table_bytes_per_conn;
  state.SetLabel("load=" + std::to_string(double(n) / table.slot_count()).substr(0, 5));
}

template <class Addr>
void lookup_burst(benchmark::State& state, std::uint32_t n, bool huge = false) {
  auto& f = get_fixture<Addr>(n, huge);
  const auto& table = *f.table;
  std::size_t pos = 0;
  std::uint64_t sum = 0;
  conn_ref out[burst];
  const std::int64_t now = t0 + sec;
  for (auto _ : state) {
    sum += table.find_burst(std::span<const conn_key<Addr>>(f.lookups.data() + pos, burst), out, now);
    sum += out[burst - 1];
    pos = (pos + burst) & (lookup_keys - 1);
  }
  benchmark::DoNotOptimize(sum);
  per_op(state, burst);
  state.counters["bytes_per_conn"] = f.table_bytes_per_conn;
  state.SetLabel("load=" + std::to_string(double(n) / table.slot_count()).substr(0, 5));
}

template <class Addr>
void map_lookup(benchmark::State& state, std::uint32_t n) {
  auto& f = get_fixture<Addr>(n);
  const auto& map = *f.map;
  std::size_t pos = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) {
      auto it = map.find(f.lookups[pos + i]);
      sum += it != map.end() ? it->second.dest : 0;
    }
    pos = (pos + burst) & (lookup_keys - 1);
  }
  benchmark::DoNotOptimize(sum);
  per_op(state, burst);
  state.counters["bytes_per_conn"] = f.map_bytes_per_conn;
}

template <class Addr>
void memory_floor(benchmark::State& state, std::uint32_t n, bool huge = false) {
  auto& f = get_fixture<Addr>(n, huge);
  const std::uint64_t* buf = f.floor_buffer;
  std::size_t pos = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) sum += buf[f.floor_offsets[pos + i]];
    pos = (pos + burst) & (lookup_keys - 1);
  }
  benchmark::DoNotOptimize(sum);
  per_op(state, burst);
  state.counters["buffer_MiB"] = double(f.floor_words * 8) / (1 << 20);
}

// Two dependent reads per lookup, the second a few lines after the first: the least any
// table that reads metadata and then a slot can do (the table's own access pattern).
template <class Addr>
void memory_floor_2dep(benchmark::State& state, std::uint32_t n, bool huge = false) {
  auto& f = get_fixture<Addr>(n, huge);
  const std::uint64_t* buf = f.floor_buffer;
  const std::size_t words = f.floor_words;
  std::size_t pos = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) {
      const std::uint64_t at = f.floor_offsets[pos + i];
      const std::uint64_t first = buf[at];
      // Wrap by a conditional subtraction: a 64-bit modulo here would time the divider.
      std::uint64_t second = at + 2 + (first & 47);
      second -= second >= words ? words : 0;
      sum += buf[second];
    }
    pos = (pos + burst) & (lookup_keys - 1);
  }
  benchmark::DoNotOptimize(sum);
  per_op(state, burst);
}

// Each iteration times `work(container)` on a container built by `make()` (untimed), freed untimed.
template <class Make, class Work>
void on_fresh_container(benchmark::State& state, Make&& make, Work&& work) {
  for (auto _ : state) {
    state.PauseTiming();
    auto container = make();
    state.ResumeTiming();
    work(*container);
    state.PauseTiming();
    container.reset();
    state.ResumeTiming();
  }
}

template <class Addr>
void insert(benchmark::State& state, std::uint32_t n) {
  on_fresh_container(
      state, [n] { return std::make_unique<basic_conn_table<Addr>>(table_config(n, false)); },
      [n](basic_conn_table<Addr>& table) {
        std::uint32_t ok = 0;
        for (std::uint32_t i = 0; i < n; ++i)
          ok += table.insert(key_of<Addr>(i), new_conn{i % 64, false, no_template}, t0).has_value();
        benchmark::DoNotOptimize(ok);
      });
  per_op(state, n);
}

// The director's pattern: a burst of new flows is hashed and its home groups prefetched (as
// find_burst does when the lookups miss), then each is inserted.
template <class Addr>
void insert_burst(benchmark::State& state, std::uint32_t n) {
  on_fresh_container(
      state, [n] { return std::make_unique<basic_conn_table<Addr>>(table_config(n, false)); },
      [n](basic_conn_table<Addr>& table) {
        std::uint32_t ok = 0;
        for (std::uint32_t base = 0; base < n; base += burst) {
          const std::uint32_t count = std::min<std::uint32_t>(burst, n - base);
          conn_key<Addr> keys[burst];
          std::uint64_t hashes[burst];
          for (std::uint32_t i = 0; i < count; ++i) {
            keys[i] = key_of<Addr>(base + i);
            hashes[i] = table.hash(keys[i]);
            table.prefetch(hashes[i]);
          }
          for (std::uint32_t i = 0; i < count; ++i)
            ok += table.insert(keys[i], hashes[i], new_conn{i % 64, false, no_template}, t0).has_value();
        }
        benchmark::DoNotOptimize(ok);
      });
  per_op(state, n);
}

template <class Addr>
void map_insert(benchmark::State& state, std::uint32_t n) {
  on_fresh_container(
      state,
      [n] {
        auto map = std::make_unique<baseline_map<Addr>>();
        map->reserve(n);
        return map;
      },
      [n](baseline_map<Addr>& map) {
        for (std::uint32_t i = 0; i < n; ++i) map.emplace(key_of<Addr>(i), map_value{i % 64, 0, 0});
        benchmark::DoNotOptimize(map.size());
      });
  per_op(state, n);
}

template <class Addr>
void expire(benchmark::State& state, std::uint32_t n) {
  std::uint64_t removed = 0;
  on_fresh_container(
      state,
      [n] {
        auto table = std::make_unique<basic_conn_table<Addr>>(table_config(n, false));
        // SYN_RECV connections (60 s) arriving over 64 s: deadlines spread over 1024 ticks.
        for (std::uint32_t i = 0; i < n; ++i) {
          const std::int64_t at = t0 + std::int64_t(i % 1024) * tick_ns;
          auto r = table->insert(key_of<Addr>(i), new_conn{i % 64, false, no_template}, at);
          if (r) table->on_packet(*r, tcp_flag::syn, direction::input, at);
        }
        return table;
      },
      [&removed](basic_conn_table<Addr>& table) {
        removed += table.expire(t0 + 200 * sec, 0xFFFF'FFFFu).conns_expired;
      });
  per_op(state, n);
  state.counters["expired"] = double(removed) / double(state.iterations());
}

// Memory of the NAT variant (reply index included) and its parts, from the allocator.
template <class Addr>
void memory_nat(benchmark::State& state, std::uint32_t n) {
  double measured = 0, index = 0;
  for (auto _ : state) {
    const std::size_t before = allocated_bytes();
    basic_conn_table<Addr> table(table_config(n, true));
    measured = double(allocated_bytes() - before) / n;
    index = double(table.memory().nat_index) / n;
    benchmark::DoNotOptimize(table.size());
  }
  state.counters["bytes_per_conn"] = measured;
  state.counters["nat_index_bytes_per_conn"] = index;
}

// The lightest exact-match layout we could think of, as a yardstick for the floor ratio: one
// 64-byte line per bucket holding three 20-byte IPv4 slots (client and virtual endpoints, a
// deadline-sized word, a value word) and their tags; a key goes to its first bucket if that
// has room, else to its second (and on linearly from there), so a hit reads one line ~80% of
// the time at load 7/8. Nothing else a connection table needs (state, expiry, counts, refs
// that survive, eviction) is here, so the real table cannot do better than this.
class one_line_reference {
 public:
  one_line_reference(std::uint32_t n, double load)
      : lines_(static_cast<std::uint32_t>(n / (3 * load)) + 1),
        mem_(static_cast<line*>(std::aligned_alloc(64, sizeof(line) * lines_))) {
    std::memset(mem_.get(), 0, sizeof(line) * lines_);
    for (std::uint32_t i = 0; i < n; ++i) insert(key_of<ipv4_address>(i), i % 64);
  }
  std::uint64_t find_burst(const conn_key<ipv4_address>* keys, std::uint32_t* out) const {
    constexpr std::size_t lookahead = 16;
    std::uint64_t h[burst];
    std::uint32_t home[burst], pending[burst];
    std::size_t np = 0;
    std::uint64_t hits = 0;
    for (std::size_t i = 0; i < burst; ++i) {
      h[i] = hash(keys[i]);
      home[i] = first(h[i]);
      if (i < lookahead) __builtin_prefetch(&mem_[home[i]]);
    }
    for (std::size_t i = 0; i < burst; ++i) {
      if (i + lookahead < burst) __builtin_prefetch(&mem_[home[i + lookahead]]);
      const line& l = mem_[home[i]];
      const int j = match(l, h[i], keys[i]);
      out[i] = j >= 0 ? l.s[j].value : ~0u;
      if (j < 0 && ((l.overflow >> class_of(h[i])) & 1)) {
        __builtin_prefetch(&mem_[second(h[i])]);
        pending[np++] = static_cast<std::uint32_t>(i);
      }
      hits |= std::uint64_t{j >= 0} << i;
    }
    for (std::size_t p = 0; p < np; ++p) {
      const std::uint32_t i = pending[p];
      for (std::uint32_t g = second(h[i]), probes = 0; probes < lines_; ++probes) {
        const int j = match(mem_[g], h[i], keys[i]);
        if (j >= 0) {
          out[i] = mem_[g].s[j].value;
          hits |= std::uint64_t{1} << i;
          break;
        }
        if (!((mem_[g].overflow >> class_of(h[i])) & 1)) break;
        g = g + 1 == lines_ ? 0 : g + 1;
      }
    }
    return hits;
  }
  std::size_t memory_bytes() const { return sizeof(line) * lines_; }

 private:
  struct slot {
    std::uint8_t key[12];
    std::uint32_t deadline;
    std::uint32_t value;
  };
  struct alignas(64) line {
    std::uint8_t tag[3];
    std::uint8_t overflow;
    slot s[3];
  };
  static_assert(sizeof(line) == 64);
  struct free_deleter {
    void operator()(line* p) const { std::free(p); }
  };

  static std::uint64_t hash(const conn_key<ipv4_address>& k) { return k.hash(0x5eed); }
  static std::uint8_t tag_of(std::uint64_t h) {
    const auto t = static_cast<std::uint8_t>(h);
    return static_cast<std::uint8_t>(t + (t == 0));
  }
  static unsigned class_of(std::uint64_t h) { return static_cast<unsigned>(h >> 8) & 7u; }
  std::uint32_t first(std::uint64_t h) const {
    return static_cast<std::uint32_t>(((h >> 32) * lines_) >> 32);
  }
  std::uint32_t second(std::uint64_t h) const {
    return static_cast<std::uint32_t>(((h >> 11 & 0xFFFF'FFFFu) * lines_) >> 32);
  }
  // Branch-free over the three slots: tag and 12 key bytes compared as words.
  static int match(const line& l, std::uint64_t h, const conn_key<ipv4_address>& k) {
    const std::uint8_t t = tag_of(h);
    std::uint64_t k8;
    std::uint32_t k4;
    std::memcpy(&k8, &k, 8);
    std::memcpy(&k4, reinterpret_cast<const char*>(&k) + 8, 4);
    int found = -1;
    for (int j = 2; j >= 0; --j) {
      std::uint64_t s8;
      std::uint32_t s4;
      std::memcpy(&s8, l.s[j].key, 8);
      std::memcpy(&s4, l.s[j].key + 8, 4);
      const bool eq = l.tag[j] == t && ((s8 ^ k8) | (s4 ^ k4)) == 0;
      found = eq ? j : found;
    }
    return found;
  }
  void insert(const conn_key<ipv4_address>& k, std::uint32_t value) {
    const std::uint64_t h = hash(k);
    std::uint32_t g = first(h);
    bool moved = false;
    for (;;) {
      line& l = mem_[g];
      for (int j = 0; j < 3; ++j)
        if (l.tag[j] == 0) {
          l.tag[j] = tag_of(h);
          std::memcpy(l.s[j].key, &k, 12);
          l.s[j].value = value;
          return;
        }
      l.overflow = static_cast<std::uint8_t>(l.overflow | (1u << class_of(h)));
      g = moved ? (g + 1 == lines_ ? 0 : g + 1) : second(h);
      moved = true;
    }
  }

  std::uint32_t lines_;
  std::unique_ptr<line[], free_deleter> mem_;
};

void one_line_reference_lookup(benchmark::State& state, std::uint32_t n, double load) {
  auto& f = get_fixture<ipv4_address>(n);
  const one_line_reference table(n, load);
  std::size_t pos = 0;
  std::uint64_t sum = 0;
  std::uint32_t out[burst];
  for (auto _ : state) {
    sum += table.find_burst(f.lookups.data() + pos, out);
    sum += out[burst - 1];
    pos = (pos + burst) & (lookup_keys - 1);
  }
  benchmark::DoNotOptimize(sum);
  per_op(state, burst);
  state.counters["bytes_per_conn"] = double(table.memory_bytes()) / n;
}

using bench_fn = void (*)(benchmark::State&, std::uint32_t, bool);

template <class Addr>
void register_family(const char* family) {
  // name, function, whether it also runs with the table and the buffer on huge pages (1M+).
  struct entry {
    const char* name;
    bench_fn fn;
    bool huge_too;
  };
  const entry entries[] = {
      {"lookup_single", [](benchmark::State& s, std::uint32_t n, bool h) { lookup_single<Addr>(s, n, h); }, true},
      {"lookup_burst32", [](benchmark::State& s, std::uint32_t n, bool h) { lookup_burst<Addr>(s, n, h); }, true},
      {"unordered_map_lookup", [](benchmark::State& s, std::uint32_t n, bool) { map_lookup<Addr>(s, n); }, false},
      {"memory_floor", [](benchmark::State& s, std::uint32_t n, bool h) { memory_floor<Addr>(s, n, h); }, true},
      {"memory_floor_2dep", [](benchmark::State& s, std::uint32_t n, bool h) { memory_floor_2dep<Addr>(s, n, h); }, true},
      {"insert", [](benchmark::State& s, std::uint32_t n, bool) { insert<Addr>(s, n); }, false},
      {"insert_burst32", [](benchmark::State& s, std::uint32_t n, bool) { insert_burst<Addr>(s, n); }, false},
      {"unordered_map_insert", [](benchmark::State& s, std::uint32_t n, bool) { map_insert<Addr>(s, n); }, false},
      {"expire", [](benchmark::State& s, std::uint32_t n, bool) { expire<Addr>(s, n); }, false},
  };
  for (std::uint32_t n : {1'000u, 1'000'000u, 10'000'000u}) {
    const std::string suffix = std::string("/") + family + "/entries:" + std::to_string(n);
    const double min_time = n >= 10'000'000 ? 0.5 : 0.2;
    for (const entry& e : entries) {
      const bench_fn fn = e.fn;
      benchmark::RegisterBenchmark(("conn/" + std::string(e.name) + suffix).c_str(),
                                   [fn, n](benchmark::State& s) { fn(s, n, false); })
          ->MinTime(min_time);
    }
    if constexpr (Addr::size == 4) {
      for (const double load : {0.875, 0.3})
        benchmark::RegisterBenchmark(
            ("conn/one_line_reference/load:" + std::to_string(int(load * 1000 + 0.5)) + "permille" +
             suffix)
                .c_str(),
            [n, load](benchmark::State& s) { one_line_reference_lookup(s, n, load); })
            ->MinTime(min_time);
    }
    benchmark::RegisterBenchmark(("conn/memory_nat" + suffix).c_str(),
                                 [n](benchmark::State& s) { memory_nat<Addr>(s, n); })
        ->Iterations(1);
    if (n < 1'000'000) continue;
    // The same lookups and floors with the table and the buffer on 2 MiB pages.
    for (const entry& e : entries) {
      if (!e.huge_too) continue;
      const bench_fn fn = e.fn;
      benchmark::RegisterBenchmark(("conn/" + std::string(e.name) + "_hugepages" + suffix).c_str(),
                                   [fn, n](benchmark::State& s) { fn(s, n, true); })
          ->MinTime(min_time);
    }
  }
}

const bool registered = [] {
  register_family<ipv4_address>("ipv4");
  register_family<ipv6_address>("ipv6");
  return true;
}();

}  // namespace
