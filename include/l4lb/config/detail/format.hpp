// Shared pieces of ipvsadm's output (config/rules.hpp -S and config/listing.hpp -L): printf-style
// padding without printf, glibc's inet_ntop text for addresses, ipvsadm's addrport_to_anyname,
// print_sched_flags, and the sort ipvsadm applies to services and real servers.
//
// Sorting (libipvs.c ipvs_cmp_services / ipvs_cmp_dests, ipvs_sort_*): qsort with comparators
// that subtract host-order 32-bit values and keep the int result, so the order wraps around
// (ipvs-notes 5.1): an address more than 2^31 above another sorts before it (the tests list
// fd00::9000:0:0:0 before fd00::1:0:0:0).
// Such a comparator is not a strict weak ordering across the wrap, so the result depends on the
// sorting algorithm: Debian 12's glibc (2.36) qsort is a top-down merge sort (msort_with_tmp:
// n1 = n / 2 on the left, the left element wins ties), reproduced here so even non-transitive
// inputs come out as ipvsadm prints them. The input order is the kernel's list order for real
// servers (newest first) and, for services, l4lb's add order (the kernel hands ipvsadm its
// service hash table's order, which l4lb does not have).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/config/grammar.hpp"
#include "l4lb/director/configuration.hpp"
#include "l4lb/wire/address.hpp"

namespace l4lb::config::detail {

inline void append_uint(std::string& out, std::uint64_t v) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out.push_back(buf[--n]);
}
[[nodiscard]] inline std::size_t digits(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}
/// printf("%-Ns", s)
inline void append_left(std::string& out, std::string_view s, std::size_t width) {
  out += s;
  if (s.size() < width) out.append(width - s.size(), ' ');
}
/// printf("%Ns", s)
inline void append_right(std::string& out, std::string_view s, std::size_t width) {
  if (s.size() < width) out.append(width - s.size(), ' ');
  out += s;
}
/// printf("%-Nu", v)
inline void append_left(std::string& out, std::uint64_t v, std::size_t width) {
  const std::size_t n = digits(v);
  append_uint(out, v);
  if (n < width) out.append(width - n, ' ');
}
/// printf("%Nu", v)
inline void append_right(std::string& out, std::uint64_t v, std::size_t width) {
  const std::size_t n = digits(v);
  if (n < width) out.append(width - n, ' ');
  append_uint(out, v);
}

/// ipvsadm's print_largenum: exact in a field of max(9, digits + 1); else %9llu below 10^8,
/// then thousands (K) below 10^9, millions (M) below 10^11, billions (G) below 10^14, and
/// trillions (T), each as %8llu plus the letter.
inline void append_largenum(std::string& out, std::uint64_t i, bool exact) {
  if (exact) {
    const std::size_t len = digits(i);
    append_right(out, i, len <= 8 ? 9 : len + 1);
    return;
  }
  if (i < 100'000'000ULL) {
    append_right(out, i, 9);
  } else if (i < 1'000'000'000ULL) {
    append_right(out, i / 1000, 8);
    out += 'K';
  } else if (i < 100'000'000'000ULL) {
    append_right(out, i / 1'000'000ULL, 8);
    out += 'M';
  } else if (i < 100'000'000'000'000ULL) {
    append_right(out, i / 1'000'000'000ULL, 8);
    out += 'G';
  } else {
    append_right(out, i / 1'000'000'000'000ULL, 8);
    out += 'T';
  }
}

/// inet_ntoa / inet_ntop(AF_INET).
inline void append_ipv4(std::string& out, std::uint32_t host_order) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    append_uint(out, (host_order >> shift) & 0xFFu);
    if (shift) out += '.';
  }
}

/// glibc's inet_ntop(AF_INET6): lower-case hex, the first longest run (>= 2) of zero groups as
/// "::", and a dotted IPv4 tail for ::a.b.c.d (IPv4-compatible) and ::ffff:a.b.c.d.
inline void append_ipv6(std::string& out, const wire::ipv6_address& a) {
  static constexpr char hex[] = "0123456789abcdef";
  int best_base = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (a.group(static_cast<std::size_t>(i)) != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && a.group(static_cast<std::size_t>(j)) == 0) ++j;
    if (j - i > best_len) {
      best_base = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_base = -1;
  for (int i = 0; i < 8; ++i) {
    if (best_base != -1 && i >= best_base && i < best_base + best_len) {
      if (i == best_base) out += ':';
      continue;
    }
    if (i != 0) out += ':';
    if (i == 6 && best_base == 0 &&
        (best_len == 6 || (best_len == 5 && a.group(5) == 0xFFFF))) {
      append_ipv4(out, a.word(3));
      return;
    }
    const unsigned g = a.group(static_cast<std::size_t>(i));
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned nib = (g >> shift) & 0xFu;
      if (nib != 0 || started || shift == 0) {
        out += hex[nib];
        started = true;
      }
    }
  }
  if (best_base != -1 && best_base + best_len == 8) out += ':';
}

inline void append_address(std::string& out, const wire::ip_address& a) {
  if (a.is_v4())
    append_ipv4(out, a.v4().to_u32());
  else
    append_ipv6(out, a.v6());
}

/// addrport_to_anyname: "198.18.0.12:80", "[fd00::12]:80"; without `numeric`, the resolver's
/// host and service names where it has them.
inline void append_addrport(std::string& out, const wire::ip_address& a, std::uint16_t port,
                            std::uint8_t protocol, bool numeric, const name_resolver* r) {
  if (a.is_v6()) out += '[';
  std::optional<std::string> host, service;
  if (!numeric && r != nullptr) {
    if (r->address_to_host) host = r->address_to_host(a);
    if (r->port_to_service && (protocol == wire::ip_proto::tcp || protocol == wire::ip_proto::udp ||
                               protocol == wire::ip_proto::sctp))
      service = r->port_to_service(port, protocol);
  }
  if (host)
    out += *host;
  else
    append_address(out, a);
  if (a.is_v6()) out += ']';
  out += ':';
  if (service)
    out += *service;
  else
    append_uint(out, port);
}

/// print_sched_flags: "sh-fallback,sh-port", "mh-port", "flag-1,flag-3".
inline void append_sched_flags(std::string& out, const director::service_spec& s) {
  const std::uint32_t b = s.sched_flags.bits;
  const std::size_t start = out.size();
  if (s.scheduler == "sh" || s.scheduler == "mh") {
    const std::string_view p = s.scheduler == "sh" ? "sh-" : "mh-";
    if (b & sched::scheduler_flags::flag_1) (out += p) += "fallback,";
    if (b & sched::scheduler_flags::flag_2) (out += p) += "port,";
  } else {
    if (b & sched::scheduler_flags::flag_1) out += "flag-1,";
    if (b & sched::scheduler_flags::flag_2) out += "flag-2,";
    if (b & sched::scheduler_flags::flag_3) out += "flag-3,";
  }
  if (out.size() > start) out.pop_back();
}

[[nodiscard]] inline bool has_sched_flags(const director::service_spec& s) noexcept {
  return (s.sched_flags.bits & sched::scheduler_flags::mask) != 0;
}

/// (int)(a - b) of two host-order 32-bit values, as the C comparators compute it.
[[nodiscard]] constexpr int wrap_diff(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<int>(static_cast<std::int32_t>(a - b));
}

/// Word i (0..3) of an address's 16 storage bytes, host order (an IPv4 address is word 0, then
/// zeros, as in the kernel's union nf_inet_addr).
[[nodiscard]] inline std::uint32_t raw_word(const wire::ip_address& a, std::size_t i) noexcept {
  const auto& r = a.raw();
  return (std::uint32_t{r[4 * i]} << 24) | (std::uint32_t{r[4 * i + 1]} << 16) |
         (std::uint32_t{r[4 * i + 2]} << 8) | std::uint32_t{r[4 * i + 3]};
}

/// The address part of both comparators: four words when the first is IPv6, else one.
[[nodiscard]] inline int compare_address(const wire::ip_address& a,
                                         const wire::ip_address& b) noexcept {
  if (a.is_v6()) {
    int r = 0;
    for (std::size_t i = 0; r == 0 && i < 4; ++i) r = wrap_diff(raw_word(a, i), raw_word(b, i));
    return r;
  }
  return wrap_diff(raw_word(a, 0), raw_word(b, 0));
}

/// ipvs_cmp_services: fwmark, family (AF_INET 2 before AF_INET6 10), protocol, address, port.
[[nodiscard]] inline int compare_services(const director::service_key& a,
                                          const director::service_key& b) noexcept {
  if (int r = wrap_diff(a.fwmark, b.fwmark); r != 0) return r;
  const int af_a = a.address.is_v4() ? 2 : 10, af_b = b.address.is_v4() ? 2 : 10;
  if (af_a != af_b) return af_a - af_b;
  if (a.protocol != b.protocol) return int{a.protocol} - int{b.protocol};
  if (int r = compare_address(a.address, b.address); r != 0) return r;
  return int{a.port} - int{b.port};
}

/// ipvs_cmp_dests: address (the first one's family decides how much is compared), then port.
[[nodiscard]] inline int compare_dests(const wire::endpoint& a, const wire::endpoint& b) noexcept {
  if (int r = compare_address(a.address, b.address); r != 0) return r;
  return int{a.port} - int{b.port};
}

/// glibc 2.36's qsort (msort_with_tmp): top-down merge sort, left half n / 2, ties to the left.
template <class T, class Cmp>
void merge_sort(std::span<T> v, std::vector<T>& tmp, Cmp cmp) {
  const std::size_t n = v.size();
  if (n <= 1) return;
  const std::size_t n1 = n / 2;
  merge_sort(v.first(n1), tmp, cmp);
  merge_sort(v.subspan(n1), tmp, cmp);
  tmp.clear();
  std::size_t i = 0, j = n1;
  while (i < n1 && j < n) {
    if (cmp(v[i], v[j]) <= 0)
      tmp.push_back(v[i++]);
    else
      tmp.push_back(v[j++]);
  }
  while (i < n1) tmp.push_back(v[i++]);
  // The rest of the right half is already in place.
  std::copy(tmp.begin(), tmp.end(), v.begin());
}

/// The services in listing order (sorted unless `nosort`).
[[nodiscard]] inline std::vector<const director::service_entry*> ordered_services(
    const director::configuration& cfg, bool nosort) {
  std::vector<const director::service_entry*> v;
  v.reserve(cfg.services().size());
  for (const auto& s : cfg.services()) v.push_back(&s);
  if (!nosort) {
    std::vector<const director::service_entry*> tmp;
    tmp.reserve(v.size());
    merge_sort(std::span(v), tmp,
               [](const director::service_entry* a, const director::service_entry* b) {
                 return compare_services(a->spec.key, b->spec.key);
               });
  }
  return v;
}

/// A service's real servers in listing order (kernel list order when `nosort`).
inline void ordered_dests(const director::service_entry& s, bool nosort,
                          std::vector<const director::dest_entry*>& v,
                          std::vector<const director::dest_entry*>& tmp) {
  v.clear();
  for (const auto& d : s.dests) v.push_back(&d);
  if (!nosort)
    merge_sort(std::span(v), tmp, [](const director::dest_entry* a, const director::dest_entry* b) {
      return compare_dests(a->spec.endpoint, b->spec.endpoint);
    });
}

}  // namespace l4lb::config::detail
