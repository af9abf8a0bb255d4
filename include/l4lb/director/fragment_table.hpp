// fragment_table: the director's bounded reassembly queue, IPv4 and IPv6. IPVS sees reassembled
// datagrams (the kernel's defrag runs first) but DR and NAT send the fragments that arrived, with
// their own boundaries, in offset order once the datagram is complete (ipvs-notes 0B). So the
// director keeps copies of fragments — only fragments — until their datagram is whole, then
// hands them back sorted by offset together with what it needs to rebuild the datagram.
//
// Design notes
// - Fixed at construction: `datagrams` queues and `slots` fragment slots of `slot_bytes` each
//   (defaults: 2048 × 2 KiB = 4 MiB, the kernel's ipfrag_high_thresh, shared by both families).
//   A datagram lives at most the timeout from its first fragment (ip_expire): 30 s for IPv4
//   (net.ipv4.ipfrag_time), 60 s for IPv6 (net.ipv6.ip6frag_time, nf_conntrack_frag6_timeout).
//   Expired and refused fragments are counted.
// - The kernel's rules (ip_fragment.c ip_frag_queue, reassembly.c ip6_frag_queue; RFC 791,
//   RFC 8200 4.5, RFC 5722): a non-last fragment whose length is not a multiple of 8, or one
//   reaching past 65 535 bytes, is invalid; an exact duplicate is dropped alone; an overlap kills
//   the whole datagram (nothing is sent). IPv6 only: a first fragment must hold the whole
//   upper-layer header (RFC 7112, ipv6_frag_thdr_truncated), and the fragments of one datagram
//   are matched by (source, destination, identification) without the protocol (RFC 8200 4.5:
//   only the first fragment's next header counts).
// - An IPv6 fragment's "header" is its unfragmentable part plus the 8-byte fragment header;
//   `queue_info` says where the fragment header sits in the first fragment and which byte names
//   it, so the director can rebuild the datagram without it.
// - Lookup: a hash over the key into a bucket array with chains through the queue entries.
//   Data path: no allocation, no lock.
// Cost: O(fragments of the datagram) per fragment (at most max_fragments, 64).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/wire/packet.hpp"

namespace l4lb::director {

struct fragment_config {
  std::uint32_t datagrams = 1024;        ///< datagrams reassembled at once
  std::uint32_t slots = 2048;            ///< fragments held at once
  std::uint32_t slot_bytes = 2048;       ///< the largest fragment frame kept (L2 included)
  std::int64_t timeout_ns = 30'000'000'000;     ///< IPv4: net.ipv4.ipfrag_time
  std::int64_t timeout_v6_ns = 60'000'000'000;  ///< IPv6: net.ipv6.ip6frag_time
  static constexpr std::uint32_t max_fragments = 64;  ///< per datagram
};

enum class fragment_status : std::uint8_t {
  queued,          ///< kept; the datagram is not complete yet
  complete,        ///< this fragment completed its datagram (see `datagram`)
  duplicate,       ///< an exact duplicate of a fragment already held: dropped
  overlap,         ///< overlaps another fragment: the whole datagram was dropped
  invalid,         ///< past 65 535 bytes, a non-last fragment not a multiple of 8, an empty
                   ///< one, or an IPv6 first fragment without its whole upper-layer header
  too_large,       ///< bigger than a slot
  too_many,        ///< more than max_fragments for one datagram: the datagram was dropped
  no_room,         ///< no free slot or queue: dropped (the pool is bounded)
};

[[nodiscard]] constexpr std::string_view to_string(fragment_status s) noexcept {
  switch (s) {
    case fragment_status::queued: return "queued";
    case fragment_status::complete: return "complete";
    case fragment_status::duplicate: return "fragment_duplicate";
    case fragment_status::overlap: return "fragment_overlap";
    case fragment_status::invalid: return "fragment_invalid";
    case fragment_status::too_large: return "fragment_too_large";
    case fragment_status::too_many: return "fragment_too_many";
    case fragment_status::no_room: return "fragment_no_room";
  }
  return "unknown";
}

struct fragment_stats {
  std::uint64_t queued = 0;
  std::uint64_t completed = 0;   ///< datagrams
  std::uint64_t expired = 0;     ///< datagrams timed out (their fragments dropped)
  std::uint64_t dropped = 0;     ///< fragments refused or dropped with their datagram
};

class fragment_table {
 public:
  static constexpr std::uint32_t none = 0xFFFF'FFFFu;

  /// One fragment held, in the caller-visible form (its frame, ready to be rewritten in place).
  struct piece {
    std::span<std::byte> frame;  ///< the fragment's frame (L2 + IP packet), inside the table
    std::uint32_t offset = 0;    ///< payload offset in the datagram, bytes
    std::uint32_t payload = 0;   ///< payload bytes
    std::uint32_t l3_offset = 0;
    std::uint32_t l3_len = 0;
  };

  explicit fragment_table(const fragment_config& cfg = {})
      : cfg_(cfg),
        arena_(std::make_unique<std::byte[]>(std::size_t{cfg.slots} * cfg.slot_bytes)),
        free_slots_(cfg.slots),
        queues_(cfg.datagrams),
        buckets_(bucket_count(cfg.datagrams), none),
        free_queues_(cfg.datagrams) {
    for (auto& r : order_) r.entries.resize(std::size_t{cfg.datagrams} * 2);
    for (std::uint32_t i = 0; i < cfg.slots; ++i) free_slots_[i] = cfg.slots - 1 - i;
    n_free_slots_ = cfg.slots;
    for (std::uint32_t i = 0; i < cfg.datagrams; ++i) free_queues_[i] = cfg.datagrams - 1 - i;
    n_free_queues_ = cfg.datagrams;
  }

  /// Where a datagram's first fragment keeps its IPv6 fragment header (IPv4: all zero).
  struct queue_info {
    wire::ip_family family = wire::ip_family::v4;
    std::uint32_t fragment_header_at = 0;  ///< from the IP header's start: the unfragmentable part's length
    std::uint32_t next_header_at = 0;      ///< the byte that names the fragment header (6: the IPv6 header's)
  };

  /// Takes a copy of a fragment. On `complete`, `datagram` names the queue whose pieces() are the
  /// fragments in offset order; release() it once they are sent.
  fragment_status add(const wire::packet_view& pkt, std::int64_t now, std::uint32_t& datagram) noexcept {
    datagram = none;
    const bool v6 = pkt.is_ipv6();
    const std::uint32_t l3_len = static_cast<std::uint32_t>(pkt.l3_len());
    key k;
    queue_info where;
    std::uint32_t hlen = 0;
    if (v6) {
      if (!ipv6_fragment_header(pkt, where)) return refuse(fragment_status::invalid);
      hlen = where.fragment_header_at + 8;
      const auto frag = wire::ipv6_fragment_view::unchecked(pkt.l3().subspan(where.fragment_header_at));
      k.id = frag.ident();
      // RFC 7112: the first fragment holds the whole upper-layer header (the parser found it).
      const std::uint8_t proto = pkt.protocol();
      if (frag.frag_offset() == 0 && !pkt.has_l4_header() &&
          (proto == wire::ip_proto::tcp || proto == wire::ip_proto::udp ||
           proto == wire::ip_proto::sctp || proto == wire::ip_proto::icmpv6))
        return refuse(fragment_status::invalid);
    } else {
      hlen = static_cast<std::uint32_t>(pkt.ip_header_len());
      k.id = pkt.ipv4().ident();
      k.protocol = pkt.ipv4().protocol();
    }
    if (l3_len <= hlen) return refuse(fragment_status::invalid);
    const std::uint32_t payload = l3_len - hlen;
    const std::uint32_t offset = static_cast<std::uint32_t>(pkt.fragment_offset());
    const bool last = !pkt.more_fragments();
    // IPv4: the whole datagram within 65 535 bytes; IPv6: its payload (IPV6_MAXPLEN), counting
    // the unfragmentable extension headers.
    const std::uint32_t limit_used = v6 ? where.fragment_header_at - 40 + offset + payload : offset + payload + hlen;
    if (limit_used > 65535 || (!last && payload % 8 != 0)) return refuse(fragment_status::invalid);
    const std::size_t frame_len = pkt.l3_offset() + l3_len;
    if (frame_len > cfg_.slot_bytes) return refuse(fragment_status::too_large);
    k.family = v6 ? 1 : 0;
    const std::size_t n = v6 ? 16 : 4;
    std::memcpy(k.src.data(), pkt.key().src_addr.data(), n);
    std::memcpy(k.dst.data(), pkt.key().dst_addr.data(), n);
    std::uint32_t q = find(k);
    if (q == none) {
      q = create(k, now);
      if (q == none) return refuse(fragment_status::no_room);
    }
    queue& e = queues_[q];
    // Where it goes, and what it overlaps (ip_frag_queue).
    const std::uint32_t end = offset + payload;
    if (last) {
      if (end < e.max_end || (e.total != 0 && e.total != end)) return kill(q, fragment_status::overlap);
    } else if (e.total != 0 && end > e.total) {
      return kill(q, fragment_status::overlap);
    }
    std::uint32_t at = 0;
    while (at < e.count && e.pieces[at].offset < offset) ++at;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      const piece& p = e.pieces[i];
      if (p.offset == offset && p.payload == payload) {
        ++stats_.dropped;
        return fragment_status::duplicate;
      }
      if (offset < p.offset + p.payload && p.offset < end) return kill(q, fragment_status::overlap);
    }
    if (e.count == fragment_config::max_fragments) return kill(q, fragment_status::too_many);
    if (n_free_slots_ == 0) return kill(q, fragment_status::no_room);
    const std::uint32_t s = free_slots_[--n_free_slots_];
    std::byte* dst = slot(s);
    std::memcpy(dst, pkt.frame().data(), frame_len);
    for (std::uint32_t i = e.count; i > at; --i) {
      e.pieces[i] = e.pieces[i - 1];
      e.slot_of[i] = e.slot_of[i - 1];
    }
    e.pieces[at] = {std::span(dst, frame_len), offset, payload,
                    static_cast<std::uint32_t>(pkt.l3_offset()), l3_len};
    e.slot_of[at] = s;
    if (offset == 0) e.where = where;  // the first fragment's layout is the datagram's
    ++e.count;
    e.have += payload;
    e.max_end = std::max(e.max_end, end);
    e.largest_l3 = std::max(e.largest_l3, l3_len);
    if (last) e.total = end;
    ++stats_.queued;
    if (e.total != 0 && e.have == e.total) {
      ++stats_.completed;
      e.complete = true;
      datagram = q;
      return fragment_status::complete;
    }
    return fragment_status::queued;
  }

  /// The fragments of a complete datagram, in offset order.
  [[nodiscard]] std::span<const piece> pieces(std::uint32_t q) const noexcept {
    return std::span(queues_[q].pieces).first(queues_[q].count);
  }
  /// The largest IP packet among them (TUN refragments at this size, ipvs-notes 0B).
  [[nodiscard]] std::uint32_t largest_l3(std::uint32_t q) const noexcept { return queues_[q].largest_l3; }
  /// The datagram's payload length (IPv6: its fragmentable part).
  [[nodiscard]] std::uint32_t total(std::uint32_t q) const noexcept { return queues_[q].total; }
  /// Where the first fragment's IPv6 fragment header is.
  [[nodiscard]] const queue_info& info(std::uint32_t q) const noexcept { return queues_[q].where; }

  /// Frees a datagram's queue and its fragments' slots.
  void release(std::uint32_t q) noexcept {
    if (q >= queues_.size() || !queues_[q].used) return;
    unlink(q);
  }

  /// Drops datagrams older than their family's timeout (call once per burst; O(expired)).
  std::uint32_t expire(std::int64_t now) noexcept {
    return expire(order_[0], cfg_.timeout_ns, now) + expire(order_[1], cfg_.timeout_v6_ns, now);
  }

  [[nodiscard]] const fragment_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::uint32_t datagrams_held() const noexcept {
    return cfg_.datagrams - n_free_queues_;
  }
  [[nodiscard]] std::uint32_t fragments_held() const noexcept { return cfg_.slots - n_free_slots_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return std::size_t{cfg_.slots} * (cfg_.slot_bytes + sizeof(std::uint32_t)) +
           queues_.size() * (sizeof(queue) + sizeof(std::uint32_t)) +
           buckets_.size() * sizeof(std::uint32_t) + 2 * order_[0].entries.size() * sizeof(born_entry);
  }
  [[nodiscard]] const fragment_config& config() const noexcept { return cfg_; }

 private:
  struct key {
    std::array<std::uint8_t, 16> src{}, dst{};
    std::uint32_t id = 0;
    std::uint8_t protocol = 0;  // IPv4 only (RFC 791's key); 0 for IPv6
    std::uint8_t family = 0;    // 0: IPv4, 1: IPv6
    friend bool operator==(const key&, const key&) = default;
  };
  struct queue {
    key k;
    queue_info where;
    bool used = false;
    bool complete = false;
    std::int64_t born = 0;
    std::uint32_t next = none;  // bucket chain
    std::uint32_t count = 0, have = 0, total = 0, max_end = 0, largest_l3 = 0;
    std::array<piece, fragment_config::max_fragments> pieces{};
    std::array<std::uint32_t, fragment_config::max_fragments> slot_of{};
  };

  static std::size_t bucket_count(std::uint32_t n) {
    std::size_t b = 16;
    while (b < std::size_t{n} * 2) b *= 2;
    return b;
  }
  [[nodiscard]] std::size_t bucket(const key& k) const noexcept {
    std::uint64_t h = (std::uint64_t{k.id} << 16 | std::uint64_t{k.protocol} << 8 | k.family) * 0xC2B2'AE3D'27D4'EB4Full;
    for (std::size_t i = 0; i < 16; i += 8) {
      std::uint64_t s, d;
      std::memcpy(&s, k.src.data() + i, 8);
      std::memcpy(&d, k.dst.data() + i, 8);
      h = (h ^ s) * 0x9E37'79B9'7F4A'7C15ull;
      h = (h ^ d) * 0x9E37'79B9'7F4A'7C15ull;
      h ^= h >> 29;
    }
    return static_cast<std::size_t>(h) & (buckets_.size() - 1);
  }
  /// Walks the IPv6 header chain to the fragment header (the parser saw it; its offset is not
  /// kept in the view): where it is and which byte names it. False if it is not there.
  static bool ipv6_fragment_header(const wire::packet_view& pkt, queue_info& where) noexcept {
    const auto l3 = pkt.l3();
    std::size_t off = wire::ipv6_view::header_len, names = 6;
    std::uint8_t nh = pkt.ipv6().next_header();
    for (std::size_t i = 0; i < wire::max_ipv6_extensions && nh != wire::ip_proto::ipv6_frag; ++i) {
      if (!wire::is_ipv6_extension(nh)) return false;
      auto ext = wire::ipv6_ext_view::make(l3.subspan(off), nh);
      if (!ext) return false;
      names = off;
      nh = ext->next_header();
      off += ext->header_len();
    }
    if (nh != wire::ip_proto::ipv6_frag || off + 8 > l3.size()) return false;
    where = {wire::ip_family::v6, static_cast<std::uint32_t>(off), static_cast<std::uint32_t>(names)};
    return true;
  }
  [[nodiscard]] std::uint32_t find(const key& k) const noexcept {
    for (std::uint32_t q = buckets_[bucket(k)]; q != none; q = queues_[q].next)
      if (queues_[q].k == k && !queues_[q].complete) return q;
    return none;
  }
  std::uint32_t create(const key& k, std::int64_t now) noexcept {
    if (n_free_queues_ == 0) return none;
    order_ring& r = order_[k.family];
    if (r.count == r.entries.size()) compact(r);
    if (r.count == r.entries.size()) return none;
    const std::uint32_t q = free_queues_[--n_free_queues_];
    queue& e = queues_[q];
    e.k = k;
    e.used = true;
    e.complete = false;
    e.born = now;
    e.where = {};
    e.count = e.have = e.total = e.max_end = e.largest_l3 = 0;
    const std::size_t b = bucket(k);
    e.next = buckets_[b];
    buckets_[b] = q;
    r.entries[(r.head + r.count) % r.entries.size()] = {q, now};
    ++r.count;
    return q;
  }
  void unlink(std::uint32_t q) noexcept {
    queue& e = queues_[q];
    for (std::uint32_t i = 0; i < e.count; ++i) free_slots_[n_free_slots_++] = e.slot_of[i];
    e.count = 0;
    const std::size_t b = bucket(e.k);
    std::uint32_t* link = &buckets_[b];
    while (*link != none && *link != q) link = &queues_[*link].next;
    if (*link == q) *link = e.next;
    e.used = false;
    free_queues_[n_free_queues_++] = q;
  }
  struct born_entry {
    std::uint32_t q = 0;
    std::int64_t born = 0;
  };
  // Queues in creation order, one ring per family (each family's deadline order).
  struct order_ring {
    std::vector<born_entry> entries;
    std::uint32_t head = 0, count = 0;
  };
  [[nodiscard]] bool waiting(const born_entry& b) const noexcept {
    const queue& e = queues_[b.q];
    return e.used && e.born == b.born && !e.complete;
  }
  std::uint32_t expire(order_ring& r, std::int64_t timeout, std::int64_t now) noexcept {
    std::uint32_t n = 0;
    const auto size = static_cast<std::uint32_t>(r.entries.size());
    while (r.count != 0) {
      const born_entry b = r.entries[r.head];
      if (waiting(b)) {
        if (now - b.born < timeout) break;
        stats_.dropped += queues_[b.q].count;
        ++stats_.expired;
        unlink(b.q);
        ++n;
      }
      r.head = (r.head + 1) % size;
      --r.count;
    }
    return n;
  }
  // Drops released queues' entries from a ring (they pile up behind a live one).
  void compact(order_ring& r) noexcept {
    const auto size = static_cast<std::uint32_t>(r.entries.size());
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < r.count; ++i) {
      const born_entry b = r.entries[(r.head + i) % size];
      if (waiting(b)) r.entries[(r.head + kept++) % size] = b;
    }
    r.count = kept;
  }
  fragment_status refuse(fragment_status s) noexcept {
    ++stats_.dropped;
    return s;
  }
  fragment_status kill(std::uint32_t q, fragment_status why) noexcept {
    stats_.dropped += queues_[q].count + 1;
    unlink(q);
    return why;
  }
  std::byte* slot(std::uint32_t s) noexcept { return arena_.get() + std::size_t{s} * cfg_.slot_bytes; }

  fragment_config cfg_;
  std::unique_ptr<std::byte[]> arena_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t n_free_slots_ = 0;
  std::vector<queue> queues_;
  std::vector<std::uint32_t> buckets_;
  std::vector<std::uint32_t> free_queues_;
  std::uint32_t n_free_queues_ = 0;
  std::array<order_ring, 2> order_;
  fragment_stats stats_;
};

}  // namespace l4lb::director
