// wire::parse(): one pass over an Ethernet frame (or, with parse_ip(), a bare IP packet) that
// checks every header it uses and returns a packet_view, or the named reason to drop the frame.
// Never reads outside the span, never allocates, never throws. Frames that are fine but carry no
// IP come back as drop_reason::not_ip: pass them to the host stack, do not count them as drops.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ranges>
#include <span>
#include <type_traits>

#include "l4lb/expected.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/icmp.hpp"
#include "l4lb/wire/ipv4.hpp"
#include "l4lb/wire/ipv6.hpp"
#include "l4lb/wire/packet.hpp"
#include "l4lb/wire/tcp.hpp"
#include "l4lb/wire/udp.hpp"
#include "l4lb/wire/vlan.hpp"

namespace l4lb::wire {

/// Opt-in checks beyond what parse() needs for safe offsets. Both default off: NICs verify the
/// IPv4 header checksum, and option contents do not change where headers are.
struct parse_options {
  bool verify_ipv4_checksum = false;  ///< drop_reason::bad_ipv4_header_checksum
  bool check_options = false;         ///< bad_ipv4_option / bad_tcp_option (lengths only)
};

/// SCTP common header (RFC 9260 section 3.1): ports, verification tag, CRC32c.
inline constexpr std::size_t sctp_common_header_len = 12;

namespace detail {

struct packet_parser {
  using facts = packet_facts;

  /// The frame a load balancer sees most, in one straight pass: Ethernet II without tags, IPv4
  /// without options and not a fragment, TCP or UDP. Fills `f` exactly as run() would and
  /// returns true; returns false with `f` untouched for anything else (including every frame
  /// run() would refuse), which run() then parses. The general path's dispatch costs more than
  /// the rest of a director's established-flow packet (issue #9); tests/wire/parse_test.cpp
  /// checks the two agree.
  static bool run_plain_ipv4(std::span<const std::byte> frame, const parse_options& opt,
                             facts& f) noexcept {
    constexpr std::size_t l3 = ethernet_view::header_len;
    constexpr std::size_t l4 = l3 + ipv4_view::min_header_len;
    if (frame.size() < l4 + udp_view::header_len || frame.size() > 0xffff) return false;
    const std::byte* p = frame.data();
    if (load_be16(p + offsetof(ethernet_header, ethertype)) != ethertype::ipv4) return false;
    if (load_u8(p + l3) != 0x45) return false;  // version 4, IHL 5
    const std::size_t total = load_be16(p + l3 + offsetof(ipv4_header, total_len));
    if (total < ipv4_view::min_header_len + udp_view::header_len || total > frame.size() - l3)
      return false;
    if (load_be16(p + l3 + offsetof(ipv4_header, flags_frag)) & 0x3fffu) return false;  // MF, offset
    if (opt.verify_ipv4_checksum && !ipv4_header20_sums_to_ones(p + l3)) return false;
    const std::uint8_t protocol = load_u8(p + l3 + offsetof(ipv4_header, protocol));
    const std::size_t seg = total - ipv4_view::min_header_len;
    std::size_t header;
    std::size_t payload_end = l3 + total;
    std::uint8_t tcp_flags = 0;
    if (protocol == ip_proto::tcp) {
      if (seg < tcp_view::min_header_len) return false;
      header = std::size_t{load_u8(p + l4 + offsetof(tcp_header, data_offset))} >> 4 << 2;
      if (header < tcp_view::min_header_len || header > seg) return false;
      if (opt.check_options && header > tcp_view::min_header_len &&
          tcp_view::unchecked(frame.subspan(l4, seg)).check_options() != drop_reason::none)
        return false;
      tcp_flags = load_u8(p + l4 + offsetof(tcp_header, flags));
    } else if (protocol == ip_proto::udp) {
      const std::size_t len = load_be16(p + l4 + offsetof(udp_header, length));
      if (len < udp_view::header_len || len > seg) return false;
      header = udp_view::header_len;
      payload_end = l4 + len;
    } else {
      return false;
    }
    read_flow_addresses(ip_family::v4, p + l3, f.key);
    f.key.protocol = protocol;
    f.key.src_port = load_be16(p + l4);
    f.key.dst_port = load_be16(p + l4 + 2);
    f.l3_offset = static_cast<std::uint16_t>(l3);
    f.l3_len = static_cast<std::uint16_t>(total);
    f.l4_offset = static_cast<std::uint16_t>(l4);
    f.payload_offset = static_cast<std::uint16_t>(l4 + header);
    f.payload_end = static_cast<std::uint16_t>(payload_end);
    f.tcp_flags = tcp_flags;
    f.bits = facts::has_ethernet | facts::has_l4_header | facts::has_ports;
    return true;
  }

  /// Fills `f` for `frame`; returns drop_reason::none on success.
  static drop_reason run(std::span<const std::byte> frame, bool ethernet, const parse_options& opt,
                         facts& f) noexcept {
    if (frame.size() > 0xffff) return drop_reason::frame_too_large;
    std::size_t l3 = 0;
    ip_family family;
    if (ethernet) {
      if (frame.size() < ethernet_view::header_len) return drop_reason::truncated_ethernet;
      f.bits |= facts::has_ethernet;
      std::uint16_t type = load_be16(frame.data() + offsetof(ethernet_header, ethertype));
      std::size_t off = ethernet_view::header_len;  // just after the current type field
      while (is_vlan_tpid(type)) {
        if (f.vlan_count == max_vlan_tags) return drop_reason::too_many_vlan_tags;
        if (frame.size() - off < vlan_view::header_len) return drop_reason::truncated_vlan;
        type = load_be16(frame.data() + off + offsetof(vlan_header, ethertype));
        off += vlan_view::header_len;
        ++f.vlan_count;
      }
      if (type == ethertype::ipv4)
        family = ip_family::v4;
      else if (type == ethertype::ipv6)
        family = ip_family::v6;
      else
        return drop_reason::not_ip;
      l3 = off;
    } else {
      if (frame.empty()) return drop_reason::truncated_ip;
      const unsigned version = load_u8(frame.data()) >> 4;
      if (version == 4)
        family = ip_family::v4;
      else if (version == 6)
        family = ip_family::v6;
      else
        return drop_reason::bad_ip_version;
    }
    f.l3_offset = static_cast<std::uint16_t>(l3);
    const auto ip = frame.subspan(l3);
    std::uint8_t protocol;
    bool upper_layer;  // the L4 header is in this packet (not a non-first fragment)
    std::size_t l4;
    if (family == ip_family::v4) {
      auto v = ipv4_view::make(ip);
      if (!v) return v.error();
      if (opt.verify_ipv4_checksum && !v->verify_checksum()) return drop_reason::bad_ipv4_header_checksum;
      if (opt.check_options && v->check_options() != drop_reason::none) return drop_reason::bad_ipv4_option;
      f.l3_len = v->total_len();
      if (v->has_options()) f.bits |= facts::has_ipv4_options;
      if (v->is_fragment()) {
        f.bits |= facts::is_fragment;
        if (v->more_frags()) f.bits |= facts::more_fragments;
        f.fragment_offset = static_cast<std::uint16_t>(v->frag_offset_bytes());
      }
      protocol = v->protocol();
      upper_layer = v->frag_offset() == 0;
      l4 = l3 + v->header_len();
    } else {
      auto v = ipv6_view::make(ip);
      if (!v) return v.error();
      f.l3_len = static_cast<std::uint16_t>(ipv6_view::header_len + v->payload_len());
      auto chain = walk_ipv6_extensions(v->packet(), v->next_header());
      if (!chain) return chain.error();
      if (chain->has_fragment_header && (chain->more_frags || chain->frag_offset != 0)) {
        f.bits |= facts::is_fragment;
        if (chain->more_frags) f.bits |= facts::more_fragments;
        f.fragment_offset = static_cast<std::uint16_t>(std::uint32_t{chain->frag_offset} * 8);
      }
      protocol = chain->protocol;
      upper_layer = chain->reached_upper_layer;
      l4 = l3 + chain->l4_offset;
    }
    read_flow_addresses(family, ip.data(), f.key);
    f.key.protocol = protocol;
    const std::size_t l3_end = l3 + f.l3_len;
    f.l4_offset = static_cast<std::uint16_t>(l4);
    f.payload_offset = static_cast<std::uint16_t>(l4);
    f.payload_end = static_cast<std::uint16_t>(l3_end);
    if (!upper_layer) return drop_reason::none;
    const drop_reason r = upper(frame.subspan(l4, l3_end - l4), l4, family, protocol, opt, f);
    // A first fragment may end inside its L4 header (RFC 791 allows 8-byte fragments, and the
    // kernel reassembles before it reads L4): its ports are unknown until reassembly.
    if ((f.bits & facts::more_fragments) &&
        (r == drop_reason::truncated_tcp || r == drop_reason::truncated_udp ||
         r == drop_reason::truncated_sctp || r == drop_reason::truncated_icmp))
      return drop_reason::none;
    return r;
  }

 private:
  static drop_reason upper(std::span<const std::byte> seg, std::size_t l4, ip_family family,
                           std::uint8_t protocol, const parse_options& opt, facts& f) noexcept {
    std::size_t header = 0;
    switch (protocol) {
      case ip_proto::tcp: {
        auto t = tcp_view::make(seg);
        if (!t) return t.error();
        if (opt.check_options && t->check_options() != drop_reason::none) return drop_reason::bad_tcp_option;
        f.tcp_flags = t->flags();
        header = t->header_len();
        break;
      }
      case ip_proto::udp: {
        // A first fragment's UDP length counts bytes that are still to come.
        auto u = (f.bits & facts::more_fragments) ? udp_view::make_header_only(seg) : udp_view::make(seg);
        if (!u) return u.error();
        header = udp_view::header_len;
        if (!(f.bits & facts::more_fragments)) f.payload_end = static_cast<std::uint16_t>(l4 + u->length());
        break;
      }
      case ip_proto::sctp:
        if (seg.size() < sctp_common_header_len) return drop_reason::truncated_sctp;
        header = sctp_common_header_len;
        break;
      case ip_proto::icmp:
      case ip_proto::icmpv6: {
        if ((protocol == ip_proto::icmp) != (family == ip_family::v4)) return drop_reason::none;
        auto c = icmp_view::make(seg);
        if (!c) return c.error();
        header = icmp_view::header_len;
        f.icmp_type = c->type();
        f.icmp_code = c->code();
        if (is_icmp_error(protocol, c->type())) {
          auto q = parse_icmp_quote(family, c->payload());
          if (!q) return q.error();
          f.bits |= facts::is_icmp_error;
          f.quote_l3_offset = static_cast<std::uint16_t>(l4 + icmp_view::header_len);
          f.quote_l4_offset = static_cast<std::uint16_t>(f.quote_l3_offset + q->l4_offset);
          f.quote_protocol = q->protocol;
          if (q->has_l4) f.bits |= facts::quote_has_l4;
        }
        break;
      }
      default:
        return drop_reason::none;  // no header l4lb parses: protocol only, no ports
    }
    f.bits |= facts::has_l4_header;
    f.payload_offset = static_cast<std::uint16_t>(l4 + header);
    read_flow_ports(protocol, seg.data(), f.key);
    if (protocol != ip_proto::icmp && protocol != ip_proto::icmpv6)
      f.bits |= facts::has_ports;
    else if (is_icmp_echo(protocol, f.icmp_type))
      f.bits |= facts::has_ports;
    return drop_reason::none;
  }

 public:
  template <wire_byte Byte>
  static expected<basic_packet_view<Byte>, drop_reason> make(std::span<Byte> frame, bool ethernet,
                                                            const parse_options& opt) noexcept {
    facts f;
    if (ethernet && run_plain_ipv4(frame, opt, f)) return basic_packet_view<Byte>{frame, f};
    if (auto r = run(frame, ethernet, opt, f); r != drop_reason::none) return unexpected{r};
    return basic_packet_view<Byte>{frame, f};
  }
  /// make(), the view constructed at `at` (uninitialised storage) instead of returned: a burst
  /// parses into its own array without copying each 80-byte view twice (issue #9's profile).
  template <wire_byte Byte>
  static drop_reason make_at(std::span<Byte> frame, const parse_options& opt, basic_packet_view<Byte>* at) noexcept {
    auto* v = std::construct_at(at, basic_packet_view<Byte>{frame, facts{}});
    if (run_plain_ipv4(frame, opt, v->f_)) return drop_reason::none;
    if (auto r = run(frame, true, opt, v->f_); r != drop_reason::none) {
      std::destroy_at(v);
      return r;
    }
    return drop_reason::none;
  }
};

}  // namespace detail

/// Parses an Ethernet II frame: optional 802.1Q / QinQ tags, IPv4 (options) or IPv6 (extension
/// chain), then TCP, UDP, SCTP, ICMP or ICMPv6 (with the quote of an error). Other protocols give a
/// view with protocol() set and no L4 header. Errors: every drop_reason except none; not_ip means
/// "pass", not "malformed".
[[nodiscard]] inline expected<packet_view, drop_reason> parse(std::span<std::byte> frame,
                                                              const parse_options& opt = {}) noexcept {
  return detail::packet_parser::make(frame, true, opt);
}
[[nodiscard]] inline expected<const_packet_view, drop_reason> parse(std::span<const std::byte> frame,
                                                                    const parse_options& opt = {}) noexcept {
  return detail::packet_parser::make(frame, true, opt);
}

/// parse() into storage of the caller's (bulk parsing): on success a packet_view is constructed
/// at `out` (which must not hold a live one) and drop_reason::none returned; on error nothing is
/// left constructed there.
[[nodiscard]] inline drop_reason parse_into(std::span<std::byte> frame, const parse_options& opt,
                                            packet_view* out) noexcept {
  return detail::packet_parser::make_at(frame, opt, out);
}

/// Parses a packet that starts at its IP header (tun devices, decapsulated inner packets); the
/// version nibble picks the family. Errors as parse(), minus the L2 ones, plus truncated_ip.
[[nodiscard]] inline expected<packet_view, drop_reason> parse_ip(std::span<std::byte> packet,
                                                                 const parse_options& opt = {}) noexcept {
  return detail::packet_parser::make(packet, false, opt);
}
[[nodiscard]] inline expected<const_packet_view, drop_reason> parse_ip(std::span<const std::byte> packet,
                                                                       const parse_options& opt = {}) noexcept {
  return detail::packet_parser::make(packet, false, opt);
}

/// Containers of std::byte (std::vector, std::array): a mutable container gives a packet_view, a
/// const one a const_packet_view. (Without these, a vector argument would match both span
/// overloads; for a span argument the non-template overloads above win the tie.)
template <std::ranges::contiguous_range R>
  requires std::same_as<std::ranges::range_value_t<R>, std::byte>
[[nodiscard]] auto parse(R& frame, const parse_options& opt = {}) noexcept {
  return parse(std::span(frame), opt);
}
template <std::ranges::contiguous_range R>
  requires std::same_as<std::ranges::range_value_t<R>, std::byte>
[[nodiscard]] auto parse_ip(R& packet, const parse_options& opt = {}) noexcept {
  return parse_ip(std::span(packet), opt);
}

}  // namespace l4lb::wire
