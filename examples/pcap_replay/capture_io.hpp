// Capture files for l4lb-replay: libpcap reads (classic pcap in either byte order, µs or ns, and
// pcapng; Ethernet, and Linux cooked SLL / SLL2 turned into Ethernet frames), and two small
// writers of our own: classic pcap with nanosecond timestamps, and pcapng with a comment per
// packet (Wireshark shows it; `tshark -Y frame.comment`).
//
// Why libpcap for reading: it already reads every variant a user has (pcapng sections, both byte
// orders, nanosecond files, cooked captures from `tcpdump -i any`), and its filter compiler is
// what --mark needs. Why our own writers: the output must be byte-identical run after run, and
// libpcap cannot write pcapng or per-packet comments.
// References: draft-ietf-opsawg-pcap (classic format), draft-ietf-opsawg-pcapng (blocks, options),
// tcpdump.org LINKTYPE_LINUX_SLL / LINKTYPE_LINUX_SLL2.
#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace replay {

/// One frame read from a capture, as Ethernet (cooked frames get a synthetic Ethernet header).
struct input_frame {
  std::int64_t time_ns = 0;
  std::span<const std::byte> bytes;  ///< valid until the next read
  std::uint32_t original_len = 0;    ///< the length on the wire (truncated captures: > bytes)
};

class capture_reader {
 public:
  capture_reader() = default;
  capture_reader(const capture_reader&) = delete;
  capture_reader& operator=(const capture_reader&) = delete;
  ~capture_reader() {
    if (p_) pcap_close(p_);
  }

  /// Opens `path`; false with error() set when it cannot be read or its link type is not
  /// Ethernet, Linux cooked (SLL) or SLL2.
  bool open(const std::string& path) {
    char err[PCAP_ERRBUF_SIZE] = {};
    p_ = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
    if (!p_) {
      error_ = err;
      return false;
    }
    link_ = pcap_datalink(p_);
    if (link_ != DLT_EN10MB && link_ != DLT_LINUX_SLL && link_ != DLT_LINUX_SLL2) {
      error_ = "link type " + std::to_string(link_) + " (" +
               (pcap_datalink_val_to_name(link_) ? pcap_datalink_val_to_name(link_) : "?") +
               ") is not Ethernet, Linux cooked (SLL) or SLL2";
      return false;
    }
    if (FILE* f = pcap_file(p_)) {
      const long at = std::ftell(f);
      if (std::fseek(f, 0, SEEK_END) == 0) size_ = std::ftell(f);
      std::fseek(f, at, SEEK_SET);
    }
    return true;
  }

  /// The next frame: 1 = a frame, 0 = end of file, -1 = a corrupt or truncated file (error()).
  int next(input_frame& out) {
    pcap_pkthdr* h = nullptr;
    const u_char* d = nullptr;
    const int rc = pcap_next_ex(p_, &h, &d);
    if (rc == PCAP_ERROR_BREAK) return 0;
    if (rc != 1) {
      error_ = pcap_geterr(p_);
      return -1;
    }
    ++frames_;
    out.time_ns = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000'000 + h->ts.tv_usec;
    out.original_len = h->len;
    const auto* b = reinterpret_cast<const std::byte*>(d);
    if (link_ == DLT_EN10MB) {
      out.bytes = std::span(b, h->caplen);
      return 1;
    }
    out.bytes = cooked_to_ethernet(std::span(b, h->caplen));
    return 1;
  }

  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] pcap_t* handle() const noexcept { return p_; }
  [[nodiscard]] int link_type() const noexcept { return link_; }
  [[nodiscard]] std::uint64_t frames() const noexcept { return frames_; }
  /// Bytes of the file read so far and its size (for progress); 0 when unknown.
  [[nodiscard]] long position() const noexcept {
    FILE* f = p_ ? pcap_file(p_) : nullptr;
    return f ? std::ftell(f) : 0;
  }
  [[nodiscard]] long size() const noexcept { return size_; }

 private:
  // SLL: 16-byte header, protocol at 14. SLL2: 20 bytes, protocol at 0. The frame becomes
  // Ethernet with zero MACs and the protocol as EtherType (the director only reads L3 and up,
  // and rewrites the MACs of what it forwards).
  std::span<const std::byte> cooked_to_ethernet(std::span<const std::byte> in) {
    const std::size_t hdr = link_ == DLT_LINUX_SLL ? 16 : 20;
    const std::size_t proto_at = link_ == DLT_LINUX_SLL ? 14 : 0;
    if (in.size() < hdr) {
      cooked_.assign(in.begin(), in.end());  // too short: the parser names it
      return cooked_;
    }
    cooked_.assign(14 + in.size() - hdr, std::byte{0});
    cooked_[12] = in[proto_at];
    cooked_[13] = in[proto_at + 1];
    std::memcpy(cooked_.data() + 14, in.data() + hdr, in.size() - hdr);
    return cooked_;
  }

  pcap_t* p_ = nullptr;
  int link_ = 0;
  long size_ = 0;
  std::uint64_t frames_ = 0;
  std::string error_;
  std::vector<std::byte> cooked_;
};

/// Writes frames to a classic pcap file (nanosecond magic, LINKTYPE_ETHERNET) or, when the name
/// ends in .pcapng, to pcapng with an optional comment per packet. Every record is written whole,
/// so a file cut short by an error is still valid up to its last record.
class capture_writer {
 public:
  capture_writer() = default;
  capture_writer(const capture_writer&) = delete;
  capture_writer& operator=(const capture_writer&) = delete;
  ~capture_writer() { close(); }

  bool open(const std::string& path) {
    pcapng_ = path.size() >= 7 && path.compare(path.size() - 7, 7, ".pcapng") == 0;
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) return false;
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    buf_.clear();
    if (pcapng_) {
      // Section Header Block: byte-order magic, version 1.0, section length unknown.
      block(0x0A0D0D0A, [&] {
        put32(0x1A2B3C4D);
        put16(1);
        put16(0);
        put64(0xFFFFFFFFFFFFFFFFull);
      });
      // Interface Description Block: Ethernet, no snaplen limit, if_tsresol = 9 (nanoseconds).
      block(0x00000001, [&] {
        put16(1);
        put16(0);
        put32(0);
        put16(9);  // option if_tsresol
        put16(1);
        buf_.push_back(std::byte{9});
        pad4();
        put16(0);  // opt_endofopt
        put16(0);
      });
    } else {
      put32(0xA1B23C4D);  // nanosecond-resolution classic pcap
      put16(2);
      put16(4);
      put32(0);
      put32(0);
      put32(262144);
      put32(1);  // LINKTYPE_ETHERNET
    }
    return flush();
  }

  bool write(std::int64_t time_ns, std::span<const std::byte> frame, std::string_view comment = {}) {
    if (!f_) return false;
    buf_.clear();
    const auto len = static_cast<std::uint32_t>(frame.size());
    if (pcapng_) {
      // Enhanced Packet Block with opt_comment.
      block(0x00000006, [&] {
        put32(0);
        const auto t = static_cast<std::uint64_t>(time_ns);
        put32(static_cast<std::uint32_t>(t >> 32));
        put32(static_cast<std::uint32_t>(t));
        put32(len);
        put32(len);
        buf_.insert(buf_.end(), frame.begin(), frame.end());
        pad4();
        if (!comment.empty()) {
          put16(1);  // opt_comment
          put16(static_cast<std::uint16_t>(comment.size()));
          for (char c : comment) buf_.push_back(static_cast<std::byte>(c));
          pad4();
          put16(0);
          put16(0);
        }
      });
    } else {
      put32(static_cast<std::uint32_t>(time_ns / 1'000'000'000));
      put32(static_cast<std::uint32_t>(time_ns % 1'000'000'000));
      put32(len);
      put32(len);
      buf_.insert(buf_.end(), frame.begin(), frame.end());
    }
    ++written_;
    return flush();
  }

  void close() {
    if (f_) std::fclose(f_);
    f_ = nullptr;
  }
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }

 private:
  template <class Body>
  void block(std::uint32_t type, Body body) {
    const std::size_t start = buf_.size();
    put32(type);
    put32(0);  // total length, patched below
    body();
    const auto total = static_cast<std::uint32_t>(buf_.size() - start + 4);
    std::memcpy(buf_.data() + start + 4, &total, 4);
    put32(total);
  }
  void put16(std::uint16_t v) { append(&v, 2); }
  void put32(std::uint32_t v) { append(&v, 4); }
  void put64(std::uint64_t v) { append(&v, 8); }
  void append(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void pad4() {
    while (buf_.size() % 4) buf_.push_back(std::byte{0});
  }
  bool flush() { return std::fwrite(buf_.data(), 1, buf_.size(), f_) == buf_.size(); }

  std::FILE* f_ = nullptr;
  bool pcapng_ = false;
  std::vector<std::byte> buf_;
  std::uint64_t written_ = 0;
};

}  // namespace replay
