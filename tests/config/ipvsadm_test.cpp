// config/ipvsadm.hpp (what l4lbadm runs in the director) and config/reload.hpp (SIGHUP): a
// change, a listing, a save and a restore give ipvsadm's output and exit status; a reload keeps
// what the file did not change, with its connections.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <string_view>
#include <variant>

#include "l4lb/config/ipvsadm.hpp"
#include "l4lb/config/reload.hpp"
#include "l4lb/director/director.hpp"

using namespace l4lb;
using namespace l4lb::config;

namespace {

constexpr std::string_view tutorial =
    "-A -t 198.18.0.100:80 -s rr\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";

ipvsadm_result run(director::director_control& c, std::string_view line, std::string_view input = {}) {
  ipvsadm_context ctx{c};
  ctx.input = input;
  return run_ipvsadm(ctx, line);
}

}  // namespace

TEST_CASE("run_ipvsadm: the tutorial's commands, then its listing") {
  director::director_control c;
  CHECK(run(c, "-A -t 198.18.0.100:80 -s rr").exit_status == 0);
  CHECK(run(c, "-a -t 198.18.0.100:80 -r 198.18.0.12 -g -w 1").exit_status == 0);
  CHECK(run(c, "-a -t 198.18.0.100:80 -r 198.18.0.13 -g -w 1").exit_status == 0);
  const ipvsadm_result l = run(c, "-Ln");
  CHECK(l.exit_status == 0);
  CHECK(l.err.empty());
  CHECK(l.out ==
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  198.18.0.100:80 rr\n"
        "  -> 198.18.0.12:80               Route   1      0          0         \n"
        "  -> 198.18.0.13:80               Route   1      0          0         \n");
  // -Sn writes what -R reads back.
  const ipvsadm_result saved = run(c, "-Sn");
  CHECK(saved.out.find("-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1") != std::string::npos);
}

TEST_CASE("run_ipvsadm: refusals carry ipvsadm's text and exit status, and change nothing") {
  director::director_control c;
  REQUIRE(run(c, "-A -t 198.18.0.100:80 -s rr").exit_status == 0);
  const auto before = c.generation();
  const ipvsadm_result dup = run(c, "-A -t 198.18.0.100:80 -s rr");
  CHECK(dup.exit_status == exit_code::rejected);
  CHECK(dup.err == "Service already exists\n");
  const ipvsadm_result nosvc = run(c, "-a -t 198.18.0.101:80 -r 198.18.0.12 -g");
  CHECK(nosvc.exit_status == exit_code::rejected);
  CHECK(nosvc.err == "Service not defined\n");
  const ipvsadm_result bad = run(c, "-A -t 198.18.0.300:80");
  CHECK(bad.exit_status == exit_code::bad_arguments);
  CHECK(bad.err.find("198.18.0.300") != std::string::npos);
  const ipvsadm_result list = run(c, "-L -n -t 198.18.0.9:80");
  CHECK(list.exit_status == exit_code::listing_failed);
  CHECK(c.generation() == before);
}

TEST_CASE("run_ipvsadm: -R applies the whole input or nothing, naming the bad line") {
  director::director_control c;
  CHECK(run(c, "-R", tutorial).exit_status == 0);
  CHECK(c.config().services().size() == 1);
  const auto before = c.generation();
  const ipvsadm_result r = run(c, "-R", "-A -t 198.18.0.101:80 -s rr\n-a -t 198.18.0.101:80 -r 198.18.0.12 -g -w 70000\n");
  CHECK(r.exit_status != 0);
  CHECK(r.err.rfind("line 2", 0) == 0);
  CHECK(c.generation() == before);
  CHECK(c.config().services().size() == 1);
}

TEST_CASE("run_ipvsadm: -Lnc pauses the directors around the read") {
  director::director_control c;
  director::director d(c);
  REQUIRE(run(c, "-R", tutorial).exit_status == 0);
  int paused = 0, resumed = 0;
  ipvsadm_context ctx{c};
  ctx.before_connections = [&] { ++paused; };
  ctx.after_connections = [&] { ++resumed; };
  const ipvsadm_result r = run_ipvsadm(ctx, std::string_view("-Lnc"));
  CHECK(r.exit_status == 0);
  CHECK(r.out.rfind("IPVS connection entries\n", 0) == 0);
  CHECK(paused == 1);
  CHECK(resumed == 1);
  (void)run_ipvsadm(ctx, std::string_view("-Ln"));
  CHECK(paused == 1);  // listings without -c leave the directors alone
}

TEST_CASE("reload_rules: keeps servers the file still has, edits, adds and removes the rest") {
  director::configuration current;
  auto loaded = load_rules(current, std::string(tutorial) +
                                        "-A -u 198.18.0.100:53 -s wlc\n"
                                        "-a -u 198.18.0.100:53 -r 198.18.0.12:53 -m -w 1\n");
  REQUIRE(loaded);
  current = loaded->config;
  const auto* web = current.find(director::service_key::tcp({wire::ip_address::parse("198.18.0.100").value(), 80}));
  REQUIRE(web != nullptr);
  const std::uint32_t kept_handle = web->dests.back().handle;  // .12, added first

  // The file now: the web service with wrr, .12 at weight 3, .14 new, .13 gone; DNS gone.
  const std::string_view file =
      "-A -t 198.18.0.100:80 -s wrr\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.14:80 -g -w 1\n";
  auto cmds = reload_rules(current, file);
  REQUIRE(cmds);
  int adds = 0, edits = 0, deletes = 0, service_edits = 0, service_deletes = 0;
  for (const auto& c : *cmds) {
    adds += std::holds_alternative<director::add_dest>(c);
    edits += std::holds_alternative<director::edit_dest>(c);
    deletes += std::holds_alternative<director::delete_dest>(c);
    service_edits += std::holds_alternative<director::edit_service>(c);
    service_deletes += std::holds_alternative<director::delete_service>(c);
  }
  CHECK(adds == 1);
  CHECK(edits == 1);
  CHECK(deletes == 1);
  CHECK(service_edits == 1);
  CHECK(service_deletes == 1);
  for (const auto& c : *cmds) REQUIRE(current.apply(c) == director::config_error::ok);

  // The result lists what the file describes, and .12 is the same server (same handle).
  std::string a, b;
  save_rules(a, current, save_options{true});
  auto fresh = load_rules(director::configuration{}, file);
  REQUIRE(fresh);
  save_rules(b, fresh->config, save_options{true});
  CHECK(a == b);
  web = current.find(director::service_key::tcp({wire::ip_address::parse("198.18.0.100").value(), 80}));
  REQUIRE(web != nullptr);
  CHECK(web->find_dest({wire::ip_address::parse("198.18.0.12").value(), 80})->handle == kept_handle);

  // Reloading the same file again changes nothing.
  auto again = reload_rules(current, file);
  REQUIRE(again);
  CHECK(again->empty());
}

TEST_CASE("reload_rules: a bad file names its line and gives no commands") {
  director::configuration current;
  auto r = reload_rules(current, "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12 -q\n");
  REQUIRE_FALSE(r);
  CHECK(r.error().line == 2);
}

TEST_CASE("run_ipvsadm: --sched-opt reaches the policy, -Sn carries it, -Ln shows ipvsadm's line") {
  director::director_control c;
  CHECK(run(c, "-A -t 198.18.0.100:80 -s lblc --sched-opt expiration=600,table-bits=08")
            .exit_status == 0);
  CHECK(run(c, "-Ln").out.find("TCP  198.18.0.100:80 lblc\n") != std::string::npos);
  CHECK(run(c, "-Sn").out == "-A -t 198.18.0.100:80 -s lblc --sched-opt table-bits=8,expiration=600\n");
  const ipvsadm_result bad = run(c, "-E -t 198.18.0.100:80 -s lblc --sched-opt table-bits=0");
  CHECK(bad.exit_status == exit_code::bad_arguments);
  CHECK(bad.err.find("invalid value `0' for scheduler option `table-bits'") != std::string::npos);
  CHECK(run(c, "-Sn").out.find("table-bits=8") != std::string::npos);  // unchanged
}

TEST_CASE("reload_rules: scheduler options compare in canonical form") {
  director::configuration current;
  auto loaded = load_rules(current, "-A -t 198.18.0.100:80 -s sh --sched-opt table-bits=10\n");
  REQUIRE(loaded);
  current = loaded->config;
  auto same = reload_rules(current, "-A -t 198.18.0.100:80 -s sh --sched-opt table-bits=010\n");
  REQUIRE(same);
  CHECK(same->empty());
  auto other = reload_rules(current, "-A -t 198.18.0.100:80 -s sh --sched-opt table-bits=11\n");
  REQUIRE(other);
  REQUIRE(other->size() == 1);
  CHECK(std::holds_alternative<director::edit_service>(other->front()));
}

