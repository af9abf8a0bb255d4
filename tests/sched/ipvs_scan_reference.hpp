// Straightforward models of IPVS's list-walking schedulers (ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c,
// ip_vs_nq.c, ip_vs_fo.c, ip_vs_ovf.c, ip_vs_rr.c, ip_vs_wrr.c, ip_vs_twos.c), one loop each, in
// the kernel's shape: the oracle for the tree-based policies' differential tests and the O(n)
// baseline in bench/sched_bench.cpp. Deliberately naive; no code is shared with the library
// except the real_server type.
#pragma once

#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "l4lb/sched/real_server.hpp"

namespace l4lb::sched::reference {

// 128-bit cross products so the oracle is exact (the kernel's are 64-bit signed).
__extension__ typedef unsigned __int128 u128;  // NOLINT
inline u128 mul(std::uint64_t a, std::uint64_t b) { return static_cast<u128>(a) * b; }

inline std::uint64_t overhead(const real_server& d) {
  return (std::uint64_t{d.active_conns} << 8) + d.inactive_conns;
}

/// ip_vs_lc_schedule: skip overloaded or weight 0; keep the first strict minimum of overhead.
inline dest_id lc(std::span<const real_server> ds) {
  dest_id least = no_dest;
  std::uint64_t loh = 0;
  for (dest_id i = 0; i < ds.size(); ++i) {
    if (ds[i].overloaded || ds[i].weight == 0) continue;
    const std::uint64_t doh = overhead(ds[i]);
    if (least == no_dest || doh < loh) {
      least = i;
      loh = doh;
    }
  }
  return least;
}

/// ip_vs_wlc_schedule / ip_vs_sed_schedule: seed = first not overloaded with weight > 0, then
/// every later not-overloaded dest replaces on loh * w_d > doh * w_least. `oh` is the formula.
template <class Overhead>
dest_id weighted_scan(std::span<const real_server> ds, Overhead oh) {
  dest_id i = 0;
  for (; i < ds.size(); ++i) {
    if (!ds[i].overloaded && ds[i].weight > 0) break;
  }
  if (i == ds.size()) return no_dest;
  dest_id least = i;
  std::uint64_t loh = oh(ds[i]);
  for (++i; i < ds.size(); ++i) {
    if (ds[i].overloaded) continue;
    const std::uint64_t doh = oh(ds[i]);
    if (mul(loh, ds[i].weight) > mul(doh, ds[least].weight)) {
      least = i;
      loh = doh;
    }
  }
  return least;
}

inline dest_id wlc(std::span<const real_server> ds) {
  return weighted_scan(ds, [](const real_server& d) { return overhead(d); });
}
inline dest_id sed(std::span<const real_server> ds) {
  return weighted_scan(ds, [](const real_server& d) { return std::uint64_t{d.active_conns} + 1; });
}

/// ip_vs_nq_schedule: skip overloaded or weight 0; an idle dest is returned at once; otherwise
/// the first strict minimum of (active + 1) / weight.
inline dest_id nq(std::span<const real_server> ds) {
  dest_id least = no_dest;
  std::uint64_t loh = 0;
  for (dest_id i = 0; i < ds.size(); ++i) {
    if (ds[i].overloaded || ds[i].weight == 0) continue;
    const std::uint64_t doh = std::uint64_t{ds[i].active_conns} + 1;
    if (ds[i].active_conns == 0) return i;
    if (least == no_dest || mul(loh, ds[i].weight) > mul(doh, ds[least].weight)) {
      least = i;
      loh = doh;
    }
  }
  return least;
}

/// ip_vs_fo_schedule: not overloaded and weight > best (best starts at 0).
inline dest_id fo(std::span<const real_server> ds) {
  dest_id best = no_dest;
  std::uint32_t hw = 0;
  for (dest_id i = 0; i < ds.size(); ++i) {
    if (!ds[i].overloaded && ds[i].weight > hw) {
      best = i;
      hw = ds[i].weight;
    }
  }
  return best;
}

/// ip_vs_ovf_schedule: skip overloaded, active > weight, weight 0; highest weight, first wins.
inline dest_id ovf(std::span<const real_server> ds) {
  dest_id best = no_dest;
  std::uint32_t hw = 0;
  for (dest_id i = 0; i < ds.size(); ++i) {
    const std::uint32_t w = ds[i].weight;
    if (ds[i].overloaded || ds[i].active_conns > w || w == 0) continue;
    if (best == no_dest || w > hw) {
      best = i;
      hw = w;
    }
  }
  return best;
}

/// ip_vs_rr.c, walking positions with -1 standing for the list head.
struct rr_model {
  long cursor = -1;

  void init() { cursor = -1; }
  void removed(long id) {
    if (cursor == id) {
      cursor = id - 1;  // predecessor; -1 is the head
    } else if (cursor > id) {
      --cursor;
    }
  }
  void added() {
    if (cursor >= 0) ++cursor;
  }

  dest_id pick(std::span<const real_server> ds) {
    const long n = static_cast<long>(ds.size());
    const long last = cursor;
    long p = cursor;
    for (int pass = 0; pass < 2; ++pass) {
      for (++p; p < n; ++p) {
        const real_server& d = ds[static_cast<std::size_t>(p)];
        if (!d.overloaded && d.weight > 0) {
          cursor = p;
          return static_cast<dest_id>(p);
        }
        if (p == last) return no_dest;
      }
      if (last == -1) break;  // started at the head: one pass only
      p = -1;
    }
    return no_dest;
  }
};

/// ip_vs_wrr.c, walking positions with -1 standing for the list head.
struct wrr_model {
  long cl = -1;
  long cw = 0, mw = 0, di = 1;

  void recompute(std::span<const real_server> ds) {
    long g = 0, m = 0;
    for (const real_server& d : ds) {
      const long w = d.weight;
      if (w > 0) g = g > 0 ? std::gcd(w, g) : w;
      if (w > m) m = w;
    }
    di = g ? g : 1;
    mw = m - (di - 1);
  }
  void init(std::span<const real_server> ds) {
    cl = -1;
    recompute(ds);
    cw = mw;
  }
  void changed(std::span<const real_server> ds) {
    cl = -1;
    recompute(ds);
    if (cw > mw || cw == 0) {
      cw = mw;
    } else if (di > 1) {
      cw = (cw / di) * di + 1;
    }
  }

  dest_id pick(std::span<const real_server> ds) {
    const long n = static_cast<long>(ds.size());
    if (mw == 0) return no_dest;
    const long last = cl;
    long stop = -2;  // none
    bool last_pass = false, restarted = false;
    long p = cl;
    for (;;) {
      for (++p; p < n; ++p) {
        const real_server& d = ds[static_cast<std::size_t>(p)];
        if (!d.overloaded && static_cast<long>(d.weight) >= cw) {
          cl = p;
          return static_cast<dest_id>(p);
        }
        if (p == stop) {
          cl = p;
          return no_dest;
        }
      }
      cw -= di;
      if (cw <= 0) {
        cw = mw;
        if (last_pass || last == -1) {
          cl = -1;
          return no_dest;
        }
        restarted = true;
      }
      last_pass = cw <= di;
      if (last_pass && restarted && last != -1) stop = last;
      p = -1;
    }
  }
};

/// ip_vs_twos_schedule with the two draws given (each already in [0, W]).
inline dest_id twos(std::span<const real_server> ds, std::uint64_t r1, std::uint64_t r2) {
  std::int64_t rw1 = static_cast<std::int64_t>(r1), rw2 = static_cast<std::int64_t>(r2);
  dest_id c1 = no_dest, c2 = no_dest;
  for (dest_id i = 0; i < ds.size(); ++i) {
    if (ds[i].overloaded || ds[i].weight == 0) continue;
    rw1 -= ds[i].weight;
    rw2 -= ds[i].weight;
    if (rw1 <= 0 && c1 == no_dest) c1 = i;
    if (rw2 <= 0 && c2 == no_dest) c2 = i;
    if (c1 != no_dest && c2 != no_dest) break;
  }
  if (c1 == no_dest) return no_dest;
  if (c2 != no_dest &&
      mul(ds[c2].weight, overhead(ds[c1])) > mul(ds[c1].weight, overhead(ds[c2])))
    return c2;
  return c1;
}

/// Sum of the weights twos draws from (not overloaded, weight > 0).
inline std::uint64_t twos_total(std::span<const real_server> ds) {
  std::uint64_t t = 0;
  for (const real_server& d : ds)
    if (!d.overloaded && d.weight > 0) t += d.weight;
  return t;
}

}  // namespace l4lb::sched::reference
