// The Internet checksum (RFC 1071): a fast one's-complement sum over caller bytes, an accumulator
// for summing pseudo-header + header + payload in pieces (odd lengths at odd offsets included),
// IPv4/IPv6 pseudo-headers, and RFC 1624 incremental updates that agree bit for bit with a full
// recomputation (the 0x0000/0xFFFF rules are spelled out at `checksum_delta`).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include <boost/endian/conversion.hpp>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::wire {

namespace detail {

/// Folds a value to 16 bits with end-around carries. Keeps the residue mod 0xFFFF, and a
/// non-zero input never folds to 0 (so "+0" appears only when every summed byte was zero).
constexpr std::uint16_t fold_to_16(std::uint64_t s) noexcept {
  s = (s & 0xFFFF'FFFFu) + (s >> 32);
  s = (s & 0xFFFF'FFFFu) + (s >> 32);
  s = (s & 0xFFFFu) + (s >> 16);
  s = (s & 0xFFFFu) + (s >> 16);
  s = (s & 0xFFFFu) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}

constexpr std::uint16_t byte_swap_16(std::uint16_t v) noexcept {
  return static_cast<std::uint16_t>((v >> 8) | (v << 8));
}

/// a + b with the carry out of bit 63 added back in (one's-complement addition mod 2^64 - 1).
constexpr std::uint64_t add_end_around(std::uint64_t a, std::uint64_t b) noexcept {
  a += b;
  return a + (a < b ? 1u : 0u);
}

#if defined(__GNUC__) && defined(__AVX2__)
// GNU vector extension (g++ and clang): four 64-bit lanes, one AVX2 register.
typedef std::uint64_t checksum_u64x4 __attribute__((vector_size(32)));

/// Bulk of a buffer in 64-byte steps: each 64-bit lane gets the low and high 32-bit halves of
/// its native words added separately, so no carry is ever lost (2^32 steps before a lane could
/// overflow) and there is no carry chain. Returns the lanes' end-around sum; consumes whole
/// 64-byte blocks and advances `p`/`n` past them. Precondition: n < 2^36.
inline std::uint64_t sum_blocks_avx2(const std::byte*& p, std::size_t& n) noexcept {
  const checksum_u64x4 low32 = {0xFFFF'FFFFu, 0xFFFF'FFFFu, 0xFFFF'FFFFu, 0xFFFF'FFFFu};
  checksum_u64x4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0}, c = {0, 0, 0, 0}, d = {0, 0, 0, 0};
  while (n >= 64) {
    checksum_u64x4 w, x;
    std::memcpy(&w, p, 32);
    std::memcpy(&x, p + 32, 32);
    a += w & low32;
    b += w >> 32;
    c += x & low32;
    d += x >> 32;
    p += 64;
    n -= 64;
  }
  // Each lane holds at most n/64 values below 2^32: under 2^62 for n < 2^36 (the caller's
  // bound), so the four accumulators add without overflow; the lanes then add end-around.
  a += b + c + d;
  std::uint64_t s = add_end_around(add_end_around(a[0], a[1]), add_end_around(a[2], a[3]));
  return s;
}
#endif

__extension__ using checksum_u128 = unsigned __int128;

/// Sum of the bytes as big-endian 16-bit words (a trailing odd byte is the high half of a word),
/// folded to 16 bits. At run time native words are summed and the folded result is swapped once
/// at the end: RFC 1071 section 2(B), the sum is independent of byte order up to a final swap,
/// and 2^32 = 2^64 = 1 (mod 0xFFFF), so wider words fold like runs of 16-bit words. With AVX2
/// the bulk goes through vector lanes (about 4x the scalar rate, see bench/checksum_bench.cpp);
/// the scalar path adds 64-bit words into a 128-bit accumulator (an add/adc pair per 8 bytes).
/// Any alignment: every load is a memcpy.
constexpr std::uint16_t sum_bytes(const std::byte* p, std::size_t n) noexcept {
  if (std::is_constant_evaluated()) {
    std::uint64_t s = 0;
    std::size_t i = 0;
    for (; i + 1 < n; i += 2)
      s += (std::uint64_t{std::to_integer<std::uint8_t>(p[i])} << 8) |
           std::to_integer<std::uint8_t>(p[i + 1]);
    if (i < n) s += std::uint64_t{std::to_integer<std::uint8_t>(p[i])} << 8;
    return fold_to_16(s);
  }
  checksum_u128 acc = 0;
#if defined(__GNUC__) && defined(__AVX2__)
  if (n >= 64 && n < (std::size_t{1} << 36)) acc += sum_blocks_avx2(p, n);
#endif
  std::uint64_t w;
  while (n >= 8) {
    std::memcpy(&w, p, 8);
    acc += w;
    p += 8;
    n -= 8;
  }
  if (n != 0) {
    // Zero-padding the tail to a whole native word keeps every byte in its lane, so an odd last
    // byte lands in the high half of its big-endian word, as RFC 1071 pads it.
    std::uint64_t tail = 0;
    std::memcpy(&tail, p, n);
    acc += tail;
  }
  // 2^64 = 1 (mod 2^64 - 1): the high half carries in at the bottom.
  std::uint64_t s =
      add_end_around(static_cast<std::uint64_t>(acc), static_cast<std::uint64_t>(acc >> 64));
  std::uint16_t folded = fold_to_16(s);
  if constexpr (std::endian::native == std::endian::little) folded = byte_swap_16(folded);
  return folded;
}

}  // namespace detail

/// A one's-complement sum in progress (RFC 1071). Pieces may have any length and start at any
/// offset of the summed stream: the accumulator remembers whether the bytes so far were odd in
/// number and swaps the next piece's sum into place (RFC 1071 section 2(B)).
class checksum_accumulator {
 public:
  constexpr checksum_accumulator() noexcept = default;

  /// Adds bytes that continue the stream.
  constexpr checksum_accumulator& add(std::span<const std::byte> bytes) noexcept {
    std::uint16_t s = detail::sum_bytes(bytes.data(), bytes.size());
    sum_ += odd_ ? detail::byte_swap_16(s) : s;
    odd_ ^= (bytes.size() & 1u) != 0;
    return *this;
  }
  /// Adds one 16-bit word given in host order, as if its two big-endian bytes came next.
  constexpr checksum_accumulator& add_u16(std::uint16_t word) noexcept {
    sum_ += odd_ ? detail::byte_swap_16(word) : word;
    return *this;
  }
  /// Adds a 32-bit value given in host order as its four big-endian bytes.
  constexpr checksum_accumulator& add_u32(std::uint32_t v) noexcept {
    add_u16(static_cast<std::uint16_t>(v >> 16));
    return add_u16(static_cast<std::uint16_t>(v));
  }
  constexpr checksum_accumulator& add(const ipv4_address& a) noexcept { return add_u32(a.to_u32()); }
  constexpr checksum_accumulator& add(const ipv6_address& a) noexcept {
    for (std::size_t i = 0; i < 8; ++i) add_u16(a.group(i));
    return *this;
  }
  /// Appends another accumulator's stream after this one's.
  constexpr checksum_accumulator& add(const checksum_accumulator& next) noexcept {
    std::uint16_t s = next.folded();
    sum_ += odd_ ? detail::byte_swap_16(s) : s;
    odd_ ^= next.odd_;
    return *this;
  }

  /// The one's-complement sum folded to 16 bits (not complemented). 0 only if every byte was 0.
  [[nodiscard]] constexpr std::uint16_t folded() const noexcept {
    return detail::fold_to_16(sum_);
  }
  /// The checksum to write into a header: the complement of the sum.
  [[nodiscard]] constexpr std::uint16_t checksum() const noexcept {
    return static_cast<std::uint16_t>(~folded());
  }
  /// True when the summed stream included a correct checksum field (the sum is "-0", 0xFFFF).
  [[nodiscard]] constexpr bool verifies() const noexcept { return folded() == 0xFFFF; }
  /// Whether an odd number of bytes has been added so far.
  [[nodiscard]] constexpr bool odd() const noexcept { return odd_; }

 private:
  // 16-bit words added into 64 bits: 2^48 additions before overflow, folded only when read.
  std::uint64_t sum_ = 0;
  bool odd_ = false;
};

/// RFC 1071 sum of a buffer, complemented: the checksum of exactly these bytes.
[[nodiscard]] constexpr std::uint16_t internet_checksum(std::span<const std::byte> bytes) noexcept {
  return checksum_accumulator{}.add(bytes).checksum();
}

// ---- pseudo-headers ------------------------------------------------------------------------

/// IPv4 pseudo-header (RFC 793 section 3.1, RFC 768): source, destination, zero, protocol,
/// L4 length. `l4_len` is the TCP/UDP length in bytes (header + data).
[[nodiscard]] constexpr checksum_accumulator pseudo_header_v4(const ipv4_address& src,
                                                              const ipv4_address& dst,
                                                              std::uint8_t protocol,
                                                              std::uint16_t l4_len) noexcept {
  checksum_accumulator acc;
  acc.add(src).add(dst).add_u16(protocol).add_u16(l4_len);
  return acc;
}

/// IPv6 pseudo-header (RFC 8200 section 8.1): source, final destination, 32-bit upper-layer
/// length, three zero bytes, next header (the upper-layer protocol, not an extension header).
[[nodiscard]] constexpr checksum_accumulator pseudo_header_v6(const ipv6_address& src,
                                                              const ipv6_address& dst,
                                                              std::uint8_t next_header,
                                                              std::uint32_t l4_len) noexcept {
  checksum_accumulator acc;
  acc.add(src).add(dst).add_u32(l4_len).add_u16(next_header);
  return acc;
}

/// Pseudo-header of either family from raw address bytes as they sit in a packet (4 or 16 bytes
/// each, chosen by `family`).
[[nodiscard]] constexpr checksum_accumulator pseudo_header(ip_family family,
                                                           std::span<const std::byte> src,
                                                           std::span<const std::byte> dst,
                                                           std::uint8_t protocol,
                                                           std::uint32_t l4_len) noexcept {
  checksum_accumulator acc;
  const std::size_t n = family == ip_family::v4 ? 4 : 16;
  acc.add(src.first(n)).add(dst.first(n));
  if (family == ip_family::v4) {
    acc.add_u16(protocol).add_u16(static_cast<std::uint16_t>(l4_len));
  } else {
    acc.add_u32(l4_len).add_u16(protocol);
  }
  return acc;
}

// ---- full computation ----------------------------------------------------------------------

/// Where each protocol keeps its checksum field, from the start of its header.
namespace checksum_offset {
inline constexpr std::size_t ipv4 = 10;
inline constexpr std::size_t tcp = 16;
inline constexpr std::size_t udp = 6;
inline constexpr std::size_t icmp = 2;  // ICMP and ICMPv6
inline constexpr std::size_t gre = 4;
}  // namespace checksum_offset

/// Checksum of `bytes` (after `pseudo`, which may be empty) as if the 16-bit field at
/// `field_offset` were zero, without writing to the buffer: the bytes before and after the field
/// are summed as two pieces (skipping two bytes keeps the parity).
/// Precondition: field_offset + 2 <= bytes.size() (callers have checked the header length).
/// Should it not hold, nothing outside `bytes` is read: the missing field bytes count as zero.
[[nodiscard]] constexpr std::uint16_t checksum_with_zero_field(
    checksum_accumulator pseudo, std::span<const std::byte> bytes,
    std::size_t field_offset) noexcept {
  if (field_offset + 2 > bytes.size()) field_offset = bytes.size() & ~std::size_t{1};
  pseudo.add(bytes.first(field_offset));
  pseudo.add_u16(0);
  pseudo.add(bytes.subspan(field_offset + 2 > bytes.size() ? bytes.size() : field_offset + 2));
  return pseudo.checksum();
}

/// IPv4 header checksum over `header` (IHL * 4 bytes), the field itself counted as zero.
[[nodiscard]] inline std::uint16_t ipv4_header_checksum(std::span<const std::byte> header) noexcept {
  if (header.size() == 20) {
    // The option-less header (every tunnel's outer one) in five native loads: the ones'-
    // complement sum is byte-order independent (RFC 1071 section 2(B)), so the words are added
    // as loaded and the folded sum is swapped to network order once.
    std::uint32_t w[5];
    std::memcpy(w, header.data(), sizeof w);
    std::uint16_t field;  // bytes 10-11: the checksum field, counted as zero
    std::memcpy(&field, header.data() + checksum_offset::ipv4, 2);
    std::uint64_t sum = std::uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
    sum -= std::uint64_t{field} << (std::endian::native == std::endian::little ? 16 : 0);
    sum = (sum & 0xffff'ffffu) + (sum >> 32);
    sum = (sum & 0xffff'ffffu) + (sum >> 32);
    sum = (sum & 0xffffu) + (sum >> 16);
    sum = (sum & 0xffffu) + (sum >> 16);
    return boost::endian::big_to_native(static_cast<std::uint16_t>(~sum & 0xffffu));
  }
  return checksum_with_zero_field({}, header, checksum_offset::ipv4);
}

/// TCP checksum (RFC 793; RFC 8200 8.1 for v6) of `segment` = TCP header + data.
[[nodiscard]] inline std::uint16_t tcp_checksum(const checksum_accumulator& pseudo,
                                                std::span<const std::byte> segment) noexcept {
  return checksum_with_zero_field(pseudo, segment, checksum_offset::tcp);
}

/// UDP checksum (RFC 768): a computed 0 is transmitted as 0xFFFF (0 means "no checksum").
[[nodiscard]] inline std::uint16_t udp_checksum(const checksum_accumulator& pseudo,
                                                std::span<const std::byte> datagram) noexcept {
  std::uint16_t c = checksum_with_zero_field(pseudo, datagram, checksum_offset::udp);
  return c == 0 ? std::uint16_t{0xFFFF} : c;
}

/// ICMP (v4) checksum: over the message only, no pseudo-header (RFC 792).
[[nodiscard]] inline std::uint16_t icmpv4_checksum(std::span<const std::byte> message) noexcept {
  return checksum_with_zero_field({}, message, checksum_offset::icmp);
}

/// ICMPv6 checksum: over the IPv6 pseudo-header (next header 58) and the message (RFC 4443 2.3).
[[nodiscard]] inline std::uint16_t icmpv6_checksum(const ipv6_address& src, const ipv6_address& dst,
                                                   std::span<const std::byte> message) noexcept {
  return checksum_with_zero_field(
      pseudo_header_v6(src, dst, ip_proto::icmpv6, static_cast<std::uint32_t>(message.size())),
      message, checksum_offset::icmp);
}

/// TCP/UDP checksum for IPv4 from addresses: builds the pseudo-header with the segment's length.
[[nodiscard]] inline std::uint16_t l4_checksum_v4(const ipv4_address& src, const ipv4_address& dst,
                                                  std::uint8_t protocol,
                                                  std::span<const std::byte> segment) noexcept {
  auto pseudo = pseudo_header_v4(src, dst, protocol, static_cast<std::uint16_t>(segment.size()));
  return protocol == ip_proto::udp ? udp_checksum(pseudo, segment) : tcp_checksum(pseudo, segment);
}

/// TCP/UDP/ICMPv6 checksum for IPv6 from addresses.
[[nodiscard]] inline std::uint16_t l4_checksum_v6(const ipv6_address& src, const ipv6_address& dst,
                                                  std::uint8_t protocol,
                                                  std::span<const std::byte> segment) noexcept {
  auto pseudo = pseudo_header_v6(src, dst, protocol, static_cast<std::uint32_t>(segment.size()));
  if (protocol == ip_proto::udp) return udp_checksum(pseudo, segment);
  if (protocol == ip_proto::icmpv6)
    return checksum_with_zero_field(pseudo, segment, checksum_offset::icmp);
  return tcp_checksum(pseudo, segment);
}

/// A received IPv4 UDP checksum of 0 means the sender computed none (RFC 768). Over IPv6 a zero
/// UDP checksum is not allowed (RFC 8200 8.1) except for tunnels under RFC 6935.
[[nodiscard]] constexpr bool udp_checksum_absent(std::uint16_t field) noexcept {
  return field == 0;
}

// ---- incremental update (RFC 1624) ---------------------------------------------------------

/// The one's-complement difference between old and new values of some covered 16-bit words,
/// collected once and applied to every checksum that covers them (NAT changes an address that is
/// in both the IPv4 header and the L4 pseudo-header). RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
///
/// Agreement with full recomputation, bit for bit:
///   * A full computation over data that is not all zero gives 0x0000..0xFFFE: the folded sum
///     of a positive number is never 0, so its complement is never 0xFFFF. A data sum that is
///     0 mod 0xFFFF gives 0x0000.
///   * ~HC + ~m + m' can only fold to 0 ("+0") when every addend is 0 (e.g. HC = 0xFFFF, m =
///     0xFFFF, m' = 0); RFC 1624 then yields 0xFFFF where a full computation gives 0x0000.
///     `apply()` maps that 0xFFFF to 0x0000, so its result is exactly the full computation's.
///   * An input checksum of 0xFFFF (how Linux writes a TCP checksum that computed to 0, see the
///     captures README) is congruent to 0x0000 and gives the same output (ipvs-notes 0A).
///   * UDP (`apply_udp`): the full computation turns 0 into 0xFFFF (RFC 768), so does this.
///     An IPv4 UDP field of 0 means "no checksum" and must not be updated: callers recompute
///     it in full (what IPVS does) or leave it 0; `apply_udp` asserts nothing about that.
class checksum_delta {
 public:
  constexpr checksum_delta() noexcept = default;

  /// A covered 16-bit word (host order) changes from `old_word` to `new_word`.
  constexpr checksum_delta& replace_u16(std::uint16_t old_word, std::uint16_t new_word) noexcept {
    sum_ += static_cast<std::uint16_t>(~old_word);
    sum_ += new_word;
    return *this;
  }
  /// A covered 32-bit value (host order, at an even offset) changes.
  constexpr checksum_delta& replace_u32(std::uint32_t old_v, std::uint32_t new_v) noexcept {
    replace_u16(static_cast<std::uint16_t>(old_v >> 16), static_cast<std::uint16_t>(new_v >> 16));
    return replace_u16(static_cast<std::uint16_t>(old_v), static_cast<std::uint16_t>(new_v));
  }
  /// Covered bytes at an even offset change (equal lengths, even or odd).
  constexpr checksum_delta& replace(std::span<const std::byte> old_bytes,
                                    std::span<const std::byte> new_bytes) noexcept {
    sum_ += static_cast<std::uint16_t>(~detail::sum_bytes(old_bytes.data(), old_bytes.size()));
    sum_ += detail::sum_bytes(new_bytes.data(), new_bytes.size());
    return *this;
  }
  constexpr checksum_delta& replace(const ipv4_address& old_a, const ipv4_address& new_a) noexcept {
    return replace_u32(old_a.to_u32(), new_a.to_u32());
  }
  constexpr checksum_delta& replace(const ipv6_address& old_a, const ipv6_address& new_a) noexcept {
    for (std::size_t i = 0; i < 8; ++i) replace_u16(old_a.group(i), new_a.group(i));
    return *this;
  }
  /// Merges another delta (both changes apply).
  constexpr checksum_delta& add(const checksum_delta& other) noexcept {
    sum_ += other.sum_;
    return *this;
  }

  /// The updated checksum for a field that held `old_checksum` (IPv4 header, TCP, ICMP, ICMPv6,
  /// UDP over IPv6 with a checksum). Equals full recomputation; never returns 0xFFFF.
  [[nodiscard]] constexpr std::uint16_t apply(std::uint16_t old_checksum) const noexcept {
    std::uint64_t s = sum_ + static_cast<std::uint16_t>(~old_checksum);
    auto c = static_cast<std::uint16_t>(~detail::fold_to_16(s));
    return c == 0xFFFF ? std::uint16_t{0} : c;
  }
  /// The updated UDP checksum for a field that held a (non-zero) checksum: 0 becomes 0xFFFF.
  [[nodiscard]] constexpr std::uint16_t apply_udp(std::uint16_t old_checksum) const noexcept {
    std::uint16_t c = apply(old_checksum);
    return c == 0 ? std::uint16_t{0xFFFF} : c;
  }
  /// True when nothing changed in one's-complement terms (the delta is 0 mod 0xFFFF).
  [[nodiscard]] constexpr bool is_identity() const noexcept {
    std::uint16_t f = detail::fold_to_16(sum_);
    return f == 0 || f == 0xFFFF;
  }

 private:
  std::uint64_t sum_ = 0;
};

/// RFC 1624 for one changed 16-bit word; same 0x0000/0xFFFF rules as `checksum_delta::apply`.
[[nodiscard]] constexpr std::uint16_t checksum_update_u16(std::uint16_t old_checksum,
                                                          std::uint16_t old_word,
                                                          std::uint16_t new_word) noexcept {
  return checksum_delta{}.replace_u16(old_word, new_word).apply(old_checksum);
}
/// RFC 1624 for one changed 32-bit value (an IPv4 address).
[[nodiscard]] constexpr std::uint16_t checksum_update_u32(std::uint16_t old_checksum,
                                                          std::uint32_t old_v,
                                                          std::uint32_t new_v) noexcept {
  return checksum_delta{}.replace_u32(old_v, new_v).apply(old_checksum);
}
/// RFC 1624 for a changed IPv6 address.
[[nodiscard]] constexpr std::uint16_t checksum_update(std::uint16_t old_checksum,
                                                      const ipv6_address& old_a,
                                                      const ipv6_address& new_a) noexcept {
  return checksum_delta{}.replace(old_a, new_a).apply(old_checksum);
}

}  // namespace l4lb::wire
