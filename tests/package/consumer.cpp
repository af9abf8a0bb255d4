// An outside project's program: it includes the umbrella header and uses the wire layer.
#include <l4lb/l4lb.hpp>

#include <cstdio>

int main() {
  auto ep = l4lb::wire::endpoint::parse("[fd00::1]:80");
  if (!ep || ep->to_string() != "[fd00::1]:80") return 1;
  std::printf("l4lb %d.%d.%d consumer ok: %s\n", L4LB_VERSION_MAJOR, L4LB_VERSION_MINOR,
              L4LB_VERSION_PATCH, ep->to_string().c_str());
  return 0;
}
