// The DHS side of a DCSS connection (dcss-xos.md §3, §6): connects, answers
// stoc_send_client_type with a 200-byte htos_client_is_hardware, feeds every
// message to the Dhs from one reader thread, writes the Outbox from one
// writer thread in the framing DCSS uses, and reconnects forever with a
// bounded back-off, dropping all state with the connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "acheron/core/Clock.hh"
#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/Socket.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {

enum class ProtocolChoice : std::uint8_t { automatic, v1, v2 };

struct SessionOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 14242;  // dcss.hardwarePort
  ProtocolChoice protocol = ProtocolChoice::automatic;
  // Reconnect back-off: first retry after reconnect_min, doubling up to
  // reconnect_max (the C DHS's 5 s), ±10 % jitter.
  Duration reconnect_min = std::chrono::milliseconds(500);
  Duration reconnect_max = std::chrono::seconds(5);
  Duration connect_timeout = std::chrono::seconds(5);
  // How long to wait for stoc_send_client_type after connecting.
  Duration prompt_timeout = std::chrono::seconds(30);
  // A DCSS that stops reading for this long is treated as gone.
  Duration write_timeout = std::chrono::seconds(30);
  wire::xos::Limits limits;
};

class Session final {
 public:
  Session(SessionOptions options, Dhs& dhs);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts the connection thread; returns at once.
  void start();
  // Closes the connection and joins the threads (idempotent).
  void stop();

  bool online() const noexcept { return online_.load(); }
  // Waits until the handshake of connection number `n` (1-based) is done.
  bool wait_connections(std::uint64_t n, Duration timeout) const;
  std::uint64_t connections() const noexcept { return connections_.load(); }
  // Framing of the last message received after the handshake.
  wire::xos::Protocol last_received() const noexcept { return last_rx_.load(); }
  // Messages cut to fit a 200-byte xos1 frame (each logged as an error).
  std::uint64_t truncated_messages() const noexcept { return truncated_.load(); }

 private:
  void run();
  void serve(Socket& socket);
  void writer(Socket& socket, std::uint64_t epoch, std::atomic<bool>& failed);
  bool sleep_for(Duration d);  // false when stopping

  SessionOptions options_;
  Dhs& dhs_;
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  int active_fd_ = -1;
  std::atomic<bool> online_{false};
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<wire::xos::Protocol> last_rx_{wire::xos::Protocol::v2};
  std::atomic<bool> received_any_{false};
  std::atomic<std::uint64_t> truncated_{0};
};

}  // namespace acheron::dcss
