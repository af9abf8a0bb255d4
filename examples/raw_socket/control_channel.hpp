// The control socket between l4lbadm and l4lb-director: a UNIX stream socket, one request per
// connection. Who may connect is decided by the socket file's permissions (mode 0660, the
// director's user and group), as with any UNIX socket.
//
// Wire format (text, so `socat` can speak it too):
//   request:  "L4LBADM 1\n" <argc> "\n" then each argument and "\n", then the standard input
//             (-R's rules text) up to the end of the stream (the client shuts down writing);
//   response: <exit status> " " <stdout bytes> " " <stderr bytes> "\n" <stdout> <stderr>.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace raw {

inline constexpr std::string_view control_magic = "L4LBADM 1\n";
inline constexpr std::size_t max_request_bytes = 16u << 20;

struct control_request {
  std::vector<std::string> args;
  std::string input;
};

struct control_response {
  int exit_status = 0;
  std::string out, err;
};

inline bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Reads until the peer shuts down writing (or `limit` bytes, or an error / timeout: nullopt).
inline std::optional<std::string> read_all(int fd, std::size_t limit) {
  std::string s;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return s;
    if (s.size() + static_cast<std::size_t>(n) > limit) return std::nullopt;
    s.append(buf, static_cast<std::size_t>(n));
  }
}

inline sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

/// Server side: listens on `path` (an old socket file there is replaced), mode 0660.
inline int listen_control(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("control socket: ") + std::strerror(errno));
  const sockaddr_un a = unix_address(path);
  ::unlink(path.c_str());
  const mode_t old = ::umask(0117);  // created as 0660
  const int r = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (r != 0 || ::listen(fd, 16) != 0) {
    const std::string e = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("control socket " + path + ": " + e);
  }
  ::chmod(path.c_str(), 0660);
  return fd;
}

/// Parses a request; nullopt when it is not one.
inline std::optional<control_request> parse_request(std::string_view s) {
  if (s.substr(0, control_magic.size()) != control_magic) return std::nullopt;
  s.remove_prefix(control_magic.size());
  const auto line = [&]() -> std::optional<std::string_view> {
    const auto nl = s.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view l = s.substr(0, nl);
    s.remove_prefix(nl + 1);
    return l;
  };
  const auto count = line();
  if (!count || count->empty() || count->size() > 4) return std::nullopt;
  std::size_t argc = 0;
  for (char c : *count) {
    if (c < '0' || c > '9') return std::nullopt;
    argc = argc * 10 + static_cast<std::size_t>(c - '0');
  }
  control_request r;
  for (std::size_t i = 0; i < argc; ++i) {
    const auto a = line();
    if (!a) return std::nullopt;
    r.args.emplace_back(*a);
  }
  r.input = std::string(s);
  return r;
}

inline std::string format_response(const control_response& r) {
  return std::to_string(r.exit_status) + " " + std::to_string(r.out.size()) + " " +
         std::to_string(r.err.size()) + "\n" + r.out + r.err;
}

/// Client side: one request, its response; throws with a clear message when the director is
/// not there or refuses us.
inline control_response call_director(const std::string& path, const control_request& req) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const sockaddr_un a = unix_address(path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EACCES || e == EPERM)
      throw std::runtime_error("cannot connect to " + path + ": " + std::strerror(e) +
                               " (the socket's permissions decide who may change the rules)");
    throw std::runtime_error("cannot connect to " + path + ": " + std::strerror(e) +
                             " (is l4lb-director running with --control " + path + "?)");
  }
  std::string msg(control_magic);
  msg += std::to_string(req.args.size()) + "\n";
  for (const auto& s : req.args) msg += s + "\n";
  msg += req.input;
  if (!write_all(fd, msg) || ::shutdown(fd, SHUT_WR) != 0) {
    ::close(fd);
    throw std::runtime_error("lost the connection to " + path);
  }
  const auto reply = read_all(fd, max_request_bytes * 4);
  ::close(fd);
  const auto nl = reply ? reply->find('\n') : std::string::npos;
  control_response r;
  std::size_t out_len = 0, err_len = 0;
  if (nl == std::string::npos ||
      std::sscanf(reply->c_str(), "%d %zu %zu", &r.exit_status, &out_len, &err_len) != 3 ||
      reply->size() != nl + 1 + out_len + err_len)
    throw std::runtime_error("bad response from " + path);
  r.out = reply->substr(nl + 1, out_len);
  r.err = reply->substr(nl + 1 + out_len, err_len);
  return r;
}

}  // namespace raw
