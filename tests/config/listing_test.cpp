// config/listing.hpp: golden listings, byte for byte as ipvsadm 1.31 prints them (trailing
// spaces included), written from ipvs-notes 5.2, 5.3, 5.5, 5.7, 0A and 0B. The expected texts
// were rendered from ipvsadm.c's printf formats by an independent script (Python's % operator),
// not by the code under test.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config_test_support.hpp"
#include "l4lb/config/listing.hpp"

using namespace l4lb;
using namespace l4lb::config;
using config::test::listing;
using config::test::load;

namespace {

// clang-format off
// tutorial_ln
constexpr std::string_view tutorial_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  198.18.0.100:80 rr\n"
    "  -> 198.18.0.12:80               Route   1      0          0         \n"
    "  -> 198.18.0.13:80               Route   1      0          0         \n";

// tutorial_nosort
constexpr std::string_view tutorial_nosort =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  198.18.0.100:80 rr\n"
    "  -> 198.18.0.13:80               Route   1      0          0         \n"
    "  -> 198.18.0.12:80               Route   1      0          0         \n";

// tutorial_counts
constexpr std::string_view tutorial_counts =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  198.18.0.100:80 rr\n"
    "  -> 198.18.0.12:80               Route   1      3          17        \n"
    "  -> 198.18.0.13:80               Route   0      2          5         \n";

// methods_ln
constexpr std::string_view methods_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  198.18.0.100:80 wlc\n"
    "  -> 198.18.0.11:80               Tunnel  1      0          0         \n"
    "  -> 198.18.0.12:80               Tunnel  2      0          0         \n"
    "  -> 198.18.0.13:80               Tunnel  3      0          0         \n"
    "  -> 198.18.0.14:80               Tunnel  4      0          0         \n"
    "  -> 198.18.0.15:80               Tunnel  5      0          0         \n"
    "  -> 198.18.0.16:80               Route   6      0          0         \n"
    "  -> 198.18.0.17:8080             Masq    7      0          0         \n"
    "  -> 198.18.0.18:8080             FullNat 8      0          0         \n"
    "  -> [fd00::19]:80                Tunnel  9      0          0         \n";

// methods_tun_info
constexpr std::string_view methods_tun_info =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
    "TCP  198.18.0.100:80 wlc\n"
    "  -> 198.18.0.11:80               Tunnel  ipip          1      0          0         \n"
    "  -> 198.18.0.12:80               Tunnel  gue:6080:-c   2      0          0         \n"
    "  -> 198.18.0.13:80               Tunnel  gue:6081:+c   3      0          0         \n"
    "  -> 198.18.0.14:80               Tunnel  gue:6082:r+c  4      0          0         \n"
    "  -> 198.18.0.15:80               Tunnel  gre:+c        5      0          0         \n"
    "  -> 198.18.0.16:80               Route   n/a           6      0          0         \n"
    "  -> 198.18.0.17:8080             Masq    n/a           7      0          0         \n"
    "  -> 198.18.0.18:8080             FullNat n/a           8      0          0         \n"
    "  -> [fd00::19]:80                Tunnel  ipip          9      0          0         \n";

// persistence_ln
constexpr std::string_view persistence_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  198.18.0.100:80 rr persistent 360 mask 255.255.255.0\n"
    "  -> 198.18.0.12:80               Route   1      0          0         \n"
    "TCP  198.18.0.100:443 sh (sh-port) persistent 90\n"
    "  -> 198.18.0.12:443              Masq    1      0          0         \n"
    "UDP  198.18.0.100:53 rr ops\n"
    "  -> 198.18.0.12:53               Route   1      0          0         \n"
    "TCP  [fd00::100]:80 mh (mh-fallback,mh-port) persistent 60 mask 64\n"
    "  -> [fd00::12]:80                Masq    1      0          0         \n";

// thresholds_ln
constexpr std::string_view thresholds_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n"
    "  -> RemoteAddress:Port\n"
    "TCP  198.18.0.100:80 wlc\n"
    "  -> 198.18.0.12:80               100        50         7          93        \n"
    "  -> 198.18.0.13:80               0          0          1          2         \n";

// persistent_conn_ln
constexpr std::string_view persistent_conn_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n"
    "  -> RemoteAddress:Port\n"
    "TCP  198.18.0.100:80 rr persistent 360\n"
    "  -> 198.18.0.12:80               1         4           7          93        \n"
    "  -> 198.18.0.13:80               2         0           1          2         \n";

// ipv6_ln
constexpr std::string_view ipv6_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  [fd00::100]:80 rr\n"
    "  -> [fd00::12]:80                Masq    1      0          0         \n"
    "  -> [fd00::13]:8080              Masq    2      0          0         \n"
    "UDP  [fd00::100]:53 wrr\n"
    "  -> [fd00::12]:53                Route   1      0          0         \n";

// fwmark_ln
constexpr std::string_view fwmark_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "FWM  1 rr\n"
    "  -> 198.18.0.11:0                Route   4      0          0         \n"
    "  -> 198.18.0.12:0                Route   3      0          0         \n"
    "  -> 198.18.0.13:0                Route   2      0          0         \n"
    "FWM  2 IPv6 rr\n"
    "  -> [fd00::11]:0                 Route   1      0          0         \n";

// stats_ln
constexpr std::string_view stats_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
    "  -> RemoteAddress:Port\n"
    "TCP  198.18.0.100:80                     7  123456K    98765    2500M     150T\n"
    "  -> 198.18.0.12:80                      5      123       45   12345G 99999999\n"
    "  -> 198.18.0.13:80                      2  100000K        0  999999K     100G\n";

// stats_exact_ln
constexpr std::string_view stats_exact_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
    "  -> RemoteAddress:Port\n"
    "TCP  198.18.0.100:80                     7 123456789    98765 2500000000 150000000000000\n"
    "  -> 198.18.0.12:80                      5      123       45 12345678901234 99999999\n"
    "  -> 198.18.0.13:80                      2 100000000        0 999999999 100000000000\n";

// rate_ln
constexpr std::string_view rate_ln =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
    "  -> RemoteAddress:Port\n"
    "TCP  198.18.0.100:80                    12     3400     3100  4500000     123G\n"
    "  -> 198.18.0.12:80                      7     2000     1800  2500000 99999999\n"
    "  -> 198.18.0.13:80                      5     1400     1300  2000000  100000K\n";

// conns_lnc
constexpr std::string_view conns_lnc =
    "IPVS connection entries\n"
    "pro expire state       source             virtual            destination\n"
    "TCP 14:58  ESTABLISHED 198.18.4.149:53469 198.18.0.100:80    198.18.0.12:80\n"
    "TCP 01:56  FIN_WAIT    198.18.4.150:40000 198.18.0.100:80    198.18.0.13:80\n"
    "TCP 05:59  ASSURED     198.18.1.0:0       198.18.0.100:80    198.18.0.12:80\n"
    "IP  05:57  ASSURED     198.18.0.2:0       0.0.0.1:0          198.18.0.13:0\n"
    "UDP 100:00 UDP         [fd00::4:149]:5353 [fd00::100]:53     [fd00::12]:53\n"
    "TCP 00:00  CLOSE       198.18.4.151:1     198.18.0.100:80    198.18.0.13:80\n";

// conns_lnc_pc
constexpr std::string_view conns_lnc_pc =
    "IPVS connection entries\n"
    "pro expire state       source             virtual            destination        pe name          pe_data\n"
    "TCP 14:58  ESTABLISHED 198.18.4.149:53469 198.18.0.100:80    198.18.0.12:80\n";

// clang-format on

constexpr std::string_view tutorial_rules =
    "-A -t 198.18.0.100:80 -s rr\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
    "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";

wire::endpoint ep(std::string_view text) {
  auto e = wire::endpoint::parse(text);
  REQUIRE(e.has_value());
  return *e;
}

const director::dest_entry& dest_at(const director::configuration& cfg, std::string_view svc,
                                    std::string_view rs) {
  const auto* s = cfg.find(director::service_key::tcp(ep(svc)));
  REQUIRE(s != nullptr);
  const auto* d = s->find_dest(ep(rs));
  REQUIRE(d != nullptr);
  return *d;
}

}  // namespace

TEST_SUITE("config") {

TEST_CASE("listing: the tutorial's director, -Ln and --nosort (kernel order: newest first)") {
  const auto cfg = load(tutorial_rules);
  CHECK(listing(cfg, "-Ln") == tutorial_ln);
  CHECK(listing(cfg, "-L") == tutorial_ln);  // no resolver: numbers
  CHECK(listing(cfg, "-Ln --nosort") == tutorial_nosort);
}

TEST_CASE("listing: connection counts and a quiesced server come from the callbacks") {
  auto cfg = load(tutorial_rules);
  const std::uint32_t h12 = dest_at(cfg, "198.18.0.100:80", "198.18.0.12:80").handle;
  director::real_server_spec quiesced;
  quiesced.endpoint = ep("198.18.0.13:80");
  quiesced.weight = 0;
  REQUIRE(cfg.apply(director::command{director::edit_dest{
              director::service_key::tcp(ep("198.18.0.100:80")), quiesced}}) ==
          director::config_error::ok);
  listing_input in{cfg};
  in.dest_status = [&](std::uint32_t handle) {
    director::dest_status s;
    s.active_conns = handle == h12 ? 3 : 2;
    s.inactive_conns = handle == h12 ? 17 : 5;
    return s;
  };
  CHECK(listing(in, list_request{.numeric = true}) == tutorial_counts);
}

TEST_CASE("listing: every forwarding method and tunnel option, with and without --tun-info") {
  const auto cfg = load(
      "-A -t 198.18.0.100:80\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.18:8080 --fullnat -w 8 --local-address 198.18.0.200\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.17:8080 -m -w 7\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.16 -g -w 6\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.15 -i -w 5 --tun-type gre --tun-csum\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.14 -i -w 4 --tun-type gue --tun-port 6082 --tun-remcsum\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.13 -i -w 3 --tun-type gue --tun-port 6081 --tun-csum\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12 -i -w 2 --tun-type gue --tun-port 6080\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.11 -i -w 1\n"
      "-a -t 198.18.0.100:80 -r [fd00::19]:80 -i -w 9\n");
  CHECK(listing(cfg, "-Ln") == methods_ln);
  CHECK(listing(cfg, "-Ln --tun-info") == methods_tun_info);
}

TEST_CASE("listing: persistence with -M, scheduler flags, one-packet, IPv6 prefix") {
  const auto cfg = load(
      "-A -t [fd00::100]:80 -s mh -b mh-port,mh-fallback -p 60 -M 64\n"
      "-a -t [fd00::100]:80 -r [fd00::12]:80 -m\n"
      "-A -u 198.18.0.100:53 -s rr -o\n"
      "-a -u 198.18.0.100:53 -r 198.18.0.12\n"
      "-A -t 198.18.0.100:443 -s sh -b sh-port -p 90\n"
      "-a -t 198.18.0.100:443 -r 198.18.0.12 -m\n"
      "-A -t 198.18.0.100:80 -s rr -p -M 255.255.255.0\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12\n");
  CHECK(listing(cfg, "-Ln") == persistence_ln);
}

TEST_CASE("listing: --thresholds and --persistent-conn") {
  const auto cfg = load(
      "-A -t 198.18.0.100:80\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12 -x 100 -y 50\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.13\n");
  listing_input in{cfg};
  const std::uint32_t h12 = dest_at(cfg, "198.18.0.100:80", "198.18.0.12:80").handle;
  in.dest_status = [&](std::uint32_t h) {
    director::dest_status s;
    s.active_conns = h == h12 ? 7 : 1;
    s.inactive_conns = h == h12 ? 93 : 2;
    s.persist_conns = h == h12 ? 4 : 0;
    return s;
  };
  CHECK(listing(in, list_request{.numeric = true, .thresholds = true}) ==
        thresholds_ln);
  const auto pcfg = load(
      "-A -t 198.18.0.100:80 -s rr -p\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.13 -w 2\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12 -w 1\n");
  listing_input pin{pcfg};
  const std::uint32_t p12 = dest_at(pcfg, "198.18.0.100:80", "198.18.0.12:80").handle;
  pin.dest_status = [&](std::uint32_t h) {
    director::dest_status s;
    s.active_conns = h == p12 ? 7 : 1;
    s.inactive_conns = h == p12 ? 93 : 2;
    s.persist_conns = h == p12 ? 4 : 0;
    return s;
  };
  CHECK(listing(pin, list_request{.numeric = true, .persistent_conn = true}) ==
        persistent_conn_ln);
}

TEST_CASE("listing: IPv6 and fwmark services") {
  const auto v6 = load(
      "-A -u [fd00::100]:53 -s wrr\n"
      "-a -u [fd00::100]:53 -r fd00::12\n"
      "-A -t [fd00::100]:80 -s rr\n"
      "-a -t [fd00::100]:80 -r [fd00::13]:8080 -m -w 2\n"
      "-a -t [fd00::100]:80 -r [fd00::12]:80 -m -w 1\n");
  CHECK(listing(v6, "-Ln") == ipv6_ln);
  const auto fwm = load(
      "-A -f 2 -6 -s rr\n"
      "-a -f 2 -6 -r fd00::11 -g\n"
      "-A -f 1 -s rr\n"
      "-a -f 1 -r 198.18.0.11 -g -w 4\n"
      "-a -f 1 -r 198.18.0.12 -g -w 3\n"
      "-a -f 1 -r 198.18.0.13 -g -w 2\n");
  CHECK(listing(fwm, "-Ln") == fwmark_ln);
}

TEST_CASE("listing: --stats (and --exact) and --rate from the counter callbacks") {
  const auto cfg = load(tutorial_rules);
  const std::uint32_t h12 = dest_at(cfg, "198.18.0.100:80", "198.18.0.12:80").handle;
  listing_input in{cfg};
  in.service_status = [](std::uint32_t) {
    director::service_status s;
    s.stats = {7, 123456789, 98765, 2500000000, 150000000000000};
    s.rate = {12, 3400, 3100, 4500000, 123456789012};
    return s;
  };
  in.dest_status = [&](std::uint32_t h) {
    director::dest_status s;
    if (h == h12) {
      s.stats = {5, 123, 45, 12345678901234, 99999999};
      s.rate = {7, 2000, 1800, 2500000, 99999999};
    } else {
      s.stats = {2, 100000000, 0, 999999999, 100000000000};
      s.rate = {5, 1400, 1300, 2000000, 100000000};
    }
    return s;
  };
  CHECK(listing(in, list_request{.numeric = true, .stats = true}) == stats_ln);
  CHECK(listing(in, list_request{.numeric = true, .stats = true, .exact = true}) ==
        stats_exact_ln);
  CHECK(listing(in, list_request{.numeric = true, .rate = true}) == rate_ln);
}

TEST_CASE("listing: -Lnc with templates, in the order given") {
  const auto cfg = load(tutorial_rules);
  const auto s = [](std::int64_t secs) { return secs * 1'000'000'000 + 999'999'999; };
  const std::vector<director::conn_row> rows = {
      {6, false, "ESTABLISHED", s(898), ep("198.18.4.149:53469"), ep("198.18.0.100:80"),
       ep("198.18.0.12:80"), 0},
      {6, false, "FIN_WAIT", s(116), ep("198.18.4.150:40000"), ep("198.18.0.100:80"),
       ep("198.18.0.13:80"), 1},
      {6, true, "ASSURED", s(359), ep("198.18.1.0:0"), ep("198.18.0.100:80"),
       ep("198.18.0.12:80"), 2},
      {0, true, "ASSURED", s(357), ep("198.18.0.2:0"), ep("0.0.0.1:0"), ep("198.18.0.13:0"), 3},
      {17, false, "UDP", s(6000), ep("[fd00::4:149]:5353"), ep("[fd00::100]:53"),
       ep("[fd00::12]:53"), 4},
      {6, false, "CLOSE", -5, ep("198.18.4.151:1"), ep("198.18.0.100:80"), ep("198.18.0.13:80"),
       5},
  };
  listing_input in{cfg};
  in.connections = rows;
  CHECK(listing(in, list_request{.numeric = true, .connections = true}) ==
        conns_lnc);
  in.connections = std::span(rows).first(1);
  CHECK(listing(in, list_request{.numeric = true, .connections = true, .persistent_conn = true}) ==
        conns_lnc_pc);
}

TEST_CASE("listing: --timeout, --daemon, one service, the banner's size") {
  auto cfg = load(tutorial_rules);
  CHECK(listing(cfg, "-L --timeout") == "Timeout (tcp tcpfin udp): 900 120 300\n");
  REQUIRE(cfg.apply(director::command{director::set_timeouts{3600, 0, 60}}) ==
          director::config_error::ok);
  CHECK(listing(cfg, "-L --timeout") == "Timeout (tcp tcpfin udp): 3600 120 60\n");
  CHECK(listing(cfg, "-L --daemon").empty());
  const std::string one = listing(cfg, "-Ln -t 198.18.0.100:80");
  CHECK(one == tutorial_ln.substr(tutorial_ln.find('\n') + 1));
  listing_input in{cfg};
  in.conn_table_size = 65536;
  CHECK(listing(in, list_request{.numeric = true})
            .starts_with("IP Virtual Server version 1.2.1 (size=65536)\n"));
  std::string out;
  const auto e = write_listing(out, in,
                               list_request{.numeric = true,
                                            .service = director::service_key::tcp(
                                                ep("198.18.0.101:80"))});
  REQUIRE(e.has_value());
  CHECK(to_string(*e) == "No such service");
  CHECK(e->exit_status == 1);
  CHECK(out.empty());
  std::ostringstream os;
  CHECK(!write_listing(os, listing_input{cfg}, list_request{.numeric = true})
             .has_value());
}

TEST_CASE("listing: -L without -n through the resolver, names cut as ipvsadm cuts them") {
  const auto cfg = load(tutorial_rules);
  name_resolver r;
  r.address_to_host = [](const wire::ip_address& a) -> std::optional<std::string> {
    if (a.v4().to_u32() == 0xC6120064) return "a-very-long-virtual-host-name.example";
    if (a.v4().to_u32() == 0xC612000C) return "real-server-twelve.example";
    return std::nullopt;
  };
  r.port_to_service = [](std::uint16_t p, std::uint8_t proto) -> std::optional<std::string> {
    if (p == 80 && proto == wire::ip_proto::tcp) return "http";
    return std::nullopt;
  };
  listing_input in{cfg};
  in.resolver = &r;
  CHECK(listing(in, list_request{}) ==
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  a-very-long-virtual-host-nam rr\n"
        "  -> real-server-twelve.example:h Route   1      0          0         \n"
        "  -> 198.18.0.13:http             Route   1      0          0         \n");
  CHECK(listing(in, list_request{.numeric = true}) == tutorial_ln);
}

TEST_CASE("listing: services sort by fwmark, family, protocol, address, port") {
  const auto cfg = load(
      "-A -f 3 -s rr\n"
      "-A -t [fd00::1]:80 -s rr\n"
      "-A --sctp-service 198.18.0.100:80 -s rr\n"
      "-A -u 198.18.0.100:80 -s rr\n"
      "-A -t 198.18.0.101:80 -s rr\n"
      "-A -t 198.18.0.100:443 -s rr\n"
      "-A -t 198.18.0.100:80 -s rr\n"
      "-A -f 1 -6 -s rr\n"
      "-A -f 1 -s rr\n");
  const std::string out = listing(cfg, "-Ln");
  std::vector<std::string> services;
  std::istringstream is(out);
  for (std::string line; std::getline(is, line);)
    if (!line.starts_with(" ") && !line.starts_with("IP ") && !line.starts_with("Prot"))
      services.push_back(line);
  CHECK(services == std::vector<std::string>{"TCP  198.18.0.100:80 rr", "TCP  198.18.0.100:443 rr",
                                             "TCP  198.18.0.101:80 rr", "UDP  198.18.0.100:80 rr",
                                             "SCTP 198.18.0.100:80 rr", "TCP  [fd00::1]:80 rr",
                                             "FWM  1 rr", "FWM  1 IPv6 rr", "FWM  3 rr"});
}

TEST_CASE("listing: --sched-opt is not shown; ipvsadm's -L stays byte for byte") {
  const std::string_view with =
      "-A -t 198.18.0.100:80 -s mh -b mh-port --sched-opt table-index=8\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n";
  const std::string_view without =
      "-A -t 198.18.0.100:80 -s mh -b mh-port\n"
      "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n";
  for (std::string_view flags : {"-Ln", "-Ln --stats", "-Ln --rate", "-Ln --thresholds"}) {
    CAPTURE(flags);
    CHECK(test::listing(test::load(with), flags) == test::listing(test::load(without), flags));
  }
  CHECK(test::listing(test::load(with), "-Ln").find("table-index") == std::string::npos);
}

}  // TEST_SUITE
