// Traffic counters and IPVS's rate estimator, per service and per real server, and the status
// values listings read (what ipvsadm -Ln --stats / --rate / -Lnc print).
//
// Design notes
// - Counters are what ip_vs_in_stats / ip_vs_out_stats / ip_vs_conn_stats count: connections
//   scheduled, packets and IP-level bytes (skb->len: no Ethernet header) in each direction.
// - The estimator is ip_vs_est.c's (ipvs-notes 5.4): every 2 s, Δ of each counter feeds an EWMA
//   with weight 1/4, scaled by 2^10 (conns, packets) or 2^5 (bytes); reported values are
//   rounded. It is driven by the caller's `now`: tick(now) runs as many 2-second steps as have
//   passed, so a replay gives the same rates every time.
// - One writer per counter block (a director per core); readers on other threads sum the blocks.
//   Single-writer relaxed atomics: a plain add on x86, no locked instruction on the data path.
// Cost: add() is five relaxed loads and stores; an estimator step is O(1) per block.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "l4lb/wire/address.hpp"

namespace l4lb::director {

/// A snapshot of a counter block (ipvsadm's Conns InPkts OutPkts InBytes OutBytes).
struct counters {
  std::uint64_t conns = 0;
  std::uint64_t in_packets = 0;
  std::uint64_t out_packets = 0;
  std::uint64_t in_bytes = 0;
  std::uint64_t out_bytes = 0;

  counters& operator+=(const counters& o) noexcept {
    conns += o.conns;
    in_packets += o.in_packets;
    out_packets += o.out_packets;
    in_bytes += o.in_bytes;
    out_bytes += o.out_bytes;
    return *this;
  }
  friend counters operator-(counters a, const counters& b) noexcept {
    a.conns -= b.conns;
    a.in_packets -= b.in_packets;
    a.out_packets -= b.out_packets;
    a.in_bytes -= b.in_bytes;
    a.out_bytes -= b.out_bytes;
    return a;
  }
  friend bool operator==(const counters&, const counters&) = default;
};

/// Rates as ipvsadm --rate prints them (CPS InPPS OutPPS InBPS OutBPS; BPS = bytes per second).
struct rates {
  std::uint64_t cps = 0;
  std::uint64_t in_pps = 0;
  std::uint64_t out_pps = 0;
  std::uint64_t in_bps = 0;
  std::uint64_t out_bps = 0;

  rates& operator+=(const rates& o) noexcept {
    cps += o.cps;
    in_pps += o.in_pps;
    out_pps += o.out_pps;
    in_bps += o.in_bps;
    out_bps += o.out_bps;
    return *this;
  }
  friend bool operator==(const rates&, const rates&) = default;
};

/// IPVS's estimator state for one counter block (ip_vs_estimator): the last counter values and
/// the scaled averages.
class rate_estimator {
 public:
  static constexpr std::int64_t period_ns = 2'000'000'000;  // ip_vs_est.c: every 2 seconds

  /// One 2-second step with the counters' current values (ip_vs_chain_estimation).
  void step(const counters& now_values) noexcept {
    const counters d = now_values - last_;
    last_ = now_values;
    // Packets and connections: Δ << 9 = Δ * 2^10 / 2 s; bytes: Δ << 4 = Δ * 2^5 / 2 s.
    ewma(avg_cps_, static_cast<std::int64_t>(d.conns << 9));
    ewma(avg_inpps_, static_cast<std::int64_t>(d.in_packets << 9));
    ewma(avg_outpps_, static_cast<std::int64_t>(d.out_packets << 9));
    ewma(avg_inbps_, static_cast<std::int64_t>(d.in_bytes << 4));
    ewma(avg_outbps_, static_cast<std::int64_t>(d.out_bytes << 4));
  }
  /// -Z: the current values become the base and the averages restart at 0 (ip_vs_zero_estimator).
  void reset(const counters& now_values) noexcept {
    last_ = now_values;
    avg_cps_ = avg_inpps_ = avg_outpps_ = avg_inbps_ = avg_outbps_ = 0;
  }
  /// The rounded rates (ip_vs_read_estimator).
  [[nodiscard]] rates read() const noexcept {
    return {scaled(avg_cps_, 0x1FF, 10), scaled(avg_inpps_, 0x1FF, 10),
            scaled(avg_outpps_, 0x1FF, 10), scaled(avg_inbps_, 0xF, 5),
            scaled(avg_outbps_, 0xF, 5)};
  }

 private:
  static void ewma(std::int64_t& avg, std::int64_t rate) noexcept {
    avg += (rate - avg) >> 2;  // arithmetic shift, as the kernel's signed average
  }
  static std::uint64_t scaled(std::int64_t avg, std::int64_t round, unsigned shift) noexcept {
    const std::int64_t v = (avg + round) >> shift;
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
  }

  counters last_{};
  std::int64_t avg_cps_ = 0, avg_inpps_ = 0, avg_outpps_ = 0, avg_inbps_ = 0, avg_outbps_ = 0;
};

/// A counter block written by one thread and read by any (relaxed single-writer atomics).
class counter_block {
 public:
  void add_conn() noexcept { bump(conns_, 1); }
  void add_in(std::uint64_t bytes) noexcept {
    bump(in_packets_, 1);
    bump(in_bytes_, bytes);
  }
  void add_out(std::uint64_t bytes) noexcept {
    bump(out_packets_, 1);
    bump(out_bytes_, bytes);
  }
  [[nodiscard]] counters read() const noexcept {
    return {conns_.load(std::memory_order_relaxed), in_packets_.load(std::memory_order_relaxed),
            out_packets_.load(std::memory_order_relaxed), in_bytes_.load(std::memory_order_relaxed),
            out_bytes_.load(std::memory_order_relaxed)};
  }
  /// Writer thread only (a number reused by a new service or server starts from zero).
  void clear() noexcept {
    for (auto* c : {&conns_, &in_packets_, &out_packets_, &in_bytes_, &out_bytes_})
      c->store(0, std::memory_order_relaxed);
  }

 private:
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> conns_{0}, in_packets_{0}, out_packets_{0}, in_bytes_{0},
      out_bytes_{0};
};

/// What listings show for a real server (sums over the directors that share a configuration).
struct dest_status {
  counters stats;  ///< since the last -Z
  rates rate;
  std::uint32_t active_conns = 0;
  std::uint32_t inactive_conns = 0;
  std::uint32_t persist_conns = 0;
};

/// What listings show for a service.
struct service_status {
  counters stats;  ///< since the last -Z
  rates rate;
};

/// One row of ipvsadm -Lnc: a connection or a persistence template.
struct conn_row {
  std::uint8_t protocol = 0;      ///< 6, 17, 132; 0 for a fwmark template ("IP")
  bool is_template = false;
  std::string_view state;         ///< "ESTABLISHED", "UDP", "ASSURED", "NONE", ...
  std::int64_t remaining_ns = 0;  ///< until it expires
  wire::endpoint client;          ///< templates: the masked client address, port 0
  wire::endpoint virtual_endpoint;  ///< fwmark templates: the mark as an IPv4 address, port 0
  wire::endpoint dest;
  /// Position in the table (its bucket order; -Lnc lists in this order).
  std::uint64_t order = 0;
};

}  // namespace l4lb::director
