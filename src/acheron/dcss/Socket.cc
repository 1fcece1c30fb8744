#include "acheron/dcss/Socket.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace acheron::dcss {
namespace {

int remaining_ms(TimePoint deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Duration::zero()) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count() + 1;
  return ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
}

// Waits for `events` on fd; false on timeout.
IoStatus wait_for(int fd, short events, TimePoint deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return IoStatus::ok;
    if (r == 0) return IoStatus::timeout;
    if (errno != EINTR) return IoStatus::error;
  }
}

void set_nonblocking(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
}

}  // namespace

Socket::~Socket() {
  close();
}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Result<Socket> Socket::connect(const std::string& host, std::uint16_t port, Duration timeout) {
  const auto deadline = deadline_after(timeout);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Result<Socket>::failure(StatusCode::unavailable,
                                   "cannot resolve '" + host + "': " + ::gai_strerror(rc));
  }
  std::string last = "no address";
  for (auto* ai = res; ai; ai = ai->ai_next) {
    Socket s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!s.valid()) continue;
    set_nonblocking(s.fd_, true);
    int rc = ::connect(s.fd_, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (wait_for(s.fd_, POLLOUT, deadline) != IoStatus::ok) {
        last = "timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last = std::strerror(errno);
      continue;
    }
    set_nonblocking(s.fd_, false);
    const int one = 1;
    ::setsockopt(s.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::freeaddrinfo(res);
    return s;
  }
  ::freeaddrinfo(res);
  return Result<Socket>::failure(StatusCode::unavailable,
                                 "cannot connect to " + host + ":" + service + " (" + last + ")");
}

IoStatus Socket::read_some(char* data, std::size_t capacity, std::size_t* got, Duration timeout) {
  *got = 0;
  if (!valid()) return IoStatus::closed;
  const auto st = wait_for(fd_, POLLIN, deadline_after(timeout));
  if (st != IoStatus::ok) return st;
  while (true) {
    const ssize_t n = ::recv(fd_, data, capacity, 0);
    if (n > 0) {
      *got = static_cast<std::size_t>(n);
      return IoStatus::ok;
    }
    if (n == 0) return IoStatus::closed;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoStatus::timeout;
    return errno == ECONNRESET ? IoStatus::closed : IoStatus::error;
  }
}

IoStatus Socket::read_exact(char* data, std::size_t size, Duration timeout) {
  const auto deadline = deadline_after(timeout);
  std::size_t done = 0;
  while (done < size) {
    std::size_t got = 0;
    const auto st = read_some(data + done, size - done, &got, deadline - Clock::now());
    if (st != IoStatus::ok) return st;
    done += got;
  }
  return IoStatus::ok;
}

IoStatus Socket::write_all(std::string_view data, Duration timeout) {
  if (!valid()) return IoStatus::closed;
  const auto deadline = deadline_after(timeout);
  std::size_t done = 0;
  while (done < data.size()) {
    const auto st = wait_for(fd_, POLLOUT, deadline);
    if (st != IoStatus::ok) return st;
    const ssize_t n =
        ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    return (errno == EPIPE || errno == ECONNRESET) ? IoStatus::closed : IoStatus::error;
  }
  return IoStatus::ok;
}

void Socket::shutdown() noexcept {
  if (valid()) ::shutdown(fd_, SHUT_RDWR);
}

void Socket::close() noexcept {
  if (valid()) ::close(std::exchange(fd_, -1));
}

std::string Socket::peer_address() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (!valid() || ::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

Result<Listener> Listener::listen(const std::string& host, std::uint16_t port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) {
    return Result<Listener>::failure(StatusCode::internal, std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  const std::string h = host.empty() || host == "*" ? "0.0.0.0" : host;
  if (::inet_pton(AF_INET, h.c_str(), &addr.sin_addr) != 1) {
    return Result<Listener>::failure(StatusCode::invalid_argument,
                                     "listen address '" + host + "' is not an IPv4 address");
  }
  if (::bind(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(s.fd(), 16) != 0) {
    return Result<Listener>::failure(
        StatusCode::unavailable,
        "cannot listen on " + h + ":" + std::to_string(port) + " (" + std::strerror(errno) + ")");
  }
  socklen_t len = sizeof addr;
  ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
  Listener l;
  l.port_ = ntohs(addr.sin_port);
  l.socket_ = std::move(s);
  return l;
}

Socket Listener::accept(Duration timeout) {
  if (!valid() || wait_for(socket_.fd(), POLLIN, deadline_after(timeout)) != IoStatus::ok) {
    return Socket();
  }
  Socket c(::accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (c.valid()) {
    const int one = 1;
    ::setsockopt(c.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return c;
}

}  // namespace acheron::dcss
