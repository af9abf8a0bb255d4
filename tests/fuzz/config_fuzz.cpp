// libFuzzer target for the ipvsadm grammar (config/grammar.hpp, config/rules.hpp,
// config/listing.hpp). Any text must give a parsed command or an error, never a crash; a rules
// text that loads must save to a text that loads to the same save (load -> save -> load is the
// identity) and to an equal listing (ipvsadm -Ln of the saved-and-loaded configuration is the
// original's), and must list in every format. The whole input is also tried as a rules file.
// scripts/fuzz (and, for a few seconds, scripts/test) builds and runs it; by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       tests/fuzz/config_fuzz.cpp -o config_fuzz
//   ./config_fuzz -max_total_time=60 tests/fuzz/corpus/config_fuzz
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "l4lb/config/grammar.hpp"
#include "l4lb/config/listing.hpp"
#include "l4lb/config/rules.hpp"

namespace {

using namespace l4lb;

void require(bool ok) {
  if (!ok) std::abort();
}

const director::configuration& base() {
  static const director::configuration cfg = [] {
    director::configuration c(director::configuration_limits{64, 256});
    auto r = config::load_rules(c,
                                "-A -t 198.18.0.100:80 -s rr\n"
                                "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
                                "-A -f 1 -6 -s mh -b mh-port\n");
    require(r.has_value());
    return std::move(r->config);
  }();
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // One command line.
  if (auto p = config::parse_command_line(text)) {
    if (const director::command* c = p->change()) {
      director::configuration cfg = base();
      const auto e = cfg.apply(*c);
      if (e != director::config_error::ok) {
        const config::error err = config::apply_error(e, *p, text);
        require(err.column == 0 || err.column - 1 + err.token.size() <= text.size());
      }
    } else if (const auto* lr = std::get_if<config::list_request>(&p->what)) {
      std::string out;
      (void)config::write_listing(out, config::listing_input{base()}, *lr);
    }
  } else {
    const config::error& e = p.error();
    require(!e.message.empty());
    require(e.column == 0 || e.column - 1 < text.size() + 1);
  }

  // A rules file.
  auto r = config::load_rules(base(), text);
  if (!r) {
    require(r.error().line >= 1);
    return 0;
  }
  const config::save_options opts{.numeric = true, .thresholds = true};
  const std::string saved = config::save_rules(r->config, opts);
  auto again = config::load_rules(director::configuration(base().limits()), saved);
  require(again.has_value());
  // ipvsadm orders a service's servers with ipvs_cmp_dests, which compares as many address bytes
  // as the first server's family has: not a total order when IPv4 and IPv6 servers share a
  // service (tunnels allow it), so there the order depends on the kernel order, which a restore
  // changes (rules.hpp: the same services, servers and settings come back). For such
  // configurations the texts are compared as sets of lines; everywhere else, exactly.
  bool mixed = false;
  for (const auto& svc : r->config.services()) {
    bool v4 = false, v6 = false;
    for (const auto& d : svc.dests) (d.spec.endpoint.address.is_v4() ? v4 : v6) = true;
    mixed = mixed || (v4 && v6);
  }
  const auto same = [mixed](const std::string& a, const std::string& b) {
    if (!mixed) return a == b;
    const auto lines = [](const std::string& t) {
      std::vector<std::string> v;
      std::size_t at = 0;
      while (at < t.size()) {
        const std::size_t nl = std::min(t.find('\n', at), t.size());
        v.emplace_back(t.substr(at, nl - at));
        at = nl + 1;
      }
      std::sort(v.begin(), v.end());
      return v;
    };
    return lines(a) == lines(b);
  };
  require(same(config::save_rules(again->config, opts), saved));
  require(again->config.services().size() == r->config.services().size());

  std::string out;
  const config::listing_input in{r->config};
  for (config::list_request lr : {config::list_request{}, config::list_request{.thresholds = true},
                                  config::list_request{.persistent_conn = true}}) {
    std::string a, b;
    require(!config::write_listing(a, in, lr).has_value());
    require(!config::write_listing(b, config::listing_input{again->config}, lr).has_value());
    require(same(a, b));
  }
  for (config::list_request lr :
       {config::list_request{}, config::list_request{.stats = true, .exact = true},
        config::list_request{.rate = true}, config::list_request{.thresholds = true},
        config::list_request{.persistent_conn = true},
        config::list_request{.nosort = true, .tun_info = true}}) {
    out.clear();
    require(!config::write_listing(out, in, lr).has_value());
  }
  return 0;
}
