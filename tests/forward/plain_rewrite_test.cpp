// The DR, NAT and IPIP short cuts for plain frames (plain_direct_route, plain_nat_translate,
// plain_ipip_v4, plain_ip6ip6) against the general rewriters they stand in for (direct_route_general,
// nat_finish + rewrite_endpoints, tunnel_encapsulate_general):
// on random TCP/UDP frames over IPv4 and IPv6 with every variation that makes a frame not plain
// (VLAN tags, IP options, TTL 1, sizes over the MTU, a zero UDP checksum, fragments; other tunnel
// types and families), a short cut either declines having written nothing, or writes the same bytes and
// returns the same frame.
#include <doctest/doctest.h>

#include <array>
#include <random>
#include <vector>

#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb;
using l4lb::test::bytes;
using l4lb::test::mac;
using l4lb::test::packet_builder;
namespace tf = l4lb::wire::tcp_flags;

namespace {

struct held {
  bytes storage;
  forward::frame_buffer buf;
  explicit held(const bytes& f) : storage(64 + f.size() + 64) {
    std::copy(f.begin(), f.end(), storage.begin() + 64);
    buf = *forward::frame_buffer::make(storage, 64, f.size());
  }
};

bytes random_frame(std::mt19937& rng) {
  packet_builder b;
  b.eth(mac("02:00:c6:12:00:01"), mac("02:00:c6:12:00:fe"));
  if (rng() % 8 == 0) b.vlan(100);
  if (rng() % 3 == 0) {  // IPv6: hop limit 0 or 1 now and then, extension headers, fragments
    l4lb::test::ipv6_options o;
    o.hop_limit = static_cast<std::uint8_t>(rng() % 6 == 0 ? rng() % 2 : 64);
    b.ipv6("fd00:198:18:1::10", "fd00:198:18::100", o);
    if (rng() % 6 == 0) b.hop_by_hop();
    if (rng() % 6 == 0) b.dest_opts(16);
    if (rng() % 12 == 0) b.fragment6(0, true);
  } else {
    l4lb::test::ipv4_options o;
    o.ttl = static_cast<std::uint8_t>(rng() % 6 == 0 ? rng() % 2 : 64);
    o.dont_frag = rng() % 2 == 0;
    o.more_frags = rng() % 12 == 0;
    if (rng() % 8 == 0) o.options = {std::byte{1}, std::byte{1}, std::byte{1}, std::byte{0}};
    b.ipv4("198.18.1.10", "198.18.0.100", o);
  }
  if (rng() % 3 == 0) {
    l4lb::test::udp_options u;
    u.zero_checksum = rng() % 4 == 0;
    b.udp(static_cast<std::uint16_t>(1024 + rng() % 60000), 53, u);
  } else {
    b.tcp(static_cast<std::uint16_t>(1024 + rng() % 60000), 80, tf::ack);
  }
  b.payload(rng() % 6 == 0 ? 1200 + rng() % 100 : rng() % 100);
  auto f = b.build();
  if (rng() % 4 == 0) f.resize(f.size() + rng() % 20);  // Ethernet padding
  return f;
}

// No check, IPv4's and IPv6's smallest, between them, and under both (mtu_too_small).
std::size_t mtu(std::mt19937& rng) {
  constexpr std::size_t choices[] = {0, 0, 0, 68, 1000, 1280, 1300, 60};
  return choices[rng() % 8];
}

forward::l2_config l2(std::mt19937& rng) {
  forward::l2_config c;
  c.src = mac("02:00:c6:12:00:01");
  c.dst = mac("02:00:c6:12:00:0b");
  if (rng() % 8 == 0) {
    c.vlan.policy = forward::vlan_policy::replace;
    c.vlan.count = 1;
    c.vlan.tags[0] = {0x8100, 200};
  }
  return c;
}

// Over 4000 random frames: `plain(a, pa, cfg)` either declines with `a` untouched, or leaves `a`
// exactly as `general(b, pb, cfg)` leaves `b` (a copy), with the same frame; it must take most.
// `min_ipv6`: how many of those must be IPv6 frames (plain_ipip_v4 takes only IPv4, about 2/3
// of the frames: it must take `min_taken` of them).
template <class Config, class MakeConfig, class Plain, class General>
void against_general(std::uint32_t seed, MakeConfig make_config, Plain plain, General general,
                     std::size_t min_ipv6 = 0, std::size_t min_taken = 1000) {
  std::mt19937 rng(seed);
  std::size_t taken = 0, taken_ipv6 = 0;
  for (int n = 0; n < 4000; ++n) {
    const bytes f = random_frame(rng);
    const Config cfg = make_config(rng);
    held a(f), b(f);
    auto pa = wire::parse(a.buf.frame());
    auto pb = wire::parse(b.buf.frame());
    if (!pa) continue;
    const auto short_cut = plain(a.buf, *pa, cfg);
    if (short_cut.empty()) {
      CHECK(a.storage == b.storage);
      continue;
    }
    ++taken;
    taken_ipv6 += pa->is_ipv6();
    const auto full = general(b.buf, *pb, cfg);
    REQUIRE(full);
    CHECK(full->action == forward::forward_action::forward);
    CHECK(full->frame.size() == short_cut.size());
    CHECK(full->frame.data() - b.storage.data() == short_cut.data() - a.storage.data());
    CHECK(a.storage == b.storage);
  }
  MESSAGE(taken << " of 4000 frames took the short cut, " << taken_ipv6 << " of them IPv6");
  CHECK(taken >= min_taken);
  CHECK(taken_ipv6 >= min_ipv6);
}

// A tunnel configuration of every kind the short cuts must decline now and then: GUE, GRE,
// remcsum (GUE's only: bad_config), a local address of the other family or unspecified.
forward::tunnel_config random_tunnel(std::mt19937& rng, const char* local, const char* other_family,
                                     const char* unspecified) {
  forward::tunnel_config cfg;
  cfg.l2 = l2(rng);
  const auto pick = rng() % 12;
  cfg.type = pick == 0 ? forward::tunnel_type::gue : pick == 1 ? forward::tunnel_type::gre
                                                               : forward::tunnel_type::ipip;
  cfg.gue_port = 6080;
  // IPIP has no checksum and ignores csum.
  const auto sum = rng() % 10;
  cfg.checksum = sum == 0 ? forward::tunnel_checksum::remcsum
                 : sum == 1 ? forward::tunnel_checksum::csum
                            : forward::tunnel_checksum::none;
  cfg.local = *wire::ip_address::parse(pick == 2 ? other_family : pick == 3 ? unspecified : local);
  cfg.decrement_ttl = rng() % 8 != 0;
  cfg.rewrite_l2 = rng() % 10 != 0;
  return cfg;
}

const wire::endpoint real_server{*wire::ip_address::parse("198.18.0.12"), 8080};
const wire::endpoint real_server6{*wire::ip_address::parse("fd00:198:18::12"), 8080};
// The real server of the packet's family.
const wire::endpoint& server_for(const wire::packet_view& p) {
  return p.is_ipv4() ? real_server : real_server6;
}

}  // namespace

TEST_SUITE("forward") {
  TEST_CASE("decrement_ttl: the IPv4 checksum as RFC 1624 gives it, for every checksum value") {
    // The short form adds 0x0100 in ones' complement; the delta does not depend on the TTL or
    // the protocol, so every checksum with one TTL|protocol word covers every case.
    std::array<std::byte, 20> ip{};
    for (std::uint32_t hc = 0; hc <= 0xFFFF; ++hc) {
      wire::detail::store_u8(ip.data() + 8, 64);
      wire::detail::store_u8(ip.data() + 9, wire::ip_proto::tcp);
      wire::detail::store_be16(ip.data() + 10, static_cast<std::uint16_t>(hc));
      forward::detail::decrement_ttl(ip, wire::ip_family::v4);
      const std::uint16_t want = wire::checksum_update_u16(static_cast<std::uint16_t>(hc), 0x4006, 0x3F06);
      if (wire::detail::load_be16(ip.data() + 10) != want) {
        FAIL_CHECK("checksum " << hc << ": got " << wire::detail::load_be16(ip.data() + 10) << ", want " << want);
        break;
      }
      REQUIRE(wire::detail::load_u8(ip.data() + 8) == 63);
    }
  }

  TEST_CASE("plain_direct_route: declines untouched, or writes what direct_route_general writes") {
    against_general<forward::dr_config>(
        11,
        [](std::mt19937& rng) {
          forward::dr_config cfg;
          cfg.l2 = l2(rng);
          cfg.mtu = mtu(rng);
          cfg.decrement_ttl = rng() % 8 != 0;
          return cfg;
        },
        [](forward::frame_buffer& buf, const wire::packet_view& p, const forward::dr_config& cfg) {
          return forward::detail::plain_direct_route(buf, p, cfg);
        },
        [](forward::frame_buffer& buf, const wire::packet_view& p, const forward::dr_config& cfg) {
          std::vector<std::byte> reply(2048);
          return forward::detail::direct_route_general(buf, p, cfg, reply);
        },
        300);
  }

  TEST_CASE("plain_nat_translate: declines untouched, or writes what nat_finish writes") {
    against_general<forward::nat_config>(
        12,
        [](std::mt19937& rng) {
          forward::nat_config cfg;
          cfg.l2 = l2(rng);
          cfg.mtu = mtu(rng);
          cfg.decrement_ttl = rng() % 8 != 0;
          cfg.rewrite_l2 = rng() % 10 != 0;
          return cfg;
        },
        [](forward::frame_buffer& buf, const wire::packet_view& p, const forward::nat_config& cfg) {
          return forward::detail::plain_nat_translate(buf, p, nullptr, &server_for(p), cfg);
        },
        [](forward::frame_buffer& buf, const wire::packet_view& p, const forward::nat_config& cfg) {
          std::vector<std::byte> reply(2048);
          return forward::detail::nat_finish(buf, p, cfg, reply, [&] {
            forward::detail::endpoint_change c;
            c.dst = &server_for(p);
            forward::detail::rewrite_endpoints(p, c, forward::detail::nat_rewrite_options(cfg));
          });
        },
        300);
  }

  TEST_CASE("plain_ipip_v4: declines untouched, or writes what tunnel_encapsulate_general writes") {
    // Two generators with one seed: each side takes the same outer IDs (inner packets without DF).
    static forward::ip_id_generator ids_plain{7}, ids_general{7};
    const auto real = *wire::ip_address::parse("198.18.0.12");
    against_general<forward::tunnel_config>(
        13,
        [](std::mt19937& rng) {
          forward::tunnel_config cfg = random_tunnel(rng, "198.18.0.1", "fd00::1", "0.0.0.0");
          cfg.mtu = rng() % 3 == 0 ? 1000 : rng() % 10 == 0 ? 80 : 0;
          cfg.ip_ids = &ids_plain;
          return cfg;
        },
        [&](forward::frame_buffer& buf, const wire::packet_view& p, const forward::tunnel_config& cfg) {
          return forward::detail::plain_ipip_v4(buf, p, real, cfg);
        },
        [&](forward::frame_buffer& buf, const wire::packet_view& p, const forward::tunnel_config& cfg) {
          std::vector<std::byte> reply(2048);
          forward::tunnel_config general = cfg;
          general.ip_ids = &ids_general;
          return forward::detail::tunnel_encapsulate_general(buf, p, real, general, reply, std::nullopt);
        },
        0, 700);
  }

  TEST_CASE("plain_ip6ip6: declines untouched, or writes what tunnel_encapsulate_general writes") {
    const auto real = *wire::ip_address::parse("fd00:198:18::12");
    against_general<forward::tunnel_config>(
        14,
        [](std::mt19937& rng) {
          forward::tunnel_config cfg = random_tunnel(rng, "fd00:198:18::1", "198.18.0.1", "::");
          // No check; under, at and over the smallest (1280 + 40); between.
          constexpr std::size_t mtus[] = {0, 0, 1319, 1320, 1340, 1400};
          cfg.mtu = mtus[rng() % 6];
          return cfg;
        },
        [&](forward::frame_buffer& buf, const wire::packet_view& p, const forward::tunnel_config& cfg) {
          return forward::detail::plain_ip6ip6(buf, p, real, cfg);
        },
        [&](forward::frame_buffer& buf, const wire::packet_view& p, const forward::tunnel_config& cfg) {
          std::vector<std::byte> reply(2048);
          return forward::detail::tunnel_encapsulate_general(buf, p, real, cfg, reply, std::nullopt);
        },
        250, 250);
  }
}
