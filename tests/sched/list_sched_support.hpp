// Helpers for the list-walking and least-connection scheduler tests: build real-server lists in
// IPVS's list order, model ipvsadm's add/remove/edit (with the scheduler hooks they trigger), and
// bind/unbind connections with the threshold rule.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "l4lb/sched/real_server.hpp"
#include "l4lb/wire/flow_key.hpp"

namespace l4lb::sched::test {

/// mt19937 with 32-bit results (std::mt19937's result_type is unsigned long here).
struct rng32 {
  std::mt19937 engine;
  explicit rng32(std::uint32_t seed) : engine(seed) {}
  std::uint32_t operator()() { return static_cast<std::uint32_t>(engine()); }
};

inline real_server make_server(std::uint32_t handle, std::uint32_t weight,
                               std::uint32_t active = 0, std::uint32_t inactive = 0) {
  real_server r;
  r.endpoint = wire::endpoint{wire::ipv4_address::from_u32(0xc6120100u + handle), 80};
  r.handle = handle;
  r.weight = weight;
  r.last_weight = weight;
  r.active_conns = active;
  r.inactive_conns = inactive;
  return r;
}

inline const wire::flow_key& any_flow() {
  static const wire::flow_key k{};
  return k;
}
inline pick_context ctx() { return pick_context{any_flow()}; }

/// A service's real-server list kept in kernel order, driving one policy's hooks.
template <class S>
struct service {
  std::vector<real_server> dests;
  S sched;

  explicit service(S s = S{}) : sched(std::move(s)) {}

  std::span<const real_server> view() const { return dests; }
  /// ipvsadm -A (or -E with this scheduler): init with whatever is listed.
  void init() { sched.rebuild(view(), {dest_change::kind::init, 0}); }
  /// ipvsadm -a: the new server goes to the head of the list.
  void add(real_server r) {
    dests.insert(dests.begin(), r);
    sched.rebuild(view(), {dest_change::kind::added, 0});
  }
  /// ipvsadm -d of the server with this handle.
  void remove(std::uint32_t handle) {
    for (std::size_t i = 0; i < dests.size(); ++i) {
      if (dests[i].handle == handle) {
        dests.erase(dests.begin() + static_cast<std::ptrdiff_t>(i));
        sched.rebuild(view(), {dest_change::kind::removed, static_cast<dest_id>(i)});
        return;
      }
    }
  }
  /// ipvsadm -e -w: a new weight for the server with this handle.
  void set_weight(std::uint32_t handle, std::uint32_t w) {
    const dest_id id = position(handle);
    dests[id].weight = w;
    if (w != 0) dests[id].last_weight = w;
    sched.rebuild(view(), {dest_change::kind::edited, id});
  }
  dest_id position(std::uint32_t handle) const {
    for (std::size_t i = 0; i < dests.size(); ++i)
      if (dests[i].handle == handle) return static_cast<dest_id>(i);
    return no_dest;
  }
  /// The data path's counter updates, each followed by counts_changed.
  void set_overloaded(std::uint32_t handle, bool v) {
    const dest_id id = position(handle);
    dests[id].overloaded = v;
    sched.counts_changed(view(), id);
  }
  void bind_active(dest_id id) {
    ++dests[id].active_conns;
    dests[id].after_bind();
    sched.counts_changed(view(), id);
  }
  /// Picks once; returns the handle picked, or 0 for no destination.
  std::uint32_t pick() {
    const dest_id id = sched.pick(view(), ctx());
    return id == no_dest ? 0 : dests[id].handle;
  }
  /// n picks as a string of handle letters ('A' = handle 1, ...; '-' = none).
  std::string picks(int n, bool bind = false) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      const dest_id id = sched.pick(view(), ctx());
      if (id == no_dest) {
        s.push_back('-');
        continue;
      }
      s.push_back(static_cast<char>('A' + dests[id].handle - 1));
      if (bind) bind_active(id);
    }
    return s;
  }
};

}  // namespace l4lb::sched::test
