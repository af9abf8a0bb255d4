// IPv4 Record Route (RFC 791 section 3.1, option 7) on forwarded packets: the kernel records an
// address in the option as the packet passes (ip_forward_options), and on an IPVS director that
// address is the VIP (ipvs-notes 0B: DR and NAT packets leave with the VIP recorded, pointer + 4,
// header checksum updated). Other options pass unchanged.
// Cost: nothing unless the header has options; then one walk over at most 40 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/ipv4.hpp"

namespace l4lb::forward {

/// Records `addr` in the Record Route option of the IPv4 packet `l3` (header checksum updated).
/// Returns true when an address was recorded; false without the option, when it is full, or
/// when it is malformed (pointer below 4 or not at an address boundary, per RFC 791).
inline bool record_route(std::span<std::byte> l3, const wire::ipv4_address& addr) noexcept {
  auto v = wire::basic_ipv4_view<std::byte>::make(l3);
  if (!v || !v->has_options()) return false;
  for (const auto& opt : v->options()) {
    if (opt.kind != 7) continue;
    // opt.data = pointer byte + route data; the pointer counts from the option's kind byte.
    if (opt.data.empty()) return false;
    const std::size_t len = opt.data.size() + 2;
    const auto ptr = std::to_integer<std::size_t>(opt.data[0]);
    if (ptr < 4 || (ptr - 4) % 4 != 0 || ptr + 3 > len) return false;
    std::memcpy(opt.data.data() + (ptr - 3), addr.bytes.data(), 4);
    opt.data[0] = static_cast<std::byte>(ptr + 4);
    v->fill_checksum();
    return true;
  }
  return false;
}

}  // namespace l4lb::forward
