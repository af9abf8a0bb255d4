// libFuzzer target for wire::parse / parse_ip and the header views, GUE and GRE included (clang
// only; scripts/fuzz builds and runs it, scripts/test for a few seconds). Any input must give an
// error or a view whose offsets stay inside the input; every accessor is then exercised so
// ASan/UBSan see every read. Build and run by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/parse_fuzz.cpp -o parse_fuzz
//   ./parse_fuzz -max_len=2048 tests/fuzz/corpus/parse_fuzz   (frames of tests/data/*.pcap)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "l4lb/wire/gre.hpp"
#include "l4lb/wire/gue.hpp"
#include "l4lb/wire/parse.hpp"

namespace {

using namespace l4lb::wire;

void require(bool ok) {
  if (!ok) std::abort();
}

std::uint64_t touch(const packet_view& p) {
  const std::size_t n = p.frame().size();
  const std::size_t l3_end = p.l3_offset() + p.l3_len();
  require(l3_end <= n);
  require(p.l3_offset() <= p.l4_offset() && p.l4_offset() <= l3_end);
  require(p.l4_offset() <= p.payload_offset() && p.payload_offset() + p.payload_len() <= l3_end);
  require(p.vlan_count() <= max_vlan_tags);
  std::uint64_t s = p.key().hash();
  for (std::size_t i = 0; i < p.vlan_count(); ++i) s += p.vlan(i).tci() + p.vlan_tpid(i);
  if (p.has_ethernet()) s += p.ethernet().ethertype() + p.ethernet().src().bytes[0];
  if (p.is_ipv4()) {
    auto ip = p.ipv4();
    s += ip.compute_checksum() + ip.ttl() + (ip.verify_checksum() ? 1u : 0u);
    for (const auto& o : ip.options()) s += o.kind + o.data.size();
    s += static_cast<std::uint64_t>(ip.check_options());
  } else {
    s += p.ipv6().flow_label();
  }
  if (p.has_l4_header()) {
    switch (p.protocol()) {
      case ip_proto::tcp: {
        auto t = p.tcp();
        require(p.l4_offset() + t.header_len() <= l3_end);
        s += t.mss().value_or(0) + t.window_scale().value_or(0) + (t.sack_permitted() ? 1u : 0u);
        if (auto ts = t.timestamps()) s += ts->first;
        for (const auto& o : t.options()) s += o.kind + o.data.size();
        break;
      }
      case ip_proto::udp: s += p.udp().payload().size() + p.udp().length(); break;
      case ip_proto::icmp:
      case ip_proto::icmpv6: s += p.icmp().rest_of_header() + p.icmp().payload().size(); break;
      default: break;
    }
  }
  if (p.is_icmp_error()) {
    require(p.quote_l3_offset() < p.quote_l4_offset());
    require(p.quote_l4_offset() + icmp_quote_min_l4 <= l3_end);
    s += p.quoted_flow_key().hash();
  }
  for (auto b : p.payload()) s += std::to_integer<unsigned>(b);
  // Mutating through the views stays inside too.
  if (p.is_ipv4()) p.ipv4().set_ttl(static_cast<std::uint8_t>(s));
  if (p.has_l4_header() && p.protocol() == ip_proto::tcp) (void)p.tcp().set_mss(1400);
  return s;
}

/// The tunnel header views (GUE, RFC draft-ietf-intarea-gue; GRE, RFC 2784 / 2890) over `b`: a
/// header they accept lies inside `b`, and so does its payload.
std::uint64_t tunnel_headers(std::span<const std::byte> b) {
  std::uint64_t s = 0;
  if (auto g = basic_gue_view<const std::byte>::make(b)) {
    require(g->header_len_total() <= b.size());
    require(g->payload().size() == b.size() - g->header_len_total());
    s += g->version() + g->hlen() + g->proto_ctype() + g->flags() + (g->control() ? 1u : 0u);
  }
  if (auto g = basic_gre_view<const std::byte>::make(b)) {
    require(g->header_len() <= b.size());
    require(g->payload().size() == b.size() - g->header_len());
    s += g->version() + g->protocol();
    if (g->has_checksum()) s += g->checksum();
    if (g->has_key()) s += g->key();
    if (g->has_sequence()) s += g->sequence();
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);
  if (size) std::memcpy(buf.data(), data, size);
  const parse_options strict{.verify_ipv4_checksum = true, .check_options = true};
  volatile std::uint64_t sink = 0;
  for (bool ethernet : {true, false}) {
    for (const auto& opt : {parse_options{}, strict}) {
      auto copy = buf;  // touch() writes
      auto p = ethernet ? parse(std::span(copy), opt) : parse_ip(std::span(copy), opt);
      if (p)
        sink = sink + touch(*p);
      else
        require(p.error() != drop_reason::none);
    }
  }
  // The tunnel header views on raw input, and on what follows a parsed packet's UDP / IP header.
  sink = sink + tunnel_headers(std::span<const std::byte>(buf));
  if (auto p = parse_ip(std::span(buf)); p && p->has_l4_header()) {
    if (p->protocol() == ip_proto::udp) sink = sink + tunnel_headers(p->udp().payload());
    if (p->protocol() == ip_proto::gre) sink = sink + tunnel_headers(p->l4());
  }
  // The quote parser on raw input too (its own bounds, both families).
  for (auto f : {ip_family::v4, ip_family::v6}) {
    auto q = parse_icmp_quote(f, std::span<const std::byte>(buf));
    if (q) sink = sink + quoted_flow_key(f, std::span<const std::byte>(buf), *q).hash();
  }
  (void)sink;
  return 0;
}
