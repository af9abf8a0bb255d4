// The scheduler concept: a policy is a plain type with a name, a control-plane rebuild and a
// data-plane pick that never allocates. Policies that keep per-server structures ordered by load
// (the O(log n) least-connection family) are told when a server's counters change.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

#include "l4lb/sched/real_server.hpp"

namespace l4lb::sched {

/// What a policy's counts_changed(dests, id) reads of dests[id], declared by an optional
/// `static constexpr count_use uses_counts` (count_use_of). A caller may leave out the calls that
/// cannot change what the policy keeps: every call for `none`, and for `availability` those where
/// the overload flag did not flip (weights change only through rebuild). A policy that declares
/// nothing is told of every change.
enum class count_use : std::uint8_t {
  none,          // counts_changed does nothing (dh, sh, mh, lblc, ring, wmh)
  availability,  // only accepts_new_connections(): weight, overload (rr, wrr, fo, swrr, twos)
  load,          // the counts too (wlc, lc, sed, nq, ovf, lblcr)
};

template <class S>
[[nodiscard]] consteval count_use count_use_of() noexcept {
  if constexpr (requires { { S::uses_counts } -> std::convertible_to<count_use>; })
    return S::uses_counts;
  else
    return count_use::load;
}

/// A scheduling policy.
/// - `S::name`: ipvsadm's `-s` name ("rr", "wlc", "mh", ...) or ours.
/// - `rebuild(dests, change)`: control plane, after the service was created or a real server
///   added, removed or edited; may allocate. (IPVS's init_service / add_dest / del_dest /
///   upd_dest; a policy without a given hook in IPVS ignores that kind of change.)
/// - `pick(dests, ctx)`: data plane; returns an index into dests or no_dest; noexcept, no
///   allocation. Policies with cursors (rr, wrr) advance them here, hence non-const.
/// - `counts_changed(dests, id)`: data plane; dests[id]'s counters or overload flag changed.
///
/// The contract every shipped policy keeps (and tests/sched checks):
/// - call rebuild after every change of the list (and of a weight or threshold) before the next
///   pick; a policy may answer no_dest when `dests` is not the list it was rebuilt for;
/// - call counts_changed after every change of a server's active/inactive counts or overload
///   flag (after_bind / after_unbind), except the calls the policy's count_use lets a caller
///   leave out: lc, wlc, sed, nq, fo, ovf, rr, wrr, swrr and twos keep per-server structures on
///   them and would otherwise pick from stale values;
/// - an empty list, all servers quiesced (weight 0), all overloaded: no_dest, never a crash;
/// - a quiesced or overloaded server is never picked for a new connection (lblc/lblcr's cached
///   path applies IPVS's own overload rule there, as the kernel does).
template <class S>
concept scheduler = requires(S s, std::span<const real_server> dests, const pick_context& ctx,
                             dest_id id, dest_change change) {
  { S::name } -> std::convertible_to<std::string_view>;
  s.rebuild(dests, change);
  { s.pick(dests, ctx) } noexcept -> std::same_as<dest_id>;
  { s.counts_changed(dests, id) } noexcept;
};

}  // namespace l4lb::sched
