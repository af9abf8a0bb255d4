// Which worker gets a frame: a classic BPF program for PACKET_FANOUT_CBPF, built from the rules.
// Every packet of a connection must reach the worker whose director holds it, in both
// directions. DR and TUN see one direction only; NAT sees the client's packets to the VIP and the
// real server's replies to the client; FullNAT's replies go to a local address of ours.
//
// The key, per frame (IPv4, or IPv6 without extension headers; anything else goes to worker 0):
// - from a NAT real server (its address is in the rules): the destination address (the client);
// - to a FullNAT local address: the destination port (each worker's director hands out the local
//   ports p with p % workers == its index: director_config::full_nat_port_share_*);
// - otherwise: the source address (the client).
// A frame's key is the client's address in both directions, so NAT needs no shared state; the
// price is that one client's connections all land on one worker. The low 32 bits of the address
// are folded (x ^ x>>16 ^ x>>8) and taken modulo the worker count.
// The program runs before the packet socket pushes the Ethernet header back: offsets count from
// the IP header (IPv4 source at 12, destination at 16; IPv6 source at 8, destination at 24;
// RFC 791, RFC 8200) and the EtherType comes from the skb (SKF_AD_PROTOCOL).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include <l4lb/wire/address.hpp>

namespace raw {

struct steering_rules {
  std::vector<l4lb::wire::ip_address> nat_servers;  ///< real servers of NAT services
  std::vector<l4lb::wire::ip_address> local_addresses;  ///< FullNAT local addresses
  std::uint32_t workers = 1;
};

class bpf_builder {
 public:
  using label = std::size_t;
  label new_label() {
    targets_.push_back(npos);
    return targets_.size() - 1;
  }
  void bind(label l) { targets_[l] = code_.size(); }
  void op(std::uint16_t code, std::uint32_t k) { code_.push_back(BPF_STMT(code, k)); }
  /// if A == k goto t else goto f (labels resolved at the end).
  void jeq(std::uint32_t k, label t, label f) {
    fixups_.push_back({code_.size(), t, f});
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
  }
  void jump(label t) {
    fixups_.push_back({code_.size(), t, npos});
    code_.push_back(BPF_STMT(BPF_JMP | BPF_JA, 0));
  }
  std::vector<sock_filter> finish() {
    for (const auto& f : fixups_) {
      sock_filter& ins = code_[f.at];
      const auto rel = [&](label l) { return targets_[l] - f.at - 1; };
      if (f.f == npos) ins.k = static_cast<std::uint32_t>(rel(f.t));
      else {
        ins.jt = static_cast<std::uint8_t>(rel(f.t));
        ins.jf = static_cast<std::uint8_t>(rel(f.f));
      }
    }
    return code_;
  }

 private:
  static constexpr std::size_t npos = ~std::size_t{0};
  struct fixup {
    std::size_t at;
    label t, f;
  };
  std::vector<sock_filter> code_;
  std::vector<std::size_t> targets_;
  std::vector<fixup> fixups_;
};

namespace detail {

inline std::uint32_t word(const l4lb::wire::ip_address& a, std::size_t i) {
  const auto& b = a.raw();
  return std::uint32_t{b[4 * i]} << 24 | std::uint32_t{b[4 * i + 1]} << 16 |
         std::uint32_t{b[4 * i + 2]} << 8 | b[4 * i + 3];
}

/// Jumps to `hit` when the address at frame offset `at` (IPv4: 1 word; IPv6: 4) is one of
/// `set`; falls through otherwise.
inline void match_address(bpf_builder& b, std::uint32_t at, bool v6,
                          const std::vector<l4lb::wire::ip_address>& set, bpf_builder::label hit) {
  for (const auto& a : set) {
    if (a.is_v6() != v6) continue;
    const bpf_builder::label miss = b.new_label();
    const std::size_t words = v6 ? 4 : 1;
    for (std::size_t i = 0; i < words; ++i) {
      b.op(BPF_LD | BPF_W | BPF_ABS, at + 4 * static_cast<std::uint32_t>(i));
      const bpf_builder::label next = i + 1 == words ? hit : b.new_label();
      b.jeq(word(a, v6 ? i : 0), next, miss);
      if (i + 1 != words) b.bind(next);
    }
    b.bind(miss);
  }
}

}  // namespace detail

/// The steering program for `r` (see the header comment).
inline std::vector<sock_filter> steering_program(const steering_rules& r) {
  bpf_builder b;
  const auto v4 = b.new_label(), v6 = b.new_label(), other = b.new_label(), mix = b.new_label();
  b.op(BPF_LD | BPF_H | BPF_ABS, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL));
  const auto not4 = b.new_label();
  b.jeq(0x0800, v4, not4);
  b.bind(not4);
  b.jeq(0x86dd, v6, other);
  for (const bool is6 : {false, true}) {
    b.bind(is6 ? v6 : v4);
    const std::uint32_t src = is6 ? 8 : 12, dst = is6 ? 24 : 16;
    const std::uint32_t low = is6 ? 12 : 0;  // the address's last word
    const auto by_dst = b.new_label(), by_port = b.new_label(), by_src = b.new_label();
    detail::match_address(b, src, is6, r.nat_servers, by_dst);
    detail::match_address(b, dst, is6, r.local_addresses, by_port);
    b.jump(by_src);
    b.bind(by_dst);
    b.op(BPF_LD | BPF_W | BPF_ABS, dst + low);
    b.jump(mix);
    b.bind(by_port);
    if (is6) {
      b.op(BPF_LD | BPF_H | BPF_ABS, 40 + 2);
    } else {
      b.op(BPF_LDX | BPF_B | BPF_MSH, 0);  // X = IPv4 header length
      b.op(BPF_LD | BPF_H | BPF_IND, 2);
    }
    b.op(BPF_ALU | BPF_MOD | BPF_K, r.workers);  // the port share, unfolded
    b.op(BPF_RET | BPF_A, 0);
    b.bind(by_src);
    b.op(BPF_LD | BPF_W | BPF_ABS, src + low);
    b.jump(mix);
  }
  b.bind(mix);
  b.op(BPF_MISC | BPF_TAX, 0);
  b.op(BPF_ALU | BPF_RSH | BPF_K, 16);
  b.op(BPF_ALU | BPF_XOR | BPF_X, 0);
  b.op(BPF_MISC | BPF_TAX, 0);
  b.op(BPF_ALU | BPF_RSH | BPF_K, 8);
  b.op(BPF_ALU | BPF_XOR | BPF_X, 0);
  b.op(BPF_ALU | BPF_MOD | BPF_K, r.workers);
  b.op(BPF_RET | BPF_A, 0);
  b.bind(other);
  b.op(BPF_RET | BPF_K, 0);
  return b.finish();
}

}  // namespace raw
