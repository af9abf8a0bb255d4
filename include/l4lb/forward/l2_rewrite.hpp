// The Ethernet part of forwarding: which MACs and VLAN tags a forwarded frame leaves with. IPVS
// routes, so the kernel writes the egress interface's MAC as source and the next hop's (the real
// server's in DR/NAT, the gateway's otherwise) as destination; VLAN tags belong to the egress
// interface, so they may be kept, get new VIDs, or be replaced (which also strips or adds tags).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/wire/detail/byte_access.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::forward {

enum class vlan_policy : std::uint8_t {
  keep,      ///< the received tags, unchanged
  set_vids,  ///< the first `count` received tags (outermost first) get new VIDs; PCP/DEI kept
  replace,   ///< the received tags are removed and the `count` configured tags written (0: strip)
};

struct vlan_tag {
  std::uint16_t tpid = wire::ethertype::vlan;  ///< 0x8100, or 0x88a8 for an S-tag
  std::uint16_t tci = 0;                        ///< PCP(3) | DEI(1) | VID(12); set_vids uses the VID
};

struct vlan_config {
  vlan_policy policy = vlan_policy::keep;
  std::uint8_t count = 0;  ///< tags used from `tags`, at most 2 (outermost first)
  std::array<vlan_tag, 2> tags{};
};

/// MACs and tags of forwarded frames.
struct l2_config {
  wire::mac_address src;  ///< the director's MAC on the egress interface
  wire::mac_address dst;  ///< the next hop: real server (DR, NAT inbound) or gateway
  vlan_config vlan{};
};

namespace detail {

inline constexpr std::size_t max_l2_header_len = 14 + 4 * 2;

/// An L2 header prepared before anything is written, so that a rewriter can check its room first.
struct l2_plan {
  std::array<std::byte, max_l2_header_len> bytes{};
  std::size_t len = 0;  ///< 0: the packet has no Ethernet header (parse_ip input)
};

/// Plans the output L2 header for a packet parsed from `frame` (which starts with its L2 header
/// when pkt.has_ethernet()). `cfg` null: MACs and tags kept. `ethertype`: the family of the packet
/// that follows (an encapsulation may change it). Errors: vlan_mismatch, no_ethernet.
template <class Byte>
[[nodiscard]] inline forward_error plan_l2(const wire::basic_packet_view<Byte>& pkt, const l2_config* cfg,
                                          std::uint16_t ethertype, l2_plan& out) noexcept {
  if (!pkt.has_ethernet()) {
    if (cfg != nullptr) return forward_error::no_ethernet;
    out.len = 0;
    return forward_error::none;
  }
  const auto frame = pkt.frame();
  const std::size_t old_tags = pkt.vlan_count();
  std::array<vlan_tag, 2> tags{};
  for (std::size_t i = 0; i < old_tags; ++i) {
    tags[i].tpid = wire::detail::load_be16(frame.data() + 12 + 4 * i);
    tags[i].tci = wire::detail::load_be16(frame.data() + 14 + 4 * i);
  }
  std::size_t ntags = old_tags;
  if (cfg != nullptr) {
    const auto& v = cfg->vlan;
    if (v.count > 2) return forward_error::vlan_mismatch;
    if (v.policy == vlan_policy::set_vids) {
      if (v.count > old_tags) return forward_error::vlan_mismatch;
      for (std::size_t i = 0; i < v.count; ++i)
        tags[i].tci = static_cast<std::uint16_t>((tags[i].tci & 0xF000u) | (v.tags[i].tci & 0x0FFFu));
    } else if (v.policy == vlan_policy::replace) {
      ntags = v.count;
      for (std::size_t i = 0; i < ntags; ++i) tags[i] = v.tags[i];
    }
  }
  std::byte* p = out.bytes.data();
  if (cfg != nullptr) {
    std::memcpy(p, cfg->dst.bytes.data(), 6);
    std::memcpy(p + 6, cfg->src.bytes.data(), 6);
  } else {
    std::memcpy(p, frame.data(), 12);
  }
  for (std::size_t i = 0; i < ntags; ++i) {
    wire::detail::store_be16(p + 12 + 4 * i, tags[i].tpid);
    wire::detail::store_be16(p + 14 + 4 * i, tags[i].tci);
  }
  wire::detail::store_be16(p + 12 + 4 * ntags, ethertype);
  out.len = 14 + 4 * ntags;
  return forward_error::none;
}

/// Writes a planned L2 header to end at storage offset `l3_start` and makes the frame
/// [l3_start - plan.len, l3_end). Precondition: l3_start >= plan.len, l3_end <= storage size.
inline std::span<std::byte> apply_l2(frame_buffer& buf, const l2_plan& plan, std::size_t l3_start,
                                     std::size_t l3_end) noexcept {
  const std::size_t start = l3_start - plan.len;
  if (plan.len != 0) std::memcpy(buf.storage().data() + start, plan.bytes.data(), plan.len);
  (void)buf.set_frame(start, l3_end - start);
  return buf.frame();
}

}  // namespace detail
}  // namespace l4lb::forward
