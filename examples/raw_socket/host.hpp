// What l4lb-director learns from the host it runs on: an interface's index, MAC, MTU and
// addresses, the default gateways, and the kernel's neighbour table (netlink RTM_GETNEIGH), plus
// a way to make the kernel resolve an address it does not know yet.
#pragma once

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <l4lb/wire/address.hpp>

#include "packet_socket.hpp"

namespace raw {

namespace lw = l4lb::wire;

struct interface_info {
  std::string name;
  int index = 0;
  lw::mac_address mac{};
  std::uint32_t mtu = 1500;
  std::vector<lw::ip_address> addresses;
};

inline lw::ip_address from_in(const in_addr& a) {
  lw::ipv4_address v;
  std::memcpy(v.bytes.data(), &a, 4);
  return lw::ip_address(v);
}
inline lw::ip_address from_in6(const in6_addr& a) {
  lw::ipv6_address v;
  std::memcpy(v.bytes.data(), &a, 16);
  return lw::ip_address(v);
}

/// The interface `name`; throws with a clear message when it does not exist.
inline interface_info query_interface(const std::string& name) {
  interface_info info;
  info.name = name;
  info.index = static_cast<int>(::if_nametoindex(name.c_str()));
  if (info.index == 0) fail("interface '" + name + "'");
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) fail("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
    std::memcpy(info.mac.bytes.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (::ioctl(fd, SIOCGIFMTU, &ifr) == 0) info.mtu = static_cast<std::uint32_t>(ifr.ifr_mtu);
  ::close(fd);
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr || name != a->ifa_name) continue;
      if (a->ifa_addr->sa_family == AF_INET)
        info.addresses.push_back(from_in(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr));
      else if (a->ifa_addr->sa_family == AF_INET6) {
        const auto& a6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr;
        if (!IN6_IS_ADDR_LINKLOCAL(&a6)) info.addresses.push_back(from_in6(a6));
      }
    }
    ::freeifaddrs(list);
  }
  return info;
}

/// The IPv4 default gateway through `ifname` (/proc/net/route), if there is one.
inline std::optional<lw::ip_address> default_gateway_v4(const std::string& ifname) {
  std::ifstream f("/proc/net/route");
  std::string line;
  std::getline(f, line);
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string iface;
    unsigned long dest = 0, gw = 0;
    ss >> iface >> std::hex >> dest >> gw;
    if (iface == ifname && dest == 0 && gw != 0) {
      in_addr a{};
      a.s_addr = static_cast<std::uint32_t>(gw);  // the file prints the network-order word
      return from_in(a);
    }
  }
  return std::nullopt;
}

/// The IPv6 default gateway through `ifname` (/proc/net/ipv6_route), if there is one.
inline std::optional<lw::ip_address> default_gateway_v6(const std::string& ifname) {
  std::ifstream f("/proc/net/ipv6_route");
  std::string dest, dlen, src, slen, next, metric, ref, use, flags, iface;
  while (f >> dest >> dlen >> src >> slen >> next >> metric >> ref >> use >> flags >> iface) {
    if (iface != ifname || dlen != "00" || next == std::string(32, '0')) continue;
    in6_addr a{};
    for (std::size_t i = 0; i < 16; ++i)
      a.s6_addr[i] = static_cast<std::uint8_t>(std::stoul(next.substr(2 * i, 2), nullptr, 16));
    return from_in6(a);
  }
  return std::nullopt;
}

struct neighbour {
  lw::ip_address ip;
  lw::mac_address mac;
};

/// The kernel's usable neighbour entries on interface `ifindex` (both families), by netlink.
// The netlink walking macros (NLMSG_NEXT, RTA_NEXT) mix int and unsigned lengths.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
inline std::vector<neighbour> kernel_neighbours(int ifindex) {
  std::vector<neighbour> out;
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return out;
  struct {
    nlmsghdr nh;
    ndmsg nd;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = RTM_GETNEIGH;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.nd.ndm_family = AF_UNSPEC;
  if (::send(fd, &req, sizeof req, 0) < 0) {
    ::close(fd);
    return out;
  }
  std::vector<char> buf(1 << 16);
  bool done = false;
  while (!done) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    int left = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
      if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
        done = true;
        break;
      }
      if (nh->nlmsg_type != RTM_NEWNEIGH) continue;
      const auto* nd = static_cast<const ndmsg*>(NLMSG_DATA(nh));
      constexpr auto usable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;
      if (nd->ndm_ifindex != ifindex || (nd->ndm_state & usable) == 0) continue;
      std::optional<lw::ip_address> ip;
      std::optional<lw::mac_address> mac;
      int alen = static_cast<int>(RTM_PAYLOAD(nh));
      for (auto* a = reinterpret_cast<rtattr*>(RTM_RTA(nd)); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == 4)
          ip = from_in(*static_cast<const in_addr*>(RTA_DATA(a)));
        else if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == 16)
          ip = from_in6(*static_cast<const in6_addr*>(RTA_DATA(a)));
        else if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
          lw::mac_address m;
          std::memcpy(m.bytes.data(), RTA_DATA(a), 6);
          mac = m;
        }
      }
      if (ip && mac) out.push_back({*ip, *mac});
    }
  }
  ::close(fd);
  return out;
}
#pragma GCC diagnostic pop

/// Makes the kernel resolve `ip` (ARP / ND): an empty UDP datagram to its discard port (9), the
/// cheapest packet that needs the neighbour. The reply, if any, is a port unreachable.
inline void provoke_resolution(const lw::ip_address& ip) {
  sockaddr_storage to{};
  socklen_t len = 0;
  if (ip.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    a->sin_port = htons(9);
    std::memcpy(&a->sin_addr, ip.v4().bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(9);
    std::memcpy(&a->sin6_addr, ip.v6().bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  const int fd = ::socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, nullptr, 0, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), len);
  ::close(fd);
}

}  // namespace raw
