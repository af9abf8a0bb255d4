// Share-nothing sharding: one connection table per core, and the rule that sends a packet to
// its shard. Both directions of a flow carry the same endpoints, so flow_key::symmetric_hash
// sends them to the same shard. A NAT reply is not the reverse of the client's packet (its
// source is the real server, not the VIP), so NAT steers by the client endpoint instead, which
// both directions carry (source of a request, destination of a reply).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/hash.hpp"

namespace l4lb::conn {

/// Shard of a packet by its flow: the same for the flow and flow.reversed().
[[nodiscard]] inline std::size_t shard_of(const wire::flow_key& flow, std::size_t shards,
                                          std::uint64_t seed = 0) noexcept {
  // Multiply-shift range reduction: uniform for any shard count, no modulo.
  const std::uint64_t h = flow.symmetric_hash(seed);
  return static_cast<std::size_t>(((h >> 32) * shards) >> 32);
}

/// Shard by the client endpoint alone: a NAT request (client → VIP) and its reply
/// (real server → client) map to the same shard.
[[nodiscard]] inline std::size_t shard_of_client(std::uint8_t protocol,
                                                 const wire::endpoint& client, std::size_t shards,
                                                 std::uint64_t seed = 0) noexcept {
  const std::uint64_t h =
      wire::hash_mix(client.hash() ^ seed, (std::uint64_t{protocol} << 16) | client.port);
  return static_cast<std::size_t>(((h >> 32) * shards) >> 32);
}

/// One table per core. Each core uses only its own table (no locks); this holder routes by
/// shard_of for single-threaded callers (replays, tests) and owns the tables.
template <class Table>
class sharded {
 public:
  template <class Config>
  sharded(std::size_t shards, const Config& config, std::uint64_t seed = 0) : seed_(seed) {
    tables_.reserve(shards);
    for (std::size_t i = 0; i < shards; ++i) tables_.emplace_back(config);
  }

  [[nodiscard]] std::size_t size() const noexcept { return tables_.size(); }
  [[nodiscard]] Table& operator[](std::size_t i) noexcept { return tables_[i]; }
  [[nodiscard]] const Table& operator[](std::size_t i) const noexcept { return tables_[i]; }
  [[nodiscard]] std::size_t shard_for(const wire::flow_key& flow) const noexcept {
    return shard_of(flow, tables_.size(), seed_);
  }
  [[nodiscard]] Table& for_flow(const wire::flow_key& flow) noexcept {
    return tables_[shard_for(flow)];
  }

 private:
  std::vector<Table> tables_;
  std::uint64_t seed_ = 0;
};

}  // namespace l4lb::conn
