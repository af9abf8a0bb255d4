#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "conn/conn_model.hpp"
#include "conn/conn_support.hpp"
#include "l4lb/conn/conn_table.hpp"

using namespace conn_test;

namespace {

// Timeouts short enough that a small table sees expiry, eviction and refusal all the time.
timeouts short_timeouts() {
  timeouts t;
  t.tcp = {2, 30, 12, 6, 12, 12, 2, 6, 3, 12, 12};
  t.udp = 10;
  t.other = 8;
  t.initial = 3;
  return t;
}

template <class Addr>
struct harness {
  static constexpr std::uint32_t capacity = 200;
  static constexpr std::uint32_t dest_count = 8;

  std::mt19937_64 rng{0xC0FFEE};
  basic_conn_table<Addr> table;
  conn_model::model<Addr> model;
  std::vector<conn_key<Addr>> pool;
  std::int64_t now = 1000 * sec;
  std::uint64_t ops = 0;
  // What the run exercised (so the test cannot pass by doing nothing).
  std::uint64_t hits = 0, reply_hits = 0, inserts_ok = 0, inserts_full = 0, inserts_exists = 0,
                reused = 0, burst_hits = 0;

  static conn_table_config config() {
    conn_table_config c;
    c.capacity = capacity;
    c.max_dests = dest_count;
    c.seed = 77;
    c.idle_timeouts = short_timeouts();
    return c;
  }
  static std::vector<typename conn_model::model<Addr>::dest> model_dests() {
    std::vector<typename conn_model::model<Addr>::dest> v;
    for (std::uint32_t d = 0; d < dest_count; ++d)
      v.push_back({addr<Addr>(0xC0, d + 1), static_cast<std::uint16_t>(d % 2 ? 8000 + d : 0), {}});
    return v;
  }

  harness() : table(config()), model(capacity, short_timeouts(), model_dests()) {
    for (std::uint32_t d = 0; d < dest_count; ++d) {
      const auto& md = model.dest_info(d);
      REQUIRE(table.set_dest(d, md.address, md.port) == errc::ok);
    }
    // 3 services x 16 clients x 20 ports. The client port range differs per service, so a
    // client endpoint names one service and replies are never ambiguous.
    const std::uint16_t vports[3] = {80, 443, 53};
    for (std::uint32_t v = 0; v < 3; ++v)
      for (std::uint32_t c = 1; c <= 16; ++c)
        for (std::uint32_t j = 0; j < 20; ++j) {
          // 50 (ESP): a protocol without a state machine (SCTP's has tests of its own).
          std::uint8_t proto = v < 2 ? tcp : (j % 4 == 0 ? std::uint8_t{50} : udp);
          pool.push_back(key<Addr>(c, static_cast<std::uint16_t>(1000 + v * 1000 + j), v + 1,
                                   vports[v], proto));
        }
  }

  std::uint32_t pick(std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); }
  const conn_key<Addr>& random_key() { return pool[pick(static_cast<std::uint32_t>(pool.size()))]; }

  std::vector<conn_key<Addr>> window_of(const conn_key<Addr>& k) {
    std::vector<conn_key<Addr>> w;
    const auto groups = table.eviction_window(table.hash(k));
    for (std::uint32_t i = 0; i < (groups[0] == groups[1] ? 1u : 2u); ++i)
      table.for_each_in_group(groups[i], [&](conn_ref r) { w.push_back(table.key(r)); });
    return w;
  }

  void check_same_entry(conn_ref r, const typename conn_model::model<Addr>::entry* e) {
    REQUIRE((r != no_conn) == (e != nullptr));
    if (!e) return;
    CHECK(table.dest(r) == e->dest);
    CHECK(table.state(r) == static_cast<std::uint8_t>(e->state));
    CHECK(table.is_nat(r) == e->nat);
    CHECK(table.no_output(r) == e->no_output);
    CHECK(table.remaining_ns(r, now) == e->deadline - now);
  }

  void insert_op() {
    const auto& k = random_key();
    const std::uint32_t d = pick(dest_count);
    const bool nat = pick(2) == 0;
    const auto window = table.size() == capacity ? window_of(k) : std::vector<conn_key<Addr>>{};
    const auto want = model.insert(k, d, nat, now, window);
    auto got = table.insert(k, new_conn{d, nat, no_template}, now);
    using outcome = typename conn_model::model<Addr>::outcome;
    if (want == outcome::ok) {
      REQUIRE(got);
      ++inserts_ok;
      // The packet that created it.
      const std::uint8_t flags = k.protocol == tcp ? tcp_flag::syn : 0;
      const auto m = model.on_packet(k, flags, direction::input, now);
      const auto t = table.on_packet(*got, flags, direction::input, now);
      CHECK(t.from == m.first);
      CHECK(t.to == m.second);
      if (k.protocol == tcp && pick(2) == 0) {  // half the handshakes complete
        const auto m2 = model.on_packet(k, tcp_flag::ack, direction::input, now);
        const auto t2 = table.on_packet(*got, tcp_flag::ack, direction::input, now);
        CHECK(t2.to == m2.second);
      }
    } else {
      REQUIRE_FALSE(got);
      CHECK(got.error() == (want == outcome::exists ? errc::exists : errc::table_full));
      ++(want == outcome::exists ? inserts_exists : inserts_full);
    }
  }

  void packet_op() {
    const auto& k = random_key();
    const auto* e = model.find(k, now);
    const conn_ref r = table.find(k, now);
    check_same_entry(r, e);
    if (!e) return;
    static constexpr std::uint8_t flag_set[] = {
        tcp_flag::syn, tcp_flag::syn | tcp_flag::ack, tcp_flag::ack, tcp_flag::fin | tcp_flag::ack,
        tcp_flag::rst, tcp_flag::rst | tcp_flag::ack, tcp_flag::psh | tcp_flag::ack, 0};
    const std::uint8_t flags = flag_set[pick(8)];
    const direction dir = pick(3) == 0 ? direction::output : direction::input;
    const auto m = model.on_packet(k, flags, dir, now);
    const auto t = table.on_packet(r, flags, dir, now);
    CHECK(t.from == m.first);
    CHECK(t.to == m.second);
  }

  void find_op() {
    const auto& k = random_key();
    const auto* e = model.find(k, now);
    const conn_ref r = table.find(k, now);
    check_same_entry(r, e);
    hits += e != nullptr;
  }

  void reply_op() {
    const auto& k = random_key();
    reply_key<Addr> rk;
    if (pick(2) == 0) {  // NAT form: from a server
      const auto* e = model.find(k, now);
      const std::uint32_t d = e && pick(4) != 0 ? e->dest : pick(dest_count);
      const auto& md = model.dest_info(d);
      rk = {md.address, k.client_addr, md.port != 0 ? md.port : k.virtual_port, k.client_port,
            k.protocol};
    } else {  // non-NAT form: from the virtual endpoint
      rk = {k.virtual_addr, k.client_addr, k.virtual_port, k.client_port, k.protocol};
    }
    const auto want = model.find_reply(rk, now);
    const conn_ref got = table.find_reply(rk, now);
    REQUIRE((got != no_conn) == want.has_value());
    if (want) {
      CHECK(table.key(got) == *want);
      ++reply_hits;
    }
  }

  void burst_op() {
    std::vector<conn_key<Addr>> keys;
    const std::size_t n = 1 + pick(64);
    for (std::size_t i = 0; i < n; ++i) keys.push_back(random_key());
    std::vector<conn_ref> out(n);
    const std::uint64_t mask = table.find_burst(keys, out, now);
    for (std::size_t i = 0; i < n; ++i) {
      const auto* e = model.find(keys[i], now);
      check_same_entry(out[i], e);
      CHECK(((mask >> i) & 1) == (e != nullptr));
      burst_hits += e != nullptr;
    }
  }

  void syn_lookup_op() {
    // Prefer a connection in TIME_WAIT or CLOSE, the ones a SYN may reuse.
    const conn_key<Addr>* pk = &random_key();
    for (int tries = 0; tries < 16; ++tries) {
      const auto* e = model.find(*pk, now);
      if (e && (e->state == tcp_state::time_wait || e->state == tcp_state::close)) break;
      pk = &random_key();
    }
    const auto& k = *pk;
    const int want = model.lookup_syn(k, now);
    const auto got = table.lookup_input(k, k.protocol == tcp ? tcp_flag::syn : 0, now);
    const input_action expect[] = {input_action::miss, input_action::hit, input_action::rescheduled};
    CHECK(got.action == expect[want]);
    reused += want == 2;
  }

  void erase_op() {
    const auto& k = random_key();
    if (!model.find(k, now)) return;
    const conn_ref r = table.find(k, now);
    REQUIRE(r != no_conn);
    model.erase(k);
    table.erase(r, now);
  }

  void advance(bool expire) {
    // Mostly steps of a fraction of a second, unaligned to ticks (about 170 operations per
    // simulated second keep a 200-entry table full); now and then a long pause.
    now += pick(500) == 0 ? std::int64_t{pick(40)} * sec : std::int64_t{pick(100'000'000)};
    if (!expire) return;
    for (std::uint32_t calls = 0;; ++calls) {
      REQUIRE(calls < 100000);
      if (table.expire(now, 1 + pick(4)).caught_up) break;
    }
    model.expire_all(now);
  }

  void check_counts() {
    REQUIRE(table.size() == model.size());
    for (std::uint32_t d = 0; d < dest_count; ++d) {
      CAPTURE(d);
      REQUIRE(table.counts(d) == model.counts(d));
    }
  }

  void check_all() {
    std::size_t live = 0;
    table.for_each(
        [&](const conn_view<Addr>& v) {
          ++live;
          const auto* e = model.find(v.key, now);
          REQUIRE(e != nullptr);
          CHECK(v.dest == e->dest);
          CHECK(v.state == static_cast<std::uint8_t>(e->state));
          CHECK(v.remaining_ns == e->deadline - now);
        },
        now);
    std::size_t model_live = 0;
    for (const auto& [k, e] : model.entries()) model_live += conn_model::model<Addr>::alive(e, now);
    CHECK(live == model_live);
  }

  void run(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      CAPTURE(i);
      const std::uint32_t r = pick(100);
      if (r < 28)
        insert_op();
      else if (r < 46)
        find_op();
      else if (r < 56)
        reply_op();
      else if (r < 76)
        packet_op();
      else if (r < 80)
        erase_op();
      else if (r < 84)
        burst_op();
      else if (r < 88)
        syn_lookup_op();
      else if (r < 94)
        advance(false);
      else
        advance(true);
      check_counts();
      if (i % 4096 == 0) check_all();
      ++ops;
    }
  }
};

}  // namespace

TEST_SUITE("conn") {
TEST_CASE_TEMPLATE("conn_table: 1M random operations agree with the reference model", Addr,
                   ipv4_address, ipv6_address) {
  harness<Addr> h;
  // IPv4 carries the full million; IPv6 shares all the code but the slot layout and hash, so a
  // quarter keeps the ASan run short.
  const std::uint64_t n = std::is_same_v<Addr, ipv4_address> ? 1'000'000 : 250'000;
  h.run(n);
  h.check_all();
  MESSAGE("ops " << h.ops << ", inserted " << h.inserts_ok << ", full " << h.inserts_full
                 << ", exists " << h.inserts_exists << ", hits " << h.hits << ", reply hits "
                 << h.reply_hits << ", reused " << h.reused << ", expired "
                 << h.table.stats().expired << ", evicted embryonic "
                 << h.table.stats().evicted_embryonic << ", evicted inactive "
                 << h.table.stats().evicted_inactive);
  // The run must have exercised every path it claims to compare.
  CHECK(h.inserts_ok > 1000);
  CHECK(h.inserts_full > 100);
  CHECK(h.inserts_exists > 100);
  CHECK(h.hits > 1000);
  CHECK(h.reply_hits > 1000);
  CHECK(h.burst_hits > 1000);
  CHECK(h.reused > 100);
  CHECK(h.table.stats().expired > 1000);
  CHECK(h.table.stats().evicted_embryonic > 100);
  CHECK(h.table.stats().evicted_inactive > 100);
}
}
