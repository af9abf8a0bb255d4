// scheduler_options: the NAME=VALUE text a rule file gives, its errors, and option_reader's typed
// getters (a value of the type or bad_option_value; the canonical spelling of what was read).
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "l4lb/sched/scheduler_options.hpp"

using namespace l4lb::sched;

namespace {

scheduler_options opts(std::string_view text) {
  auto o = scheduler_options::parse(text);
  REQUIRE(o.has_value());
  return *o;
}

}  // namespace

TEST_SUITE("sched") {

TEST_CASE("scheduler_options: parse keeps the order written and to_string gives it back") {
  const scheduler_options o = opts("table-bits=12,expiration=3600");
  REQUIRE(o.size() == 2);
  CHECK(*o.find("table-bits") == "12");
  CHECK(*o.find("expiration") == "3600");
  CHECK(o.find("capacity") == nullptr);
  CHECK(to_string(o) == "table-bits=12,expiration=3600");
  CHECK(opts("b=2,a=1") != opts("a=1,b=2"));  // equality is of the list as written
  // Empty items are skipped; an empty value is a value (the policy judges it).
  CHECK(to_string(opts(",a=1,,b=,")) == "a=1,b=");
  CHECK(opts("").empty());
}

TEST_CASE("scheduler_options: an item without NAME=, or a name twice, is bad_option_syntax") {
  for (std::string_view bad : {"a", "=1", "a=1,b", "a=1,a=2", "table-bits"}) {
    CAPTURE(bad);
    auto o = scheduler_options::parse(bad);
    REQUIRE(!o.has_value());
    CHECK(o.error() == scheduler_error::bad_option_syntax);
  }
}

TEST_CASE("scheduler_options: set replaces in place or appends") {
  scheduler_options o = opts("a=1,b=2");
  o.set("a", "3");
  o.set("c", "4");
  CHECK(to_string(o) == "a=3,b=2,c=4");
}

TEST_CASE("option_reader: numbers are decimal digits that fit the type") {
  const scheduler_options given = opts("n=012,big=256,neg=-1,plus=+1,hex=0x10,empty=");
  option_reader r(given);
  CHECK(r.number<unsigned>("n", 7) == 12);
  CHECK(r.number<unsigned>("absent", 7) == 7);
  CHECK(r.error() == scheduler_error::ok);
  CHECK(to_string(r.canonical()) == "n=12");  // absent names are not invented
  for (std::string_view name : {"neg", "plus", "hex", "empty"}) {
    CAPTURE(name);
    option_reader bad(given);
    CHECK(bad.number<std::uint32_t>(name, 7) == 7);
    CHECK(bad.error() == scheduler_error::bad_option_value);
  }
  option_reader narrow(given);
  CHECK(narrow.number<std::uint8_t>("big", 1) == 1);  // 256 does not fit 8 bits
  CHECK(narrow.error() == scheduler_error::bad_option_value);
}

TEST_CASE("option_reader: seconds become nanoseconds; too many seconds for 64-bit ns refused") {
  const scheduler_options given = opts("t=3600,max=9223372036,over=9223372037");
  option_reader r(given);
  CHECK(r.seconds_as_ns("t", 1) == std::int64_t{3600} * 1'000'000'000);
  CHECK(r.seconds_as_ns("max", 1) == std::int64_t{9223372036} * 1'000'000'000);
  CHECK(r.error() == scheduler_error::ok);
  CHECK(to_string(r.canonical()) == "t=3600,max=9223372036");
  CHECK(r.seconds_as_ns("over", 5) == 5);
  CHECK(r.error() == scheduler_error::bad_option_value);
}

TEST_CASE("option_reader: yes/no and word choices, with one spelling each") {
  enum class colour { red, green };
  struct word {
    std::string_view word;
    colour value;
  };
  static constexpr std::array<word, 3> words{{{"red", colour::red},
                                              {"green", colour::green},
                                              {"verde", colour::green}}};
  const scheduler_options given = opts("c=verde,f=no,g=yes,x=maybe");
  option_reader r(given);
  CHECK(r.choice("c", colour::red, words) == colour::green);
  CHECK(!r.yes_no("f", true));
  CHECK(r.yes_no("g", false));
  CHECK(r.error() == scheduler_error::ok);
  CHECK(to_string(r.canonical()) == "c=green,f=no,g=yes");
  CHECK(r.yes_no("x", true));
  CHECK(r.error() == scheduler_error::bad_option_value);
}

TEST_CASE("scheduler_error: every value has a name") {
  CHECK(to_string(scheduler_error::bad_option_syntax) == "bad_option_syntax");
  CHECK(to_string(scheduler_error::unknown_option) == "unknown_option");
  CHECK(to_string(scheduler_error::bad_option_value) == "bad_option_value");
}

}  // TEST_SUITE
