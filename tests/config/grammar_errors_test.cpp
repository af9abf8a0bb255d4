// config/grammar.hpp: a corpus of refused command lines, each with its full error text (column,
// token, expectation or ipvsadm 1.31's message) and ipvsadm's exit status (2 for fail(2, ...),
// 255 for popt's refusals and a missing command). Also: a rules file reports the line.
#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "config_test_support.hpp"
#include "l4lb/config/grammar.hpp"
#include "l4lb/config/rules.hpp"

using namespace l4lb;
using namespace l4lb::config;

namespace {

struct bad_line {
  std::string_view line;
  std::string_view error;
  int exit_status;
};

// clang-format off
constexpr bad_line corpus[] = {
    {"-a -t 198.18.0.100:80 -r 198.18.0.300:80",
     "column 26: '198.18.0.300': not an IPv4 address", 2},
    {"-A -t 198.18.0.300:80",
     "column 7: '198.18.0.300': not an IPv4 address", 2},
    {"-A -t 198.18.0.100:99999",
     "column 20: '99999': not a port number (0-65535)", 2},
    {"-A -t 198.18.0.100:http",
     "column 20: 'http': not a port number (0-65535)", 2},
    {"-A -t 198.18.0.100:",
     "column 20: '': not a port number (0-65535)", 2},
    {"-A -t 80",
     "column 7: '80': expected host[:port] or [IPv6]:port", 2},
    {"-A -t [fd00::100:80",
     "column 7: '[fd00::100:80': missing ']' after the IPv6 address", 2},
    {"-A -t [fd00::100]80",
     "column 7: '[fd00::100]80': expected ':' and a port after ']'", 2},
    {"-A -t [fd00::zz]:80",
     "column 8: 'fd00::zz': not an IPv6 address", 2},
    {"-A -t [fd00::100]",
     "column 7: '[fd00::100]': expected ':' and a port after ']'", 2},
    {"-A -t 198.18.0.100:80 -s rr extra",
     "column 29: 'extra': unexpected argument extra", 2},
    {"-A -t 198.18.0.100",
     "column 7: '198.18.0.100': Zero port specified for non-persistent service", 2},
    {"-A -u 198.18.0.100:53 -s rr -p 0",
     "column 32: '0': invalid timeout value `0' specified (1-2678400)", 2},
    {"-A -t 198.18.0.100:80 -p 2678401",
     "column 26: '2678401': invalid timeout value `2678401' specified (1-2678400)", 2},
    {"-A -t 198.18.0.100:80 -p abc",
     "column 26: 'abc': invalid timeout value `abc' specified (1-2678400)", 2},
    {"-A -t 198.18.0.100:80 -M 255.255.255.0.1 -p",
     "column 26: '255.255.255.0.1': illegal virtual server persistent mask specified", 2},
    {"-A -t [fd00::100]:80 -M 129 -p",
     "column 25: '129': illegal ipv6 netmask specified (1-128)", 2},
    {"-A -t [fd00::100]:80 -M 255.255.255.0 -p",
     "column 25: '255.255.255.0': illegal ipv6 netmask specified (1-128)", 2},
    {"-A -f 0 -s rr",
     "column 7: '0': invalid fwmark value `0' specified (1-4294967295)", 2},
    {"-A -f 4294967296 -s rr",
     "column 7: '4294967296': invalid fwmark value `4294967296' specified (1-4294967295)", 2},
    {"-A -f -1 -s rr",
     "column 7: '-1': invalid fwmark value `-1' specified (1-4294967295)", 2},
    {"-A -f 1x -s rr",
     "column 7: '1x': invalid fwmark value `1x' specified (1-4294967295)", 2},
    {"-A -6 -f 1",
     "column 4: '-6': -6 used before -f", 2},
    {"-A -t 198.18.0.100:80 -6",
     "column 23: '-6': -6 used before -f", 2},
    {"-A -t 198.18.0.100:80 -o",
     "column 23: '-o': One-Packet Scheduling is only for UDP virtual services", 2},
    {"-A --sctp-service 198.18.0.100:80 -o",
     "column 35: '-o': One-Packet Scheduling is only for UDP virtual services", 2},
    {"-A -t 198.18.0.100:80 -s sh -b sh-port,bogus",
     "column 40: 'bogus': invalid scheduler flag `bogus'", 2},
    {"-A -t 198.18.0.100:80 -s rr -b sh-port",
     "column 32: 'sh-port': incompatible scheduler flag `sh-port'", 2},
    {"-A -t 198.18.0.100:80 -b mh-port",
     "column 26: 'mh-port': incompatible scheduler flag `mh-port'", 2},
    {"-A -t 198.18.0.100:80 -s rr -s wrr",
     "column 29: '-s': multiple 'scheduler' options specified", 2},
    {"-A -t 198.18.0.100:80 -t 198.18.0.101:80",
     "column 23: '-t': multiple 'service-address' options specified", 2},
    {"-A -D -t 198.18.0.100:80",
     "column 4: '-D': multiple commands specified", 2},
    {"-A",
     "column 1: '-A': You need to supply the 'service-address' option for the 'add-service' command", 2},
    {"-A -r 198.18.0.12:80 -t 198.18.0.100:80",
     "column 1: '-A': Illegal 'real-server' option with the 'add-service' command", 2},
    {"-A -t 198.18.0.100:80 -w 3",
     "column 1: '-A': Illegal 'weight' option with the 'add-service' command", 2},
    {"-A -t 198.18.0.100:80 -m",
     "column 1: '-A': Illegal 'forwarding-method' option with the 'add-service' command", 2},
    {"-A -t 198.18.0.100:80 --tun-type gue",
     "column 1: '-A': Illegal 'tun-type' option with the 'add-service' command", 2},
    {"-D -t 198.18.0.100:80 -s rr",
     "column 1: '-D': Illegal 'scheduler' option with the 'delete-service' command", 2},
    {"-C -t 198.18.0.100:80",
     "column 1: '-C': Illegal 'service-address' option with the 'flush' command", 2},
    {"-a -t 198.18.0.100:80",
     "column 1: '-a': You need to supply the 'real-server' option for the 'add-server' command", 2},
    {"-a -r 198.18.0.12:80",
     "column 1: '-a': You need to supply the 'service-address' option for the 'add-server' command", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -w 65536",
     "column 41: '65536': illegal weight specified (0-65535)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -w -1",
     "column 41: '-1': illegal weight specified (0-65535)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -w five",
     "column 41: 'five': illegal weight specified (0-65535)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -x 2147483648",
     "column 41: '2147483648': illegal u_threshold specified (0-2147483647)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -y x",
     "column 41: 'x': illegal l_threshold specified (0-2147483647)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -m -g",
     "column 41: '-g': multiple 'forwarding-method' options specified", 2},
    {"-a -t 198.18.0.100:80 -r [fd00::12]:80 -m",
     "column 26: '[fd00::12]:80': Different address family is allowed only for tunneling servers", 2},
    {"-a -t [fd00::100]:80 -r 198.18.0.12:80 -g",
     "column 25: '198.18.0.12:80': Different address family is allowed only for tunneling servers", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -m --tun-type gue --tun-port 6080",
     "column 38: '-m': Tunnel options conflict with forward method", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type vxlan",
     "column 52: 'vxlan': illegal tunnel type specified (ipip, gue or gre)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue",
     "column 52: 'gue': You need to supply the 'tun-port' option for the 'gue' tunnel type", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue --tun-port 0",
     "column 67: '0': illegal tunnel port specified (1-65535)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
     "column 52: 'gue': The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-port 6080",
     "column 1: '-a': Illegal 'tun-port' option with the 'ipip' tunnel type", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-csum",
     "column 1: '-a': Illegal 'tun-csum' option with the 'ipip' tunnel type", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gre --tun-remcsum",
     "column 52: 'gre': Illegal 'tun-remcsum' option with the 'gre' tunnel type", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -i --tun-type gre --tun-port 6080",
     "column 52: 'gre': Illegal 'tun-port' option with the 'gre' tunnel type", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -s rr",
     "column 1: '-a': Illegal 'scheduler' option with the 'add-server' command", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -p 60",
     "column 1: '-a': Illegal 'persistent' option with the 'add-server' command", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 --fullnat",
     "column 38: '--fullnat': --fullnat needs an IPv4 --local-address", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 --fullnat --local-address fd00::1",
     "column 38: '--fullnat': --fullnat needs an IPv4 --local-address", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 -m --local-address 198.18.0.200",
     "column 57: '198.18.0.200': Local addresses need the --fullnat forwarding method", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 --fullnat --local-address 198.18.0.256",
     "column 64: '198.18.0.256': not an IPv4 or IPv6 address", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 --mtu 67",
     "column 44: '67': illegal mtu specified (0, or 68-65535; 1280-65535 for IPv6)", 2},
    {"-a -t [fd00::100]:80 -r [fd00::12]:80 --mtu 1279",
     "column 45: '1279': illegal mtu specified (0, or 68-65535; 1280-65535 for IPv6)", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 --mtu 70000",
     "column 44: '70000': illegal mtu specified (0, or 68-65535; 1280-65535 for IPv6)", 2},
    {"-A -t 198.18.0.100:80 --mtu 1400",
     "column 1: '-A': Illegal 'mtu' option with the 'add-service' command", 2},
    {"-A -t 198.18.0.100:80 -s sh --sched-opt table-bits=21",
     "column 52: '21': invalid value `21' for scheduler option `table-bits'", 2},
    {"-A -t 198.18.0.100:80 -s sh --sched-opt table-index=9",
     "column 41: 'table-index': scheduler sh has no option `table-index'", 2},
    {"-A -t 198.18.0.100:80 -s lblc --sched-opt capacity=5,capacity=6",
     "column 54: 'capacity': multiple 'capacity' scheduler options specified", 2},
    {"-A -t 198.18.0.100:80 -s lblc --sched-opt table-bits=4,expiration",
     "column 56: 'expiration': invalid scheduler option `expiration' (expected NAME=VALUE)", 2},
    {"-A -t 198.18.0.100:80 --sched-opt table-bits=8",
     "column 35: 'table-bits': scheduler wlc has no option `table-bits'", 2},
    {"-A -t 198.18.0.100:80 -s lblc --sched-opt=table-bits=4,expiration=1h",
     "column 67: '1h': invalid value `1h' for scheduler option `expiration'", 2},
    {"-E -t 198.18.0.100:80 -s mh --sched-opt table-index=18",
     "column 53: '18': invalid value `18' for scheduler option `table-index'", 2},
    {"-A -t 198.18.0.100:80 -s wmh --sched-opt table-size=1000",
     "column 53: '1000': invalid value `1000' for scheduler option `table-size'", 2},
    {"-a -t 198.18.0.100:80 -r 198.18.0.12 --sched-opt table-bits=8",
     "column 1: '-a': Illegal 'sched-opt' option with the 'add-server' command", 2},
    {"-A -t 198.18.0.100:80 -s sh --sched-opt table-bits=8 --sched-opt table-bits=9",
     "column 54: '--sched-opt': multiple 'sched-opt' options specified", 2},
    {"-d -t 198.18.0.100:80 -r 198.18.0.12 -w 2",
     "column 1: '-d': Illegal 'weight' option with the 'delete-server' command", 2},
    {"-d -t 198.18.0.100:80",
     "column 1: '-d': You need to supply the 'real-server' option for the 'delete-server' command", 2},
    {"-L -s rr",
     "column 1: '-L': Illegal 'scheduler' option with the 'list' command", 2},
    {"-Lnc --stats",
     "column 1: '-L': options conflicts in the list command", 2},
    {"-L --timeout --rate",
     "column 1: '-L': options conflicts in the list command", 2},
    {"-L --daemon --persistent-conn",
     "column 1: '-L': options conflicts in the list command", 2},
    {"-L -c --timeout",
     "column 1: '-L': The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2},
    {"-Ln -c -t 198.18.0.100:80",
     "column 1: '-L': The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2},
    {"-S -c",
     "column 1: '-S': Illegal 'connection' option with the 'save' command", 2},
    {"-S --stats",
     "column 1: '-S': Illegal 'stats' option with the 'save' command", 2},
    {"-R -n",
     "column 1: '-R': Illegal 'numeric' option with the 'restore' command", 2},
    {"-Z -s rr",
     "column 1: '-Z': Illegal 'scheduler' option with the 'zero' command", 2},
    {"--set 900 120",
     "column 1: '--set': --set option requires 3 timeout values", 2},
    {"--set 900 120 x",
     "column 15: 'x': invalid timeout value `x' specified (0-2678400)", 2},
    {"--set 900 120 300 400",
     "column 19: '400': unexpected argument 400", 2},
    {"--set 900 120 2678401",
     "column 15: '2678401': invalid timeout value `2678401' specified (0-2678400)", 2},
    {"-Lq",
     "column 3: '-q': unknown option", 255},
    {"--foo",
     "column 1: '--foo': unknown option", 255},
    {"--weight",
     "column 1: '--weight': missing argument", 255},
    {"-A -t",
     "column 4: '-t': missing argument", 255},
    {"-A -t 198.18.0.100:80 -s",
     "column 23: '-s': missing argument", 255},
    {"-A --ops=1 -u 198.18.0.100:53",
     "column 4: '--ops': option does not take an argument", 255},
    {"-t 198.18.0.100:80 -A",
     "column 1: '-t': expected a command first (-A, -E, -D, -C, -R, -S, -a, -e, -d, -L, -Z or --set)", 255},
    {"198.18.0.100 -A -t 198.18.0.100:80",
     "column 1: '198.18.0.100': unexpected argument 198.18.0.100", 2},
    {"-h",
     "column 1: '-h': not supported by l4lb", 255},
    {"--start-daemon master",
     "column 1: '--start-daemon': not supported by l4lb", 255},
    {"-L --mcast-interface eth0",
     "column 1: '-L': Illegal 'mcast-interface' option with the 'list' command", 2},
    {"-- -L",
     "column 4: '-L': expected a command first (-A, -E, -D, -C, -R, -S, -a, -e, -d, -L, -Z or --set)", 255},
    {"-A -t 198.18.0.100:80 -M 255.255.255.0 -M 255.255.0.0 -p",
     "column 40: '-M': multiple 'netmask' options specified", 2},
};
// clang-format on

}  // namespace

TEST_SUITE("config") {

TEST_CASE("grammar: the corpus of bad lines, each error in full") {
  static_assert(std::size(corpus) >= 60);
  for (const bad_line& b : corpus) {
    CAPTURE(b.line);
    auto r = parse_command_line(b.line);
    REQUIRE(!r.has_value());
    CHECK(to_string(r.error()) == b.error);
    CHECK(r.error().exit_status == b.exit_status);
  }
}

TEST_CASE("grammar: in a rules file the same errors name their line") {
  for (std::size_t i = 0; i < std::size(corpus); ++i) {
    const bad_line& b = corpus[i];
    CAPTURE(b.line);
    if (b.line.starts_with("--") && !b.line.starts_with("--set")) continue;  // not a change
    const std::string text = "-A -t 198.18.0.1:80 -s rr\n\n" + std::string(b.line) + "\n";
    auto r = load_rules(director::configuration{}, text);
    REQUIRE(!r.has_value());
    CHECK(r.error().line == 3);
    const std::string full = to_string(r.error());
    if (r.error().message.starts_with("not a change")) continue;  // -L, -S, -R lines
    CHECK(full == "line 3, " + std::string(b.error));
  }
}

TEST_CASE("grammar: the argv form counts columns in the arguments joined by spaces") {
  const std::string_view args[] = {"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.300:80"};
  auto r = parse_command_line(std::span<const std::string_view>(args));
  REQUIRE(!r.has_value());
  CHECK(to_string(r.error()) == "column 26: '198.18.0.300': not an IPv4 address");
  CHECK(join_arguments(args).substr(25, 12) == "198.18.0.300");
}

}  // TEST_SUITE
