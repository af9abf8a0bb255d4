// TCP header view: the smoltcp six on a real SYN header, the option walker (MSS, window scale,
// SACK-permitted, timestamps), MSS clamping, malformed options and every make() error.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "l4lb/wire/tcp.hpp"
#include "support/packet_builder.hpp"

using namespace l4lb::wire;
using l4lb::test::hex_bytes;

namespace {
// client-vip-http.pcap frame 3 from offset 34: the first SYN's TCP header, 40 bytes.
// tshark -T fields: srcport 35132, seq_raw 1723767245, window 64240, checksum 0xfec7,
// options.mss_val 1460, wscale.shift 10, timestamp.tsval 3466160391. Byte 12 = 0xa0: data
// offset 10 words; byte 13 = 0x02: SYN. Options: MSS(4) SACK-perm(2) TS(10) NOP WS(3).
const auto syn_tcp = hex_bytes(
    "89 3c 00 50 66 be 99 cd 00 00 00 00 a0 02 fa f0 fe c7 00 00"
    "02 04 05 b4 04 02 08 0a ce 99 69 07 00 00 00 00 01 03 03 0a");
}  // namespace

TEST_SUITE("wire") {
  TEST_CASE("tcp_view: reads fields from fixture bytes") {
    auto v = tcp_view::make(syn_tcp);
    REQUIRE(v);
    CHECK(v->src_port() == 35132);
    CHECK(v->dst_port() == 80);
    CHECK(v->seq_number() == 1723767245u);
    CHECK(v->ack_number() == 0);
    CHECK(v->data_offset() == 10);
    CHECK(v->header_len() == 40);
    CHECK(v->flags() == tcp_flags::syn);
    CHECK(v->syn());
    CHECK_FALSE(v->ack());
    CHECK_FALSE(v->fin());
    CHECK_FALSE(v->rst());
    CHECK(v->window() == 64240);
    CHECK(v->checksum() == 0xfec7);
    CHECK(v->urgent_pointer() == 0);
    CHECK(v->options_bytes().size() == 20);
    CHECK(v->payload().empty());
    CHECK(v->mss() == 1460);
    CHECK(v->window_scale() == 10);
    CHECK(v->sack_permitted());
    auto ts = v->timestamps();
    REQUIRE(ts);
    CHECK(ts->first == 3466160391u);
    CHECK(ts->second == 0);
    CHECK(v->check_options() == drop_reason::none);
  }

  TEST_CASE("tcp_view: options come out in wire order with their offsets") {
    auto v = *tcp_view::make(syn_tcp);
    std::vector<std::uint8_t> kinds;
    std::vector<std::size_t> offsets;
    for (const auto& o : v.options()) {
      kinds.push_back(o.kind);
      offsets.push_back(o.offset);
    }
    CHECK(kinds == std::vector<std::uint8_t>{2, 4, 8, 3});
    CHECK(offsets == std::vector<std::size_t>{0, 4, 6, 17});  // the NOP at 16 is padding
  }

  TEST_CASE("tcp_view: setters write exactly the fixture into a 0xa5 buffer") {
    std::vector<std::byte> buf(40, std::byte{0xa5});
    auto v = tcp_mut_view::unchecked(buf);
    v.set_src_port(35132);
    v.set_dst_port(80);
    v.set_seq_number(1723767245u);
    v.set_ack_number(0);
    v.set_data_offset(10);
    v.set_flags(tcp_flags::syn);
    v.set_window(64240);
    v.set_checksum(0xfec7);
    v.set_urgent_pointer(0);
    std::memcpy(buf.data() + 20, syn_tcp.data() + 20, 20);  // the options, as bytes
    CHECK(buf == syn_tcp);
  }

  TEST_CASE("tcp_view: set_mss clamps an existing MSS option in place") {
    auto b = syn_tcp;
    auto v = *tcp_mut_view::make(b);
    CHECK(v.set_mss(1400));
    CHECK(v.mss() == 1400);
    CHECK(b[22] == std::byte{0x05});  // 1400 = 0x0578, at option offset 0 + 2 + header 20
    CHECK(b[23] == std::byte{0x78});
    auto no_opts = hex_bytes("89 3c 00 50 66 be 99 cd 00 00 00 00 50 02 fa f0 00 00 00 00");
    CHECK_FALSE(tcp_mut_view::make(no_opts)->set_mss(1400));
    CHECK_FALSE(tcp_view::make(no_opts)->mss());
  }

  TEST_CASE("tcp_view: make() errors") {
    for (std::size_t n = 0; n < 20; ++n)
      CHECK(tcp_view::make(std::span(syn_tcp).first(n)).error() == drop_reason::truncated_tcp);
    for (std::size_t n = 20; n < 40; ++n)  // data offset says 40
      CHECK(tcp_view::make(std::span(syn_tcp).first(n)).error() == drop_reason::truncated_tcp);
    auto b = syn_tcp;
    b[12] = std::byte{0x40};  // data offset 4 < 5
    CHECK(tcp_view::make(b).error() == drop_reason::bad_tcp_data_offset);
  }

  TEST_CASE("tcp_view: malformed and odd options") {
    auto with = [](const char* opts) {
      auto b = hex_bytes("00 01 00 02 00 00 00 00 00 00 00 00 60 02 00 00 00 00 00 00");
      auto o = hex_bytes(opts);
      b.insert(b.end(), o.begin(), o.end());
      return b;
    };
    // length 1 < 2; length running past the header; a kind without its length byte.
    for (const char* opts : {"02 01 00 00", "02 05 05 b4", "01 01 01 02"}) {
      auto b = with(opts);
      auto v = *tcp_view::make(b);
      CHECK(v.check_options() == drop_reason::bad_tcp_option);
      CHECK_FALSE(v.mss());
    }
    // Known kinds with the wrong length are skipped, not trusted (RFC 9293 3.2: MSS is 4 long).
    auto b = with("02 03 05 00");
    auto v = *tcp_view::make(b);
    CHECK(v.check_options() == drop_reason::none);
    CHECK_FALSE(v.mss());
    // End of list stops the walk.
    auto e = with("00 02 04 05");
    CHECK_FALSE(tcp_view::make(e)->mss());
  }

  TEST_CASE("tcp_repr: parse and emit") {
    const tcp_repr want{35132, 80, 1723767245u, 0, tcp_flags::syn, 64240, 0};
    CHECK(tcp_repr::parse(*tcp_view::make(syn_tcp)) == want);
    std::vector<std::byte> buf(20, std::byte{0xa5});
    want.emit(tcp_mut_view::unchecked(buf));
    // emit writes no options (data offset 5) and a zero checksum for the caller to fill.
    CHECK(buf == hex_bytes("89 3c 00 50 66 be 99 cd 00 00 00 00 50 02 fa f0 00 00 00 00"));
  }
}
