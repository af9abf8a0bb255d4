// libFuzzer target for director::process_burst: fuzzed bursts of frames, with fuzzed clock steps,
// firewall marks and headroom, against one fixed configuration that covers DR, NAT (with an
// egress MTU), ipip / GUE / GRE tunnels, FullNAT, persistence, fwmark services, IPv4 and IPv6.
// Each input gets a fresh director (so a reproducer replays alone); state builds up over the
// bursts of one input: connections, templates, FullNAT ports, fragments, expiry as the clock moves.
//
// Input: a sequence of bursts, each [frames (1 byte, 1..32), clock step (2 bytes, 10 ms units)]
// then per frame [mark (1 byte: 0, 1 or 2 mostly 0), headroom (1 byte), length (2 bytes), bytes].
//
// After each burst (abort on failure, so libFuzzer saves the input):
// - every forward verdict's frame lies inside the storage of the frame it was given; every
//   reply and every fragment frame is readable in full (ASan) and parses;
// - the verdict counters grew by exactly the frames processed, and their by-reason arrays sum to
//   their totals;
// - for every real server, the active / inactive counts each connection table keeps equal a
//   count of the connections the table holds, and the director's per-server counts (what -L
//   shows) equal the two tables' sums;
// - the reassembly table holds no more fragments and datagrams than its configuration allows.
//
// scripts/fuzz builds and runs it (corpus: tests/fuzz/corpus/director_fuzz/); by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       tests/fuzz/director_fuzz.cpp -o director_fuzz
//   ./director_fuzz -max_len=8192 tests/fuzz/corpus/director_fuzz
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <span>
#include <vector>

#include "fuzz_support.hpp"
#include "l4lb/config/rules.hpp"
#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/wire/parse.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::director;

constexpr const char* rules =
    "-A -t 198.18.0.100:80 -s rr\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.13:8080 -m --mtu 1400\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -i --tun-type gre --tun-csum\n"
    "-A -u 198.18.0.100:53 -s wlc -p 60\n"
    "-a -u 198.18.0.100:53 -r 198.18.0.12:53 -i --tun-type gue --tun-port 6080 --tun-csum\n"
    "-a -u 198.18.0.100:53 -r 198.18.0.13:53 -i\n"
    "-A -u 198.18.0.100:7 -s sh\n"
    "-a -u 198.18.0.100:7 -r 198.18.0.13:7 -m\n"
    "-A -t [fd00:198:18::100]:80 -s wrr\n"
    "-a -t [fd00:198:18::100]:80 -r [fd00:198:18::12]:80 -i --tun-type gue --tun-port 6080\n"
    "-a -t [fd00:198:18::100]:80 -r [fd00:198:18::13]:80 -m --mtu 1300\n"
    "-A -u [fd00:198:18::100]:53 -s lc\n"
    "-a -u [fd00:198:18::100]:53 -r [fd00:198:18::12]:53 -g\n"
    "-A -f 1 -s rr -p 30\n"
    "-a -f 1 -r 198.18.0.12:0 --fullnat --local-address 198.18.0.1\n"
    "-a -f 1 -r 198.18.0.13:0 -m\n"
    "-A -f 2 -6 -s mh\n"
    "-a -f 2 -6 -r [fd00:198:18::13]:0 --fullnat --local-address fd00:198:18::1\n"
    "-a -f 2 -6 -r [fd00:198:18::12]:0 -g\n";

wire::ip_address ip(const char* s) { return *wire::ip_address::parse(s); }

struct world {
  director_control control{configuration_limits{64, 256}};
  director_config cfg;

  world() {
    director_identity id;
    id.mac = neighbour_table::derived_mac(ip("198.18.0.1"));
    id.addresses = {ip("198.18.0.1"), ip("fd00:198:18::1")};
    id.gateway_v4 = ip("198.18.0.254");
    id.gateway_v6 = ip("fd00:198:18::fe");
    control.set_identity(id);
    for (const char* h : {"198.18.0.11", "198.18.0.12", "198.18.0.13", "198.18.0.2", "198.18.0.254",
                          "fd00:198:18::12", "fd00:198:18::13", "fd00:198:18::2", "fd00:198:18::fe"})
      control.set_neighbour(ip(h), neighbour_table::derived_mac(ip(h)));
    auto r = config::load_rules(control.config(), rules);
    FUZZ_REQUIRE(r.has_value());
    FUZZ_REQUIRE(control.apply_all(r->applied).error == config_error::ok);
    cfg.conn_capacity_v4 = 512;
    cfg.conn_capacity_v6 = 256;
    cfg.template_capacity = 64;
    cfg.fragments.datagrams = 16;
    cfg.fragments.slots = 48;
    cfg.full_nat = true;
    cfg.full_nat_local_addresses = 2;
  }
};

/// One input's run: a director of its own.
struct run {
  world& w;
  class director d;
  std::int64_t now = 1'000'000'000;
  std::uint64_t processed = 0;
  explicit run(world& wo) : w(wo), d(wo.control, wo.cfg) {}
};

world& the_world() {
  static world w;
  return w;
}

std::uint64_t total(const verdict_counters& c) {
  return c.forwarded + c.replies + c.passed + c.dropped + c.queued;
}
template <std::size_t N>
std::uint64_t sum(const std::array<std::uint64_t, N>& a) {
  return std::accumulate(a.begin(), a.end(), std::uint64_t{0});
}

void touch(std::span<const std::byte> f) {
  volatile unsigned s = 0;
  for (auto b : f) s = s + std::to_integer<unsigned>(b);
  (void)s;
}

/// Counts recomputed from the table's slots, compared with what the table and the director keep.
template <class Table>
void recount(const Table& t, std::map<std::uint32_t, std::array<std::uint32_t, 2>>& by_dest) {
  std::map<std::uint32_t, std::array<std::uint32_t, 2>> mine;
  std::uint32_t n = 0;
  for (std::uint32_t ref = 0; ref < t.slot_count(); ++ref) {
    if (!t.occupied(ref)) continue;
    ++n;
    auto& c = mine[t.dest(ref)];
    ++c[conn::detail::active_state(t.protocol(ref), t.state(ref)) ? 0 : 1];
  }
  FUZZ_REQUIRE(n == t.size());
  FUZZ_REQUIRE(t.size() <= t.capacity());
  for (std::uint32_t h = 0; h < 64; ++h) {
    const auto& c = t.counts(h);
    const auto it = mine.find(h);
    const std::array<std::uint32_t, 2> want = it == mine.end() ? std::array<std::uint32_t, 2>{} : it->second;
    FUZZ_REQUIRE(c.active_conns == want[0]);
    FUZZ_REQUIRE(c.inactive_conns == want[1]);
    by_dest[h][0] += want[0];
    by_dest[h][1] += want[1];
  }
  for (const auto& [h, c] : mine) FUZZ_REQUIRE(h < 64);
}

void check(run& w) {
  const class director& d = w.d;
  const verdict_counters& c = d.verdicts();
  FUZZ_REQUIRE(total(c) == w.processed);
  FUZZ_REQUIRE(sum(c.forwarded_by_method) == c.forwarded);
  FUZZ_REQUIRE(c.forwarded_to_client <= c.forwarded);
  FUZZ_REQUIRE(sum(c.replies_by_reason) == c.replies);
  FUZZ_REQUIRE(sum(c.passed_by_reason) == c.passed);
  FUZZ_REQUIRE(sum(c.dropped_parse) + sum(c.dropped_forward) + sum(c.dropped_director) == c.dropped);

  std::map<std::uint32_t, std::array<std::uint32_t, 2>> by_dest;
  recount(d.table_v4(), by_dest);
  recount(d.table_v6(), by_dest);
  for (const auto& [h, n] : by_dest) {
    const dest_status s = w.w.control.dest_stats(h);
    FUZZ_REQUIRE(s.active_conns == n[0]);
    FUZZ_REQUIRE(s.inactive_conns == n[1]);
  }

  const fragment_table& f = d.fragment_state();
  FUZZ_REQUIRE(f.fragments_held() <= f.config().slots);
  FUZZ_REQUIRE(f.datagrams_held() <= f.config().datagrams);
  FUZZ_REQUIRE(f.datagrams_held() <= f.fragments_held());
}

struct frame_slot {
  std::vector<std::byte> storage;
  forward::frame_buffer buf;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run w(the_world());
  fuzz::reader in(data, size);
  while (in.left() > 0) {
    const std::size_t n = 1 + in.u8() % 32;
    w.now += std::int64_t{in.u16()} * 10'000'000;
    std::vector<frame_slot> slots(n);
    std::vector<forward::frame_buffer> bufs(n);
    std::vector<std::uint32_t> marks(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t m = in.u8();
      marks[i] = m < 200 ? 0u : m % 3u;
      const std::size_t headroom = in.u8();
      const auto bytes = in.take(in.u16() % 1600);
      auto& s = slots[i];
      s.storage.resize(headroom + bytes.size() + 64);
      if (!bytes.empty()) std::memcpy(s.storage.data() + headroom, bytes.data(), bytes.size());
      s.buf = *forward::frame_buffer::make(s.storage, headroom, bytes.size());
      bufs[i] = s.buf;
    }
    std::vector<verdict> out(n);
    w.d.process_burst(bufs, out, w.now, marks);
    w.processed += n;
    for (std::size_t i = 0; i < n; ++i) {
      const verdict& v = out[i];
      if (v.kind == verdict_kind::forward && v.frames.empty()) {
        FUZZ_REQUIRE(fuzz::inside(v.frame, std::span<std::byte>(slots[i].storage)));
        FUZZ_REQUIRE(!v.frame.empty());
        FUZZ_REQUIRE(wire::parse(v.frame).has_value());
      } else if (v.kind == verdict_kind::reply) {
        FUZZ_REQUIRE(!v.frame.empty() && v.frame.size() <= l4lb::director::director::reply_room);
        touch(v.frame);
        FUZZ_REQUIRE(wire::parse(v.frame).has_value());
      } else if (!v.frames.empty()) {
        FUZZ_REQUIRE(v.kind == verdict_kind::forward || v.kind == verdict_kind::pass || v.kind == verdict_kind::drop);
        FUZZ_REQUIRE(v.frames.front().data() == v.frame.data());
        for (const auto& f : v.frames) {
          touch(f);
          FUZZ_REQUIRE(wire::parse(f).has_value());
        }
      } else {
        FUZZ_REQUIRE(v.frame.empty() || v.kind == verdict_kind::pass || v.kind == verdict_kind::drop);
      }
    }
    check(w);
  }
  return 0;
}
