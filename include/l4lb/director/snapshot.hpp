// snapshot: one immutable, published form of the director's configuration — services with their
// real-server lists and scheduler prototypes, a service index for the data path, real servers by
// handle, the neighbour table and the director's own addresses. The control plane builds a new
// one for every change and publishes it whole; a data-path call sees the old one or the new one,
// never half of a change.
//
// Design notes
// - Unchanged services are shared between snapshots (shared_ptr), so a change costs the service
//   it touches plus the indexes, not the whole configuration.
// - Scheduler state that IPVS keeps across picks (rr/wrr cursors, lc's load tree) lives in each
//   director (one per core). For an existing service the snapshot carries the hook calls that led
//   from the previous snapshot to this one (`events`, each with the list as it was then), so a
//   director that saw the previous snapshot replays exactly the kernel's init / add / del / upd
//   sequence (ipvs-notes 1.2) on its own policy; one that missed a snapshot copies `prototype`
//   (the same hooks applied by the control plane, cursors at their start).
// - The service index follows ip_vs_service_find's order: fwmark (when the frame carries one),
//   then (protocol, VIP, port), then the port-0 service of (protocol, VIP).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "l4lb/conn/persistence.hpp"
#include "l4lb/conn/timeouts.hpp"
#include "l4lb/director/model.hpp"
#include "l4lb/director/neighbour_table.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/sched/any_scheduler.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::director {

/// The director's own identity on the wire.
struct director_identity {
  wire::mac_address mac;  ///< source MAC of forwarded frames and replies
  /// The director's addresses: tunnel outer source (first of the family), and never a valid
  /// packet source (the 'land' rule).
  std::vector<wire::ip_address> addresses;
  /// Next hop for NAT replies toward clients when the client's own address has no neighbour
  /// entry (the default gateway of each family).
  std::optional<wire::ip_address> gateway_v4, gateway_v6;
  /// The egress MTU toward real servers that have none of their own (real_server_spec::mtu),
  /// as a route's MTU is for the kernel; 0: no check.
  std::uint32_t mtu = 0;

  [[nodiscard]] const wire::ip_address* address_of(wire::ip_family f) const noexcept {
    for (const auto& a : addresses)
      if (a.family() == f) return &a;
    return nullptr;
  }
};

struct service_runtime {
  struct event {
    sched::dest_change change;
    std::vector<sched::real_server> list;  ///< the list the hook runs on (counts zero)
  };

  service_spec spec;
  std::uint32_t id = 0;
  std::uint64_t generation = 0;
  /// Kernel list order (newest first); configuration fields and handles, counts zero.
  std::vector<sched::real_server> dests;
  sched::any_scheduler prototype;
  std::uint64_t sched_version = 0;  ///< one per hook call since the service was created
  std::uint64_t events_from = 0;    ///< sched_version before `events`
  std::vector<event> events;
  /// `events` lead from events_from to sched_version (false: a new service or a new policy,
  /// which directors copy from `prototype`).
  bool events_complete = false;
  std::uint64_t zero_epoch = 0;     ///< bumped by -Z; directors reset their counters on change
  conn::persistence<wire::ipv4_address> persist_v4{};
  conn::persistence<wire::ipv6_address> persist_v6{};
};

/// A real server by handle.
struct dest_runtime {
  bool live = false;             ///< in a service now (false: retired, or never used)
  std::uint32_t service_id = 0;
  std::uint64_t generation = 0;
  std::uint64_t zero_epoch = 0;
  real_server_spec spec;
  std::uint32_t last_weight = 1;
  // Resolved when the snapshot is built, so the data path does no lookup per packet:
  bool has_mac = false;           ///< the server's MAC is in the neighbour table
  bool has_tunnel_source = false; ///< the director has an address of the server's family
  forward::dr_config dr{};        ///< MACs and MTU for -g
  forward::nat_config nat{};      ///< MACs and MTU for -m (toward the server)
  forward::tunnel_config tunnel{};///< outer header for -i
};

/// The data path's service lookup: open addressing over the three key kinds.
class service_index {
 public:
  static constexpr std::uint32_t none = 0xFFFF'FFFFu;

  void build(const std::vector<std::shared_ptr<const service_runtime>>& by_id) {
    std::size_t n = 16;
    std::size_t live = 0;
    for (const auto& s : by_id) live += s ? 1u : 0u;
    while (n < live * 2) n *= 2;
    slots_.assign(n, slot{});
    for (const auto& s : by_id) {
      if (!s) continue;
      const auto& k = s->spec.key;
      const std::uint64_t key = k.is_fwmark() ? mark_key(k.fwmark, k.family())
                                              : addr_key(k.protocol, k.address.raw(), k.port);
      const std::uint64_t h = mix(key, k.is_fwmark() ? wire::ip_address{}.raw() : k.address.raw());
      std::size_t i = h & (n - 1);
      while (slots_[i].id != none) i = (i + 1) & (n - 1);
      slots_[i] = {h, s->id};
      if (!k.is_fwmark() && k.port == 0) has_port0_ = true;
      if (k.is_fwmark()) has_fwmark_ = true;
    }
  }

  /// ip_vs_service_find: fwmark, exact, then port 0. `by_id` is the snapshot's service table.
  [[nodiscard]] const service_runtime* find(
      std::uint32_t fwmark, const wire::flow_key& f,
      const std::vector<std::shared_ptr<const service_runtime>>& by_id) const noexcept {
    if (fwmark != 0 && has_fwmark_) {
      if (auto* s = probe(mark_key(fwmark, f.family), wire::ip_address{}.raw(), by_id,
                          [&](const service_key& k) {
                            return k.is_fwmark() && k.fwmark == fwmark && k.family() == f.family;
                          }))
        return s;
    }
    auto exact = [&](std::uint16_t port) {
      return probe(addr_key(f.protocol, f.dst_addr, port), f.dst_addr, by_id,
                   [&](const service_key& k) {
                     return !k.is_fwmark() && k.protocol == f.protocol && k.port == port &&
                            k.family() == f.family && wire::equal_16(k.address.raw(), f.dst_addr);
                   });
    };
    if (auto* s = exact(f.dst_port)) return s;
    if (has_port0_ && f.dst_port != 0) return exact(0);
    return nullptr;
  }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t id = none;
  };
  static std::uint64_t mark_key(std::uint32_t mark, wire::ip_family f) noexcept {
    return (std::uint64_t{1} << 63) | (std::uint64_t{static_cast<std::uint8_t>(f)} << 32) | mark;
  }
  static std::uint64_t addr_key(std::uint8_t proto, const std::array<std::uint8_t, 16>&,
                                std::uint16_t port) noexcept {
    return (std::uint64_t{proto} << 16) | port;
  }
  static std::uint64_t mix(std::uint64_t key, const std::array<std::uint8_t, 16>& a) noexcept {
    std::uint64_t h = key * 0x9E37'79B9'7F4A'7C15ull;
    for (std::size_t i = 0; i < 16; i += 8) {
      std::uint64_t w;  // build and find hash the same way; byte order does not matter
      std::memcpy(&w, a.data() + i, 8);
      h = (h ^ w) * 0xC2B2'AE3D'27D4'EB4Full;
      h ^= h >> 31;
    }
    return h;
  }
  template <class Match>
  const service_runtime* probe(std::uint64_t key, const std::array<std::uint8_t, 16>& a,
                               const std::vector<std::shared_ptr<const service_runtime>>& by_id,
                               Match&& match) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::uint64_t h = mix(key, a);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const slot& s = slots_[i];
      if (s.id == none) return nullptr;
      if (s.hash == h) {
        const service_runtime* svc = by_id[s.id].get();
        if (match(svc->spec.key)) return svc;
      }
    }
  }

  std::vector<slot> slots_;
  bool has_port0_ = false;
  bool has_fwmark_ = false;
};

struct snapshot {
  std::uint64_t generation = 0;
  std::vector<std::shared_ptr<const service_runtime>> services;  ///< by service id
  std::vector<dest_runtime> dests;                                ///< by handle
  std::vector<std::uint32_t> retired;  ///< handles whose connections may still be alive
  service_index index;
  std::shared_ptr<const neighbour_table> neighbours;
  director_identity identity;
  director_settings settings;
  conn::timeouts timeouts;
  /// Every service address, sorted (the 'land' rule, ICMP errors to a VIP); the IPv4 ones
  /// also as host-order integers, so a new IPv4 connection's test is a search of integers.
  std::vector<wire::ip_address> vips;
  std::vector<std::uint32_t> vips_v4;
  /// One bit per VIP (vip_bit): a clear bit answers is_vip without the search, as it does for
  /// most packets that are not to a VIP (a NAT server's replies, for one).
  std::uint64_t vip_filter = 0;
  /// The gateways' MACs (identity.gateway_v4 / _v6 looked up in `neighbours` when the snapshot
  /// was published; null: none), the next hop toward a client without a neighbour entry.
  std::array<std::optional<wire::mac_address>, 2> gateway_macs;
  /// The addresses of NAT and FullNAT real servers (live or retired), sorted: their fragments
  /// are replies to reassemble and rewrite, as the kernel reassembles before ip_vs_out.
  std::vector<wire::ip_address> nat_sources;

  [[nodiscard]] const service_runtime* find_service(std::uint32_t fwmark,
                                                    const wire::flow_key& f) const noexcept {
    return index.find(fwmark, f, services);
  }
  /// The filter bit of an address: a multiply of its words (only an IPv4 address's own four
  /// bytes, whatever the rest of `raw` holds).
  [[nodiscard]] static unsigned vip_bit(const std::array<std::uint8_t, 16>& raw,
                                        wire::ip_family f) noexcept {
    std::uint64_t w0 = 0, w1 = 0;
    if (f == wire::ip_family::v4) {
      std::memcpy(&w0, raw.data(), 4);
    } else {
      std::memcpy(&w0, raw.data(), 8);
      std::memcpy(&w1, raw.data() + 8, 8);
    }
    return static_cast<unsigned>(((w0 ^ (w1 * 0xC2B2'AE3D'27D4'EB4Full)) * 0x9E37'79B9'7F4A'7C15ull) >> 58);
  }
  [[nodiscard]] bool is_vip(const std::array<std::uint8_t, 16>& raw,
                            wire::ip_family f) const noexcept {
    if (!(vip_filter >> vip_bit(raw, f) & 1u)) return false;
    if (f == wire::ip_family::v4)
      return std::binary_search(vips_v4.begin(), vips_v4.end(), wire::detail::load_be32(reinterpret_cast<const std::byte*>(raw.data())));
    return std::binary_search(vips.begin(), vips.end(), wire::ip_address::from_bytes(f, raw.data()));
  }
  /// The next hop of family `f`'s gateway, or null.
  [[nodiscard]] const wire::mac_address* gateway_mac(wire::ip_family f) const noexcept {
    const auto& m = gateway_macs[f == wire::ip_family::v4 ? 0 : 1];
    return m ? &*m : nullptr;
  }
  [[nodiscard]] bool is_nat_source(const std::array<std::uint8_t, 16>& raw, wire::ip_family f) const noexcept {
    return !nat_sources.empty() &&
           std::binary_search(nat_sources.begin(), nat_sources.end(), wire::ip_address::from_bytes(f, raw.data()));
  }
  [[nodiscard]] bool is_own_address(const std::array<std::uint8_t, 16>& raw,
                                    wire::ip_family f) const noexcept {
    for (const auto& a : identity.addresses)
      if (a.family() == f && wire::equal_16(a.raw(), raw)) return true;
    return false;
  }
};

}  // namespace l4lb::director
