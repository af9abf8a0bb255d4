// Every bundled capture parses with zero drops except the not-IP frames, and what the parser
// reports adds up to what tshark reports for the same files. Each expected number below was
// produced by the tshark command written next to it (tshark 4.0, run on tests/data/*.pcap), or is
// stated in tests/data/CAPTURES.md; none was taken from this parser's output.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/parse.hpp"

using namespace l4lb::wire;

namespace {

struct capture_facts {
  const char* file;
  std::size_t packets;   // tshark -r F | wc -l                      (CAPTURES.md: "This run: N")
  std::size_t not_ip;    // tshark -r F -Y 'not ip and not ipv6' | wc -l   (ARP only, see below)
  std::size_t v4, v6;    // tshark -r F -T fields -e frame.protocols | grep -cE '^eth:ethertype:(vlan:ethertype:|ieee8021ad:ethertype:vlan:ethertype:)?ip(v6)?:'
  std::size_t tcp, udp, icmp, icmpv6;  // first protocol after the outer ip/ipv6 in frame.protocols, counted
  std::size_t tcp_conversations;  // tshark -r F -q -z conv,tcp | grep -c '<->'
  std::size_t udp_conversations;  // tshark -r F -q -z conv,udp | grep -c '<->'
  std::size_t syn_without_ack;    // tshark -r F -Y 'tcp.flags.syn==1 && tcp.flags.ack==0 && !icmp && !icmpv6' | wc -l
  std::uint64_t tcp_port_sum;     // tshark -r F -Y 'tcp && !icmp && !icmpv6' -T fields -e tcp.srcport -e tcp.dstport | awk '{s+=$1+$2} END{print s}'
  std::uint64_t udp_port_sum;     // the same with udp.srcport / udp.dstport
};

// tshark -r F -T fields -e frame.protocols | sort | uniq -c shows the not-IP frames are all ARP
// ("eth:ethertype:arp", or inside the tags in vlan-tagged.pcap).
const capture_facts all_captures[] = {
    // CAPTURES.md: 406 packets, 13 TCP conversations, 13 SYN, 2 ARP frames.
    {"client-vip-http.pcap", 406, 2, 404, 0, 404, 0, 0, 0, 13, 0, 13, 14247070, 0},
    // CAPTURES.md: 138 packets, 65 UDP conversations, no TCP, 6 ARP frames + 1 NS/NA pair.
    {"udp-dns-like.pcap", 138, 6, 120, 12, 0, 130, 0, 2, 0, 65, 0, 0, 5938290},
    // CAPTURES.md: 394 packets, 4 TCP conversations.
    {"icmp.pcap", 394, 2, 196, 196, 324, 8, 29, 31, 4, 8, 10, 14561448, 390341},
    // CAPTURES.md: 426 packets, 13 TCP conversations, 13 SYN, 1 NS/NA pair.
    {"ipv6-http.pcap", 426, 0, 0, 426, 424, 0, 0, 2, 13, 0, 13, 24109098, 0},
    // CAPTURES.md: 163 frames, 8 TCP conversations, 4 DNS queries + 4 responses.
    {"vlan-tagged.pcap", 163, 4, 127, 32, 135, 8, 10, 6, 8, 4, 8, 5661520, 359854},
};

l4lb::io::pcap_file load(const char* file) {
  auto f = l4lb::io::pcap_file::read(std::string(L4LB_TEST_DATA_DIR) + "/" + file);
  REQUIRE(f);
  return std::move(*f);
}

// Both directions of a flow map to one conversation, as tshark's conv tables count them.
flow_key canonical(const flow_key& k) {
  auto r = k.reversed();
  return std::tie(r.src_addr, r.src_port) < std::tie(k.src_addr, k.src_port) ? r : k;
}

}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("captures: every frame parses; only ARP is refused, as not_ip") {
    for (const auto& c : all_captures) {
      CAPTURE(c.file);
      auto f = load(c.file);
      CHECK(f.records().size() == c.packets);
      std::size_t not_ip = 0, v4 = 0, v6 = 0, tcp = 0, udp = 0, icmp = 0, icmpv6 = 0, syn = 0, frags = 0;
      std::uint64_t tcp_ports = 0, udp_ports = 0;
      std::set<flow_key> tcp_conv, udp_conv;
      for (const auto& r : f.records()) {
        // The strict options: Linux wrote every IPv4 header checksum (offload off, CAPTURES.md).
        auto p = parse(r.data, {.verify_ipv4_checksum = true, .check_options = true});
        if (!p) {
          CHECK(p.error() == drop_reason::not_ip);
          ++not_ip;
          continue;
        }
        (p->is_ipv4() ? v4 : v6)++;
        if (p->is_fragment()) ++frags;
        switch (p->protocol()) {
          case ip_proto::tcp:
            ++tcp;
            tcp_conv.insert(canonical(p->key()));
            tcp_ports += std::uint64_t{p->key().src_port} + p->key().dst_port;
            if ((p->tcp_flags() & (tcp_flags::syn | tcp_flags::ack)) == tcp_flags::syn) ++syn;
            break;
          case ip_proto::udp:
            ++udp;
            udp_conv.insert(canonical(p->key()));
            udp_ports += std::uint64_t{p->key().src_port} + p->key().dst_port;
            break;
          case ip_proto::icmp: ++icmp; break;
          case ip_proto::icmpv6: ++icmpv6; break;
          default: FAIL("unexpected protocol"); break;
        }
      }
      CHECK(not_ip == c.not_ip);
      CHECK(v4 == c.v4);
      CHECK(v6 == c.v6);
      CHECK(tcp == c.tcp);
      CHECK(udp == c.udp);
      CHECK(icmp == c.icmp);
      CHECK(icmpv6 == c.icmpv6);
      CHECK(tcp_conv.size() == c.tcp_conversations);
      CHECK(udp_conv.size() == c.udp_conversations);
      CHECK(syn == c.syn_without_ack);
      CHECK(tcp_ports == c.tcp_port_sum);
      CHECK(udp_ports == c.udp_port_sum);
      // tshark -r F -Y 'ip.flags.mf==1 || ip.frag_offset>0 || ipv6.fragment' | wc -l: 0 for every file.
      CHECK(frags == 0);
    }
  }

  TEST_CASE("captures: VLAN tags of vlan-tagged.pcap") {
    // tshark -r vlan-tagged.pcap -Y 'vlan.id==100 && !ieee8021ad' | wc -l        -> 127
    // tshark -r vlan-tagged.pcap -Y 'ieee8021ad.id==200 && vlan.id==300' | wc -l -> 36
    // (CAPTURES.md: "163 frames, 127 on VID 100 and 36 QinQ"; no untagged frames.)
    auto f = load("vlan-tagged.pcap");
    std::size_t vid100 = 0, qinq = 0, other = 0;
    for (const auto& r : f.records()) {
      auto p = parse(r.data);
      if (!p) {
        // ARP inside the tags: the tags are still well-formed, so count them by hand.
        REQUIRE(p.error() == drop_reason::not_ip);
        const bool outer_qinq = r.data[12] == std::byte{0x88} && r.data[13] == std::byte{0xa8};
        (outer_qinq ? qinq : vid100)++;
        continue;
      }
      if (p->vlan_count() == 1 && p->vlan_tpid(0) == ethertype::vlan && p->vlan(0).vid() == 100)
        ++vid100;
      else if (p->vlan_count() == 2 && p->vlan_tpid(0) == ethertype::qinq && p->vlan(0).vid() == 200 &&
               p->vlan_tpid(1) == ethertype::vlan && p->vlan(1).vid() == 300)
        ++qinq;
      else
        ++other;
    }
    CHECK(vid100 == 127);
    CHECK(qinq == 36);
    CHECK(other == 0);
  }

  TEST_CASE("captures: ICMP message kinds in icmp.pcap and vlan-tagged.pcap") {
    // tshark -r F -T fields -e icmp.type -e icmp.code -e icmpv6.type -e icmpv6.code | sort | uniq -c
    using kind = std::tuple<int, int, int>;  // protocol, type, code
    const std::map<kind, std::size_t> icmp_want = {
        {{1, 8, 0}, 5},  {{1, 0, 0}, 5},  {{1, 3, 3}, 3},   {{1, 11, 0}, 1},  {{1, 3, 4}, 11},  {{1, 3, 1}, 4},
        {{58, 128, 0}, 3}, {{58, 129, 0}, 3}, {{58, 1, 4}, 2}, {{58, 3, 0}, 1}, {{58, 2, 0}, 11}, {{58, 1, 3}, 3},
        {{58, 135, 0}, 4}, {{58, 136, 0}, 4}};
    const std::map<kind, std::size_t> vlan_want = {
        {{1, 8, 0}, 5}, {{1, 0, 0}, 5}, {{58, 128, 0}, 2}, {{58, 129, 0}, 2}, {{58, 135, 0}, 1}, {{58, 136, 0}, 1}};
    for (const auto& file_want : {std::pair{"icmp.pcap", &icmp_want}, std::pair{"vlan-tagged.pcap", &vlan_want}}) {
      const char* file = file_want.first;  // not a structured binding: clang 14 cannot capture those
      const auto* want = file_want.second;
      CAPTURE(file);
      auto f = load(file);
      std::map<kind, std::size_t> got;
      for (const auto& r : f.records()) {
        auto p = parse(r.data);
        if (p && (p->protocol() == ip_proto::icmp || p->protocol() == ip_proto::icmpv6))
          ++got[{p->protocol(), p->icmp_type(), p->icmp_code()}];
      }
      CHECK(got == *want);
    }
  }

  TEST_CASE("captures: the quoted flow of every ICMP error in icmp.pcap") {
    // tshark -r icmp.pcap -Y 'icmp.type == 3 or icmp.type == 11 or icmpv6.type == 1 or
    //   icmpv6.type == 2 or icmpv6.type == 3' -T fields -e frame.number -e icmp.type -e icmp.code
    //   -e icmpv6.type -e icmpv6.code -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e tcp.srcport
    //   -e tcp.dstport -e udp.srcport -e udp.dstport
    // (the second ip.src/ip.dst or ipv6.src/ipv6.dst and the ports are the quote's)
    const std::string v4_tcp_far = "tcp 198.18.0.100:80 -> 198.18.8.2:51252";
    const std::string v6_tcp_far = "tcp [fd00:198:18::100]:80 -> [fd00:198:18:8::2]:38596";
    std::map<std::size_t, std::string> want = {
        {20, "udp 198.18.0.2:40009 -> 198.18.0.100:9"},
        {22, "udp 198.18.0.2:40010 -> 198.18.0.100:33434"},
        {24, "udp [fd00:198:18::2]:40011 -> [fd00:198:18::100]:9"},
        {26, "udp 198.18.0.100:9999 -> 198.18.0.2:40000"},
        {28, "udp [fd00:198:18::100]:9999 -> [fd00:198:18::2]:40000"},
        {32, "udp 198.18.0.100:9998 -> 198.18.8.2:33434"},
        {38, "udp [fd00:198:18::100]:9998 -> [fd00:198:18:8::2]:33434"},
        {386, "tcp [fd00:198:18::100]:37449 -> [fd00:198:18:8::99]:80"},
        {387, "tcp [fd00:198:18::100]:37449 -> [fd00:198:18:8::99]:80"},
        {388, "tcp [fd00:198:18::100]:37449 -> [fd00:198:18:8::99]:80"},
        {389, "tcp 198.18.0.100:47437 -> 198.18.8.99:80"},
        {390, "udp 198.18.0.100:9997 -> 198.18.8.99:40000"},
        {391, "tcp 198.18.0.100:47437 -> 198.18.8.99:80"},
        {392, "tcp 198.18.0.100:47437 -> 198.18.8.99:80"},
    };
    for (std::size_t n : {51u, 52u, 53u, 54u, 55u, 61u, 62u, 63u, 64u, 65u, 67u}) want[n] = v4_tcp_far;       // 3/4, 11 frames
    for (std::size_t n : {220u, 221u, 222u, 223u, 224u, 230u, 231u, 232u, 233u, 234u, 236u}) want[n] = v6_tcp_far;  // 2/0
    auto f = load("icmp.pcap");
    std::map<std::size_t, std::string> got;
    for (std::size_t i = 0; i < f.records().size(); ++i) {
      auto p = parse(f.records()[i].data);
      if (p && p->is_icmp_error()) {
        CHECK(p->quote_has_l4());
        got[i + 1] = p->quoted_flow_key().to_string();
      }
    }
    CHECK(got == want);
  }

  TEST_CASE("captures: every echo reply's key is a request's key reversed") {
    // RFC 792 / RFC 4443: the reply carries the request's identifier back; tshark shows ident
    // 4365 (v4) and 0x110e (v6) in icmp.pcap, 4448/4469 and 0x116a in vlan-tagged.pcap.
    for (const char* file : {"icmp.pcap", "vlan-tagged.pcap"}) {
      CAPTURE(file);
      auto f = load(file);
      std::set<flow_key> requests;
      std::vector<flow_key> replies;
      for (const auto& r : f.records()) {
        auto p = parse(r.data);
        if (!p || !p->has_ports()) continue;
        const auto t = p->icmp_type();
        if (p->protocol() == ip_proto::icmp && t == 8) requests.insert(p->key());
        if (p->protocol() == ip_proto::icmpv6 && t == 128) requests.insert(p->key());
        if ((p->protocol() == ip_proto::icmp && t == 0) || (p->protocol() == ip_proto::icmpv6 && t == 129))
          replies.push_back(p->key());
      }
      CHECK_FALSE(replies.empty());
      for (const auto& k : replies) CHECK(requests.count(k.reversed()) == 1);
    }
  }
}
