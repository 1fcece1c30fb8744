// RemoteServer: exports named calls and streams over ZeroMQ (docs/remote.md).
//
// Threads: one reactor thread (net::Reactor) owns the ROUTER: it reads
// requests, answers built-ins, Threading::io_thread calls and refusals
// itself, and queues the other calls (per client, FairQueue) for `threads`
// call threads, which post their replies back to it to send. A stream
// thread owns the XPUB and the relay SUB sockets; each periodic stream has
// its own thread scheduled against absolute deadlines. No socket is used by
// two threads.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "acheron/net/Zmq.hh"
#include "acheron/remote/Call.hh"

namespace acheron::remote {

// Whether mutating calls need the single-writer lock.
enum class WriteLock {
  advisory,  // mutating calls are refused only while another client holds the lock
  required,  // mutating calls are refused unless the caller holds the lock
};

// What happens when a subscriber's queue (send_hwm messages) is full.
enum class SlowSubscribers {
  hold,  // ZMQ_XPUB_NODROP: the server holds messages back until there is room (up to
         // send_hwm), then drops the oldest and counts it in the stream's status
  drop,  // ZeroMQ's default: only the slow subscriber misses messages (it sees seq gaps)
};

struct ServerOptions {
  // Loopback unless the caller names an address (docs/security.md).
  std::string rpc_bind = "tcp://127.0.0.1:5555";
  std::string stream_bind = "tcp://127.0.0.1:5556";
  std::string name = "remote";
  std::size_t threads = 2;                  // calls running at once (plus the reactor thread)
  std::shared_ptr<zmq::context_t> context;  // share it with in-process clients for inproc://
  std::optional<net::CurveKeys> curve;      // CURVE server keys for both sockets; none: plain
  std::chrono::milliseconds heartbeat{1000};
  WriteLock write_lock = WriteLock::advisory;
  int send_hwm = 1000;  // messages queued per subscriber
  SlowSubscribers slow_subscribers = SlowSubscribers::hold;
  // The write lock lapses when its holder sends nothing for this long (every
  // request of the holder renews it), so a client that died cannot lock
  // everyone out.
  std::chrono::milliseconds lock_lease{10000};
  // Unused: calls no longer share the socket with the thread that reads
  // requests (the reactor reads while every call thread runs a call), so
  // there is no lead to hand over. Kept so existing option sets compile.
  std::chrono::microseconds handoff_after{5000};
  // Calls (default threading) that may wait for a call thread while
  // `threads` run; a call beyond threads + max_queued is answered at once
  // with resource_exhausted (type ServerBusy) and does not run. Built-ins
  // and Threading::io_thread calls never wait and are not counted.
  std::size_t max_queued = 256;
  // The largest frame, in bytes, a client or subscriber may send
  // (ZMQ_MAXMSGSIZE on both sockets): libzmq disconnects a peer that sends
  // a larger one, so that request gets no reply. Zero or negative: no limit.
  std::int64_t max_message_size = std::int64_t{256} << 20;
};

enum class StreamKind { periodic, manual, relay };
std::string_view to_string(StreamKind kind);

enum class RelayFormat {
  acheron,  // the upstream is an Acheron stream (another RemoteServer): relayed frame for frame
  raw,      // any ZeroMQ PUB: each message's frames become uint8 arrays
};

struct StreamOptions {
  std::string doc;
  bool enabled = true;
  // Periodic streams: skip the producer while nobody subscribes.
  bool only_with_subscribers = true;
};

struct RelayOptions {
  std::string upstream;  // acheron: the upstream stream name (default: the local name);
                         // raw: the subscription prefix (default: everything)
  RelayFormat format = RelayFormat::acheron;
  StreamOptions stream;
};

struct StreamStatus {
  std::string name;
  StreamKind kind = StreamKind::manual;
  bool enabled = false;
  double rate_hz = 0;      // requested (periodic)
  double achieved_hz = 0;  // published per second since last enabled
  std::uint64_t published = 0;
  std::uint64_t overruns = 0;  // periodic: deadlines skipped because a tick ran late
  std::uint64_t errors = 0;    // producer exceptions (published as error values)
  bool subscribed = false;
  std::uint64_t dropped = 0;  // not sent: a subscriber's queue stayed full (SlowSubscribers::hold)
  std::uint64_t held = 0;     // waiting for room in a subscriber's queue now
  std::string doc;
  std::string source;  // relay: upstream endpoint
};
Json to_json(const StreamStatus& status);

// Upper bounds (seconds) of the buckets ServerStats counts call durations in.
inline constexpr std::array<double, 12> kCallDurationBoundsS{1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3,
                                                             0.01, 0.03, 0.1,  0.3,  1,    10};

// Figures of one registered call since it was added.
struct CallStats {
  std::string name;
  std::uint64_t calls = 0;  // finished, failed ones included
  std::uint64_t errors =
      0;              // replied with an error (the call threw, bad arguments, lock, deadline)
  double busy_s = 0;  // time spent running it
  bool mutating = false;
};

// A client (ROUTER identity) that sent requests recently.
struct ClientStats {
  std::string identity;  // as text when printable, else hex
  std::uint64_t requests = 0;
  double last_seen_s = 0;  // seconds ago
};

struct ServerStats {
  std::vector<CallStats> calls;
  std::vector<ClientStats> clients;  // most recently seen first
  std::uint64_t requests = 0;        // every message from a client (pings and built-ins too)
  std::uint64_t refused_busy = 0;    // resource_exhausted: threads + max_queued calls in flight
  std::uint64_t not_found = 0;       // no call of that name
  std::uint64_t malformed = 0;       // undecodable requests
  std::size_t in_flight = 0;         // pool calls running or waiting
  // Durations of calls: counts per bucket (the last above the last bound) and their sum.
  std::vector<double> duration_bounds_s;
  std::vector<std::uint64_t> duration_counts;
  double duration_sum_s = 0;
};

namespace detail {
struct ServerImpl;
struct StreamEntry;
}  // namespace detail

// The application's handle on a manual stream. Copyable; thread-safe.
class StreamWriter final {
 public:
  StreamWriter() = default;
  // Publishes value stamped now; false if the stream is disabled or removed.
  bool publish(Value value);
  // Publishes with the application's own wall-clock timestamp (ns since epoch).
  bool publish(Value value, std::int64_t wall_ns);
  bool publish_error(const std::string& type, const std::string& message);
  const std::string& name() const;

 private:
  friend class RemoteServer;
  StreamWriter(std::weak_ptr<detail::ServerImpl> server,
               std::shared_ptr<detail::StreamEntry> entry);
  std::weak_ptr<detail::ServerImpl> server_;
  std::shared_ptr<detail::StreamEntry> entry_;
};

class RemoteServer final {
 public:
  // Binds both sockets; throws SetupError if a bind fails.
  explicit RemoteServer(ServerOptions options = {});
  ~RemoteServer();
  RemoteServer(const RemoteServer&) = delete;
  RemoteServer& operator=(const RemoteServer&) = delete;

  // Registers a call. f is either a generic handler `Value(const Args&)` or
  // a typed function whose parameters and return value convert from/to wire
  // values (numbers, bool, strings, Json, Array, Value, ...); name its
  // parameters in info.params. Throws SetupError if the name is taken or invalid.
  template <class F>
  void add_call(std::string name, F f, CallInfo info = {}) {
    auto handler = make_handler(std::move(f), info);
    add_handler(std::move(name), std::move(handler), std::move(info));
  }
  void add_handler(std::string name, Handler handler, CallInfo info);
  bool remove_call(const std::string& name);
  std::vector<std::pair<std::string, CallInfo>> calls() const;

  // A periodic stream: producer is called rate_hz times per second while
  // enabled and its value published. Created disabled, it never runs until enabled.
  void add_stream(std::string name, double rate_hz, std::function<Value()> producer,
                  StreamOptions options = {});
  // A manual stream: the application publishes through the writer.
  StreamWriter add_manual_stream(std::string name, StreamOptions options = {});
  // Relays a stream of another server (or any PUB socket) under `name`.
  void add_relay(std::string name, std::string endpoint, RelayOptions options = {});
  // Relays every call of another RemoteServer as "prefix.<call>".
  void add_call_relay(std::string prefix, std::string endpoint,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

  // Idempotent; throw Failure(not_found) for unknown streams. Relays and
  // periodic and manual streams all obey them.
  void enable_stream(const std::string& name);
  void disable_stream(const std::string& name);
  void remove_stream(const std::string& name);
  std::vector<StreamStatus> streams() const;
  // Calls, clients and request counts (docs/dashboard.md). Clients are
  // remembered up to kMaxClients, the least recently seen forgotten first.
  ServerStats stats() const;
  static constexpr std::size_t kMaxClients = 256;

  // Starts the socket threads and the periodic stream threads; calls and streams may be
  // added before or after.
  void start();
  // Stops every thread; idempotent (the destructor calls it).
  void stop();

  // Bound endpoints with real ports (for binds to port 0 or "*").
  const std::string& rpc_endpoint() const noexcept;
  const std::string& stream_endpoint() const noexcept;
  std::uint64_t server_id() const noexcept;
  const std::shared_ptr<zmq::context_t>& context() const noexcept;

 private:
  std::shared_ptr<detail::ServerImpl> impl_;
};

}  // namespace acheron::remote
