// UDP header view: the smoltcp six on a real DNS query, the length rules and the first-fragment form.
#include <doctest/doctest.h>

#include <vector>

#include "l4lb/wire/udp.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;

namespace {
// udp-dns-like.pcap frame 1 from offset 34 (tshark -x). tshark -T fields: udp.srcport 59983,
// dstport 53, length 72, checksum 0xc6a9. 8 header bytes + 64 bytes of DNS query.
const auto dns_query = hex_bytes(
    "ea 4f 00 35 00 48 c6 a9 fb 32 01 20 00 01 00 00 00 00 00 01 05 68 6f 73 74 31 04 63"
    "6c 69 31 07 65 78 61 6d 70 6c 65 04 74 65 73 74 00 00 01 00 01 00 00 29 04 d0 00 00"
    "00 00 00 0c 00 0a 00 08 27 b1 19 da fa 69 73 32");
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("udp_view: reads fields from fixture bytes") {
    REQUIRE(dns_query.size() == 72);
    auto v = udp_view::make(dns_query);
    REQUIRE(v);
    CHECK(v->src_port() == 59983);
    CHECK(v->dst_port() == 53);
    CHECK(v->length() == 72);
    CHECK(v->checksum() == 0xc6a9);
    CHECK(v->payload().size() == 64);
    CHECK(v->payload()[0] == std::byte{0xfb});  // DNS id 0xfb32 (tshark: "query 0xfb32")
  }

  TEST_CASE("udp_view: setters write exactly the fixture header into a 0xa5 buffer") {
    std::vector<std::byte> buf(8, std::byte{0xa5});
    auto v = udp_mut_view::unchecked(buf);
    v.set_src_port(59983);
    v.set_dst_port(53);
    v.set_length(72);
    v.set_checksum(0xc6a9);
    CHECK(buf == std::vector<std::byte>(dns_query.begin(), dns_query.begin() + 8));
  }

  TEST_CASE("udp_view: make() errors and the length field") {
    for (std::size_t n = 0; n < 8; ++n)
      CHECK(udp_view::make(std::span(dns_query).first(n)).error() == drop_reason::truncated_udp);
    // Length 72 but 71 bytes present: bad length (the datagram is cut).
    CHECK(udp_view::make(std::span(dns_query).first(71)).error() == drop_reason::bad_udp_length);
    auto b = dns_query;
    b[5] = std::byte{7};  // length 7 < 8
    CHECK(udp_view::make(b).error() == drop_reason::bad_udp_length);
    // A length below the bytes present bounds the payload (RFC 768: length covers the datagram).
    b = dns_query;
    b[5] = std::byte{10};
    auto v = udp_view::make(b);
    REQUIRE(v);
    CHECK(v->payload().size() == 2);
    // The first fragment of a datagram: its length counts bytes still to come.
    auto head = udp_view::make_header_only(std::span(dns_query).first(20));
    REQUIRE(head);
    CHECK(head->length() == 72);
    CHECK(head->payload().size() == 12);  // bounded by the span
    CHECK(udp_view::make_header_only(std::span(dns_query).first(7)).error() == drop_reason::truncated_udp);
  }

  TEST_CASE("udp_repr: parse and emit") {
    const udp_repr want{59983, 53, 64};
    CHECK(udp_repr::parse(*udp_view::make(dns_query)) == want);
    std::vector<std::byte> buf(8, std::byte{0xa5});
    want.emit(udp_mut_view::unchecked(buf));
    CHECK(buf == hex_bytes("ea 4f 00 35 00 48 00 00"));  // checksum left 0 for the caller
  }
}
