// "pick never allocates": every policy any_scheduler knows, after rebuild, runs picks and
// counts_changed calls (binding and expiring connections, overloads flipping) while this test
// program counts every global allocation. Only this file replaces operator new in l4lb_sched_tests.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "l4lb/sched/any_scheduler.hpp"
#include "sched/list_sched_support.hpp"

// Counts every global allocation of this test program (the only file here that does).
#include "support/allocation_counter.hpp"
using l4lb_test::allocations;

using namespace l4lb::sched;

TEST_SUITE("sched") {

TEST_CASE("any_scheduler: pick and counts_changed allocate nothing after rebuild") {
  {  // the counter sees allocations made in this program
    const std::uint64_t a0 = allocations.load();
    int* volatile p = new int(1);
    delete p;
    REQUIRE(allocations.load() == a0 + 1);
  }
  test::rng32 rng(17);
  for (std::string_view name : any_scheduler::names) {
    CAPTURE(name);
    std::vector<real_server> dests;
    for (std::uint32_t h = 1; h <= 50; ++h) {
      auto r = test::make_server(h, h % 7, rng() % 10, rng() % 100);
      r.upper_threshold = h % 3 == 0 ? 20 : 0;
      dests.push_back(r);
    }
    auto s = make_scheduler(name);
    REQUIRE(s.has_value());
    s->rebuild(dests, {dest_change::kind::init, 0});
    std::vector<l4lb::wire::flow_key> flows;
    for (std::uint32_t i = 0; i < 256; ++i) {
      using namespace l4lb::wire;
      flows.push_back(flow_key{ip_proto::tcp,
                               endpoint{ipv4_address::from_u32(0xc6120000u + i * 131u),
                                        static_cast<std::uint16_t>(2000 + i)},
                               endpoint{ipv4_address::from_u32(0xc6130064u + i % 8), 80}});
    }
    const std::uint64_t before = allocations.load();
    int picked = 0;
    for (int k = 0; k < 3000; ++k) {
      const pick_context ctx{flows[static_cast<std::size_t>(k) % flows.size()],
                             std::int64_t{k} * 50'000'000};
      const dest_id id = s->pick(dests, ctx);
      if (id != no_dest) {
        ++picked;
        ++dests[id].active_conns;
        dests[id].after_bind();
        s->counts_changed(dests, id);
      }
      const auto old = static_cast<dest_id>(rng() % dests.size());
      if (dests[old].active_conns > 0) {
        --dests[old].active_conns;
        dests[old].after_unbind();
        s->counts_changed(dests, old);
      }
    }
    CHECK(allocations.load() == before);
    CHECK(picked > 0);
  }
}

}  // TEST_SUITE
