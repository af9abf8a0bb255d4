#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "l4lb/conn/timer_wheel.hpp"

using namespace l4lb::conn;

namespace {

// Items with their own wanted deadline; fire() records the tick and drops the item.
struct items {
  std::vector<wheel_links> links;
  std::vector<std::uint32_t> fired_at;
  explicit items(std::size_t n) : links(n), fired_at(n, 0xFFFF'FFFFu) {}
  auto accessor() {
    return [this](std::uint32_t i) -> wheel_links& { return links[i]; };
  }
};

}  // namespace

TEST_SUITE("conn") {
TEST_CASE("timer_wheel: items fire at their deadline, never before") {
  timer_wheel w(64);
  items it(200);
  std::mt19937 rng(5);
  std::vector<std::uint32_t> deadline(200);
  for (std::uint32_t i = 0; i < 200; ++i) {
    deadline[i] = 1000 + static_cast<std::uint32_t>(rng() % 500);  // spans several revolutions of 64 buckets
    w.arm(it.accessor(), i, deadline[i], 1000);
  }
  for (std::uint32_t now = 1000; now < 1600; ++now)
    w.poll(it.accessor(), now, 1'000'000, [&](std::uint32_t i) { it.fired_at[i] = now; });
  for (std::uint32_t i = 0; i < 200; ++i) {
    CAPTURE(i);
    CHECK(it.fired_at[i] == deadline[i]);
  }
}

TEST_CASE("timer_wheel: arming earlier moves an item, later leaves it; disarm removes it") {
  timer_wheel w(64);
  items it(3);
  w.arm(it.accessor(), 0, 500, 100);
  w.arm(it.accessor(), 0, 300, 100);  // earlier: moves
  w.arm(it.accessor(), 0, 900, 100);  // later: stays at 300
  w.arm(it.accessor(), 1, 400, 100);
  w.arm(it.accessor(), 2, 350, 100);
  w.disarm(it.accessor(), 2);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> fired;
  for (std::uint32_t now = 100; now <= 1000; ++now)
    w.poll(it.accessor(), now, 100, [&](std::uint32_t i) { fired.emplace_back(i, now); });
  REQUIRE(fired.size() == 2);
  CHECK(fired[0] == std::pair<std::uint32_t, std::uint32_t>{0, 300});
  CHECK(fired[1] == std::pair<std::uint32_t, std::uint32_t>{1, 400});
}

TEST_CASE("timer_wheel: a budget of one still makes progress through not-yet-due items") {
  // Items far in the future share the bucket of items due now (same residue mod 64).
  timer_wheel w(64);
  items it(40);
  for (std::uint32_t i = 0; i < 40; ++i) w.arm(it.accessor(), i, i < 30 ? 164u + 64 * 10 : 164u, 100);
  std::uint32_t calls = 0, fired = 0;
  for (;;) {
    const auto r = w.poll(it.accessor(), 200, 1, [&](std::uint32_t) { ++fired; });
    CHECK(r.visited <= 1);
    ++calls;
    if (r.caught_up) break;
    REQUIRE(calls < 1000);
  }
  CHECK(fired == 10);
  CHECK(calls >= 40);  // every item visited once, one per call
  // The far ones fire at their own time.
  w.poll(it.accessor(), 164 + 640, 1000, [&](std::uint32_t) { ++fired; });
  CHECK(fired == 40);
}

TEST_CASE("timer_wheel: a jump of many revolutions fires everything due in one pass") {
  timer_wheel w(64);
  items it(100);
  for (std::uint32_t i = 0; i < 100; ++i) w.arm(it.accessor(), i, 10 + i * 37, 0);
  std::uint32_t fired = 0;
  const auto r = w.poll(it.accessor(), 1'000'000, 1'000'000, [&](std::uint32_t) { ++fired; });
  CHECK(fired == 100);
  CHECK(r.caught_up);
  CHECK(r.visited == 100);
}

TEST_CASE("timer_wheel: a deadline already passed is visited at the next poll") {
  timer_wheel w(64);
  items it(2);
  w.poll(it.accessor(), 5000, 10, [](std::uint32_t) {});
  w.arm(it.accessor(), 0, 4000, 5000);  // in the past
  std::uint32_t fired_at = 0;
  w.poll(it.accessor(), 5001, 10, [&](std::uint32_t) { fired_at = 5001; });
  CHECK(fired_at == 5001);
}

TEST_CASE("timer_wheel: ticks wrap around 2^32") {
  timer_wheel w(64);
  items it(1);
  const std::uint32_t start = 0xFFFF'FF00u;
  w.arm(it.accessor(), 0, start + 0x200, start);  // deadline wraps past zero
  std::uint32_t fired_at = 0;
  for (std::uint32_t k = 0; k <= 0x300; k += 16)
    w.poll(it.accessor(), start + k, 10, [&](std::uint32_t) { fired_at = start + k; });
  CHECK(fired_at == start + 0x200);
}
}
