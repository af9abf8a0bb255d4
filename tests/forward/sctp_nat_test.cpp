// NAT and FullNAT of SCTP: byte-exact rewrites (ports like TCP/UDP, then the CRC32c recomputed over
// the whole SCTP packet, as ip_vs_proto_sctp.c does), checked against a bit-at-a-time CRC32c
// written here; round trips; ICMP errors quoting SCTP (quoted ports rewritten, quoted CRC left as
// ip_vs_nat_icmp leaves it); refusals that leave the frame alone; and tshark's own CRC32c check
// of the rewritten frames, which settles the byte order of the checksum field.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "forward/forward_test_support.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/wire/crc32c.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;
using forward::forward_error;

namespace {

// ---- an independent CRC32c ---------------------------------------------------------------------

// RFC 9260 Appendix A read literally: preset all ones, least significant bit first, reflected
// Castagnoli polynomial 0x82F63B78, result inverted; the checksum field counts as zero.
std::uint32_t ref_sctp_crc(std::span<const std::byte> sctp) {
  std::uint32_t r = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < sctp.size(); ++i) {
    r ^= (i >= 8 && i < 12) ? 0u : std::to_integer<std::uint32_t>(sctp[i]);
    for (int k = 0; k < 8; ++k) r = (r & 1u) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
  }
  return ~r;
}
// The field as sent: least significant byte first (include/net/sctp/checksum.h: cpu_to_le32).
std::uint32_t field_value(std::span<const std::byte> sctp) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(sctp[8 + i]) << (8 * i);
  return v;
}
bool ref_crc_ok(std::span<const std::byte> sctp) { return field_value(sctp) == ref_sctp_crc(sctp); }
void put_ref_crc(bytes& frame, std::size_t sctp_off) {
  const std::uint32_t c = ref_sctp_crc(std::span<const std::byte>(frame).subspan(sctp_off));
  for (std::size_t i = 0; i < 4; ++i) frame[sctp_off + 8 + i] = static_cast<std::byte>(c >> (8 * i));
}

// ---- fixtures ------------------------------------------------------------------------------------

constexpr std::size_t sctp4 = 14 + 20;  // SCTP header offset in an untagged IPv4 frame
constexpr std::size_t sctp6 = 14 + 40;

// INIT (RFC 9260 section 3.3.2): initiate tag 0x01020304, a_rwnd 65536, 10 streams each way,
// initial TSN 0x11223344; no parameters. Sent with verification tag 0.
const bytes init_chunk = hex_bytes("01 00 00 14 01 02 03 04 00 01 00 00 00 0a 00 0a 11 22 33 44");
// INIT ACK with a 4-byte State Cookie parameter (type 7), tagged with the client's initiate tag.
const bytes init_ack_chunk =
    hex_bytes("02 00 00 1c 0a 0b 0c 0d 00 01 00 00 00 0a 00 0a 55 66 77 88 00 07 00 08 c0 ff ee 00");
// DATA (B and E flags), TSN 1, stream 0, SSN 0, PPID 0, "hello" padded to a multiple of 4.
const bytes data_chunk = hex_bytes("00 03 00 15 00 00 00 01 00 00 00 00 00 00 00 00 68 65 6c 6c 6f 00 00 00");

constexpr std::uint16_t cport = 40000, vport = 3868, rport = 13868;  // Diameter over SCTP, moved

forward::nat_connection conn4() {
  return {wire::endpoint{ip("198.18.0.2"), cport}, wire::endpoint{ip("198.18.0.100"), vport},
          wire::endpoint{ip("198.18.0.11"), rport}};
}
forward::nat_connection conn6() {
  return {wire::endpoint{ip("fd00:198:18::2"), cport}, wire::endpoint{ip("fd00:198:18::100"), vport},
          wire::endpoint{ip("fd00:198:18::11"), rport}};
}

// The builder leaves SCTP's checksum 0; the inputs get theirs from the library under test (its
// correctness is crc32c_test's business and is re-checked here with the reference).
bytes with_crc(bytes frame, std::size_t sctp_off) {
  REQUIRE(wire::store_sctp_checksum(std::span<std::byte>(frame).subspan(sctp_off)));
  REQUIRE(ref_crc_ok(std::span<const std::byte>(frame).subspan(sctp_off)));
  return frame;
}
// Expected outputs get theirs from the reference only.
bytes with_ref_crc(bytes frame, std::size_t sctp_off) {
  put_ref_crc(frame, sctp_off);
  return frame;
}

template <class F>
bytes run(const bytes& in, F&& f) {
  guarded_frame g(in, 8, 8);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto r = f(g.buf, *pkt);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::forward);
  CHECK(g.guard_damage(r->frame, in.size()) == 0);
  return to_bytes(r->frame);
}

/// Offsets where two equal-length frames differ.
std::vector<std::size_t> differing(const bytes& a, const bytes& b) {
  REQUIRE(a.size() == b.size());
  std::vector<std::size_t> d;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) d.push_back(i);
  return d;
}
struct field {
  std::size_t off, len;
};
bool inside(std::size_t i, std::initializer_list<field> fs) {
  for (auto f : fs)
    if (i >= f.off && i < f.off + f.len) return true;
  return false;
}
bool field_changed(const bytes& a, const bytes& b, field f) {
  for (std::size_t i = f.off; i < f.off + f.len; ++i)
    if (a[i] != b[i]) return true;
  return false;
}

bytes mirror_v4_sctp(const bytes& frame) {
  // Swap addresses and ports (as the peer would answer), CRC by the reference.
  bytes r = frame;
  for (std::size_t i = 0; i < 4; ++i) std::swap(r[26 + i], r[30 + i]);
  for (std::size_t i = 0; i < 2; ++i) std::swap(r[sctp4 + i], r[sctp4 + 2 + i]);
  put_ref_crc(r, sctp4);
  return r;
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("nat_inbound: IPv4 SCTP INIT, byte for byte") {
  // Hand-assembled (checked with a separate bitwise CRC32c and with tshark): client
  // 198.18.0.2:40000 -> VIP .100:3868, DF, ID 0x1234, TTL 64, vtag 0, the INIT above.
  // CRC32c 0x35B804F5, sent f5 04 b8 35.
  const bytes in = hex_bytes(
      "02 00 c6 12 00 fe 02 00 c6 12 00 02 08 00 45 00 00 34 12 34 40 00 40 84 9b 87 c6 12 00 02"
      "c6 12 00 64 9c 40 0f 1c 00 00 00 00 f5 04 b8 35 01 00 00 14 01 02 03 04 00 01 00 00 00 0a"
      "00 0a 11 22 33 44");
  REQUIRE(ref_crc_ok(std::span<const std::byte>(in).subspan(sctp4)));
  CHECK(in == with_crc(packet_builder{}.eth(director_mac, client_mac)
                           .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x1234, .dont_frag = true})
                           .sctp(cport, vport, 0)
                           .payload(init_chunk)
                           .build(),
                       sctp4));
  // Rules (ip_vs_proto_sctp.c sctp_dnat_handler, ipvs-notes 4.1): destination .100 -> .11, port
  // 3868 -> 13868 (0x0f1c -> 0x362c), TTL 64 -> 63; IP checksum 0x9b87 + 0x100 (TTL) + 0x59
  // (address) = 0x9ce0; ID, DF, vtag and the chunk unchanged; the CRC32c recomputed over the
  // SCTP packet with the new port: 0xB2DF2806, sent 06 28 df b2. MACs toward the real server.
  const bytes expected = hex_bytes(
      "02 00 c6 12 00 0b 02 00 c6 12 00 fe 08 00 45 00 00 34 12 34 40 00 3f 84 9c e0 c6 12 00 02"
      "c6 12 00 0b 9c 40 36 2c 00 00 00 00 06 28 df b2 01 00 00 14 01 02 03 04 00 01 00 00 00 0a"
      "00 0a 11 22 33 44");
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(), to_real()); });
  CHECK(to_hex(out) == to_hex(expected));
  CHECK(ref_crc_ok(std::span<const std::byte>(out).subspan(sctp4)));
  // Nothing outside these fields differs from the input; each of them does.
  const std::initializer_list<field> may = {{0, 12}, {22, 1}, {24, 2}, {30, 4}, {36, 2}, {42, 4}};
  for (std::size_t i : differing(in, out)) CHECK_MESSAGE(inside(i, may), "byte " << i << " changed");
  for (field f : may) CHECK(field_changed(in, out, f));
}

TEST_CASE("nat_outbound: IPv4 SCTP INIT ACK from the real server gets the VIP's source") {
  const bytes in = with_crc(packet_builder{}.eth(director_mac, real_mac)
                                .ipv4("198.18.0.11", "198.18.0.2", {.ident = 0x4321, .dont_frag = true})
                                .sctp(rport, cport, 0x01020304)
                                .payload(init_ack_chunk)
                                .build(),
                            sctp4);
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_outbound(b, p, conn4(), to_client()); });
  // ip_vs_proto_sctp.c sctp_snat_handler: source -> VIP:3868, CRC32c recomputed; TTL 63, ID kept.
  const bytes expected = with_ref_crc(packet_builder{}.eth(client_mac, director_mac)
                                          .ipv4("198.18.0.100", "198.18.0.2", {.ttl = 63, .ident = 0x4321, .dont_frag = true})
                                          .sctp(vport, cport, 0x01020304)
                                          .payload(init_ack_chunk)
                                          .build(),
                                      sctp4);
  CHECK(to_hex(out) == to_hex(expected));
  const std::initializer_list<field> may = {{0, 12}, {22, 1}, {24, 2}, {26, 4}, {34, 2}, {42, 4}};
  for (std::size_t i : differing(in, out)) CHECK_MESSAGE(inside(i, may), "byte " << i << " changed");
  CHECK(field_changed(in, out, {42, 4}));
}

TEST_CASE("nat: IPv6 SCTP both ways, behind a destination options header") {
  // With an 8-byte extension header the SCTP header starts at 14 + 40 + 8.
  const std::size_t off = sctp6 + 8;
  const bytes in = with_crc(packet_builder{}.eth(director_mac, client_mac)
                                .ipv6("fd00:198:18::2", "fd00:198:18::100", {.flow_label = 0x12345})
                                .dest_opts(8)
                                .sctp(cport, vport, 0xa1b2c3d4)
                                .payload(data_chunk)
                                .build(),
                            off);
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn6(), to_real()); });
  // Destination ::100 -> ::11 and port -> 13868, hop limit 63, flow label and the extension header
  // kept; no IPv6 header checksum; CRC32c recomputed.
  const bytes expected = with_ref_crc(packet_builder{}.eth(real_mac, director_mac)
                                          .ipv6("fd00:198:18::2", "fd00:198:18::11", {.hop_limit = 63, .flow_label = 0x12345})
                                          .dest_opts(8)
                                          .sctp(cport, rport, 0xa1b2c3d4)
                                          .payload(data_chunk)
                                          .build(),
                                      off);
  CHECK(to_hex(out) == to_hex(expected));
  const std::initializer_list<field> may = {{0, 12}, {21, 1}, {38, 16}, {off + 2, 2}, {off + 8, 4}};
  for (std::size_t i : differing(in, out)) CHECK_MESSAGE(inside(i, may), "byte " << i << " changed");

  const bytes reply = with_crc(packet_builder{}.eth(director_mac, real_mac)
                                   .ipv6("fd00:198:18::11", "fd00:198:18::2")
                                   .sctp(rport, cport, 0x0a0b0c0d)
                                   .payload(data_chunk)
                                   .build(),
                               sctp6);
  auto back = run(reply, [&](auto& b, auto& p) { return forward::nat_outbound(b, p, conn6(), to_client()); });
  const bytes expected_back = with_ref_crc(packet_builder{}.eth(client_mac, director_mac)
                                               .ipv6("fd00:198:18::100", "fd00:198:18::2", {.hop_limit = 63})
                                               .sctp(vport, cport, 0x0a0b0c0d)
                                               .payload(data_chunk)
                                               .build(),
                                           sctp6);
  CHECK(to_hex(back) == to_hex(expected_back));
}

TEST_CASE("nat: the CRC covers the IP payload only, not Ethernet padding") {
  // COOKIE ACK: 20 + 12 + 4 = 36 IP bytes, a 50-byte frame padded to the 60-byte minimum with
  // non-zero junk. The output frame ends where the IP packet does.
  bytes in = with_crc(packet_builder{}.eth(director_mac, client_mac)
                          .ipv4("198.18.0.2", "198.18.0.100", {.ident = 7})
                          .sctp(cport, vport, 0x0a0b0c0d)
                          .payload(hex_bytes("0b 00 00 04"))
                          .build(),
                      sctp4);
  REQUIRE(in.size() == 50);
  in.resize(60, std::byte{0xee});
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(), to_real()); });
  const bytes expected = with_ref_crc(packet_builder{}.eth(real_mac, director_mac)
                                          .ipv4("198.18.0.2", "198.18.0.11", {.ttl = 63, .ident = 7})
                                          .sctp(cport, rport, 0x0a0b0c0d)
                                          .payload(hex_bytes("0b 00 00 04"))
                                          .build(),
                                      sctp4);
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat: SCTP round trips restore the original bytes") {
  const bytes p = with_crc(packet_builder{}.eth(director_mac, client_mac)
                               .ipv4("198.18.0.2", "198.18.0.100", {.ident = 99})
                               .sctp(cport, vport, 0x55aa55aa)
                               .payload(data_chunk)
                               .build(),
                           sctp4);
  const auto conn = conn4();
  SUBCASE("inbound, then the inverse translation, TTL and MACs untouched: identical bytes") {
    forward::nat_config cfg;
    cfg.rewrite_l2 = false;
    cfg.decrement_ttl = false;
    auto there = run(p, [&](auto& b, auto& v) { return forward::nat_inbound(b, v, conn, cfg); });
    CHECK(there != p);
    CHECK(ref_crc_ok(std::span<const std::byte>(there).subspan(sctp4)));
    auto back = run(there, [&](auto& b, auto& v) {
      return forward::detail::nat_translate(b, v, conn.client, conn.real, nullptr, &conn.vip, cfg, {});
    });
    CHECK(to_hex(back) == to_hex(p));
  }
  SUBCASE("the real server answers the translated packet; the client gets the mirror of its own") {
    auto there = run(p, [&](auto& b, auto& v) { return forward::nat_inbound(b, v, conn, to_real()); });
    auto key = wire::parse(there)->key();
    CHECK(key.src() == conn.client);
    CHECK(key.dst() == conn.real);
    const bytes answer = mirror_v4_sctp(there);  // real:13868 -> client:40000, valid CRC
    auto back = run(answer, [&](auto& b, auto& v) { return forward::nat_outbound(b, v, conn, to_client()); });
    // What the client sees is its own packet mirrored (VIP:3868 -> client:40000), every SCTP
    // byte including the CRC, with TTL 62 after two hops through the director.
    const bytes want = mirror_v4_sctp(p);
    CHECK(to_hex(std::span<const std::byte>(back).subspan(26)) == to_hex(std::span<const std::byte>(want).subspan(26)));
    CHECK(std::to_integer<int>(back[22]) == 62);
    CHECK(ref_crc_ok(std::span<const std::byte>(back).subspan(sctp4)));
  }
}

TEST_CASE("full_nat: SCTP through a local endpoint, both ways, with ports from the pool") {
  auto pool = forward::full_nat_port_pool::make({{ip("198.18.0.254")}, 2000, 2001});
  REQUIRE(pool);
  // SCTP has its own ports per local address (a TCP allocation does not consume them).
  auto tcp_local = pool->allocate(wire::ip_proto::tcp, wire::ip_family::v4, 0);
  REQUIRE(tcp_local);
  auto local = pool->allocate(wire::ip_proto::sctp, wire::ip_family::v4, 0);
  REQUIRE(local);
  CHECK(*local == ep("198.18.0.254:2000"));
  CHECK(pool->used(wire::ip_proto::sctp, 0) == 1);
  forward::full_nat_connection conn{ep("198.18.0.2:40000"), ep("198.18.0.100:3868"), *local, ep("198.18.0.11:13868")};
  const bytes in = with_crc(packet_builder{}.eth(director_mac, client_mac)
                                .ipv4("198.18.0.2", "198.18.0.100", {.ident = 5})
                                .sctp(cport, vport, 0)
                                .payload(init_chunk)
                                .build(),
                            sctp4);
  auto there = run(in, [&](auto& b, auto& p) { return forward::full_nat_inbound(b, p, conn, to_real()); });
  const bytes expected = with_ref_crc(packet_builder{}.eth(real_mac, director_mac)
                                          .ipv4("198.18.0.254", "198.18.0.11", {.ttl = 63, .ident = 5})
                                          .sctp(2000, rport, 0)
                                          .payload(init_chunk)
                                          .build(),
                                      sctp4);
  CHECK(to_hex(there) == to_hex(expected));
  const bytes reply = with_crc(packet_builder{}.eth(director_mac, real_mac)
                                   .ipv4("198.18.0.11", "198.18.0.254", {.ident = 6})
                                   .sctp(rport, 2000, 0x01020304)
                                   .payload(init_ack_chunk)
                                   .build(),
                               sctp4);
  auto back = run(reply, [&](auto& b, auto& p) { return forward::full_nat_outbound(b, p, conn, to_client()); });
  const bytes expected_back = with_ref_crc(packet_builder{}.eth(client_mac, director_mac)
                                               .ipv4("198.18.0.100", "198.18.0.2", {.ttl = 63, .ident = 6})
                                               .sctp(vport, cport, 0x01020304)
                                               .payload(init_ack_chunk)
                                               .build(),
                                           sctp4);
  CHECK(to_hex(back) == to_hex(expected_back));
  CHECK(pool->release(wire::ip_proto::sctp, *local));
}

TEST_CASE("nat_inbound: ICMP frag-needed quoting an SCTP reply; the quoted CRC stays as it was") {
  // A router on the client's side reports (3/4, next-hop MTU 1400) on a packet VIP -> client.
  const bytes quoted = with_crc(packet_builder{}
                                    .ipv4("198.18.0.100", "198.18.0.2", {.ttl = 63, .ident = 0x0abc, .dont_frag = true})
                                    .sctp(vport, cport, 0x01020304)
                                    .payload(data_chunk)
                                    .build(),
                                20);
  const bytes in = packet_builder{}.eth(director_mac, client_mac)
                       .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x0101})
                       .icmp(3, 4, 1400)
                       .payload(quoted)
                       .build();
  // Expected (ip_vs_core.c ip_vs_nat_icmp; ipvs-notes 0A): outer destination .11, TTL 63; in the
  // quote, source .11:13868 with its IP checksum recomputed, TTL 63 as it was, and the SCTP
  // checksum bytes exactly as received (no longer matching the quoted packet); the ICMP checksum
  // valid over the new message (the builder's own sum).
  bytes exp_quote = packet_builder{}
                        .ipv4("198.18.0.11", "198.18.0.2", {.ttl = 63, .ident = 0x0abc, .dont_frag = true})
                        .sctp(rport, cport, 0x01020304)
                        .payload(data_chunk)
                        .build();
  for (std::size_t i = 28; i < 32; ++i) exp_quote[i] = quoted[i];
  const bytes expected = packet_builder{}.eth(real_mac, director_mac)
                             .ipv4("198.18.0.2", "198.18.0.11", {.ttl = 63, .ident = 0x0101})
                             .icmp(3, 4, 1400)
                             .payload(exp_quote)
                             .build();
  for (bool keep : {false, true}) {
    CAPTURE(keep);
    auto cfg = to_real();
    cfg.keep_quoted_l4_checksum = keep;  // TCP/UDP option; SCTP's CRC is left either way
    auto out = run(in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(), cfg); });
    CHECK(to_hex(out) == to_hex(expected));
    CHECK(wire::checksum_accumulator{}.add(std::span<const std::byte>(out).subspan(34)).verifies());
    CHECK_FALSE(ref_crc_ok(std::span<const std::byte>(out).subspan(34 + 8 + 20)));  // as IPVS leaves it
  }
  // An RFC 792 minimal quote (IP header + 8 bytes: ports and vtag, no CRC) is rewritten the same.
  const bytes short_in = packet_builder{}.eth(director_mac, client_mac)
                             .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x0101})
                             .icmp(3, 4, 1400)
                             .quote(packet_builder{}.ipv4("198.18.0.100", "198.18.0.2", {.ttl = 63}).sctp(vport, cport, 7), 28)
                             .build();
  const bytes short_expected = packet_builder{}.eth(real_mac, director_mac)
                                   .ipv4("198.18.0.2", "198.18.0.11", {.ttl = 63, .ident = 0x0101})
                                   .icmp(3, 4, 1400)
                                   .quote(packet_builder{}.ipv4("198.18.0.11", "198.18.0.2", {.ttl = 63}).sctp(rport, cport, 7), 28)
                                   .build();
  auto out = run(short_in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn4(), to_real()); });
  CHECK(to_hex(out) == to_hex(short_expected));
}

TEST_CASE("nat_outbound: ICMPv6 error from the real server quoting SCTP") {
  const bytes quoted = with_crc(packet_builder{}
                                    .ipv6("fd00:198:18::2", "fd00:198:18::11", {.hop_limit = 63})
                                    .sctp(cport, rport, 0x0a0b0c0d)
                                    .payload(data_chunk)
                                    .build(),
                                40);
  const bytes in = packet_builder{}.eth(director_mac, real_mac)
                       .ipv6("fd00:198:18::11", "fd00:198:18::2")
                       .icmp(1, 4)
                       .payload(quoted)
                       .build();
  bytes exp_quote = packet_builder{}
                        .ipv6("fd00:198:18::2", "fd00:198:18::100", {.hop_limit = 63})
                        .sctp(cport, vport, 0x0a0b0c0d)
                        .payload(data_chunk)
                        .build();
  for (std::size_t i = 48; i < 52; ++i) exp_quote[i] = quoted[i];
  // Outer source -> VIP6 (the message now comes from the service), quote destination -> VIP6:3868,
  // quoted CRC as received, ICMPv6 checksum over the new pseudo-header (builder's own sum).
  const bytes expected = packet_builder{}.eth(client_mac, director_mac)
                             .ipv6("fd00:198:18::100", "fd00:198:18::2", {.hop_limit = 63})
                             .icmp(1, 4)
                             .payload(exp_quote)
                             .build();
  auto out = run(in, [&](auto& b, auto& p) { return forward::nat_outbound(b, p, conn6(), to_client()); });
  CHECK(to_hex(out) == to_hex(expected));
}

TEST_CASE("nat: SCTP refusals are named and leave the frame alone") {
  auto check_refused = [](const bytes& in, std::size_t headroom, auto f, forward_error want) {
    guarded_frame g(in, headroom, 8);
    auto pkt = wire::parse(g.buf.frame());
    REQUIRE(pkt);
    auto r = f(g.buf, *pkt);
    REQUIRE_FALSE(r);
    CHECK(r.error() == want);
    CHECK(to_bytes(g.buf.frame()) == in);
  };
  const auto conn = conn4();
  auto in = [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn, to_real()); };
  auto sctp_frame = [](std::uint16_t sp, ipv4_options o) {
    return with_crc(packet_builder{}.eth(director_mac, client_mac)
                        .ipv4("198.18.0.2", "198.18.0.100", o)
                        .sctp(sp, vport, 9)
                        .payload(data_chunk)
                        .build(),
                    sctp4);
  };
  // Another client port: not this association.
  check_refused(sctp_frame(40001, {}), 8, in, forward_error::flow_mismatch);
  // TTL 1.
  check_refused(sctp_frame(cport, {.ttl = 1}), 8, in, forward_error::ttl_exceeded);
  // A first fragment: IPVS works on reassembled packets, and the CRC covers all fragments.
  check_refused(sctp_frame(cport, {.more_frags = true}), 8, in, forward_error::fragmented);
  // Two VLAN tags to push with 3 bytes of headroom: refused before anything (CRC included) is written.
  auto tagged = to_real();
  tagged.l2.vlan.policy = forward::vlan_policy::replace;
  tagged.l2.vlan.count = 2;
  tagged.l2.vlan.tags[0] = {0x88a8, 200};
  tagged.l2.vlan.tags[1] = {0x8100, 300};
  check_refused(sctp_frame(cport, {}), 3,
                [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn, tagged); }, forward_error::no_headroom);
  // With room, the same rewrite succeeds and the CRC is valid.
  auto ok = run(sctp_frame(cport, {}), [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn, tagged); });
  CHECK(to_hex(std::span<const std::byte>(ok).subspan(12, 10)) == "88 a8 00 c8 81 00 01 2c 08 00");
  CHECK(ref_crc_ok(std::span<const std::byte>(ok).subspan(sctp4 + 8)));
  // An SCTP header cut to 11 bytes never gets this far: the parser refuses it.
  const bytes cut = packet_builder{}.eth().ipv4("198.18.0.2", "198.18.0.100").raw(bytes(11), 132).build();
  auto parsed = wire::parse(cut);
  REQUIRE_FALSE(parsed);
  CHECK(parsed.error() == wire::drop_reason::truncated_sctp);
  // Over the MTU with DF: the frag-needed answer, and the packet itself untouched.
  const bytes big = with_crc(packet_builder{}.eth(director_mac, client_mac)
                                 .ipv4("198.18.0.2", "198.18.0.100", {.dont_frag = true})
                                 .sctp(cport, vport, 9)
                                 .payload(1400)
                                 .build(),
                             sctp4);
  guarded_frame g(big, 8, 8);
  auto pkt = wire::parse(g.buf.frame());
  REQUIRE(pkt);
  auto cfg = to_real();
  cfg.mtu = 1300;
  std::vector<std::byte> reply(1600);
  auto r = forward::nat_inbound(g.buf, *pkt, conn, cfg, reply);
  REQUIRE(r);
  CHECK(r->action == forward::forward_action::reply_icmp);
  CHECK(to_bytes(g.buf.frame()) == big);
}
}

// ---- tshark ------------------------------------------------------------------------------------

namespace {

namespace fs = std::filesystem;

bool tshark_available() {
  static const bool ok = std::system("tshark -v > /dev/null 2>&1") == 0;
  return ok;
}

struct tshark_row {
  std::string number, sctp_status, ip_status, icmp_status, sport, dport, dst;
};

// `-o sctp.checksum:crc-32c`: the preference is an enumeration (`tshark -G defaultprefs` lists
// "#sctp.checksum: None"; values none, adler-32, crc-32c, automatic). An unknown value is ignored
// without an error and leaves every status at 2 (unverified), which the checks below would catch.
std::vector<tshark_row> dissect_sctp(const fs::path& pcap) {
  const std::string cmd = "tshark -r '" + pcap.string() +
                          "' -o sctp.checksum:crc-32c -o ip.check_checksum:TRUE -T fields -E separator='|'"
                          " -e frame.number -e sctp.checksum.status -e ip.checksum.status -e sctp.srcport"
                          " -e sctp.dstport -e ip.dst -e ipv6.dst -e icmp.checksum.status 2>/dev/null";
  std::vector<tshark_row> rows;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return rows;
  char line[4096];
  while (fgets(line, sizeof line, p) != nullptr) {
    std::vector<std::string> f;
    std::string cur;
    for (const char* c = line; *c != '\0' && *c != '\n'; ++c) {
      if (*c == '|') {
        f.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(*c);
      }
    }
    f.push_back(cur);
    f.resize(8);
    rows.push_back({f[0], f[1], f[2], f[7], f[3], f[4], f[5].empty() ? f[6] : f[5]});
  }
  pclose(p);
  return rows;
}

}  // namespace

TEST_SUITE("forward") {
TEST_CASE("nat: tshark verifies the rewritten SCTP checksums (and rejects broken ones)") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: SCTP checksum check skipped");
    return;
  }
  const auto conn = conn4();
  std::vector<bytes> frames;
  std::vector<std::string> want_status;  // Wireshark's proto_checksum: 0 bad, 1 good, 2 unverified
  // 1: IPv4 inbound (INIT), 2: IPv4 outbound (INIT ACK), 3: IPv6 inbound, 4: FullNAT inbound.
  const bytes in4 = with_crc(packet_builder{}.eth(director_mac, client_mac)
                                 .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x1234, .dont_frag = true})
                                 .sctp(cport, vport, 0)
                                 .payload(init_chunk)
                                 .build(),
                             sctp4);
  frames.push_back(run(in4, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn, to_real()); }));
  want_status.push_back("1");
  const bytes out4 = with_crc(packet_builder{}.eth(director_mac, real_mac)
                                  .ipv4("198.18.0.11", "198.18.0.2")
                                  .sctp(rport, cport, 0x01020304)
                                  .payload(init_ack_chunk)
                                  .build(),
                              sctp4);
  frames.push_back(run(out4, [&](auto& b, auto& p) { return forward::nat_outbound(b, p, conn, to_client()); }));
  want_status.push_back("1");
  const bytes in6 = with_crc(packet_builder{}.eth(director_mac, client_mac)
                                 .ipv6("fd00:198:18::2", "fd00:198:18::100")
                                 .sctp(cport, vport, 0xa1b2c3d4)
                                 .payload(data_chunk)
                                 .build(),
                             sctp6);
  frames.push_back(run(in6, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn6(), to_real()); }));
  want_status.push_back("1");
  forward::full_nat_connection fconn{ep("198.18.0.2:40000"), ep("198.18.0.100:3868"), ep("198.18.0.254:2000"),
                                     ep("198.18.0.11:13868")};
  frames.push_back(run(in4, [&](auto& b, auto& p) { return forward::full_nat_inbound(b, p, fconn, to_real()); }));
  want_status.push_back("1");
  // 5: frame 1 with one chunk byte changed after the rewrite; 6: frame 1 with its checksum's
  // bytes in the other (big-endian) order. tshark must call both bad.
  bytes corrupted = frames[0];
  corrupted.back() ^= std::byte{0x01};
  frames.push_back(corrupted);
  want_status.push_back("0");
  bytes swapped = frames[0];
  std::swap(swapped[sctp4 + 8], swapped[sctp4 + 11]);
  std::swap(swapped[sctp4 + 9], swapped[sctp4 + 10]);
  REQUIRE(swapped != frames[0]);
  frames.push_back(swapped);
  want_status.push_back("0");
  // 7: an ICMP error quoting a whole SCTP packet, after NAT: tshark checks the quoted CRC too and
  // calls it bad, since the quoted port changed and the CRC was left as ip_vs_nat_icmp leaves it
  // (it called the same quote good before the rewrite); the outer checksums are good.
  bytes quoted = packet_builder{}.ipv4("198.18.0.100", "198.18.0.2", {.ttl = 63}).sctp(vport, cport, 7).payload(data_chunk).build();
  quoted = with_crc(quoted, 20);
  const bytes icmp_in = packet_builder{}.eth(director_mac, client_mac)
                            .ipv4("198.18.0.2", "198.18.0.100")
                            .icmp(3, 4, 1400)
                            .payload(quoted)
                            .build();
  frames.push_back(run(icmp_in, [&](auto& b, auto& p) { return forward::nat_inbound(b, p, conn, to_real()); }));
  want_status.push_back("0");

  const fs::path dir = fs::temp_directory_path() / ("l4lb_sctp_nat_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  io::pcap_writer w;
  std::int64_t t = 0;
  for (const auto& f : frames) w.add(t += 1000, f);
  const fs::path pcap = dir / "sctp_nat.pcap";
  REQUIRE(w.save(pcap.string()));
  const auto rows = dissect_sctp(pcap);
  std::error_code ec;
  fs::remove_all(dir, ec);

  REQUIRE(rows.size() == frames.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i + 1);
    CHECK(rows[i].sctp_status == want_status[i]);
    if (i != 2 && i != 6) CHECK(rows[i].ip_status == "1");  // IPv4 frames: header checksum good
  }
  CHECK(rows[6].ip_status == "1,1");  // outer and quoted IPv4 headers
  CHECK(rows[6].icmp_status == "1");
  CHECK(rows[6].sport == "13868");
  // What tshark read out of the rewritten headers.
  CHECK(rows[0].dport == "13868");
  CHECK(rows[0].dst == "198.18.0.11");
  CHECK(rows[1].sport == "3868");
  CHECK(rows[2].dst == "fd00:198:18::11");
  CHECK(rows[3].sport == "2000");
  CHECK(rows[3].dport == "13868");
}
}
