// config/grammar.hpp: every option of ipvsadm's grammar (and ours) parses to the description
// ipvsadm would send (process_options' defaults, ipvs-notes 5.7), in every spelling.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <string_view>
#include <variant>

#include "config_test_support.hpp"
#include "l4lb/config/grammar.hpp"

using namespace l4lb;
using namespace l4lb::config;
using config::test::change_of;
using config::test::error_of;

namespace {

const wire::endpoint vip{wire::ipv4_address::parse("198.18.0.100").value(), 80};
const wire::ip_address rs12 = wire::ipv4_address::parse("198.18.0.12").value();

director::service_spec add_spec(std::string_view line) {
  auto c = change_of(line);
  auto* a = std::get_if<director::add_service>(&c);
  REQUIRE(a != nullptr);
  return a->spec;
}
director::real_server_spec add_dest_spec(std::string_view line) {
  auto c = change_of(line);
  auto* a = std::get_if<director::add_dest>(&c);
  REQUIRE(a != nullptr);
  return a->dest;
}

}  // namespace

TEST_SUITE("config") {

TEST_CASE("grammar: -A with ipvsadm's defaults (wlc, not persistent, /32)") {
  const auto s = add_spec("-A -t 198.18.0.100:80");
  director::service_spec expected;
  expected.key = director::service_key::tcp(vip);
  CHECK(s == expected);
  CHECK(s.scheduler == "wlc");
}

TEST_CASE("grammar: short, long and attached spellings give the same command") {
  const auto a = change_of("-A -t 198.18.0.100:80 -s rr -p 600 -M 255.255.255.0");
  CHECK(change_of("--add-service --tcp-service 198.18.0.100:80 --scheduler rr --persistent 600 "
                  "--netmask 255.255.255.0") == a);
  CHECK(change_of("-A --tcp-service=198.18.0.100:80 --scheduler=rr --persistent=600 "
                  "--netmask=255.255.255.0") == a);
  CHECK(change_of("-At 198.18.0.100:80 -srr -p600 -M255.255.255.0") == a);
  CHECK(change_of("ipvsadm -A -t 198.18.0.100:80 -s rr -p 600 -M 255.255.255.0") == a);
  CHECK(change_of("  -A\t-t 198.18.0.100:80   -s rr -p 600 -M 255.255.255.0\r") == a);
  const std::array<std::string_view, 9> argv = {"-A", "-t", "198.18.0.100:80", "-s", "rr",
                                                "-p", "600", "-M", "255.255.255.0"};
  auto p = parse_command_line(std::span<const std::string_view>(argv));
  REQUIRE(p.has_value());
  CHECK(*p->change() == a);
}

TEST_CASE("grammar: -p without a value is 360 s; -p takes the next token unless it is an option") {
  const auto s = add_spec("-A -t 198.18.0.100:80 -p -s rr");
  CHECK(s.persistent);
  CHECK(s.persistence_timeout == 360);
  CHECK(s.scheduler == "rr");
  CHECK(add_spec("-A -t 198.18.0.100:80 -s rr -p").persistence_timeout == 360);
  CHECK(add_spec("-A -t 198.18.0.100:80 -p 90").persistence_timeout == 90);
}

TEST_CASE("grammar: every service option") {
  SUBCASE("udp, one-packet, sh flags") {
    const auto s = add_spec("-A -u 198.18.0.100:53 -s sh -o -b sh-fallback,sh-port");
    CHECK(s.key == director::service_key::udp({vip.address, 53}));
    CHECK(s.one_packet);
    CHECK(s.sched_flags == (sched::sh_fallback | sched::sh_port));
  }
  SUBCASE("-b before -s is read against the scheduler given") {
    CHECK(add_spec("-A -t 198.18.0.100:80 -b mh-port -s mh").sched_flags == sched::mh_port);
    CHECK(add_spec("-A -t 198.18.0.100:80 -b flag-3 -s rr").sched_flags.bits == 0x20);
    CHECK(add_spec("-A -t 198.18.0.100:80 -s sh -b ,sh-port,").sched_flags == sched::sh_port);
  }
  SUBCASE("sctp") {
    CHECK(add_spec("-A --sctp-service 198.18.0.100:3868 -s rr").key ==
          director::service_key::sctp({vip.address, 3868}));
  }
  SUBCASE("fwmark, IPv4 and IPv6") {
    CHECK(add_spec("-A -f 1 -s rr").key == director::service_key::mark(1));
    const auto s = add_spec("--add-service --fwmark-service 7 --ipv6 -s rr -p -M 64");
    CHECK(s.key == director::service_key::mark(7, wire::ip_family::v6));
    CHECK(s.prefix_v6 == 64);
    CHECK(add_spec("-A -f 7 -6 -p").prefix_v6 == 128);
    CHECK(add_spec("-A -f 4294967295 -s rr").key.fwmark == 4294967295u);
  }
  SUBCASE("IPv6 services: [v6]:port, and a bare address is port 0") {
    const auto s = add_spec("-A -t [fd00::100]:443 -s rr -p 60 -M 96");
    CHECK(s.key == director::service_key::tcp(
                       {wire::ipv6_address::parse("fd00::100").value(), 443}));
    CHECK(s.prefix_v6 == 96);
    CHECK(add_spec("-A -t fd00::100 -p").key.port == 0);
  }
  SUBCASE("a netmask given before an IPv6 service resets to /128 (parse_service)") {
    CHECK(add_spec("-A -M 255.255.0.0 -t [fd00::100]:443 -p").prefix_v6 == 128);
  }
  SUBCASE("port 0 persistent service, and our schedulers by name") {
    CHECK(add_spec("-A -t 198.18.0.100 -p 300 -s swrr").key.port == 0);
    for (std::string_view s : {"swrr", "ring", "wmh", "twos", "mh", "lblcr", "ovf", "fo"}) {
      CHECK(add_spec("-A -t 198.18.0.100:80 -s " + std::string(s)).scheduler == s);
    }
  }
  SUBCASE("--pe is carried (the configuration refuses it)") {
    CHECK(add_spec("-A -u 198.18.0.100:5060 -p --pe sip").pe_name == "sip");
  }
  SUBCASE("--sort is accepted and does nothing") {
    CHECK(std::holds_alternative<list_request>(parse_command_line("-L --sort")->what));
  }
}

TEST_CASE("grammar: -E is a complete description built from ipvsadm's defaults") {
  auto c = change_of("-E -t 198.18.0.100:80");
  auto* e = std::get_if<director::edit_service>(&c);
  REQUIRE(e != nullptr);
  director::service_spec expected;
  expected.key = director::service_key::tcp(vip);
  CHECK(e->spec == expected);  // wlc, no persistence: what ipvsadm -E sends
}

TEST_CASE("grammar: -a / -e defaults and the port rules of process_options") {
  SUBCASE("default: -g, weight 1, the service's port") {
    const auto d = add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12");
    director::real_server_spec expected;
    expected.endpoint = {rs12, 80};
    CHECK(d == expected);
  }
  SUBCASE("-g and -i take the service's port whatever was written") {
    CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12:8080 -g").endpoint.port == 80);
    CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12:8080 -i").endpoint.port == 80);
  }
  SUBCASE("-m keeps its own port, and copies the service's when none is written") {
    CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12:8080 -m").endpoint.port == 8080);
    CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -m").endpoint.port == 80);
  }
  SUBCASE("fwmark services: the real server's port as written, 0 when none") {
    CHECK(add_dest_spec("-a -f 1 -r 198.18.0.11 -g -w 4").endpoint ==
          wire::endpoint{wire::ipv4_address::parse("198.18.0.11").value(), 0});
    CHECK(add_dest_spec("-a -f 1 -r 198.18.0.11:8080 -g").endpoint.port == 8080);
  }
  SUBCASE("weights and thresholds") {
    const auto d = add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -w 0 -x 100 -y 50");
    CHECK(d.weight == 0);
    CHECK(d.upper_threshold == 100);
    CHECK(d.lower_threshold == 50);
    CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 --weight=65535").weight == 65535);
    CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -w +7").weight == 7);
  }
  SUBCASE("-e sends everything, reset to the defaults") {
    auto c = change_of("-e -t 198.18.0.100:80 -r 198.18.0.12 -w 5");
    auto* e = std::get_if<director::edit_dest>(&c);
    REQUIRE(e != nullptr);
    director::real_server_spec expected;
    expected.endpoint = {rs12, 80};
    expected.weight = 5;
    CHECK(e->dest == expected);
  }
  SUBCASE("-d") {
    auto c = change_of("-d -t 198.18.0.100:80 -r 198.18.0.12");
    auto* d = std::get_if<director::delete_dest>(&c);
    REQUIRE(d != nullptr);
    CHECK(d->service == director::service_key::tcp(vip));
    CHECK(d->endpoint == wire::endpoint{rs12, 80});
  }
}

TEST_CASE("grammar: tunnel options") {
  using forward::tunnel_type;
  const auto ipip = add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i");
  CHECK(ipip.method == director::forward_method::tunnel);
  CHECK(ipip.tunnel == director::tunnel_settings{});
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type ipip").tunnel ==
        director::tunnel_settings{});
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue --tun-port 6080")
            .tunnel == director::tunnel_settings{tunnel_type::gue, 6080,
                                                 director::tunnel_checksum::none});
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue --tun-port 6080 "
                      "--tun-nocsum")
            .tunnel.checksum == director::tunnel_checksum::none);
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue --tun-port 6080 "
                      "--tun-csum")
            .tunnel.checksum == director::tunnel_checksum::checksum);
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue --tun-port 6080 "
                      "--tun-remcsum")
            .tunnel.checksum == director::tunnel_checksum::remote);
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gre --tun-csum")
            .tunnel == director::tunnel_settings{tunnel_type::gre, 0,
                                                 director::tunnel_checksum::checksum});
  // A tunnel may cross families.
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r [fd00::12]:80 -i").endpoint.address.is_v6());
}

TEST_CASE("grammar: our extensions --fullnat, --local-address, --mtu") {
  const auto d = add_dest_spec(
      "-a -t 198.18.0.100:80 -r 198.18.0.12:8080 --fullnat --local-address 198.18.0.200 "
      "--local-address fd00::200 --local-address 198.18.0.201 --mtu 1400");
  CHECK(d.method == director::forward_method::full_nat);
  CHECK(d.endpoint.port == 8080);  // FullNAT rewrites the port, like NAT
  REQUIRE(d.full_nat_local.size() == 3);
  CHECK(d.full_nat_local[1] == wire::ip_address(wire::ipv6_address::parse("fd00::200").value()));
  CHECK(d.mtu == 1400);
  CHECK(add_dest_spec("-a -t 198.18.0.100:80 -r 198.18.0.12 -g --mtu 0").mtu == 0);
}

TEST_CASE("grammar: our extension --sched-opt, kept as written until applied") {
  const auto c = change_of(
      "-A -t 198.18.0.100:80 -s lblc --sched-opt table-bits=012,expiration=3600");
  const auto* add = std::get_if<director::add_service>(&c);
  REQUIRE(add != nullptr);
  CHECK(to_string(add->spec.sched_options) == "table-bits=012,expiration=3600");
  const auto e = change_of("-E -t 198.18.0.100:80 -s sh -b sh-port --sched-opt=table-bits=4");
  const auto* edit = std::get_if<director::edit_service>(&e);
  REQUIRE(edit != nullptr);
  CHECK(to_string(edit->spec.sched_options) == "table-bits=4");
  CHECK(edit->spec.sched_flags == sched::sh_port);
  // Without --sched-opt: no options.
  const auto plain = change_of("-A -t 198.18.0.100:80 -s lblc");
  CHECK(std::get<director::add_service>(plain).spec.sched_options.empty());
  // An unknown scheduler is the configuration's refusal, pointing at -s's value.
  auto p = parse_command_line("-A -t 198.18.0.100:80 -s nosuch --sched-opt a=1");
  REQUIRE(p.has_value());
  director::configuration cfg;
  const auto err = cfg.apply(*p->change());
  CHECK(err == director::config_error::unknown_scheduler);
  CHECK(apply_error(err, *p, "-A -t 198.18.0.100:80 -s nosuch --sched-opt a=1").column == 26);
}

TEST_CASE("grammar: other commands") {
  CHECK(change_of("-D -t 198.18.0.100:80") ==
        director::command{director::delete_service{director::service_key::tcp(vip)}});
  CHECK(change_of("-C") == director::command{director::clear_all{}});
  CHECK(change_of("--clear") == director::command{director::clear_all{}});
  CHECK(change_of("-Z") == director::command{director::zero_counters{}});
  CHECK(change_of("-Z -t 198.18.0.100:80") ==
        director::command{director::zero_counters{director::service_key::tcp(vip)}});
  const auto set = change_of("--set 900 0 300");
  const auto* t = std::get_if<director::set_timeouts>(&set);
  REQUIRE(t != nullptr);
  CHECK(t->tcp == 900);
  CHECK(t->tcp_fin == 0);
  CHECK(t->udp == 300);
  CHECK(std::holds_alternative<restore_request>(parse_command_line("-R")->what));
  CHECK(std::get<save_request>(parse_command_line("-Sn")->what).numeric);
  CHECK(!std::get<save_request>(parse_command_line("--save")->what).numeric);
}

TEST_CASE("grammar: listing flags") {
  auto req = [](std::string_view line) {
    auto p = parse_command_line(line);
    REQUIRE_MESSAGE(p.has_value(), (p ? std::string() : to_string(p.error())));
    REQUIRE(std::holds_alternative<list_request>(p->what));
    return std::get<list_request>(p->what);
  };
  CHECK(req("") == list_request{});  // ipvsadm without arguments
  CHECK(req("-Ln") == list_request{.numeric = true});
  CHECK(req("-l -n") == list_request{.numeric = true});
  CHECK(req("-Lnc") == list_request{.numeric = true, .connections = true});
  CHECK(req("--list --numeric --stats --exact") ==
        list_request{.numeric = true, .stats = true, .exact = true});
  CHECK(req("-LnX --rate") ==
        list_request{.numeric = true, .rate = true, .exact = true});
  CHECK(req("-Ln --thresholds --nosort").thresholds);
  CHECK(req("-Ln --thresholds --nosort").nosort);
  CHECK(req("-Ln --persistent-conn").persistent_conn);
  CHECK(req("-Ln --tun-info").tun_info);
  CHECK(req("-L --timeout").timeout);
  CHECK(req("-L --daemon").daemon);
  CHECK(req("-Lnc --persistent-conn").persistent_conn);
  CHECK(req("-Ln -t 198.18.0.100:80").service == director::service_key::tcp(vip));
}

TEST_CASE("grammar: a name resolver is used only when given") {
  name_resolver r;
  r.host_to_address = [](std::string_view h) -> std::optional<wire::ipv4_address> {
    if (h == "www") return wire::ipv4_address::parse("198.18.0.100").value();
    return std::nullopt;
  };
  r.service_to_port = [](std::string_view n, std::uint8_t proto) -> std::optional<std::uint16_t> {
    if (n == "http" && proto == wire::ip_proto::tcp) return 80;
    return std::nullopt;
  };
  auto p = parse_command_line("-A -t www:http -s rr", &r);
  REQUIRE(p.has_value());
  CHECK(std::get<director::add_service>(*p->change()).spec.key == director::service_key::tcp(vip));
  CHECK(error_of("-A -t www:http -s rr") == "column 7: 'www': not an IPv4 address");
  auto bad = parse_command_line("-A -t www:gopher", &r);
  REQUIRE(!bad.has_value());
  CHECK(to_string(bad.error()) == "column 11: 'gopher': unknown service name");
  auto bad_host = parse_command_line("-A -t web:80", &r);
  REQUIRE(!bad_host.has_value());
  CHECK(to_string(bad_host.error()) == "column 7: 'web': unknown host name");
}

TEST_CASE("grammar: anchors point at the tokens an apply error names") {
  auto p = parse_command_line("-a -t 198.18.0.100:80 -r 198.18.0.12:80 -w 3");
  REQUIRE(p.has_value());
  CHECK(p->at(anchor_role::command) == anchor{1, 2});
  CHECK(p->at(anchor_role::service) == anchor{7, 15});
  CHECK(p->at(anchor_role::real_server) == anchor{26, 14});
  CHECK(p->at(anchor_role::weight) == anchor{44, 1});
  const auto e = apply_error(director::config_error::dest_exists, *p,
                             "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -w 3", 4);
  CHECK(to_string(e) == "line 4, column 26: '198.18.0.12:80': Destination already exists");
  CHECK(e.exit_status == 255);
  const auto ns = apply_error(director::config_error::no_such_service, *p,
                              "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -w 3");
  CHECK(to_string(ns) == "column 7: '198.18.0.100:80': Service not defined");
}

}  // TEST_SUITE
