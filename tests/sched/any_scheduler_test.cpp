// any_scheduler: names and flags as ipvsadm takes them (-s, -b), the errors for what it refuses,
// visit-once dispatch, and a contract every shipped policy must keep (no destination for an empty,
// all-quiesced or all-overloaded list; never a quiesced or overloaded server).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
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

// ---------------------------------------------------------------- named options (issue #9)

namespace {

scheduler_options opts(std::string_view text) {
  auto o = scheduler_options::parse(text);
  REQUIRE(o.has_value());
  return *o;
}

scheduler_error option_error(std::string_view name, std::string_view text) {
  auto s = make_scheduler(name, {}, opts(text));
  return s.has_value() ? scheduler_error::ok : s.error();
}

std::string canonical(std::string_view name, std::string_view text) {
  auto c = any_scheduler::canonical_options(name, opts(text));
  REQUIRE_MESSAGE(c.has_value(), to_string(c.error()));
  return to_string(*c);
}

// Every option of every policy: a good value (and its canonical spelling) and values refused at
// both ends of the constructor's range (or not of the option's type at all).
struct option_case {
  std::string_view scheduler;
  std::string_view option;
  std::string_view good;
  std::string_view good_canonical;
  std::array<std::string_view, 3> bad;
};
constexpr option_case option_cases[] = {
    {"sh", "table-bits", "012", "12", {"0", "21", "x"}},
    {"dh", "table-bits", "20", "20", {"0", "21", "4294967297"}},
    {"mh", "table-index", "17", "17", {"7", "18", "-8"}},
    {"lblc", "table-bits", "1", "1", {"0", "21", ""}},
    {"lblc", "expiration", "0", "0", {"-1", "9223372037", "1h"}},
    {"lblc", "capacity", "33554432", "33554432", {"33554433", "-1", "4294967296"}},
    {"lblcr", "table-bits", "20", "20", {"0", "21", "ten"}},
    {"lblcr", "expiration", "3600", "3600", {"-1", "9223372037", "3600s"}},
    {"lblcr", "capacity", "7", "7", {"33554433", "-7", "1e3"}},
    {"lblcr", "member-capacity", "67108864", "67108864", {"67108865", "-1", "x"}},
    {"ring", "points", "1", "1", {"0", "65537", "many"}},
    {"ring", "key", "source-address", "source-address", {"src", "source_address", "FLOW"}},
    {"ring", "fallback", "no", "no", {"0", "false", "NO"}},
    {"wmh", "table-size", "3", "3", {"2", "655379", "1000"}},  // 1000: not prime
    {"wmh", "key", "source-address-and-port", "source-address-and-port", {"port", "", "dst"}},
    {"wmh", "fallback", "yes", "yes", {"1", "true", ""}},
    {"twos", "seed", "18446744073709551615", "18446744073709551615",
     {"-1", "18446744073709551616", "0x2a"}},
};

}  // namespace

TEST_CASE("any_scheduler: every option of every policy, accepted and refused at both ends") {
  for (const option_case& c : option_cases) {
    CAPTURE(c.scheduler);
    CAPTURE(c.option);
    const std::string good = std::string(c.option) + "=" + std::string(c.good);
    CHECK(option_error(c.scheduler, good) == scheduler_error::ok);
    CHECK(canonical(c.scheduler, good) == std::string(c.option) + "=" + std::string(c.good_canonical));
    for (std::string_view bad : c.bad) {
      CAPTURE(bad);
      CHECK(option_error(c.scheduler, std::string(c.option) + "=" + std::string(bad)) ==
            scheduler_error::bad_option_value);
    }
    // The option names a policy declares are the ones it takes.
    const auto names = any_scheduler::option_names_of(c.scheduler);
    CHECK(std::find(names.begin(), names.end(), c.option) != names.end());
  }
}

TEST_CASE("any_scheduler: an option the chosen scheduler does not take is unknown_option") {
  // Not an option of anybody, another policy's option, and options for policies that take none.
  CHECK(option_error("lblc", "nope=1") == scheduler_error::unknown_option);
  CHECK(option_error("sh", "table-index=12") == scheduler_error::unknown_option);
  CHECK(option_error("mh", "table-bits=8") == scheduler_error::unknown_option);
  CHECK(option_error("lblc", "member-capacity=10") == scheduler_error::unknown_option);
  CHECK(option_error("ring", "table-size=251") == scheduler_error::unknown_option);
  CHECK(option_error("wmh", "points=10") == scheduler_error::unknown_option);
  for (std::string_view name : {"wlc", "rr", "wrr", "lc", "sed", "nq", "fo", "ovf", "swrr"}) {
    CAPTURE(name);
    CHECK(option_error(name, "table-bits=8") == scheduler_error::unknown_option);
    CHECK(any_scheduler::option_names_of(name).empty());
  }
  // Names are exact (kebab-case, lower case).
  CHECK(option_error("sh", "table_bits=8") == scheduler_error::unknown_option);
  CHECK(option_error("sh", "Table-Bits=8") == scheduler_error::unknown_option);
  // The name is looked at before the options; flags before options.
  CHECK(option_error("nosuch", "table-bits=8") == scheduler_error::unknown_scheduler);
  auto f = make_scheduler("dh", sh_port, opts("table-bits=8"));
  REQUIRE(!f.has_value());
  CHECK(f.error() == scheduler_error::flag_not_supported);
  CHECK(any_scheduler::option_names_of("nosuch").empty());
}

TEST_CASE("any_scheduler: options at their defaults build the default policy") {
  auto sh_default = make_scheduler("sh", {}, opts("table-bits=8"));
  REQUIRE(sh_default.has_value());
  CHECK(sh_default->get_if<source_hashing>()->table_bits() == 8);
  auto mh_default = make_scheduler("mh", mh_fallback, opts("table-index=12"));
  REQUIRE(mh_default.has_value());
  CHECK(mh_default->get_if<maglev_hashing>()->table_size() == 4093);
  CHECK(mh_default->get_if<maglev_hashing>()->flags().fallback);  // flags still passed
  auto lblc_default = make_scheduler("lblc");
  REQUIRE(lblc_default.has_value());
  CHECK(lblc_default->get_if<locality_least_connection>()->options().expiration_ns ==
        std::int64_t{86400} * 1'000'000'000);
  CHECK(lblc_default->get_if<locality_least_connection>()->capacity() == 2 * 16 * 1024);
  // A value equal to the default stays in the canonical form (it can override a sysctl).
  CHECK(canonical("lblc", "expiration=86400") == "expiration=86400");
  CHECK(canonical("rr", "").empty());
}

TEST_CASE("any_scheduler: the canonical form is the policy's order and one spelling") {
  CHECK(canonical("lblcr", "member-capacity=0010,expiration=60,table-bits=4") ==
        "table-bits=4,expiration=60,member-capacity=10");
  CHECK(canonical("ring", "fallback=no,key=flow,points=040") == "points=40,key=flow,fallback=no");
  CHECK(canonical("wmh", "key=source-address,table-size=251") == "table-size=251,key=source-address");
  // Round trip: the canonical text parses to itself.
  const std::string c = canonical("lblc", "capacity=99,table-bits=09");
  CHECK(canonical("lblc", c) == c);
}

TEST_CASE("any_scheduler: built policies use their options") {
  std::vector<real_server> d;
  for (std::uint32_t h = 1; h <= 3; ++h) d.push_back(make_server(h, 1));
  SUBCASE("mh table-index 8: 251 slots, every one filled") {
    auto s = make_scheduler("mh", {}, opts("table-index=8"));
    REQUIRE(s.has_value());
    REQUIRE(s->rebuild(d, {dest_change::kind::init, 0}) == build_error::ok);
    const auto* mh = s->get_if<maglev_hashing>();
    CHECK(mh->table_size() == 251);
    CHECK(mh->slots().size() == 251);
    CHECK(std::count(mh->slots().begin(), mh->slots().end(), no_dest) == 0);
  }
  SUBCASE("dh table-bits 4: 16 buckets, server i mod 3") {
    auto s = make_scheduler("dh", {}, opts("table-bits=4"));
    REQUIRE(s.has_value());
    REQUIRE(s->rebuild(d, {dest_change::kind::init, 0}) == build_error::ok);
    const auto* dh = s->get_if<destination_hashing>();
    CHECK(dh->table_bits() == 4);
    REQUIRE(dh->buckets().size() == 16);
    for (std::size_t i = 0; i < 16; ++i) CHECK(dh->buckets()[i] == i % 3);
  }
  SUBCASE("sh table-bits 3 with sh-port: 8 buckets, the flag kept") {
    auto s = make_scheduler("sh", sh_port, opts("table-bits=3"));
    REQUIRE(s.has_value());
    (void)s->rebuild(d, {dest_change::kind::init, 0});
    CHECK(s->get_if<source_hashing>()->buckets().size() == 8);
    CHECK(s->get_if<source_hashing>()->flags().port);
  }
  SUBCASE("lblc expiration 600: the half-hourly full check drops an entry idle 30 min") {
    constexpr std::int64_t minute = std::int64_t{60} * 1'000'000'000;
    for (const bool short_expiry : {true, false}) {
      CAPTURE(short_expiry);
      auto s = make_scheduler("lblc", {}, short_expiry ? opts("expiration=600,capacity=5")
                                                       : scheduler_options{});
      REQUIRE(s.has_value());
      (void)s->rebuild(d, {dest_change::kind::init, 0});
      auto* lblc = s->get_if<locality_least_connection>();
      const auto flow = flow_number(0);
      REQUIRE(lblc->pick(d, {flow, minute}) != no_dest);
      lblc->collect(minute + 30 * minute);
      CHECK(lblc->entries() == (short_expiry ? 0u : 1u));
      CHECK(lblc->capacity() == (short_expiry ? 5u : 2u * 16 * 1024));
    }
  }
  SUBCASE("lblcr member-capacity and table-bits") {
    auto s = make_scheduler("lblcr", {}, opts("table-bits=2,member-capacity=7"));
    REQUIRE(s.has_value());
    const auto* r = s->get_if<locality_least_connection_replicated>();
    CHECK(r->member_capacity() == 7);
    CHECK(r->capacity() == 2 * 16 * 4);
    CHECK(r->options().table_bits == 2);
  }
  SUBCASE("ring points, key, fallback") {
    auto s = make_scheduler("ring", {}, opts("points=10,key=source-address,fallback=no"));
    REQUIRE(s.has_value());
    REQUIRE(s->rebuild(d, {dest_change::kind::init, 0}) == build_error::ok);
    const auto* ring = s->get_if<consistent_hash_ring>();
    CHECK(ring->point_hashes().size() == 30);  // 10 points for each of 3 equal servers
    CHECK(ring->options().key == stable_hash::flow_hash_key::source_address);
    CHECK(!ring->options().fallback);
  }
  SUBCASE("wmh table-size 251") {
    auto s = make_scheduler("wmh", {}, opts("table-size=251,key=source-address-and-port"));
    REQUIRE(s.has_value());
    REQUIRE(s->rebuild(d, {dest_change::kind::init, 0}) == build_error::ok);
    const auto* w = s->get_if<weighted_maglev>();
    CHECK(w->slots().size() == 251);
    CHECK(w->options().key == stable_hash::flow_hash_key::source_address_and_port);
  }
  SUBCASE("twos seed: the same draws as a policy seeded directly, other draws for another seed") {
    const auto draws = [&](auto& policy) {
      (void)policy.rebuild(d, {dest_change::kind::init, 0});
      std::vector<dest_id> out;
      for (int i = 0; i < 64; ++i) out.push_back(policy.pick(d, test::ctx()));
      return out;
    };
    auto s42 = make_scheduler("twos", {}, opts("seed=42"));
    auto s43 = make_scheduler("twos", {}, opts("seed=43"));
    REQUIRE(s42.has_value());
    REQUIRE(s43.has_value());
    two_choices direct(std::uint64_t{42});
    const auto a = draws(*s42->get_if<two_choices>());
    CHECK(a == draws(direct));
    CHECK(a != draws(*s43->get_if<two_choices>()));
  }
}

namespace {
// A user-defined policy with an option of its own: it joins a basic_any_scheduler by declaring
// option_names and read_options, like the shipped ones.
struct every_nth {
  static constexpr std::string_view name = "nth";
  static constexpr std::array<std::string_view, 1> option_names{"step"};
  static std::uint32_t read_options(option_reader& r) { return r.number<std::uint32_t>("step", 1); }
  every_nth() = default;
  explicit every_nth(std::uint32_t s) : step(s) {}
  void rebuild(std::span<const real_server>, dest_change) {}
  dest_id pick(std::span<const real_server> dests, const pick_context&) noexcept {
    if (dests.empty()) return no_dest;
    next = (next + step) % static_cast<std::uint32_t>(dests.size());
    return next;
  }
  void counts_changed(std::span<const real_server>, dest_id) noexcept {}
  std::uint32_t step = 1;
  std::uint32_t next = 0;
};
static_assert(scheduler<every_nth>);
static_assert(takes_options<every_nth>);
static_assert(!takes_options<round_robin>);
}  // namespace

TEST_CASE("any_scheduler: a user-defined policy declares its options and joins") {
  using set = basic_any_scheduler<round_robin, every_nth>;
  auto s = set::make("nth", {}, opts("step=2"));
  REQUIRE(s.has_value());
  CHECK(s->get_if<every_nth>()->step == 2);
  CHECK(set::option_names_of("nth").size() == 1);
  auto bad = set::make("nth", {}, opts("stride=2"));
  REQUIRE(!bad.has_value());
  CHECK(bad.error() == scheduler_error::unknown_option);
  auto rr = set::make("rr", {}, opts("step=2"));
  REQUIRE(!rr.has_value());
  CHECK(rr.error() == scheduler_error::unknown_option);
  auto c = set::canonical_options("nth", opts("step=003"));
  REQUIRE(c.has_value());
  CHECK(to_string(*c) == "step=3");
}

}  // TEST_SUITE
