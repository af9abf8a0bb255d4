// neighbour_table: IP address → MAC, the director's ARP / ND cache, filled by the application
// (from the kernel's neighbour table, a file, or its own ARP). DR sends to the real server's
// MAC, NAT and tunnels to the next hop's; a missing entry is a named drop, never a zero MAC.
//
// Design notes: built on the control plane and published with the configuration snapshot, so a
// lookup is a read of an immutable open-addressed array (linear probing, load ≤ 1/2); changes
// build a new table. Cost: one hash and one or two cache lines per lookup.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/ethernet.hpp"

namespace l4lb::director {

class neighbour_table {
 public:
  neighbour_table() = default;

  /// Adds or replaces an entry (control plane).
  void set(const wire::ip_address& ip, const wire::mac_address& mac) {
    for (auto& e : entries_)
      if (e.ip == ip) {
        e.mac = mac;
        rebuild();
        return;
      }
    entries_.push_back({ip, mac});
    rebuild();
  }
  /// Removes an entry; false if there was none.
  bool erase(const wire::ip_address& ip) {
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].ip == ip) {
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
        rebuild();
        return true;
      }
    return false;
  }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  /// Data path: the MAC for `ip`, or nullptr.
  [[nodiscard]] const wire::mac_address* find(const wire::ip_address& ip) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash(ip) & mask;; i = (i + 1) & mask) {
      const std::uint32_t s = slots_[i];
      if (s == empty) return nullptr;
      if (same(entries_[s].ip, ip)) return &entries_[s].mac;
    }
  }

  struct entry {
    wire::ip_address ip;
    wire::mac_address mac;
  };
  [[nodiscard]] const std::vector<entry>& entries() const noexcept { return entries_; }

  /// A locally administered MAC for an address that has no real one (labs, replays, tests):
  /// 02:00 followed by the last four bytes of the address (198.18.0.12 → 02:00:c6:12:00:0c, the
  /// bundled captures' own scheme).
  [[nodiscard]] static wire::mac_address derived_mac(const wire::ip_address& a) noexcept {
    wire::mac_address m;
    m.bytes[0] = 0x02;
    const auto& r = a.raw();
    const std::size_t at = a.is_v4() ? 0 : 12;
    for (std::size_t i = 0; i < 4; ++i) m.bytes[2 + i] = r[at + i];
    return m;
  }

 private:
  static constexpr std::uint32_t empty = 0xFFFF'FFFFu;

  // Two words and two multiplies (the byte loop this replaced and the memcmp of the address
  // compare were most of a NAT reply's next-hop lookup). The raw bytes past an IPv4 address's
  // four are zero, so both families hash all sixteen.
  static std::size_t hash(const wire::ip_address& ip) noexcept {
    std::uint64_t w[2];
    std::memcpy(w, ip.raw().data(), 16);
    std::uint64_t h = (w[0] * 0x9E37'79B9'7F4A'7C15ull) ^ (w[1] * 0xC2B2'AE3D'27D4'EB4Full) ^
                      static_cast<std::uint64_t>(ip.family());
    h ^= h >> 29;
    return static_cast<std::size_t>(h * 0xBF58'476D'1CE4'E5B9ull >> 32);
  }
  static bool same(const wire::ip_address& a, const wire::ip_address& b) noexcept {
    return a.family() == b.family() && wire::equal_16(a.raw(), b.raw());
  }
  void rebuild() {
    std::size_t n = 8;
    while (n < entries_.size() * 2) n *= 2;
    std::vector<std::uint32_t> slots(n, empty);
    for (std::uint32_t k = 0; k < entries_.size(); ++k) {
      std::size_t i = hash(entries_[k].ip) & (n - 1);
      while (slots[i] != empty) i = (i + 1) & (n - 1);
      slots[i] = k;
    }
    slots_.swap(slots);
  }

  std::vector<entry> entries_;
  std::vector<std::uint32_t> slots_;
};

}  // namespace l4lb::director
