// Why a policy could not build its lookup structure from a real-server list (control plane).
// Policies that can refuse return this from `rebuild`; `ok` means the structure is current.
// After a refusal the policy holds an empty structure, so `pick` answers no_dest.
#pragma once

#include <cstdint>
#include <string_view>

namespace l4lb::sched {

enum class build_error : std::uint8_t {
  ok = 0,
  too_many_servers,      // more real servers than the table can index (e.g. mh: N > M, EINVAL)
  bad_table_size,        // not a supported prime / out of range
  bad_option,            // another constructor option out of range
};

[[nodiscard]] constexpr std::string_view to_string(build_error e) noexcept {
  switch (e) {
    case build_error::ok: return "ok";
    case build_error::too_many_servers: return "too_many_servers";
    case build_error::bad_table_size: return "bad_table_size";
    case build_error::bad_option: return "bad_option";
  }
  return "unknown";
}

}  // namespace l4lb::sched
