// One AF_PACKET socket with a TPACKET_V3 receive ring, joined to a fanout group: the frames of
// one interface (a worker's share of them) in blocks, processed in place, and sent back out with
// sendmmsg. l4lb-director gives each worker one of these per interface.
//
// Design notes (packet(7), Documentation/networking/packet_mmap.rst)
// - RX: TPACKET_V3 fills variable-size frames into blocks and hands a block over when it is full
//   or after tp_retire_blk_tov ms, so one wake-up brings a burst. PACKET_RESERVE leaves
//   `headroom` bytes before each frame in the ring: the director's rewriters (a tunnel header)
//   work on the ring's memory without a copy.
// - TX: sendmmsg of the verdicts' spans (they point into the ring or the director's arenas),
//   with PACKET_QDISC_BYPASS. A TX ring would need a copy of every frame into it; not measured
//   against this (see README).
// - PACKET_IGNORE_OUTGOING: the socket does not see frames the host (or we) send.
// - Frames whose L4 checksum the sender left to the NIC (TP_STATUS_CSUMNOTREADY: veth and
//   containers) are finished here before the director sees them, since the frame we send is not
//   offloaded again.
#pragma once

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <l4lb/wire/checksum.hpp>
#include <l4lb/wire/parse.hpp>

namespace raw {

[[noreturn]] inline void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

struct ring_config {
  std::uint32_t block_size = 1u << 18;  // 256 KiB
  std::uint32_t block_count = 32;
  std::uint32_t frame_size = 2048;      // upper bound of one frame in a block (snap length)
  std::uint32_t retire_ms = 1;          // hand over a partly filled block after 1 ms
  std::uint32_t headroom = 128;         // PACKET_RESERVE: room for an outer IPv6 + UDP + GUE
};

/// One frame of a received block.
struct rx_frame {
  std::span<std::byte> storage;  ///< headroom + the frame (what a rewriter may touch; no tail)
  std::size_t headroom = 0;
  std::size_t len = 0;
  bool truncated = false;        ///< longer than the ring's frame size
};

class packet_socket {
 public:
  packet_socket(int ifindex, const ring_config& rc) : ifindex_(ifindex), rc_(rc) {
    fd_ = ::socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd_ < 0) {
      if (errno == EPERM || errno == EACCES)
        fail("AF_PACKET socket (l4lb-director needs CAP_NET_RAW: run it as root or "
             "setcap cap_net_raw,cap_net_admin+ep)");
      fail("AF_PACKET socket");
    }
    int v = TPACKET_V3;
    set(PACKET_VERSION, v, "PACKET_VERSION");
    int reserve = static_cast<int>(rc_.headroom);
    set(PACKET_RESERVE, reserve, "PACKET_RESERVE");
    int one = 1;
    set(PACKET_QDISC_BYPASS, one, "PACKET_QDISC_BYPASS");
    set(PACKET_IGNORE_OUTGOING, one, "PACKET_IGNORE_OUTGOING");
    tpacket_req3 req{};
    req.tp_block_size = rc_.block_size;
    req.tp_block_nr = rc_.block_count;
    req.tp_frame_size = rc_.frame_size;
    req.tp_frame_nr = rc_.block_size / rc_.frame_size * rc_.block_count;
    req.tp_retire_blk_tov = rc_.retire_ms;
    set(PACKET_RX_RING, req, "PACKET_RX_RING");
    ring_bytes_ = std::size_t{rc_.block_size} * rc_.block_count;
    void* m = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) fail("mmap of the packet ring");
    ring_ = static_cast<std::byte*>(m);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex_;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) fail("bind AF_PACKET");
  }
  ~packet_socket() {
    if (ring_) ::munmap(ring_, ring_bytes_);
    if (fd_ >= 0) ::close(fd_);
  }
  packet_socket(const packet_socket&) = delete;
  packet_socket& operator=(const packet_socket&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] int ifindex() const noexcept { return ifindex_; }

  /// Joins fanout group `group` (PACKET_FANOUT_CBPF: `program` picks the member).
  void join_fanout(std::uint16_t group, const std::vector<sock_filter>* program) {
    int arg = group | (PACKET_FANOUT_CBPF << 16);
    set(PACKET_FANOUT, arg, "PACKET_FANOUT");
    if (program) set_fanout_program(*program);
  }
  /// Replaces the group's steering program (any member may; the kernel swaps it under RCU).
  void set_fanout_program(const std::vector<sock_filter>& program) {
    sock_fprog fp{};
    fp.len = static_cast<unsigned short>(program.size());
    fp.filter = const_cast<sock_filter*>(program.data());
    set(PACKET_FANOUT_DATA, fp, "PACKET_FANOUT_DATA");
  }

  /// Waits up to `timeout_ms` for the next block; calls `each(rx_frame&)` for its frames, then
  /// `done()` (which must have sent everything that points into the block), then releases it.
  template <class Each, class Done>
  bool next_block(int timeout_ms, Each&& each, Done&& done) {
    auto* bd = reinterpret_cast<tpacket_block_desc*>(ring_ + std::size_t{current_} * rc_.block_size);
    if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
      pollfd p{fd_, POLLIN | POLLERR, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return false;
      if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0)
        return false;
    }
    auto* base = reinterpret_cast<std::byte*>(bd);
    auto* h = reinterpret_cast<tpacket3_hdr*>(base + bd->hdr.bh1.offset_to_first_pkt);
    // TPACKET_ALIGN(sizeof(tpacket3_hdr)): where the kernel's reserve and the frame begin.
    constexpr std::size_t first_data = (sizeof(tpacket3_hdr) + TPACKET_ALIGNMENT - 1) & ~std::size_t{TPACKET_ALIGNMENT - 1};
    for (std::uint32_t i = 0; i < bd->hdr.bh1.num_pkts; ++i) {
      auto* hb = reinterpret_cast<std::byte*>(h);
      rx_frame f;
      f.headroom = h->tp_mac - first_data;
      f.len = h->tp_snaplen;
      f.truncated = h->tp_snaplen < h->tp_len;
      // The reserve before the frame is ours to write; the bytes after it may be the next
      // frame's header, so no tailroom.
      f.storage = std::span<std::byte>(hb + first_data, f.headroom + f.len);
      if ((h->tp_status & TP_STATUS_CSUMNOTREADY) != 0) finish_checksum(f.storage.subspan(f.headroom, f.len));
      each(f);
      h = reinterpret_cast<tpacket3_hdr*>(hb + h->tp_next_offset);
    }
    done();
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    current_ = (current_ + 1) % rc_.block_count;
    return true;
  }

  /// Sends `frames` out of `ifindex` (one sendmmsg per 64); returns how many were accepted.
  std::size_t send(std::span<const std::span<std::byte>> frames, int ifindex) {
    std::size_t sent = 0;
    while (sent < frames.size()) {
      const std::size_t n = std::min<std::size_t>(frames.size() - sent, max_batch);
      sockaddr_ll to{};
      to.sll_family = AF_PACKET;
      to.sll_ifindex = ifindex;
      to.sll_halen = ETH_ALEN;
      for (std::size_t i = 0; i < n; ++i) {
        iov_[i].iov_base = frames[sent + i].data();
        iov_[i].iov_len = frames[sent + i].size();
        msgs_[i] = {};
        msgs_[i].msg_hdr.msg_name = &to;
        msgs_[i].msg_hdr.msg_namelen = sizeof to;
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
      }
      const int r = ::sendmmsg(fd_, msgs_, static_cast<unsigned>(n), 0);
      if (r <= 0) {
        if (errno == EINTR) continue;
        ++send_errors_;
        break;  // ENOBUFS and the like: the rest of this batch is lost, counted
      }
      sent += static_cast<std::size_t>(r);
    }
    return sent;
  }
  [[nodiscard]] std::uint64_t send_errors() const noexcept { return send_errors_; }

  /// What the kernel dropped because the ring was full (PACKET_STATISTICS; reading resets it).
  [[nodiscard]] tpacket_stats_v3 statistics() const {
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (::getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) st = {};
    return st;
  }

 private:
  static constexpr std::size_t max_batch = 64;

  template <class T>
  void set(int opt, const T& v, const char* name) {
    if (::setsockopt(fd_, SOL_PACKET, opt, &v, sizeof v) != 0) fail(name);
  }

  /// The sender left the L4 checksum field holding the pseudo-header sum (CHECKSUM_PARTIAL);
  /// summing the whole segment with it in place gives the final value.
  static void finish_checksum(std::span<std::byte> frame) noexcept {
    auto p = l4lb::wire::parse(frame, {false, true});
    if (!p || !p->has_l4_header() || p->is_fragment()) return;
    if (p->protocol() != 6 && p->protocol() != 17) return;
    // The segment's sum with the pseudo-header sum in the field, complemented (RFC 1071).
    std::uint16_t c = l4lb::wire::internet_checksum(p->l4());
    if (p->protocol() == 6) {
      p->tcp().set_checksum(c);
    } else {
      if (c == 0) c = 0xFFFF;  // RFC 768: a computed zero is sent as all ones
      p->udp().set_checksum(c);
    }
  }

  int fd_ = -1;
  int ifindex_ = 0;
  ring_config rc_;
  std::byte* ring_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::uint32_t current_ = 0;
  std::uint64_t send_errors_ = 0;
  iovec iov_[max_batch]{};
  mmsghdr msgs_[max_batch]{};
};

}  // namespace raw
