#include "acheron/remote/Server.hh"

#include <algorithm>

#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote {
namespace {

// A ROUTER identity as text when it is printable ASCII, else as hex (ZeroMQ
// makes up 5 binary bytes for clients that set none).
std::string client_identity_text(std::string_view id) {
  const bool printable = !id.empty() && std::all_of(id.begin(), id.end(),
                                                    [](char c) { return c >= 0x20 && c < 0x7f; });
  if (printable) return std::string(id);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

}  // namespace

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

ServerImpl::ServerImpl(ServerOptions o)
    : options(std::move(o)), reactor(net::ReactorOptions{.name = "remote-router"}) {
  lock_lease = options.lock_lease;
  context = options.context ? options.context : std::make_shared<zmq::context_t>(1);
  zmq::socket_t router(*context, zmq::socket_type::router);
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
    throw SetupError("cannot bind the stream socket to '" + options.stream_bind + "' (" + e.what() +
                     ") choose a free endpoint");
  }
  rpc_endpoint = bound_endpoint(router);
  stream_endpoint = bound_endpoint(xpub);
  this->router = &reactor.add(std::move(router), [this](zmq::socket_t& s) { read_requests(s); });
  std::random_device rd;
  server_id = (static_cast<std::uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffull;
  if (server_id == 0) server_id = 1;
}

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
  auto entry = std::make_shared<detail::CallEntry>(std::move(info), std::move(handler));
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

ServerStats RemoteServer::stats() const {
  auto& m = *impl_;
  ServerStats out;
  {
    std::shared_lock lock(m.calls_mutex);
    for (const auto& [name, c] : m.calls) {
      out.calls.push_back({name, c->calls.load(std::memory_order_relaxed),
                           c->errors.load(std::memory_order_relaxed),
                           static_cast<double>(c->busy_ns.load(std::memory_order_relaxed)) * 1e-9,
                           c->info.mutating});
    }
  }
  const auto now = Clock::now();
  {
    std::lock_guard lock(m.clients_mutex);
    for (const auto& [id, c] : m.clients) {
      out.clients.push_back({client_identity_text(id), c.requests,
                             std::chrono::duration<double>(now - c.last_seen).count()});
    }
  }
  std::sort(out.clients.begin(), out.clients.end(), [](const ClientStats& a, const ClientStats& b) {
    return a.last_seen_s < b.last_seen_s;
  });
  out.requests = m.n_requests.load(std::memory_order_relaxed);
  out.refused_busy = m.n_busy.load(std::memory_order_relaxed);
  out.not_found = m.n_not_found.load(std::memory_order_relaxed);
  out.malformed = m.n_malformed.load(std::memory_order_relaxed);
  out.in_flight = m.in_flight.load(std::memory_order_relaxed);
  out.duration_bounds_s.assign(kCallDurationBoundsS.begin(), kCallDurationBoundsS.end());
  for (const auto& c : m.duration_counts)
    out.duration_counts.push_back(c.load(std::memory_order_relaxed));
  out.duration_sum_s =
      static_cast<double>(m.duration_sum_ns.load(std::memory_order_relaxed)) * 1e-9;
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
  impl_->reactor.start();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, impl_->options.threads); ++i) {
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
    std::lock_guard lock(impl_->backlog_mutex);
    impl_->backlog_cv.notify_all();
  }
  impl_->waker.wake();
  for (auto& t : threads) t.join();
  if (impl_->io.joinable()) impl_->io.join();
  // Running calls finish first and post their replies; the reactor sends
  // what was posted, then closes the ROUTER.
  for (auto& t : impl_->call_threads) t.join();
  impl_->call_threads.clear();
  impl_->reactor.stop();
  {
    std::lock_guard lock(impl_->backlog_mutex);
    impl_->backlog.clear();
  }
  impl_->upstreams.clear();
  impl_->relays.clear();
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
