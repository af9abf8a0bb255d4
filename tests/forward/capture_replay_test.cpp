// Every method, both families, on the public captures: the rewritten frames are written to pcap
// files and checked by an independent dissector (tshark, with IP/TCP/UDP checksum validation on):
// no bad checksum, the fields that must change changed (as tshark reads them), and every other
// byte unchanged (compared here, outside the bytes each method may change). Skips with a message
// when tshark is not installed.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "forward/forward_test_support.hpp"
#include "l4lb/forward/decap.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb;
using namespace l4lb::test;

namespace {

namespace fs = std::filesystem;

bool tshark_available() {
  static const bool ok = std::system("tshark -v > /dev/null 2>&1") == 0;
  return ok;
}

// The fields read back from tshark, one row per frame; a field repeated in nested headers
// (tunnels, ICMP quotes) comes as "outer,inner".
const std::vector<std::string> fields = {
    "frame.number", "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
    "icmp.checksum.status", "icmpv6.checksum.status", "eth.dst", "eth.src", "ip.src", "ip.dst",
    "ip.ttl", "ipv6.src", "ipv6.dst", "ipv6.hlim", "tcp.srcport", "tcp.dstport", "udp.srcport",
    "udp.dstport", "tcp.checksum", "ip.proto", "ipv6.nxt"};

using row = std::map<std::string, std::string>;

std::vector<row> dissect(const fs::path& pcap) {
  std::string cmd = "tshark -r '" + pcap.string() +
                    "' -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE"
                    " -T fields -E separator='|'";
  for (const auto& f : fields) cmd += " -e " + f;
  cmd += " 2>/dev/null";
  std::vector<row> rows;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return rows;
  std::string line;
  char chunk[4096];
  while (fgets(chunk, sizeof chunk, p) != nullptr) {
    line += chunk;
    if (line.empty() || line.back() != '\n') continue;
    line.pop_back();
    row r;
    std::size_t start = 0;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::size_t bar = line.find('|', start);
      r[fields[i]] = line.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      start = bar == std::string::npos ? line.size() : bar + 1;
    }
    rows.push_back(std::move(r));
    line.clear();
  }
  pclose(p);
  return rows;
}

std::string first(const std::string& s) { return s.substr(0, s.find(',')); }
std::string nth(const std::string& s, std::size_t n) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < n; ++i) {
    start = s.find(',', start);
    if (start == std::string::npos) return {};
    ++start;
  }
  return s.substr(start, s.find(',', start) - start);
}

// A test's working folder, removed at the end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("l4lb_forward_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

fs::path write_pcap(const temp_dir& d, const std::string& name, const std::vector<bytes>& frames) {
  io::pcap_writer w;
  std::int64_t t = 0;
  for (const auto& f : frames) w.add(t += 1000, f);
  auto p = d.path / name;
  REQUIRE(w.save(p.string()));
  return p;
}

const wire::ip_address vip4 = ip("198.18.0.100"), vip4_qinq = ip("198.18.10.100"), vip6 = ip("fd00:198:18::100");
const wire::ip_address real4 = ip("198.18.0.11"), real6 = ip("fd00:198:18::11");
const wire::ip_address local4 = ip("198.18.0.254"), local6 = ip("fd00:198:18::fe");

bool is_vip(const wire::ip_address& a) { return a == vip4 || a == vip4_qinq || a == vip6; }
const wire::ip_address& real_for(const wire::ip_address& a) { return a.is_v4() ? real4 : real6; }
std::uint16_t real_port(std::uint16_t vport) { return static_cast<std::uint16_t>(vport + 8000); }

std::string mac_text(const wire::mac_address& m) { return m.to_string(); }

// One input frame and what the method made of it.
struct result_frame {
  bytes in;
  bytes out;
  std::vector<std::size_t> may_change;  // offsets in the IP packet the method may change
  std::size_t in_l3 = 0, out_l3 = 0;    // where the compared IP packet starts in each
};

// Bytes of the input IP packet that differ in the output outside `may_change`.
std::size_t unexpected_changes(const result_frame& r) {
  const std::set<std::size_t> allowed(r.may_change.begin(), r.may_change.end());
  auto in = std::span<const std::byte>(r.in).subspan(r.in_l3);
  auto out = std::span<const std::byte>(r.out).subspan(r.out_l3);
  auto pkt = wire::parse_ip(in);
  const std::size_t len = pkt ? pkt->l3_len() : in.size();
  std::size_t bad = out.size() < len ? 1 : 0;
  for (std::size_t i = 0; i < len && i < out.size(); ++i)
    if (!allowed.count(i) && in[i] != out[i]) ++bad;
  return bad;
}

void add_range(std::vector<std::size_t>& v, std::size_t at, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) v.push_back(at + i);
}

// Offsets a rewrite may touch: TTL (+ IPv4 checksum), and per flag the addresses, ports and
// L4 checksum (for ICMP errors: the ICMP checksum and the quoted addresses/ports/IP checksum).
std::vector<std::size_t> changes_for(const wire::const_packet_view& p, bool src, bool dst) {
  std::vector<std::size_t> v;
  const bool v4 = p.is_ipv4();
  if (v4) add_range(v, 8, 1), add_range(v, 10, 2); else add_range(v, 7, 1);
  const std::size_t sa = v4 ? 12 : 8, da = v4 ? 16 : 24, n = v4 ? 4 : 16;
  if (src) add_range(v, sa, n);
  if (dst) add_range(v, da, n);
  const std::size_t l4 = p.l4_offset() - p.l3_offset();
  if (p.is_icmp_error()) {
    add_range(v, l4 + 2, 2);
    const std::size_t q = p.quote_l3_offset() - p.l3_offset(), ql4 = p.quote_l4_offset() - p.l3_offset();
    // Inbound errors change the quote's source, outbound ones its destination: allow both.
    add_range(v, q + sa, n);
    add_range(v, q + da, n);
    if (v4) add_range(v, q + 10, 2);
    add_range(v, ql4, 4);
    // The quoted L4 checksum follows the quoted addresses and ports (when inside the quote).
    add_range(v, ql4 + (p.quote_protocol() == wire::ip_proto::tcp ? 16 : 6), 2);
  } else if (src || dst) {
    if (src) add_range(v, l4, 2);
    if (dst) add_range(v, l4 + 2, 2);
    add_range(v, l4 + (p.protocol() == wire::ip_proto::tcp ? 16 : 6), 2);
  }
  return v;
}

const char* const captures[] = {"client-vip-http.pcap", "ipv6-http.pcap", "udp-dns-like.pcap", "vlan-tagged.pcap",
                                "icmp.pcap"};

// Packets the director would see from clients: IP to a VIP (and ICMP errors about a VIP's flow).
template <class F>
void for_each_toward_vip(F&& f) {
  for (const char* c : captures) {
    for (const auto& frame : capture_frames(c)) {
      auto p = wire::parse(std::span<const std::byte>(frame));
      if (!p) continue;
      if (!is_vip(p->key().dst_address())) continue;
      f(frame, *p);
    }
  }
}

// tshark's checksum status values (Wireshark's proto_checksum enum): 0 bad, 1 good,
// 2 unverified, 3 not present. Note: a display filter "...checksum.status==2" selects the
// *unverified* ones; "bad" is 0.
std::size_t bad_count(const std::string& statuses) {
  std::size_t n = 0, start = 0;
  while (true) {
    const std::size_t comma = statuses.find(',', start);
    if (statuses.substr(start, comma == std::string::npos ? std::string::npos : comma - start) == "0") ++n;
    if (comma == std::string::npos) return n;
    start = comma + 1;
  }
}

const char* const status_fields[] = {"ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
                                     "icmp.checksum.status", "icmpv6.checksum.status"};

// Checks every row of a dissected output against the dissection of its input: no checksum that
// tshark calls bad, except ones it already called bad in the input frame, which this method did
// not compute. (tshark flags the kernel's own quoted TCP checksums in truncated ICMP quotes,
// e.g. icmp.pcap's 576-byte "fragmentation needed" messages, and a TCP checksum 0xffff, which is
// how Linux writes a computed 0: captures README.) Returns how many such inherited flags it saw.
std::size_t check_checksums(const std::vector<row>& rows, const std::vector<row>& input_rows) {
  REQUIRE(rows.size() == input_rows.size());
  std::size_t inherited = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    CAPTURE(rows[i].at("frame.number"));
    for (const char* s : status_fields) {
      CAPTURE(s);
      const std::size_t out_bad = bad_count(rows[i].at(s)), in_bad = bad_count(input_rows[i].at(s));
      CHECK(out_bad <= in_bad);
      inherited += out_bad;
    }
  }
  return inherited;
}

std::vector<row> dissect_inputs(const temp_dir& d, const std::string& name, const std::vector<result_frame>& frames) {
  std::vector<bytes> ins;
  for (const auto& f : frames) ins.push_back(f.in);
  return dissect(write_pcap(d, name, ins));
}
}  // namespace

TEST_SUITE("forward") {
TEST_CASE("capture replay: DR, both families and VLAN-tagged frames, checked by tshark") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: capture replay check skipped");
    return;
  }
  temp_dir dir;
  std::vector<result_frame> frames;
  forward::dr_config cfg;
  cfg.l2 = {director_mac, real_mac, {}};
  for_each_toward_vip([&](const bytes& frame, const wire::const_packet_view& p) {
    if (p.ipv4().ttl() <= 1 && p.is_ipv4()) return;
    guarded_frame g(frame, 0);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::direct_route(g.buf, *pkt, cfg);
    REQUIRE(r);
    frames.push_back({frame, to_bytes(r->frame), changes_for(p, false, false), p.l3_offset(), p.l3_offset()});
  });
  REQUIRE(frames.size() > 300);
  std::vector<bytes> outs;
  for (const auto& f : frames) outs.push_back(f.out);
  auto rows = dissect(write_pcap(dir, "dr.pcap", outs));
  const std::size_t inherited = check_checksums(rows, dissect_inputs(dir, "dr_in.pcap", frames));
  std::size_t v6 = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    const auto& r = rows[i];
    CHECK(r.at("eth.dst") == mac_text(real_mac));
    CHECK(r.at("eth.src") == mac_text(director_mac));
    auto in = wire::parse(std::span<const std::byte>(frames[i].in));
    if (in->is_ipv4()) {
      CHECK(first(r.at("ip.ttl")) == std::to_string(in->ipv4().ttl() - 1));
      CHECK(first(r.at("ip.dst")) == in->key().dst_address().to_string());
    } else {
      ++v6;
      CHECK(first(r.at("ipv6.hlim")) == std::to_string(in->ipv6().hop_limit() - 1));
    }
    // The VLAN tags are kept: the bytes between the MACs and the IP header are the input's.
    CHECK(to_hex(std::span<const std::byte>(frames[i].out).subspan(12, in->l3_offset() - 12)) ==
          to_hex(std::span<const std::byte>(frames[i].in).subspan(12, in->l3_offset() - 12)));
    CHECK(unexpected_changes(frames[i]) == 0);
  }
  CHECK(v6 > 100);
  MESSAGE("DR: " << frames.size() << " frames, " << v6 << " IPv6; checksums tshark already flagged in the input: " << inherited);
}

TEST_CASE("capture replay: NAT inbound and outbound (with ICMP errors), checked by tshark") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: capture replay check skipped");
    return;
  }
  temp_dir dir;
  // tshark checks the checksums inside ICMP quotes too: quoted TCP/UDP checksums updated (the
  // kernel, and the default, leave them stale).
  forward::nat_config to_real;
  to_real.l2 = {director_mac, real_mac, {}};
  to_real.keep_quoted_l4_checksum = false;
  forward::nat_config to_client;
  to_client.l2 = {director_mac, client_mac, {}};
  to_client.keep_quoted_l4_checksum = false;
  std::vector<result_frame> in_frames, out_frames;
  std::size_t icmp_errors = 0, zero_forms = 0, ttl_expired = 0;
  // Inbound: client -> VIP TCP/UDP, and ICMP errors sent to the VIP about a VIP -> client flow.
  for_each_toward_vip([&](const bytes& frame, const wire::const_packet_view& p) {
    forward::nat_connection conn;
    if (p.is_icmp_error()) {
      if (!p.quote_has_l4()) return;
      const auto q = p.quoted_flow_key();
      if (q.protocol != wire::ip_proto::tcp && q.protocol != wire::ip_proto::udp) return;
      conn = {q.dst(), q.src(), {real_for(q.src_address()), real_port(q.src_port)}};
      ++icmp_errors;
    } else {
      if (p.protocol() != wire::ip_proto::tcp && p.protocol() != wire::ip_proto::udp) return;
      conn = {p.key().src(), p.key().dst(), {real_for(p.key().dst_address()), real_port(p.key().dst_port)}};
    }
    guarded_frame g(frame, 0);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::nat_inbound(g.buf, *pkt, conn, to_real);
    REQUIRE(r);
    in_frames.push_back({frame, to_bytes(r->frame), changes_for(p, false, true), p.l3_offset(), p.l3_offset()});
  });
  // Outbound: the capture's VIP -> client TCP/UDP frames, first turned into what the real server
  // sends (source = real server:port+8000, checksums recomputed by the builder's reference sum);
  // NAT must then give back the capture's own bytes (apart from MACs, TTL, IP checksum).
  for (const char* c : captures) {
    for (const auto& frame : capture_frames(c)) {
      auto p = wire::parse(std::span<const std::byte>(frame));
      if (!p || !is_vip(p->key().src_address()) || p->is_fragment()) continue;
      if (p->protocol() != wire::ip_proto::tcp && p->protocol() != wire::ip_proto::udp) continue;
      bytes from_real = frame;
      const std::size_t l3 = p->l3_offset(), l4 = p->l4_offset();
      const auto real = real_for(p->key().src_address());
      const std::uint16_t rport = real_port(p->key().src_port);
      std::memcpy(from_real.data() + l3 + (p->is_ipv4() ? 12 : 8), real.raw().data(), real.byte_size());
      from_real[l4] = std::byte(rport >> 8);
      from_real[l4 + 1] = std::byte(rport & 0xFF);
      const std::size_t cs = l4 + (p->protocol() == wire::ip_proto::tcp ? 16 : 6);
      const bool udp_zero = p->protocol() == wire::ip_proto::udp && frame[cs] == std::byte{0} && frame[cs + 1] == std::byte{0};
      if (p->is_ipv4()) {
        from_real[l3 + 10] = from_real[l3 + 11] = std::byte{0};
        const auto h = inet_checksum(std::span<const std::byte>(from_real).subspan(l3, l4 - l3));
        from_real[l3 + 10] = std::byte(h >> 8);
        from_real[l3 + 11] = std::byte(h & 0xFF);
      }
      if (!udp_zero) {
        const std::size_t seg_len = p->l4_len();
        bytes pseudo(from_real.begin() + static_cast<std::ptrdiff_t>(l3 + (p->is_ipv4() ? 12 : 8)),
                     from_real.begin() + static_cast<std::ptrdiff_t>(l3 + (p->is_ipv4() ? 20 : 40)));
        if (p->is_ipv4()) {
          for (unsigned x : {0u, unsigned{p->protocol()}, unsigned(seg_len >> 8), unsigned(seg_len & 0xFF)}) pseudo.push_back(std::byte(x));
        } else {
          for (unsigned x : {0u, 0u, unsigned(seg_len >> 8), unsigned(seg_len & 0xFF), 0u, 0u, 0u, unsigned{p->protocol()}})
            pseudo.push_back(std::byte(x));
        }
        from_real[cs] = from_real[cs + 1] = std::byte{0};
        auto sum = inet_checksum(std::span<const std::byte>(from_real).subspan(l4, seg_len), ones_sum(pseudo));
        if (sum == 0 && p->protocol() == wire::ip_proto::udp) sum = 0xFFFF;
        from_real[cs] = std::byte(sum >> 8);
        from_real[cs + 1] = std::byte(sum & 0xFF);
      }
      forward::nat_connection conn{p->key().dst(), p->key().src(), {real, rport}};
      guarded_frame g(from_real, 0);
      auto pkt = wire::parse(g.buf.frame());
      REQUIRE(pkt);
      auto r = forward::nat_outbound(g.buf, *pkt, conn, to_client);
      if (!r && r.error() == forward::forward_error::ttl_exceeded) {
        // icmp.pcap sent one IPv4 datagram with TTL 1 and one IPv6 with hop limit 1: not forwarded.
        ++ttl_expired;
        continue;
      }
      CAPTURE(to_string(r.error()));
      REQUIRE(r);
      result_frame rf{frame, to_bytes(r->frame), changes_for(*p, false, false), l3, l3};
      // A TCP checksum the kernel wrote as 0xffff comes back as 0x0000 (same value in one's
      // complement; the incremental update equals a full computation, which never gives 0xffff).
      if (frame[cs] == std::byte{0xFF} && frame[cs + 1] == std::byte{0xFF} && rf.out.size() > cs &&
          rf.out[cs] == std::byte{0} && rf.out[cs + 1] == std::byte{0}) {
        add_range(rf.may_change, cs - l3, 2);
        ++zero_forms;
      }
      out_frames.push_back(std::move(rf));
    }
  }
  REQUIRE(in_frames.size() > 300);
  REQUIRE(out_frames.size() > 300);
  CHECK(icmp_errors >= 20);  // frag needed, time exceeded, port unreachable, v4 and v6
  CHECK(ttl_expired == 2);  // the v4 TTL-1 and v6 hop-limit-1 datagrams of icmp.pcap
  for (int dir_out = 0; dir_out < 2; ++dir_out) {
    auto& frames = dir_out ? out_frames : in_frames;
    std::vector<bytes> outs;
    for (const auto& f : frames) outs.push_back(f.out);
    auto rows = dissect(write_pcap(dir, dir_out ? "nat_out.pcap" : "nat_in.pcap", outs));
    const std::size_t inherited = check_checksums(rows, dissect_inputs(dir, "nat_input.pcap", frames));
    MESSAGE("NAT " << std::string(dir_out ? "outbound" : "inbound") << ": checksums tshark already flagged in the input: " << inherited);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      CAPTURE(dir_out);
      CAPTURE(i);
      const auto& r = rows[i];
      auto in = wire::parse(std::span<const std::byte>(frames[i].in));
      const bool v4 = in->is_ipv4();
      const std::string dst = first(r.at(v4 ? "ip.dst" : "ipv6.dst"));
      const std::string src = first(r.at(v4 ? "ip.src" : "ipv6.src"));
      CHECK(r.at("eth.src") == mac_text(director_mac));
      CHECK(first(r.at(v4 ? "ip.ttl" : "ipv6.hlim")) == std::to_string((v4 ? in->ipv4().ttl() : in->ipv6().hop_limit()) - 1));
      if (dir_out == 0) {
        CHECK(dst == real_for(in->key().dst_address()).to_string());
        CHECK(src == in->key().src_address().to_string());
        if (in->is_icmp_error()) {
          // The quote's source is now the real server and its port the real port.
          CHECK(nth(r.at(v4 ? "ip.src" : "ipv6.src"), 1) == real_for(in->key().dst_address()).to_string());
        } else {
          const char* dport = in->protocol() == wire::ip_proto::tcp ? "tcp.dstport" : "udp.dstport";
          CHECK(first(r.at(dport)) == std::to_string(real_port(in->key().dst_port)));
        }
      } else {
        // Back to the capture's own view: source VIP:port, and the bytes are the capture's.
        CHECK(src == in->key().src_address().to_string());
        CHECK(dst == in->key().dst_address().to_string());
      }
      CHECK(unexpected_changes(frames[i]) == 0);
    }
  }
  MESSAGE("NAT: " << in_frames.size() << " inbound (" << icmp_errors << " ICMP errors), " << out_frames.size()
                  << " outbound; kernel 0xffff TCP checksums returned as 0x0000: " << zero_forms);
}

TEST_CASE("capture replay: FullNAT inbound, checked by tshark") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: capture replay check skipped");
    return;
  }
  temp_dir dir;
  auto pool = forward::full_nat_port_pool::make({{local4, local6}, 20000, 29999});
  REQUIRE(pool);
  forward::nat_config cfg;
  cfg.l2 = {director_mac, real_mac, {}};
  std::map<wire::flow_key, wire::endpoint> locals;
  std::vector<result_frame> frames;
  for_each_toward_vip([&](const bytes& frame, const wire::const_packet_view& p) {
    if (p.is_icmp_error() || (p.protocol() != wire::ip_proto::tcp && p.protocol() != wire::ip_proto::udp)) return;
    auto it = locals.find(p.key());
    if (it == locals.end()) {
      auto e = pool->allocate(p.protocol(), p.family(), p.key().hash());
      REQUIRE(e);
      it = locals.emplace(p.key(), *e).first;
    }
    forward::full_nat_connection conn{p.key().src(), p.key().dst(), it->second,
                                      {real_for(p.key().dst_address()), real_port(p.key().dst_port)}};
    guarded_frame g(frame, 0);
    auto pkt = wire::parse(g.buf.frame());
    auto r = forward::full_nat_inbound(g.buf, *pkt, conn, cfg);
    REQUIRE(r);
    frames.push_back({frame, to_bytes(r->frame), changes_for(p, true, true), p.l3_offset(), p.l3_offset()});
  });
  REQUIRE(frames.size() > 300);
  std::vector<bytes> outs;
  for (const auto& f : frames) outs.push_back(f.out);
  auto rows = dissect(write_pcap(dir, "fullnat_in.pcap", outs));
  const std::size_t inherited = check_checksums(rows, dissect_inputs(dir, "fullnat_input.pcap", frames));
  MESSAGE("FullNAT: " << frames.size() << " frames, " << locals.size() << " flows; inherited flags: " << inherited);
  std::set<std::pair<std::string, std::string>> local_eps;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    const auto& r = rows[i];
    auto in = wire::parse(std::span<const std::byte>(frames[i].in));
    const bool v4 = in->is_ipv4();
    const auto& local = locals.at(in->key());
    CHECK(first(r.at(v4 ? "ip.src" : "ipv6.src")) == local.address.to_string());
    CHECK(first(r.at(v4 ? "ip.dst" : "ipv6.dst")) == real_for(in->key().dst_address()).to_string());
    const char* sport = in->protocol() == wire::ip_proto::tcp ? "tcp.srcport" : "udp.srcport";
    CHECK(first(r.at(sport)) == std::to_string(local.port));
    CHECK(unexpected_changes(frames[i]) == 0);
    local_eps.insert({r.at(sport), std::to_string(in->protocol())});
  }
  // One local port per flow: as many distinct local endpoints as flows.
  CHECK(local_eps.size() == locals.size());
}

TEST_CASE("capture replay: IPIP, GUE and GRE over IPv4 and IPv6, checked by tshark") {
  if (!tshark_available()) {
    MESSAGE("tshark not installed: capture replay check skipped");
    return;
  }
  temp_dir dir;
  std::vector<row> input_rows;
  for (auto type : {forward::tunnel_type::ipip, forward::tunnel_type::gue, forward::tunnel_type::gre}) {
    for (const auto* local : {&local4, &local6}) {
      for (bool csum : {false, true}) {
        if (type == forward::tunnel_type::ipip && csum) continue;
        CAPTURE(static_cast<int>(type));
        CAPTURE(local->to_string());
        CAPTURE(csum);
        forward::tunnel_config cfg;
        cfg.type = type;
        cfg.local = *local;
        cfg.gue_port = 6080;
        cfg.checksum = csum ? forward::tunnel_checksum::csum : forward::tunnel_checksum::none;
        cfg.l2 = {director_mac, real_mac, {}};
        const auto& real = local->is_v4() ? real4 : real6;
        std::vector<result_frame> frames;
        std::vector<bytes> inner_frames;  // GUE: tshark has no GUE dissector, so check the decapsulated frames too
        for_each_toward_vip([&](const bytes& frame, const wire::const_packet_view& p) {
          guarded_frame g(frame, 64);
          auto pkt = wire::parse(g.buf.frame());
          auto r = forward::tunnel_encapsulate(g.buf, *pkt, real, cfg);
          REQUIRE(r);
          result_frame rf{frame, to_bytes(r->frame), changes_for(p, false, false), p.l3_offset(), 0};
          rf.out_l3 = rf.out.size() - p.l3_len();  // the inner packet sits at the end
          frames.push_back(rf);
          guarded_frame d(rf.out, 0);
          forward::decap_config dc;
          dc.gue_port = 6080;
          auto back = forward::decapsulate_frame(d.buf, dc);
          REQUIRE(back);
          inner_frames.push_back(to_bytes(back->frame));
        });
        REQUIRE(frames.size() > 300);
        std::vector<bytes> outs;
        for (const auto& f : frames) outs.push_back(f.out);
        auto rows = dissect(write_pcap(dir, "tun.pcap", outs));
        if (input_rows.empty()) input_rows = dissect_inputs(dir, "tun_input.pcap", frames);
        const std::size_t inherited = check_checksums(rows, input_rows);
        CHECK(inherited <= 22);  // only icmp.pcap's 11 + 11 quoted TCP checksums (see check_checksums)
        const bool v4out = local->is_v4();
        for (std::size_t i = 0; i < frames.size(); ++i) {
          CAPTURE(i);
          const auto& r = rows[i];
          auto in = wire::parse(std::span<const std::byte>(frames[i].in));
          const bool v4in = in->is_ipv4();
          CHECK(r.at("eth.dst") == mac_text(real_mac));
          // Outer header, as tshark reads it: director -> real server.
          const std::string osrc = v4out ? first(r.at("ip.src")) : first(r.at("ipv6.src"));
          const std::string odst = v4out ? first(r.at("ip.dst")) : first(r.at("ipv6.dst"));
          CHECK(osrc == local->to_string());
          CHECK(odst == real.to_string());
          const std::string oproto = first(r.at(v4out ? "ip.proto" : "ipv6.nxt"));
          const int want = type == forward::tunnel_type::gue ? 17 : type == forward::tunnel_type::gre ? 47 : (v4in ? 4 : 41);
          CHECK(oproto == std::to_string(want));
          const int inner_ttl = (v4in ? in->ipv4().ttl() : in->ipv6().hop_limit()) - 1;
          CHECK(first(r.at(v4out ? "ip.ttl" : "ipv6.hlim")) == std::to_string(inner_ttl));
          if (type != forward::tunnel_type::gue) {
            // tshark dissects IPIP and GRE payloads: the inner destination is still the VIP.
            const std::string& idst = v4in ? r.at("ip.dst") : r.at("ipv6.dst");
            CHECK(idst.find(in->key().dst_address().to_string()) != std::string::npos);
          }
          CHECK(unexpected_changes(frames[i]) == 0);
        }
        if (type == forward::tunnel_type::gue) {
          auto inner_rows = dissect(write_pcap(dir, "gue_inner.pcap", inner_frames));
          check_checksums(inner_rows, input_rows);
        }
      }
    }
  }
}
}
