// pcap_summary: libpcap reads the file, l4lb::wire::parse dissects each frame; the program
// prints counts by family, protocol and drop reason, and the flows it saw.
#include <pcap/pcap.h>

#include <array>
#include <cstdio>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <l4lb/wire/parse.hpp>

namespace {

using l4lb::wire::drop_reason;
using l4lb::wire::flow_key;

// A flow's two directions count once: key it by the endpoint order.
flow_key canonical(const flow_key& k) { return k.src() < k.dst() ? k : k.reversed(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
    return 2;
  }
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  pcap_t* pcap = pcap_open_offline(argv[1], err.data());
  if (!pcap) {
    std::fprintf(stderr, "pcap_summary: %s\n", err.data());
    return 1;
  }
  if (pcap_datalink(pcap) != DLT_EN10MB) {
    std::fprintf(stderr, "pcap_summary: %s is not an Ethernet capture\n", argv[1]);
    pcap_close(pcap);
    return 1;
  }

  std::size_t frames = 0, ipv4 = 0, ipv6 = 0, tagged = 0, qinq = 0, fragments = 0, syns = 0;
  std::size_t icmp_errors = 0, bytes = 0;
  std::map<std::uint8_t, std::size_t> by_protocol;
  std::map<drop_reason, std::size_t> drops;
  std::set<flow_key> tcp_flows, udp_flows;
  std::vector<std::string> quoted;
  std::vector<std::byte> buffer;  // parse() takes mutable bytes: rewriters work in place

  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  int rc;
  while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
    ++frames;
    bytes += header->caplen;
    buffer.assign(reinterpret_cast<const std::byte*>(data),
                  reinterpret_cast<const std::byte*>(data) + header->caplen);
    auto pkt = l4lb::wire::parse(std::span<std::byte>(buffer));
    if (!pkt) {
      ++drops[pkt.error()];
      continue;
    }
    (pkt->is_ipv4() ? ipv4 : ipv6) += 1;
    if (pkt->vlan_count() > 0) ++tagged;
    if (pkt->vlan_count() > 1) ++qinq;
    if (pkt->is_fragment()) ++fragments;
    ++by_protocol[pkt->protocol()];
    const flow_key& key = pkt->key();
    if (key.protocol == l4lb::wire::ip_proto::tcp) {
      tcp_flows.insert(canonical(key));
      if ((pkt->tcp_flags() & 0x12) == 0x02) ++syns;  // SYN without ACK
    } else if (key.protocol == l4lb::wire::ip_proto::udp) {
      udp_flows.insert(canonical(key));
    }
    if (pkt->is_icmp_error()) {
      ++icmp_errors;
      if (quoted.size() < 5)
        quoted.push_back("type " + std::to_string(pkt->icmp_type()) + "/" +
                         std::to_string(pkt->icmp_code()) + " quoting " +
                         pkt->quoted_flow_key().to_string());
    }
  }
  if (rc == PCAP_ERROR) std::fprintf(stderr, "pcap_summary: %s\n", pcap_geterr(pcap));
  pcap_close(pcap);

  std::size_t not_ip = drops.count(drop_reason::not_ip) ? drops[drop_reason::not_ip] : 0;
  std::printf("%s\n", argv[1]);
  std::printf("  frames %14zu   (%zu bytes)\n", frames, bytes);
  std::printf("  IPv4 %16zu\n  IPv6 %16zu\n", ipv4, ipv6);
  std::printf("  VLAN-tagged %9zu   (QinQ %zu)\n", tagged, qinq);
  std::printf("  fragments %11zu\n", fragments);
  std::printf("  not IP (passed) %5zu\n", not_ip);
  for (const auto& [reason, n] : drops)
    if (reason != drop_reason::not_ip)
      std::printf("  dropped: %-24s %zu\n", std::string(l4lb::wire::to_string(reason)).c_str(), n);
  for (const auto& [proto, n] : by_protocol) std::printf("  protocol %3u %8zu\n", proto, n);
  std::printf("  TCP flows %11zu\n  SYN (no ACK) %8zu\n  UDP flows %11zu\n", tcp_flows.size(),
              syns, udp_flows.size());
  std::printf("  ICMP errors %9zu\n", icmp_errors);
  for (const auto& q : quoted) std::printf("    %s\n", q.c_str());
  std::size_t shown = 0;
  for (const auto& f : tcp_flows) {
    if (shown++ == 5) break;
    std::printf("  flow %s\n", f.to_string().c_str());
  }
  return rc == PCAP_ERROR ? 1 : 0;
}
