// IPv4 and IPv6 addresses, an address of either family, and endpoints (address + port):
// text parsing with named errors (never exceptions), RFC 5952 formatting, ordering and hashing.
// Addresses are stored as network-order bytes, exactly as they sit in a packet.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "l4lb/expected.hpp"
#include "l4lb/wire/hash.hpp"

namespace l4lb::wire {

/// Why a piece of text is not an address or endpoint.
enum class address_error : std::uint8_t {
  empty,
  bad_character,
  bad_ipv4_octet,        // > 255, leading zero, or missing
  wrong_ipv4_part_count, // not exactly four dotted parts
  bad_ipv6_group,        // more than four hex digits, or empty where a group is required
  wrong_ipv6_group_count,
  multiple_double_colon,
  missing_port,
  bad_port,
  missing_bracket,       // "[fd00::1" or "fd00::1]:80"
  family_mismatch,
  bad_mac_group,         // a MAC address group that is not two hex digits
  wrong_mac_group_count, // not exactly six groups
};

[[nodiscard]] constexpr std::string_view to_string(address_error e) noexcept {
  switch (e) {
    case address_error::empty: return "empty";
    case address_error::bad_character: return "bad_character";
    case address_error::bad_ipv4_octet: return "bad_ipv4_octet";
    case address_error::wrong_ipv4_part_count: return "wrong_ipv4_part_count";
    case address_error::bad_ipv6_group: return "bad_ipv6_group";
    case address_error::wrong_ipv6_group_count: return "wrong_ipv6_group_count";
    case address_error::multiple_double_colon: return "multiple_double_colon";
    case address_error::missing_port: return "missing_port";
    case address_error::bad_port: return "bad_port";
    case address_error::missing_bracket: return "missing_bracket";
    case address_error::family_mismatch: return "family_mismatch";
    case address_error::bad_mac_group: return "bad_mac_group";
    case address_error::wrong_mac_group_count: return "wrong_mac_group_count";
  }
  return "unknown";
}

enum class ip_family : std::uint8_t { v4 = 4, v6 = 6 };

namespace detail {

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decimal 0..255 without leading zeros (inet_pton's strict form; "010" is ambiguous, so refused).
constexpr bool parse_octet(std::string_view s, std::uint8_t& out) noexcept {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 255) return false;
  out = static_cast<std::uint8_t>(v);
  return true;
}

inline void append_decimal(std::string& out, unsigned v) {
  char buf[10];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out.push_back(buf[--n]);
}

}  // namespace detail

/// An IPv4 address as its four bytes in network order.
struct ipv4_address {
  std::array<std::uint8_t, 4> bytes{};

  static constexpr std::size_t size = 4;

  /// From a host-order integer: 0xC6120001 is 198.18.0.1.
  [[nodiscard]] static constexpr ipv4_address from_u32(std::uint32_t host) noexcept {
    return {{static_cast<std::uint8_t>(host >> 24), static_cast<std::uint8_t>(host >> 16),
             static_cast<std::uint8_t>(host >> 8), static_cast<std::uint8_t>(host)}};
  }
  /// The host-order integer (what IPVS's schedulers fold and hash).
  [[nodiscard]] constexpr std::uint32_t to_u32() const noexcept {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
           (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
  }

  [[nodiscard]] static constexpr expected<ipv4_address, address_error> parse(
      std::string_view s) noexcept {
    if (s.empty()) return unexpected{address_error::empty};
    ipv4_address a;
    std::size_t part = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
      if (i == s.size() || s[i] == '.') {
        if (part >= 4) return unexpected{address_error::wrong_ipv4_part_count};
        if (!detail::parse_octet(s.substr(start, i - start), a.bytes[part]))
          return unexpected{address_error::bad_ipv4_octet};
        ++part;
        start = i + 1;
      } else if (s[i] < '0' || s[i] > '9') {
        return unexpected{address_error::bad_character};
      }
    }
    if (part != 4) return unexpected{address_error::wrong_ipv4_part_count};
    return a;
  }

  void append_to(std::string& out) const {
    for (std::size_t i = 0; i < 4; ++i) {
      if (i) out.push_back('.');
      detail::append_decimal(out, bytes[i]);
    }
  }
  [[nodiscard]] std::string to_string() const {
    std::string s;
    append_to(s);
    return s;
  }

  [[nodiscard]] constexpr bool is_unspecified() const noexcept { return to_u32() == 0; }
  /// 0.0.0.0/8, "this host on this network" (RFC 1122 3.2.1.3 (a), (b)): never a packet's real source.
  [[nodiscard]] constexpr bool is_this_network() const noexcept { return bytes[0] == 0; }
  /// 127.0.0.0/8 (RFC 1122 3.2.1.3 (g)).
  [[nodiscard]] constexpr bool is_loopback() const noexcept { return bytes[0] == 127; }
  /// 224.0.0.0/4 (RFC 1112).
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (bytes[0] & 0xF0u) == 0xE0u; }
  /// 255.255.255.255, the limited broadcast (RFC 919, RFC 1122 3.2.1.3 (c)).
  [[nodiscard]] constexpr bool is_limited_broadcast() const noexcept { return to_u32() == 0xFFFF'FFFFu; }
  /// 240.0.0.0/4, the former class E (RFC 1122 3.2.2 names it as a source that is not one host);
  /// holds the limited broadcast.
  [[nodiscard]] constexpr bool is_class_e() const noexcept { return (bytes[0] & 0xF0u) == 0xF0u; }

  friend constexpr auto operator<=>(const ipv4_address&, const ipv4_address&) = default;
};

/// An IPv6 address as its sixteen bytes in network order.
struct ipv6_address {
  std::array<std::uint8_t, 16> bytes{};

  static constexpr std::size_t size = 16;

  /// The 16-bit group i (0..7) in host order.
  [[nodiscard]] constexpr std::uint16_t group(std::size_t i) const noexcept {
    return static_cast<std::uint16_t>((bytes[2 * i] << 8) | bytes[2 * i + 1]);
  }
  /// The 32-bit word i (0..3) in host order.
  [[nodiscard]] constexpr std::uint32_t word(std::size_t i) const noexcept {
    return (std::uint32_t{bytes[4 * i]} << 24) | (std::uint32_t{bytes[4 * i + 1]} << 16) |
           (std::uint32_t{bytes[4 * i + 2]} << 8) | std::uint32_t{bytes[4 * i + 3]};
  }
  /// :: (RFC 4291 2.5.2).
  [[nodiscard]] constexpr bool is_unspecified() const noexcept {
    for (auto b : bytes)
      if (b != 0) return false;
    return true;
  }
  /// ::1 (RFC 4291 2.5.3).
  [[nodiscard]] constexpr bool is_loopback() const noexcept {
    for (std::size_t i = 0; i < 15; ++i)
      if (bytes[i] != 0) return false;
    return bytes[15] == 1;
  }
  /// ff00::/8 (RFC 4291 2.7).
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return bytes[0] == 0xff; }
  [[nodiscard]] constexpr bool is_v4_mapped() const noexcept {
    for (std::size_t i = 0; i < 10; ++i)
      if (bytes[i] != 0) return false;
    return bytes[10] == 0xff && bytes[11] == 0xff;
  }

  /// RFC 4291 section 2.2 text forms, including "::" and a trailing dotted IPv4 part.
  /// Zone identifiers ("%eth0") are not addresses and are refused.
  [[nodiscard]] static constexpr expected<ipv6_address, address_error> parse(
      std::string_view s) noexcept {
    if (s.empty()) return unexpected{address_error::empty};
    std::array<std::uint16_t, 8> groups{};
    std::size_t n = 0;         // groups written
    std::size_t gap_at = 9;    // index where "::" stands, 9 = none
    std::size_t i = 0;
    if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
      gap_at = 0;
      i = 2;
      if (i == s.size()) return ipv6_address{};
    } else if (s[0] == ':') {
      return unexpected{address_error::bad_ipv6_group};
    }
    while (i < s.size()) {
      // One group: hex digits up to ':' or end; or a dotted IPv4 tail.
      std::size_t j = i;
      while (j < s.size() && s[j] != ':' && s[j] != '.') ++j;
      if (j < s.size() && s[j] == '.') {
        if (n > 6) return unexpected{address_error::wrong_ipv6_group_count};
        auto v4 = ipv4_address::parse(s.substr(i));
        if (!v4) return unexpected{v4.error()};
        groups[n++] = static_cast<std::uint16_t>((v4->bytes[0] << 8) | v4->bytes[1]);
        groups[n++] = static_cast<std::uint16_t>((v4->bytes[2] << 8) | v4->bytes[3]);
        i = s.size();
        break;
      }
      unsigned v = 0;
      for (std::size_t k = i; k < j; ++k) {
        int h = detail::hex_value(s[k]);
        if (h < 0) return unexpected{address_error::bad_character};
        v = (v * 16 + static_cast<unsigned>(h)) & 0xFFFFFu;
      }
      if (j == i || j - i > 4) return unexpected{address_error::bad_ipv6_group};
      if (n >= 8) return unexpected{address_error::wrong_ipv6_group_count};
      groups[n++] = static_cast<std::uint16_t>(v);
      if (j == s.size()) {
        i = j;
        break;
      }
      // s[j] == ':'
      if (j + 1 < s.size() && s[j + 1] == ':') {
        if (gap_at != 9) return unexpected{address_error::multiple_double_colon};
        gap_at = n;
        i = j + 2;
      } else {
        if (j + 1 == s.size()) return unexpected{address_error::bad_ipv6_group};
        i = j + 1;
      }
    }
    ipv6_address a;
    if (gap_at == 9) {
      if (n != 8) return unexpected{address_error::wrong_ipv6_group_count};
      for (std::size_t g = 0; g < 8; ++g) a.set_group(g, groups[g]);
    } else {
      if (n > 7) return unexpected{address_error::wrong_ipv6_group_count};
      std::size_t tail = n - gap_at;
      for (std::size_t g = 0; g < gap_at; ++g) a.set_group(g, groups[g]);
      for (std::size_t g = 0; g < tail; ++g) a.set_group(8 - tail + g, groups[gap_at + g]);
    }
    return a;
  }

  /// RFC 5952: lower case, no leading zeros, the longest run (>= 2) of zero groups as "::"
  /// (the first of equal runs), IPv4-mapped addresses with a dotted tail.
  void append_to(std::string& out) const {
    static constexpr char hex[] = "0123456789abcdef";
    if (is_v4_mapped()) {
      out += "::ffff:";
      ipv4_address{{bytes[12], bytes[13], bytes[14], bytes[15]}}.append_to(out);
      return;
    }
    std::size_t best_start = 8, best_len = 0;
    for (std::size_t g = 0; g < 8;) {
      if (group(g) != 0) {
        ++g;
        continue;
      }
      std::size_t start = g;
      while (g < 8 && group(g) == 0) ++g;
      if (g - start > best_len) {
        best_start = start;
        best_len = g - start;
      }
    }
    if (best_len < 2) best_start = 8;
    for (std::size_t g = 0; g < 8; ++g) {
      if (g == best_start) {
        out += "::";
        g += best_len - 1;
        continue;
      }
      if (g != 0 && g != best_start + best_len) out.push_back(':');
      std::uint16_t v = group(g);
      bool started = false;
      for (int shift = 12; shift >= 0; shift -= 4) {
        unsigned nib = (static_cast<unsigned>(v) >> shift) & 0xFu;
        if (nib != 0 || started || shift == 0) {
          out.push_back(hex[nib]);
          started = true;
        }
      }
    }
  }
  [[nodiscard]] std::string to_string() const {
    std::string s;
    append_to(s);
    return s;
  }

  constexpr void set_group(std::size_t i, std::uint16_t v) noexcept {
    bytes[2 * i] = static_cast<std::uint8_t>(v >> 8);
    bytes[2 * i + 1] = static_cast<std::uint8_t>(v);
  }

  friend constexpr auto operator<=>(const ipv6_address&, const ipv6_address&) = default;
};

/// An address of either family. IPv4 lives in the first four bytes; the rest stay zero so that
/// comparison and hashing can treat the 16 bytes as a whole.
class ip_address {
 public:
  constexpr ip_address() noexcept = default;
  constexpr ip_address(ipv4_address a) noexcept : family_(ip_family::v4) {
    for (std::size_t i = 0; i < 4; ++i) bytes_[i] = a.bytes[i];
  }
  constexpr ip_address(ipv6_address a) noexcept : bytes_(a.bytes), family_(ip_family::v6) {}

  /// From raw network-order bytes (4 for v4, 16 for v6), as read out of a packet.
  [[nodiscard]] static ip_address from_bytes(ip_family f, const std::uint8_t* p) noexcept {
    ip_address a;
    a.family_ = f;
    std::memcpy(a.bytes_.data(), p, f == ip_family::v4 ? 4 : 16);
    return a;
  }

  [[nodiscard]] constexpr ip_family family() const noexcept { return family_; }
  [[nodiscard]] constexpr bool is_v4() const noexcept { return family_ == ip_family::v4; }
  [[nodiscard]] constexpr bool is_v6() const noexcept { return family_ == ip_family::v6; }
  [[nodiscard]] constexpr ipv4_address v4() const noexcept {
    return {{bytes_[0], bytes_[1], bytes_[2], bytes_[3]}};
  }
  [[nodiscard]] constexpr ipv6_address v6() const noexcept { return {bytes_}; }
  /// The 16 storage bytes (v4: the address then twelve zero bytes).
  [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& raw() const noexcept { return bytes_; }
  [[nodiscard]] constexpr std::size_t byte_size() const noexcept { return is_v4() ? 4 : 16; }

  /// IPVS's fold of an address to 32 bits for sh/dh/mh/lblc: the IPv4 address in host order, or
  /// the XOR of an IPv6 address's four 32-bit words (ipvs-notes 0A, ip_vs_sh.c ip_vs_sh_hashkey).
  [[nodiscard]] constexpr std::uint32_t ipvs_fold() const noexcept {
    if (is_v4()) return v4().to_u32();
    auto a = v6();
    return a.word(0) ^ a.word(1) ^ a.word(2) ^ a.word(3);
  }

  /// Either family: an IPv6 text has a ':', an IPv4 text does not.
  [[nodiscard]] static constexpr expected<ip_address, address_error> parse(
      std::string_view s) noexcept {
    if (s.find(':') != std::string_view::npos) {
      auto a = ipv6_address::parse(s);
      if (!a) return unexpected{a.error()};
      return ip_address{*a};
    }
    auto a = ipv4_address::parse(s);
    if (!a) return unexpected{a.error()};
    return ip_address{*a};
  }

  void append_to(std::string& out) const {
    if (is_v4())
      v4().append_to(out);
    else
      v6().append_to(out);
  }
  [[nodiscard]] std::string to_string() const {
    std::string s;
    append_to(s);
    return s;
  }

  [[nodiscard]] std::uint64_t hash() const noexcept {
    return hash_bytes(bytes_.data(), 16, static_cast<std::uint64_t>(family_));
  }

  friend constexpr bool operator==(const ip_address&, const ip_address&) = default;
  /// v4 before v6, then by bytes.
  friend constexpr auto operator<=>(const ip_address& a, const ip_address& b) noexcept {
    if (auto c = a.family_ <=> b.family_; c != 0) return c;
    return a.bytes_ <=> b.bytes_;
  }

 private:
  std::array<std::uint8_t, 16> bytes_{};
  ip_family family_ = ip_family::v4;
};

/// Whether two 16-byte address storages are equal, in two 8-byte compares (std::array's ==
/// calls memcmp, which showed in the director's per-connection profile).
[[nodiscard]] inline bool equal_16(const std::array<std::uint8_t, 16>& a,
                                   const std::array<std::uint8_t, 16>& b) noexcept {
  std::uint64_t x[2], y[2];
  std::memcpy(x, a.data(), 16);
  std::memcpy(y, b.data(), 16);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

/// Address and port: "198.18.0.1:80" or "[fd00::1]:80".
struct endpoint {
  ip_address address;
  std::uint16_t port = 0;

  [[nodiscard]] static constexpr expected<endpoint, address_error> parse(
      std::string_view s) noexcept {
    if (s.empty()) return unexpected{address_error::empty};
    std::string_view host, port;
    if (s[0] == '[') {
      auto close = s.find(']');
      if (close == std::string_view::npos) return unexpected{address_error::missing_bracket};
      host = s.substr(1, close - 1);
      if (close + 1 >= s.size() || s[close + 1] != ':')
        return unexpected{address_error::missing_port};
      port = s.substr(close + 2);
      auto a = ipv6_address::parse(host);
      if (!a) return unexpected{a.error()};
      auto p = parse_port(port);
      if (!p) return unexpected{p.error()};
      return endpoint{*a, *p};
    }
    if (s.find(']') != std::string_view::npos) return unexpected{address_error::missing_bracket};
    auto colon = s.find(':');
    if (colon == std::string_view::npos) return unexpected{address_error::missing_port};
    if (s.find(':', colon + 1) != std::string_view::npos)
      return unexpected{address_error::missing_bracket};  // bare IPv6 with a port is ambiguous
    auto a = ipv4_address::parse(s.substr(0, colon));
    if (!a) return unexpected{a.error()};
    auto p = parse_port(s.substr(colon + 1));
    if (!p) return unexpected{p.error()};
    return endpoint{*a, *p};
  }

  /// Decimal 0..65535, no sign, no leading zeros beyond "0".
  [[nodiscard]] static constexpr expected<std::uint16_t, address_error> parse_port(
      std::string_view s) noexcept {
    if (s.empty()) return unexpected{address_error::missing_port};
    if (s.size() > 5 || (s.size() > 1 && s[0] == '0')) return unexpected{address_error::bad_port};
    unsigned v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return unexpected{address_error::bad_port};
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 65535) return unexpected{address_error::bad_port};
    return static_cast<std::uint16_t>(v);
  }

  void append_to(std::string& out) const {
    if (address.is_v6()) out.push_back('[');
    address.append_to(out);
    if (address.is_v6()) out.push_back(']');
    out.push_back(':');
    detail::append_decimal(out, port);
  }
  [[nodiscard]] std::string to_string() const {
    std::string s;
    append_to(s);
    return s;
  }

  [[nodiscard]] std::uint64_t hash() const noexcept { return hash_mix(address.hash(), port); }

  friend constexpr bool operator==(const endpoint&, const endpoint&) = default;
  friend constexpr auto operator<=>(const endpoint&, const endpoint&) = default;
};

}  // namespace l4lb::wire

template <>
struct std::hash<l4lb::wire::ip_address> {
  std::size_t operator()(const l4lb::wire::ip_address& a) const noexcept {
    return static_cast<std::size_t>(a.hash());
  }
};
template <>
struct std::hash<l4lb::wire::endpoint> {
  std::size_t operator()(const l4lb::wire::endpoint& e) const noexcept {
    return static_cast<std::size_t>(e.hash());
  }
};
