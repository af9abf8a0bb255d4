// l4lb-decap: the real server's side of TUN forwarding without the kernel's ipip / ip6_tunnel
// modules. It reads the IP packets arriving on an interface (AF_PACKET, SOCK_DGRAM: the L3
// packet), takes the inner packet out of IPIP ones (4in4, 6in4, 4in6, 6in6; RFC 2003, RFC 2473)
// with l4lb's own forward::decapsulate, and writes it into a tun device, so the host's stack
// receives the client's packet to the VIP (on its loopback) and answers the client directly.
//
//   l4lb-decap --interface eth0 --tun l4lbtun0
//
// The tun device must exist and be up (`ip tuntap add dev l4lbtun0 mode tun; ip link set
// l4lbtun0 up`), with rp_filter off for it (the inner source, the client, is not routed through
// it). Raw sockets for protocols 4 and 41 are held open so the kernel does not answer each
// tunnel packet with an ICMP protocol unreachable; a filter keeps them from queueing anything.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <l4lb/forward/decap.hpp>

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

int fail(const std::string& what) {
  std::fprintf(stderr, "l4lb-decap: %s: %s\n", what.c_str(), std::strerror(errno));
  return 1;
}

/// A socket that exists only so the kernel sees a listener for `proto`; it queues nothing.
int silent_raw_socket(int family, int proto) {
  const int fd = ::socket(family, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) return -1;
  sock_filter drop_all = BPF_STMT(BPF_RET | BPF_K, 0);
  sock_fprog prog{1, &drop_all};
  (void)::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  return fd;
}

/// Whether `p` is an IPv4 or IPv6 packet whose payload is an IP packet (protocol 4 or 41).
bool is_ipip(const std::byte* p, std::size_t n) {
  if (n < 20) return false;
  const auto version = static_cast<unsigned>(p[0]) >> 4;
  const auto proto = version == 4 ? static_cast<unsigned>(p[9]) : n >= 40 ? static_cast<unsigned>(p[6]) : 0u;
  return (version == 4 || version == 6) && (proto == 4 || proto == 41);
}

}  // namespace

int main(int argc, char** argv) {
  std::string ifname, tunname;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--interface") ifname = argv[i + 1];
    else if (a == "--tun") tunname = argv[i + 1];
  }
  if (ifname.empty() || tunname.empty() || tunname.size() >= IFNAMSIZ) {
    std::fprintf(stderr, "usage: l4lb-decap --interface IF --tun TUNDEV\n");
    return 2;
  }
  const int ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return fail("interface '" + ifname + "'");
  const int tun = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tun < 0) return fail("/dev/net/tun");
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, tunname.data(), tunname.size());
  if (::ioctl(tun, TUNSETIFF, &ifr) != 0) return fail("attach to tun device '" + tunname + "'");
  std::vector<int> socks;
  for (const int proto : {ETH_P_IP, ETH_P_IPV6}) {
    const int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(static_cast<std::uint16_t>(proto)));
    if (fd < 0) return fail("AF_PACKET socket (needs CAP_NET_RAW)");
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(static_cast<std::uint16_t>(proto));
    sll.sll_ifindex = ifindex;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) return fail("bind");
    socks.push_back(fd);
  }
  std::vector<int> silent;
  for (const int family : {AF_INET, AF_INET6})
    for (const int proto : {IPPROTO_IPIP, IPPROTO_IPV6}) silent.push_back(silent_raw_socket(family, proto));
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::vector<pollfd> fds;
  for (int fd : socks) fds.push_back({fd, POLLIN, 0});
  std::vector<std::byte> buf(65536);
  std::uint64_t in = 0, out = 0, bad = 0;
  while (!g_stop) {
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (const auto& p : fds) {
      if ((p.revents & POLLIN) == 0) continue;
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      const ssize_t n = ::recvfrom(p.fd, buf.data(), buf.size(), MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&from), &fl);
      if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING) continue;
      if (!is_ipip(buf.data(), static_cast<std::size_t>(n))) continue;
      ++in;
      auto d = l4lb::forward::decapsulate(std::span(buf.data(), static_cast<std::size_t>(n)));
      if (!d) {
        ++bad;
        continue;
      }
      if (::write(tun, d->inner.data(), d->inner.size()) == static_cast<ssize_t>(d->inner.size())) ++out;
    }
  }
  std::fprintf(stderr, "l4lb-decap: %llu tunnel packets, %llu delivered, %llu malformed\n",
               static_cast<unsigned long long>(in), static_cast<unsigned long long>(out),
               static_cast<unsigned long long>(bad));
  for (int fd : silent)
    if (fd >= 0) ::close(fd);
  return 0;
}
