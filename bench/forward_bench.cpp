// ns/packet for each forwarding method on 64-byte and 1514-byte (1500-byte IP) TCP/IPv4 frames,
// against a baseline in this binary that only copies the frame into the buffer (every measured
// loop copies the original frame first, so "method - baseline" is the rewrite's own cost).
// NAT is also measured with a full recomputation of the IP and TCP checksums instead of RFC 1624
// updates: the incremental update costs the same at any size, the full one grows with the payload.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/tunnel.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/parse.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace l4lb;

constexpr std::size_t headroom = 64;

test::bytes make_frame(std::size_t frame_len) {
  // Ethernet 14 + IPv4 20 + TCP 20 + payload.
  return test::packet_builder{}
      .eth(test::mac("02:00:c6:12:00:0a"), test::mac("02:00:c6:12:00:02"))
      .ipv4("198.18.0.2", "198.18.0.100", {.ident = 0x4785, .dont_frag = true})
      .tcp(35132, 80, wire::tcp_flags::ack, {.seq = 1, .ack = 1})
      .payload(frame_len - 54, 0x42)
      .build();
}

struct fixture {
  test::bytes original;
  std::vector<std::byte> storage;
  forward::frame_buffer buf;
  wire::packet_view pkt;

  explicit fixture(std::size_t frame_len)
      : original(make_frame(frame_len)),
        storage(with_frame(original)),
        buf(*forward::frame_buffer::make(storage, headroom, original.size())),
        pkt(*wire::parse(buf.frame())) {}

  static std::vector<std::byte> with_frame(const test::bytes& frame) {
    std::vector<std::byte> s(headroom + frame.size() + 64);
    std::memcpy(s.data() + headroom, frame.data(), frame.size());
    return s;
  }

  // Puts the original frame back where the parsed view expects it.
  void reset() noexcept {
    std::memcpy(storage.data() + headroom, original.data(), original.size());
    (void)buf.set_frame(headroom, original.size());
  }
};

const forward::nat_connection nat_conn{*wire::endpoint::parse("198.18.0.2:35132"),
                                       *wire::endpoint::parse("198.18.0.100:80"),
                                       *wire::endpoint::parse("198.18.0.11:8080")};

template <class F>
void run(benchmark::State& state, F&& rewrite) {
  fixture fx(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    fx.reset();
    auto r = rewrite(fx);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ns/packet"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_baseline_copy_only(benchmark::State& state) {
  run(state, [](fixture& fx) { return fx.buf.frame().data(); });
}

void BM_dr(benchmark::State& state) {
  forward::dr_config cfg;
  cfg.l2.src = test::mac("02:00:c6:12:00:fe");
  cfg.l2.dst = test::mac("02:00:c6:12:00:0b");
  run(state, [&](fixture& fx) { return forward::direct_route(fx.buf, fx.pkt, cfg).has_value(); });
}

forward::nat_config nat_cfg() {
  forward::nat_config cfg;
  cfg.l2.src = test::mac("02:00:c6:12:00:fe");
  cfg.l2.dst = test::mac("02:00:c6:12:00:0b");
  return cfg;
}

void BM_nat_inbound(benchmark::State& state) {
  const auto cfg = nat_cfg();
  run(state, [&](fixture& fx) { return forward::nat_inbound(fx.buf, fx.pkt, nat_conn, cfg).has_value(); });
}

// The same rewrite with both checksums recomputed from scratch instead of RFC 1624 updates.
void BM_nat_inbound_full_checksums(benchmark::State& state) {
  const auto cfg = nat_cfg();
  run(state, [&](fixture& fx) {
    namespace d = wire::detail;
    auto f = fx.buf.frame();
    std::memcpy(f.data(), cfg.l2.dst.bytes.data(), 6);
    std::memcpy(f.data() + 6, cfg.l2.src.bytes.data(), 6);
    auto ip = fx.pkt.l3();
    auto l4 = fx.pkt.l4();
    std::memcpy(ip.data() + 16, nat_conn.real.address.raw().data(), 4);
    d::store_u8(ip.data() + 8, static_cast<std::uint8_t>(d::load_u8(ip.data() + 8) - 1));
    d::store_be16(l4.data() + 2, nat_conn.real.port);
    d::store_be16(ip.data() + 10, wire::ipv4_header_checksum(ip.first(20)));
    auto pseudo = wire::pseudo_header(wire::ip_family::v4, ip.subspan(12, 4), ip.subspan(16, 4), wire::ip_proto::tcp,
                                      static_cast<std::uint32_t>(l4.size()));
    d::store_be16(l4.data() + 16, wire::tcp_checksum(pseudo, l4));
    return f.data();
  });
}

void BM_nat_outbound(benchmark::State& state) {
  const auto cfg = nat_cfg();
  // The outbound direction on the same frame: treat 198.18.0.100:80 as the real server and
  // 198.18.0.2 as... the client is the destination of a reply, so swap roles: conn where the
  // packet's source (198.18.0.2:35132) is the real server and its destination the client.
  const forward::nat_connection out_conn{*wire::endpoint::parse("198.18.0.100:80"),
                                         *wire::endpoint::parse("198.18.0.200:443"),
                                         *wire::endpoint::parse("198.18.0.2:35132")};
  run(state, [&](fixture& fx) { return forward::nat_outbound(fx.buf, fx.pkt, out_conn, cfg).has_value(); });
}

void BM_full_nat_inbound(benchmark::State& state) {
  const auto cfg = nat_cfg();
  const forward::full_nat_connection conn{nat_conn.client, nat_conn.vip, *wire::endpoint::parse("198.18.0.254:20000"),
                                          nat_conn.real};
  run(state, [&](fixture& fx) { return forward::full_nat_inbound(fx.buf, fx.pkt, conn, cfg).has_value(); });
}

template <forward::tunnel_type Type, forward::tunnel_checksum Checksum>
void BM_tunnel(benchmark::State& state) {
  forward::tunnel_config cfg;
  cfg.type = Type;
  cfg.checksum = Checksum;
  cfg.local = *wire::ip_address::parse("198.18.0.254");
  cfg.gue_port = 6080;
  cfg.l2.src = test::mac("02:00:c6:12:00:fe");
  cfg.l2.dst = test::mac("02:00:c6:12:00:0b");
  const auto real = *wire::ip_address::parse("198.18.0.11");
  run(state, [&](fixture& fx) { return forward::tunnel_encapsulate(fx.buf, fx.pkt, real, cfg).has_value(); });
}

void sizes(benchmark::internal::Benchmark* b) { b->Arg(64)->Arg(1514); }

BENCHMARK(BM_baseline_copy_only)->Apply(sizes);
BENCHMARK(BM_dr)->Apply(sizes);
BENCHMARK(BM_nat_inbound)->Apply(sizes);
BENCHMARK(BM_nat_inbound_full_checksums)->Apply(sizes);
BENCHMARK(BM_nat_outbound)->Apply(sizes);
BENCHMARK(BM_full_nat_inbound)->Apply(sizes);
BENCHMARK(BM_tunnel<forward::tunnel_type::ipip, forward::tunnel_checksum::none>)->Name("BM_tunnel_ipip")->Apply(sizes);
BENCHMARK(BM_tunnel<forward::tunnel_type::gue, forward::tunnel_checksum::none>)->Name("BM_tunnel_gue")->Apply(sizes);
BENCHMARK(BM_tunnel<forward::tunnel_type::gue, forward::tunnel_checksum::csum>)->Name("BM_tunnel_gue_csum")->Apply(sizes);
BENCHMARK(BM_tunnel<forward::tunnel_type::gre, forward::tunnel_checksum::none>)->Name("BM_tunnel_gre")->Apply(sizes);
BENCHMARK(BM_tunnel<forward::tunnel_type::gre, forward::tunnel_checksum::csum>)->Name("BM_tunnel_gre_csum")->Apply(sizes);

}  // namespace
