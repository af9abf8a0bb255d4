// swrr: smooth weighted round robin, nginx's sequence (ngx_http_upstream_round_robin.c): weights
// are honoured exactly over a cycle but interleaved, so a heavy server does not get its share in
// one burst as under IPVS's wrr. Not an IPVS scheduler; ours.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// The sequence: every server with weight > 0 has a current value, 0 after rebuild. Each step
/// adds its weight to every current, picks the first (in list order) server with the largest
/// current and subtracts the total weight W from it. Over a cycle of W / g steps (g = gcd of the
/// weights) each server is picked exactly weight / g times, and the currents return to 0.
///
/// Our rules around it:
/// - the sequence runs over every server with weight > 0; an overloaded server's turn passes to
///   the next turn in the sequence whose server may take it, so among the servers that are not
///   overloaded the shares stay exact over every cycle and the sequence does not depend on how
///   long an overload lasted (nginx instead skips such peers while adding up the weights, which
///   makes the sequence after the overload depend on it);
/// - every rebuild (add, remove, edit, init) restarts the sequence from zero currents.
///
/// Cost. A step is computed per group of equal weights: within a group the currents move in
/// parallel, so its best member is the top of a heap, and a step compares one candidate per
/// distinct weight: O(D + log n) for D distinct weights (instead of nginx's O(n)). rebuild
/// precomputes one whole cycle when it fits the limits, and pick is then one table read (plus one
/// per overloaded turn passed over); otherwise pick steps the generator itself.
class smooth_weighted_round_robin {
 public:
  static constexpr std::string_view name = "swrr";
  static constexpr count_use uses_counts = count_use::availability;

  struct limits {
    /// Largest cycle (W / g entries, 4 bytes each) that is precomputed.
    std::uint64_t max_cycle = std::uint64_t{1} << 20;
    /// Largest precomputation work, in candidate comparisons (cycle * (D + log2 n)).
    std::uint64_t max_build_steps = std::uint64_t{1} << 26;
    /// Step by weight groups (off: nginx's plain O(n) step; same sequence, for comparison).
    bool group_by_weight = true;
  };

  smooth_weighted_round_robin() = default;
  explicit smooth_weighted_round_robin(limits l) : limits_(l) {}

  /// Control plane: restarts the sequence; precomputes the cycle when it fits.
  void rebuild(std::span<const real_server> dests, dest_change) {
    size_ = dests.size();
    positions_.clear();
    weights_.clear();
    table_.clear();
    groups_.clear();
    accepts_.assign(dests.size(), 0);
    accepting_ = 0;
    std::uint64_t g = 0;
    std::uint64_t max_w = 0;
    total_ = 0;
    for (std::size_t i = 0; i < dests.size(); ++i) {
      const real_server& r = dests[i];
      if (r.accepts_new_connections()) {
        accepts_[i] = 1;
        ++accepting_;
      }
      if (r.weight == 0) continue;
      positions_.push_back(static_cast<dest_id>(i));
      weights_.push_back(r.weight);
      total_ += r.weight;
      max_w = std::max<std::uint64_t>(max_w, r.weight);
      g = std::gcd(g, std::uint64_t{r.weight});
    }
    cycle_ = g == 0 ? 0 : total_ / g;
    cursor_ = 0;
    // Grouped stepping keeps weight * step and the offsets below 2 * max_w * cycle in magnitude;
    // use it when that fits in 63 bits (always, for ipvsadm's 16-bit weights).
    const bool grouped = limits_.group_by_weight && cycle_ != 0 &&
                         max_w <= (std::uint64_t{1} << 61) / cycle_;
    make_groups(grouped);
    reset_sequence();
    if (cycle_ == 0 || cycle_ > limits_.max_cycle) return;
    const std::uint64_t per_step =
        grouped ? groups_.size() + std::bit_width(positions_.size()) + 1 : positions_.size();
    if (cycle_ > limits_.max_build_steps / per_step) return;
    table_.resize(static_cast<std::size_t>(cycle_));
    for (dest_id& e : table_) e = step();  // ends where it began: a whole cycle
  }

  /// Data plane.
  [[nodiscard]] dest_id pick(std::span<const real_server> dests, const pick_context&) noexcept {
    if (dests.size() != size_ || accepting_ == 0 || cycle_ == 0) return no_dest;
    // One cycle visits every server with weight > 0, so it finds an accepting one if any exists.
    if (!table_.empty()) {
      for (std::uint64_t k = 0; k < cycle_; ++k) {
        const dest_id id = table_[cursor_];
        cursor_ = cursor_ + 1 == table_.size() ? 0 : cursor_ + 1;
        if (dests[id].accepts_new_connections()) return id;
      }
      return no_dest;
    }
    for (std::uint64_t k = 0; k < cycle_; ++k) {
      const dest_id id = step();
      if (dests[id].accepts_new_connections()) return id;
    }
    return no_dest;
  }

  /// Data plane: tracks how many servers may take a connection (O(1)).
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    if (id >= size_ || id >= dests.size()) return;
    const std::uint8_t now = dests[id].accepts_new_connections() ? 1 : 0;
    if (now == accepts_[id]) return;
    accepts_[id] = now;
    if (now != 0) {
      ++accepting_;
    } else {
      --accepting_;
    }
  }

  /// Cycle length W / g (0 when no server has a weight), and whether it was precomputed.
  [[nodiscard]] std::uint64_t cycle_length() const noexcept { return cycle_; }
  [[nodiscard]] bool precomputed() const noexcept { return !table_.empty(); }
  /// Number of distinct weights the generator compares per step (0 when it steps all servers).
  [[nodiscard]] std::size_t weight_groups() const noexcept { return groups_.size(); }

 private:
  // Servers with the same weight, as a heap of their indices (into positions_): the top has the
  // largest current (offset_), the earliest list position on ties.
  struct group {
    std::int64_t weight = 0;
    std::vector<std::uint32_t> heap;
  };

  // "a ranks below b" in a group heap: smaller current, or equal and later in the list.
  struct ranks_below {
    const smooth_weighted_round_robin* self;
    bool operator()(std::uint32_t a, std::uint32_t b) const noexcept {
      const auto& off = self->offset_;
      return off[a] != off[b] ? off[a] < off[b] : self->positions_[a] > self->positions_[b];
    }
  };
  [[nodiscard]] ranks_below heap_less() const noexcept { return ranks_below{this}; }

  void make_groups(bool grouped) {
    if (!grouped) return;
    std::vector<std::uint32_t> order(positions_.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return weights_[a] < weights_[b]; });
    for (const std::uint32_t s : order) {
      if (groups_.empty() || groups_.back().weight != weights_[s]) groups_.push_back({weights_[s], {}});
      groups_.back().heap.push_back(s);
    }
  }

  // Currents to 0. Grouped: current(s) = weight(s) * step_ + offset_[s].
  void reset_sequence() noexcept {
    step_ = 0;
    offset_.assign(positions_.size(), 0);
    for (group& gr : groups_) std::make_heap(gr.heap.begin(), gr.heap.end(), heap_less());
  }


  // One step of nginx's rule over the servers with weight > 0; returns a list position.
  dest_id step() noexcept {
    const auto total = static_cast<std::int64_t>(total_);
    if (groups_.empty()) {  // plain O(n) form (weights too large for grouped arithmetic)
      std::size_t best = 0;
      for (std::size_t i = 0; i < offset_.size(); ++i) {
        offset_[i] += weights_[i];
        if (offset_[i] > offset_[best]) best = i;
      }
      offset_[best] -= total;
      return positions_[best];
    }
    const std::int64_t t = step_ + 1;
    group* best_group = nullptr;
    std::uint32_t best = 0;
    std::int64_t best_value = 0;
    for (group& gr : groups_) {
      const std::uint32_t top = gr.heap.front();
      const std::int64_t v = gr.weight * t + offset_[top];
      if (best_group == nullptr || v > best_value ||
          (v == best_value && positions_[top] < positions_[best])) {
        best_group = &gr;
        best = top;
        best_value = v;
      }
    }
    std::pop_heap(best_group->heap.begin(), best_group->heap.end(), heap_less());
    offset_[best] -= total;
    std::push_heap(best_group->heap.begin(), best_group->heap.end(), heap_less());
    step_ = t;
    if (static_cast<std::uint64_t>(step_) == cycle_) reset_sequence();  // currents are 0 again
    return positions_[best];
  }

  limits limits_{};
  std::size_t size_ = 0;
  std::vector<dest_id> positions_;     // servers with weight > 0, in list order
  std::vector<std::int64_t> weights_;  // their weights
  std::vector<std::int64_t> offset_;   // currents (grouped: minus weight * step_)
  std::vector<group> groups_;          // by weight; empty = plain stepping
  std::int64_t step_ = 0;              // steps into the current cycle
  std::vector<dest_id> table_;         // one precomputed cycle, or empty
  std::size_t cursor_ = 0;
  std::vector<std::uint8_t> accepts_;  // per position: may take a new connection
  std::size_t accepting_ = 0;
  std::uint64_t total_ = 0;
  std::uint64_t cycle_ = 0;
};

static_assert(scheduler<smooth_weighted_round_robin>);

using swrr = smooth_weighted_round_robin;

}  // namespace l4lb::sched
