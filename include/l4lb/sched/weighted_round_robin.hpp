// wrr: IPVS's weighted round robin (net/netfilter/ipvs/ip_vs_wrr.c): passes over the list with a
// falling weight threshold, so heavier servers are picked in more passes (in bursts; see
// smooth_weighted_round_robin.hpp for the interleaved sequence).
#pragma once

#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// IPVS wrr, exactly. State: cursor cl (a server or the list head), di = gcd of the positive
/// weights (1 if none), mw = max weight - (di - 1), cw = the current threshold.
/// - init: cl = head, cw = mw. Every later change (add, remove, edit): cl = head; di and mw
///   recomputed; then cw = mw if cw > mw or cw == 0, else cw = (cw / di) * di + 1 when di > 1,
///   else cw is kept. (So the usual ipvsadm flow -- create the service empty, then add servers --
///   leaves cw at 1 and truncates the first cycle.)
/// - pick: mw == 0 -> no_dest. Otherwise scan forward from after cl for a server that is not
///   overloaded with weight >= cw. At the end of the list cw -= di; if cw <= 0, cw = mw and the
///   search fails (cl = head) when this is the second wrap or the scan began at the head; once
///   cw <= di after a wrap that began mid-list, the scan from the head stops at the server it
///   started from (failing with cl = that server).
/// Cost: each scan step is an O(log n) tree search (O(1) when the next server qualifies), and
/// runs of passes that cannot find anyone are skipped arithmetically, so a pick is O(log n)
/// where the kernel's walk is O(n * mw / di) in the worst case.
class weighted_round_robin {
 public:
  static constexpr std::string_view name = "wrr";
  static constexpr count_use uses_counts = count_use::availability;

  /// Control plane: init = ip_vs_wrr_init_svc; add/remove/edit = ip_vs_wrr_dest_changed.
  void rebuild(std::span<const real_server> dests, dest_change change) {
    tree_.rebuild(dests);
    cursor_ = head;
    std::uint32_t g = 0;
    std::uint32_t max_w = 0;
    for (const real_server& r : dests) {
      if (r.weight > 0) g = g > 0 ? std::gcd(r.weight, g) : r.weight;
      if (r.weight > max_w) max_w = r.weight;
    }
    di_ = g > 0 ? g : 1;
    mw_ = static_cast<std::int64_t>(max_w) - (di_ - 1);
    if (change.what == dest_change::kind::init || cw_ > mw_ || cw_ == 0) {
      cw_ = mw_;
    } else if (di_ > 1) {
      cw_ = (cw_ / di_) * di_ + 1;
    }
  }

  /// Data plane (ip_vs_wrr_schedule).
  [[nodiscard]] dest_id pick(std::span<const real_server> dests, const pick_context&) noexcept {
    if (dests.size() != tree_.size()) return no_dest;
    if (mw_ == 0) return no_dest;
    if (cursor_ != head && cursor_ >= dests.size()) cursor_ = head;
    const dest_id last = cursor_;
    dest_id stop = no_dest;
    bool last_pass = false;
    bool restarted = false;
    std::size_t from = last == head ? 0 : static_cast<std::size_t>(last) + 1;
    for (;;) {
      dest_id q = no_dest;
      if (from < dests.size() && !dests[from].overloaded && dests[from].weight >= cw_) {
        q = static_cast<dest_id>(from);  // the common case: the next server qualifies
      } else {
        q = tree_.first_at_most(
            from, available_weight_order::rank_of_weight(static_cast<std::uint32_t>(cw_)));
      }
      if (stop != no_dest && (q == no_dest || q > stop)) {  // reached `stop` unsatisfied
        cursor_ = stop;
        return no_dest;
      }
      if (q != no_dest) {
        cursor_ = q;
        return q;
      }
      // End of the list. Passes whose threshold exceeds every available weight find nobody and
      // change nothing but cw; jump over them (stop is unset, no wrap and no last pass occur).
      if (stop == no_dest) {
        const std::int64_t best = available_weight_order::weight_of_rank(tree_.best_rank());
        const std::int64_t floor = best > di_ ? best : di_;
        if (cw_ - di_ > floor) cw_ -= ((cw_ - floor + di_ - 1) / di_ - 1) * di_;
      }
      cw_ -= di_;
      if (cw_ <= 0) {
        cw_ = mw_;
        if (last_pass || last == head) {
          cursor_ = head;
          return no_dest;
        }
        restarted = true;
      }
      last_pass = cw_ <= di_;
      if (last_pass && restarted && last != head) stop = last;
      from = 0;
    }
  }

  /// Data plane: only the overload flag matters to wrr.
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    tree_.update(dests, id);
  }

  /// The kernel's state, for tests and listings: cursor (no_dest = list head), cw, mw, di.
  [[nodiscard]] dest_id cursor() const noexcept { return cursor_; }
  [[nodiscard]] std::int64_t current_weight() const noexcept { return cw_; }
  [[nodiscard]] std::int64_t max_weight() const noexcept { return mw_; }
  [[nodiscard]] std::int64_t weight_step() const noexcept { return di_; }

 private:
  static constexpr dest_id head = no_dest;
  tournament_tree<available_weight_order> tree_;
  dest_id cursor_ = head;
  std::int64_t cw_ = 0;
  std::int64_t mw_ = 0;
  std::int64_t di_ = 1;
};

static_assert(scheduler<weighted_round_robin>);

using wrr = weighted_round_robin;

}  // namespace l4lb::sched
