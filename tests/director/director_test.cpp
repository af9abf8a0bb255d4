// The director end to end on built frames: the LVS tutorial's scenario, every forwarding method
// it runs, the kernel's scheduling-entry rules, persistence, one-packet scheduling, fwmark
// services, ICMP errors, drops the kernel makes before IPVS, stats, explain, and changes applied
// as one snapshot or not at all.
#include <algorithm>
#include <bit>
#include <random>

#include <doctest/doctest.h>

#include "director/director_support.hpp"

using namespace director_test;

namespace {

std::uint32_t handle_of(const director_control& c, const service_key& k, std::string_view e) {
  const auto cfg = c.config();
  return cfg.find(k)->find_dest(ep(e))->handle;
}
// A router on the client side tells the VIP that `quoted` (VIP -> client) needs fragmenting.
bytes frag_needed_to_vip(const packet_builder& quoted) {
  return packet_builder{}.eth(director_mac, client_router_mac)
      .ipv4("198.18.2.1", "198.18.0.100")
      .icmp(3, 4, 1400)
      .quote(quoted)
      .build();
}
// The big-endian 16-bit field at `at`.
int be16(std::span<const std::byte> f, std::size_t at) {
  return std::to_integer<int>(f[at]) * 256 + std::to_integer<int>(f[at + 1]);
}

// FullNAT's lab: VIP:80 (rr) -> 198.18.0.12:8080, from the local address 198.18.0.1.
real_server_spec full_nat_server() {
  auto fn = server("198.18.0.12:8080", forward_method::full_nat);
  fn.full_nat_local = {ip("198.18.0.1")};
  return fn;
}
void add_full_nat_service(lab& l) {
  l.must(add_service{service(vip80, "rr")});
  l.must(add_dest{vip80, full_nat_server()});
}

}  // namespace

TEST_SUITE("director") {
TEST_CASE("tutorial: rr over DR alternates, newest server first, MACs rewritten") {
  lab l;
  l.tutorial();
  const auto h12 = handle_of(l.control, vip80, "198.18.0.12:80");
  const auto h13 = handle_of(l.control, vip80, "198.18.0.13:80");
  const char* expect[] = {"198.18.0.13", "198.18.0.12", "198.18.0.13", "198.18.0.12"};
  for (int i = 0; i < 4; ++i) {
    const verdict v = l.send(tcp4("198.18.1.10", static_cast<std::uint16_t>(40000 + i), "198.18.0.100", 80, tf::syn), sec);
    REQUIRE(v.kind == verdict_kind::forward);
    CHECK(v.method == forward_method::route);
    CHECK(v.dest == (i % 2 == 0 ? h13 : h12));
    CHECK(eth_dst(v.frame) == mac_of(ip(expect[i])));
    CHECK(v.next_hop == mac_of(ip(expect[i])));
    CHECK(ipv4_dst(v.frame) == "198.18.0.100");  // DR leaves the IP destination alone
    CHECK(std::to_integer<int>(v.frame[22]) == 63);  // TTL 64 - 1
  }
  // Listing counts: every connection is in SYN_RECV (active).
  CHECK(l.control.dest_stats(h13).active_conns == 2);
  CHECK(l.control.dest_stats(h12).active_conns == 2);
  CHECK(l.control.service_stats(l.control.config().find(vip80)->id).stats.conns == 4);
}

TEST_CASE("tutorial: ActiveConn / InActConn follow the INPUT_ONLY state table") {
  lab l;
  l.tutorial();
  const auto h13 = handle_of(l.control, vip80, "198.18.0.13:80");
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).dest == h13);
  CHECK(l.control.dest_stats(h13).active_conns == 1);
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), sec + 1000).kind == verdict_kind::forward);
  CHECK(l.control.dest_stats(h13).active_conns == 1);
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::fin | tf::ack), sec + 2000).kind == verdict_kind::forward);
  const auto st = l.control.dest_stats(h13);
  CHECK(st.active_conns == 0);
  CHECK(st.inactive_conns == 1);
  const auto rows = l.control.connections(sec + 2000);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "FIN_WAIT");
  CHECK(rows[0].dest == ep("198.18.0.13:80"));
  // FIN_WAIT lasts 120 s; then the connection and its count are gone.
  l.d->expire_all(sec + 2000 + 121 * sec);
  CHECK(l.control.dest_stats(h13).inactive_conns == 0);
}

TEST_CASE("tutorial: a removed server keeps its connections listed, their packets are dropped") {
  lab l;
  l.tutorial();
  const auto h13 = handle_of(l.control, vip80, "198.18.0.13:80");
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).dest == h13);
  l.must(delete_dest{vip80, ep("198.18.0.13:80")});
  // expire_nodest_conn = 0: dropped silently, still listed (ipvs-notes 0B).
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), 2 * sec);
  CHECK(v.kind == verdict_kind::drop);
  CHECK(v.reason() == "dest_removed");
  CHECK(l.control.connections(2 * sec).size() == 1);
  // New connections go to the other server only.
  for (int i = 0; i < 3; ++i) {
    const verdict n = l.send(tcp4("198.18.1.11", static_cast<std::uint16_t>(50000 + i), "198.18.0.100", 80, tf::syn), 2 * sec);
    CHECK(eth_dst(n.frame) == mac_of(ip("198.18.0.12")));
  }
  // Once its connection is gone, the handle is given back.
  l.d->expire_all(2 * sec + 61 * sec);
  l.send(tcp4("198.18.1.12", 1, "198.18.0.100", 80, tf::syn), 70 * sec);  // a burst reports it
  CHECK(l.control.collect_retired() == 1);
  CHECK(l.control.config().retired_handles().empty());
}

TEST_CASE("expire_nodest_conn = 1 expires a removed server's connections on their next packet") {
  lab l;
  l.tutorial();
  l.must(set_sysctl{"expire_nodest_conn", 1});
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).kind == verdict_kind::forward);
  l.must(delete_dest{vip80, ep("198.18.0.13:80")});
  // The ACK finds the connection gone and is not schedulable (no SYN): passed.
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), 2 * sec);
  CHECK(v.kind == verdict_kind::pass);
  CHECK(v.reason() == "not_schedulable");
}

TEST_CASE("weight 0 drains: no new connections, existing ones continue") {
  lab l;
  l.tutorial();
  const auto h13 = handle_of(l.control, vip80, "198.18.0.13:80");
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).dest == h13);
  auto quiesced = server("198.18.0.13:80");
  quiesced.weight = 0;
  l.must(edit_dest{vip80, quiesced});
  CHECK(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), 2 * sec).dest == h13);
  for (int i = 0; i < 4; ++i) {
    const verdict n = l.send(tcp4("198.18.1.11", static_cast<std::uint16_t>(50000 + i), "198.18.0.100", 80, tf::syn), 2 * sec);
    CHECK(eth_dst(n.frame) == mac_of(ip("198.18.0.12")));
  }
  // Both quiesced: no destination.
  auto q12 = server("198.18.0.12:80");
  q12.weight = 0;
  l.must(edit_dest{vip80, q12});
  const bytes syn = tcp4("198.18.1.11", 60000, "198.18.0.100", 80, tf::syn);
  const verdict none = l.send(syn, 3 * sec);
  // No destination: ICMP port unreachable from the VIP quoting the SYN as received (0A).
  REQUIRE(none.kind == verdict_kind::reply);
  CHECK(none.reason() == "port_unreachable");
  const auto& f = none.frame;
  CHECK(eth_dst(f) == client_router_mac);              // back where it came from
  CHECK(std::to_integer<int>(f[15]) == 0xc0);          // TOS
  CHECK(std::to_integer<int>(f[22]) == 64);            // TTL
  CHECK(std::to_integer<int>(f[23]) == 1);             // ICMP
  CHECK(std::to_integer<int>(f[29]) == 100);           // from the VIP
  CHECK(ipv4_dst(f) == "198.18.1.11");
  CHECK(std::to_integer<int>(f[34]) == 3);             // destination unreachable
  CHECK(std::to_integer<int>(f[35]) == 3);             // port unreachable
  CHECK(std::equal(f.begin() + 42, f.end(), syn.begin() + 14));  // the SYN's IP packet, as received
  CHECK(l4lb::test::inet_checksum(f.subspan(34)) == 0);
  // The flow's later segments are not scheduled.
  CHECK(l.send(tcp4("198.18.1.11", 60000, "198.18.0.100", 80, tf::ack), 3 * sec).reason() == "not_schedulable");
}

TEST_CASE("DR over the egress MTU: DF set is answered with frag-needed, DF clear is fragmented") {
  lab l;
  l.must(add_service{service(vip80, "rr")});
  auto s = server("198.18.0.12:80");
  s.mtu = 1280;
  l.must(add_dest{vip80, s});
  const bytes df = packet_builder{}.eth(director_mac, client_router_mac)
                       .ipv4("198.18.1.10", "198.18.0.100", {.dont_frag = true})
                       .tcp(40000, 80, tf::syn)
                       .payload(1400, 1)
                       .build();
  const verdict r = l.send(df, sec);
  REQUIRE(r.kind == verdict_kind::reply);
  CHECK(r.reason() == "too_big");
  CHECK(std::to_integer<int>(r.frame[34]) == 3);
  CHECK(std::to_integer<int>(r.frame[35]) == 4);
  const bytes nodf = packet_builder{}.eth(director_mac, client_router_mac)
                         .ipv4("198.18.1.10", "198.18.0.100")
                         .tcp(40001, 80, tf::syn)
                         .payload(1400, 2)
                         .build();
  const verdict v = l.send(nodf, sec);
  REQUIRE(v.kind == verdict_kind::forward);
  REQUIRE(v.frames.size() == 2);
  CHECK(v.frames[0].size() - 14 <= 1280);
  CHECK(eth_dst(v.frames[1]) == mac_of(ip("198.18.0.12")));
}

TEST_CASE("rr's cursor survives a server being added, as the kernel's does") {
  lab l;
  l.tutorial();
  // Picks so far: .13, then .12; the cursor is on .12 (the list's tail).
  l.send(tcp4("198.18.1.10", 1, "198.18.0.100", 80, tf::syn), sec);
  l.send(tcp4("198.18.1.10", 2, "198.18.0.100", 80, tf::syn), sec);
  l.must(add_dest{vip80, server("198.18.0.11:80")});  // list: .11 .13 .12
  // After .12 the scan wraps to the head: .11, then .13.
  CHECK(eth_dst(l.send(tcp4("198.18.1.10", 3, "198.18.0.100", 80, tf::syn), sec).frame) == mac_of(ip("198.18.0.11")));
  CHECK(eth_dst(l.send(tcp4("198.18.1.10", 4, "198.18.0.100", 80, tf::syn), sec).frame) == mac_of(ip("198.18.0.13")));
}

TEST_CASE("one burst: a flow's second SYN and its ACK find the connection its first SYN made") {
  // The burst is looked up before any of it is decided; the first SYN's insert must be seen by
  // the frames after it (the director skips a second lookup only for keys the burst did not insert).
  lab l;
  l.tutorial();
  std::vector<std::unique_ptr<frame>> held;
  std::vector<forward::frame_buffer> bufs;
  const auto add = [&](std::uint16_t sport, std::uint8_t flags) {
    held.push_back(std::make_unique<frame>(tcp4("198.18.1.10", sport, "198.18.0.100", 80, flags)));
    bufs.push_back(held.back()->buf);
  };
  for (std::uint16_t p = 41000; p < 41020; ++p) add(p, tf::syn);  // other new flows around it
  add(40000, tf::syn);
  for (std::uint16_t p = 41020; p < 41040; ++p) add(p, tf::syn);
  add(40000, tf::syn);  // a retransmission: the same connection
  add(40000, tf::ack);
  std::vector<verdict> out(bufs.size());
  l.d->process_burst(bufs, out, sec);
  for (const verdict& v : out) REQUIRE(v.kind == verdict_kind::forward);
  const std::size_t first = 20, again = 41, ack = 42;
  CHECK(out[again].dest == out[first].dest);
  CHECK(out[ack].dest == out[first].dest);
  CHECK(l.d->table_v4().size() == 41);
  CHECK(l.d->table_v4().stats().refused_exists == 0);
}

TEST_CASE("scheduling entry: TCP without SYN is passed unless sloppy_tcp; RST never schedules") {
  lab l;
  l.tutorial();
  CHECK(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), sec).reason() == "not_schedulable");
  CHECK(l.send(tcp4("198.18.1.10", 40001, "198.18.0.100", 80, tf::syn | tf::rst), sec).reason() == "not_schedulable");
  // A client SYN+ACK is scheduled (0B).
  CHECK(l.send(tcp4("198.18.1.10", 40002, "198.18.0.100", 80, tf::syn | tf::ack), sec).kind == verdict_kind::forward);
  l.must(set_sysctl{"sloppy_tcp", 1});
  CHECK(l.send(tcp4("198.18.1.10", 40003, "198.18.0.100", 80, tf::ack), sec).kind == verdict_kind::forward);
  CHECK(l.send(tcp4("198.18.1.10", 40004, "198.18.0.100", 80, tf::rst), sec).reason() == "not_schedulable");
  const auto rows = l.control.connections(sec);
  bool established = false;
  for (const auto& r : rows) established = established || (r.client.port == 40003 && r.state == "ESTABLISHED");
  CHECK(established);
}

TEST_CASE("packets for no service are passed; ARP is passed; bad ones dropped by name") {
  lab l;
  l.tutorial();
  CHECK(l.send(tcp4("198.18.1.10", 40000, "198.18.0.101", 80, tf::syn), sec).reason() == "no_service");
  CHECK(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 81, tf::syn), sec).reason() == "no_service");
  bytes arp = packet_builder{}.eth(director_mac, client_router_mac).raw(bytes(28), 0x0806).build();
  CHECK(l.send(arp, sec).reason() == "not_ip");
  bytes bad = packet_builder{}.eth(director_mac, client_router_mac)
                  .ipv4("198.18.1.10", "198.18.0.100", {.corrupt_checksum = true})
                  .tcp(40000, 80, tf::syn)
                  .build();
  CHECK(l.send(bad, sec).reason() == "bad_ipv4_header_checksum");
  CHECK(l.send(tcp4("224.0.0.1", 40000, "198.18.0.100", 80, tf::syn), sec).reason() == "martian_source");
  CHECK(l.send(tcp4("127.0.0.1", 40000, "198.18.0.100", 80, tf::syn), sec).reason() == "martian_source");
  CHECK(l.send(tcp4("198.18.0.100", 80, "198.18.0.100", 80, tf::syn), sec).reason() == "land");
  CHECK(l.send(tcp4("198.18.0.1", 40000, "198.18.0.100", 80, tf::syn), sec).reason() == "land");
  bytes frag = packet_builder{}.eth(director_mac, client_router_mac)
                   .ipv4("198.18.1.10", "198.18.0.100", {.more_frags = true})
                   .tcp(40000, 80, tf::syn)
                   .build();
  CHECK(l.send(frag, sec).reason() == "fragment_invalid");  // 20 bytes, not a multiple of 8
  const auto& vc = l.d->verdicts();
  CHECK(vc.passed == 3);
  CHECK(vc.dropped == 6);
  CHECK(vc.dropped_director[static_cast<std::size_t>(director_drop::martian_source)] == 2);
  CHECK(vc.dropped_parse[static_cast<std::size_t>(wire::drop_reason::bad_ipv4_header_checksum)] == 1);
}

TEST_CASE("NAT: requests to the real server's address and port, replies from the VIP, both counted") {
  lab l;
  l.must(add_service{service(vip80, "rr")});
  l.must(add_dest{vip80, server("198.18.0.12:8080", forward_method::masq)});
  const auto h = handle_of(l.control, vip80, "198.18.0.12:8080");
  const bytes syn = tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn);
  const verdict v = l.send(syn, sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.method == forward_method::masq);
  CHECK(ipv4_dst(v.frame) == "198.18.0.12");
  CHECK(be16(v.frame, 36) == 8080);
  CHECK(checksums_ok(v.frame));
  // The reply: 198.18.0.12:8080 -> client, leaves from the VIP toward the client's next hop.
  const bytes synack = packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                           .ipv4("198.18.0.12", "198.18.1.10")
                           .tcp(8080, 40000, tf::syn | tf::ack)
                           .build();
  const verdict r = l.send(synack, sec + 10);
  REQUIRE(r.kind == verdict_kind::forward);
  CHECK(r.to_client);
  CHECK(eth_dst(r.frame) == client_router_mac);
  const auto& f = r.frame;
  CHECK(std::to_integer<int>(f[26]) == 198);
  CHECK(std::to_integer<int>(f[29]) == 100);  // source = 198.18.0.100
  CHECK(std::to_integer<int>(f[34]) * 256 + std::to_integer<int>(f[35]) == 80);
  CHECK(checksums_ok(r.frame));
  const auto st = l.control.dest_stats(h);
  CHECK(st.stats.conns == 1);
  CHECK(st.stats.in_packets == 1);
  CHECK(st.stats.out_packets == 1);
  CHECK(st.stats.in_bytes == syn.size() - 14);  // IP-level bytes
  CHECK(st.stats.out_bytes == synack.size() - 14);
  // Replies moved the connection through the NAT (both directions) table: SYN_RECV.
  CHECK(l.control.connections(sec + 10)[0].state == "SYN_RECV");
}

TEST_CASE("snapshot: is_vip answers as a search of every service address, its filter only skips") {
  lab l;
  std::vector<wire::ip_address> vips;
  for (std::uint32_t k = 0; k < 150; ++k) {  // enough addresses to set most filter bits
    const std::string a4 = "198.18." + std::to_string(20 + k / 200) + "." + std::to_string(k % 200 + 1);
    const std::string a6 = "fd00:100::" + std::to_string(k + 1);
    for (const std::string& a : {a4, a6}) {
      const std::string e = a.find(':') != std::string::npos ? "[" + a + "]:80" : a + ":80";
      l.must(add_service{service(service_key::tcp(ep(e)), "rr")});
      vips.push_back(ip(a.c_str()));
    }
    if (k == 3) {  // and a few only, where most bits are clear
      const auto s = l.control.current();
      CHECK(std::popcount(s->vip_filter) <= 8);
      for (std::size_t j = 0; j < vips.size(); ++j) CHECK(s->is_vip(vips[j].raw(), vips[j].family()));
    }
  }
  const auto s = l.control.current();
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    const bool v4 = i % 2 == 0;
    std::array<std::uint8_t, 16> raw{};
    const std::size_t n = v4 ? 4 : 16;
    for (std::size_t b = 0; b < n; ++b) raw[b] = static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : 0);
    if (v4) raw[0] = 198, raw[1] = 18, raw[2] = static_cast<std::uint8_t>(20 + rng() % 2);
    else raw[0] = 0xfd, raw[1] = 0, raw[2] = 1, raw[3] = 0;
    if (v4 && i % 4 == 0) for (std::size_t b = 4; b < 16; ++b) raw[b] = static_cast<std::uint8_t>(rng());  // past an IPv4 address: ignored
    const wire::ip_family f = v4 ? wire::ip_family::v4 : wire::ip_family::v6;
    const wire::ip_address a = wire::ip_address::from_bytes(f, raw.data());
    const bool listed = std::find(vips.begin(), vips.end(), a) != vips.end();
    CHECK(s->is_vip(raw, f) == listed);
  }
  for (const auto& a : vips) CHECK(s->is_vip(a.raw(), a.family()));
}

TEST_CASE("NAT: a reply's next hop is the client's neighbour entry, else the gateway's, as they change") {
  for (const bool lane : {true, false}) {
    CAPTURE(lane);
    lab l;
    l.d->set_established_fast_lane(lane);
    l.must(add_service{service(vip80, "rr")});
    l.must(add_dest{vip80, server("198.18.0.12:8080", forward_method::masq)});
    REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).kind == verdict_kind::forward);
    const bytes reply = packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                            .ipv4("198.18.0.12", "198.18.1.10")
                            .tcp(8080, 40000, tf::syn | tf::ack)
                            .build();
    std::int64_t now = sec;
    const auto next_hop = [&]() -> std::optional<wire::mac_address> {
      const verdict r = l.send(reply, now += sec);
      if (r.kind != verdict_kind::forward) {
        CHECK(r.reason() == "no_neighbour");
        return std::nullopt;
      }
      CHECK(r.to_client);
      CHECK(eth_dst(r.frame) == r.next_hop);
      return r.next_hop;
    };
    CHECK(next_hop() == client_router_mac);  // no entry for the client: the gateway
    const wire::mac_address other{{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}};
    l.control.set_neighbour(ip("198.18.0.254"), other);  // the gateway's MAC changes
    CHECK(next_hop() == other);
    l.control.set_neighbour(ip("198.18.1.10"), mac_of(ip("198.18.1.10")));  // the client is on-link
    CHECK(next_hop() == mac_of(ip("198.18.1.10")));
    CHECK(l.control.erase_neighbour(ip("198.18.1.10")));
    CHECK(next_hop() == other);
    director_identity id;  // the lab's, with another gateway
    id.mac = director_mac;
    id.addresses = {ip("198.18.0.1"), ip("fd00:198:18::1")};
    id.gateway_v4 = ip("198.18.0.253");  // a gateway with no entry: no next hop
    l.control.set_identity(id);
    CHECK(next_hop() == std::nullopt);
    l.control.set_neighbour(ip("198.18.0.253"), client_router_mac);
    CHECK(next_hop() == client_router_mac);
    id.gateway_v4.reset();  // no gateway at all
    l.control.set_identity(id);
    CHECK(next_hop() == std::nullopt);
  }
}

TEST_CASE("NAT: an ICMP error from the client side follows the connection to the real server") {
  lab l;
  l.must(add_service{service(vip80, "rr")});
  l.must(add_dest{vip80, server("198.18.0.12:8080", forward_method::masq)});
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).kind == verdict_kind::forward);
  // A router tells the VIP that its packet VIP:80 -> client:40000 could not be delivered.
  const packet_builder quoted = packet_builder{}.ipv4("198.18.0.100", "198.18.1.10").tcp(80, 40000, tf::syn | tf::ack);
  const bytes err = frag_needed_to_vip(quoted);
  const verdict v = l.send(err, 2 * sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(ipv4_dst(v.frame) == "198.18.0.12");
  // An error quoting nothing we know, sent to a VIP: dropped (ipvs-notes 0A).
  const packet_builder other = packet_builder{}.ipv4("198.18.0.100", "198.18.1.99").tcp(80, 1, tf::ack);
  const bytes stray = packet_builder{}.eth(director_mac, client_router_mac)
                          .ipv4("198.18.2.1", "198.18.0.100")
                          .icmp(3, 1)
                          .quote(other)
                          .build();
  CHECK(l.send(stray, 2 * sec).reason() == "icmp_unknown_conn");
}

TEST_CASE("TUN: ipip from the director's address; a missing neighbour is a named drop") {
  lab l;
  l.must(add_service{service(vip80, "rr")});
  auto t = server("198.18.0.12:80", forward_method::tunnel);
  l.must(add_dest{vip80, t});
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.method == forward_method::tunnel);
  CHECK(std::to_integer<int>(v.frame[23]) == 4);  // outer protocol IPIP
  CHECK(ipv4_dst(v.frame) == "198.18.0.12");
  CHECK(std::to_integer<int>(v.frame[26]) == 198);
  CHECK(std::to_integer<int>(v.frame[29]) == 1);  // outer source 198.18.0.1
  // A server whose MAC the director does not know.
  l.must(add_dest{vip80, server("198.18.0.20:80", forward_method::route)});
  const verdict n = l.send(tcp4("198.18.1.10", 40001, "198.18.0.100", 80, tf::syn), sec);
  CHECK(n.kind == verdict_kind::drop);
  CHECK(n.reason() == "no_neighbour");
}

TEST_CASE("IPv6: DR and NAT") {
  lab l;
  const auto v6 = service_key::tcp(ep("[fd00:198:18::100]:80"));
  l.must(add_service{service(v6, "rr")});
  l.must(add_dest{v6, server("[fd00:198:18::12]:80", forward_method::masq)});
  const bytes syn = packet_builder{}.eth(director_mac, client_router_mac)
                        .ipv6("fd00:198:18:1::10", "fd00:198:18::100")
                        .tcp(40000, 80, tf::syn)
                        .build();
  const verdict v = l.send(syn, sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(eth_dst(v.frame) == mac_of(ip("fd00:198:18::12")));
  CHECK(std::to_integer<int>(v.frame[14 + 7]) == 63);  // hop limit - 1
  CHECK(std::to_integer<int>(v.frame[14 + 24 + 15]) == 0x12);  // destination ...::12
  CHECK(checksums_ok(v.frame));
  const bytes udp0 = packet_builder{}.eth(director_mac, client_router_mac)
                         .ipv6("fd00:198:18:1::10", "fd00:198:18::100")
                         .udp(1, 53, {.zero_checksum = true})
                         .build();
  CHECK(l.send(udp0, sec).reason() == "ipv6_udp_zero_checksum");
}

TEST_CASE("persistence: one client sticks to one server; the template is listed ASSURED") {
  lab l;
  auto s = service(vip80, "rr");
  s.persistent = true;
  s.persistence_timeout = 360;
  l.must(add_service{s});
  l.must(add_dest{vip80, server("198.18.0.12:80")});
  l.must(add_dest{vip80, server("198.18.0.13:80")});
  const auto first = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec);
  const auto second = l.send(tcp4("198.18.1.10", 40001, "198.18.0.100", 80, tf::syn), sec);
  const auto other = l.send(tcp4("198.18.1.11", 40000, "198.18.0.100", 80, tf::syn), sec);
  CHECK(first.dest == second.dest);
  CHECK(other.dest != first.dest);  // rr advanced once per template
  l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), sec + 1);
  int templates = 0;
  for (const auto& r : l.control.connections(sec + 1))
    if (r.is_template && r.client.address == ip("198.18.1.10")) {
      ++templates;
      CHECK(r.state == "ASSURED");
      CHECK(r.client.port == 0);
    }
  CHECK(templates == 1);
}

TEST_CASE("one-packet scheduling: every datagram scheduled, nothing kept") {
  lab l;
  const auto dns = service_key::udp(ep("198.18.0.100:53"));
  auto s = service(dns, "rr");
  s.one_packet = true;
  l.must(add_service{s});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  l.must(add_dest{dns, server("198.18.0.13:53")});
  const auto a = l.send(udp4("198.18.1.10", 5353, "198.18.0.100", 53), sec);
  const auto b = l.send(udp4("198.18.1.10", 5353, "198.18.0.100", 53), sec);
  CHECK(a.kind == verdict_kind::forward);
  CHECK(a.dest != b.dest);
  CHECK(l.control.connections(sec).empty());
  CHECK(l.control.service_stats(l.control.config().find(dns)->id).stats.conns == 2);
  // And -o is refused on TCP, as ipvsadm refuses it.
  auto bad = service(service_key::tcp(ep("198.18.0.100:81")));
  bad.one_packet = true;
  CHECK(l.control.apply(add_service{bad}) == config_error::one_packet_not_udp);
}

TEST_CASE("fwmark services: picks by mark; a port-0 server gets the packet's own port") {
  lab l;
  const auto fw = service_key::mark(1);
  l.must(add_service{service(fw, "rr")});
  l.must(add_dest{fw, server("198.18.0.11:0", forward_method::masq)});
  const verdict none = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 443, tf::syn), sec);
  CHECK(none.reason() == "no_service");  // no mark
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 443, tf::syn), sec, 1);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(ipv4_dst(v.frame) == "198.18.0.11");
  CHECK(be16(v.frame, 36) == 443);
}

TEST_CASE("a rule set applies as one change or not at all") {
  lab l;
  l.tutorial();
  REQUIRE(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).kind == verdict_kind::forward);
  const auto before = l.control.config();
  const std::uint64_t gen = l.control.generation();
  std::vector<command> cmds{clear_all{},
                            add_service{service(service_key::tcp(ep("198.18.0.100:443")))},
                            add_dest{vip80, server("198.18.0.12:80")}};  // vip80 is gone: fails
  const apply_result r = l.control.apply_all(cmds);
  CHECK(r.error == config_error::no_such_service);
  CHECK(r.failed_index == 2);
  CHECK(l.control.generation() == gen);
  CHECK(l.control.config().services().size() == before.services().size());
  // The live connection still forwards to its server.
  CHECK(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), sec).kind == verdict_kind::forward);
}

TEST_CASE("configuration errors are named and change nothing") {
  director_control c;
  CHECK(c.apply(add_dest{vip80, server("198.18.0.12:80")}) == config_error::no_such_service);
  CHECK(c.apply(add_service{service(vip80, "nope")}) == config_error::unknown_scheduler);
  REQUIRE(c.apply(add_service{service(vip80)}) == config_error::ok);
  CHECK(c.apply(add_service{service(vip80)}) == config_error::service_exists);
  auto heavy = server("198.18.0.12:80");
  heavy.weight = 70000;
  CHECK(c.apply(add_dest{vip80, heavy}) == config_error::bad_weight);
  auto thr = server("198.18.0.12:80");
  thr.lower_threshold = 5;
  CHECK(c.apply(add_dest{vip80, thr}) == config_error::bad_threshold);
  CHECK(c.apply(add_dest{vip80, server("[fd00::12]:80")}) == config_error::family_mismatch);
  REQUIRE(c.apply(add_dest{vip80, server("198.18.0.12:80")}) == config_error::ok);
  CHECK(c.apply(add_dest{vip80, server("198.18.0.12:80")}) == config_error::dest_exists);
  CHECK(c.apply(delete_dest{vip80, ep("198.18.0.13:80")}) == config_error::no_such_dest);
  CHECK(c.apply(set_sysctl{"conn_reuse_mode", 9}) == config_error::bad_sysctl);
  CHECK(c.apply(set_sysctl{"no_such_knob", 1}) == config_error::bad_sysctl);
  auto p0 = service(service_key::tcp(ep("198.18.0.100:0")));
  CHECK(c.apply(add_service{p0}) == config_error::port_zero_not_persistent);
  CHECK(c.config().services().size() == 1);
  CHECK(c.config().services()[0].dests.size() == 1);
}

TEST_CASE("defaults are the kernel's") {
  director_settings s;
  CHECK(s.conn_reuse_mode == 1);
  CHECK_FALSE(s.expire_nodest_conn);
  CHECK_FALSE(s.expire_quiescent_template);
  CHECK_FALSE(s.sloppy_tcp);
  CHECK_FALSE(s.sloppy_sctp);
  CHECK(s.secure_tcp == 0);
  CHECK_FALSE(s.reschedule_syn_to_unavailable_dest);
  service_spec svc;
  CHECK(svc.scheduler == "wlc");
  CHECK(svc.persistence_timeout == 360);
  real_server_spec rs;
  CHECK(rs.method == forward_method::route);
  CHECK(rs.weight == 1);
  conn::timeouts t;
  CHECK(t.tcp_at(conn::tcp_state::established) == 900);
  CHECK(t.tcp_at(conn::tcp_state::fin_wait) == 120);
  CHECK(t.udp == 300);
}

TEST_CASE("rate estimator: IPVS's 2-second EWMA, driven by now") {
  lab l;
  const auto dns = service_key::udp(ep("198.18.0.100:53"));
  l.must(add_service{service(dns, "rr")});
  l.must(add_dest{dns, server("198.18.0.12:53")});
  const bytes q = udp4("198.18.1.10", 5353, "198.18.0.100", 53, "0123456789");  // 38 IP bytes
  // 100 datagrams per second for 90 s: the average converges to 100 pps and 3800 B/s (after
  // 60 s the kernel's EWMA still reads 3799 B/s: (3/4)^30 of the way short).
  for (int s = 0; s < 90; ++s)
    for (int i = 0; i < 100; ++i) l.send(q, static_cast<std::int64_t>(s) * sec + i * (sec / 100));
  l.send(q, 90 * sec);
  const auto st = l.control.service_stats(l.control.config().find(dns)->id);
  CHECK(st.rate.in_pps == 100);
  CHECK(st.rate.in_bps == 3800);
  CHECK(st.rate.cps == 0);  // one UDP connection, made in the first second
  // -Z zeroes counters and rates.
  l.must(zero_counters{});
  l.send(q, 91 * sec);
  const auto z = l.control.service_stats(l.control.config().find(dns)->id);
  CHECK(z.stats.in_packets == 1);
  CHECK(z.rate.in_pps == 0);
}

TEST_CASE("rate_estimator: the kernel's arithmetic") {
  rate_estimator e;
  counters c;
  // One step with 1000 packets in 2 s: avg = (1000 << 9) / 4 = 128000; read = (128000 + 511) >> 10.
  c.in_packets = 1000;
  c.in_bytes = 64000;
  e.step(c);
  CHECK(e.read().in_pps == 125);
  CHECK(e.read().in_bps == (((64000ull << 4) / 4) + 15) >> 5);
  for (int i = 0; i < 50; ++i) {
    c.in_packets += 1000;
    c.in_bytes += 64000;
    e.step(c);
  }
  CHECK(e.read().in_pps == 500);
  CHECK(e.read().in_bps == 32000);
}

TEST_CASE("explain: connection, scheduler decision without moving the cursor, pass reasons") {
  lab l;
  l.tutorial();
  const bytes syn = tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn);
  const explanation before = l.d->explain(syn, sec);
  CHECK(before.kind == verdict_kind::forward);
  CHECK(before.decided_by == explanation::via::scheduler);
  REQUIRE(before.real_server);
  CHECK(before.real_server->address == ip("198.18.0.13"));
  CHECK(before.service == std::optional<std::string>("TCP  198.18.0.100:80 rr"));
  // Asking did not move rr: the real SYN goes where explain said.
  CHECK(eth_dst(l.send(syn, sec).frame) == mac_of(ip("198.18.0.13")));
  const explanation after = l.d->explain(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), sec);
  CHECK(after.decided_by == explanation::via::connection);
  CHECK(after.conn_state == "SYN_RECV");
  CHECK(after.to_text().find("existing connection") != std::string::npos);
  CHECK(l.d->explain(tcp4("198.18.1.10", 1, "198.18.0.100", 80, tf::ack), sec).reason == "not_schedulable");
  CHECK(l.d->explain(tcp4("198.18.1.10", 1, "198.18.0.9", 80, tf::syn), sec).reason == "no_service");
}

TEST_CASE("process_burst: a flow's SYN and ACK in one burst share one connection") {
  lab l;
  l.tutorial();
  std::vector<std::unique_ptr<frame>> fs;
  fs.push_back(std::make_unique<frame>(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn)));
  fs.push_back(std::make_unique<frame>(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack)));
  fs.push_back(std::make_unique<frame>(tcp4("198.18.1.11", 40000, "198.18.0.100", 80, tf::syn)));
  std::vector<forward::frame_buffer> bufs;
  for (auto& f : fs) bufs.push_back(f->buf);
  std::vector<verdict> out(3);
  l.d->process_burst(bufs, out, sec);
  CHECK(out[0].kind == verdict_kind::forward);
  CHECK(out[1].dest == out[0].dest);
  CHECK(out[2].dest != out[0].dest);
  CHECK(l.control.connections(sec).size() == 2);
}
}

TEST_SUITE("director") {
TEST_CASE("IPv4 Record Route gets the VIP on DR and NAT; other options pass unchanged") {
  lab l;
  l.tutorial();
  // RR with room for two addresses: 07 0b 04 + 8 zero bytes, then an end-of-list pad.
  const bytes rr = l4lb::test::hex_bytes("07 0b 04 00 00 00 00 00 00 00 00 00");
  const bytes f = packet_builder{}.eth(director_mac, client_router_mac)
                      .ipv4("198.18.1.10", "198.18.0.100", {.options = rr})
                      .tcp(40000, 80, tf::syn)
                      .build();
  const verdict v = l.send(f, sec);
  REQUIRE(v.kind == verdict_kind::forward);
  const auto o = v.frame.subspan(14 + 20, 12);
  CHECK(std::to_integer<int>(o[2]) == 8);  // pointer advanced by 4
  CHECK(std::to_integer<int>(o[3]) == 198);
  CHECK(std::to_integer<int>(o[4]) == 18);
  CHECK(std::to_integer<int>(o[5]) == 0);
  CHECK(std::to_integer<int>(o[6]) == 100);  // the VIP recorded
  CHECK(checksums_ok(v.frame));
  // Router Alert (148, length 4) passes as it was.
  const bytes ra = l4lb::test::hex_bytes("94 04 00 00");
  const bytes g = packet_builder{}.eth(director_mac, client_router_mac)
                      .ipv4("198.18.1.10", "198.18.0.100", {.options = ra})
                      .tcp(40001, 80, tf::syn)
                      .build();
  const verdict w = l.send(g, sec);
  REQUIRE(w.kind == verdict_kind::forward);
  CHECK(std::equal(w.frame.begin() + 34, w.frame.begin() + 38, ra.begin()));
  CHECK(checksums_ok(w.frame));
}
}

TEST_SUITE("director") {
TEST_CASE("FullNAT: local address and port toward the server, replies found by them, port freed") {
  director_config cfg = lab::small();
  cfg.full_nat = true;
  lab l(cfg);
  add_full_nat_service(l);
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(v.method == forward_method::full_nat);
  CHECK(ipv4_dst(v.frame) == "198.18.0.12");
  CHECK(std::to_integer<int>(v.frame[29]) == 1);  // source 198.18.0.1
  const int lport = be16(v.frame, 34);
  CHECK(lport >= 1024);
  CHECK(be16(v.frame, 36) == 8080);
  CHECK(checksums_ok(v.frame));
  // The server answers the local endpoint; the client gets it from the VIP.
  const bytes synack = packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                           .ipv4("198.18.0.12", "198.18.0.1")
                           .tcp(8080, static_cast<std::uint16_t>(lport), tf::syn | tf::ack)
                           .build();
  const verdict r = l.send(synack, sec + 1);
  REQUIRE(r.kind == verdict_kind::forward);
  CHECK(r.to_client);
  CHECK(ipv4_dst(r.frame) == "198.18.1.10");
  CHECK(std::to_integer<int>(r.frame[29]) == 100);
  CHECK(be16(r.frame, 36) == 40000);
  CHECK(checksums_ok(r.frame));
  // A second client gets another port.
  const verdict v2 = l.send(tcp4("198.18.1.11", 40000, "198.18.0.100", 80, tf::syn), sec);
  REQUIRE(v2.kind == verdict_kind::forward);
  CHECK(std::to_integer<int>(v2.frame[34]) * 256 + std::to_integer<int>(v2.frame[35]) != lport);
  // Once the connection is gone its port answers nothing.
  l.d->expire_all(sec + 200 * sec);
  CHECK(l.send(synack, sec + 200 * sec).reason() == "no_service");
  // Without director_config::full_nat such servers are a named drop.
  lab plain;
  plain.must(add_service{service(vip80, "rr")});
  plain.must(add_dest{vip80, full_nat_server()});
  CHECK(plain.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec).reason() == "method_unsupported");
}

TEST_CASE("nat_reply_index off: DR and TUN work, masq servers are a named drop, the tables are smaller") {
  director_config cfg = lab::small();
  cfg.nat_reply_index = false;
  lab l(cfg);
  lab with;  // the default: the index is there
  const director_memory m = l.d->memory();
  const director_memory w = with.d->memory();
  CHECK(m.conn_v4.nat_index == 0);
  CHECK(m.conn_v6.nat_index == 0);
  CHECK(w.conn_v4.nat_index > 0);
  CHECK(w.connections() - m.connections() == w.conn_v4.nat_index + w.conn_v6.nat_index);
  // memory_bytes() is every part: the tables, the reassembly pool, the buffers, per-server state.
  CHECK(m.fragments == l.d->fragment_state().memory_bytes());
  CHECK(m.buffers > 0);
  CHECK(m.servers > 0);
  CHECK(l.d->memory_bytes() == m.connections() + m.fragments + m.buffers + m.servers);
  l.tutorial();
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec);
  REQUIRE(v.kind == verdict_kind::forward);
  CHECK(l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::ack), sec + 1).kind == verdict_kind::forward);
  // A masq service on the same director: its new connections drop as method_unsupported and
  // leave no connection behind.
  const auto vip81 = service_key::tcp(ep("198.18.0.100:81"));
  l.must(add_service{service(vip81, "rr")});
  l.must(add_dest{vip81, server("198.18.0.12:8080", forward_method::masq)});
  const std::uint32_t before = l.d->table_v4().size();
  CHECK(l.send(tcp4("198.18.1.10", 40001, "198.18.0.100", 81, tf::syn), sec + 2).reason() == "method_unsupported");
  CHECK(l.d->table_v4().size() == before);
  // The default director takes the same masq service.
  with.must(add_service{service(vip81, "rr")});
  with.must(add_dest{vip81, server("198.18.0.12:8080", forward_method::masq)});
  CHECK(with.send(tcp4("198.18.1.10", 40001, "198.18.0.100", 81, tf::syn), sec + 2).kind == verdict_kind::forward);
}

TEST_CASE("FullNAT: ICMP errors follow the connection both ways, rewritten outside and in the quote") {
  director_config cfg = lab::small();
  cfg.full_nat = true;
  lab l(cfg);
  add_full_nat_service(l);
  const verdict v = l.send(tcp4("198.18.1.10", 40000, "198.18.0.100", 80, tf::syn), sec);
  REQUIRE(v.kind == verdict_kind::forward);
  const auto lport = static_cast<std::uint16_t>(be16(v.frame, 34));
  // The server side: a router near the server says local:lport -> server:8080 needs fragmenting.
  const packet_builder to_server = packet_builder{}.ipv4("198.18.0.1", "198.18.0.12").tcp(lport, 8080, tf::ack);
  const bytes from_server = packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                                .ipv4("198.18.0.12", "198.18.0.1")
                                .icmp(3, 4, 1400)
                                .quote(to_server)
                                .build();
  const verdict r = l.send(from_server, 2 * sec);
  REQUIRE(r.kind == verdict_kind::forward);
  CHECK(r.to_client);
  CHECK(ipv4_dst(r.frame) == "198.18.1.10");
  CHECK(std::to_integer<int>(r.frame[29]) == 100);  // from the VIP
  // The quote now reads client:40000 -> VIP:80 (ICMP header at 34, quoted IPv4 at 42).
  CHECK(std::to_integer<int>(r.frame[42 + 15]) == 10);   // quoted source 198.18.1.10
  CHECK(std::to_integer<int>(r.frame[42 + 19]) == 100);  // quoted destination 198.18.0.100
  CHECK(be16(r.frame, 62) == 40000);
  CHECK(be16(r.frame, 64) == 80);
  CHECK(checksums_ok(r.frame));
  // The client side: a router tells the VIP that VIP:80 -> client:40000 could not be delivered;
  // the server gets it from the connection's local endpoint, quoting server:8080 -> local:lport.
  const packet_builder to_client = packet_builder{}.ipv4("198.18.0.100", "198.18.1.10").tcp(80, 40000, tf::ack);
  const bytes from_client_side = frag_needed_to_vip(to_client);
  const verdict c = l.send(from_client_side, 2 * sec);
  REQUIRE(c.kind == verdict_kind::forward);
  CHECK(ipv4_dst(c.frame) == "198.18.0.12");
  CHECK(std::to_integer<int>(c.frame[29]) == 1);  // from the local address
  CHECK(std::to_integer<int>(c.frame[42 + 15]) == 12);  // quoted source: the real server
  CHECK(std::to_integer<int>(c.frame[42 + 19]) == 1);   // quoted destination: the local address
  CHECK(be16(c.frame, 62) == 8080);
  CHECK(be16(c.frame, 64) == lport);
  CHECK(checksums_ok(c.frame));
  // An error quoting a local port nobody holds is not a connection's.
  const packet_builder stray = packet_builder{}.ipv4("198.18.0.1", "198.18.0.12").tcp(static_cast<std::uint16_t>(lport + 3), 8080, tf::ack);
  const bytes e = packet_builder{}.eth(director_mac, mac_of(ip("198.18.0.12")))
                      .ipv4("198.18.0.12", "198.18.0.1").icmp(3, 4, 1400).quote(stray).build();
  CHECK(l.send(e, 2 * sec).kind != verdict_kind::forward);
}

TEST_CASE("FullNAT: a director with a port share gives out only the ports of its share") {
  for (const std::uint16_t index : {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{2}}) {
    director_config cfg = lab::small();
    cfg.full_nat = true;
    cfg.full_nat_port_share_count = 3;
    cfg.full_nat_port_share_index = index;
    lab l(cfg);
    add_full_nat_service(l);
    for (int c = 0; c < 40; ++c) {
      const verdict v = l.send(tcp4("198.18.1.10", static_cast<std::uint16_t>(40000 + c), "198.18.0.100", 80, tf::syn), sec);
      REQUIRE(v.kind == verdict_kind::forward);
      const int lport = be16(v.frame, 34);
      CHECK(lport >= 1024);
      CHECK(lport % 3 == index);
    }
  }
}
}

TEST_SUITE("director") {
TEST_CASE("all_seen: a change is in effect once every director has taken its snapshot up") {
  lab l;
  class director second(l.control, lab::small());
  l.must(add_service{service(vip80, "rr")});
  const std::uint64_t g = l.control.generation();
  CHECK_FALSE(l.control.all_seen(g));
  verdict none;
  l.d->process_burst({}, std::span<verdict>(&none, 0), sec);  // an idle worker's empty burst
  CHECK_FALSE(l.control.all_seen(g));
  second.process_burst({}, std::span<verdict>(&none, 0), sec);
  CHECK(l.control.all_seen(g));
  CHECK_FALSE(l.control.all_seen(g + 1));
}
}
