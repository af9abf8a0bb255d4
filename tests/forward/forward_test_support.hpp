// Test support for tests/forward: capture frames, buffers with guarded headroom/tailroom, and the
// addresses and MACs the byte-exact fixtures use (the captures' topology, captures README).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/io/pcap_file.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "support/packet_builder.hpp"

namespace l4lb::test {

inline std::string data_file(const char* name) { return std::string(L4LB_TEST_DATA_DIR) + "/" + name; }

/// The frames of a bundled capture (empty if it cannot be read).
inline std::vector<bytes> capture_frames(const char* name) {
  std::vector<bytes> out;
  auto f = io::pcap_file::read(data_file(name));
  if (!f) return out;
  for (const auto& r : f->records()) out.emplace_back(r.data.begin(), r.data.end());
  return out;
}

inline wire::ip_address ip(const char* s) { return *wire::ip_address::parse(s); }
inline wire::endpoint ep(const char* s) { return *wire::endpoint::parse(s); }

// The captures' topology plus a real server .11 and a director .254 (MAC ...:fe).
inline const wire::mac_address director_mac = mac("02:00:c6:12:00:fe");
inline const wire::mac_address real_mac = mac("02:00:c6:12:00:0b");
inline const wire::mac_address client_mac = mac("02:00:c6:12:00:02");

// NAT configurations that rewrite L2 towards the real server / towards the client.
inline forward::nat_config to_real() {
  forward::nat_config c;
  c.l2.src = director_mac;
  c.l2.dst = real_mac;
  return c;
}
inline forward::nat_config to_client() {
  forward::nat_config c;
  c.l2.src = director_mac;
  c.l2.dst = client_mac;
  return c;
}

inline constexpr std::byte guard_byte{0xa5};

/// Storage of exactly headroom + frame + tailroom bytes (so ASan sees any write past it), the
/// headroom and tailroom filled with guard bytes.
struct guarded_frame {
  std::vector<std::byte> storage;
  forward::frame_buffer buf;
  std::size_t headroom = 0;

  guarded_frame(std::span<const std::byte> frame, std::size_t head, std::size_t tail = 0)
      : storage(head + frame.size() + tail, guard_byte), headroom(head) {
    std::memcpy(storage.data() + head, frame.data(), frame.size());
    buf = *forward::frame_buffer::make(storage, head, frame.size());
  }
  /// Bytes of the storage outside [off, off + len) that are not guard bytes, ignoring the
  /// original frame's place (which a rewrite may change or leave behind).
  [[nodiscard]] std::size_t guard_damage(std::span<const std::byte> out, std::size_t original_len) const {
    const auto out_start = static_cast<std::size_t>(out.data() - storage.data());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < storage.size(); ++i) {
      const bool in_out = i >= out_start && i < out_start + out.size();
      const bool in_orig = i >= headroom && i < headroom + original_len;
      if (!in_out && !in_orig && storage[i] != guard_byte) ++bad;
    }
    return bad;
  }
};

inline bytes to_bytes(std::span<const std::byte> s) { return bytes(s.begin(), s.end()); }

}  // namespace l4lb::test
