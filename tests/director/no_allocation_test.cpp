// process_burst allocates nothing once the configuration is stable: every method, both
// families, NAT replies, ICMP errors, drops, passes, persistence, a full table, expiry and the
// rate estimator, over many bursts.
#include <doctest/doctest.h>

#include "director/director_support.hpp"

// Counts every global allocation of this test program (the only file here that does).
#include "support/allocation_counter.hpp"
using l4lb_test::allocations;

using namespace director_test;

TEST_SUITE("director") {
TEST_CASE("director: process_burst allocates nothing with a stable configuration") {
  director_config cfg = lab::small();
  cfg.conn_capacity_v4 = 300;  // small: the full-table policy runs too
  lab l(cfg);
  const auto web = service_key::tcp(ep("198.18.0.100:80"));
  auto persistent = service(service_key::tcp(ep("198.18.0.100:443")), "wlc");
  persistent.persistent = true;
  const auto dns = service_key::udp(ep("198.18.0.100:53"));
  const auto v6 = service_key::tcp(ep("[fd00:198:18::100]:80"));
  l.must(add_service{service(web, "rr")});
  l.must(add_dest{web, server("198.18.0.12:8080", forward_method::masq)});
  l.must(add_dest{web, server("198.18.0.13:80", forward_method::route)});
  l.must(add_dest{web, server("198.18.0.11:80", forward_method::tunnel)});
  l.must(add_service{persistent});
  l.must(add_dest{persistent.key, server("198.18.0.12:443")});
  l.must(add_dest{persistent.key, server("198.18.0.13:443")});
  l.must(add_service{service(dns, "mh")});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  l.must(add_service{service(v6, "wlc")});
  l.must(add_dest{v6, server("[fd00:198:18::12]:80", forward_method::masq)});

  // Frames built before counting; each round copies them into the same buffers.
  std::vector<bytes> templates;
  for (std::uint16_t i = 0; i < 40; ++i) {
    const auto port = static_cast<std::uint16_t>(30000 + i);
    templates.push_back(tcp4("198.18.1.10", port, "198.18.0.100", 80, tf::syn));
    templates.push_back(tcp4("198.18.1.10", port, "198.18.0.100", 80, tf::ack));
    templates.push_back(tcp4("198.18.1.11", port, "198.18.0.100", 443, tf::syn));
    templates.push_back(udp4("198.18.1.12", port, "198.18.0.100", 53));
    templates.push_back(packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                            .ipv4("198.18.0.12", "198.18.1.10")
                            .tcp(8080, port, tf::syn | tf::ack)
                            .build());
    templates.push_back(packet_builder{}.eth(director_mac, client_router_mac)
                            .ipv6("fd00:198:18:1::10", "fd00:198:18::100")
                            .tcp(port, 80, tf::syn)
                            .build());
  }
  templates.push_back(tcp4("198.18.1.10", 1, "198.18.0.9", 80, tf::syn));        // pass
  templates.push_back(tcp4("224.0.0.5", 1, "198.18.0.100", 80, tf::syn));        // drop
  templates.push_back(packet_builder{}.eth(director_mac, client_router_mac)     // ICMP error
                          .ipv4("198.18.2.1", "198.18.0.100")
                          .icmp(3, 4, 1400)
                          .quote(packet_builder{}.ipv4("198.18.0.100", "198.18.1.10").tcp(80, 30000, tf::ack))
                          .build());
  templates.push_back(bytes(10));                                                // truncated
  std::vector<bytes> storage;
  for (const auto& t : templates) storage.emplace_back(t.size() + 256);
  std::vector<forward::frame_buffer> bufs(templates.size());
  std::vector<verdict> out(director::director::max_burst);
  // Warm up once (the first burst after construction syncs the configuration).
  l.send(tcp4("198.18.1.99", 1, "198.18.0.100", 80, tf::syn), 0);

  const std::uint64_t before = allocations.load();
  std::uint64_t forwarded = 0;
  for (std::uint32_t round = 0; round < 200; ++round) {
    const std::int64_t now = sec + static_cast<std::int64_t>(round) * (sec / 4);
    for (std::size_t i = 0; i < templates.size(); ++i) {
      std::copy(templates[i].begin(), templates[i].end(), storage[i].begin() + 128);
      bufs[i] = *forward::frame_buffer::make(storage[i], 128, templates[i].size());
    }
    for (std::size_t at = 0; at < bufs.size(); at += director::director::max_burst) {
      const std::size_t n = std::min(director::director::max_burst, bufs.size() - at);
      l.d->process_burst(std::span(bufs).subspan(at, n), std::span(out).first(n), now);
      for (std::size_t i = 0; i < n; ++i) forwarded += out[i].kind == verdict_kind::forward;
    }
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(during == 0);
  CHECK(forwarded > 1000);
  const auto& vc = l.d->verdicts();
  CHECK(vc.passed > 0);
  CHECK(vc.dropped > 0);
  CHECK(vc.forwarded_to_client > 0);
}
}
