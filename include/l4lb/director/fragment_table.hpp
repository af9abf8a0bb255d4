// fragment_table: the director's bounded IPv4 reassembly queue. IPVS sees reassembled datagrams
// (the kernel's defrag runs first) but DR and NAT send the fragments that arrived, with their own
// boundaries and IDs, in offset order once the datagram is complete (ipvs-notes 0B). So the
// director keeps copies of fragments — only fragments — until their datagram is whole, then
// hands them back sorted by offset together with the reassembled datagram.
//
// Design notes
// - Fixed at construction: `datagrams` queues and `slots` fragment slots of `slot_bytes` each
//   (defaults: 2048 × 2 KiB = 4 MiB, the kernel's ipfrag_high_thresh; 30 s, its ipfrag_time).
//   A datagram lives at most `timeout_ns` from its first fragment (ip_expire); expired and
//   refused fragments are counted.
// - The kernel's rules (ip_fragment.c ip_frag_queue, RFC 791, RFC 5722's spirit for IPv4 as
//   Linux applies it since 4.19): a non-last fragment whose length is not a multiple of 8, or
//   one reaching past 65 535 bytes, is invalid; an exact duplicate is dropped alone; an overlap
//   kills the whole datagram (nothing is sent).
// - Lookup: a hash over (source, destination, protocol, ID) into a bucket array with chains
//   through the queue entries. Data path: no allocation, no lock.
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
  std::int64_t timeout_ns = 30'000'000'000;  ///< net.ipv4.ipfrag_time
  static constexpr std::uint32_t max_fragments = 64;  ///< per datagram
};

enum class fragment_status : std::uint8_t {
  queued,          ///< kept; the datagram is not complete yet
  complete,        ///< this fragment completed its datagram (see `datagram`)
  duplicate,       ///< an exact duplicate of a fragment already held: dropped
  overlap,         ///< overlaps another fragment: the whole datagram was dropped
  invalid,         ///< past 65 535 bytes, or a non-last fragment not a multiple of 8
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
        free_queues_(cfg.datagrams),
        order_(std::size_t{cfg.datagrams} * 2) {
    for (std::uint32_t i = 0; i < cfg.slots; ++i) free_slots_[i] = cfg.slots - 1 - i;
    n_free_slots_ = cfg.slots;
    for (std::uint32_t i = 0; i < cfg.datagrams; ++i) free_queues_[i] = cfg.datagrams - 1 - i;
    n_free_queues_ = cfg.datagrams;
  }

  /// Takes a copy of an IPv4 fragment. On `complete`, `datagram` names the queue whose pieces()
  /// are the fragments in offset order; release() it once they are sent.
  fragment_status add(const wire::packet_view& pkt, std::int64_t now, std::uint32_t& datagram) noexcept {
    datagram = none;
    const auto ip = pkt.ipv4();
    const std::uint32_t hlen = static_cast<std::uint32_t>(pkt.ip_header_len());
    const std::uint32_t l3_len = static_cast<std::uint32_t>(pkt.l3_len());
    const std::uint32_t payload = l3_len - hlen;
    const std::uint32_t offset = static_cast<std::uint32_t>(pkt.fragment_offset());
    const bool last = !pkt.more_fragments();
    if (offset + payload + hlen > 65535 || (!last && payload % 8 != 0) || payload == 0)
      return refuse(fragment_status::invalid);
    const std::size_t frame_len = pkt.l3_offset() + l3_len;
    if (frame_len > cfg_.slot_bytes) return refuse(fragment_status::too_large);
    key k;
    std::memcpy(k.src.data(), pkt.key().src_addr.data(), 4);
    std::memcpy(k.dst.data(), pkt.key().dst_addr.data(), 4);
    k.id = ip.ident();
    k.protocol = ip.protocol();
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
  /// The datagram's payload length.
  [[nodiscard]] std::uint32_t total(std::uint32_t q) const noexcept { return queues_[q].total; }

  /// Frees a datagram's queue and its fragments' slots.
  void release(std::uint32_t q) noexcept {
    if (q >= queues_.size() || !queues_[q].used) return;
    unlink(q);
  }

  /// Drops datagrams older than the timeout (call once per burst; O(expired)).
  std::uint32_t expire(std::int64_t now) noexcept {
    std::uint32_t n = 0;
    while (order_count_ != 0) {
      const auto& [q, born] = order_[order_head_];
      const queue& e = queues_[q];
      if (e.used && e.born == born && !e.complete) {
        if (now - born < cfg_.timeout_ns) break;
        stats_.dropped += e.count;
        ++stats_.expired;
        unlink(q);
        ++n;
      }
      order_head_ = (order_head_ + 1) % static_cast<std::uint32_t>(order_.size());
      --order_count_;
    }
    return n;
  }

  [[nodiscard]] const fragment_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::uint32_t datagrams_held() const noexcept {
    return cfg_.datagrams - n_free_queues_;
  }
  [[nodiscard]] std::uint32_t fragments_held() const noexcept { return cfg_.slots - n_free_slots_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return std::size_t{cfg_.slots} * cfg_.slot_bytes + queues_.size() * sizeof(queue);
  }
  [[nodiscard]] const fragment_config& config() const noexcept { return cfg_; }

 private:
  struct key {
    std::array<std::uint8_t, 4> src{}, dst{};
    std::uint16_t id = 0;
    std::uint8_t protocol = 0;
    friend bool operator==(const key&, const key&) = default;
  };
  struct queue {
    key k;
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
    std::uint64_t h = 0;
    std::memcpy(&h, k.src.data(), 4);
    std::uint32_t d;
    std::memcpy(&d, k.dst.data(), 4);
    h = (h << 32 | d) * 0x9E37'79B9'7F4A'7C15ull;
    h ^= (std::uint64_t{k.id} << 8 | k.protocol) * 0xC2B2'AE3D'27D4'EB4Full;
    h ^= h >> 29;
    return static_cast<std::size_t>(h) & (buckets_.size() - 1);
  }
  [[nodiscard]] std::uint32_t find(const key& k) const noexcept {
    for (std::uint32_t q = buckets_[bucket(k)]; q != none; q = queues_[q].next)
      if (queues_[q].k == k && !queues_[q].complete) return q;
    return none;
  }
  std::uint32_t create(const key& k, std::int64_t now) noexcept {
    if (n_free_queues_ == 0) return none;
    if (order_count_ == order_.size()) compact_order();
    if (order_count_ == order_.size()) return none;
    const std::uint32_t q = free_queues_[--n_free_queues_];
    queue& e = queues_[q];
    e.k = k;
    e.used = true;
    e.complete = false;
    e.born = now;
    e.count = e.have = e.total = e.max_end = e.largest_l3 = 0;
    const std::size_t b = bucket(k);
    e.next = buckets_[b];
    buckets_[b] = q;
    order_[(order_head_ + order_count_) % order_.size()] = {q, now};
    ++order_count_;
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
  // Drops released queues' entries from the creation-order ring (they pile up behind a live one).
  void compact_order() noexcept {
    const auto size = static_cast<std::uint32_t>(order_.size());
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < order_count_; ++i) {
      const born_entry b = order_[(order_head_ + i) % size];
      const queue& e = queues_[b.q];
      if (e.used && e.born == b.born && !e.complete) order_[(order_head_ + kept++) % size] = b;
    }
    order_count_ = kept;
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
  struct born_entry {
    std::uint32_t q = 0;
    std::int64_t born = 0;
  };
  std::vector<born_entry> order_;  // queues in creation order (their deadline order)
  std::uint32_t order_head_ = 0, order_count_ = 0;
  fragment_stats stats_;
};

}  // namespace l4lb::director
