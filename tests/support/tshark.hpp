// tshark as an independent check of the frames l4lb writes: the frames go into a pcap file and
// tshark prints the fields asked for, one line per frame (its reassembly and checksum validation
// are not ours). Tests skip with a message when tshark is not installed.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "l4lb/io/pcap_file.hpp"

namespace l4lb::test {

inline bool tshark_available() {
  static const bool ok = std::system("tshark -v > /dev/null 2>&1") == 0;
  return ok;
}

/// Writes `frames` (Ethernet) to a temporary pcap, 1 µs apart, and runs `tshark -r <file>
/// <options>`; returns its output lines (stderr dropped).
inline std::vector<std::string> tshark_rows(std::span<const std::span<std::byte>> frames, const std::string& options) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("l4lb_tshark_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  io::pcap_writer w;
  std::int64_t t = 0;
  for (const auto& f : frames) w.add(t += 1000, f);
  const fs::path pcap = dir / "frames.pcap";
  REQUIRE(w.save(pcap.string()));
  const std::string cmd = "tshark -r '" + pcap.string() + "' " + options + " 2>/dev/null";
  std::vector<std::string> rows;
  FILE* p = popen(cmd.c_str(), "r");
  char line[4096];
  while (p != nullptr && fgets(line, sizeof line, p) != nullptr) {
    std::string s(line);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    rows.push_back(s);
  }
  if (p != nullptr) pclose(p);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rows;
}

}  // namespace l4lb::test
