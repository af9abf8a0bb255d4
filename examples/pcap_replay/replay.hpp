// The replay engine behind l4lb-replay: frames with their capture timestamps go through one
// director in bursts; forwarded frames and generated answers come back through a callback with
// the input frame's timestamp. Shared by the program (main.cpp) and bench/replay_bench.cpp.
//
// Time: each burst's `now` is the time of its last frame, and a burst never spans two of the
// connection table's 1/16 s ticks, so every decision sees the time its own frame would give it
// to the table's resolution; the same capture gives the same output every run.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <l4lb/conn/timeouts.hpp>
#include <l4lb/director/control.hpp>
#include <l4lb/director/director.hpp>

namespace replay {

namespace ld = l4lb::director;

/// A MAC for an address that has none configured (neighbour_table::derived_mac: 02:00 + the last
/// four bytes of the address).
inline l4lb::wire::mac_address derived_mac(const l4lb::wire::ip_address& a) {
  return ld::neighbour_table::derived_mac(a);
}

class replayer {
 public:
  static constexpr std::size_t burst = 32;
  static constexpr std::size_t headroom = 128;  // room for an outer IPv6 + UDP + GUE header
  static constexpr std::size_t max_frame = 65535 + 64;
  static constexpr std::size_t slot = headroom + max_frame + 64;

  /// What came out for one input frame: the verdict, and the input frame's index and time.
  using sink = std::function<void(std::uint64_t index, std::int64_t time_ns,
                                  const ld::verdict& v)>;

  replayer(ld::director_control& control, const ld::director_config& cfg, sink out)
      : control_(control), d_(control, cfg), out_(std::move(out)),
        storage_(burst * slot), bufs_(burst), verdicts_(burst), marks_(burst), times_(burst) {}

  /// Queues one frame (copied); runs the burst when it is full or when time moves to the next
  /// tick. `mark`: the firewall mark for fwmark services (0 = none).
  void push(std::int64_t time_ns, std::span<const std::byte> frame, std::uint32_t mark = 0) {
    if (n_ != 0 && l4lb::conn::floor_tick(time_ns) != l4lb::conn::floor_tick(times_[0])) flush();
    std::byte* p = storage_.data() + n_ * slot;
    const std::size_t len = std::min(frame.size(), max_frame);
    std::memcpy(p + headroom, frame.data(), len);
    bufs_[n_] = *l4lb::forward::frame_buffer::make(std::span(p, slot), headroom, len);
    marks_[n_] = mark;
    times_[n_] = time_ns;
    ++n_;
    any_mark_ = any_mark_ || mark != 0;
    if (n_ == burst) flush();
  }

  /// Runs what is queued (call before a rule change and at the end).
  void flush() {
    if (n_ == 0) return;
    const std::int64_t now = times_[n_ - 1];
    d_.process_burst(std::span(bufs_).first(n_), std::span(verdicts_).first(n_), now,
                     any_mark_ ? std::span<const std::uint32_t>(marks_).first(n_)
                               : std::span<const std::uint32_t>{});
    for (std::size_t i = 0; i < n_; ++i) out_(first_index_ + i, times_[i], verdicts_[i]);
    first_index_ += n_;
    last_ = now;
    n_ = 0;
    any_mark_ = false;
  }

  [[nodiscard]] ld::director& director() noexcept { return d_; }
  [[nodiscard]] ld::director_control& control() noexcept { return control_; }
  [[nodiscard]] std::int64_t last_time() const noexcept { return n_ ? times_[n_ - 1] : last_; }

 private:
  ld::director_control& control_;
  ld::director d_;
  sink out_;
  std::vector<std::byte> storage_;
  std::vector<l4lb::forward::frame_buffer> bufs_;
  std::vector<ld::verdict> verdicts_;
  std::vector<std::uint32_t> marks_;
  std::vector<std::int64_t> times_;
  std::size_t n_ = 0;
  std::uint64_t first_index_ = 0;
  bool any_mark_ = false;
  std::int64_t last_ = 0;
};

/// "forward dr 198.18.0.12", "drop bad_ipv4_header_checksum", "pass no_service",
/// "reply port_unreachable": what --verdicts writes as each frame's comment.
inline std::string describe(const ld::verdict& v, const ld::snapshot& s) {
  std::string out(to_string(v.kind));
  if (v.kind == ld::verdict_kind::forward) {
    switch (v.method) {
      case ld::forward_method::route: out += " dr"; break;
      case ld::forward_method::masq: out += v.to_client ? " nat-reply" : " nat"; break;
      case ld::forward_method::tunnel: out += " tun"; break;
      case ld::forward_method::full_nat: out += " fullnat"; break;
      case ld::forward_method::local: out += " local"; break;
    }
    if (v.dest < s.dests.size()) out += " " + s.dests[v.dest].spec.endpoint.address.to_string();
    return out;
  }
  out += " ";
  out += v.reason();
  return out;
}

}  // namespace replay
