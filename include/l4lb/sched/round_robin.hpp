// rr: IPVS's round robin (net/netfilter/ipvs/ip_vs_rr.c). A cursor walks the list; each new
// connection goes to the next server after it that is neither quiesced nor overloaded.
#pragma once

#include <span>
#include <string_view>

#include "l4lb/sched/load_tree.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

namespace l4lb::sched {

/// IPVS rr, exactly:
/// - the cursor names the last server picked, or the list head (initially, and after init);
/// - pick: the first server after the cursor, wrapping past the end, whose weight > 0 and which
///   is not overloaded; the cursor's own server is the last one tried (so a lone server is picked
///   again). From the head, one pass over the list. Nothing found: no_dest, cursor unchanged;
/// - hooks: init puts the cursor on the head; a removed cursor server moves it to its
///   predecessor (or the head); add and edit leave it on the same server (rr has no add/upd hook;
///   an added server sits at the head, so the cursor's position shifts by one).
/// Cost: O(1) when the next server qualifies; otherwise O(log n) through a tree of available
/// weights (the kernel walks the list).
class round_robin {
 public:
  static constexpr std::string_view name = "rr";
  static constexpr count_use uses_counts = count_use::availability;

  /// Control plane.
  void rebuild(std::span<const real_server> dests, dest_change change) {
    tree_.rebuild(dests);
    switch (change.what) {
      case dest_change::kind::init:
        cursor_ = head;
        break;
      case dest_change::kind::added:
        if (cursor_ != head) ++cursor_;
        break;
      case dest_change::kind::removed:
        if (cursor_ == head) break;
        if (cursor_ == change.id) {
          cursor_ = change.id == 0 ? head : change.id - 1;  // ip_vs_rr_del_dest: predecessor
        } else if (cursor_ > change.id) {
          --cursor_;
        }
        break;
      case dest_change::kind::edited:
        break;
    }
    if (cursor_ != head && cursor_ >= dests.size()) cursor_ = head;
  }

  /// Data plane (ip_vs_rr_schedule).
  [[nodiscard]] dest_id pick(std::span<const real_server> dests, const pick_context&) noexcept {
    if (dests.size() != tree_.size() || dests.empty()) return no_dest;
    if (cursor_ != head && cursor_ + 1 < dests.size() &&
        dests[cursor_ + 1].accepts_new_connections()) {
      return ++cursor_;  // the common case: the next server qualifies
    }
    dest_id found = no_dest;
    constexpr std::uint64_t any_weight = available_weight_order::rank_of_weight(1);
    if (cursor_ == head || cursor_ >= dests.size()) {
      found = tree_.first_at_most(0, any_weight);
    } else {
      found = tree_.first_at_most(static_cast<std::size_t>(cursor_) + 1, any_weight);
      if (found == no_dest) found = tree_.first_at_most(0, any_weight);  // wraps; ends at cursor
    }
    if (found != no_dest) cursor_ = found;
    return found;
  }

  /// Data plane: only the overload flag matters to rr.
  void counts_changed(std::span<const real_server> dests, dest_id id) noexcept {
    tree_.update(dests, id);
  }

  /// The last server picked, or no_dest while the cursor is on the list head.
  [[nodiscard]] dest_id cursor() const noexcept { return cursor_; }

 private:
  static constexpr dest_id head = no_dest;
  tournament_tree<available_weight_order> tree_;
  dest_id cursor_ = head;
};

static_assert(scheduler<round_robin>);

using rr = round_robin;

}  // namespace l4lb::sched
