// Instructions per packet: pushes a fixed set of packets through each main data path and, under
// `valgrind --tool=callgrind --collect-atstart=no` (scripts/bench --instructions), collects only
// the measured calls and dumps one profile per path, so the counts repeat to the instruction on
// any machine that runs the same binary. Without valgrind it runs the same work and checks every
// verdict (the bench-smoke ctest). Usage: l4lb_instructions [--list] [REGEX]
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <regex>
#include <span>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <valgrind/callgrind.h>
#pragma GCC diagnostic pop
#else
// No valgrind headers: the driver still runs and checks its verdicts, counting nothing.
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(name) ((void)(name))
#define CALLGRIND_ZERO_STATS
#endif

#include "l4lb/conn/conn_table.hpp"
#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/conn_keys.hpp"
#include "support/director_setup.hpp"
#include "support/naive_pipeline.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::bench;

// Collection is on only between begin() and end(), so set-up, frame copies and checks between
// calls cost nothing; end_path() writes the path's profile (callgrind.out.<pid>.<n>, its name in
// the "desc: Trigger" line) and zeroes the counters for the next path.
struct collect {
  collect() { CALLGRIND_TOGGLE_COLLECT; }
  ~collect() { CALLGRIND_TOGGLE_COLLECT; }
  collect(const collect&) = delete;
  collect& operator=(const collect&) = delete;
};

struct result {
  std::uint64_t packets = 0;
  std::uint64_t good = 0;  // forwarded / parsed / found: must equal packets
};

// Established flows through process_burst: bursts of 32 over the pool of 1000 flows (as
// bench/director_bench.cpp's pipeline/<method>/1000), after one warm-up pass over the pool.
result established(method_kind m) {
  constexpr std::uint32_t conns = 1000;
  constexpr std::size_t bursts = 256;
  director_setup s(m, conns, "rr", false);
  std::size_t at = 0;
  for (std::size_t b = 0; b < (conns + burst - 1) / burst; ++b) {
    s.load_burst(at);
    s.d->process_burst(s.bufs, s.out, s.now);
  }
  result r;
  for (std::size_t b = 0; b < bursts; ++b) {
    s.load_burst(at);
    {
      collect c;
      s.d->process_burst(s.bufs, s.out, s.now);
    }
    r.packets += burst;
    r.good += s.forwarded();
  }
  return r;
}

// The naive pipeline (support/naive_pipeline.hpp) over the same 1000 flows, as director_bench's
// naive/<method>/1000: what the director's figures are compared with, counted the same way.
result naive(method_kind m) {
  constexpr std::uint32_t conns = 1000;
  constexpr std::size_t bursts = 256;
  naive_fixture fx(conns);
  std::vector<std::byte> rx(burst * slot);
  std::size_t at = 0;
  const auto load = [&] {
    for (std::size_t j = 0; j < burst; ++j) {
      std::memcpy(rx.data() + j * slot + headroom, fx.frames[at].data(), frame_len);
      at = (at + 1) % fx.frames.size();
    }
  };
  for (std::size_t b = 0; b < (conns + burst - 1) / burst; ++b) {
    load();
    (void)fx.process_burst(rx.data(), m, sec);
  }
  result r;
  for (std::size_t b = 0; b < bursts; ++b) {
    load();
    std::uint64_t forwarded;
    {
      collect c;
      forwarded = fx.process_burst(rx.data(), m, sec);
    }
    r.packets += burst;
    r.good += forwarded;
  }
  return r;
}

// NAT replies (real server -> client) of the same 1000 flows, as director_bench's
// nat_replies/lane/1000; one warm-up pass over the pool.
result nat_replies() {
  constexpr std::uint32_t conns = 1000;
  constexpr std::size_t bursts = 256;
  director_setup s(method_kind::nat, conns, "rr", false);
  const std::vector<bytes> replies = s.nat_replies();
  result r;
  if (replies.empty()) return r;
  std::size_t at = 0;
  const auto load = [&] {
    for (std::size_t j = 0; j < burst; ++j) {
      s.load(j, replies[at]);
      at = (at + 1) % replies.size();
    }
  };
  for (std::size_t b = 0; b < (conns + burst - 1) / burst; ++b) {
    load();
    s.d->process_burst(s.bufs, s.out, s.now);
  }
  for (std::size_t b = 0; b < bursts; ++b) {
    load();
    {
      collect c;
      s.d->process_burst(s.bufs, s.out, s.now);
    }
    r.packets += burst;
    for (const auto& v : s.out) r.good += v.kind == director::verdict_kind::forward && v.to_client;
  }
  return r;
}

// New connections: SYNs of flows never seen, scheduled by `sched`, into a table with room for
// all of them (no eviction), as director_bench's new_conn/<sched>; 2 bursts of warm-up.
result new_connections(const char* sched) {
  constexpr std::uint32_t flows = 4096;
  constexpr std::uint32_t warm = 2 * burst;
  director_setup s(method_kind::dr, 0, sched, false, 1, flows + warm);
  const std::vector<bytes> syns = syn_pool();
  result r;
  for (std::uint32_t next = 0; next < flows + warm; next += burst) {
    for (std::size_t j = 0; j < burst; ++j)
      s.load_new_flow(j, syns, next + static_cast<std::uint32_t>(j));
    if (next < warm) {
      s.d->process_burst(s.bufs, s.out, s.now);
      continue;
    }
    {
      collect c;
      s.d->process_burst(s.bufs, s.out, s.now);
    }
    r.packets += burst;
    r.good += s.forwarded();
  }
  return r;
}

// wire::parse over every frame of a bundled capture, 64 passes (as wire_bench's parse/<file>).
// A capture may hold frames parse() rejects (ARP, ...): "good" is a pass that parsed exactly as
// many frames as the warm-up pass, and at least one.
result parse_capture(const char* file) {
  result r;
  auto pcap = io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
  if (!pcap) return r;
  std::vector<std::vector<std::byte>> frames;
  for (const auto& rec : pcap->records()) frames.emplace_back(rec.data.begin(), rec.data.end());
  std::uint64_t parsed_in_warm_up = 0;
  for (int pass = 0; pass < 65; ++pass) {
    std::uint64_t ok = 0;
    {
      collect c;
      for (auto& f : frames) ok += wire::parse(std::span(f)).has_value();
    }
    if (pass == 0) {
      parsed_in_warm_up = ok;
      CALLGRIND_ZERO_STATS;  // pass 0 warms up
      continue;
    }
    r.packets += frames.size();
    r.good += ok == parsed_in_warm_up && ok != 0 ? frames.size() : 0;
  }
  return r;
}

// conn_table::find_burst of 32 random existing keys in a full IPv4 table of 65536 connections
// (conn_bench's lookup_burst32 at a size that fills quickly under valgrind).
result conn_lookup() {
  constexpr std::uint32_t n = 65536;
  constexpr std::size_t bursts = 256;
  constexpr std::int64_t t0 = 1'700'000'000 * sec;
  conn::conn_table_v4 table(table_config(n, false));
  for (std::uint32_t i = 0; i < n; ++i) {
    auto ref = table.insert(key_of<wire::ipv4_address>(i),
                            conn::new_conn{i % 64, false, conn::no_template}, t0);
    if (ref) table.on_packet(*ref, conn::tcp_flag::syn, conn::direction::input, t0);
  }
  std::mt19937_64 rng(42);
  std::vector<conn::conn_key<wire::ipv4_address>> keys;
  for (std::size_t i = 0; i < (bursts + 1) * burst; ++i)
    keys.push_back(key_of<wire::ipv4_address>(static_cast<std::uint32_t>(rng() % n)));
  conn::conn_ref out[burst];
  result r;
  for (std::size_t b = 0; b <= bursts; ++b) {
    std::uint64_t hits = 0;
    {
      collect c;
      hits = table.find_burst(std::span(keys).subspan(b * burst, burst), out, t0 + sec);
    }
    if (b == 0) {
      CALLGRIND_ZERO_STATS;  // the first burst warms up
      continue;
    }
    r.packets += burst;
    r.good += static_cast<std::uint64_t>(__builtin_popcountll(hits));
  }
  return r;
}

struct path {
  const char* name;
  result (*run)();
};

// The names are the keys of bench/baseline/instructions.json.
const path paths[] = {
    {"director/dr/established/1000", [] { return established(method_kind::dr); }},
    {"director/tun/established/1000", [] { return established(method_kind::tun); }},
    {"director/nat/established/1000", [] { return established(method_kind::nat); }},
    {"director/nat_reply/established/1000", nat_replies},
    {"naive/dr/established/1000", [] { return naive(method_kind::dr); }},
    {"naive/nat/established/1000", [] { return naive(method_kind::nat); }},
    {"director/new_conn/rr", [] { return new_connections("rr"); }},
    {"director/new_conn/wlc", [] { return new_connections("wlc"); }},
    {"director/new_conn/mh", [] { return new_connections("mh"); }},
    {"parse/client_vip_http", [] { return parse_capture("client-vip-http.pcap"); }},
    {"conn/lookup_burst32/65536", conn_lookup},
};

}  // namespace

int main(int argc, char** argv) {
  std::string pattern;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--list") == 0) list = true;
    else pattern = argv[i];
  }
  const std::regex re(pattern);
  int failed = 0, ran = 0;
  for (const auto& p : paths) {
    if (!pattern.empty() && !std::regex_search(p.name, re)) continue;
    ++ran;
    if (list) {
      std::printf("%s\n", p.name);
      continue;
    }
    CALLGRIND_ZERO_STATS;
    const result r = p.run();
    CALLGRIND_DUMP_STATS_AT(p.name);
    // scripts/bench.py reads these lines: the path, the packets its profile covers.
    std::printf("path %s packets %llu good %llu\n", p.name,
                static_cast<unsigned long long>(r.packets),
                static_cast<unsigned long long>(r.good));
    if (r.packets == 0 || r.good != r.packets) {
      std::fprintf(stderr, "instructions: %s: %llu of %llu packets not forwarded/parsed/found\n",
                   p.name, static_cast<unsigned long long>(r.packets - r.good),
                   static_cast<unsigned long long>(r.packets));
      ++failed;
    }
  }
  if (ran == 0) {
    std::fprintf(stderr, "instructions: no path matches '%s'\n", pattern.c_str());
    return 2;
  }
  return failed == 0 ? 0 : 1;
}
