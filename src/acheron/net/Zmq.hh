// ZeroMQ adapters shared by every front: zero-copy conversion between
// ZeroMQ messages and core Buffers, multipart send/receive, socket options,
// CURVE keys, and a waker that lets other threads interrupt a poll.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "acheron/core/Payload.hh"

namespace acheron::net {

// A Buffer viewing the message's bytes; the message is kept alive by the
// Buffer's owner, nothing is copied.
Buffer adopt(zmq::message_t&& message);
// A message whose bytes are the Buffer's memory (kept alive until ZeroMQ is
// done with it). Tiny buffers are copied: cheaper than the bookkeeping.
zmq::message_t share(const Buffer& buffer);

// Receives one whole multipart message; false if none arrived (non-blocking
// mode) or the socket was interrupted. peer_address, if given, receives the
// first frame's "Peer-Address" property (empty when unknown).
bool recv_frames(zmq::socket_t& socket, std::vector<Buffer>& frames,
                 zmq::recv_flags flags = zmq::recv_flags::none,
                 std::string* peer_address = nullptr);
// Sends frames as one multipart message; false if it would block (dontwait)
// or the peer is unroutable.
bool send_frames(zmq::socket_t& socket, const std::vector<Buffer>& frames,
                 zmq::send_flags flags = zmq::send_flags::none);

// Common option sets.
void set_linger(zmq::socket_t& socket, std::chrono::milliseconds linger);

// The largest frame a socket accepts from a peer (ZMQ_MAXMSGSIZE, checked by
// libzmq per frame before it is buffered). A peer that sends a larger frame
// is disconnected; nothing reaches the application. The default fits the
// largest ChAR0N request component (50 M photons x 4 bytes = 200 MB).
inline constexpr std::int64_t kDefaultMaxMessageSize = std::int64_t{256} << 20;
// bytes <= 0: no limit.
void set_max_message_size(zmq::socket_t& socket, std::int64_t bytes);

// CURVE authentication (libzmq CurveZMQ). Key files hold Z85 text: a public
// key file one 40-character line; a secret key file the secret key (and may
// hold the public key on a second line).
struct CurveKeys {
  std::string public_key;  // Z85, 40 chars
  std::string secret_key;  // Z85, 40 chars
};
CurveKeys read_curve_keys(const std::filesystem::path& secret_file);
std::string read_curve_public_key(const std::filesystem::path& public_file);
CurveKeys generate_curve_keys();
void write_curve_keys(const CurveKeys& keys,
                      const std::filesystem::path& stem);  // stem.key, stem.pub
// Makes socket a CURVE server (before bind).
void make_curve_server(zmq::socket_t& socket, const CurveKeys& keys);
// Makes socket a CURVE client of a server with this public key (before connect).
void make_curve_client(zmq::socket_t& socket, const CurveKeys& own,
                       const std::string& server_public);

// An eventfd another thread signals to wake a zmq::poll() loop.
class Waker final {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  void wake();
  // Clears pending wakes; call after poll reports the fd readable.
  void drain();
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace acheron::net
