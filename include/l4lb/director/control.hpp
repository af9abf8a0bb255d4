// director_control: the control plane shared by the directors of one box (one per core). It owns
// the configuration, applies commands with IPVS's semantics (one command, or a whole rule file
// as one all-or-nothing change), builds a snapshot for every change and publishes it; the
// directors pick it up at their next burst without waiting for anything.
//
// Design notes
// - Publication without locks on the data path: the current snapshot is an atomic pointer; every
//   published snapshot is kept alive here until each registered director has announced (an
//   atomic generation per director) that it moved past it. Control-plane calls are serialised
//   by a mutex the data path never takes.
// - A retired real-server handle (its server removed; ip_vs_del_dest's trash) is given back to
//   the configuration once every director reports it holds no connection or template on it.
// - Counters: each director writes its own blocks; status() sums them. -Z makes every director
//   reset its blocks and estimators at its next burst (single writer per block).
// Cost: a change copies the services it touches, the dest table and the indexes: O(services +
// handles) per published snapshot; apply_all() of N commands publishes once.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "l4lb/director/configuration.hpp"
#include "l4lb/director/snapshot.hpp"
#include "l4lb/director/stats.hpp"

namespace l4lb::director {

/// Result of a multi-command change: the index of the command that failed, if one did.
struct apply_result {
  config_error error = config_error::ok;
  std::size_t failed_index = 0;
  [[nodiscard]] bool ok() const noexcept { return error == config_error::ok; }
};

/// What a director exposes to the control plane (the control plane reads, the director writes).
struct director_port {
  std::atomic<std::uint64_t> seen_generation{0};
  /// Per handle: the dest generation this director holds no connection or template for.
  std::unique_ptr<std::atomic<std::uint64_t>[]> handle_free;
  /// Reads one director's status blocks (set by the director; called under the control mutex).
  std::function<void(std::uint32_t service_id, service_status&)> read_service;
  std::function<void(std::uint32_t handle, dest_status&)> read_dest;
  std::function<void(std::vector<conn_row>&, std::int64_t now)> read_conns;
};

class director_control {
 public:
  explicit director_control(const configuration_limits& limits = {})
      : config_(limits), neighbours_(std::make_shared<neighbour_table>()) {
    publish_locked();
  }
  director_control(const director_control&) = delete;
  director_control& operator=(const director_control&) = delete;

  // ------------------------------------------------------------------ configuration changes

  /// One command, one snapshot. Errors: as configuration::apply; nothing changes on error.
  config_error apply(const command& c) {
    const apply_result r = apply_all(std::span<const command>(&c, 1));
    return r.error;
  }

  /// Several commands as one change (ipvsadm -R): validated on a copy first; if any fails,
  /// nothing changes and the failing command's index is returned.
  apply_result apply_all(std::span<const command> cmds) {
    std::lock_guard lock(mu_);
    {
      configuration trial = config_;
      for (std::size_t i = 0; i < cmds.size(); ++i)
        if (auto e = trial.apply(cmds[i]); e != config_error::ok) return {e, i};
    }
    std::vector<std::shared_ptr<service_runtime>> touched(config_.limits().max_services);
    for (const command& c : cmds) {
      change ch;
      (void)config_.apply(c, &ch);
      record(ch, touched);
    }
    publish_locked();
    return {};
  }

  void set_neighbour(const wire::ip_address& ip, const wire::mac_address& mac) {
    std::lock_guard lock(mu_);
    auto n = std::make_shared<neighbour_table>(*neighbours_);
    n->set(ip, mac);
    neighbours_ = std::move(n);
    publish_locked();
  }
  bool erase_neighbour(const wire::ip_address& ip) {
    std::lock_guard lock(mu_);
    auto n = std::make_shared<neighbour_table>(*neighbours_);
    const bool had = n->erase(ip);
    neighbours_ = std::move(n);
    publish_locked();
    return had;
  }
  void set_identity(director_identity id) {
    std::lock_guard lock(mu_);
    identity_ = std::move(id);
    publish_locked();
  }

  // ------------------------------------------------------------------ reading

  [[nodiscard]] configuration config() const {
    std::lock_guard lock(mu_);
    return config_;
  }
  /// The published snapshot (control-plane use; directors read `acquire()`).
  [[nodiscard]] std::shared_ptr<const snapshot> current() const {
    std::lock_guard lock(mu_);
    return published_.back();
  }
  /// Data path: the newest snapshot and its generation; stays valid until this director
  /// announces a later generation on its port.
  [[nodiscard]] const snapshot* acquire() const noexcept {
    return head_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }

  /// A service's counters and rates summed over every director, minus nothing (-Z resets the
  /// directors' own blocks).
  [[nodiscard]] service_status service_stats(std::uint32_t service_id) const {
    std::lock_guard lock(mu_);
    service_status s;
    for (auto* p : ports_)
      if (p->read_service) p->read_service(service_id, s);
    return s;
  }
  [[nodiscard]] dest_status dest_stats(std::uint32_t handle) const {
    std::lock_guard lock(mu_);
    dest_status s;
    for (auto* p : ports_)
      if (p->read_dest) p->read_dest(handle, s);
    return s;
  }
  /// Every connection and template of every director (ipvsadm -Lnc), in each director's table
  /// order.
  [[nodiscard]] std::vector<conn_row> connections(std::int64_t now) const {
    std::lock_guard lock(mu_);
    std::vector<conn_row> rows;
    for (auto* p : ports_)
      if (p->read_conns) p->read_conns(rows, now);
    return rows;
  }

  /// Whether every attached director has taken up generation `g` or a later one: a change is in
  /// effect everywhere (-Z has zeroed every block, a removed server gets no new connection).
  /// Directors take a snapshot up at their next burst, so an application whose workers idle
  /// passes them empty bursts now and then (l4lb-director: every 100 ms) and polls this.
  [[nodiscard]] bool all_seen(std::uint64_t g) const {
    std::lock_guard lock(mu_);
    for (auto* p : ports_)
      if (p->seen_generation.load(std::memory_order_acquire) < g) return false;
    return true;
  }

  /// Gives retired handles back once every director holds nothing on them; returns how many.
  std::size_t collect_retired() {
    std::lock_guard lock(mu_);
    return collect_locked();
  }

  // ------------------------------------------------------------------ directors

  /// A director registers its port (control plane; the port must outlive the registration).
  void attach(director_port& p) {
    std::lock_guard lock(mu_);
    p.handle_free = std::make_unique<std::atomic<std::uint64_t>[]>(config_.limits().max_dests);
    ports_.push_back(&p);
  }
  void detach(director_port& p) {
    std::lock_guard lock(mu_);
    ports_.erase(std::remove(ports_.begin(), ports_.end(), &p), ports_.end());
    trim_locked();
  }

 private:
  /// Runs the scheduler hooks IPVS runs for one change on the service's runtime (copy on first
  /// touch within this change), recording them as events for the directors.
  void record(const change& ch, std::vector<std::shared_ptr<service_runtime>>& touched) {
    using k = change::kind;
    switch (ch.what) {
      case k::service_added: {
        auto rt = std::make_shared<service_runtime>();
        const service_entry* e = config_.find_id(ch.service_id);
        rt->spec = e->spec;
        rt->id = e->id;
        rt->generation = e->generation;
        rt->prototype = make_policy(e->spec);
        (void)rt->prototype.rebuild({}, {sched::dest_change::kind::init, 0});
        set_persistence(*rt);
        rt->sched_version = 1;
        rt->events_from = 0;
        rt->events_complete = false;  // created here: directors copy the prototype
        runtime_[ch.service_id] = rt;
        touched[ch.service_id] = rt;
        break;
      }
      case k::service_edited: {
        auto& rt = touch(ch.service_id, touched);
        const service_entry* e = config_.find_id(ch.service_id);
        rt.spec = e->spec;
        set_persistence(rt);
        if (ch.scheduler_rebound) rebind(rt);
        break;
      }
      case k::service_deleted:
        runtime_[ch.service_id].reset();
        touched[ch.service_id].reset();
        break;
      case k::cleared:
        for (auto& r : runtime_) r.reset();
        for (auto& t : touched) t.reset();
        break;
      case k::dest_added: {
        auto& rt = touch(ch.service_id, touched);
        rebuild_list(rt);
        hook(rt, {sched::dest_change::kind::added, 0});
        break;
      }
      case k::dest_edited: {
        auto& rt = touch(ch.service_id, touched);
        rebuild_list(rt);
        hook(rt, {sched::dest_change::kind::edited, ch.position});
        break;
      }
      case k::dest_deleted: {
        auto& rt = touch(ch.service_id, touched);
        rebuild_list(rt);
        hook(rt, {sched::dest_change::kind::removed, ch.position});
        break;
      }
      case k::zero_counters:
        for (std::uint32_t id = 0; id < runtime_.size(); ++id) {
          if (!runtime_[id] || (!ch.all_services && id != ch.service_id)) continue;
          ++touch(id, touched).zero_epoch;
        }
        break;
      case k::settings:
        // An lblc / lblcr expiration sysctl reaches the services that do not set their own.
        for (std::uint32_t id = 0; id < runtime_.size(); ++id)
          if (runtime_[id] && expiration_outdated(*runtime_[id])) rebind(touch(id, touched));
        break;
      case k::timeouts:
      case k::none:
        break;
    }
  }

  /// The service's policy as configured: its name, flags and options, and for lblc / lblcr
  /// without an `expiration` option the director's lblc_expiration / lblcr_expiration sysctl.
  [[nodiscard]] sched::any_scheduler make_policy(const service_spec& spec) const {
    const std::optional<std::int64_t> sysctl = expiration_sysctl_ns(spec);
    if (!sysctl) return *sched::make_scheduler(spec.scheduler, spec.sched_flags, spec.sched_options);
    sched::scheduler_options o = spec.sched_options;
    o.set("expiration", std::to_string(*sysctl / 1'000'000'000));
    return *sched::make_scheduler(spec.scheduler, spec.sched_flags, o);
  }

  /// The expiration an lblc / lblcr service takes from the sysctl (nullopt: another scheduler,
  /// or the service sets its own).
  [[nodiscard]] std::optional<std::int64_t> expiration_sysctl_ns(const service_spec& spec) const {
    if ((spec.scheduler != "lblc" && spec.scheduler != "lblcr") ||
        spec.sched_options.find("expiration") != nullptr)
      return std::nullopt;
    const director_settings& st = config_.settings();
    return std::int64_t{spec.scheduler == "lblc" ? st.lblc_expiration : st.lblcr_expiration} *
           1'000'000'000;
  }

  /// Whether a changed sysctl gives the service another expiration than its policy has. The
  /// kernel reads the sysctl at each full check and keeps its cache; here the policy is made
  /// afresh (a new binding, as after -E with another scheduler), so the cache starts empty.
  [[nodiscard]] bool expiration_outdated(const service_runtime& rt) const {
    const std::optional<std::int64_t> want = expiration_sysctl_ns(rt.spec);
    if (!want) return false;
    return rt.prototype.visit([&](const auto& p) {
      if constexpr (requires { p.options().expiration_ns; })
        return p.options().expiration_ns != *want;
      else
        return false;
    });
  }

  /// A new policy for the service (-E with another scheduler, flags or options): init runs on
  /// the current list and the directors copy the prototype.
  void rebind(service_runtime& rt) {
    rt.prototype = make_policy(rt.spec);
    (void)rt.prototype.rebuild(rt.dests, {sched::dest_change::kind::init, 0});
    ++rt.sched_version;
    rt.events.clear();
    rt.events_complete = false;
  }

  service_runtime& touch(std::uint32_t id, std::vector<std::shared_ptr<service_runtime>>& touched) {
    if (!touched[id]) {
      auto copy = std::make_shared<service_runtime>(*runtime_[id]);
      copy->events.clear();
      copy->events_from = copy->sched_version;
      copy->events_complete = true;
      touched[id] = copy;
      runtime_[id] = copy;
    }
    return *touched[id];
  }

  void rebuild_list(service_runtime& rt) {
    const service_entry* e = config_.find_id(rt.id);
    rt.dests.clear();
    rt.dests.reserve(e->dests.size());
    for (const auto& d : e->dests) {
      sched::real_server r;
      r.endpoint = d.spec.endpoint;
      r.handle = d.handle;
      r.weight = d.spec.weight;
      r.last_weight = d.last_weight;
      r.upper_threshold = d.spec.upper_threshold;
      r.lower_threshold = d.spec.lower_threshold;
      rt.dests.push_back(r);
    }
  }

  /// One hook on the prototype, recorded for the directors that hold the service already (a
  /// service created in this change has none: they copy the prototype).
  void hook(service_runtime& rt, sched::dest_change c) {
    (void)rt.prototype.rebuild(rt.dests, c);
    ++rt.sched_version;
    if (published_ids_[rt.id] == rt.generation && rt.events_complete)
      rt.events.push_back({c, rt.dests});
  }

  static void set_persistence(service_runtime& rt) {
    const auto& s = rt.spec;
    rt.persist_v4 = {};
    rt.persist_v6 = {};
    rt.persist_v4.timeout_s = rt.persist_v6.timeout_s = s.persistence_timeout;
    rt.persist_v4.fwmark = rt.persist_v6.fwmark = s.key.fwmark;
    rt.persist_v4.service_port = rt.persist_v6.service_port = s.key.is_fwmark() ? 0 : s.key.port;
    for (std::size_t i = 0; i < 4; ++i)
      rt.persist_v4.netmask.bytes[i] = static_cast<std::uint8_t>(s.netmask_v4 >> (24 - 8 * i));
    rt.persist_v6.netmask = conn::persistence<wire::ipv6_address>::mask_from_prefix(s.prefix_v6);
  }

  void publish_locked() {
    const auto& limits = config_.limits();
    if (runtime_.empty()) runtime_.resize(limits.max_services);
    if (published_ids_.empty()) published_ids_.assign(limits.max_services, 0);
    auto s = std::make_shared<snapshot>();
    s->generation = ++next_generation_;
    s->services.assign(runtime_.begin(), runtime_.end());
    s->dests.resize(limits.max_dests);
    for (const auto& e : config_.services()) {
      for (const auto& d : e.dests) {
        dest_runtime& r = s->dests[d.handle];
        r.live = true;
        r.service_id = e.id;
        r.generation = d.generation;
        r.spec = d.spec;
        r.last_weight = d.last_weight;
        if (runtime_[e.id]) r.zero_epoch = runtime_[e.id]->zero_epoch;
      }
      s->vips.push_back(e.spec.key.address);
    }
    for (auto& r : s->dests)
      if (r.generation != 0) resolve(r);
    // Retired handles keep their last description (-Lnc lists their connections).
    if (!published_.empty()) {
      const snapshot& prev = *published_.back();
      for (std::uint32_t h : config_.retired_handles()) {
        if (h < prev.dests.size() && !s->dests[h].live) {
          s->dests[h] = prev.dests[h];
          s->dests[h].live = false;
        }
      }
    }
    s->retired = config_.retired_handles();
    for (const auto& r : s->dests)
      if (r.generation != 0 && (r.spec.method == forward_method::masq || r.spec.method == forward_method::full_nat))
        s->nat_sources.push_back(r.spec.endpoint.address);
    std::sort(s->nat_sources.begin(), s->nat_sources.end());
    s->nat_sources.erase(std::unique(s->nat_sources.begin(), s->nat_sources.end()), s->nat_sources.end());
    std::sort(s->vips.begin(), s->vips.end());
    s->vips.erase(std::unique(s->vips.begin(), s->vips.end()), s->vips.end());
    for (const auto& a : s->vips)
      if (a.is_v4()) s->vips_v4.push_back(a.v4().to_u32());  // v4 sort first, in byte order
    for (const auto& a : s->vips) s->vip_filter |= std::uint64_t{1} << snapshot::vip_bit(a.raw(), a.family());
    s->index.build(s->services);
    s->neighbours = neighbours_;
    s->identity = identity_;
    const std::optional<wire::ip_address>* gateways[2] = {&identity_.gateway_v4, &identity_.gateway_v6};
    for (std::size_t f = 0; f < 2; ++f)
      if (*gateways[f])
        if (const wire::mac_address* mac = neighbours_->find(**gateways[f])) s->gateway_macs[f] = *mac;
    s->settings = config_.settings();
    s->timeouts = config_.timeouts();
    for (const auto& e : config_.services()) published_ids_[e.id] = e.generation;
    published_.push_back(s);
    head_.store(s.get(), std::memory_order_release);
    generation_.store(s->generation, std::memory_order_release);
    collect_locked();
    trim_locked();
  }

  /// The forwarding configuration of a real server, ready for the data path.
  void resolve(dest_runtime& r) const {
    const wire::mac_address* mac = neighbours_->find(r.spec.endpoint.address);
    r.has_mac = mac != nullptr;
    const wire::mac_address dst = mac ? *mac : wire::mac_address{};
    r.dr = {};
    r.dr.l2.src = identity_.mac;
    r.dr.l2.dst = dst;
    const std::uint32_t mtu = r.spec.mtu != 0 ? r.spec.mtu : identity_.mtu;
    r.dr.mtu = mtu;
    r.nat = {};
    r.nat.l2 = r.dr.l2;
    r.nat.mtu = mtu;
    r.nat.keep_quoted_l4_checksum = true;  // the kernel leaves it (ipvs-notes 0A)
    r.tunnel = {};
    const wire::ip_address* local = identity_.address_of(r.spec.endpoint.address.family());
    r.has_tunnel_source = local != nullptr;
    if (local) r.tunnel.local = *local;
    r.tunnel.type = r.spec.tunnel.type;
    r.tunnel.gue_port = r.spec.tunnel.port;
    r.tunnel.checksum = r.spec.tunnel.checksum == tunnel_checksum::checksum ? forward::tunnel_checksum::csum
                        : r.spec.tunnel.checksum == tunnel_checksum::remote ? forward::tunnel_checksum::remcsum
                                                                            : forward::tunnel_checksum::none;
    r.tunnel.l2 = r.dr.l2;
    r.tunnel.mtu = mtu;
  }

  std::size_t collect_locked() {
    if (published_.empty()) return 0;
    const snapshot& cur = *published_.back();
    std::vector<std::uint32_t> free;
    for (std::uint32_t h : config_.retired_handles()) {
      const std::uint64_t gen = h < cur.dests.size() ? cur.dests[h].generation : 0;
      bool all = true;
      for (auto* p : ports_)
        if (p->handle_free[h].load(std::memory_order_acquire) != gen) all = false;
      if (all) free.push_back(h);
    }
    for (std::uint32_t h : free) config_.release_handle(h);
    return free.size();
  }

  void trim_locked() {
    std::uint64_t oldest = published_.back()->generation;
    for (auto* p : ports_) oldest = std::min(oldest, p->seen_generation.load(std::memory_order_acquire));
    while (published_.size() > 1 && published_.front()->generation < oldest)
      published_.erase(published_.begin());
  }

  mutable std::mutex mu_;
  configuration config_;
  std::vector<std::shared_ptr<service_runtime>> runtime_;  // by service id
  std::vector<std::uint64_t> published_ids_;  // service generation in the last snapshot, by id
  std::shared_ptr<const neighbour_table> neighbours_;
  director_identity identity_;
  std::vector<std::shared_ptr<const snapshot>> published_;
  std::atomic<const snapshot*> head_{nullptr};
  std::atomic<std::uint64_t> generation_{0};
  std::uint64_t next_generation_ = 0;
  std::vector<director_port*> ports_;
};

}  // namespace l4lb::director
