// A policy of one's own: one plain type satisfying the scheduler concept joins a
// basic_any_scheduler set, is made by name (with its own flag), and runs in the same generic
// burst code as the shipped policies. It reuses the library's tournament_tree for an O(1) pick.
#include <doctest/doctest.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/any_scheduler.hpp"
#include "l4lb/sched/load_tree.hpp"
#include "sched/list_sched_support.hpp"

using namespace l4lb::sched;
using l4lb::sched::test::make_server;

namespace {

// "Fewest active connections, inactive ones ignored; with flag-1, the last such server in list
// order instead of the first". Not an IPVS policy; a user's.
struct fewest_active_order : stateless_order {
  static constexpr std::uint64_t rank(const real_server& r, const params&) noexcept {
    return r.accepts_new_connections() ? r.active_conns : not_eligible;
  }
  static constexpr bool better(const real_server& a, const real_server& b) noexcept {
    return a.active_conns < b.active_conns;
  }
};

class fewest_active {
 public:
  static constexpr std::string_view name = "fewest-active";
  static constexpr std::uint32_t accepted_flags = scheduler_flags::flag_1;

  fewest_active() = default;
  explicit fewest_active(scheduler_flags f) : prefer_last_(f.has(scheduler_flags::flag_1)) {}

  void rebuild(std::span<const real_server> dests, dest_change) { tree_.rebuild(dests); }
  dest_id pick(std::span<const real_server> dests, const pick_context&) noexcept {
    const dest_id first = tree_.best(dests);
    if (!prefer_last_ || first == no_dest) return first;
    dest_id last = first;  // O(n) variant, kept simple: the last server with the same key
    for (dest_id i = first + 1; i < dests.size(); ++i)
      if (tree_.rank(i) == tree_.rank(first)) last = i;
    return last;
  }
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    tree_.update(dests, id);
  }

 private:
  tournament_tree<fewest_active_order> tree_;
  bool prefer_last_ = false;
};
static_assert(scheduler<fewest_active>);

// What the concept rejects: a pick that may throw, a missing counts_changed, no name.
struct throwing_pick {
  static constexpr std::string_view name = "x";
  void rebuild(std::span<const real_server>, dest_change) {}
  dest_id pick(std::span<const real_server>, const pick_context&) { return no_dest; }
  void counts_changed(std::span<const real_server>, dest_id) noexcept {}
};
struct no_counts_hook {
  static constexpr std::string_view name = "y";
  void rebuild(std::span<const real_server>, dest_change) {}
  dest_id pick(std::span<const real_server>, const pick_context&) noexcept { return no_dest; }
};
struct no_name {
  void rebuild(std::span<const real_server>, dest_change) {}
  dest_id pick(std::span<const real_server>, const pick_context&) noexcept { return no_dest; }
  void counts_changed(std::span<const real_server>, dest_id) noexcept {}
};
static_assert(!scheduler<throwing_pick>);
static_assert(!scheduler<no_counts_hook>);
static_assert(!scheduler<no_name>);

using my_set = basic_any_scheduler<round_robin, weighted_least_connection, fewest_active>;

// Generic data-path code: one dispatch, then a burst of new connections, each bound as active
// and reported with counts_changed -- the loop a director runs, for whatever policy it holds.
template <class Set>
std::vector<std::uint32_t> schedule_burst(Set& set, std::vector<real_server>& dests, int n) {
  return set.visit([&](auto& policy) {
    std::vector<std::uint32_t> handles;
    for (int i = 0; i < n; ++i) {
      const dest_id id = policy.pick(dests, test::ctx());
      if (id == no_dest) {
        handles.push_back(0);
        continue;
      }
      handles.push_back(dests[id].handle);
      ++dests[id].active_conns;
      dests[id].after_bind();
      policy.counts_changed(dests, id);
    }
    return handles;
  });
}

}  // namespace

TEST_SUITE("sched") {

TEST_CASE("custom scheduler: made by name in a user's set, flags checked like the shipped ones") {
  CHECK(my_set::names == std::array<std::string_view, 3>{"rr", "wlc", "fewest-active"});
  auto s = make_scheduler<my_set>("fewest-active");
  REQUIRE(s.has_value());
  CHECK(s->get_if<fewest_active>() != nullptr);
  CHECK(make_scheduler<my_set>("fewest-active", scheduler_flags{scheduler_flags::flag_1}));
  CHECK(make_scheduler<my_set>("fewest-active", scheduler_flags{scheduler_flags::flag_2}).error() ==
        scheduler_error::flag_not_supported);
  CHECK(make_scheduler<my_set>("rr", scheduler_flags{scheduler_flags::flag_1}).error() ==
        scheduler_error::flag_not_supported);
  CHECK(make_scheduler<my_set>("sh").error() == scheduler_error::unknown_scheduler);
  CHECK(parse_scheduler<my_set>("fewest-active", "flag-1").has_value());
}

TEST_CASE("custom scheduler: runs in the same generic burst code as rr and wlc") {
  // Three servers, idle. fewest-active: each new connection goes to the first server with the
  // fewest active connections: 1, 2, 3, 1, 2, 3. With flag-1, the last such: 3, 2, 1, 3, 2, 1.
  // rr in the same code: 1, 2, 3, ... ; wlc with equal weights behaves like fewest-active here.
  auto run = [](std::string_view name, scheduler_flags flags) {
    std::vector<real_server> dests = {make_server(1, 1), make_server(2, 1), make_server(3, 1)};
    auto s = make_scheduler<my_set>(name, flags);
    REQUIRE(s.has_value());
    s->rebuild(dests, {dest_change::kind::init, 0});
    return schedule_burst(*s, dests, 6);
  };
  using v = std::vector<std::uint32_t>;
  CHECK(run("fewest-active", {}) == v{1, 2, 3, 1, 2, 3});
  CHECK(run("fewest-active", scheduler_flags{scheduler_flags::flag_1}) == v{3, 2, 1, 3, 2, 1});
  CHECK(run("rr", {}) == v{1, 2, 3, 1, 2, 3});
  CHECK(run("wlc", {}) == v{1, 2, 3, 1, 2, 3});
}

TEST_CASE("custom scheduler: quiesced and overloaded servers are skipped by its order") {
  std::vector<real_server> dests = {make_server(1, 0), make_server(2, 1, 5), make_server(3, 1, 9)};
  dests[1].overloaded = true;
  my_set s = fewest_active{};
  s.rebuild(dests, {dest_change::kind::init, 0});
  CHECK(s.pick(dests, test::ctx()) == 2);  // only server 3 qualifies
  dests[2].overloaded = true;
  s.counts_changed(dests, 2);
  CHECK(s.pick(dests, test::ctx()) == no_dest);
}

}  // TEST_SUITE
