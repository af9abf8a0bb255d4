#include <doctest/doctest.h>

#include <atomic>
#include <bit>
#include <cstdlib>
#include <memory_resource>
#include <new>

#include "conn/conn_support.hpp"
#include "l4lb/conn/conn_table.hpp"

// Counts every global allocation of this test program (the only file here that does).
#include "support/allocation_counter.hpp"
using l4lb_test::allocations;

using namespace conn_test;

namespace {
// Counts what the table takes from its memory resource.
class counting_resource final : public std::pmr::memory_resource {
 public:
  std::size_t bytes = 0;
  std::size_t calls = 0;

 private:
  void* do_allocate(std::size_t n, std::size_t align) override {
    bytes += n;
    ++calls;
    return std::pmr::new_delete_resource()->allocate(n, align);
  }
  void do_deallocate(void* p, std::size_t n, std::size_t align) override {
    std::pmr::new_delete_resource()->deallocate(p, n, align);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
};
}  // namespace

TEST_SUITE("conn") {
TEST_CASE("conn_table: the data path allocates nothing after construction") {
  counting_resource memory;
  conn_table_config cfg;
  cfg.capacity = 500;
  cfg.template_capacity = 50;
  cfg.max_dests = 8;
  cfg.memory = &memory;
  conn_table_v4 table(cfg);
  for (std::uint32_t d = 0; d < 8; ++d)
    REQUIRE(table.set_dest(d, addr<ipv4_address>(0xC0, d + 1), 8080) == errc::ok);
  // The slot arrays (connections, NAT index, templates) come from the configured resource.
  const auto parts = table.memory();
  // (The timer wheels and the real-server array are small and come from new.)
  CHECK(memory.bytes > parts.conns + parts.nat_index);
  CHECK(memory.bytes < parts.total());
  const std::size_t calls_after_construction = memory.calls;

  const std::uint64_t before = allocations.load();
  std::uint64_t work = 0;
  persistence<ipv4_address> svc;
  svc.service_port = 80;
  for (std::uint32_t round = 0; round < 20; ++round) {
    const std::int64_t now = (100 + round * 7) * sec;
    for (std::uint32_t i = 0; i < 600; ++i) {  // more than the capacity: eviction and refusal
      const auto k = key<ipv4_address>(i, static_cast<std::uint16_t>(round));
      template_ref t = no_template;
      if (i % 5 == 0) {
        const auto tk = svc.key_for(tcp, k.client_addr, k.virtual_addr, 80);
        t = table.find_template(tk, now);
        if (t == no_template) {
          auto made = table.insert_template(tk, i % 8, 60, now);
          t = made ? *made : no_template;
        }
      }
      const auto dest = t != no_template ? table.templates().dest(t) : i % 8;
      auto r = table.insert(k, new_conn{dest, i % 2 == 0, t}, now);
      if (!r) continue;
      table.on_packet(*r, tcp_flag::syn, direction::input, now);
      if (i % 3 == 0) table.on_packet(*r, tcp_flag::ack, direction::input, now);
      if (i % 7 == 0) table.on_packet(*r, tcp_flag::fin, direction::output, now);
    }
    conn_key_v4 keys[32];
    conn_ref out[32];
    for (std::uint32_t i = 0; i < 32; ++i) keys[i] = key<ipv4_address>(i * 3, static_cast<std::uint16_t>(round));
    work += static_cast<std::uint64_t>(std::popcount(table.find_burst(keys, out, now)));
    for (std::uint32_t i = 0; i < 32; ++i) {
      work += table.lookup_input(keys[i], tcp_flag::syn, now).action == input_action::hit;
      work += table.find_reply({addr<ipv4_address>(0xC0, 1), keys[i].client_addr, 8080,
                                keys[i].client_port, tcp},
                               now) != no_conn;
    }
    table.for_each([&](const conn_view<ipv4_address>& v) { work += v.dest; }, now);
    work += table.expire(now, 16).visited;
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(during == 0);
  CHECK(memory.calls == calls_after_construction);
  CHECK(work > 0);
  CHECK(table.stats().inserted > 1000);
  CHECK(table.stats().evicted_embryonic + table.stats().refused_full > 0);
}
}
