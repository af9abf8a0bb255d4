// l4lbadm: ipvsadm for a running l4lb-director. The arguments are ipvsadm's (the tutorial's
// commands work unchanged with the program's name replaced); the director parses and applies
// them, and l4lbadm prints what ipvsadm would print and exits with ipvsadm's status.
// The socket: --control PATH (first), else $L4LB_CONTROL, else /run/l4lb-director.sock.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "control_channel.hpp"

int main(int argc, char** argv) {
  std::string path = "/run/l4lb-director.sock";
  if (const char* env = std::getenv("L4LB_CONTROL")) path = env;
  raw::control_request req;
  int i = 1;
  if (i + 1 < argc && std::string(argv[i]) == "--control") {
    path = argv[i + 1];
    i += 2;
  }
  bool restore = false;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-R" || a == "--restore") restore = true;
    if (a.find('\n') != std::string::npos) {
      std::fprintf(stderr, "l4lbadm: an argument contains a newline\n");
      return 2;
    }
    req.args.push_back(a);
  }
  if (restore) req.input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  try {
    const raw::control_response r = raw::call_director(path, req);
    std::fwrite(r.out.data(), 1, r.out.size(), stdout);
    std::fwrite(r.err.data(), 1, r.err.size(), stderr);
    return r.exit_status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "l4lbadm: %s\n", e.what());
    return 255;  // ipvsadm's status when it cannot talk to IPVS
  }
}
