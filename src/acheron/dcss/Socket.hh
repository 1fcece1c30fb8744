// Plain TCP sockets for the xos protocol (raw TCP; no library speaks it): a
// connected stream with timed reads and writes, and a listener for the fake
// DCSS. POSIX only; every call has a deadline so no thread blocks forever.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "acheron/core/Clock.hh"
#include "acheron/core/Result.hh"

namespace acheron::dcss {

enum class IoStatus : std::uint8_t { ok, timeout, closed, error };

class Socket final {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket();
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Connects to host:port (name or address) within `timeout`.
  static Result<Socket> connect(const std::string& host, std::uint16_t port, Duration timeout);

  bool valid() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }

  // Reads what is available (at most `capacity`), waiting at most `timeout`.
  IoStatus read_some(char* data, std::size_t capacity, std::size_t* got, Duration timeout);
  // Reads exactly `size` bytes before `timeout` runs out.
  IoStatus read_exact(char* data, std::size_t size, Duration timeout);
  // Writes everything before `timeout` runs out (a peer that stops reading times out).
  IoStatus write_all(std::string_view data, Duration timeout);

  // Wakes a reader blocked on this socket (both directions shut down).
  void shutdown() noexcept;
  void close() noexcept;

  // "a.b.c.d" of the peer; empty if unknown.
  std::string peer_address() const;

 private:
  int fd_ = -1;
};

class Listener final {
 public:
  Listener() = default;
  // Listens on host:port (port 0: an ephemeral port); SO_REUSEADDR so a
  // restarted server gets its port back at once.
  static Result<Listener> listen(const std::string& host, std::uint16_t port);

  std::uint16_t port() const noexcept { return port_; }
  bool valid() const noexcept { return socket_.valid(); }
  // A connection, or an invalid Socket when `timeout` passes first.
  Socket accept(Duration timeout);
  void close() noexcept { socket_.close(); }

 private:
  Socket socket_;
  std::uint16_t port_ = 0;
};

}  // namespace acheron::dcss
