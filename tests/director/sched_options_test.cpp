// Scheduler options in the director (issue #9): a service's --sched-opt options are validated and
// kept in canonical form by the configuration, its policy is built with them by the control
// plane, and the lblc_expiration / lblcr_expiration sysctls reach lblc / lblcr services that do
// not set their own expiration.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "director/director_support.hpp"

using namespace director_test;

namespace {

service_spec with_options(service_key key, std::string sched, std::string_view options) {
  service_spec s = service(key, std::move(sched));
  auto o = sched::scheduler_options::parse(options);
  REQUIRE(o.has_value());
  s.sched_options = *o;
  return s;
}

/// The published policy of the service at `key`.
const sched::any_scheduler& published_policy(const director_control& c, const service_key& key) {
  const configuration cfg = c.config();
  const service_entry* e = cfg.find(key);
  REQUIRE(e != nullptr);
  const auto snap = c.current();
  REQUIRE(snap->services.at(e->id) != nullptr);
  static thread_local std::shared_ptr<const snapshot> keep;
  keep = snap;  // the reference outlives this call
  return snap->services[e->id]->prototype;
}

std::int64_t lblc_expiration_of(const director_control& c, const service_key& key) {
  const auto& p = published_policy(c, key);
  if (const auto* l = p.get_if<sched::locality_least_connection>()) return l->options().expiration_ns;
  const auto* r = p.get_if<sched::locality_least_connection_replicated>();
  REQUIRE(r != nullptr);
  return r->options().expiration_ns;
}

const service_key vip81 = service_key::tcp(ep("198.18.0.100:81"));
const service_key vip82 = service_key::tcp(ep("198.18.0.100:82"));

}  // namespace

TEST_SUITE("director") {

TEST_CASE("sched options: the configuration keeps them canonical and refuses bad ones") {
  configuration cfg;
  REQUIRE(cfg.apply(add_service{with_options(vip80, "lblc", "capacity=05,table-bits=012")}) ==
          config_error::ok);
  CHECK(to_string(cfg.find(vip80)->spec.sched_options) == "table-bits=12,capacity=5");

  // Nothing changes on error: unknown name, a value out of the policy's range, a bad pair.
  for (std::string_view bad : {"table-index=8", "table-bits=21", "capacity=-1"}) {
    CAPTURE(bad);
    CHECK(cfg.apply(add_service{with_options(vip81, "lblc", bad)}) ==
          config_error::bad_sched_options);
    CHECK(cfg.find(vip81) == nullptr);
    CHECK(cfg.apply(edit_service{with_options(vip80, "lblc", bad)}) ==
          config_error::bad_sched_options);
    CHECK(to_string(cfg.find(vip80)->spec.sched_options) == "table-bits=12,capacity=5");
  }
  CHECK(cfg.apply(add_service{with_options(vip81, "rr", "seed=1")}) ==
        config_error::bad_sched_options);
  CHECK(to_string(config_error::bad_sched_options) == "bad_sched_options");

  // -E: the same options spelled otherwise do not rebind the scheduler; others do.
  change ch;
  REQUIRE(cfg.apply(edit_service{with_options(vip80, "lblc", "table-bits=12,capacity=5")}, &ch) ==
          config_error::ok);
  CHECK(!ch.scheduler_rebound);
  REQUIRE(cfg.apply(edit_service{with_options(vip80, "lblc", "capacity=6")}, &ch) ==
          config_error::ok);
  CHECK(ch.scheduler_rebound);
  CHECK(to_string(cfg.find(vip80)->spec.sched_options) == "capacity=6");
}

TEST_CASE("sched options: the control plane builds the service's policy with them") {
  director_control c;
  REQUIRE(c.apply(add_service{with_options(vip80, "mh", "table-index=8")}) == config_error::ok);
  for (std::string_view e : {"198.18.1.1:80", "198.18.1.2:80", "198.18.1.3:80"})
    REQUIRE(c.apply(add_dest{vip80, server(e)}) == config_error::ok);
  const auto* mh = published_policy(c, vip80).get_if<sched::maglev_hashing>();
  REQUIRE(mh != nullptr);
  CHECK(mh->table_size() == 251);
  CHECK(std::count(mh->slots().begin(), mh->slots().end(), sched::no_dest) == 0);

  // -E to other options: a new policy with the new table, on the same servers.
  REQUIRE(c.apply(edit_service{with_options(vip80, "mh", "table-index=9")}) == config_error::ok);
  const auto* mh9 = published_policy(c, vip80).get_if<sched::maglev_hashing>();
  REQUIRE(mh9 != nullptr);
  CHECK(mh9->table_size() == 509);
  CHECK(std::count(mh9->slots().begin(), mh9->slots().end(), sched::no_dest) == 0);

  REQUIRE(c.apply(add_service{with_options(vip81, "dh", "table-bits=4")}) == config_error::ok);
  const auto* dh = published_policy(c, vip81).get_if<sched::destination_hashing>();
  REQUIRE(dh != nullptr);
  CHECK(dh->buckets().size() == 16);
}

TEST_CASE("sched options: lblc_expiration / lblcr_expiration, and a service's own expiration wins") {
  constexpr std::int64_t day = 86400 * sec;
  director_control c;
  REQUIRE(c.apply(add_service{service(vip80, "lblc")}) == config_error::ok);
  REQUIRE(c.apply(add_service{with_options(vip81, "lblc", "expiration=60")}) == config_error::ok);
  REQUIRE(c.apply(add_service{service(vip82, "lblcr")}) == config_error::ok);
  CHECK(lblc_expiration_of(c, vip80) == day);  // the kernel's default, 24 h
  CHECK(lblc_expiration_of(c, vip81) == 60 * sec);
  CHECK(lblc_expiration_of(c, vip82) == day);

  // The sysctl reaches the lblc service without its own expiration, and only that one.
  REQUIRE(c.apply(set_sysctl{"lblc_expiration", 600}) == config_error::ok);
  CHECK(c.config().settings().lblc_expiration == 600);
  CHECK(lblc_expiration_of(c, vip80) == 600 * sec);
  CHECK(lblc_expiration_of(c, vip81) == 60 * sec);
  CHECK(lblc_expiration_of(c, vip82) == day);
  REQUIRE(c.apply(set_sysctl{"lblcr_expiration", 3600}) == config_error::ok);
  CHECK(lblc_expiration_of(c, vip82) == 3600 * sec);
  CHECK(lblc_expiration_of(c, vip80) == 600 * sec);

  // A service added later takes the sysctl; an explicit 86400 still wins over it.
  const service_key vip83 = service_key::tcp(ep("198.18.0.100:83"));
  const service_key vip84 = service_key::tcp(ep("198.18.0.100:84"));
  REQUIRE(c.apply(add_service{service(vip83, "lblc")}) == config_error::ok);
  REQUIRE(c.apply(add_service{with_options(vip84, "lblc", "expiration=86400")}) ==
          config_error::ok);
  CHECK(lblc_expiration_of(c, vip83) == 600 * sec);
  CHECK(lblc_expiration_of(c, vip84) == day);

  // An unrelated sysctl does not make lblc policies afresh.
  const std::uint64_t before = c.current()->services[c.config().find(vip80)->id]->sched_version;
  REQUIRE(c.apply(set_sysctl{"sloppy_tcp", 1}) == config_error::ok);
  CHECK(c.current()->services[c.config().find(vip80)->id]->sched_version == before);

  // Range: 0 .. INT_MAX / 1000 seconds.
  director_settings s;
  CHECK(apply_sysctl(s, "lblc_expiration", 0) == config_error::ok);
  CHECK(apply_sysctl(s, "lblcr_expiration", 2147483) == config_error::ok);
  CHECK(apply_sysctl(s, "lblc_expiration", -1) == config_error::bad_sysctl);
  CHECK(apply_sysctl(s, "lblcr_expiration", 2147484) == config_error::bad_sysctl);
  CHECK(s.lblc_expiration == 0);
  CHECK(s.lblcr_expiration == 2147483);
  CHECK(std::find(std::begin(sysctl_names), std::end(sysctl_names), "lblcr_expiration") !=
        std::end(sysctl_names));
}

}  // TEST_SUITE
