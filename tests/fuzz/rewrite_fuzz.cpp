// libFuzzer target for every rewriter (forward/*.hpp) on fuzzed frames with fuzzed headroom,
// tailroom and parameters: DR, NAT inbound and reply, FullNAT both ways, the ipip / GUE / GRE
// tunnels with each checksum option into either family, decapsulation (raw and in a frame), the
// ICMP too-big answer, port unreachable, echo reply, IPv4 fragmentation and record route.
// The first bytes of the input choose the rewriter and its parameters; the rest is the frame.
//
// Invariants (each failure aborts, so libFuzzer saves the input):
// - a rewriter returns an error or a frame inside its buffer (the caller's storage, or the reply
//   buffer for an answer); storage is exactly headroom + frame + tailroom so ASan sees any byte
//   read or written outside it;
// - the output parses again, its IP packet ending where the frame ends (l3_offset as returned);
// - NAT / FullNAT: the flow leaves with the promised addresses and ports; a TCP / UDP / ICMP
//   checksum that verified before verifies after (RFC 1624 updates), an IPv4 UDP checksum of 0
//   becomes a valid one unless kept, a rewritten SCTP packet carries a valid CRC32c;
// - TTL / hop limit one lower where decremented, the IPv4 header checksum valid when it was;
// - tunnels: the outer header checksum, the GUE UDP checksum and the GRE checksum verify when
//   asked for, and decapsulating the output gives back the inner packet byte for byte;
// - answers (too big, port unreachable, echo reply): they parse, their ICMP checksum verifies;
// - fragments: each has a valid header checksum and its own length, and their payloads put back
//   together are the original payload.
// Checksums are computed in fuzz_support.hpp, not by l4lb.
//
// scripts/fuzz builds and runs it (corpus: tests/fuzz/corpus/rewrite_fuzz/); by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       tests/fuzz/rewrite_fuzz.cpp -o rewrite_fuzz
//   ./rewrite_fuzz -max_len=2048 tests/fuzz/corpus/rewrite_fuzz
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "l4lb/forward/decap.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/fragment.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/icmp_reply.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/record_route.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/parse.hpp"

namespace {

using namespace l4lb;
using namespace l4lb::forward;
using fuzz::byte_at;
using fuzz::be16_at;

enum op : std::uint8_t {
  op_dr, op_nat_in, op_nat_out, op_fnat_in, op_fnat_out, op_tunnel, op_decap, op_decap_frame,
  op_too_big, op_port_unreachable, op_echo_reply, op_fragment, op_record_route, op_count
};

wire::ip_address address(fuzz::reader& in, wire::ip_family f) {
  std::uint8_t b[16];
  in.bytes(b, f == wire::ip_family::v4 ? 4 : 16);
  return wire::ip_address::from_bytes(f, b);
}
wire::ip_family other(wire::ip_family f) {
  return f == wire::ip_family::v4 ? wire::ip_family::v6 : wire::ip_family::v4;
}
wire::mac_address mac(fuzz::reader& in) {
  wire::mac_address m;
  in.bytes(m.bytes.data(), 6);
  return m;
}
l2_config l2(fuzz::reader& in) {
  l2_config c;
  c.src = mac(in);
  c.dst = mac(in);
  const std::uint8_t v = in.u8();
  c.vlan.policy = static_cast<vlan_policy>(v % 3);
  c.vlan.count = static_cast<std::uint8_t>((v >> 2) % 3);
  for (auto& t : c.vlan.tags) {
    t.tpid = (in.bit()) ? wire::ethertype::vlan : std::uint16_t{0x88a8};
    t.tci = in.u16();
  }
  return c;
}

/// The IP packet's TTL / hop limit.
unsigned ttl_of(std::span<const std::byte> ip) { return byte_at(ip, (byte_at(ip, 0) >> 4) == 4 ? 8 : 7); }
bool ipv4_header_ok(std::span<const std::byte> ip) {
  const std::size_t ihl = (byte_at(ip, 0) & 0xF) * 4u;
  return ihl >= 20 && ihl <= ip.size() && fuzz::verifies(ip.first(ihl));
}

/// Whether the L4 checksum of an unfragmented TCP / UDP / ICMP / ICMPv6 packet verifies (IPv4
/// UDP 0: "no checksum", reported as nullopt). Precondition: `p` parsed and is not a fragment.
std::optional<bool> l4_checksum_ok(const wire::packet_view& p) {
  const auto ip = std::span<const std::byte>(p.l3());
  const auto l4 = std::span<const std::byte>(p.l4());
  switch (p.protocol()) {
    case wire::ip_proto::tcp: return fuzz::verifies(l4, fuzz::pseudo(ip, 6, l4.size()));
    case wire::ip_proto::udp: {
      if (p.is_ipv4() && be16_at(l4, 6) == 0) return std::nullopt;
      // The UDP length (the parser held it to the bytes present) bounds the datagram.
      const auto d = l4.first(be16_at(l4, 4));
      return fuzz::verifies(d, fuzz::pseudo(ip, 17, d.size()));
    }
    case wire::ip_proto::icmp: return fuzz::verifies(l4);
    case wire::ip_proto::icmpv6: return fuzz::verifies(l4, fuzz::pseudo(ip, 58, l4.size()));
    case wire::ip_proto::sctp: return fuzz::sctp_verifies(l4);
    default: return std::nullopt;
  }
}

/// The input's facts that the output is checked against (read before the rewrite, which works
/// in place).
struct before {
  std::vector<std::byte> ip;  // the IP packet as received
  bool ipv4_header_ok = false;
  std::optional<bool> l4_ok;
  bool icmp_error = false;
  bool fragment = false;
  std::uint8_t protocol = 0;
  explicit before(const wire::packet_view& p)
      : ip(p.l3().begin(), p.l3().end()),
        icmp_error(p.is_icmp_error()),
        fragment(p.is_fragment()),
        protocol(p.protocol()) {
    if (p.is_ipv4()) ipv4_header_ok = ::ipv4_header_ok(ip);
    if (!fragment && p.has_l4_header()) l4_ok = l4_checksum_ok(p);
  }
};

/// Re-parses an output frame: it must parse, with its IP packet where the rewriter said and
/// ending with the frame.
wire::packet_view reparse(std::span<std::byte> frame, std::size_t l3_offset) {
  auto p = l3_offset ? wire::parse(frame) : wire::parse_ip(frame);
  if (!p) std::fprintf(stderr, "output does not parse: %s\n", std::string(wire::to_string(p.error())).c_str());
  FUZZ_REQUIRE(p.has_value());
  FUZZ_REQUIRE(p->l3_offset() == l3_offset);
  FUZZ_REQUIRE(p->l3_offset() + p->l3_len() == frame.size());
  return *p;
}

/// An ICMP answer (too big, port unreachable, echo reply) in `reply`: parses, the type asked
/// for, back to the packet's source, checksums valid.
void check_answer(std::span<std::byte> out, std::span<std::byte> reply, const wire::packet_view& pkt,
                  const wire::flow_key& asked, bool error) {
  FUZZ_REQUIRE(fuzz::inside(out, reply));
  const std::size_t l2 = pkt.has_ethernet() ? pkt.l3_offset() : 0;
  if (error && pkt.l4_len() < wire::icmp_quote_min_l4) {
    // The answer quotes all there was (RFC 792 / RFC 4443 2.4(c)), fewer than the 8 L4 bytes
    // l4lb's parser needs to match a quote to a flow: it drops such an error as
    // truncated_icmp_quote, which is fine for a message no connection could match.
    auto p = l2 ? wire::parse(out) : wire::parse_ip(out);
    if (!p) {
      FUZZ_REQUIRE(p.error() == wire::drop_reason::truncated_icmp_quote);
      return;
    }
  }
  auto a = reparse(out, l2);
  FUZZ_REQUIRE(a.protocol() == (pkt.is_ipv4() ? wire::ip_proto::icmp : wire::ip_proto::icmpv6));
  FUZZ_REQUIRE(a.key().dst_addr == asked.src_addr && a.key().src_addr == asked.dst_addr);
  if (a.is_ipv4()) FUZZ_REQUIRE(ipv4_header_ok(a.l3()));
  FUZZ_REQUIRE(l4_checksum_ok(a).value_or(false));
  if (error) {
    FUZZ_REQUIRE(a.is_icmp_error());
    const std::size_t cap = a.is_ipv4() ? 576 : 1280;
    FUZZ_REQUIRE(a.l3_len() <= cap);
  }
}

/// A forward result of a translation: inside the storage, parses, addressed as promised,
/// checksums kept valid.
void check_translation(const forward_result& r, const frame_buffer& buf, std::span<std::byte> reply,
                       const wire::packet_view& pkt, const before& b, const nat_config& cfg,
                       const wire::endpoint& to_src, const wire::endpoint& to_dst, bool src_changes,
                       bool dst_changes) {
  if (!r) return;
  if (r->action == forward_action::reply_icmp) {
    check_answer(r->frame, reply, pkt, pkt.key(), true);
    return;
  }
  FUZZ_REQUIRE(fuzz::inside(r->frame, buf.storage()));
  FUZZ_REQUIRE(buf.is_frame(r->frame));
  auto o = reparse(r->frame, r->l3_offset);
  FUZZ_REQUIRE(o.l3_len() == b.ip.size());
  if (cfg.decrement_ttl) FUZZ_REQUIRE(ttl_of(o.l3()) + 1 == ttl_of(b.ip));
  if (o.is_ipv4() && b.ipv4_header_ok) FUZZ_REQUIRE(ipv4_header_ok(o.l3()));
  if (!b.icmp_error) {
    if (src_changes) FUZZ_REQUIRE(o.key().src() == to_src);
    if (dst_changes) FUZZ_REQUIRE(o.key().dst() == to_dst);
    if (b.protocol == wire::ip_proto::sctp) {
      FUZZ_REQUIRE(fuzz::sctp_verifies(o.l4()));
    } else if (b.protocol == wire::ip_proto::udp && o.is_ipv4() && !b.l4_ok) {
      // RFC 768: 0 means none; IPVS gives it a full checksum unless told to keep it.
      if (cfg.keep_zero_udp_checksum)
        FUZZ_REQUIRE(be16_at(o.l4(), 6) == 0);
      else
        FUZZ_REQUIRE(l4_checksum_ok(o) == std::optional<bool>(true));
    } else if (b.l4_ok == std::optional<bool>(true)) {
      FUZZ_REQUIRE(l4_checksum_ok(o) == std::optional<bool>(true));
    }
  } else {
    // The outer addresses change like the data's; the ICMP checksum covers the rewritten quote.
    if (src_changes) FUZZ_REQUIRE(o.key().src_address() == to_src.address);
    if (dst_changes) FUZZ_REQUIRE(o.key().dst_address() == to_dst.address);
    FUZZ_REQUIRE(o.is_icmp_error());
    if (b.l4_ok == std::optional<bool>(true)) FUZZ_REQUIRE(l4_checksum_ok(o) == std::optional<bool>(true));
  }
  if (r->action == forward_action::fragment) {
    FUZZ_REQUIRE(o.is_ipv4());
    FUZZ_REQUIRE(r->mtu != 0 && r->mtu < o.l3_len());
  }
}

/// Fragments (fragment_ipv4's outputs) of the IPv4 packet `ip` after `l2` bytes: headers valid,
/// lengths their own, payloads in order make the original payload.
void check_fragments(std::span<const std::byte> ip, std::span<std::span<std::byte>> out, std::size_t n,
                     std::size_t l2, std::size_t max_ip) {
  const std::size_t ihl = (byte_at(ip, 0) & 0xF) * 4u;
  const std::size_t total = be16_at(ip, 2);
  const std::size_t base = (be16_at(ip, 6) & 0x1FFF) * 8u;
  const bool mf = (be16_at(ip, 6) & 0x2000) != 0;
  std::size_t at = base;
  std::vector<std::byte> joined;
  for (std::size_t i = 0; i < n; ++i) {
    const auto f = std::span<const std::byte>(out[i]);
    FUZZ_REQUIRE(f.size() > l2 + 20);
    const auto fip = f.subspan(l2);
    FUZZ_REQUIRE(fip.size() <= max_ip || n == 1);
    FUZZ_REQUIRE((byte_at(fip, 0) >> 4) == 4);
    FUZZ_REQUIRE(ipv4_header_ok(fip));
    FUZZ_REQUIRE(be16_at(fip, 2) == fip.size());
    const std::size_t fihl = (byte_at(fip, 0) & 0xF) * 4u;
    const unsigned frag = be16_at(fip, 6);
    FUZZ_REQUIRE((frag & 0x4000) == 0);
    FUZZ_REQUIRE((frag & 0x1FFF) * 8u == at);
    const bool last = i + 1 == n;
    FUZZ_REQUIRE(((frag & 0x2000) != 0) == (last ? mf : true));
    if (!last) FUZZ_REQUIRE((fip.size() - fihl) % 8 == 0);
    if (i == 0) FUZZ_REQUIRE(fihl == ihl);
    // Addresses, protocol and ID as the original's.
    FUZZ_REQUIRE(std::equal(fip.begin() + 12, fip.begin() + 20, ip.begin() + 12));
    FUZZ_REQUIRE(byte_at(fip, 9) == byte_at(ip, 9) && be16_at(fip, 4) == be16_at(ip, 4));
    joined.insert(joined.end(), fip.begin() + static_cast<std::ptrdiff_t>(fihl), fip.end());
    at += fip.size() - fihl;
  }
  FUZZ_REQUIRE(joined.size() == total - ihl);
  FUZZ_REQUIRE(std::equal(joined.begin(), joined.end(), ip.begin() + static_cast<std::ptrdiff_t>(ihl)));
}

void run_fragments(fuzz::reader& in, const forwarded& r) {
  const std::size_t count = 1 + in.u8() % 48;
  const std::size_t each = in.u16() % 2048;
  std::vector<std::vector<std::byte>> store(count, std::vector<std::byte>(each));
  std::vector<std::span<std::byte>> out;
  for (auto& s : store) out.emplace_back(s);
  std::vector<std::byte> orig;
  if (r.frame.size() > r.l3_offset) orig.assign(r.frame.begin() + r.l3_offset, r.frame.end());
  auto n = fragment_forwarded(r, out);
  if (!n) return;
  FUZZ_REQUIRE(orig.size() >= 20);
  FUZZ_REQUIRE(*n >= 1 && *n <= count);
  for (std::size_t i = 0; i < *n; ++i) FUZZ_REQUIRE(fuzz::inside(out[i], std::span<std::byte>(store[i])));
  if (*n > 1) check_fragments(orig, out, *n, r.l3_offset, r.mtu);
}

void run(fuzz::reader& in) {
  const std::uint8_t which = in.u8() % op_count;
  const std::size_t headroom = in.u8();
  const std::size_t tailroom = in.u8() % 64;
  const bool ethernet = in.bit();
  const std::uint8_t flags = in.u8();
  const std::size_t reply_len = in.u16() % 1700;
  const std::uint16_t mtu_field = in.u16();  // bit 15: no MTU check (0)
  const std::size_t mtu = (mtu_field & 0x8000) ? 0 : mtu_field % 2048;
  const bool from_packet = (flags & 0x80) == 0;  // derive the connection from the packet's flow
  ip_id_generator ids(in.u32());

  const auto frame_bytes = in.take(in.u16() % 2048);
  std::vector<std::byte> storage(headroom + frame_bytes.size() + tailroom);
  if (!frame_bytes.empty()) std::memcpy(storage.data() + headroom, frame_bytes.data(), frame_bytes.size());
  auto fb = frame_buffer::make(storage, headroom, frame_bytes.size());
  FUZZ_REQUIRE(fb.has_value());
  frame_buffer buf = *fb;
  std::vector<std::byte> reply(reply_len);

  // Rewriters of raw bytes first.
  if (which == op_decap) {
    decap_config dc{in.u16(), in.bit()};
    const std::vector<std::byte> orig(buf.frame().begin(), buf.frame().end());
    auto d = decapsulate(buf.frame(), dc);
    if (d) {
      FUZZ_REQUIRE(fuzz::inside(d->inner, buf.frame()));
      FUZZ_REQUIRE(d->inner.size() >= 20);
      const bool v4 = (byte_at(d->inner, 0) >> 4) == 4;
      FUZZ_REQUIRE(v4 ? be16_at(d->inner, 2) == d->inner.size() : be16_at(d->inner, 4) + 40u == d->inner.size());
      FUZZ_REQUIRE(std::equal(orig.begin(), orig.end(), buf.frame().begin()));  // nothing written
    }
    return;
  }
  if (which == op_decap_frame) {
    decap_config dc{in.u16(), in.bit()};
    auto r = decapsulate_frame(buf, dc);
    if (r) {
      FUZZ_REQUIRE(fuzz::inside(r->frame, buf.storage()) && buf.is_frame(r->frame));
      const auto ip = std::span<const std::byte>(r->frame).subspan(r->l3_offset);
      FUZZ_REQUIRE(ip.size() >= 20);
      const bool v4 = (byte_at(ip, 0) >> 4) == 4;
      FUZZ_REQUIRE(be16_at(r->frame, r->l3_offset - 2) == (v4 ? 0x0800u : 0x86DDu));
      FUZZ_REQUIRE(v4 ? be16_at(ip, 2) == ip.size() : be16_at(ip, 4) + 40u == ip.size());
    }
    return;
  }
  if (which == op_fragment) {
    forwarded f{forward_action::fragment, buf.frame(), static_cast<std::uint32_t>(mtu),
                static_cast<std::uint16_t>(ethernet ? in.u8() % 40 : 0)};
    run_fragments(in, f);
    return;
  }
  if (which == op_record_route) {
    const auto addr = address(in, wire::ip_family::v4);
    std::vector<std::byte> orig(buf.frame().begin(), buf.frame().end());
    if (record_route(buf.frame(), addr.v4())) {
      FUZZ_REQUIRE(ipv4_header_ok(buf.frame()));
      std::size_t changed = 0;
      for (std::size_t i = 0; i < orig.size(); ++i) changed += orig[i] != buf.frame()[i];
      FUZZ_REQUIRE(changed <= 4 + 1 + 2);  // the address, the pointer, the header checksum
      // The address is in the option, inside the IPv4 header.
      const std::size_t ihl = (byte_at(orig, 0) & 0xF) * 4u;
      const auto a4 = addr.v4().bytes;
      const auto* a = reinterpret_cast<const std::byte*>(a4.data());
      const auto end = buf.frame().begin() + static_cast<std::ptrdiff_t>(ihl);
      FUZZ_REQUIRE(std::search(buf.frame().begin() + 20, end, a, a + 4) != end);
    } else {
      FUZZ_REQUIRE(std::equal(orig.begin(), orig.end(), buf.frame().begin()));  // untouched
    }
    return;
  }

  const auto parsed = ethernet ? wire::parse(buf.frame()) : wire::parse_ip(buf.frame());
  if (!parsed) return;
  const wire::packet_view pkt = *parsed;
  const wire::ip_family fam = pkt.family();
  const before b(pkt);

  if (which == op_too_big || which == op_port_unreachable || which == op_echo_reply) {
    icmp_reply_options o;
    o.src_mac = mac(in);
    o.ip_id = in.u16();
    o.flow_label = in.u32() & 0xFFFFF;
    expected<std::span<std::byte>, forward_error> r = unexpected{forward_error::none};
    if (which == op_too_big) {
      too_big_options t;
      t.src_mac = o.src_mac;
      t.quote_ttl_decremented = in.bit();
      r = make_too_big_reply(std::span<std::byte>(reply), pkt, in.u32(), t);
    } else if (which == op_port_unreachable) {
      r = make_port_unreachable(std::span<std::byte>(reply), pkt, o);
    } else {
      r = make_echo_reply(std::span<std::byte>(reply), pkt, o);
    }
    if (r) {
      FUZZ_REQUIRE(r->size() <= reply.size());
      check_answer(*r, reply, pkt, pkt.key(), which != op_echo_reply);
      if (which == op_echo_reply) {
        auto a = reparse(*r, pkt.has_ethernet() ? pkt.l3_offset() : 0);
        FUZZ_REQUIRE(a.l4_len() == pkt.l4_len());
        FUZZ_REQUIRE(std::equal(a.l4().begin() + 4, a.l4().end(), pkt.l4().begin() + 4));
      }
    }
    return;
  }

  if (which == op_dr) {
    dr_config c;
    c.l2 = l2(in);
    c.decrement_ttl = (flags & 1) != 0;
    c.mtu = mtu;
    c.ip_ids = &ids;
    c.reply_flow_label = in.u32() & 0xFFFFF;
    auto r = direct_route(buf, pkt, c, reply);
    if (!r) return;
    if (r->action == forward_action::reply_icmp) {
      check_answer(r->frame, reply, pkt, pkt.key(), true);
      return;
    }
    FUZZ_REQUIRE(fuzz::inside(r->frame, buf.storage()) && buf.is_frame(r->frame));
    auto o = reparse(r->frame, r->l3_offset);
    FUZZ_REQUIRE(o.l3_len() == b.ip.size());
    FUZZ_REQUIRE(wire::mac_address{o.ethernet().dst()} == c.l2.dst);
    if (c.decrement_ttl) FUZZ_REQUIRE(ttl_of(o.l3()) + 1 == ttl_of(b.ip));
    if (o.is_ipv4() && b.ipv4_header_ok) FUZZ_REQUIRE(ipv4_header_ok(o.l3()));
    // Only the TTL / hop limit and the header checksum change in the IP packet.
    for (std::size_t i = 0; i < b.ip.size(); ++i)
      if (i != 8 && i != 10 && i != 11 && !(o.is_ipv6() && i == 7)) FUZZ_REQUIRE(o.l3()[i] == b.ip[i]);
    if (r->action == forward_action::fragment) run_fragments(in, *r);
    return;
  }

  if (which == op_tunnel) {
    tunnel_config c;
    c.type = static_cast<tunnel_type>(in.u8() % 3);
    c.checksum = static_cast<tunnel_checksum>(in.u8() % 3);
    const wire::ip_family outer = in.bit() ? wire::ip_family::v4 : wire::ip_family::v6;
    c.local = address(in, outer);
    c.gue_port = in.u16();
    c.decrement_ttl = (flags & 1) != 0;
    c.rewrite_l2 = (flags & 2) != 0;
    c.l2 = l2(in);
    c.mtu = mtu;
    c.ip_ids = &ids;
    const auto real = address(in, (flags & 4) ? other(outer) : outer);
    std::optional<std::uint16_t> id;
    if (in.bit()) id = in.u16();
    auto r = tunnel_encapsulate(buf, pkt, real, c, reply, id);
    if (!r) return;
    if (r->action == forward_action::reply_icmp) {
      check_answer(r->frame, reply, pkt, pkt.key(), true);
      return;
    }
    FUZZ_REQUIRE(fuzz::inside(r->frame, buf.storage()) && buf.is_frame(r->frame));
    const auto frame = std::span<std::byte>(r->frame);
    const bool v4 = outer == wire::ip_family::v4;
    if (!pkt.has_ethernet()) FUZZ_REQUIRE(r->l3_offset == 0);
    else FUZZ_REQUIRE(r->l3_offset >= 14 && be16_at(frame, r->l3_offset - 2) == (v4 ? 0x0800u : 0x86DDu));
    const auto ip = frame.subspan(r->l3_offset);
    FUZZ_REQUIRE((byte_at(ip, 0) >> 4) == (v4 ? 4u : 6u));
    FUZZ_REQUIRE((v4 ? be16_at(ip, 2) : be16_at(ip, 4) + 40u) == ip.size());
    if (v4) FUZZ_REQUIRE(ipv4_header_ok(ip));
    const std::size_t ohl = v4 ? 20 : 40;
    const unsigned proto = byte_at(ip, v4 ? 9 : 6);
    const auto payload = std::span<const std::byte>(ip).subspan(ohl);
    const bool csum = c.checksum != tunnel_checksum::none;
    if (c.type == tunnel_type::gue) {
      FUZZ_REQUIRE(proto == 17);
      FUZZ_REQUIRE(be16_at(payload, 2) == c.gue_port && be16_at(payload, 4) == payload.size());
      if (csum) FUZZ_REQUIRE(be16_at(payload, 6) != 0 && fuzz::verifies(payload, fuzz::pseudo(ip, 17, payload.size())));
    } else if (c.type == tunnel_type::gre) {
      FUZZ_REQUIRE(proto == 47);
      FUZZ_REQUIRE(((be16_at(payload, 0) & 0x8000) != 0) == csum);
      if (csum) FUZZ_REQUIRE(fuzz::verifies(payload));
    } else {
      FUZZ_REQUIRE(proto == (pkt.is_ipv4() ? 4u : 41u));
    }
    // The inner packet comes back out as it went in, TTL aside.
    decap_config dc{c.gue_port, true};
    auto d = decapsulate(ip, dc);
    FUZZ_REQUIRE(d.has_value());
    FUZZ_REQUIRE(d->inner.size() == b.ip.size());
    if (c.decrement_ttl) FUZZ_REQUIRE(ttl_of(d->inner) + 1 == ttl_of(b.ip));
    if (pkt.is_ipv4() && b.ipv4_header_ok) FUZZ_REQUIRE(ipv4_header_ok(d->inner));
    for (std::size_t i = 0; i < b.ip.size(); ++i)
      if (i != 8 && i != 10 && i != 11 && !(pkt.is_ipv6() && i == 7)) FUZZ_REQUIRE(d->inner[i] == b.ip[i]);
    if (r->action == forward_action::fragment) {
      run_fragments(in, *r);
    } else if (r->l3_offset != 0) {
      // The same in place on the Ethernet frame: L2 header moved up to the inner packet.
      const std::vector<std::byte> inner(d->inner.begin(), d->inner.end());
      const std::vector<std::byte> l2(frame.begin(), frame.begin() + r->l3_offset);
      auto back = decapsulate_frame(buf, dc);
      FUZZ_REQUIRE(back.has_value());
      FUZZ_REQUIRE(fuzz::inside(back->frame, buf.storage()) && buf.is_frame(back->frame));
      FUZZ_REQUIRE(back->l3_offset == l2.size());
      FUZZ_REQUIRE(std::equal(inner.begin(), inner.end(), back->frame.begin() + back->l3_offset, back->frame.end()));
      FUZZ_REQUIRE(std::equal(l2.begin(), l2.end() - 2, back->frame.begin()));
      FUZZ_REQUIRE(be16_at(back->frame, l2.size() - 2) == (pkt.is_ipv4() ? 0x0800u : 0x86DDu));
    }
    return;
  }

  // NAT and FullNAT, each way.
  nat_config c;
  c.l2 = l2(in);
  c.rewrite_l2 = (flags & 2) != 0 || ethernet;
  if (flags & 0x40) c.rewrite_l2 = false;
  c.decrement_ttl = (flags & 1) != 0;
  c.keep_zero_udp_checksum = (flags & 8) != 0;
  c.keep_quoted_l4_checksum = (flags & 16) != 0;
  c.mtu = mtu;
  c.ip_ids = &ids;
  c.reply_flow_label = in.u32() & 0xFFFFF;
  // The flow the packet must belong to: its own (or, for an ICMP error, the reverse of the one
  // it quotes), unless the input asks for fuzzed endpoints.
  wire::endpoint from_src, from_dst;
  if (from_packet && pkt.is_icmp_error()) {
    from_src = pkt.quoted_flow_key().dst();
    from_dst = pkt.quoted_flow_key().src();
  } else if (from_packet) {
    from_src = pkt.key().src();
    from_dst = pkt.key().dst();
  } else {
    from_src = {address(in, fam), in.u16()};
    from_dst = {address(in, fam), in.u16()};
  }
  const wire::ip_family tf = (flags & 4) ? other(fam) : fam;
  const wire::endpoint a{address(in, tf), in.u16()};
  const wire::endpoint z{address(in, fam), in.u16()};
  forward_result r = unexpected{forward_error::none};
  switch (which) {
    case op_nat_in: {
      const nat_connection conn{from_src, from_dst, a};
      r = nat_inbound(buf, pkt, conn, c, reply);
      check_translation(r, buf, reply, pkt, b, c, from_src, a, false, true);
      break;
    }
    case op_nat_out: {
      const nat_connection conn{from_dst, a, from_src};
      r = nat_outbound(buf, pkt, conn, c, reply);
      check_translation(r, buf, reply, pkt, b, c, a, from_dst, true, false);
      break;
    }
    case op_fnat_in: {
      const full_nat_connection conn{from_src, from_dst, z, a};
      r = full_nat_inbound(buf, pkt, conn, c, reply);
      check_translation(r, buf, reply, pkt, b, c, z, a, true, true);
      break;
    }
    default: {
      const full_nat_connection conn{z, a, from_dst, from_src};
      r = full_nat_outbound(buf, pkt, conn, c, reply);
      check_translation(r, buf, reply, pkt, b, c, a, z, true, true);
      break;
    }
  }
  if (r && r->action == forward_action::fragment) run_fragments(in, *r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::reader in(data, size);
  run(in);
  return 0;
}
