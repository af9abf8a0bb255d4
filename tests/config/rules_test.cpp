// config/rules.hpp: -R loads a whole file or nothing; -S / -Sn write what ipvsadm 1.31 writes
// (ipvs-notes 5.6, 0A, 0B), and load -> save -> load is the identity.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <variant>

#include "config_test_support.hpp"
#include "l4lb/config/rules.hpp"

using namespace l4lb;
using namespace l4lb::config;
using config::test::load;

namespace {

// The LVS tutorial's director: one VIP, two real servers, rr, direct routing.
constexpr std::string_view tutorial =
    "-A -t 198.18.0.100:80 -s rr\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";

// Every option -S writes, in ipvsadm 1.31's words and -Sn's order (services sorted by fwmark,
// family, protocol, address, port; real servers by address, port).
constexpr std::string_view every_option =
    "-A -t 198.18.0.100:80 -s rr -p 360 -M 255.255.255.0\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -i -w 1 --tun-type ipip\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-nocsum\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -i -w 3 --tun-type gue --tun-port 6081 --tun-csum\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.14:80 -i -w 4 --tun-type gue --tun-port 6082 --tun-remcsum\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.15:80 -i -w 5 --tun-type gre --tun-nocsum\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.16:80 -i -w 6 --tun-type gre --tun-csum\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.17:80 -g -w 0\n"
    "-a -t 198.18.0.100:80 -r [fd00::18]:80 -i -w 1 --tun-type ipip\n"
    "-A -t 198.18.0.100:443 -s sh -b sh-fallback,sh-port --sched-opt table-bits=10\n"
    "-a -t 198.18.0.100:443 -r 198.18.0.21:8443 -m -w 65535\n"
    "-a -t 198.18.0.100:443 -r 198.18.0.22:443 --fullnat -w 1 --local-address 198.18.0.200 "
    "--local-address fd00::200 --mtu 1400\n"
    "-A -u 198.18.0.100:53 -s wlc -o\n"
    "-a -u 198.18.0.100:53 -r 198.18.0.31:53 -g -w 1 --mtu 9000\n"
    "-A --sctp-service 198.18.0.100:3868 -s mh -p 60 -b mh-fallback\n"
    "-a --sctp-service 198.18.0.100:3868 -r 198.18.0.41:3868 -g -w 2\n"
    "-A -t [fd00::100]:80 -s swrr -p 90 -M 64\n"
    "-a -t [fd00::100]:80 -r [fd00::12]:80 -m -w 1\n"
    "-A -f 1 -s rr\n"
    "-a -f 1 -r 198.18.0.11:0 -g -w 4\n"
    "-A -f 2 -s lblcr -p 120 --sched-opt table-bits=4,expiration=3600,member-capacity=64\n"
    "-A -f 3 -6 -s wmh\n"
    "-a -f 3 -6 -r [fd00::11]:0 -g -w 1\n";

}  // namespace

TEST_SUITE("config") {

TEST_CASE("rules: -Sn of the tutorial's director") {
  const auto cfg = load(tutorial);
  CHECK(save_rules(cfg, {.numeric = true}) == tutorial);
  // Without -n and without a resolver, names fall back to numbers (ipvsadm's failed lookups).
  CHECK(save_rules(cfg) == tutorial);
}

TEST_CASE("rules: -Sn writes every option as ipvsadm 1.31 (and ours after)") {
  const auto cfg = load(every_option);
  CHECK(save_rules(cfg, {.numeric = true}) == every_option);
}

TEST_CASE("rules: -Sn sorts; the kernel keeps real servers newest first") {
  const auto cfg = load(
      "-A -f 1 -s rr\n"
      "-a -f 1 -r 198.18.0.13 -g -w 2\n"
      "-A -u 198.18.0.100:53 -s rr -o\n"
      "-a -f 1 -r 198.18.0.11 -g -w 4\n"
      "-A -t 198.18.0.100:80 -s rr\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
      "-A -t 198.18.0.99:80 -s rr\n"
      "-A -t 198.18.0.100:22 -s rr\n");
  CHECK(save_rules(cfg, {.numeric = true}) ==
        "-A -t 198.18.0.99:80 -s rr\n"
        "-A -t 198.18.0.100:22 -s rr\n"
        "-A -t 198.18.0.100:80 -s rr\n"
        "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
        "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n"
        "-A -u 198.18.0.100:53 -s rr -o\n"
        "-A -f 1 -s rr\n"
        "-a -f 1 -r 198.18.0.11:0 -g -w 4\n"
        "-a -f 1 -r 198.18.0.13:0 -g -w 2\n");
  const auto* s = cfg.find(director::service_key::mark(1));
  REQUIRE(s != nullptr);
  REQUIRE(s->dests.size() == 2);
  CHECK(s->dests[0].spec.endpoint.address.v4().to_u32() == 0xC612000B);  // .11, added last
}

TEST_CASE("rules: -S sorts with ipvsadm's wrap-around comparator") {
  // fd00::9000:0:0:0 - fd00::1:0:0:0 is above 2^31 in the third word: as an int it is negative,
  // so ipvsadm lists the larger address first.
  const auto cfg = load(
      "-A -t [fd00::100]:80 -s rr\n"
      "-a -t [fd00::100]:80 -r [fd00::1:0:0:0]:80 -m -w 1\n"
      "-a -t [fd00::100]:80 -r [fd00::9000:0:0:0]:80 -m -w 1\n"
      "-a -t [fd00::100]:80 -r [fd00::2:0:0:0]:80 -m -w 1\n");
  CHECK(save_rules(cfg, {.numeric = true}) ==
        "-A -t [fd00::100]:80 -s rr\n"
        "-a -t [fd00::100]:80 -r [fd00::9000:0:0:0]:80 -m -w 1\n"
        "-a -t [fd00::100]:80 -r [fd00::1:0:0:0]:80 -m -w 1\n"
        "-a -t [fd00::100]:80 -r [fd00::2:0:0:0]:80 -m -w 1\n");
}

TEST_CASE("rules: thresholds are not saved (as ipvsadm) unless asked") {
  const auto cfg = load(
      "-A -t 198.18.0.100:80 -s rr\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1 -x 100 -y 50\n");
  CHECK(save_rules(cfg, {.numeric = true}) ==
        "-A -t 198.18.0.100:80 -s rr\n"
        "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n");
  const std::string with = save_rules(cfg, {.numeric = true, .thresholds = true});
  CHECK(with ==
        "-A -t 198.18.0.100:80 -s rr\n"
        "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1 -x 100 -y 50\n");
  CHECK(load(with).find(director::service_key::tcp(
                            {wire::ipv4_address::parse("198.18.0.100").value(), 80}))
            ->dests[0]
            .spec.upper_threshold == 100);
}

TEST_CASE("rules: without -n, the resolver's names") {
  const auto cfg = load(tutorial);
  name_resolver r;
  r.address_to_host = [](const wire::ip_address& a) -> std::optional<std::string> {
    if (a.v4().to_u32() == 0xC6120064) return "www.example";
    return std::nullopt;
  };
  r.port_to_service = [](std::uint16_t p, std::uint8_t) -> std::optional<std::string> {
    if (p == 80) return "http";
    return std::nullopt;
  };
  CHECK(save_rules(cfg, {.resolver = &r}) ==
        "-A -t www.example:http -s rr\n"
        "-a -t www.example:http -r 198.18.0.12:http -g -w 1\n"
        "-a -t www.example:http -r 198.18.0.13:http -g -w 1\n");
  CHECK(save_rules(cfg, {.numeric = true, .resolver = &r}) == tutorial);
}

TEST_CASE("rules: load -> save -> load is the identity") {
  for (std::string_view text : {tutorial, every_option}) {
    const auto first = load(text);
    const std::string saved = save_rules(first, {.numeric = true, .thresholds = true});
    const auto second = load(saved);
    CHECK(save_rules(second, {.numeric = true, .thresholds = true}) == saved);
    REQUIRE(first.services().size() == second.services().size());
    for (const auto& s : first.services()) {
      const auto* t = second.find(s.spec.key);
      REQUIRE(t != nullptr);
      CHECK(t->spec == s.spec);
      REQUIRE(t->dests.size() == s.dests.size());
      for (const auto& d : s.dests) {
        const auto* e = t->find_dest(d.spec.endpoint);
        REQUIRE(e != nullptr);
        CHECK(e->spec == d.spec);
      }
    }
  }
}

TEST_CASE("rules: -R tolerates blank lines, comments and 'ipvsadm' words; returns the changes") {
  auto r = load_rules(director::configuration{},
                      "# the tutorial\n"
                      "\n"
                      "ipvsadm -A -t 198.18.0.100:80 -s rr   # round robin\n"
                      "   \t\r\n"
                      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
                      "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\r\n"
                      "--set 900 120 300");  // no newline at the end
  REQUIRE(r.has_value());
  REQUIRE(r->applied.size() == 4);
  CHECK(std::holds_alternative<director::add_service>(r->applied[0]));
  CHECK(std::holds_alternative<director::add_dest>(r->applied[1]));
  CHECK(std::holds_alternative<director::set_timeouts>(r->applied[3]));
  CHECK(save_rules(r->config, {.numeric = true}) == tutorial);
}

TEST_CASE("rules: -R is all or nothing") {
  const auto before = load(tutorial);
  const std::string before_saved = save_rules(before, {.numeric = true});

  SUBCASE("a last line that does not parse") {
    auto r = load_rules(before,
                        "-a -t 198.18.0.100:80 -r 198.18.0.14:80 -g -w 1\n"
                        "-A -t 198.18.0.101:80 -s rr\n"
                        "-a -t 198.18.0.101:80 -r 198.18.0.300:80 -g\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) == "line 3, column 26: '198.18.0.300': not an IPv4 address");
    CHECK(r.error().exit_status == 2);
  }
  SUBCASE("a last line the configuration refuses") {
    auto r = load_rules(before,
                        "-a -t 198.18.0.100:80 -r 198.18.0.14:80 -g -w 1\n"
                        "-e -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n"
                        "\n"
                        "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) ==
          "line 4, column 26: '198.18.0.13:80': Destination already exists");
    CHECK(r.error().exit_status == 255);
  }
  SUBCASE("a refused service edit names the service") {
    auto r = load_rules(before, "-C\n-E -t 198.18.0.100:80 -s wrr\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) == "line 2, column 7: '198.18.0.100:80': No such service");
  }
  SUBCASE("an unknown scheduler names -s's value") {
    auto r = load_rules(before, "-A -t 198.18.0.101:80 -s fastest\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) ==
          "line 1, column 26: 'fastest': Scheduler or persistence engine not found");
  }
  SUBCASE("scheduler flags the policy does not use (l4lb refuses; the kernel ignores them)") {
    auto r = load_rules(before, "-A -t 198.18.0.101:80 -s rr -b flag-1\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) ==
          "line 1, column 32: 'flag-1': scheduler flags not used by this scheduler");
  }
  SUBCASE("thresholds the kernel refuses (ERANGE)") {
    auto r = load_rules(before, "-a -t 198.18.0.100:80 -r 198.18.0.14 -x 10 -y 20\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) == "line 1, column 47: '20': Numerical result out of range");
  }
  SUBCASE("a listing line is not a change") {
    auto r = load_rules(before, "-Ln\n");
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) ==
          "line 1, column 1: '-L': not a change: a rules file holds -A -E -D -C -a -e -d -Z --set");
  }
  // Whatever failed, the caller's configuration is as it was.
  CHECK(save_rules(before, {.numeric = true}) == before_saved);
  CHECK(before.services().size() == 1);
  CHECK(before.services()[0].dests.size() == 2);
}

TEST_CASE("rules: capacity and ipvsadm's ENOMEM text") {
  director::configuration small(director::configuration_limits{1, 4});
  auto r = load_rules(small, "-A -t 198.18.0.100:80\n-A -t 198.18.0.101:80\n");
  REQUIRE(!r.has_value());
  CHECK(to_string(r.error()) == "line 2, column 1: '-A': Memory allocation problem");
}

TEST_CASE("rules: --sched-opt is saved canonical, after what ipvsadm writes, and loads back") {
  const auto cfg = load(
      "-A -t 198.18.0.100:80 -s lblc -p 60 --sched-opt capacity=0099,table-bits=09,expiration=60\n"
      "-A -t 198.18.0.100:81 -s ring --sched-opt fallback=no,points=40\n"
      "-A -t 198.18.0.100:82 -s mh -b mh-port --sched-opt=table-index=8\n"
      "-A -t 198.18.0.100:83 -s twos --sched-opt seed=42\n");
  CHECK(to_string(cfg.find(director::service_key::tcp(*wire::endpoint::parse("198.18.0.100:80")))
                      ->spec.sched_options) == "table-bits=9,expiration=60,capacity=99");
  const std::string saved = save_rules(cfg, {.numeric = true});
  CHECK(saved ==
        "-A -t 198.18.0.100:80 -s lblc -p 60 --sched-opt table-bits=9,expiration=60,capacity=99\n"
        "-A -t 198.18.0.100:81 -s ring --sched-opt points=40,fallback=no\n"
        "-A -t 198.18.0.100:82 -s mh -b mh-port --sched-opt table-index=8\n"
        "-A -t 198.18.0.100:83 -s twos --sched-opt seed=42\n");
  const auto again = load(saved);
  for (const auto& s : cfg.services()) CHECK(again.find(s.spec.key)->spec == s.spec);
  CHECK(save_rules(again, {.numeric = true}) == saved);
}

TEST_CASE("rules: a --sched-opt the scheduler refuses names its line") {
  auto r = load_rules(director::configuration{},
                      "-A -t 198.18.0.100:80 -s rr\n"
                      "-A -t 198.18.0.100:81 -s dh --sched-opt table-bits=0\n");
  REQUIRE(!r.has_value());
  CHECK(to_string(r.error()) ==
        "line 2, column 52: '0': invalid value `0' for scheduler option `table-bits'");
  // A library caller's command is checked when applied: bad_sched_options, ipvsadm's status 2.
  director::service_spec spec;
  spec.key = director::service_key::tcp(*wire::endpoint::parse("198.18.0.100:80"));
  spec.scheduler = "dh";
  spec.sched_options.set("table-bits", "0");
  director::configuration cfg;
  CHECK(cfg.apply(director::add_service{spec}) == director::config_error::bad_sched_options);
  const refusal why = ipvsadm_refusal(director::config_error::bad_sched_options,
                                      director::command{director::add_service{spec}});
  CHECK(why.exit_status == 2);
  CHECK(why.message == "scheduler option not taken by this scheduler, or its value out of range");
}

}  // TEST_SUITE
