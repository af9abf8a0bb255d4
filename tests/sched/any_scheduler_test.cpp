// any_scheduler: names and flags as ipvsadm takes them (-s, -b), the errors for what it refuses,
// visit-once dispatch, and a contract every shipped policy must keep (no destination for an empty,
// all-quiesced or all-overloaded list; never a quiesced or overloaded server).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "l4lb/sched/any_scheduler.hpp"
#include "sched/list_sched_support.hpp"

using namespace l4lb::sched;
using l4lb::sched::test::make_server;

namespace {

template <class S>
bool holds(std::string_view name, scheduler_flags flags = {}) {
  auto s = make_scheduler(name, flags);
  return s.has_value() && s->get_if<S>() != nullptr && s->name() == name;
}

l4lb::wire::flow_key flow_number(std::uint32_t i) {
  using namespace l4lb::wire;
  return flow_key{ip_proto::tcp,
                  endpoint{ipv4_address::from_u32(0xc6120000u + i * 7919u), static_cast<std::uint16_t>(1024 + i)},
                  endpoint{ipv4_address::from_u32(0xc6130064u + (i % 32)), 80}};
}

}  // namespace

TEST_SUITE("sched") {

TEST_CASE("any_scheduler: every ipvsadm -s name and ours make the matching policy") {
  CHECK(holds<round_robin>("rr"));
  CHECK(holds<weighted_round_robin>("wrr"));
  CHECK(holds<least_connection>("lc"));
  CHECK(holds<weighted_least_connection>("wlc"));
  CHECK(holds<shortest_expected_delay>("sed"));
  CHECK(holds<never_queue>("nq"));
  CHECK(holds<destination_hashing>("dh"));
  CHECK(holds<source_hashing>("sh"));
  CHECK(holds<maglev_hashing>("mh"));
  CHECK(holds<locality_least_connection>("lblc"));
  CHECK(holds<locality_least_connection_replicated>("lblcr"));
  CHECK(holds<weighted_failover>("fo"));
  CHECK(holds<overflow>("ovf"));
  CHECK(holds<two_choices>("twos"));
  CHECK(holds<smooth_weighted_round_robin>("swrr"));
  CHECK(holds<consistent_hash_ring>("ring"));
  CHECK(holds<weighted_maglev>("wmh"));
  CHECK(any_scheduler::names.size() == 17);
  // A default-constructed any_scheduler is ipvsadm's default scheduler.
  CHECK(any_scheduler{}.name() == "wlc");
}

TEST_CASE("any_scheduler: an unknown name is refused") {
  // The kernel matches names exactly (strcmp), so case matters.
  for (std::string_view bad : {"", "foo", "WLC", "rr ", "wrr2", "maglev"}) {
    auto s = make_scheduler(bad);
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error() == scheduler_error::unknown_scheduler);
  }
  CHECK(to_string(scheduler_error::unknown_scheduler) == "unknown_scheduler");
}

TEST_CASE("any_scheduler: sh and mh take fallback and port; others take no flag") {
  auto sh_both = make_scheduler("sh", sh_fallback | sh_port);
  REQUIRE(sh_both.has_value());
  CHECK(sh_both->get_if<source_hashing>()->flags() == ipvs::hash_flags{true, true});
  auto sh_port_only = make_scheduler("sh", sh_port);
  REQUIRE(sh_port_only.has_value());
  CHECK(sh_port_only->get_if<source_hashing>()->flags() == ipvs::hash_flags{false, true});
  auto mh_fb = make_scheduler("mh", mh_fallback);
  REQUIRE(mh_fb.has_value());
  CHECK(mh_fb->get_if<maglev_hashing>()->flags() == ipvs::hash_flags{true, false});

  // flag-3 is used by no IPVS scheduler; any flag on a scheduler that has none is refused.
  CHECK(make_scheduler("sh", scheduler_flags{scheduler_flags::flag_3}).error() ==
        scheduler_error::flag_not_supported);
  for (std::string_view name : {"rr", "wrr", "lc", "wlc", "sed", "nq", "dh", "lblc", "lblcr",
                                "fo", "ovf", "twos", "swrr", "ring", "wmh"}) {
    CHECK(make_scheduler(name, sh_port).error() == scheduler_error::flag_not_supported);
    CHECK(make_scheduler(name).has_value());
  }
}

TEST_CASE("any_scheduler: ipvsadm's -b words, with ipvsadm's checks") {
  // Comma-separated; sh-* only with sh and mh-* only with mh; flag-N with anything.
  auto f = parse_sched_flags("sh", "sh-fallback,sh-port");
  REQUIRE(f.has_value());
  CHECK(f->bits == (scheduler_flags::flag_1 | scheduler_flags::flag_2));
  CHECK(parse_sched_flags("mh", "mh-port")->bits == scheduler_flags::flag_2);
  CHECK(parse_sched_flags("wlc", "flag-1,,flag-3")->bits ==
        (scheduler_flags::flag_1 | scheduler_flags::flag_3));
  CHECK(parse_sched_flags("rr", "")->bits == 0);
  CHECK(parse_sched_flags("mh", "sh-port").error() == scheduler_error::incompatible_flag);
  CHECK(parse_sched_flags("", "mh-fallback").error() == scheduler_error::incompatible_flag);
  CHECK(parse_sched_flags("sh", "sh-porty").error() == scheduler_error::unknown_flag);
  CHECK(parse_sched_flags("sh", "SH-PORT").error() == scheduler_error::unknown_flag);

  auto s = parse_scheduler("sh", "sh-port");
  REQUIRE(s.has_value());
  CHECK(s->get_if<source_hashing>()->flags() == ipvs::hash_flags{false, true});
  CHECK(parse_scheduler("rr", "flag-1").error() == scheduler_error::flag_not_supported);
  CHECK(parse_scheduler("nope", "").error() == scheduler_error::unknown_scheduler);
  auto def = parse_scheduler("", "");  // ipvsadm -A without -s
  REQUIRE(def.has_value());
  CHECK(def->name() == "wlc");

  CHECK(flag_word("sh", scheduler_flags::flag_2) == "sh-port");
  CHECK(flag_word("mh", scheduler_flags::flag_1) == "mh-fallback");
  CHECK(flag_word("rr", scheduler_flags::flag_1) == "flag-1");
}

TEST_CASE("any_scheduler: every policy keeps the contract on bad lists") {
  // Empty, all quiesced, all overloaded: no destination, never a crash.
  std::vector<real_server> empty;
  std::vector<real_server> quiesced;
  std::vector<real_server> overloaded;
  for (std::uint32_t h = 1; h <= 6; ++h) {
    quiesced.push_back(make_server(h, 0));
    auto r = make_server(h, h);
    r.overloaded = true;
    overloaded.push_back(r);
  }
  for (std::string_view name : any_scheduler::names) {
    CAPTURE(name);
    for (auto* list : {&empty, &quiesced, &overloaded}) {
      auto s = make_scheduler(name);
      REQUIRE(s.has_value());
      s->rebuild(*list, {dest_change::kind::init, 0});
      for (std::uint32_t i = 0; i < 64; ++i) {
        const auto flow = flow_number(i);
        CHECK(s->pick(*list, pick_context{flow, std::int64_t{i} * 1'000'000'000}) == no_dest);
      }
    }
  }
}

TEST_CASE("any_scheduler: no policy picks a quiesced or overloaded server") {
  // Servers 2 and 5 quiesced, 3 and 6 overloaded, the rest usable; flags fixed before the first
  // pick. (lblc/lblcr's cached path consults their own "overloaded" rule instead of the flag, as
  // IPVS does; with the flags set before anything is cached, their WLC picks never choose these.)
  std::vector<real_server> dests;
  for (std::uint32_t h = 1; h <= 8; ++h) {
    auto r = make_server(h, 1 + h % 3, h % 4, h * 3);
    if (h == 2 || h == 5) r.weight = 0;
    if (h == 3 || h == 6) r.overloaded = true;
    dests.push_back(r);
  }
  for (std::string_view name : any_scheduler::names) {
    CAPTURE(name);
    for (scheduler_flags flags : {scheduler_flags{}, sh_fallback | sh_port}) {
      auto s = make_scheduler(name, flags);
      if (!s) continue;  // only sh/mh take the flags
      s->rebuild(dests, {dest_change::kind::init, 0});
      int picked = 0;
      bool only_usable = true;
      for (std::uint32_t i = 0; i < 300; ++i) {
        const auto flow = flow_number(i);
        const dest_id id = s->pick(dests, pick_context{flow, std::int64_t{i} * 1'000'000});
        if (id == no_dest) continue;
        ++picked;
        only_usable = only_usable && id < dests.size() && dests[id].accepts_new_connections();
      }
      CHECK(only_usable);
      CHECK(picked > 0);
    }
  }
}

TEST_CASE("any_scheduler: counts_use names the counts_changed calls a policy can do without") {
  // Two copies of each policy see the same lists, picks and count changes; one is told of every
  // change, the other only of those its counts_use says it reads (what a director skips). Their
  // picks must stay the same.
  CHECK(make_scheduler("wlc")->counts_use() == count_use::load);
  CHECK(make_scheduler("rr")->counts_use() == count_use::availability);
  CHECK(make_scheduler("mh")->counts_use() == count_use::none);
  for (std::string_view name : any_scheduler::names) {
    CAPTURE(name);
    test::rng32 rng(29);
    std::vector<real_server> dests;
    for (std::uint32_t h = 1; h <= 12; ++h) {
      auto r = make_server(h, 1 + h % 4, rng() % 4, rng() % 20);
      r.upper_threshold = h % 3 == 0 ? 14 : 0;
      dests.push_back(r);
    }
    auto every = make_scheduler(name);
    auto some = make_scheduler(name);
    REQUIRE(every.has_value());
    REQUIRE(some.has_value());
    every->rebuild(dests, {dest_change::kind::init, 0});
    some->rebuild(dests, {dest_change::kind::init, 0});
    const count_use use = some->counts_use();
    int told = 0, skipped = 0;
    const auto changed = [&](dest_id id, bool was_overloaded) {
      every->counts_changed(dests, id);
      if (use == count_use::load ||
          (use == count_use::availability && dests[id].overloaded != was_overloaded)) {
        some->counts_changed(dests, id);
        ++told;
      } else {
        ++skipped;
      }
    };
    bool same = true;
    for (std::uint32_t i = 0; i < 2000; ++i) {
      const auto flow = flow_number(i % 97);
      const pick_context ctx{flow, std::int64_t{i} * 10'000'000};
      const dest_id id = every->pick(dests, ctx);
      same = same && some->pick(dests, ctx) == id;
      if (id != no_dest) {  // bound inactive, then made active by its first packet
        real_server& r = dests[id];
        bool was = r.overloaded;
        ++r.inactive_conns;
        r.after_bind();
        changed(id, was);
        --r.inactive_conns;
        ++r.active_conns;
        changed(id, r.overloaded);
      }
      const auto old = static_cast<dest_id>(rng() % dests.size());
      real_server& o = dests[old];
      if (o.active_conns > 0) {
        const bool was = o.overloaded;
        --o.active_conns;
        o.after_unbind();
        changed(old, was);
      }
    }
    CHECK(same);
    CHECK(told + skipped > 0);
    if (use != count_use::load) CHECK(skipped > 0);
  }
}

TEST_CASE("any_scheduler: visit runs a burst with the concrete policy") {
  // The same rr run through visit (one dispatch for the burst) and through pick (one dispatch
  // per packet) gives the same sequence.
  std::vector<real_server> dests = {make_server(1, 1), make_server(2, 1), make_server(3, 1)};
  auto a = make_scheduler("rr");
  auto b = make_scheduler("rr");
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  a->rebuild(dests, {dest_change::kind::init, 0});
  b->rebuild(dests, {dest_change::kind::init, 0});
  std::vector<dest_id> burst(7);
  const bool concrete = a->visit([&](auto& policy) {
    for (dest_id& out : burst) out = policy.pick(dests, test::ctx());
    return std::is_same_v<std::remove_cvref_t<decltype(policy)>, round_robin>;
  });
  CHECK(concrete);
  for (const dest_id want : burst) CHECK(b->pick(dests, test::ctx()) == want);
  CHECK(burst == std::vector<dest_id>{0, 1, 2, 0, 1, 2, 0});
  CHECK(visit_scheduler(*b, [](auto& p) { return p.name; }) == "rr");
}

TEST_CASE("any_scheduler: rebuild passes the policy's build error through") {
  // mh refuses more servers than table slots (the kernel's EINVAL); rr has nothing to refuse.
  std::vector<real_server> many;
  for (std::uint32_t h = 1; h <= 4100; ++h) many.push_back(make_server(h, 1));
  auto mh = make_scheduler("mh");
  REQUIRE(mh.has_value());
  CHECK(mh->rebuild(many, {dest_change::kind::init, 0}) == build_error::too_many_servers);
  auto r = make_scheduler("rr");
  REQUIRE(r.has_value());
  CHECK(r->rebuild(many, {dest_change::kind::init, 0}) == build_error::ok);
}

}  // TEST_SUITE
