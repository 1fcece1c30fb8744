#include "acheron/remote/Server.hh"

#include <cxxabi.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>
#include <typeinfo>

#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/core/Version.hh"
#include "acheron/remote/Client.hh"
#include "acheron/remote/Protocol.hh"
#include "acheron/remote/Schedule.hh"

namespace acheron::remote {

std::string_view to_string(StreamKind kind) {
  switch (kind) {
    case StreamKind::periodic:
      return "periodic";
    case StreamKind::manual:
      return "manual";
    case StreamKind::relay:
      return "relay";
  }
  return "?";
}

Json to_json(const StreamStatus& s) {
  Json j = {{"name", s.name},
            {"kind", std::string(to_string(s.kind))},
            {"enabled", s.enabled},
            {"achieved_hz", s.achieved_hz},
            {"published", s.published},
            {"overruns", s.overruns},
            {"errors", s.errors},
            {"subscribed", s.subscribed},
            {"dropped", s.dropped},
            {"held", s.held},
            {"doc", s.doc}};
  if (s.kind == StreamKind::periodic) j["rate_hz"] = s.rate_hz;
  if (s.kind == StreamKind::relay) j["source"] = s.source;
  return j;
}

namespace detail {

struct CallEntry {
  CallInfo info;
  Handler handler;
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
  std::string key;  // route identity + request id: where a CANCEL finds the call
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

std::string demangle(const char* name) {
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
constexpr const char* kLockRefusedType = "PermissionError";

std::string bound_endpoint(zmq::socket_t& s) {
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
  std::size_t idle = 0;     // call threads waiting to lead
  std::deque<Job> backlog;  // pool calls waiting for a free call thread
  // Pool calls accepted and not finished (running or in the backlog): at
  // most threads + max_queued, so the backlog is bounded.
  std::atomic<std::size_t> in_flight{0};
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

  explicit ServerImpl(ServerOptions o) : options(std::move(o)) {
    lock_lease = options.lock_lease;
    context = options.context ? options.context : std::make_shared<zmq::context_t>(1);
    router = zmq::socket_t(*context, zmq::socket_type::router);
    xpub = zmq::socket_t(*context, zmq::socket_type::xpub);
    for (auto* s : {&router, &xpub}) {
      net::set_linger(*s, std::chrono::milliseconds(0));
      if (options.curve) net::make_curve_server(*s, *options.curve);
    }
    // Unroutable replies and full subscriber queues are reported to us
    // instead of being dropped silently.
    router.set(zmq::sockopt::router_mandatory, 1);
    xpub.set(zmq::sockopt::xpub_verbose, 1);
    xpub.set(zmq::sockopt::sndhwm, options.send_hwm);
    // What a client (ROUTER) or subscriber (XPUB) may send per frame; libzmq
    // drops the connection of a peer that sends more.
    const std::int64_t max_frame = options.max_message_size > 0 ? options.max_message_size : -1;
    router.set(zmq::sockopt::maxmsgsize, max_frame);
    xpub.set(zmq::sockopt::maxmsgsize, max_frame);
    if (options.slow_subscribers == SlowSubscribers::hold) xpub.set(zmq::sockopt::xpub_nodrop, 1);
    try {
      router.bind(options.rpc_bind);
    } catch (const zmq::error_t& e) {
      throw SetupError("cannot bind the call socket to '" + options.rpc_bind + "' (" + e.what() +
                       ") choose a free endpoint");
    }
    try {
      xpub.bind(options.stream_bind);
    } catch (const zmq::error_t& e) {
      throw SetupError("cannot bind the stream socket to '" + options.stream_bind + "' (" +
                       e.what() + ") choose a free endpoint");
    }
    rpc_endpoint = bound_endpoint(router);
    stream_endpoint = bound_endpoint(xpub);
    std::random_device rd;
    server_id = (static_cast<std::uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffull;
    if (server_id == 0) server_id = 1;
  }

  // --- streams --------------------------------------------------------------

  std::shared_ptr<StreamEntry> find_stream(std::string_view name) const {
    std::lock_guard lock(streams_mutex);
    auto it = streams.find(name);
    return it == streams.end() ? nullptr : it->second;
  }

  std::shared_ptr<StreamEntry> stream_or_throw(std::string_view name) const {
    auto e = find_stream(name);
    if (!e) throw Failure(StatusCode::not_found, "no stream named '" + std::string(name) + "'");
    return e;
  }

  void post(Outgoing out) {
    {
      std::lock_guard lock(out_mutex);
      outbox.push_back(std::move(out));
    }
    waker.wake();
  }

  void command(std::function<void()> f) {
    {
      std::lock_guard lock(out_mutex);
      commands.push_back(std::move(f));
    }
    waker.wake();
  }

  bool publish(const std::shared_ptr<StreamEntry>& e, Value value,
               std::optional<wire::RemoteError> error, std::int64_t wall_ns) {
    StreamMessage m;
    {
      std::lock_guard lock(e->mutex);
      if (!e->enabled || e->removed) return false;
      m.seq = ++e->seq;
      ++e->published;
      ++e->published_since_enable;
      if (error) ++e->errors;
    }
    m.stream = e->name;
    m.server_id = server_id;
    m.wall_ns = wall_ns != 0 ? wall_ns : wall_time_ns();
    m.mono_ns = mono_time_ns();
    m.value = std::move(value);
    m.error = std::move(error);
    post({encode_stream(m), e});
    return true;
  }

  void run_periodic(std::shared_ptr<StreamEntry> e) {
    const auto period =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(1.0 / e->rate_hz));
    PeriodicSchedule schedule(period, Clock::now());
    bool was_enabled = false;
    std::unique_lock lock(e->mutex);
    for (;;) {
      e->cv.wait(lock, [&] { return stopping.load() || e->removed || e->enabled; });
      if (stopping || e->removed) return;
      if (!was_enabled) {
        schedule.restart(Clock::now());
        was_enabled = true;
      }
      // Sleep until the deadline; a disable, removal or stop wakes us early.
      const TimePoint due = schedule.next();
      if (e->cv.wait_until(lock, due,
                           [&] { return stopping.load() || e->removed || !e->enabled; })) {
        if (stopping || e->removed) return;
        was_enabled = false;  // disabled: the schedule restarts when enabled again
        continue;
      }
      const bool idle = e->options.only_with_subscribers && !e->subscribed.load();
      lock.unlock();
      if (!idle) {
        Value v;
        std::optional<wire::RemoteError> err;
        try {
          v = e->producer();
        } catch (const Failure& f) {
          err = wire::RemoteError{f.code(), demangle(typeid(f).name()), f.what(), {}};
        } catch (const std::exception& x) {
          err = wire::RemoteError{StatusCode::unknown, demangle(typeid(x).name()), x.what(), {}};
        }
        publish(e, std::move(v), std::move(err), 0);
      }
      lock.lock();
      const auto skipped_before = schedule.overruns();
      schedule.advance(Clock::now());
      e->overruns += schedule.overruns() - skipped_before;
    }
  }

  void set_enabled(const std::shared_ptr<StreamEntry>& e, bool on) {
    {
      std::lock_guard lock(e->mutex);
      if (e->removed) throw Failure(StatusCode::not_found, "stream '" + e->name + "' was removed");
      if (e->enabled == on) return;  // idempotent
      e->enabled = on;
      if (on) {
        e->enabled_at = Clock::now();
        e->published_since_enable = 0;
      }
    }
    e->cv.notify_all();
    if (e->kind == StreamKind::relay) {
      auto self = shared_from_this();
      command([self, e] { self->update_relay(e); });
    }
  }

  void remove(const std::string& name) {
    std::shared_ptr<StreamEntry> e;
    {
      std::lock_guard lock(streams_mutex);
      auto it = streams.find(name);
      if (it == streams.end())
        throw Failure(StatusCode::not_found, "no stream named '" + name + "'");
      e = it->second;
      streams.erase(it);
    }
    {
      std::lock_guard lock(e->mutex);
      e->removed = true;
      e->enabled = false;
    }
    e->cv.notify_all();
    if (e->kind == StreamKind::relay) {
      auto self = shared_from_this();
      command(
          [self, e] { std::erase_if(self->relays, [&](const Relay& r) { return r.entry == e; }); });
    }
  }

  StreamStatus status(const StreamEntry& e) const {
    StreamStatus s;
    std::lock_guard lock(e.mutex);
    s.name = e.name;
    s.kind = e.kind;
    s.enabled = e.enabled;
    s.rate_hz = e.rate_hz;
    s.published = e.published;
    s.overruns = e.overruns;
    s.errors = e.errors;
    s.subscribed = e.subscribed.load();
    s.dropped = e.dropped;
    s.held = e.held.load();
    s.doc = e.options.doc;
    s.source = e.source;
    if (e.enabled) {
      const double secs = std::chrono::duration<double>(Clock::now() - e.enabled_at).count();
      s.achieved_hz = secs > 0 ? static_cast<double>(e.published_since_enable) / secs : 0;
    }
    return s;
  }

  std::shared_ptr<StreamEntry> insert(std::shared_ptr<StreamEntry> e) {
    check_name("stream", e->name);
    e->topic = topic_of(e->name);
    e->enabled = e->options.enabled;
    e->enabled_at = Clock::now();
    std::lock_guard lock(streams_mutex);
    if (!streams.emplace(e->name, e).second) {
      throw SetupError("a stream named '" + e->name +
                       "' exists (names are unique) remove it first");
    }
    return e;
  }

  // --- relays (stream thread) ----------------------------------------------------

  void update_relay(const std::shared_ptr<StreamEntry>& e) {
    for (Relay& r : relays) {
      if (r.entry != e) continue;
      bool on;
      {
        std::lock_guard lock(e->mutex);
        on = e->enabled && !e->removed;
      }
      const std::string filter =
          e->relay.format == RelayFormat::acheron ? topic_of(e->relay.upstream) : e->relay.upstream;
      if (on && !r.subscribed) r.socket.set(zmq::sockopt::subscribe, filter);
      if (!on && r.subscribed) r.socket.set(zmq::sockopt::unsubscribe, filter);
      r.subscribed = on;
    }
  }

  void relay_message(Relay& r, std::vector<Buffer>& frames) {
    auto& e = r.entry;
    if (e->relay.format == RelayFormat::acheron) {
      auto m = decode_stream(frames);
      if (!m || m->stream != e->relay.upstream) return;  // exact topic match only
      {
        std::lock_guard lock(e->mutex);
        if (!e->enabled) return;
        ++e->published;
        ++e->published_since_enable;
        e->seq = m->seq;
      }
      frames[0] = Buffer::copy_of(e->topic.data(), e->topic.size());
      send_stream(e, std::move(frames));
    } else {
      Value v;
      Json refs = Json::array();
      for (const Buffer& f : frames) {
        refs.push_back(v.add(Array(DType::uint8, {static_cast<std::int64_t>(f.size())}, f)));
      }
      v.data = refs.size() == 1 ? refs[0] : refs;
      publish(e, std::move(v), std::nullopt, 0);
    }
  }

  // Publishes a stream message, or holds it back while a subscriber's
  // queue is full (XPUB_NODROP): held messages go out in order as soon as
  // the queue has room; beyond send_hwm held messages the oldest is dropped
  // and counted in the stream's status (and logged), never lost silently.
  void send_stream(const std::shared_ptr<StreamEntry>& e, std::vector<Buffer> frames) {
    if (held.empty() && net::send_frames(xpub, frames, zmq::send_flags::dontwait)) {
      if (e) e->last = std::move(frames);
      return;
    }
    if (!e) return;  // a heartbeat or snapshot is not worth holding: the next one follows
    ++e->held;
    held.emplace_back(e, std::move(frames));
    while (held.size() > static_cast<std::size_t>(std::max(1, options.send_hwm))) {
      auto& [old, f] = held.front();
      --old->held;
      std::uint64_t dropped;
      {
        std::lock_guard lock(old->mutex);
        dropped = ++old->dropped;
      }
      const auto now = Clock::now();
      if (now >= next_drop_warning) {
        log::warn(
            "remote server: stream '{}' dropped a message ({} so far): a subscriber's queue "
            "is full (send_hwm {})",
            old->name, dropped, options.send_hwm);
        next_drop_warning = now + std::chrono::seconds(5);
      }
      held.pop_front();
    }
  }

  // Sends held stream messages while subscriber queues have room.
  void flush_held() {
    while (!held.empty()) {
      auto& [e, frames] = held.front();
      if (!net::send_frames(xpub, frames, zmq::send_flags::dontwait)) return;
      --e->held;
      e->last = std::move(frames);
      held.pop_front();
    }
  }

  // --- calls ----------------------------------------------------------------

  // Sends on the ROUTER from any call thread. A thread other than the
  // leader may have consumed the socket's ZMQ_FD signal while sending, so it
  // wakes the leader when requests are waiting.
  bool send_reply(const std::vector<Buffer>& route, std::vector<Buffer> frames, bool leader) {
    std::vector<Buffer> out;
    out.reserve(route.size() + frames.size());
    out.insert(out.end(), route.begin(), route.end());
    for (auto& f : frames) out.push_back(std::move(f));
    std::lock_guard lock(socket_mutex);
    const bool sent = net::send_frames(router, out, zmq::send_flags::dontwait);
    if (!leader && (router.get(zmq::sockopt::events) & ZMQ_POLLIN)) rpc_waker.wake();
    return sent;
  }

  static std::vector<Buffer> error_frames(const wire::Envelope& request, Framing framing,
                                          StatusCode code, std::string type, std::string message) {
    return encode_call(wire::make_error(request, {code, std::move(type), std::move(message), {}}),
                       framing);
  }

  static wire::Envelope reply_envelope(const wire::Envelope& request, wire::Command command,
                                       Value value, Framing framing) {
    wire::Envelope e = wire::make_reply(request, command, reply_payload(std::move(value)));
    if (framing == Framing::compact) e.method.clear();  // the request id identifies the call
    return e;
  }

  // Runs one call and returns the reply frames; never throws.
  std::vector<Buffer> run_call(const CallEntry& call, const wire::Envelope& request,
                               Framing framing, CallContext& context) {
    try {
      if (Clock::now() > context.deadline()) {
        return error_frames(request, framing, StatusCode::deadline_exceeded, "TimeoutError",
                            "the call's deadline passed before it could start");
      }
      std::uint64_t token = 0;
      Args args = args_of(request, &token);
      check_args(request.method, call.info, args);
      check_write(token, call.info.mutating);
      CurrentCall current(&context);
      Value v = call.handler(args);
      return encode_call(reply_envelope(request, wire::Command::final, std::move(v), framing),
                         framing);
    } catch (const LockRefused& f) {
      return error_frames(request, framing, f.code(), kLockRefusedType, f.what());
    } catch (const Failure& f) {
      return error_frames(
          request, framing, f.code(),
          f.code() == StatusCode::invalid_argument ? "TypeError" : demangle(typeid(f).name()),
          f.what());
    } catch (const std::exception& x) {
      return error_frames(request, framing, StatusCode::unknown, demangle(typeid(x).name()),
                          x.what());
    } catch (...) {
      return error_frames(request, framing, StatusCode::unknown, "unknown",
                          "the call threw a non-standard exception");
    }
  }

  // A context whose progress values go to the caller as PARTIAL replies.
  std::shared_ptr<CallContext> make_context(const std::vector<Buffer>& route,
                                            const wire::Envelope& request, Framing framing,
                                            TimePoint deadline) {
    std::weak_ptr<ServerImpl> weak = weak_from_this();
    wire::Envelope head;  // what a PARTIAL needs of the request
    head.service = request.service;
    head.request_id = request.request_id;
    head.method = request.method;
    return std::make_shared<CallContext>(
        request.method, deadline, [weak, route, head, framing](Value v) {
          auto self = weak.lock();
          if (!self || self->stopping) return false;
          return self->send_reply(
              route,
              encode_call(reply_envelope(head, wire::Command::partial, std::move(v), framing),
                          framing),
              false);
        });
  }

  static std::string running_key(const std::vector<Buffer>& route, std::uint64_t id) {
    std::string key;
    if (!route.empty()) key.assign(reinterpret_cast<const char*>(route[0].data()), route[0].size());
    for (int i = 0; i < 8; ++i) key.push_back(static_cast<char>(id >> (8 * i)));
    return key;
  }

  void run_job(Job& job) {
    finish_job(job, run_call(*job.call, job.request, job.framing, *job.context), false);
  }

  void finish_job(Job& job, std::vector<Buffer> frames, bool leader) {
    {
      std::lock_guard lock(running_mutex);
      running.erase(job.key);
    }
    // Before the reply: its caller may call again at once.
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    // A cancelled call gets no reply: its caller stopped waiting.
    if (!job.context->cancel_requested()) send_reply(job.route, std::move(frames), leader);
  }

  // The write lock: the holder's token, renewed by each of its requests
  // until it unlocks or stays silent for a whole lease.
  bool lock_held_by_other(std::uint64_t token, TimePoint now) const {
    return lock_holder != 0 && lock_holder != token && now < lock_expiry;
  }

  void check_write(std::uint64_t token, bool mutating) {
    std::lock_guard lock(lock_mutex);
    const auto now = Clock::now();
    if (lock_holder != 0 && now >= lock_expiry) lock_holder = 0;  // lease expired
    if (token != 0 && token == lock_holder) lock_expiry = now + lock_lease;
    if (!mutating) return;
    if (lock_held_by_other(token, now)) {
      throw LockRefused(
          "another client holds the write lock (mutating call refused) wait for it to unlock or "
          "its lease to expire, or take it with lock(force=true)");
    }
    if (lock_holder == 0 && options.write_lock == WriteLock::required) {
      throw LockRefused(
          "this server requires the write lock for mutating calls and stream management (none "
          "held) call lock() first");
    }
  }

  Json lock_status(std::uint64_t token) {
    std::lock_guard lock(lock_mutex);
    const auto now = Clock::now();
    if (lock_holder != 0 && now >= lock_expiry) lock_holder = 0;
    Json j = {{"held", lock_holder != 0},
              {"mine", lock_holder != 0 && lock_holder == token},
              {"lease_ms", lock_lease.count()}};
    j["remaining_ms"] =
        lock_holder == 0
            ? 0
            : std::chrono::duration_cast<std::chrono::milliseconds>(lock_expiry - now).count();
    return j;
  }

  Json list_calls() const {
    Json out = Json::array();
    std::shared_lock lock(calls_mutex);
    for (const auto& [name, c] : calls) {
      Json params = Json::array();
      for (const Param& p : c->info.params) {
        Json jp = {{"name", p.name}, {"type", p.type}};
        if (p.default_value) jp["default"] = *p.default_value;
        params.push_back(std::move(jp));
      }
      out.push_back({{"name", name},
                     {"doc", c->info.doc},
                     {"params", params},
                     {"returns", c->info.returns},
                     {"mutating", c->info.mutating},
                     {"variadic", c->info.variadic}});
    }
    return out;
  }

  Json list_streams() const {
    std::vector<std::shared_ptr<StreamEntry>> all;
    {
      std::lock_guard lock(streams_mutex);
      for (const auto& [n, e] : streams) all.push_back(e);
    }
    Json out = Json::array();
    for (const auto& e : all) out.push_back(to_json(status(*e)));
    return out;
  }

  Value builtin(const wire::Envelope& request) {
    std::uint64_t token = 0;
    Args args = args_of(request, &token);
    check_write(token, false);  // renews the caller's lease
    const std::string& m = request.method;
    auto stream_name = [&] { return args.get<std::string>(0, "name"); };
    if (m == kListCalls) return Value(list_calls());
    if (m == kListStreams) return Value(list_streams());
    if (m == kInfo) {
      return Value(Json{{"name", options.name},
                        {"version", std::string(version())},
                        {"server_id", server_id},
                        {"stream_endpoint", stream_endpoint},
                        {"protocol", 1},
                        {"write_lock", lock_status(token)}});
    }
    if (m == kEnableStream || m == kDisableStream || m == kRemoveStream) {
      // Stream management changes the server for every client: it obeys the
      // write lock as mutating calls do.
      check_write(token, true);
      if (m == kRemoveStream) return remove(stream_name()), Value(true);
      return set_enabled(stream_or_throw(stream_name()), m == kEnableStream), Value(true);
    }
    if (m == kLock || m == kUnlock) {
      if (token == 0) throw_bad_argument("the write lock needs a client token");
      std::lock_guard lock(lock_mutex);
      const auto now = Clock::now();
      if (m == kUnlock) {
        if (lock_holder == token) lock_holder = 0;
        return Value(true);
      }
      const bool force = args.get<bool>(0, "force", false);
      if (lock_held_by_other(token, now) && !force) return Value(false);
      lock_holder = token;
      lock_expiry = now + lock_lease;
      return Value(true);
    }
    throw Failure(StatusCode::not_found, "no built-in call named '" + m + "'");
  }

  // Handles one message from the ROUTER in the leading call thread: replies
  // to what it can answer at once and returns a pool call to run.
  std::optional<Job> handle_request(std::vector<Buffer>& frames) {
    // [identity][empty delimiter if the client is REQ] message...
    if (frames.size() < 2) return std::nullopt;
    std::size_t start = 1;
    if (frames[1].empty()) start = 2;
    std::vector<Buffer> route(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(start));
    std::span<const Buffer> msg(frames.data() + start, frames.size() - start);
    Framing framing = Framing::envelope;
    auto decoded = decode_call(msg, &framing);
    if (!decoded) {
      // Answer what we can: the request id if it is readable.
      wire::Envelope fake;
      if (framing == Framing::compact) {
        fake.request_id = compact_request_id(msg[0]);
      } else if (msg.size() >= 4 && msg[3].size() == 8) {
        std::uint64_t id = 0;
        for (int i = 7; i >= 0; --i) id = (id << 8) | static_cast<std::uint8_t>(msg[3].data()[i]);
        fake.request_id = id;
      }
      send_reply(route,
                 error_frames(fake, framing, StatusCode::invalid_argument, "ProtocolError",
                              decoded.error().message),
                 true);
      return std::nullopt;
    }
    wire::Envelope& req = *decoded;
    if (req.role != wire::Role::client) {
      send_reply(route,
                 error_frames(req, framing, StatusCode::invalid_argument, "ProtocolError",
                              "expected a client (ACHC01) message"),
                 true);
      return std::nullopt;
    }
    switch (req.client_command()) {
      case wire::Command::ping: {
        wire::Envelope pong;
        pong.command = static_cast<std::uint8_t>(wire::Command::pong);
        pong.service = req.service;
        pong.request_id = req.request_id;
        send_reply(route, encode_call(pong, framing), true);
        return std::nullopt;
      }
      case wire::Command::cancel: {
        std::lock_guard lock(running_mutex);
        auto it = running.find(running_key(route, req.request_id));
        if (it != running.end()) it->second->cancel();
        return std::nullopt;  // no reply, as the protocol says
      }
      case wire::Command::request:
        break;
      default:
        send_reply(route,
                   error_frames(req, framing, StatusCode::invalid_argument, "ProtocolError",
                                "unexpected command from a client"),
                   true);
        return std::nullopt;
    }
    const TimePoint deadline = req.timeout_ms > 0
                                   ? deadline_after(std::chrono::milliseconds(req.timeout_ms))
                                   : TimePoint::max();
    if (!req.method.empty() && req.method.front() == '$') {
      std::vector<Buffer> out;
      try {
        out =
            encode_call(reply_envelope(req, wire::Command::final, builtin(req), framing), framing);
      } catch (const LockRefused& f) {
        out = error_frames(req, framing, f.code(), kLockRefusedType, f.what());
      } catch (const Failure& f) {
        out = error_frames(req, framing, f.code(),
                           f.code() == StatusCode::invalid_argument ? "TypeError" : "Failure",
                           f.what());
      } catch (const std::exception& x) {
        out =
            error_frames(req, framing, StatusCode::internal, demangle(typeid(x).name()), x.what());
      }
      send_reply(route, std::move(out), true);
      return std::nullopt;
    }
    std::shared_ptr<CallEntry> call;
    {
      std::shared_lock lock(calls_mutex);
      auto it = calls.find(req.method);
      if (it != calls.end()) call = it->second;
    }
    if (!call) {
      send_reply(route,
                 error_frames(req, framing, StatusCode::not_found, "NotFound",
                              "no call named '" + req.method + "'"),
                 true);
      return std::nullopt;
    }
    if (call->info.threading == Threading::io_thread) {
      // Runs here, before the next request is read: nothing can cancel it,
      // and its progress replies go out through this thread's socket use.
      struct Origin {
        ServerImpl* self;
        const std::vector<Buffer>* route;
        const wire::Envelope* request;
        Framing framing;
      } origin{this, &route, &req, framing};
      CallContext context(req.method, deadline, [o = &origin](Value v) {
        return o->self->send_reply(*o->route,
                                   encode_call(reply_envelope(*o->request, wire::Command::partial,
                                                              std::move(v), o->framing),
                                               o->framing),
                                   true);
      });
      send_reply(route, run_call(*call, req, framing, context), true);
      return std::nullopt;
    }
    // Bounded backlog: at most `threads` calls run and max_queued wait.
    const std::size_t threads = std::max<std::size_t>(1, options.threads);
    if (in_flight.fetch_add(1, std::memory_order_relaxed) >= threads + options.max_queued) {
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      send_reply(route,
                 error_frames(req, framing, StatusCode::resource_exhausted, "ServerBusy",
                              "server busy: " + std::to_string(threads) +
                                  " calls are running and " + std::to_string(options.max_queued) +
                                  " waiting (max_queued) retry later"),
                 true);
      return std::nullopt;
    }
    try {
      auto context = make_context(route, req, framing, deadline);
      Job job{std::move(call),
              std::move(route),
              std::move(req),
              framing,
              deadline,
              std::move(context),
              {}};
      job.key = running_key(job.route, job.request.request_id);
      {
        std::lock_guard lock(running_mutex);
        running[job.key] = job.context;
      }
      return job;
    } catch (...) {  // out of memory: the call is not accepted after all
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      throw;
    }
  }

  // The leader's loop: waits for requests and answers them until it hands
  // the lead over to run a pool call (or the server stops).
  void lead() {
    const int fd = static_cast<int>(router.get(zmq::sockopt::fd));
    std::vector<Buffer> frames;
    while (!stopping) {
      bool got = false;
      {
        // A non-blocking receive processes the socket's pending commands
        // first, so after EAGAIN the ZMQ_FD is safe to wait on.
        std::lock_guard lock(socket_mutex);
        got = net::recv_frames(router, frames, zmq::recv_flags::dontwait);
      }
      if (!got) {
        // ZMQ_FD only signals a change: the socket is read again before each wait.
        pollfd fds[2] = {{fd, POLLIN, 0}, {rpc_waker.fd(), POLLIN, 0}};
        if (::poll(fds, 2, 1000) > 0 && (fds[1].revents & POLLIN)) rpc_waker.drain();
        continue;
      }
      std::optional<Job> job;
      try {
        job = handle_request(frames);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;
        log::error("remote server: request not handled: {}", e.what());
      } catch (const std::exception& e) {
        log::error("remote server: request not handled: {}", e.what());
      }
      if (!job) continue;
      std::unique_lock lk(lf_mutex);
      if (idle == 0) {
        backlog.push_back(std::move(*job));  // every call thread is busy: the next free one runs it
        continue;
      }
      if (handoff_timer < 0) {  // hand over at once
        has_leader = false;
        lk.unlock();
        lf_cv.notify_one();
        run_job(*job);
        return;
      }
      // The hand-over clock covers the call only, not the reply: a thread
      // preempted while sending (its caller woke up) has nothing to hand
      // over. The timer is armed by the first of a run of calls and never
      // cancelled: back-to-back quick calls make no timer system calls, and
      // the hand-over thread re-arms it while calls keep coming.
      leader_running_call = true;
      leader_call_since = Clock::now();
      const std::uint64_t term = lead_term;
      const bool arm = !handoff_armed;
      handoff_armed = true;
      lk.unlock();
      if (arm) arm_handoff(options.handoff_after);
      auto frames = run_call(*job->call, job->request, job->framing, *job->context);
      lk.lock();
      // After a hand-over, leader_running_call belongs to the new leader.
      const bool still_leading = lead_term == term;
      if (still_leading) leader_running_call = false;
      lk.unlock();
      finish_job(*job, std::move(frames), still_leading);
      if (!still_leading) return;  // the lead went to another thread meanwhile
    }
    std::lock_guard lk(lf_mutex);
    has_leader = false;
  }

  void arm_handoff(std::chrono::microseconds after) {
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(after.count() / 1'000'000);
    spec.it_value.tv_nsec = static_cast<long>(after.count() % 1'000'000) * 1000;
    ::timerfd_settime(handoff_timer, 0, &spec, nullptr);
  }

  // The hand-over thread: when a pool call has held the lead for
  // handoff_after, an idle call thread becomes the leader.
  void watch_handoffs() {
    pollfd fds[2] = {{handoff_timer, POLLIN, 0}, {handoff_waker.fd(), POLLIN, 0}};
    while (!stopping) {
      if (::poll(fds, 2, -1) < 0) continue;  // EINTR
      if (fds[1].revents & POLLIN) handoff_waker.drain();
      if (!(fds[0].revents & POLLIN)) continue;
      std::uint64_t expirations = 0;
      (void)!::read(handoff_timer, &expirations, sizeof expirations);  // EAGAIN if re-armed
      std::lock_guard lk(lf_mutex);
      if (!leader_running_call) {  // no call runs: the timer stops until the next one
        handoff_armed = false;
        continue;
      }
      const auto ran =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - leader_call_since);
      if (ran < options.handoff_after) {  // a younger call than the one the timer was for
        arm_handoff(std::max(options.handoff_after - ran, std::chrono::microseconds(1)));
        continue;
      }
      handoff_armed = false;
      leader_running_call = false;
      ++lead_term;
      has_leader = false;
      lf_cv.notify_one();
    }
  }

  void call_thread() {
    std::unique_lock lk(lf_mutex);
    while (!stopping) {
      if (!backlog.empty()) {
        Job job = std::move(backlog.front());
        backlog.pop_front();
        lk.unlock();
        run_job(job);
        lk.lock();
        continue;
      }
      if (!has_leader) {
        has_leader = true;
        lk.unlock();
        lead();
        lk.lock();
        continue;
      }
      ++idle;
      lf_cv.wait(lk, [&] { return stopping.load() || !has_leader || !backlog.empty(); });
      --idle;
    }
  }

  void handle_subscription(const Buffer& msg) {
    if (msg.empty()) return;
    const bool on = static_cast<std::uint8_t>(msg.data()[0]) == 1;
    std::string_view topic(reinterpret_cast<const char*>(msg.data()) + 1, msg.size() - 1);
    if (topic.empty() || topic.back() != '\0') return;
    auto e = find_stream(topic.substr(0, topic.size() - 1));
    if (!e) return;
    e->subscribed = on;
    if (on && !e->last.empty()) {
      // Snapshot for the new subscriber; others drop it by sequence number.
      net::send_frames(xpub, e->last, zmq::send_flags::dontwait);
    }
  }

  void heartbeat() {
    StreamMessage m;
    m.stream = std::string(kHeartbeatStream);
    m.server_id = server_id;
    m.seq = ++heartbeat_seq;
    m.wall_ns = wall_time_ns();
    m.mono_ns = mono_time_ns();
    net::send_frames(xpub, encode_stream(m), zmq::send_flags::dontwait);
  }

  // Stream thread: publishes queued stream messages and runs commands.
  void drain() {
    std::deque<Outgoing> out;
    std::deque<std::function<void()>> cmds;
    {
      std::lock_guard lock(out_mutex);
      out.swap(outbox);
      cmds.swap(commands);
    }
    for (auto& c : cmds) c();
    for (auto& o : out) send_stream(o.entry, std::move(o.frames));
  }

  void run_streams() {
    std::vector<Buffer> frames;
    TimePoint next_hb = Clock::now();
    std::vector<zmq::pollitem_t> items;
    while (!stopping) {
      items.clear();
      items.push_back({xpub.handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({nullptr, waker.fd(), ZMQ_POLLIN, 0});
      for (Relay& r : relays) items.push_back({r.socket.handle(), 0, ZMQ_POLLIN, 0});
      const auto now = Clock::now();
      if (now >= next_hb) {
        heartbeat();
        next_hb = now + options.heartbeat;
      }
      flush_held();
      // XPUB never reports POLLOUT changes: held messages are retried every millisecond.
      const auto wait = held.empty()
                            ? std::chrono::duration_cast<std::chrono::milliseconds>(next_hb - now) +
                                  std::chrono::milliseconds(1)
                            : std::chrono::milliseconds(1);
      try {
        zmq::poll(items.data(), items.size(), wait);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return;
        if (e.num() == EINTR) continue;
        throw;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        waker.drain();
        drain();
      }
      // Bounded batches so one busy socket cannot starve the others.
      for (int i = 0; i < 64 && (items[0].revents & ZMQ_POLLIN); ++i) {
        if (!net::recv_frames(xpub, frames, zmq::recv_flags::dontwait)) break;
        if (!frames.empty()) handle_subscription(frames[0]);
      }
      const std::size_t n_relays = std::min(relays.size(), items.size() - 2);
      for (std::size_t k = 0; k < n_relays; ++k) {
        if (!(items[2 + k].revents & ZMQ_POLLIN)) continue;
        for (int i = 0; i < 64; ++i) {
          if (k >= relays.size()) break;
          if (!net::recv_frames(relays[k].socket, frames, zmq::recv_flags::dontwait)) break;
          relay_message(relays[k], frames);
        }
      }
    }
  }
};

}  // namespace detail

using detail::ServerImpl;
using detail::StreamEntry;

// --- StreamWriter ----------------------------------------------------------

StreamWriter::StreamWriter(std::weak_ptr<detail::ServerImpl> server,
                           std::shared_ptr<detail::StreamEntry> entry)
    : server_(std::move(server)), entry_(std::move(entry)) {}

bool StreamWriter::publish(Value value) {
  return publish(std::move(value), 0);
}

bool StreamWriter::publish(Value value, std::int64_t wall_ns) {
  auto s = server_.lock();
  if (!s || !entry_) return false;
  return s->publish(entry_, std::move(value), std::nullopt, wall_ns);
}

bool StreamWriter::publish_error(const std::string& type, const std::string& message) {
  auto s = server_.lock();
  if (!s || !entry_) return false;
  return s->publish(entry_, Value{}, wire::RemoteError{StatusCode::unknown, type, message, {}}, 0);
}

const std::string& StreamWriter::name() const {
  static const std::string none;
  return entry_ ? entry_->name : none;
}

// --- RemoteServer ----------------------------------------------------------

RemoteServer::RemoteServer(ServerOptions options)
    : impl_(std::make_shared<ServerImpl>(std::move(options))) {}

RemoteServer::~RemoteServer() {
  stop();
}

void RemoteServer::add_handler(std::string name, Handler handler, CallInfo info) {
  check_name("call", name);
  std::unique_lock lock(impl_->calls_mutex);
  auto entry =
      std::make_shared<detail::CallEntry>(detail::CallEntry{std::move(info), std::move(handler)});
  if (!impl_->calls.emplace(name, std::move(entry)).second) {
    throw SetupError("a call named '" + name + "' exists (names are unique) remove it first");
  }
}

bool RemoteServer::remove_call(const std::string& name) {
  std::unique_lock lock(impl_->calls_mutex);
  return impl_->calls.erase(name) > 0;
}

std::vector<std::pair<std::string, CallInfo>> RemoteServer::calls() const {
  std::vector<std::pair<std::string, CallInfo>> out;
  std::shared_lock lock(impl_->calls_mutex);
  for (const auto& [n, c] : impl_->calls) out.emplace_back(n, c->info);
  return out;
}

void RemoteServer::add_stream(std::string name, double rate_hz, std::function<Value()> producer,
                              StreamOptions options) {
  if (!(rate_hz > 0) || rate_hz > 1e6) {
    throw SetupError("stream '" + name + "' rate " + std::to_string(rate_hz) +
                     " Hz is out of range (0, 1e6] use a positive rate");
  }
  ACHERON_EXPECT(producer, "stream '" + name + "' needs a producer function");
  auto e = std::make_shared<StreamEntry>();
  e->name = std::move(name);
  e->kind = StreamKind::periodic;
  e->rate_hz = rate_hz;
  e->producer = std::move(producer);
  e->options = std::move(options);
  impl_->insert(e);
  std::lock_guard lock(impl_->start_mutex);
  if (impl_->started) {
    impl_->stream_threads.emplace_back([impl = impl_, e] {
      set_thread_name("remote-periodic");
      impl->run_periodic(e);
    });
  }
}

StreamWriter RemoteServer::add_manual_stream(std::string name, StreamOptions options) {
  auto e = std::make_shared<StreamEntry>();
  e->name = std::move(name);
  e->kind = StreamKind::manual;
  e->options = std::move(options);
  impl_->insert(e);
  return StreamWriter(impl_, e);
}

void RemoteServer::add_relay(std::string name, std::string endpoint, RelayOptions options) {
  auto e = std::make_shared<StreamEntry>();
  e->name = std::move(name);
  e->kind = StreamKind::relay;
  e->source = endpoint;
  e->relay = std::move(options);
  if (e->relay.format == RelayFormat::acheron && e->relay.upstream.empty())
    e->relay.upstream = e->name;
  e->options = e->relay.stream;
  zmq::socket_t sub(*impl_->context, zmq::socket_type::sub);
  net::set_linger(sub, std::chrono::milliseconds(0));
  try {
    sub.connect(endpoint);
  } catch (const zmq::error_t& x) {
    throw SetupError("cannot connect relay '" + e->name + "' to '" + endpoint + "' (" + x.what() +
                     ") check the endpoint");
  }
  impl_->insert(e);
  auto impl = impl_;
  auto holder = std::make_shared<zmq::socket_t>(std::move(sub));
  impl_->command([impl, e, holder] {
    impl->relays.push_back({e, std::move(*holder), false});
    impl->update_relay(e);
  });
}

void RemoteServer::add_call_relay(std::string prefix, std::string endpoint,
                                  std::chrono::milliseconds timeout) {
  check_name("call relay prefix", prefix);
  auto upstream = std::make_shared<RemoteClient>(
      ClientOptions{.endpoint = endpoint, .timeout = timeout, .context = impl_->context});
  Json listed = upstream->list_calls();
  auto mutex = std::make_shared<std::mutex>();
  for (const Json& c : listed) {
    const std::string remote_name = c.at("name").get<std::string>();
    CallInfo info;
    info.doc = c.value("doc", "");
    info.returns = c.value("returns", "any");
    info.mutating = c.value("mutating", false);
    info.variadic = c.value("variadic", false);
    for (const Json& p : c.value("params", Json::array())) {
      Param param{p.value("name", ""), p.value("type", "any"), std::nullopt};
      if (p.contains("default")) param.default_value = p.at("default");
      info.params.push_back(std::move(param));
    }
    add_handler(
        prefix + "." + remote_name,
        [upstream, mutex, remote_name](const Args& args) {
          CallArgs a{args.positional(), args.keyword(), args.arrays()};
          std::lock_guard lock(*mutex);
          try {
            return upstream->call(remote_name, a);
          } catch (const RemoteException& e) {
            throw;  // keeps the upstream's code and message
          }
        },
        std::move(info));
  }
  std::lock_guard lock(impl_->start_mutex);
  impl_->upstreams.push_back(std::move(upstream));
}

void RemoteServer::enable_stream(const std::string& name) {
  impl_->set_enabled(impl_->stream_or_throw(name), true);
}
void RemoteServer::disable_stream(const std::string& name) {
  impl_->set_enabled(impl_->stream_or_throw(name), false);
}
void RemoteServer::remove_stream(const std::string& name) {
  impl_->remove(name);
}

std::vector<StreamStatus> RemoteServer::streams() const {
  std::vector<std::shared_ptr<StreamEntry>> all;
  {
    std::lock_guard lock(impl_->streams_mutex);
    for (const auto& [n, e] : impl_->streams) all.push_back(e);
  }
  std::vector<StreamStatus> out;
  for (const auto& e : all) out.push_back(impl_->status(*e));
  return out;
}

void RemoteServer::start() {
  std::lock_guard lock(impl_->start_mutex);
  if (impl_->started) return;
  impl_->started = true;
  std::vector<std::shared_ptr<StreamEntry>> periodic;
  {
    std::lock_guard slock(impl_->streams_mutex);
    for (const auto& [n, e] : impl_->streams) {
      if (e->kind == StreamKind::periodic) periodic.push_back(e);
    }
  }
  for (auto& e : periodic) {
    impl_->stream_threads.emplace_back([impl = impl_, e] {
      set_thread_name("remote-periodic");
      impl->run_periodic(e);
    });
  }
  impl_->io = std::thread([impl = impl_] {
    set_thread_name("remote-streams");
    try {
      impl->run_streams();
    } catch (const std::exception& e) {
      log::error("remote server stream thread stopped: {}", e.what());
    }
  });
  if (impl_->options.handoff_after > std::chrono::microseconds::zero()) {
    impl_->handoff_timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (impl_->handoff_timer < 0)
      throw SetupError("remote server: cannot create a timer (timerfd_create failed)");
    impl_->handoff_thread = std::thread([impl = impl_] {
      set_thread_name("remote-handoff");
      impl->watch_handoffs();
    });
  }
  for (std::size_t i = 0; i < std::max<std::size_t>(1, impl_->options.threads) + 1; ++i) {
    impl_->call_threads.emplace_back([impl = impl_] {
      set_thread_name("remote-calls");
      try {
        impl->call_thread();
      } catch (const std::exception& e) {
        log::error("remote server call thread stopped: {}", e.what());
      }
    });
  }
}

void RemoteServer::stop() {
  if (!impl_) return;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->start_mutex);
    if (impl_->stopping.exchange(true)) return;
    threads.swap(impl_->stream_threads);
  }
  {
    std::lock_guard lock(impl_->streams_mutex);
    for (auto& [n, e] : impl_->streams) {
      std::lock_guard elock(e->mutex);
      e->cv.notify_all();
    }
  }
  {
    std::lock_guard lock(impl_->lf_mutex);
    impl_->lf_cv.notify_all();
  }
  impl_->waker.wake();
  impl_->rpc_waker.wake();
  impl_->handoff_waker.wake();
  for (auto& t : threads) t.join();
  if (impl_->io.joinable()) impl_->io.join();
  for (auto& t : impl_->call_threads) t.join();  // running calls finish first
  impl_->call_threads.clear();
  if (impl_->handoff_thread.joinable()) impl_->handoff_thread.join();
  if (impl_->handoff_timer >= 0) ::close(impl_->handoff_timer);
  impl_->handoff_timer = -1;
  impl_->backlog.clear();
  impl_->upstreams.clear();
  impl_->relays.clear();
  impl_->router.close();
  impl_->xpub.close();
}

const std::string& RemoteServer::rpc_endpoint() const noexcept {
  return impl_->rpc_endpoint;
}
const std::string& RemoteServer::stream_endpoint() const noexcept {
  return impl_->stream_endpoint;
}
std::uint64_t RemoteServer::server_id() const noexcept {
  return impl_->server_id;
}
const std::shared_ptr<zmq::context_t>& RemoteServer::context() const noexcept {
  return impl_->context;
}

}  // namespace acheron::remote
