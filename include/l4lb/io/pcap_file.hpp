// Classic pcap files (the tcpdump format, not pcapng) read from and written to memory, with the
// standard library only: replay a capture with its own timestamps, write rewritten frames back.
// Reference: the pcap file format as documented by tcpdump.org / draft-ietf-opsawg-pcap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/expected.hpp"

namespace l4lb::io {

enum class pcap_error : std::uint8_t {
  cannot_open,
  truncated_file_header,
  bad_magic,
  unsupported_version,
  truncated_record_header,
  truncated_record,        // the record header promises more bytes than the file holds
  record_exceeds_snaplen,  // incl_len > snaplen: the file lies about its sizes
  cannot_write,
};

[[nodiscard]] constexpr std::string_view to_string(pcap_error e) noexcept {
  switch (e) {
    case pcap_error::cannot_open: return "cannot_open";
    case pcap_error::truncated_file_header: return "truncated_file_header";
    case pcap_error::bad_magic: return "bad_magic";
    case pcap_error::unsupported_version: return "unsupported_version";
    case pcap_error::truncated_record_header: return "truncated_record_header";
    case pcap_error::truncated_record: return "truncated_record";
    case pcap_error::record_exceeds_snaplen: return "record_exceeds_snaplen";
    case pcap_error::cannot_write: return "cannot_write";
  }
  return "unknown";
}

inline constexpr std::uint32_t linktype_ethernet = 1;

/// One captured frame: a view into the file's bytes.
struct pcap_record {
  std::int64_t timestamp_ns = 0;  // since the epoch, from the record header
  std::uint32_t original_length = 0;
  std::span<const std::byte> data;  // incl_len bytes
};

/// A whole pcap file held in memory; records are views into it.
class pcap_file {
 public:
  /// Parses the whole buffer; a file with a bad record is an error (no silent truncation).
  [[nodiscard]] static expected<pcap_file, pcap_error> from_bytes(std::vector<std::byte> bytes) {
    pcap_file f;
    f.bytes_ = std::move(bytes);
    if (auto e = f.index(); e != ok) return unexpected{static_cast<pcap_error>(e)};
    return f;
  }

  [[nodiscard]] static expected<pcap_file, pcap_error> read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return unexpected{pcap_error::cannot_open};
    std::vector<std::byte> bytes;
    in.seekg(0, std::ios::end);
    auto size = in.tellg();
    if (size < 0) return unexpected{pcap_error::cannot_open};
    in.seekg(0, std::ios::beg);
    bytes.resize(static_cast<std::size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), size);
    if (!in) return unexpected{pcap_error::cannot_open};
    return from_bytes(std::move(bytes));
  }

  [[nodiscard]] const std::vector<pcap_record>& records() const noexcept { return records_; }
  [[nodiscard]] std::uint32_t linktype() const noexcept { return linktype_; }
  [[nodiscard]] std::uint32_t snaplen() const noexcept { return snaplen_; }

  pcap_file(const pcap_file& o) { *this = o; }
  pcap_file& operator=(const pcap_file& o) {
    if (this != &o) {
      bytes_ = o.bytes_;
      index();
    }
    return *this;
  }
  pcap_file(pcap_file&&) noexcept = default;  // vector move keeps the data pointer
  pcap_file& operator=(pcap_file&&) noexcept = default;

 private:
  pcap_file() = default;
  static constexpr int ok = -1;

  std::uint32_t u32(std::size_t at) const noexcept {
    std::uint32_t v;
    std::memcpy(&v, bytes_.data() + at, 4);
    return swapped_ ? __builtin_bswap32(v) : v;
  }
  std::uint16_t u16(std::size_t at) const noexcept {
    std::uint16_t v;
    std::memcpy(&v, bytes_.data() + at, 2);
    return swapped_ ? __builtin_bswap16(v) : v;
  }

  int index() {
    records_.clear();
    if (bytes_.size() < 24) return static_cast<int>(pcap_error::truncated_file_header);
    std::uint32_t magic;
    std::memcpy(&magic, bytes_.data(), 4);
    switch (magic) {
      case 0xa1b2c3d4: swapped_ = false; nanos_ = false; break;
      case 0xd4c3b2a1: swapped_ = true; nanos_ = false; break;
      case 0xa1b23c4d: swapped_ = false; nanos_ = true; break;
      case 0x4d3cb2a1: swapped_ = true; nanos_ = true; break;
      default: return static_cast<int>(pcap_error::bad_magic);
    }
    if (u16(4) != 2) return static_cast<int>(pcap_error::unsupported_version);
    snaplen_ = u32(16);
    linktype_ = u32(20) & 0x0fffffffu;  // upper bits carry FCS information
    std::size_t at = 24;
    while (at < bytes_.size()) {
      if (bytes_.size() - at < 16) return static_cast<int>(pcap_error::truncated_record_header);
      std::uint32_t sec = u32(at), frac = u32(at + 4), incl = u32(at + 8), orig = u32(at + 12);
      at += 16;
      if (incl > (snaplen_ > 262144 ? snaplen_ : 262144u))  // no real frame is larger
        return static_cast<int>(pcap_error::record_exceeds_snaplen);
      if (bytes_.size() - at < incl) return static_cast<int>(pcap_error::truncated_record);
      pcap_record r;
      r.timestamp_ns = std::int64_t{sec} * 1'000'000'000 + std::int64_t{frac} * (nanos_ ? 1 : 1000);
      r.original_length = orig;
      r.data = std::span<const std::byte>(bytes_.data() + at, incl);
      records_.push_back(r);
      at += incl;
    }
    return ok;
  }

  std::vector<std::byte> bytes_;
  std::vector<pcap_record> records_;
  std::uint32_t snaplen_ = 0;
  std::uint32_t linktype_ = 0;
  bool swapped_ = false;
  bool nanos_ = false;
};

/// Writes a classic microsecond pcap file, host byte order (readers handle either order).
class pcap_writer {
 public:
  explicit pcap_writer(std::uint32_t linktype = linktype_ethernet, std::uint32_t snaplen = 262144)
      : snaplen_(snaplen) {
    put32(0xa1b2c3d4);
    put16(2);
    put16(4);
    put32(0);  // thiszone
    put32(0);  // sigfigs
    put32(snaplen);
    put32(linktype);
  }

  void add(std::int64_t timestamp_ns, std::span<const std::byte> frame) {
    auto len = static_cast<std::uint32_t>(frame.size());
    auto incl = len < snaplen_ ? len : snaplen_;
    put32(static_cast<std::uint32_t>(timestamp_ns / 1'000'000'000));
    put32(static_cast<std::uint32_t>((timestamp_ns % 1'000'000'000) / 1000));
    put32(incl);
    put32(len);
    bytes_.insert(bytes_.end(), frame.begin(), frame.begin() + incl);
  }

  [[nodiscard]] const std::vector<std::byte>& bytes() const noexcept { return bytes_; }

  [[nodiscard]] expected<bool, pcap_error> save(const std::string& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return unexpected{pcap_error::cannot_write};
    out.write(reinterpret_cast<const char*>(bytes_.data()),
              static_cast<std::streamsize>(bytes_.size()));
    if (!out) return unexpected{pcap_error::cannot_write};
    return true;
  }

 private:
  void put32(std::uint32_t v) {
    std::byte b[4];
    std::memcpy(b, &v, 4);
    bytes_.insert(bytes_.end(), b, b + 4);
  }
  void put16(std::uint16_t v) {
    std::byte b[2];
    std::memcpy(b, &v, 2);
    bytes_.insert(bytes_.end(), b, b + 2);
  }

  std::vector<std::byte> bytes_;
  std::uint32_t snaplen_;
};

}  // namespace l4lb::io
