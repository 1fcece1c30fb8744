// The HTTP receiver for the JPEGs an Axis video server POSTs while the video
// trigger is open (dcss-xos.md §9.3), hardened for a shared beamline network:
// every request must arrive whole (headers and body) within a deadline, the
// number of connections, the header size and the body size are bounded, it
// listens on loopback unless configured otherwise, and it can require a
// shared token. HTTP parsing is Boost.Beast's; connections are served
// asynchronously, so a slow or silent peer holds no thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace acheron::dcss {

struct JpegReceiverOptions {
  // Loopback by default: a camera on another host needs this set to an
  // address of this host (or 0.0.0.0).
  std::string bind = "127.0.0.1";
  std::uint16_t port = 7171;                // 0: an ephemeral port (tests)
  std::size_t max_bytes = 16u << 20;        // largest body; above it 413
  std::size_t max_header_bytes = 8u << 10;  // request line + headers; above it 431
  std::size_t max_connections = 32;         // open at once; more are answered 503 and closed
  // Seconds from accept until the request (headers and body) has arrived; a
  // connection still sending then is closed. Per-read timeouts alone would let
  // a peer that sends a byte now and then hold its connection forever.
  double request_timeout_s = 5.0;
  // Non-empty: a POST is accepted only with `?token=<token>` in its URL (an
  // Axis HTTP upload recipient is configured by URL). Letters, digits and
  // `-._~` only, so that it needs no percent-encoding.
  std::string token;

  // What is wrong with these options ("max_connections must be 1-4096"), or
  // nothing. Checked by the receiver's constructor and by the config reader.
  std::optional<std::string> problem() const;
};

// Accepts JPEG (or PNG) POSTs on any path: exactly Content-Length bytes (or a
// chunked body), Expect: 100-continue honoured, 200 OK + Connection: close.
// Refusals: 400 malformed, 401 without the token, 405 not a POST, 411 without
// a length, 413 above max_bytes, 415 another content type, 431 headers above
// max_header_bytes, 503 over max_connections; a request not complete within
// request_timeout_s is closed without a reply.
class JpegReceiver final {
 public:
  using Callback = std::function<void(std::string image, std::string content_type)>;
  // Throws SetupError if the options are invalid.
  JpegReceiver(JpegReceiverOptions options, Callback callback);
  ~JpegReceiver();
  JpegReceiver(const JpegReceiver&) = delete;
  JpegReceiver& operator=(const JpegReceiver&) = delete;

  // Binds and serves on background threads; throws SetupError if the address
  // cannot be bound. Logs the bound address.
  void start();
  void stop();
  bool running() const noexcept { return running_.load(); }
  std::uint16_t port() const noexcept { return port_; }
  // The address it listens on ("127.0.0.1"), once started.
  const std::string& address() const noexcept { return address_; }
  const JpegReceiverOptions& options() const noexcept { return options_; }

  struct Counters {
    std::atomic<std::uint64_t> received{0};      // images handed to the callback
    std::atomic<std::uint64_t> refused{0};       // connections over max_connections
    std::atomic<std::uint64_t> timed_out{0};     // requests past request_timeout_s
    std::atomic<std::uint64_t> unauthorized{0};  // 401s
    std::atomic<std::uint64_t> rejected{0};      // every other 4xx
    std::atomic<std::size_t> connections{0};     // open now
  };
  std::uint64_t received() const noexcept { return counters_.received.load(); }
  const Counters& counters() const noexcept { return counters_; }

  struct Impl;  // the serving state (JpegReceiver.cc)

 private:
  JpegReceiverOptions options_;
  Callback callback_;
  std::uint16_t port_;
  std::string address_;
  Counters counters_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> running_{false};
};

}  // namespace acheron::dcss
