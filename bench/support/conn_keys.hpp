// The connection keys and table settings bench/conn_bench.cpp uses, shared with the
// callgrind driver (bench/instructions/instructions.cpp) so both measure the same lookups.
#pragma once

#include <cstdint>
#include <memory_resource>

#include "l4lb/conn/conn_key.hpp"
#include "l4lb/conn/conn_table.hpp"
#include "l4lb/wire/flow_key.hpp"  // wire::ip_proto

namespace l4lb::bench {

// murmur3's 32-bit finaliser: a bijection, so distinct indexes give distinct client addresses.
constexpr std::uint32_t fmix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/// Connection i of a table: clients spread by fmix32, 16 virtual addresses, ports 80 and 443.
template <class Addr>
conn::conn_key<Addr> key_of(std::uint32_t i) {
  conn::conn_key<Addr> k;
  const std::uint32_t c = fmix32(i);
  k.client_addr.bytes[0] = static_cast<std::uint8_t>(c >> 24);
  k.client_addr.bytes[1] = static_cast<std::uint8_t>(c >> 16);
  k.client_addr.bytes[2] = static_cast<std::uint8_t>(c >> 8);
  k.client_addr.bytes[3] = static_cast<std::uint8_t>(c);
  if constexpr (Addr::size == 16) {
    k.client_addr.bytes[8] = 0xfd;
    k.client_addr.bytes[15] = static_cast<std::uint8_t>(i);
    k.virtual_addr.bytes[0] = 0xfd;
  }
  k.virtual_addr.bytes[Addr::size - 1] = static_cast<std::uint8_t>(1 + i % 16);
  k.virtual_addr.bytes[Addr::size - 4] = 198;
  k.client_port = static_cast<std::uint16_t>(1024 + (i & 0x7FFF));
  k.virtual_port = (i & 1) ? 443 : 80;
  k.protocol = wire::ip_proto::tcp;
  return k;
}

/// The tables' configuration: n connections (load 7/8 when full), 64 real servers, fixed seed.
inline conn::conn_table_config table_config(std::uint32_t n, bool nat,
                                            std::pmr::memory_resource* memory = nullptr) {
  conn::conn_table_config c;
  c.capacity = n;
  c.nat_index = nat;
  c.max_dests = 64;
  c.seed = 0x5eed;
  c.memory = memory;
  return c;
}

}  // namespace l4lb::bench
