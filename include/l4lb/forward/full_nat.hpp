// FullNAT (DPVS has it, IPVS does not): inbound packets get the real server as destination AND a
// director-owned local address and port as source, so real servers reply to the director without
// a route back through it; replies are matched by that local endpoint and get VIP -> client back.
// The local ports come from full_nat_port_pool, which never hands out a port a tracked flow uses.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "l4lb/expected.hpp"
#include "l4lb/forward/detail/ip_rewrite.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

/// The four endpoints of a FullNAT connection.
struct full_nat_connection {
  wire::endpoint client;  ///< the client
  wire::endpoint vip;     ///< the virtual service
  wire::endpoint local;   ///< the director's local address and port toward the real server
  wire::endpoint real;    ///< the real server
};

/// Local ports for FullNAT. One bitmap of ports per (local address, protocol) over the configured
/// range: a port is in use for every real server at once, so two tracked flows can never share a
/// (local address, local port, protocol), whichever real servers they go to. That is stricter than
/// needed (DPVS keys by real server too) but needs no lookup of the flow table and cannot collide.
/// Construction allocates (control plane); allocate/release/reserve do not, and take O(range/64).
class full_nat_port_pool {
 public:
  struct config {
    std::vector<wire::ip_address> local_addresses;  ///< v4 and/or v6; at least one
    std::uint16_t min_port = 1024;
    std::uint16_t max_port = 65535;
  };

  /// Errors: family_mismatch (no local address), port_pool_exhausted (min_port > max_port).
  [[nodiscard]] static expected<full_nat_port_pool, forward_error> make(config cfg) {
    if (cfg.local_addresses.empty()) return unexpected{forward_error::family_mismatch};
    if (cfg.min_port > cfg.max_port) return unexpected{forward_error::port_pool_exhausted};
    full_nat_port_pool p;
    p.cfg_ = std::move(cfg);
    p.words_ = (std::size_t{p.cfg_.max_port} - p.cfg_.min_port + 1 + 63) / 64;
    p.bits_.assign(p.cfg_.local_addresses.size() * protocols * p.words_, 0);
    p.used_.assign(p.cfg_.local_addresses.size() * protocols, 0);
    return p;
  }

  /// Ports per (local address, protocol).
  [[nodiscard]] std::size_t range_size() const noexcept {
    return std::size_t{cfg_.max_port} - cfg_.min_port + 1;
  }
  [[nodiscard]] const std::vector<wire::ip_address>& local_addresses() const noexcept {
    return cfg_.local_addresses;
  }

  /// A free local endpoint of `family` for `protocol` (TCP, UDP or SCTP), marked in use. `hash`
  /// (e.g. the flow's hash) spreads flows over the addresses and picks where the search starts.
  /// Errors: unsupported_protocol, family_mismatch (no local address of that family),
  /// port_pool_exhausted.
  [[nodiscard]] expected<wire::endpoint, forward_error> allocate(std::uint8_t protocol, wire::ip_family family,
                                                                 std::uint64_t hash) noexcept {
    const int pi = protocol_index(protocol);
    if (pi < 0) return unexpected{forward_error::unsupported_protocol};
    const std::size_t n = cfg_.local_addresses.size();
    bool any_family = false;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t a = (static_cast<std::size_t>(hash) + k) % n;
      if (cfg_.local_addresses[a].family() != family) continue;
      any_family = true;
      const std::size_t slot = a * protocols + static_cast<std::size_t>(pi);
      if (used_[slot] == range_size()) continue;
      const std::size_t start = static_cast<std::size_t>(hash >> 32) % range_size();
      const std::size_t bit = find_free(slot, start);
      set(slot, bit, true);
      ++used_[slot];
      return wire::endpoint{cfg_.local_addresses[a], static_cast<std::uint16_t>(cfg_.min_port + bit)};
    }
    return unexpected{any_family ? forward_error::port_pool_exhausted : forward_error::family_mismatch};
  }

  /// Marks a specific local endpoint in use (a flow learned elsewhere, e.g. from a sync peer).
  /// False if it is not one of the pool's, or already in use.
  [[nodiscard]] bool reserve(std::uint8_t protocol, const wire::endpoint& local) noexcept {
    std::size_t slot, bit;
    if (!locate(protocol, local, slot, bit) || test(slot, bit)) return false;
    set(slot, bit, true);
    ++used_[slot];
    return true;
  }
  /// Returns a local endpoint to the pool. False if it was not in use.
  bool release(std::uint8_t protocol, const wire::endpoint& local) noexcept {
    std::size_t slot, bit;
    if (!locate(protocol, local, slot, bit) || !test(slot, bit)) return false;
    set(slot, bit, false);
    --used_[slot];
    return true;
  }
  [[nodiscard]] bool in_use(std::uint8_t protocol, const wire::endpoint& local) const noexcept {
    std::size_t slot, bit;
    return locate(protocol, local, slot, bit) && test(slot, bit);
  }
  /// Ports in use for `protocol` on local address `i`.
  [[nodiscard]] std::size_t used(std::uint8_t protocol, std::size_t i) const noexcept {
    const int pi = protocol_index(protocol);
    return pi < 0 || i >= cfg_.local_addresses.size() ? 0 : used_[i * protocols + static_cast<std::size_t>(pi)];
  }

 private:
  static constexpr std::size_t protocols = 3;  // TCP, UDP, SCTP
  full_nat_port_pool() = default;

  [[nodiscard]] static constexpr int protocol_index(std::uint8_t p) noexcept {
    return p == wire::ip_proto::tcp ? 0 : p == wire::ip_proto::udp ? 1 : p == wire::ip_proto::sctp ? 2 : -1;
  }
  [[nodiscard]] bool locate(std::uint8_t protocol, const wire::endpoint& local, std::size_t& slot,
                            std::size_t& bit) const noexcept {
    const int pi = protocol_index(protocol);
    if (pi < 0 || local.port < cfg_.min_port || local.port > cfg_.max_port) return false;
    for (std::size_t a = 0; a < cfg_.local_addresses.size(); ++a) {
      if (cfg_.local_addresses[a] == local.address) {
        slot = a * protocols + static_cast<std::size_t>(pi);
        bit = std::size_t{local.port} - cfg_.min_port;
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] bool test(std::size_t slot, std::size_t bit) const noexcept {
    return (bits_[slot * words_ + bit / 64] >> (bit % 64)) & 1u;
  }
  void set(std::size_t slot, std::size_t bit, bool on) noexcept {
    auto& w = bits_[slot * words_ + bit / 64];
    const std::uint64_t m = std::uint64_t{1} << (bit % 64);
    w = on ? (w | m) : (w & ~m);
  }
  /// First free bit at or after `start`, wrapping. Precondition: one exists.
  [[nodiscard]] std::size_t find_free(std::size_t slot, std::size_t start) const noexcept {
    const std::size_t range = range_size();
    const std::uint64_t* w = bits_.data() + slot * words_;
    // Bits past the range in the last word count as used.
    auto word = [&](std::size_t i) {
      std::uint64_t v = w[i];
      if (i == words_ - 1 && range % 64 != 0) v |= ~std::uint64_t{0} << (range % 64);
      return v;
    };
    std::size_t i = start / 64;
    std::uint64_t v = word(i) | ((std::uint64_t{1} << (start % 64)) - 1);  // skip below start
    for (std::size_t k = 0; k <= words_; ++k) {
      if (v != ~std::uint64_t{0}) return i * 64 + static_cast<std::size_t>(std::countr_one(v));
      i = (i + 1) % words_;
      v = word(i);
    }
    return 0;  // unreachable while used_ < range
  }

  config cfg_;
  std::size_t words_ = 0;
  std::vector<std::uint64_t> bits_;
  std::vector<std::size_t> used_;
};

/// Client -> real server through FullNAT. TCP/UDP/SCTP client -> VIP becomes local -> real server; an
/// ICMP error sent to the VIP quoting VIP -> client becomes local -> real server outside and
/// real server -> local in the quote. Same options, checks and errors as nat_inbound.
[[nodiscard]] inline forward_result full_nat_inbound(frame_buffer& buf, const wire::packet_view& pkt,
                                                     const full_nat_connection& conn, const nat_config& cfg,
                                                     std::span<std::byte> reply = {}) noexcept {
  return detail::nat_translate(buf, pkt, conn.client, conn.vip, &conn.local, &conn.real, cfg, reply);
}

/// Real server -> client through FullNAT: real server -> local becomes VIP -> client; an ICMP
/// error sent to the local address quoting local -> real server becomes VIP -> client outside
/// and client -> VIP in the quote. Errors as nat_inbound.
[[nodiscard]] inline forward_result full_nat_outbound(frame_buffer& buf, const wire::packet_view& pkt,
                                                      const full_nat_connection& conn, const nat_config& cfg,
                                                      std::span<std::byte> reply = {}) noexcept {
  return detail::nat_translate(buf, pkt, conn.real, conn.local, &conn.vip, &conn.client, cfg, reply);
}

}  // namespace l4lb::forward
