#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "conn/conn_support.hpp"
#include "l4lb/conn/conn_table.hpp"
#include "l4lb/conn/shard.hpp"

using namespace conn_test;
using l4lb::wire::endpoint;
using l4lb::wire::flow_key;

namespace {

flow_key random_flow(std::mt19937_64& rng, bool v6) {
  flow_key f;
  f.family = v6 ? l4lb::wire::ip_family::v6 : l4lb::wire::ip_family::v4;
  for (std::size_t i = 0; i < (v6 ? 16u : 4u); ++i) {
    f.src_addr[i] = static_cast<std::uint8_t>(rng());
    f.dst_addr[i] = static_cast<std::uint8_t>(rng());
  }
  f.src_port = static_cast<std::uint16_t>(rng());
  f.dst_port = static_cast<std::uint16_t>(rng());
  f.protocol = rng() % 2 ? tcp : udp;
  return f;
}

}  // namespace

TEST_SUITE("conn") {
TEST_CASE("shard: both directions of a flow map to the same shard (symmetric hash)") {
  std::mt19937_64 rng(11);
  for (std::size_t shards : {1u, 2u, 3u, 8u, 24u}) {
    std::vector<std::size_t> load(shards);
    for (int i = 0; i < 4000; ++i) {
      const flow_key f = random_flow(rng, i % 2 == 1);
      const std::size_t s = shard_of(f, shards);
      REQUIRE(s < shards);
      CHECK(shard_of(f.reversed(), shards) == s);
      ++load[s];
    }
    // Every shard gets flows (4000 flows; an empty shard would mean a broken reduction).
    for (std::size_t s = 0; s < shards; ++s) CHECK(load[s] > 0);
  }
}

TEST_CASE("shard: a NAT request and its reply share the client endpoint's shard") {
  // Request client:cport -> VIP:vport; reply real server:port -> client:cport. The two are not
  // reverses of each other, so the symmetric hash cannot match them; the client endpoint can.
  std::mt19937_64 rng(12);
  for (int i = 0; i < 2000; ++i) {
    const flow_key request = random_flow(rng, i % 2 == 1);
    flow_key reply = random_flow(rng, i % 2 == 1);  // from some server ...
    reply.protocol = request.protocol;
    reply.dst_addr = request.src_addr;               // ... to the client
    reply.dst_port = request.src_port;
    CHECK(shard_of_client(request.protocol, request.src(), 8) ==
          shard_of_client(reply.protocol, reply.dst(), 8));
  }
}

TEST_CASE("shard: one table per shard; a flow's packets in both directions find its entry") {
  conn_table_config cfg;
  cfg.capacity = 1000;
  cfg.max_dests = 4;
  sharded<conn_table_v4> tables(4, cfg);
  REQUIRE(tables.size() == 4);
  std::mt19937_64 rng(13);
  std::vector<flow_key> flows;
  for (int i = 0; i < 500; ++i) {
    const flow_key f = random_flow(rng, false);
    auto& t = tables.for_flow(f);
    if (t.insert(conn_key_v4::from_flow(f), new_conn{1, false, no_template}, sec)) flows.push_back(f);
  }
  std::size_t used = 0;
  for (std::size_t s = 0; s < 4; ++s) used += tables[s].size() > 0;
  CHECK(used == 4);
  for (const flow_key& f : flows) {
    // A packet the other way (e.g. a reply the director sees for DR/TUN): same shard, and there
    // the reply lookup finds the client's connection.
    const flow_key back = f.reversed();
    auto& t = tables.for_flow(back);
    CHECK(&t == &tables.for_flow(f));
    CHECK(t.find_reply(reply_key_v4::from_flow(back), sec) != no_conn);
  }
}
}
