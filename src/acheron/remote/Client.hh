// RemoteClient: calls a RemoteServer and subscribes to its streams
// (docs/remote.md).
//
// Every call has a deadline. A call that gets no reply in time throws
// TimeoutError (or DisconnectedError when no connection to the server
// existed at all) and the client replaces its socket, so the next call
// reconnects by itself; late replies to earlier calls are discarded by
// request id. Calls are serialised per client (one socket); use one client
// per thread for concurrent calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "acheron/hub/Topic.hh"
#include "acheron/net/Zmq.hh"
#include "acheron/remote/Call.hh"
#include "acheron/wire/Envelope.hh"

namespace acheron::remote {

// The remote side raised: its exception type, message and traceback.
class RemoteException : public Failure {
 public:
  RemoteException(wire::RemoteError error);
  const std::string& type() const noexcept { return error_.type; }
  const std::string& remote_message() const noexcept { return error_.message; }
  const std::string& traceback() const noexcept { return error_.traceback; }

 private:
  wire::RemoteError error_;
};

// No reply within the deadline (the request was sent).
class TimeoutError : public Failure {
 public:
  explicit TimeoutError(const std::string& message)
      : Failure(StatusCode::deadline_exceeded, message) {}
};

// The request could not even be sent: no connection to the server.
class DisconnectedError : public Failure {
 public:
  explicit DisconnectedError(const std::string& message)
      : Failure(StatusCode::unavailable, message) {}
};

// The call was cancelled by the caller (its progress callback returned false).
class CancelledError : public Failure {
 public:
  explicit CancelledError(const std::string& message) : Failure(StatusCode::cancelled, message) {}
};

struct ClientOptions {
  std::string endpoint = "tcp://127.0.0.1:5555";
  // Empty: asked from the server at the first subscribe (same host as endpoint).
  std::string stream_endpoint;
  std::chrono::milliseconds timeout{3000};  // default per-call deadline (Tango's 3 s)
  std::shared_ptr<zmq::context_t> context;  // share the server's for inproc://
  std::optional<net::CurveKeys> curve;      // own keys for CURVE
  std::string curve_server_key;             // the server's public key (Z85)
};

// Positional and keyword arguments of a call.
struct CallArgs {
  Json args = Json::array();
  Json kwargs = Json::object();
  std::vector<Array> arrays;

  template <class T>
  CallArgs& arg(T&& value) {
    args.push_back(to_wire(std::forward<T>(value), arrays));
    return *this;
  }
  template <class T>
  CallArgs& kw(const std::string& name, T&& value) {
    kwargs[name] = to_wire(std::forward<T>(value), arrays);
    return *this;
  }
};

// Per-call options.
struct CallOptions {
  std::optional<std::chrono::milliseconds> timeout;  // default: ClientOptions::timeout
  // Receives each progress value (PARTIAL reply) in the calling thread;
  // returning false cancels the call (CANCEL is sent, CancelledError thrown).
  // Do not call the same client from it.
  std::function<bool(const Value&)> on_progress;
};

enum class ReceiveMode { cache, queue };

struct SubscribeOptions {
  ReceiveMode mode = ReceiveMode::cache;
  std::size_t capacity = 1000;  // queue mode
};

// One received stream value.
struct StreamValue {
  std::string stream;
  std::uint64_t seq = 0;
  std::int64_t wall_ns = 0;  // server wall clock at publication (or the application's stamp)
  std::int64_t mono_ns = 0;  // server steady clock at publication
  Value value;
  std::optional<wire::RemoteError> error;  // the producer raised
};

struct StreamStats {
  std::uint64_t received = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;   // queue mode: discarded because the queue was full
  std::uint64_t replaced = 0;  // cache mode: superseded before being read
  std::uint64_t gaps = 0;      // values the server published that never arrived (seq gaps)
};

class RemoteClient;

// A subscription to one stream, with its own cache or queue.
class Subscription final {
 public:
  // The next value, waiting up to timeout; nullopt if none arrived.
  std::optional<StreamValue> next(std::chrono::milliseconds timeout);
  std::optional<StreamValue> try_next();
  StreamStats stats() const;
  const std::string& stream() const noexcept { return stream_; }
  // Stops delivery and unsubscribes.
  void close();

  struct State;
  Subscription(std::string stream, std::shared_ptr<State> state);

 private:
  std::string stream_;
  std::shared_ptr<State> state_;
};

class RemoteClient final {
 public:
  explicit RemoteClient(ClientOptions options);
  explicit RemoteClient(std::string endpoint) : RemoteClient(ClientOptions{.endpoint = endpoint}) {}
  ~RemoteClient();
  RemoteClient(const RemoteClient&) = delete;
  RemoteClient& operator=(const RemoteClient&) = delete;

  // Calls `name`; returns its value or throws RemoteException, TimeoutError
  // or DisconnectedError.
  Value call(const std::string& name, const CallArgs& args = {},
             std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  Value call(const std::string& name, const CallArgs& args, const CallOptions& options);
  // call() with positional arguments.
  template <class... T>
  Value call_with(const std::string& name, T&&... args) {
    CallArgs a;
    (a.arg(std::forward<T>(args)), ...);
    return call(name, a);
  }
  // True if the server answered PING within timeout.
  bool ping(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  Json list_calls();
  Json list_streams();
  Json info();
  void enable_stream(const std::string& name);
  void disable_stream(const std::string& name);
  void remove_stream(const std::string& name);
  // Single-writer lock: true if acquired (force takes it from another
  // client); calling it again renews the lease. Every call of the holder
  // renews the lease too; after a whole lease (ServerOptions::lock_lease)
  // without a request from the holder the lock lapses.
  bool lock(bool force = false);
  void unlock();
  // {"held", "mine", "lease_ms", "remaining_ms"}
  Json lock_status();

  std::shared_ptr<Subscription> subscribe(const std::string& stream, SubscribeOptions options = {});

  // Time since the server's stream socket last sent its heartbeat ("$hb",
  // once a second by default): tells a quiet stream from a dead server.
  // nullopt until the first subscribe() and the first heartbeat.
  std::optional<std::chrono::milliseconds> since_heartbeat() const;

  const ClientOptions& options() const noexcept { return options_; }
  // Sockets replaced after a failed call (reconnections).
  std::uint64_t reconnects() const noexcept;

 private:
  struct Impl;
  ClientOptions options_;
  std::shared_ptr<Impl> impl_;
};

// The stream endpoint a client should connect to, given the RPC endpoint it
// used and the endpoint the server reports (which may use a wildcard host).
std::string resolve_stream_endpoint(const std::string& rpc_endpoint, const std::string& advertised);

}  // namespace acheron::remote
