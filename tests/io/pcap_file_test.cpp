#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "l4lb/io/pcap_file.hpp"

using namespace l4lb::io;

namespace {
std::string data_file(const char* name) { return std::string(L4LB_TEST_DATA_DIR) + "/" + name; }

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}
}  // namespace

TEST_SUITE("io") {
TEST_CASE("pcap_file: the bundled captures hold the packet counts their README states") {
  // tests/data/CAPTURES.md, the "This run: N packets" lines (also `capinfos -c`).
  struct expect { const char* file; std::size_t packets; };
  const expect cases[] = {{"client-vip-http.pcap", 406}, {"udp-dns-like.pcap", 138},
                          {"icmp.pcap", 394},            {"ipv6-http.pcap", 426},
                          {"vlan-tagged.pcap", 163}};
  for (const auto& c : cases) {
    CAPTURE(c.file);
    auto f = pcap_file::read(data_file(c.file));
    REQUIRE(f);
    CHECK(f->linktype() == linktype_ethernet);
    CHECK(f->snaplen() == 262144);
    CHECK(f->records().size() == c.packets);
    std::int64_t last = 0;
    for (const auto& r : f->records()) {
      CHECK(r.data.size() <= 1522);  // README: at most 1514 + two VLAN tags
      CHECK(r.data.size() == r.original_length);
      CHECK(r.timestamp_ns >= last);
      last = r.timestamp_ns;
    }
  }
}

TEST_CASE("pcap_writer: what it writes reads back identically, copies keep valid views") {
  auto in = pcap_file::read(data_file("udp-dns-like.pcap"));
  REQUIRE(in);
  pcap_writer w;
  for (const auto& r : in->records()) w.add(r.timestamp_ns, r.data);
  auto back = pcap_file::from_bytes(w.bytes());
  REQUIRE(back);
  pcap_file copy = *back;  // records must point into the copy's own bytes
  back = pcap_file::from_bytes({});
  REQUIRE(copy.records().size() == in->records().size());
  for (std::size_t i = 0; i < copy.records().size(); ++i) {
    const auto& a = in->records()[i];
    const auto& b = copy.records()[i];
    CHECK(a.timestamp_ns == b.timestamp_ns);
    REQUIRE(a.data.size() == b.data.size());
    CHECK(std::memcmp(a.data.data(), b.data.data(), a.data.size()) == 0);
  }
}

TEST_CASE("pcap_file: malformed files give named errors") {
  pcap_writer w;
  const std::byte frame[60] = {};
  w.add(1'000'000'000, frame);
  const auto good = w.bytes();
  REQUIRE(pcap_file::from_bytes(good));

  CHECK(pcap_file::from_bytes({}).error() == pcap_error::truncated_file_header);
  CHECK(pcap_file::from_bytes(std::vector<std::byte>(good.begin(), good.begin() + 23)).error() ==
        pcap_error::truncated_file_header);
  auto bad_magic = good;
  bad_magic[0] = std::byte{0};
  CHECK(pcap_file::from_bytes(bad_magic).error() == pcap_error::bad_magic);
  auto bad_version = good;
  bad_version[4] = std::byte{3};  // major version 3 (host order of this machine: little-endian)
  CHECK(pcap_file::from_bytes(bad_version).error() == pcap_error::unsupported_version);
  // Every cut inside the record: header cut, then data cut.
  for (std::size_t cut = 25; cut < good.size(); ++cut) {
    CAPTURE(cut);
    auto r = pcap_file::from_bytes(std::vector<std::byte>(good.begin(), good.begin() + static_cast<long>(cut)));
    REQUIRE_FALSE(r);
    CHECK(r.error() == (cut < 24 + 16 ? pcap_error::truncated_record_header : pcap_error::truncated_record));
  }
  // A record header that claims 4 GiB: an error, not a read past the end.
  auto liar = good;
  const std::uint32_t huge = 0xFFFFFFF0u;
  std::memcpy(liar.data() + 24 + 8, &huge, 4);
  CHECK(pcap_file::from_bytes(liar).error() == pcap_error::record_exceeds_snaplen);
  CHECK(pcap_file::read("/nonexistent/file.pcap").error() == pcap_error::cannot_open);
  CHECK(to_string(pcap_error::truncated_record) == "truncated_record");
}

TEST_CASE("pcap_file: big-endian and nanosecond files read the same timestamps") {
  // One 4-byte record at 1.5 s written big-endian with nanosecond resolution (magic a1b23c4d).
  auto be = bytes_of({0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                      0, 0, 0, 1,
                      0, 0, 0, 1, 0x1d, 0xcd, 0x65, 0x00, 0, 0, 0, 4, 0, 0, 0, 4, 1, 2, 3, 4});
  auto f = pcap_file::from_bytes(be);
  REQUIRE(f);
  REQUIRE(f->records().size() == 1);
  CHECK(f->records()[0].timestamp_ns == 1'500'000'000);  // 1 s + 0x1dcd6500 = 500 000 000 ns
  CHECK(f->snaplen() == 65535);
  CHECK(f->records()[0].data[3] == std::byte{4});
}
}
