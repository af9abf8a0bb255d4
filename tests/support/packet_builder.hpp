// Test support: a fluent builder for frames and IP packets (the Katran PacketBuilder idea) with
// correct lengths, type fields and checksums, plus hex_bytes("45 00 ...") for byte fixtures.
//   auto f = packet_builder{}.eth().vlan(100).ipv4("198.18.0.2", "198.18.0.100")
//                .tcp(40000, 80, tcp_flags::syn).payload("hello").build();
// Layers are listed outermost first; build() fills every "next type" field from the layer after
// it, every length from what follows, and every checksum (RFC 1071, computed here, independent of
// l4lb/wire/checksum.hpp). Each layer takes an options struct whose overrides make bad packets.
// Test code only: it allocates and throws std::invalid_argument on bad arguments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/ethernet.hpp"

namespace l4lb::test {

using bytes = std::vector<std::byte>;

/// "45 00 00 54" or "450000 54", whitespace, ':' and '-' ignored; throws on anything else.
inline bytes hex_bytes(std::string_view text) {
  bytes out;
  int hi = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ':' || c == '-') continue;
    int v = wire::detail::hex_value(c);
    if (v < 0) throw std::invalid_argument("hex_bytes: bad character");
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::byte>(hi * 16 + v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("hex_bytes: odd number of digits");
  return out;
}

/// "45 00 00 54 ..." (for failure messages).
inline std::string to_hex(std::span<const std::byte> b) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i) s.push_back(' ');
    auto v = static_cast<unsigned>(b[i]);
    s.push_back(hex[v >> 4]);
    s.push_back(hex[v & 15u]);
  }
  return s;
}

/// wire::mac_address::parse, throwing on bad text (test code).
inline wire::mac_address mac(std::string_view text) {
  auto m = wire::mac_address::parse(text);
  if (!m) throw std::invalid_argument("mac: " + std::string(wire::to_string(m.error())));
  return *m;
}

/// RFC 1071 ones'-complement sum, folded to 16 bits, not complemented. Deliberately the plain
/// textbook loop: it is the reference the library's checksums are tested against.
inline std::uint32_t ones_sum(std::span<const std::byte> b, std::uint32_t sum = 0) {
  std::uint64_t s = sum;
  for (std::size_t i = 0; i + 1 < b.size(); i += 2)
    s += (static_cast<std::uint32_t>(b[i]) << 8) | static_cast<std::uint32_t>(b[i + 1]);
  if (b.size() % 2) s += static_cast<std::uint32_t>(b.back()) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint32_t>(s);
}
inline std::uint16_t inet_checksum(std::span<const std::byte> b, std::uint32_t sum = 0) {
  return static_cast<std::uint16_t>(~ones_sum(b, sum) & 0xffff);
}
/// Writes a fresh header checksum into the IPv4 header (no options) at `l3` of frame `f`, after
/// a test changed its fields in place.
inline void refresh_ipv4_checksum(std::span<std::byte> f, std::size_t l3 = 14) {
  f[l3 + 10] = f[l3 + 11] = std::byte{0};
  const std::uint16_t c = inet_checksum(f.subspan(l3, 20));
  f[l3 + 10] = static_cast<std::byte>(c >> 8);
  f[l3 + 11] = static_cast<std::byte>(c & 0xff);
}

struct ipv4_options {
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  std::uint16_t ident = 0;
  bool dont_frag = false;
  bool more_frags = false;
  std::uint16_t frag_offset = 0;  ///< 8-byte units
  bytes options{};                  ///< padded with zeros (end of list) to a multiple of 4
  std::optional<std::uint8_t> protocol{};     ///< default: from the next layer
  std::optional<std::uint16_t> total_len{};   ///< default: header + what follows
  std::optional<std::uint8_t> ihl{};          ///< default: 5 + options / 4
  std::optional<std::uint8_t> version{};      ///< default 4
  bool corrupt_checksum = false;            ///< write the correct checksum xor 0x0001
};
struct ipv6_options {
  std::uint8_t hop_limit = 64;
  std::uint8_t traffic_class = 0;
  std::uint32_t flow_label = 0;
  std::optional<std::uint8_t> next_header{};
  std::optional<std::uint16_t> payload_len{};
  std::optional<std::uint8_t> version{};
};
struct tcp_options {
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint16_t window = 65535;
  std::uint16_t urgent = 0;
  bytes options{};                            ///< padded with zeros to a multiple of 4
  std::optional<std::uint8_t> data_offset{};  ///< default: 5 + options / 4
};
struct udp_options {
  std::optional<std::uint16_t> length{};
  bool zero_checksum = false;  ///< IPv4 "no checksum"
};

class packet_builder {
 public:
  // --- link layer
  packet_builder& eth(wire::mac_address dst = mac("02:00:00:00:00:02"),
                      wire::mac_address src = mac("02:00:00:00:00:01"),
                      std::optional<std::uint16_t> ethertype = std::nullopt) {
    return add(eth_layer{dst, src, ethertype});
  }
  /// One tag; its TPID goes into the type field before it (0x8100 C-tag, 0x88a8 S-tag).
  packet_builder& vlan(std::uint16_t vid, std::uint8_t pcp = 0, std::uint16_t tpid = 0x8100, bool dei = false) {
    return add(vlan_layer{vid, pcp, tpid, dei});
  }
  /// 802.1ad S-tag then 802.1Q C-tag.
  packet_builder& qinq(std::uint16_t s_vid, std::uint16_t c_vid) { return vlan(s_vid, 0, 0x88a8).vlan(c_vid); }

  // --- network layer
  packet_builder& ipv4(std::string_view src, std::string_view dst, ipv4_options o = {}) {
    return add(ipv4_layer{v4(src), v4(dst), std::move(o)});
  }
  packet_builder& ipv6(std::string_view src, std::string_view dst, ipv6_options o = {}) {
    return add(ipv6_layer{v6(src), v6(dst), std::move(o)});
  }
  /// IPv6 extension headers. `len` is the whole header in bytes: a multiple of 8 (AH: of 4, >= 12).
  packet_builder& hop_by_hop(std::size_t len = 8) { return add(ext_layer{0, len, 0, 0}); }
  packet_builder& dest_opts(std::size_t len = 8) { return add(ext_layer{60, len, 0, 0}); }
  packet_builder& routing(std::uint8_t routing_type = 0, std::uint8_t segments_left = 0, std::size_t len = 8) {
    return add(ext_layer{43, len, routing_type, segments_left});
  }
  packet_builder& ah(std::size_t len = 16) { return add(ext_layer{51, len, 0, 0}); }
  /// Any extension-style header of `type` (the uniform format of RFC 6564).
  packet_builder& ipv6_ext(std::uint8_t type, std::size_t len = 8) { return add(ext_layer{type, len, 0, 0}); }
  packet_builder& fragment6(std::uint16_t offset_units, bool more, std::uint32_t ident = 0x01020304,
                            std::optional<std::uint8_t> next_header = std::nullopt) {
    return add(frag6_layer{offset_units, more, ident, next_header});
  }

  // --- transport layer
  packet_builder& tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags, tcp_options o = {}) {
    return add(tcp_layer{sport, dport, flags, std::move(o)});
  }
  packet_builder& udp(std::uint16_t sport, std::uint16_t dport, udp_options o = {}) {
    return add(udp_layer{sport, dport, o});
  }
  /// SCTP common header (checksum field left 0: CRC32c is not computed).
  packet_builder& sctp(std::uint16_t sport, std::uint16_t dport, std::uint32_t vtag = 1) {
    return add(sctp_layer{sport, dport, vtag});
  }
  /// ICMP (in IPv4) or ICMPv6 (in IPv6): the family comes from the enclosing IP layer.
  packet_builder& icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest = 0) {
    return add(icmp_layer{type, code, rest});
  }
  /// Echo request/reply with the family's type numbers (8/0, or 128/129 in IPv6).
  packet_builder& icmp_echo(bool request, std::uint16_t ident, std::uint16_t seq) {
    return add(icmp_layer{static_cast<std::uint8_t>(request ? 8 : 0), 0,
                          (std::uint32_t{ident} << 16) | seq, true});
  }

  // --- anything else
  /// Raw bytes announced to the layer before as `type` (an EtherType after L2, a protocol after IP).
  packet_builder& raw(bytes b, std::uint16_t type) { return add(raw_layer{std::move(b), type}); }
  packet_builder& payload(std::span<const std::byte> b) { return add(raw_layer{bytes(b.begin(), b.end()), {}}); }
  packet_builder& payload(std::string_view s) {
    bytes b;
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    return payload(b);
  }
  packet_builder& payload(std::size_t n, std::uint8_t fill = 0) {
    return payload(bytes(n, static_cast<std::byte>(fill)));
  }
  /// An ICMP error's quote: `inner` built (it should start at IP), cut to at most `max_len` bytes.
  packet_builder& quote(const packet_builder& inner, std::size_t max_len = std::numeric_limits<std::size_t>::max()) {
    auto b = inner.build();
    if (b.size() > max_len) b.resize(max_len);
    return payload(b);
  }

  [[nodiscard]] bytes build() const {
    bytes out;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      bytes h = header(i, out);
      h.insert(h.end(), out.begin(), out.end());
      out = std::move(h);
    }
    return out;
  }

 private:
  struct eth_layer { wire::mac_address dst, src; std::optional<std::uint16_t> type; };
  struct vlan_layer { std::uint16_t vid; std::uint8_t pcp; std::uint16_t tpid; bool dei; };
  struct ipv4_layer { wire::ipv4_address src, dst; ipv4_options o; };
  struct ipv6_layer { wire::ipv6_address src, dst; ipv6_options o; };
  struct ext_layer { std::uint8_t type; std::size_t len; std::uint8_t routing_type, segments_left; };
  struct frag6_layer { std::uint16_t offset; bool more; std::uint32_t ident; std::optional<std::uint8_t> next; };
  struct tcp_layer { std::uint16_t sport, dport; std::uint8_t flags; tcp_options o; };
  struct udp_layer { std::uint16_t sport, dport; udp_options o; };
  struct sctp_layer { std::uint16_t sport, dport; std::uint32_t vtag; };
  struct icmp_layer { std::uint8_t type, code; std::uint32_t rest; bool echo = false; };
  struct raw_layer { bytes b; std::optional<std::uint16_t> type; };
  using layer = std::variant<eth_layer, vlan_layer, ipv4_layer, ipv6_layer, ext_layer, frag6_layer, tcp_layer,
                             udp_layer, sctp_layer, icmp_layer, raw_layer>;

  packet_builder& add(layer l) {
    layers_.push_back(std::move(l));
    return *this;
  }

  static wire::ipv4_address v4(std::string_view s) {
    auto a = wire::ipv4_address::parse(s);
    if (!a) throw std::invalid_argument("packet_builder: bad IPv4 address");
    return *a;
  }
  static wire::ipv6_address v6(std::string_view s) {
    auto a = wire::ipv6_address::parse(s);
    if (!a) throw std::invalid_argument("packet_builder: bad IPv6 address");
    return *a;
  }
  static void put16(bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::byte>(v >> 8);
    b[at + 1] = static_cast<std::byte>(v);
  }
  static void push16(bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::byte>(v >> 8));
    b.push_back(static_cast<std::byte>(v));
  }
  static void push32(bytes& b, std::uint32_t v) {
    push16(b, static_cast<std::uint16_t>(v >> 16));
    push16(b, static_cast<std::uint16_t>(v));
  }
  static void pad4(bytes& b) {
    while (b.size() % 4) b.push_back(std::byte{0});
  }

  /// What layer i calls itself to the layer before it: an EtherType (after L2) or a protocol.
  [[nodiscard]] std::optional<std::uint16_t> type_of(std::size_t i, bool as_ethertype) const {
    if (i >= layers_.size()) return std::nullopt;
    const layer& l = layers_[i];
    if (auto* v = std::get_if<vlan_layer>(&l)) return v->tpid;
    if (std::holds_alternative<ipv4_layer>(l)) return as_ethertype ? 0x0800 : 4;
    if (std::holds_alternative<ipv6_layer>(l)) return as_ethertype ? 0x86dd : 41;
    if (auto* e = std::get_if<ext_layer>(&l)) return e->type;
    if (std::holds_alternative<frag6_layer>(l)) return 44;
    if (std::holds_alternative<tcp_layer>(l)) return 6;
    if (std::holds_alternative<udp_layer>(l)) return 17;
    if (std::holds_alternative<sctp_layer>(l)) return 132;
    if (std::holds_alternative<icmp_layer>(l)) return ip_family_at(i) == 6 ? 58 : 1;
    if (auto* r = std::get_if<raw_layer>(&l)) return r->type;
    return std::nullopt;
  }
  /// 4 or 6: the family of the nearest IP layer before i (0 if none).
  [[nodiscard]] int ip_family_at(std::size_t i) const {
    for (std::size_t j = i; j-- > 0;) {
      if (std::holds_alternative<ipv4_layer>(layers_[j])) return 4;
      if (std::holds_alternative<ipv6_layer>(layers_[j])) return 6;
    }
    return 0;
  }
  /// Pseudo-header sum (RFC 768 / RFC 8200 section 8.1) for an upper layer at i of `len` bytes.
  [[nodiscard]] std::uint32_t pseudo_sum(std::size_t i, std::uint8_t proto, std::size_t len) const {
    for (std::size_t j = i; j-- > 0;) {
      bytes p;
      if (auto* a = std::get_if<ipv4_layer>(&layers_[j])) {
        for (auto x : a->src.bytes) p.push_back(std::byte{x});
        for (auto x : a->dst.bytes) p.push_back(std::byte{x});
        push16(p, proto);
        push16(p, static_cast<std::uint16_t>(len));
        return ones_sum(p);
      }
      if (auto* a = std::get_if<ipv6_layer>(&layers_[j])) {
        for (auto x : a->src.bytes) p.push_back(std::byte{x});
        for (auto x : a->dst.bytes) p.push_back(std::byte{x});
        push32(p, static_cast<std::uint32_t>(len));
        push32(p, proto);
        return ones_sum(p);
      }
    }
    return 0;
  }

  [[nodiscard]] bytes header(std::size_t i, const bytes& inner) const {
    bytes h;
    const layer& l = layers_[i];
    if (auto* e = std::get_if<eth_layer>(&l)) {
      for (auto x : e->dst.bytes) h.push_back(std::byte{x});
      for (auto x : e->src.bytes) h.push_back(std::byte{x});
      push16(h, e->type ? *e->type : type_of(i + 1, true).value_or(0));
    } else if (auto* v = std::get_if<vlan_layer>(&l)) {
      push16(h, static_cast<std::uint16_t>((v->pcp & 7u) << 13 | (v->dei ? 0x1000u : 0u) | (v->vid & 0xfffu)));
      push16(h, type_of(i + 1, true).value_or(0));
    } else if (auto* a = std::get_if<ipv4_layer>(&l)) {
      bytes opts = a->o.options;
      pad4(opts);
      const auto ihl = a->o.ihl.value_or(static_cast<std::uint8_t>(5 + opts.size() / 4));
      h.push_back(static_cast<std::byte>(unsigned{a->o.version.value_or(4)} << 4 | (ihl & 15u)));
      h.push_back(std::byte{a->o.tos});
      push16(h, a->o.total_len.value_or(static_cast<std::uint16_t>(20 + opts.size() + inner.size())));
      push16(h, a->o.ident);
      push16(h, static_cast<std::uint16_t>((a->o.dont_frag ? 0x4000u : 0u) | (a->o.more_frags ? 0x2000u : 0u) |
                                           (a->o.frag_offset & 0x1fffu)));
      h.push_back(std::byte{a->o.ttl});
      h.push_back(static_cast<std::byte>(a->o.protocol.value_or(static_cast<std::uint8_t>(type_of(i + 1, false).value_or(255)))));
      push16(h, 0);
      for (auto x : a->src.bytes) h.push_back(std::byte{x});
      for (auto x : a->dst.bytes) h.push_back(std::byte{x});
      h.insert(h.end(), opts.begin(), opts.end());
      auto c = inet_checksum(h);
      put16(h, 10, a->o.corrupt_checksum ? static_cast<std::uint16_t>(c ^ 1u) : c);
    } else if (auto* a6 = std::get_if<ipv6_layer>(&l)) {
      push32(h, std::uint32_t{a6->o.version.value_or(6)} << 28 | std::uint32_t{a6->o.traffic_class} << 20 |
                    (a6->o.flow_label & 0xfffffu));
      push16(h, a6->o.payload_len.value_or(static_cast<std::uint16_t>(inner.size())));
      h.push_back(static_cast<std::byte>(a6->o.next_header.value_or(static_cast<std::uint8_t>(type_of(i + 1, false).value_or(59)))));
      h.push_back(std::byte{a6->o.hop_limit});
      for (auto x : a6->src.bytes) h.push_back(std::byte{x});
      for (auto x : a6->dst.bytes) h.push_back(std::byte{x});
    } else if (auto* x = std::get_if<ext_layer>(&l)) {
      const bool is_ah = x->type == 51;
      if (x->len < 8 || x->len % (is_ah ? 4 : 8) != 0) throw std::invalid_argument("packet_builder: bad extension length");
      h.push_back(static_cast<std::byte>(type_of(i + 1, false).value_or(59)));
      h.push_back(static_cast<std::byte>(is_ah ? x->len / 4 - 2 : x->len / 8 - 1));
      if (x->type == 43) {
        h.push_back(std::byte{x->routing_type});
        h.push_back(std::byte{x->segments_left});
        h.resize(x->len, std::byte{0});
      } else if (x->type == 0 || x->type == 60) {
        // Options area: one PadN option (RFC 8200 section 4.2) filling it.
        const std::size_t n = x->len - 2;
        h.push_back(std::byte{1});
        h.push_back(static_cast<std::byte>(n - 2));
        h.resize(x->len, std::byte{0});
      } else if (is_ah) {
        h.push_back(std::byte{0});
        h.push_back(std::byte{0});
        push32(h, 0x100);  // SPI
        push32(h, 1);      // sequence number
        h.resize(x->len, std::byte{0});
      } else {
        h.resize(x->len, std::byte{0});
      }
    } else if (auto* f = std::get_if<frag6_layer>(&l)) {
      h.push_back(static_cast<std::byte>(f->next.value_or(static_cast<std::uint8_t>(type_of(i + 1, false).value_or(59)))));
      h.push_back(std::byte{0});
      push16(h, static_cast<std::uint16_t>((f->offset & 0x1fffu) << 3 | (f->more ? 1u : 0u)));
      push32(h, f->ident);
    } else if (auto* t = std::get_if<tcp_layer>(&l)) {
      bytes opts = t->o.options;
      pad4(opts);
      push16(h, t->sport);
      push16(h, t->dport);
      push32(h, t->o.seq);
      push32(h, t->o.ack);
      h.push_back(static_cast<std::byte>(t->o.data_offset.value_or(static_cast<std::uint8_t>(5 + opts.size() / 4)) << 4));
      h.push_back(std::byte{t->flags});
      push16(h, t->o.window);
      push16(h, 0);
      push16(h, t->o.urgent);
      h.insert(h.end(), opts.begin(), opts.end());
      put16(h, 16, l4_checksum(i, 6, h, inner));
    } else if (auto* u = std::get_if<udp_layer>(&l)) {
      push16(h, u->sport);
      push16(h, u->dport);
      push16(h, u->o.length.value_or(static_cast<std::uint16_t>(8 + inner.size())));
      push16(h, 0);
      if (!u->o.zero_checksum) {
        auto c = l4_checksum(i, 17, h, inner);
        put16(h, 6, c == 0 ? 0xffff : c);  // RFC 768: a computed 0 is sent as all ones
      }
    } else if (auto* s = std::get_if<sctp_layer>(&l)) {
      push16(h, s->sport);
      push16(h, s->dport);
      push32(h, s->vtag);
      push32(h, 0);
    } else if (auto* c = std::get_if<icmp_layer>(&l)) {
      const bool v6 = ip_family_at(i) == 6;
      std::uint8_t type = c->type;
      if (c->echo && v6) type = c->type == 8 ? 128 : 129;
      h.push_back(std::byte{type});
      h.push_back(std::byte{c->code});
      push16(h, 0);
      push32(h, c->rest);
      // ICMPv4 sums the message only (RFC 792); ICMPv6 adds the pseudo-header (RFC 4443 2.3).
      put16(h, 2, v6 ? l4_checksum(i, 58, h, inner) : checksum_of(h, inner, 0));
    } else if (auto* r = std::get_if<raw_layer>(&l)) {
      h = r->b;
    }
    return h;
  }

  static std::uint16_t checksum_of(const bytes& h, const bytes& inner, std::uint32_t initial) {
    bytes all = h;
    all.insert(all.end(), inner.begin(), inner.end());
    return inet_checksum(all, initial);
  }
  [[nodiscard]] std::uint16_t l4_checksum(std::size_t i, std::uint8_t proto, const bytes& h, const bytes& inner) const {
    return checksum_of(h, inner, pseudo_sum(i, proto, h.size() + inner.size()));
  }

  std::vector<layer> layers_;
};

}  // namespace l4lb::test
