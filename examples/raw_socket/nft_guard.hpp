// Keeps the host's own stack out of the director's traffic. An AF_PACKET socket sees a copy of
// each frame; the kernel still gets the original. Without this, a SYN to a VIP the host owns is
// answered twice (by a real server and by the host's RST), and a NAT reply is also routed by the
// host when it forwards. One nftables table, rebuilt as one transaction (`nft -f -`) whenever the
// rules change, removed on exit:
// - prerouting, on the director's interfaces: drop what is addressed to a service (VIP, protocol,
//   port; a port-0 service: every port) or to a FullNAT local address (every port of tcp, udp,
//   sctp), and what a NAT real server sends from its service port.
// Everything else (ARP, ND, ping to the VIP, SSH to the host) reaches the host as usual.
#pragma once

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <l4lb/director/configuration.hpp>

namespace raw {

class nft_guard {
 public:
  explicit nft_guard(std::vector<std::string> interfaces, std::string table = "l4lb_director")
      : interfaces_(std::move(interfaces)), table_(std::move(table)) {}
  ~nft_guard() { remove(); }
  nft_guard(const nft_guard&) = delete;
  nft_guard& operator=(const nft_guard&) = delete;

  /// Rebuilds the table for `config`; false (and a message on stderr) when nft refused.
  bool update(const l4lb::director::configuration& config) {
    std::set<std::string> ours4, ours6, replies4, replies6;
    const auto proto = [](std::uint8_t p) {
      return p == 6 ? std::string("tcp") : p == 17 ? std::string("udp") : std::string("sctp");
    };
    const auto ports = [](std::uint16_t p) {
      return p == 0 ? std::string("0-65535") : std::to_string(p);
    };
    for (const auto& s : config.services()) {
      const auto& k = s.spec.key;
      if (k.fwmark != 0) continue;  // the application marks those; nothing to say about them
      (k.address.is_v4() ? ours4 : ours6)
          .insert(k.address.to_string() + " . " + proto(k.protocol) + " . " + ports(k.port));
      for (const auto& d : s.dests) {
        using l4lb::director::forward_method;
        if (d.spec.method == forward_method::masq)
          (d.spec.endpoint.address.is_v4() ? replies4 : replies6)
              .insert(d.spec.endpoint.address.to_string() + " . " + proto(k.protocol) + " . " +
                      ports(d.spec.endpoint.port));
        if (d.spec.method == forward_method::full_nat)
          for (const auto& l : d.spec.full_nat_local)
            for (const char* p : {"tcp", "udp", "sctp"})
              (l.is_v4() ? ours4 : ours6).insert(l.to_string() + " . " + p + " . 0-65535");
      }
    }
    std::string script = "table inet " + table_ + " {}\ndelete table inet " + table_ + "\n";
    script += "table inet " + table_ + " {\n";
    const auto set = [&](const char* name, const char* type, const std::set<std::string>& e) {
      script += std::string("  set ") + name + " { type " + type +
                " . inet_proto . inet_service; flags interval;";
      if (!e.empty()) {
        script += " elements = {";
        bool first = true;
        for (const auto& x : e) {
          script += (first ? " " : ", ") + x;
          first = false;
        }
        script += " }";
      }
      script += " }\n";
    };
    set("ours4", "ipv4_addr", ours4);
    set("ours6", "ipv6_addr", ours6);
    set("replies4", "ipv4_addr", replies4);
    set("replies6", "ipv6_addr", replies6);
    std::string ifs;
    for (const auto& i : interfaces_) ifs += (ifs.empty() ? "\"" : ", \"") + i + "\"";
    script += "  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n";
    script += "    iifname { " + ifs + " } ip daddr . meta l4proto . th dport @ours4 drop\n";
    script += "    iifname { " + ifs + " } ip6 daddr . meta l4proto . th dport @ours6 drop\n";
    script += "    iifname { " + ifs + " } ip saddr . meta l4proto . th sport @replies4 drop\n";
    script += "    iifname { " + ifs + " } ip6 saddr . meta l4proto . th sport @replies6 drop\n";
    script += "  }\n}\n";
    if (!run(script)) return false;
    installed_ = true;
    return true;
  }

  void remove() {
    if (!installed_) return;
    installed_ = false;
    (void)run("delete table inet " + table_ + "\n");
  }

 private:
  static bool run(const std::string& script) {
    FILE* p = ::popen("nft -f - >/dev/null", "w");
    if (!p) return false;
    std::fwrite(script.data(), 1, script.size(), p);
    const int rc = ::pclose(p);
    if (rc != 0) std::fprintf(stderr, "l4lb-director: nft refused the guard table (exit %d)\n", rc);
    return rc == 0;
  }

  std::vector<std::string> interfaces_;
  std::string table_;
  bool installed_ = false;
};

}  // namespace raw
