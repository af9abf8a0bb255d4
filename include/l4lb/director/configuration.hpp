// configuration: the whole set of virtual services and their real servers as a value, changed
// only through validated commands (model.hpp) with IPVS's semantics. The director's control plane
// keeps one, applies commands to it (a failed command changes nothing) and publishes what it
// built from it; config/ saves and lists it. Control plane: it allocates and never touches
// packets.
//
// Design notes
// - Order is the kernel's: a new real server goes to the head of its service's list
//   (__ip_vs_update_dest), an edit keeps its place, services stay in the order they were added
//   (ipvsadm sorts them for listings).
// - Every real server gets a stable `handle` (what connections and counters are indexed by) and
//   every service a stable `id`; a `generation` tells a re-used number from its previous owner.
//   A removed server's handle is retired, not freed: its connections live on until they expire
//   (ip_vs_del_dest keeps the dest in the trash). The director frees it (release_handle) once no
//   connection uses it.
// - apply() reports what changed (`change`), so the director can run the scheduler hooks IPVS
//   runs (init / add / del / upd, ipvs-notes 1.2) in the same order.
// - find() is a hash lookup (an index from service_key to the place in services()), so loading
//   10 000 services x 10 servers from a rules file stays linear; removing a service re-indexes
//   the services after it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "l4lb/conn/timeouts.hpp"
#include "l4lb/director/model.hpp"
#include "l4lb/sched/any_scheduler.hpp"
#include "l4lb/wire/hash.hpp"
#include "l4lb/wire/packet.hpp"

namespace l4lb::director {

/// Fixed sizes a director is built with (its per-core tables are indexed by these numbers).
struct configuration_limits {
  std::uint32_t max_services = 1024;
  /// Real-server handles, live and retired (at most 2^24: the connection table stores 24 bits).
  std::uint32_t max_dests = 4096;
};

/// A hash of a service key (configuration's index).
struct service_key_hash {
  [[nodiscard]] std::size_t operator()(const service_key& k) const noexcept {
    return static_cast<std::size_t>(wire::hash_mix(
        wire::hash_mix(k.address.hash(), k.port),
        (std::uint64_t{k.fwmark} << 8) | std::uint64_t{k.protocol}));
  }
};

struct dest_entry {
  real_server_spec spec;
  std::uint32_t handle = 0;
  std::uint64_t generation = 0;
  /// IPVS's last_weight (the latest non-zero weight, set on add even when 0): mh/wmh/ring keep
  /// a quiesced server's slots with it.
  std::uint32_t last_weight = 1;
};

struct service_entry {
  service_spec spec;
  std::uint32_t id = 0;
  std::uint64_t generation = 0;
  /// The kernel's list order: the most recently added first.
  std::vector<dest_entry> dests;

  [[nodiscard]] const dest_entry* find_dest(const wire::endpoint& e) const noexcept {
    for (const auto& d : dests)
      if (d.spec.endpoint == e) return &d;
    return nullptr;
  }
  [[nodiscard]] std::size_t position_of(const wire::endpoint& e) const noexcept {
    for (std::size_t i = 0; i < dests.size(); ++i)
      if (dests[i].spec.endpoint == e) return i;
    return dests.size();
  }
};

/// What a successful apply() changed.
struct change {
  enum class kind : std::uint8_t {
    none,
    service_added,
    service_edited,
    service_deleted,
    cleared,
    dest_added,
    dest_edited,
    dest_deleted,
    timeouts,
    settings,
    zero_counters,
  };
  kind what = kind::none;
  std::uint32_t service_id = 0;  ///< the service concerned (none for cleared/timeouts/settings)
  std::uint32_t handle = 0;      ///< the real server concerned (dest_*)
  std::uint32_t position = 0;    ///< dest_deleted: its place before removal; dest_edited: its place
  /// service_edited: another scheduler, flags or options (init runs)
  bool scheduler_rebound = false;
  std::uint32_t old_upper_threshold = 0;  ///< dest_edited: -x before the edit (OVERLOAD rule)
  bool all_services = false;     ///< zero_counters without a service
};

/// Whether `mask` (host order) is a contiguous IPv4 netmask.
[[nodiscard]] constexpr bool contiguous_netmask(std::uint32_t mask) noexcept {
  return mask != 0 && (~mask & (~mask + 1)) == 0;
}

/// The longest -p timeout the kernel takes (31 days; ipvsadm's limit).
inline constexpr std::uint32_t max_persistence_timeout = 31u * 24 * 3600;

/// Checks a service description on its own. Errors: unknown_scheduler, bad_sched_flags,
/// bad_sched_options, bad_persistence, bad_netmask, port_zero_not_persistent,
/// one_packet_not_udp, unsupported_pe, bad_address. `canonical_options`, when given, receives
/// the scheduler options in the policy's canonical form (what a configuration stores).
[[nodiscard]] inline config_error validate(const service_spec& s,
                                           sched::scheduler_options* canonical_options = nullptr) {
  const auto& k = s.key;
  if (!k.is_fwmark() && k.protocol != wire::ip_proto::tcp && k.protocol != wire::ip_proto::udp &&
      k.protocol != wire::ip_proto::sctp)
    return config_error::bad_address;
  if (auto sched = sched::any_scheduler::make(s.scheduler, s.sched_flags, s.sched_options,
                                              canonical_options);
      !sched) {
    switch (sched.error()) {
      case sched::scheduler_error::unknown_scheduler: return config_error::unknown_scheduler;
      case sched::scheduler_error::bad_option_syntax:
      case sched::scheduler_error::unknown_option:
      case sched::scheduler_error::bad_option_value: return config_error::bad_sched_options;
      default: return config_error::bad_sched_flags;
    }
  }
  if (s.persistent && (s.persistence_timeout == 0 || s.persistence_timeout > max_persistence_timeout))
    return config_error::bad_persistence;
  if (k.family() == wire::ip_family::v4 ? !contiguous_netmask(s.netmask_v4)
                                        : (s.prefix_v6 == 0 || s.prefix_v6 > 128))
    return config_error::bad_netmask;
  if (!k.is_fwmark() && k.port == 0 && !s.persistent) return config_error::port_zero_not_persistent;
  if (s.one_packet && !k.is_fwmark() && k.protocol != wire::ip_proto::udp)
    return config_error::one_packet_not_udp;
  if (!s.pe_name.empty()) return config_error::unsupported_pe;
  return config_error::ok;
}

/// Checks a real server for a service of family `f`. Errors: bad_weight, bad_threshold,
/// family_mismatch, method_not_valid, bad_tunnel.
[[nodiscard]] inline config_error validate(const real_server_spec& d, wire::ip_family f) {
  if (d.weight > 65535) return config_error::bad_weight;
  if (d.lower_threshold > d.upper_threshold) return config_error::bad_threshold;
  // Only a tunnel may cross families (the kernel's mixed-family rule, since 3.18).
  if (d.endpoint.address.family() != f && d.method != forward_method::tunnel)
    return config_error::family_mismatch;
  if (d.method != forward_method::tunnel &&
      (d.tunnel != tunnel_settings{}))
    return config_error::method_not_valid;
  if (d.method == forward_method::tunnel) {
    const auto& t = d.tunnel;
    if (t.type == forward::tunnel_type::gue ? t.port == 0 : t.port != 0)
      return config_error::bad_tunnel;
    if (t.type == forward::tunnel_type::ipip && t.checksum != tunnel_checksum::none)
      return config_error::bad_tunnel;
    if (t.type == forward::tunnel_type::gre && t.checksum == tunnel_checksum::remote)
      return config_error::bad_tunnel;
  }
  if (d.method == forward_method::full_nat) {
    const bool has = std::any_of(d.full_nat_local.begin(), d.full_nat_local.end(),
                                 [&](const wire::ip_address& a) {
                                   return a.family() == d.endpoint.address.family();
                                 });
    if (!has) return config_error::method_not_valid;
  } else if (!d.full_nat_local.empty()) {
    return config_error::method_not_valid;
  }
  if (d.mtu != 0 && d.mtu < wire::min_mtu(d.endpoint.address.is_v4()))
    return config_error::method_not_valid;
  return config_error::ok;
}

class configuration {
 public:
  configuration() : configuration(configuration_limits{}) {}
  explicit configuration(const configuration_limits& limits) : limits_(limits) {}

  [[nodiscard]] const configuration_limits& limits() const noexcept { return limits_; }
  /// In the order they were added.
  [[nodiscard]] const std::vector<service_entry>& services() const& noexcept { return services_; }
  /// On a temporary (`control.config().services()`): the list itself, moved out, so a range-for
  /// over it does not refer into a destroyed configuration.
  [[nodiscard]] std::vector<service_entry> services() && noexcept { return std::move(services_); }
  [[nodiscard]] const director_settings& settings() const noexcept { return settings_; }
  [[nodiscard]] const conn::timeouts& timeouts() const noexcept { return timeouts_; }

  [[nodiscard]] const service_entry* find(const service_key& k) const noexcept {
    const auto it = index_.find(k);
    return it == index_.end() ? nullptr : &services_[it->second];
  }
  [[nodiscard]] const service_entry* find_id(std::uint32_t id) const noexcept {
    for (const auto& s : services_)
      if (s.id == id) return &s;
    return nullptr;
  }

  /// Applies one command with IPVS's semantics; on error nothing changes.
  config_error apply(const command& c, change* out = nullptr) {
    change ch;
    const config_error e = std::visit([&](const auto& cmd) { return do_apply(cmd, ch); }, c);
    if (e == config_error::ok && out) *out = ch;
    return e;
  }

  /// Handles removed from their service whose connections are not yet gone.
  [[nodiscard]] const std::vector<std::uint32_t>& retired_handles() const noexcept {
    return retired_;
  }
  /// Makes a retired handle available again (the director calls this once no connection and no
  /// template refers to it any more).
  void release_handle(std::uint32_t h) {
    auto it = std::find(retired_.begin(), retired_.end(), h);
    if (it == retired_.end()) return;
    retired_.erase(it);
    free_handles_.push_back(h);
  }
  /// Handles in use by live servers or retired ones.
  [[nodiscard]] std::uint32_t handles_in_use() const noexcept {
    return next_handle_ - static_cast<std::uint32_t>(free_handles_.size());
  }

 private:
  /// c.spec with its scheduler options in canonical form, or why not.
  static config_error checked(const service_spec& given, service_spec& out) {
    sched::scheduler_options canonical;
    if (auto e = validate(given, &canonical); e != config_error::ok) return e;
    out = given;
    out.sched_options = std::move(canonical);
    return config_error::ok;
  }

  config_error do_apply(const add_service& c, change& ch) {
    service_spec spec;
    if (auto e = checked(c.spec, spec); e != config_error::ok) return e;
    if (find(c.spec.key)) return config_error::service_exists;
    std::uint32_t id;
    if (!free_service_ids_.empty()) {
      id = free_service_ids_.back();
      free_service_ids_.pop_back();
    } else if (next_service_id_ < limits_.max_services) {
      id = next_service_id_++;
    } else {
      return config_error::capacity_exhausted;
    }
    index_.reserve(services_.size() + 1);
    services_.push_back({std::move(spec), id, ++generation_, {}});
    index_.emplace(c.spec.key, services_.size() - 1);
    ch = {change::kind::service_added, id};
    return config_error::ok;
  }
  config_error do_apply(const edit_service& c, change& ch) {
    service_spec spec;
    if (auto e = checked(c.spec, spec); e != config_error::ok) return e;
    service_entry* s = find_mut(c.spec.key);
    if (!s) return config_error::no_such_service;
    for (const auto& d : s->dests)
      if (auto e = validate(d.spec, c.spec.key.family()); e != config_error::ok) return e;
    ch = {change::kind::service_edited, s->id};
    ch.scheduler_rebound = s->spec.scheduler != spec.scheduler ||
                           s->spec.sched_flags != spec.sched_flags ||
                           s->spec.sched_options != spec.sched_options;
    s->spec = std::move(spec);
    return config_error::ok;
  }
  config_error do_apply(const delete_service& c, change& ch) {
    auto it = std::find_if(services_.begin(), services_.end(),
                           [&](const service_entry& s) { return s.spec.key == c.key; });
    if (it == services_.end()) return config_error::no_such_service;
    retired_.reserve(retired_.size() + it->dests.size());
    free_service_ids_.reserve(free_service_ids_.size() + 1);
    for (const auto& d : it->dests) retired_.push_back(d.handle);
    free_service_ids_.push_back(it->id);
    ch = {change::kind::service_deleted, it->id};
    index_.erase(it->spec.key);
    it = services_.erase(it);
    for (; it != services_.end(); ++it) index_[it->spec.key] -= 1;
    return config_error::ok;
  }
  config_error do_apply(const clear_all&, change& ch) {
    std::size_t n = 0;
    for (const auto& s : services_) n += s.dests.size();
    retired_.reserve(retired_.size() + n);
    free_service_ids_.reserve(free_service_ids_.size() + services_.size());
    for (const auto& s : services_) {
      for (const auto& d : s.dests) retired_.push_back(d.handle);
      free_service_ids_.push_back(s.id);
    }
    services_.clear();
    index_.clear();
    ch = {change::kind::cleared};
    return config_error::ok;
  }
  config_error do_apply(const add_dest& c, change& ch) {
    service_entry* s = find_mut(c.service);
    if (!s) return config_error::no_such_service;
    if (auto e = validate(c.dest, c.service.family()); e != config_error::ok) return e;
    if (s->find_dest(c.dest.endpoint)) return config_error::dest_exists;
    std::uint32_t h;
    if (!free_handles_.empty()) {
      h = free_handles_.back();
      free_handles_.pop_back();
    } else if (next_handle_ < limits_.max_dests) {
      h = next_handle_++;
    } else {
      return config_error::capacity_exhausted;
    }
    s->dests.insert(s->dests.begin(), dest_entry{c.dest, h, ++generation_, c.dest.weight});
    ch = {change::kind::dest_added, s->id, h, 0};
    return config_error::ok;
  }
  config_error do_apply(const edit_dest& c, change& ch) {
    service_entry* s = find_mut(c.service);
    if (!s) return config_error::no_such_service;
    const std::size_t pos = s->position_of(c.dest.endpoint);
    if (pos == s->dests.size()) return config_error::no_such_dest;
    if (auto e = validate(c.dest, c.service.family()); e != config_error::ok) return e;
    dest_entry& d = s->dests[pos];
    ch = {change::kind::dest_edited, s->id, d.handle, static_cast<std::uint32_t>(pos)};
    ch.old_upper_threshold = d.spec.upper_threshold;
    if (c.dest.weight != 0) d.last_weight = c.dest.weight;
    d.spec = c.dest;
    return config_error::ok;
  }
  config_error do_apply(const delete_dest& c, change& ch) {
    service_entry* s = find_mut(c.service);
    if (!s) return config_error::no_such_service;
    const std::size_t pos = s->position_of(c.endpoint);
    if (pos == s->dests.size()) return config_error::no_such_dest;
    retired_.reserve(retired_.size() + 1);
    const std::uint32_t h = s->dests[pos].handle;
    retired_.push_back(h);
    s->dests.erase(s->dests.begin() + static_cast<std::ptrdiff_t>(pos));
    ch = {change::kind::dest_deleted, s->id, h, static_cast<std::uint32_t>(pos)};
    return config_error::ok;
  }
  config_error do_apply(const set_timeouts& c, change& ch) {
    conn::timeouts t = timeouts_;
    if (t.set_ipvsadm(c.tcp, c.tcp_fin, c.udp) != conn::errc::ok) return config_error::bad_timeout;
    timeouts_ = t;
    ch = {change::kind::timeouts};
    return config_error::ok;
  }
  config_error do_apply(const zero_counters& c, change& ch) {
    if (c.service) {
      const service_entry* s = find(*c.service);
      if (!s) return config_error::no_such_service;
      ch = {change::kind::zero_counters, s->id};
    } else {
      ch = {change::kind::zero_counters};
      ch.all_services = true;
    }
    return config_error::ok;
  }
  config_error do_apply(const set_sysctl& c, change& ch) {
    director_settings s = settings_;
    if (auto e = apply_sysctl(s, c.name, c.value); e != config_error::ok) return e;
    settings_ = s;
    ch = {change::kind::settings};
    return config_error::ok;
  }

  service_entry* find_mut(const service_key& k) noexcept {
    const auto it = index_.find(k);
    return it == index_.end() ? nullptr : &services_[it->second];
  }

  configuration_limits limits_;
  std::vector<service_entry> services_;
  /// services_[index_[key]].spec.key == key for every service.
  std::unordered_map<service_key, std::size_t, service_key_hash> index_;
  director_settings settings_{};
  conn::timeouts timeouts_{};
  std::uint32_t next_service_id_ = 0;
  std::vector<std::uint32_t> free_service_ids_;
  std::uint32_t next_handle_ = 0;
  std::vector<std::uint32_t> free_handles_;
  std::vector<std::uint32_t> retired_;
  std::uint64_t generation_ = 0;
};

}  // namespace l4lb::director
