#include "acheron/remote/Client.hh"

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/remote/Protocol.hh"

namespace acheron::remote {

namespace {

std::uint64_t random_u64() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffull;
  return v == 0 ? 1 : v;
}

std::string describe_error(const wire::RemoteError& e) {
  std::string s = e.type.empty() ? std::string(to_string(e.code)) : e.type;
  return s + ": " + e.message;
}

}  // namespace

RemoteException::RemoteException(wire::RemoteError error)
    : Failure(error.code, describe_error(error)), error_(std::move(error)) {}

std::string resolve_stream_endpoint(const std::string& rpc_endpoint,
                                    const std::string& advertised) {
  const std::string tcp = "tcp://";
  if (advertised.rfind(tcp, 0) != 0 || rpc_endpoint.rfind(tcp, 0) != 0) return advertised;
  const auto colon = advertised.rfind(':');
  std::string host = advertised.substr(tcp.size(), colon - tcp.size());
  if (host != "0.0.0.0" && host != "*" && host != "[::]" && host != "::") return advertised;
  const auto rcolon = rpc_endpoint.rfind(':');
  return tcp + rpc_endpoint.substr(tcp.size(), rcolon - tcp.size()) + advertised.substr(colon);
}

// --- Subscription ------------------------------------------------------------

struct Subscription::State {
  std::shared_ptr<hub::Subscription> sub;
  std::mutex mutex;  // receiver thread vs stats()
  std::uint64_t server_id = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t received = 0;
  std::uint64_t gaps = 0;
  std::function<void(const std::string&)> on_close;

  void offer(const StreamMessage& m) {
    {
      std::lock_guard lock(mutex);
      if (m.server_id != server_id) {  // a new server instance: sequence numbers restart
        server_id = m.server_id;
        last_seq = 0;
      }
      if (m.seq <= last_seq) return;  // already seen (a snapshot resent for a later subscriber)
      if (last_seq != 0) gaps += m.seq - last_seq - 1;
      last_seq = m.seq;
      ++received;
    }
    auto sample = std::make_shared<hub::Sample>();
    sample->topic = m.stream;
    sample->seq = m.seq;
    sample->wall_ns = m.wall_ns;
    sample->time = Clock::now();
    sample->payload.meta = Json::object();
    sample->payload.meta["value"] = m.value.data;
    sample->payload.meta["mono_ns"] = m.mono_ns;
    if (m.error) {
      sample->payload.meta["error"] = {{"code", std::string(to_string(m.error->code))},
                                       {"type", m.error->type},
                                       {"message", m.error->message},
                                       {"traceback", m.error->traceback}};
    }
    sample->payload.arrays = m.value.arrays;
    if (auto notify = sub->offer(sample)) notify();
  }
};

Subscription::Subscription(std::string stream, std::shared_ptr<State> state)
    : stream_(std::move(stream)), state_(std::move(state)) {}

namespace {
StreamValue to_value(const hub::Sample& s) {
  StreamValue v;
  v.stream = s.topic;
  v.seq = s.seq;
  v.wall_ns = s.wall_ns;
  const Json& meta = s.payload.meta;
  v.mono_ns = meta.value("mono_ns", std::int64_t{0});
  if (auto it = meta.find("value"); it != meta.end()) v.value.data = *it;
  v.value.arrays = s.payload.arrays;
  if (auto it = meta.find("error"); it != meta.end()) {
    v.error = wire::RemoteError{status_code_from_string(it->value("code", "unknown")),
                                it->value("type", ""), it->value("message", ""),
                                it->value("traceback", "")};
  }
  return v;
}
}  // namespace

std::optional<StreamValue> Subscription::next(std::chrono::milliseconds timeout) {
  auto s = state_->sub->next(timeout);
  if (!s) return std::nullopt;
  return to_value(**s);
}

std::optional<StreamValue> Subscription::try_next() {
  auto s = state_->sub->try_next();
  if (!s) return std::nullopt;
  return to_value(**s);
}

StreamStats Subscription::stats() const {
  const auto h = state_->sub->stats();
  std::lock_guard lock(state_->mutex);
  return {state_->received, h.delivered, h.dropped, h.replaced, state_->gaps};
}

void Subscription::close() {
  state_->sub->close();
  if (state_->on_close) state_->on_close(stream_);
}

// --- RemoteClient ------------------------------------------------------------

struct RemoteClient::Impl {
  ClientOptions options;
  std::shared_ptr<zmq::context_t> context;

  std::mutex call_mutex;
  std::unique_ptr<zmq::socket_t> dealer;
  std::uint64_t next_id = 0;
  std::uint64_t token = random_u64();
  bool token_used = false;
  std::atomic<std::uint64_t> reconnects{0};
  Buffer proto, command, service;  // constant request frames, shared by every call

  // Streams: the receiver thread owns the SUB socket.
  std::mutex sub_mutex;
  std::map<std::string, std::vector<std::weak_ptr<Subscription::State>>> subs;
  std::vector<std::pair<bool, std::string>> pending;  // (subscribe?, topic)
  std::thread receiver;
  net::Waker waker;
  std::atomic<bool> stopping{false};
  std::string stream_endpoint;
  std::atomic<std::int64_t> last_heartbeat_ns{0};  // steady clock; 0: none yet

  explicit Impl(ClientOptions o) : options(std::move(o)) {
    context = options.context ? options.context : std::make_shared<zmq::context_t>(1);
    proto = Buffer::copy_of(wire::kClientProtocol.data(), wire::kClientProtocol.size());
    const std::byte req{static_cast<std::uint8_t>(wire::Command::request)};
    command = Buffer::copy_of(&req, 1);
    service = Buffer::copy_of("remote", 6);
  }

  ~Impl() {
    stopping = true;
    waker.wake();
    if (receiver.joinable()) receiver.join();
  }

  void secure(zmq::socket_t& s) {
    if (options.curve) net::make_curve_client(s, *options.curve, options.curve_server_key);
  }

  zmq::socket_t& socket() {
    if (!dealer) {
      dealer = std::make_unique<zmq::socket_t>(*context, zmq::socket_type::dealer);
      net::set_linger(*dealer, std::chrono::milliseconds(0));
      dealer->set(zmq::sockopt::immediate, 1);
      // ZMTP heartbeats drop a silently dead peer so a restarted server is reconnected.
      dealer->set(zmq::sockopt::heartbeat_ivl, 1000);
      dealer->set(zmq::sockopt::heartbeat_timeout, 3000);
      secure(*dealer);
      try {
        dealer->connect(options.endpoint);
      } catch (const zmq::error_t& e) {
        dealer.reset();
        throw SetupError("cannot connect to '" + options.endpoint + "' (" + e.what() +
                         ") check the endpoint");
      }
    }
    return *dealer;
  }

  void reset() {
    dealer.reset();
    reconnects.fetch_add(1);
  }

  static int remaining_ms(TimePoint deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
  }

  // Sends frames once the socket has a connection; throws DisconnectedError at the deadline.
  void send(std::vector<Buffer>& frames, TimePoint deadline, std::chrono::milliseconds timeout) {
    zmq::socket_t& s = socket();
    for (;;) {
      if (net::send_frames(s, frames, zmq::send_flags::dontwait)) return;
      zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLOUT, 0};
      const int left = remaining_ms(deadline);
      if (left == 0 || zmq::poll(&item, 1, std::chrono::milliseconds(left)) == 0) {
        reset();
        throw DisconnectedError("no connection to " + options.endpoint + " within " +
                                std::to_string(timeout.count()) + " ms (is the server running?)");
      }
    }
  }

  // Best effort: tells the server to stop working on request id.
  void send_cancel(std::uint64_t id) {
    if (!dealer) return;
    dealer->set(zmq::sockopt::linger, 100);  // the socket may be closed next: let CANCEL leave
    wire::Envelope env;
    env.command = static_cast<std::uint8_t>(wire::Command::cancel);
    env.request_id = id;
    net::send_frames(*dealer, encode_call(env, Framing::compact), zmq::send_flags::dontwait);
  }

  Value call(const std::string& name, const CallArgs& args, const CallOptions& call_options) {
    const auto timeout = call_options.timeout.value_or(options.timeout);
    std::lock_guard lock(call_mutex);
    const TimePoint deadline = deadline_after(timeout);
    const std::uint64_t id = ++next_id;
    wire::Envelope env;
    env.command = static_cast<std::uint8_t>(wire::Command::request);
    env.request_id = id;
    env.method = name;
    env.timeout_ms = timeout.count();
    env.payload.meta = call_meta(args.args, args.kwargs, token_used ? token : 0);
    env.payload.arrays = args.arrays;
    auto frames = encode_call(env, Framing::compact);
    send(frames, deadline, timeout);
    std::vector<Buffer> reply;
    int rcvtimeo = -2;
    for (;;) {
      // A blocking receive with the remaining time as its timeout: one wait
      // inside libzmq instead of a poll followed by a receive.
      const int left = remaining_ms(deadline);
      bool got = false;
      if (left > 0) {
        if (left != rcvtimeo) {
          dealer->set(zmq::sockopt::rcvtimeo, left);
          rcvtimeo = left;
        }
        got = net::recv_frames(*dealer, reply);
      }
      if (!got) {
        if (remaining_ms(deadline) > 0 && left > 0) continue;  // interrupted: wait again
        send_cancel(id);
        reset();  // a fresh socket for the next call (the server may have restarted)
        throw TimeoutError("no reply to '" + name + "' from " + options.endpoint + " within " +
                           std::to_string(timeout.count()) + " ms");
      }
      auto decoded = decode_call(reply, nullptr);
      if (!decoded) {
        log::warn("remote client: malformed reply from {}: {}", options.endpoint,
                  decoded.error().message);
        continue;
      }
      const wire::Envelope& e = *decoded;
      if (e.command == static_cast<std::uint8_t>(wire::Command::pong)) continue;
      if (e.request_id != id) continue;  // a late reply to an earlier call
      switch (e.client_command()) {
        case wire::Command::final:
          return value_of(e);
        case wire::Command::error:
          throw RemoteException(e.error.value_or(wire::RemoteError{}));
        case wire::Command::partial:
          if (call_options.on_progress && !call_options.on_progress(value_of(e))) {
            send_cancel(id);
            throw CancelledError("call '" + name + "' was cancelled by its progress callback");
          }
          continue;
        default:
          continue;
      }
    }
  }

  bool ping(std::chrono::milliseconds timeout) {
    std::lock_guard lock(call_mutex);
    const TimePoint deadline = deadline_after(timeout);
    wire::Envelope env;
    env.command = static_cast<std::uint8_t>(wire::Command::ping);
    env.request_id = ++next_id;
    auto frames = encode_call(env, Framing::compact);
    try {
      send(frames, deadline, timeout);
    } catch (const DisconnectedError&) {
      return false;
    }
    std::vector<Buffer> reply;
    for (;;) {
      zmq::pollitem_t item{dealer->handle(), 0, ZMQ_POLLIN, 0};
      const int left = remaining_ms(deadline);
      if (left == 0 || zmq::poll(&item, 1, std::chrono::milliseconds(left)) == 0) {
        reset();
        return false;
      }
      if (!net::recv_frames(*dealer, reply, zmq::recv_flags::dontwait)) continue;
      auto decoded = decode_call(reply, nullptr);
      if (decoded && decoded->command == static_cast<std::uint8_t>(wire::Command::pong))
        return true;
    }
  }

  // --- streams (receiver thread) ---

  void run_receiver(std::string endpoint) {
    zmq::socket_t sub(*context, zmq::socket_type::sub);
    net::set_linger(sub, std::chrono::milliseconds(0));
    sub.set(zmq::sockopt::rcvhwm, 100000);
    secure(sub);
    sub.connect(endpoint);
    sub.set(zmq::sockopt::subscribe, topic_of(kHeartbeatStream));
    std::vector<Buffer> frames;
    while (!stopping) {
      zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, waker.fd(), ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(500));
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return;
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        waker.drain();
        std::vector<std::pair<bool, std::string>> todo;
        {
          std::lock_guard lock(sub_mutex);
          todo.swap(pending);
        }
        for (auto& [on, topic] : todo) {
          if (on) {
            sub.set(zmq::sockopt::subscribe, topic);
          } else {
            sub.set(zmq::sockopt::unsubscribe, topic);
          }
        }
      }
      for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN); ++i) {
        if (!net::recv_frames(sub, frames, zmq::recv_flags::dontwait)) break;
        auto m = decode_stream(frames);
        if (!m) continue;  // not ours or malformed
        if (m->stream == kHeartbeatStream) {
          last_heartbeat_ns = mono_time_ns();
          continue;
        }
        std::vector<std::shared_ptr<Subscription::State>> targets;
        {
          std::lock_guard lock(sub_mutex);
          auto it = subs.find(m->stream);  // exact name match
          if (it == subs.end()) continue;
          for (auto& w : it->second) {
            if (auto s = w.lock()) targets.push_back(std::move(s));
          }
        }
        for (auto& s : targets) s->offer(*m);
      }
    }
  }
};

RemoteClient::RemoteClient(ClientOptions options)
    : options_(options), impl_(std::make_shared<Impl>(std::move(options))) {}

RemoteClient::~RemoteClient() = default;

Value RemoteClient::call(const std::string& name, const CallArgs& args,
                         std::optional<std::chrono::milliseconds> timeout) {
  return impl_->call(name, args, CallOptions{.timeout = timeout});
}

Value RemoteClient::call(const std::string& name, const CallArgs& args,
                         const CallOptions& options) {
  return impl_->call(name, args, options);
}

bool RemoteClient::ping(std::optional<std::chrono::milliseconds> timeout) {
  return impl_->ping(timeout.value_or(options_.timeout));
}

Json RemoteClient::list_calls() {
  return call(std::string(kListCalls)).data;
}
Json RemoteClient::list_streams() {
  return call(std::string(kListStreams)).data;
}
Json RemoteClient::info() {
  return call(std::string(kInfo)).data;
}
void RemoteClient::enable_stream(const std::string& name) {
  call(std::string(kEnableStream), CallArgs().arg(name));
}
void RemoteClient::disable_stream(const std::string& name) {
  call(std::string(kDisableStream), CallArgs().arg(name));
}
void RemoteClient::remove_stream(const std::string& name) {
  call(std::string(kRemoveStream), CallArgs().arg(name));
}

bool RemoteClient::lock(bool force) {
  impl_->token_used = true;
  return call(std::string(kLock), CallArgs().arg(force)).data.get<bool>();
}

Json RemoteClient::lock_status() {
  impl_->token_used = true;  // "mine" needs the token
  return info().value("write_lock", Json::object());
}

void RemoteClient::unlock() {
  call(std::string(kUnlock));
}

std::optional<std::chrono::milliseconds> RemoteClient::since_heartbeat() const {
  const std::int64_t last = impl_->last_heartbeat_ns.load();
  if (last == 0) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(mono_time_ns() - last));
}

std::uint64_t RemoteClient::reconnects() const noexcept {
  return impl_->reconnects.load();
}

std::shared_ptr<Subscription> RemoteClient::subscribe(const std::string& stream,
                                                      SubscribeOptions options) {
  check_name("stream", stream);
  if (!impl_->receiver.joinable()) {
    std::string endpoint = options_.stream_endpoint;
    if (endpoint.empty()) {
      const Json i = info();
      endpoint =
          resolve_stream_endpoint(options_.endpoint, i.at("stream_endpoint").get<std::string>());
    }
    impl_->stream_endpoint = endpoint;
    impl_->receiver = std::thread([impl = impl_.get(), endpoint] {
      set_thread_name("remote-receive");
      try {
        impl->run_receiver(endpoint);
      } catch (const std::exception& e) {
        log::error("remote client: stream receiver stopped: {}", e.what());
      }
    });
  }
  hub::SubscriptionOptions h;
  h.mode = options.mode == ReceiveMode::cache ? hub::DeliveryMode::cache : hub::DeliveryMode::queue;
  h.queue_capacity = std::max<std::size_t>(1, options.capacity);
  h.snapshot_first = false;
  auto state = std::make_shared<Subscription::State>();
  state->sub = std::make_shared<hub::Subscription>(stream, h);
  std::weak_ptr<Impl> weak = impl_;
  state->on_close = [weak](const std::string& name) {
    auto impl = weak.lock();
    if (!impl) return;
    std::lock_guard lock(impl->sub_mutex);
    auto it = impl->subs.find(name);
    if (it == impl->subs.end()) return;
    std::erase_if(it->second, [](const auto& w) {
      auto s = w.lock();
      return !s || s->sub->closed();
    });
    if (it->second.empty()) {
      impl->subs.erase(it);
      impl->pending.emplace_back(false, topic_of(name));
      impl->waker.wake();
    }
  };
  {
    std::lock_guard lock(impl_->sub_mutex);
    auto& list = impl_->subs[stream];
    if (list.empty()) impl_->pending.emplace_back(true, topic_of(stream));
    list.push_back(state);
  }
  impl_->waker.wake();
  return std::make_shared<Subscription>(stream, state);
}

}  // namespace acheron::remote
