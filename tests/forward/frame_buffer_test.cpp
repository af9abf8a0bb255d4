// frame_buffer: the frame inside the caller's storage; moves that do not fit fail unchanged.
#include <doctest/doctest.h>

#include <array>

#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/frame_buffer.hpp"

using namespace l4lb::forward;

TEST_SUITE("forward") {
TEST_CASE("frame_buffer: make() checks that the frame fits the storage") {
  std::array<std::byte, 100> s{};
  auto b = frame_buffer::make(s, 20, 70);
  REQUIRE(b);
  CHECK(b->headroom() == 20);
  CHECK(b->tailroom() == 10);
  CHECK(b->frame().data() == s.data() + 20);
  CHECK(b->frame().size() == 70);
  CHECK(frame_buffer::make(s, 20, 81).error() == forward_error::truncated);
  CHECK(frame_buffer::make(s, 101, 0).error() == forward_error::truncated);
  CHECK(frame_buffer::make(s, 100, 0));
}

TEST_CASE("frame_buffer: push/pull at both ends, refusing what does not fit") {
  std::array<std::byte, 64> s{};
  auto b = *frame_buffer::make(s, 8, 40);
  CHECK_FALSE(b.push_front(9));
  CHECK(b.frame_offset() == 8);
  CHECK(b.push_front(8));
  CHECK(b.headroom() == 0);
  CHECK(b.frame_len() == 48);
  CHECK(b.pull_front(4));
  CHECK(b.headroom() == 4);
  CHECK_FALSE(b.pull_front(45));
  CHECK_FALSE(b.push_back(17));
  CHECK(b.push_back(16));
  CHECK(b.tailroom() == 0);
  CHECK(b.trim_back(60));
  CHECK(b.frame_len() == 0);
  CHECK_FALSE(b.trim_back(1));
  CHECK_FALSE(b.set_frame(60, 5));
  CHECK(b.set_frame(60, 4));
  CHECK(b.is_frame(std::span<const std::byte>(s.data() + 60, 4)));
  CHECK_FALSE(b.is_frame(std::span<const std::byte>(s.data() + 60, 3)));
}

TEST_CASE("forward_error: every value has a name") {
  for (unsigned v = 0; v <= static_cast<unsigned>(forward_error::bad_config); ++v)
    CHECK(to_string(static_cast<forward_error>(v)) != "unknown");
}
}
