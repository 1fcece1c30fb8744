// Internal to the remote library: the state and the parts of RemoteServer,
// shared by the files that implement them (not part of the public API).
//   Server.cc            construction, StreamWriter, the RemoteServer API
//   ServerCalls.cc       call requests: decoding, built-in calls, running a call, replies
//   ServerCallThreads.cc the reactor thread's ROUTER handler and the call threads
//   ServerWriteLock.cc   the single-writer lock (lease, refusals)
//   ServerStreams.cc     streams: periodic schedule, publication, held messages, the
//                        stream thread (subscriptions, heartbeats, commands)
//   ServerRelays.cc      relayed streams (stream thread)
#pragma once

#include <cxxabi.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <typeinfo>

#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/core/Version.hh"
#include "acheron/net/Reactor.hh"
#include "acheron/remote/Client.hh"
#include "acheron/remote/FairQueue.hh"
#include "acheron/remote/Protocol.hh"
#include "acheron/remote/Schedule.hh"
#include "acheron/remote/Server.hh"

namespace acheron::remote::detail {

struct CallEntry {
  CallEntry(CallInfo i, Handler h) : info(std::move(i)), handler(std::move(h)) {}
  CallInfo info;
  Handler handler;
  // Figures (run_call).
  mutable std::atomic<std::uint64_t> calls{0}, errors{0}, busy_ns{0};
};

struct ClientRecord {
  std::uint64_t requests = 0;
  TimePoint last_seen{};
};

struct StreamEntry {
  std::string name;
  std::string topic;  // name + NUL
  StreamKind kind = StreamKind::manual;
  StreamOptions options;
  double rate_hz = 0;
  std::function<Value()> producer;
  std::string source;
  RelayOptions relay;

  mutable std::mutex mutex;
  std::condition_variable cv;
  bool enabled = false;
  bool removed = false;
  std::uint64_t seq = 0;
  std::uint64_t published = 0;
  std::uint64_t published_since_enable = 0;
  std::uint64_t overruns = 0;
  std::uint64_t errors = 0;
  TimePoint enabled_at{};
  std::atomic<bool> subscribed{false};
  std::vector<Buffer> last;            // stream thread only: the last message, for late subscribers
  std::uint64_t dropped = 0;           // never sent: a subscriber's queue stayed full (XPUB_NODROP)
  std::atomic<std::uint64_t> held{0};  // waiting in the server's send backlog now
};

// A call waiting for or running on a call thread.
struct Job {
  std::shared_ptr<CallEntry> call;
  std::vector<Buffer> route;
  wire::Envelope request;
  Framing framing = Framing::compact;
  TimePoint deadline;
  std::shared_ptr<CallContext> context;
  std::string key;     // route identity + request id: where a CANCEL finds the call
  std::string client;  // route identity: whose turn the call waits for
  // The refusal of the waiting call this one took the place of (route and
  // reply frames), sent once this one is queued or running.
  std::vector<Buffer> evicted_route, evicted_reply;
};

// A stream message on its way to the stream thread.
struct Outgoing {
  std::vector<Buffer> frames;
  std::shared_ptr<StreamEntry> entry;
};

struct Relay {
  std::shared_ptr<StreamEntry> entry;
  zmq::socket_t socket;
  bool subscribed = false;
};

inline std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> p(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                           std::free);
  return status == 0 && p ? std::string(p.get()) : std::string(name);
}

// A refusal by the write lock. Replied with the error type the Python
// server gives it (PermissionError), whichever call it refused.
class LockRefused final : public Failure {
 public:
  explicit LockRefused(const std::string& message)
      : Failure(StatusCode::permission_denied, message) {}
};
inline constexpr const char* kLockRefusedType = "PermissionError";
// Clients remembered as not reading their replies (ServerImpl::backed_up).
inline constexpr std::size_t kMaxBackedUp = 4096;

inline std::string bound_endpoint(zmq::socket_t& s) {
  return s.get(zmq::sockopt::last_endpoint);
}

struct ServerImpl : std::enable_shared_from_this<ServerImpl> {
  ServerOptions options;
  std::shared_ptr<zmq::context_t> context;
  // The ROUTER belongs to `reactor` once the constructor has bound it: it
  // is used on the reactor thread only.
  net::Reactor reactor;
  zmq::socket_t* router = nullptr;
  zmq::socket_t xpub;
  std::string rpc_endpoint, stream_endpoint;
  std::uint64_t server_id = 0;
  net::Waker waker;  // wakes the stream thread (stream messages, commands)

  std::mutex out_mutex;
  std::deque<Outgoing> outbox;
  std::deque<std::function<void()>> commands;

  mutable std::shared_mutex calls_mutex;
  std::map<std::string, std::shared_ptr<CallEntry>, std::less<>> calls;

  mutable std::mutex streams_mutex;
  std::map<std::string, std::shared_ptr<StreamEntry>, std::less<>> streams;
  std::vector<std::thread> stream_threads;  // joined at stop

  std::thread io;  // streams: XPUB, relays, heartbeat

  // Calls: the reactor thread reads the ROUTER, answers built-ins,
  // io_thread calls and refusals itself, and queues pool calls in the
  // backlog; `threads` call threads take them in their clients' turn and
  // post the replies back to the reactor thread, which sends them.
  std::vector<std::thread> call_threads;
  std::mutex backlog_mutex;
  std::condition_variable backlog_cv;
  FairQueue<Job> backlog;  // pool calls waiting for a free call thread, per client
  // Pool calls accepted and not finished (running or in the backlog): at
  // most threads + max_queued, so the backlog is bounded; when it is full,
  // the client with the most waiting calls gives way (FairQueue).
  std::atomic<std::size_t> in_flight{0};
  // Clients whose reply could not be queued (their queue is full: they do
  // not read their replies), reactor thread only; their requests are
  // refused unread until a reply to them gets through. Bounded.
  std::set<std::string, std::less<>> backed_up;
  std::mutex running_mutex;
  std::map<std::string, std::shared_ptr<CallContext>, std::less<>> running;

  // Stream messages a full subscriber queue held back (stream thread only).
  std::deque<std::pair<std::shared_ptr<StreamEntry>, std::vector<Buffer>>> held;
  TimePoint next_drop_warning{};

  // Figures for stats().
  std::atomic<std::uint64_t> n_requests{0}, n_busy{0}, n_not_found{0}, n_malformed{0};
  std::array<std::atomic<std::uint64_t>, kCallDurationBoundsS.size() + 1> duration_counts{};
  std::atomic<std::uint64_t> duration_sum_ns{0};
  mutable std::mutex clients_mutex;
  std::map<std::string, ClientRecord, std::less<>> clients;  // by ROUTER identity
  void note_client(const Buffer& identity);
  void record_call(const CallEntry& call, Duration took, bool error);

  std::atomic<bool> stopping{false};
  bool started = false;
  std::mutex start_mutex;

  std::mutex lock_mutex;
  std::uint64_t lock_holder = 0;
  TimePoint lock_expiry{};
  std::chrono::milliseconds lock_lease{0};

  std::vector<Relay> relays;  // stream thread only
  std::vector<std::shared_ptr<RemoteClient>> upstreams;
  std::uint64_t heartbeat_seq = 0;

  explicit ServerImpl(ServerOptions o);

  // --- streams --------------------------------------------------------------

  std::shared_ptr<StreamEntry> find_stream(std::string_view name) const;

  std::shared_ptr<StreamEntry> stream_or_throw(std::string_view name) const;

  void post(Outgoing out);

  void command(std::function<void()> f);

  bool publish(const std::shared_ptr<StreamEntry>& e, Value value,
               std::optional<wire::RemoteError> error, std::int64_t wall_ns);

  void run_periodic(std::shared_ptr<StreamEntry> e);

  void set_enabled(const std::shared_ptr<StreamEntry>& e, bool on);

  void remove(const std::string& name);

  StreamStatus status(const StreamEntry& e) const;

  std::shared_ptr<StreamEntry> insert(std::shared_ptr<StreamEntry> e);

  // --- relays (stream thread) ----------------------------------------------------

  void update_relay(const std::shared_ptr<StreamEntry>& e);

  void relay_message(Relay& r, std::vector<Buffer>& frames);

  // Publishes a stream message, or holds it back while a subscriber's
  // queue is full (XPUB_NODROP): held messages go out in order as soon as
  // the queue has room; beyond send_hwm held messages the oldest is dropped
  // and counted in the stream's status (and logged), never lost silently.
  void send_stream(const std::shared_ptr<StreamEntry>& e, std::vector<Buffer> frames);

  // Sends held stream messages while subscriber queues have room.
  void flush_held();

  // --- calls ----------------------------------------------------------------

  // Sends on the ROUTER: reactor thread only.
  bool send_reply(const std::vector<Buffer>& route, std::vector<Buffer> frames);
  // Sends from any thread: at once on the reactor thread, else through the
  // reactor's inbox (waits while it is full; false once the server stops).
  // wait: returns whether the reply was sent, not just queued.
  enum class Wait { queued, sent };
  bool post_reply(std::vector<Buffer> route, std::vector<Buffer> frames, Wait wait);

  static std::vector<Buffer> error_frames(const wire::Envelope& request, Framing framing,
                                          StatusCode code, std::string type, std::string message);

  static wire::Envelope reply_envelope(const wire::Envelope& request, wire::Command command,
                                       Value value, Framing framing);

  // Runs one call and returns the reply frames; never throws.
  std::vector<Buffer> run_call(const CallEntry& call, const wire::Envelope& request,
                               Framing framing, CallContext& context);

  // A context whose progress values go to the caller as PARTIAL replies.
  std::shared_ptr<CallContext> make_context(const std::vector<Buffer>& route,
                                            const wire::Envelope& request, Framing framing,
                                            TimePoint deadline);

  static std::string running_key(const std::vector<Buffer>& route, std::uint64_t id);

  void run_job(Job& job);

  void finish_job(Job& job, std::vector<Buffer> frames);

  // The write lock: the holder's token, renewed by each of its requests
  // until it unlocks or stays silent for a whole lease.
  bool lock_held_by_other(std::uint64_t token, TimePoint now) const;

  void check_write(std::uint64_t token, bool mutating);

  Json lock_status(std::uint64_t token);

  Json list_calls() const;

  Json list_streams() const;

  Value builtin(const wire::Envelope& request);

  // Handles one message from the ROUTER on the reactor thread: replies to
  // what it can answer at once and returns a pool call to run.
  std::optional<Job> handle_request(std::vector<Buffer>& frames);

  // The reactor's handler of the ROUTER: reads a bounded batch of requests.
  void read_requests(zmq::socket_t& socket);

  // Queues a pool call for the call threads (reactor thread).
  void dispatch(Job job);

  // A call thread: runs backlog calls in their clients' turn until the server stops.
  void call_thread();

  void handle_subscription(const Buffer& msg);

  void heartbeat();

  // Stream thread: publishes queued stream messages and runs commands.
  void drain();

  void run_streams();
};

}  // namespace acheron::remote::detail
