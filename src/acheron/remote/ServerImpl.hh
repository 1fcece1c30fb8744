// Internal to the remote library: the state and the parts of RemoteServer,
// shared by the files that implement them (not part of the public API).
//   Server.cc            construction, StreamWriter, the RemoteServer API
//   ServerCalls.cc       call requests: decoding, built-in calls, running a call, replies
//   ServerCallThreads.cc the call threads: leader/followers over the ROUTER, hand-over
//   ServerWriteLock.cc   the single-writer lock (lease, refusals)
//   ServerStreams.cc     streams: periodic schedule, publication, held messages, the
//                        stream thread (subscriptions, heartbeats, commands)
//   ServerRelays.cc      relayed streams (stream thread)
#pragma once

#include <cxxabi.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <unistd.h>

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
  zmq::socket_t router;
  zmq::socket_t xpub;
  std::string rpc_endpoint, stream_endpoint;
  std::uint64_t server_id = 0;
  net::Waker waker;      // wakes the stream thread (stream messages, commands)
  net::Waker rpc_waker;  // wakes the leading call thread (a reply sent by another thread)

  std::mutex out_mutex;
  std::deque<Outgoing> outbox;
  std::deque<std::function<void()>> commands;

  mutable std::shared_mutex calls_mutex;
  std::map<std::string, std::shared_ptr<CallEntry>, std::less<>> calls;

  mutable std::mutex streams_mutex;
  std::map<std::string, std::shared_ptr<StreamEntry>, std::less<>> streams;
  std::vector<std::thread> stream_threads;  // joined at stop

  std::thread io;  // streams: XPUB, relays, heartbeat

  // Calls: leader/followers over the ROUTER. One call thread at a time (the
  // leader) waits for requests and runs the call it read itself, so neither
  // the request nor the reply waits for another thread to wake up. A pool
  // call keeps the lead while it runs; once it has run for handoff_after, the
  // hand-over thread (woken by a timerfd) passes the lead to an idle thread.
  // Quick calls (Threading::io_thread) and built-ins run in the leader and
  // never hand over. Every use of the ROUTER holds socket_mutex; the leader
  // sleeps in poll() on the socket's ZMQ_FD.
  std::vector<std::thread> call_threads;
  std::mutex socket_mutex;
  std::mutex lf_mutex;
  std::condition_variable lf_cv;
  bool has_leader = false;
  std::size_t idle = 0;    // call threads waiting to lead
  FairQueue<Job> backlog;  // pool calls waiting for a free call thread, per client
  // Pool calls accepted and not finished (running or in the backlog): at
  // most threads + max_queued, so the backlog is bounded; when it is full,
  // the client with the most waiting calls gives way (FairQueue).
  std::atomic<std::size_t> in_flight{0};
  // Clients whose reply could not be queued (their queue is full: they do
  // not read their replies), under socket_mutex; their requests are refused
  // unread until a reply to them gets through. Bounded.
  std::set<std::string, std::less<>> backed_up;
  std::atomic<std::size_t> backed_up_count{0};
  bool leader_running_call = false;  // the leader runs a pool call and still leads
  std::uint64_t lead_term = 0;       // counts hand-overs: a thread that ran a call while
                                     // the lead moved on learns it from a changed term
  bool handoff_armed = false;        // the timer runs (it is never cancelled, see lead())
  TimePoint leader_call_since{};
  int handoff_timer = -1;  // timerfd: wakes the hand-over thread while calls run
  std::thread handoff_thread;
  net::Waker handoff_waker;
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

  // Sends on the ROUTER from any call thread. A thread other than the
  // leader may have consumed the socket's ZMQ_FD signal while sending, so it
  // wakes the leader when requests are waiting.
  bool send_reply(const std::vector<Buffer>& route, std::vector<Buffer> frames, bool leader);

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

  void finish_job(Job& job, std::vector<Buffer> frames, bool leader);

  // The write lock: the holder's token, renewed by each of its requests
  // until it unlocks or stays silent for a whole lease.
  bool lock_held_by_other(std::uint64_t token, TimePoint now) const;

  void check_write(std::uint64_t token, bool mutating);

  Json lock_status(std::uint64_t token);

  Json list_calls() const;

  Json list_streams() const;

  Value builtin(const wire::Envelope& request);

  // Handles one message from the ROUTER in the leading call thread: replies
  // to what it can answer at once and returns a pool call to run.
  std::optional<Job> handle_request(std::vector<Buffer>& frames);

  // The leader's loop: waits for requests and answers them until it hands
  // the lead over to run a pool call (or the server stops).
  void lead();

  void arm_handoff(std::chrono::microseconds after);

  // The hand-over thread: when a pool call has held the lead for
  // handoff_after, an idle call thread becomes the leader.
  void watch_handoffs();

  void call_thread();

  void handle_subscription(const Buffer& msg);

  void heartbeat();

  // Stream thread: publishes queued stream messages and runs commands.
  void drain();

  void run_streams();
};

}  // namespace acheron::remote::detail
