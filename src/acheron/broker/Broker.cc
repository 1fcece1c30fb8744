#include "acheron/broker/Broker.hh"

#include <algorithm>
#include <array>
#include <cerrno>
#include <deque>
#include <set>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::broker {
namespace {

// Messages taken from one socket before the other gets a turn, so a flood of
// requests cannot starve worker replies and heartbeats.
constexpr int kBatch = 256;

// libzmq's fixed ZAP endpoint (ZeroMQ RFC 27/ZAP).
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

void check_endpoint(const std::string& endpoint, const char* which) {
  if (endpoint.find("://") == std::string::npos) {
    throw SetupError(std::string(which) + " endpoint '" + endpoint +
                     "' has no transport (not a ZeroMQ endpoint) write it like tcp://*:5555");
  }
}

void check_key(const std::string& key, const char* what) {
  if (key.size() != 40) {
    throw SetupError(std::string(what) + " is " + std::to_string(key.size()) +
                     " characters (a Z85 CURVE key has 40) use a key written by `acheron "
                     "keygen`");
  }
}

}  // namespace

void BrokerOptions::validate() const {
  check_endpoint(frontend, "frontend");
  check_endpoint(backend, "backend");
  const bool ephemeral = frontend.ends_with(":*") || frontend.ends_with(":0");
  if (frontend == backend && !ephemeral) {
    throw SetupError("frontend and backend are both " + frontend +
                     " (clients and workers need separate sockets) give them different ports");
  }
  for (const auto& e : chroma_bind) check_endpoint(e, "chroma");
  if (!chroma_bind.empty()) {
    if (router.async) {
      throw SetupError(
          "--chroma-bind with --async (chroma-server clients wait for their hits, which "
          "asynchronous mode writes to files) run a synchronous broker for chroma clients");
    }
    chroma.validate();
  }
  router.validate();
  if (tick <= std::chrono::milliseconds::zero() || tick > router.heartbeat_interval) {
    throw SetupError("tick of " + std::to_string(tick.count()) +
                     " ms is out of range (it must be positive and no longer than the heartbeat "
                     "interval) use 100 ms");
  }
  for (const auto* keys : {&frontend_curve, &backend_curve}) {
    if (*keys) {
      check_key(keys->value().secret_key, "the CURVE secret key");
      check_key(keys->value().public_key, "the CURVE public key");
    }
  }
  for (const auto& k : curve_allowed) check_key(k, "an allowed CURVE client key");
  if (!curve_allowed.empty() && !frontend_curve && !backend_curve) {
    throw SetupError(
        "allowed CURVE keys are given but neither socket uses CURVE (the list would "
        "check nothing) give the broker a CURVE key as well");
  }
}

struct Broker::Impl {
  BrokerOptions options;
  zmq::context_t context{1};  // IO_THREADS = 1 (§2)
  zmq::socket_t frontend{context, zmq::socket_type::router};
  zmq::socket_t backend{context, zmq::socket_type::router};
  std::optional<zmq::socket_t> zap;
  std::set<std::string> allowed;  // binary (32-byte) CURVE public keys
  net::Waker waker;
  std::atomic<bool> stopping{false};
  charon::CharonRouter router;
  std::deque<charon::Outgoing> pending;
  // The chroma front, when chroma_bind is given.
  std::optional<zmq::socket_t> chroma;
  std::optional<charon::ChromaFront> chroma_front;
  // The HTTP status front's figures, and where each worker's messages came
  // from (kept only while a monitor is set).
  std::shared_ptr<BrokerMonitor> monitor;
  std::map<std::string, std::string> worker_peers;
  TimePoint last_publish{};
  void publish(TimePoint now) {
    if (!monitor) return;
    last_publish = now;
    // Forget the peers of workers that are gone.
    const auto workers = router.workers(now);
    for (auto it = worker_peers.begin(); it != worker_peers.end();) {
      const bool known =
          std::any_of(workers.begin(), workers.end(),
                      [&](const charon::WorkerStatus& w) { return w.id == it->first; });
      it = known ? std::next(it) : worker_peers.erase(it);
    }
    monitor->update(router, now, worker_peers);
  }

  explicit Impl(BrokerOptions o)
      : options((o.validate(), std::move(o))), router(options.router, Clock::now()) {}

  void deliver(charon::Outbox outbox, TimePoint now) {
    for (auto& o : outbox) pending.push_back(std::move(o));
    while (!pending.empty()) {
      charon::Outgoing o = std::move(pending.front());
      pending.pop_front();
      if (o.socket == charon::Socket::frontend && chroma &&
          charon::ChromaFront::is_chroma_route(o.frames)) {
        // A chroma client's job: its reply becomes a ChromaPhotonList (or
        // the error reply) on the chroma socket.
        const auto reply = chroma_front->on_router_reply(o.frames, router.detector());
        if (!reply.empty() && !net::send_frames(*chroma, reply, zmq::send_flags::dontwait)) {
          log::debug("chroma reply dropped: the client's queue is full");
        }
        continue;
      }
      if (o.socket == charon::Socket::frontend) {
        // ROUTER_MANDATORY is off on the frontend: a reply for a client that
        // has gone is dropped by ZeroMQ (§8.10).
        if (!net::send_frames(frontend, o.frames, zmq::send_flags::dontwait)) {
          log::debug("reply dropped: the client's queue is full");
        }
        continue;
      }
      // ROUTER_MANDATORY is on for the backend, so a worker whose connection
      // is gone shows up here at once instead of after the liveness timeout.
      if (!net::send_frames(backend, o.frames, zmq::send_flags::dontwait)) {
        const Buffer& id = o.frames.front();
        auto more = router.on_worker_unreachable(
            std::string_view(reinterpret_cast<const char*>(id.data()), id.size()), now);
        for (auto& m : more) pending.push_back(std::move(m));
      }
    }
  }

  // One message of the chroma socket: an error reply at once, or a job for
  // the router.
  void on_chroma_message(std::vector<Buffer> frames, const std::string& peer, TimePoint now) {
    auto action = chroma_front->on_message(std::move(frames));
    if (!action.refused.empty()) {
      router.count_rejected();
      log::warn("refused a chroma request from {}: {}", peer.empty() ? "?" : peer, action.refused);
    }
    if (!action.reply.empty() &&
        !net::send_frames(*chroma, action.reply, zmq::send_flags::dontwait)) {
      log::debug("chroma reply dropped: the client's queue is full");
    }
    if (action.job) {
      auto& j = *action.job;
      deliver(router.on_photon_job(std::move(j.route), std::move(j.body), j.event_id, j.photons,
                                   now, peer),
              now);
    }
  }

  nlohmann::json labels(const Endpoints& endpoints) const {
    nlohmann::json j = {{"frontend", endpoints.frontend},
                        {"backend", endpoints.backend},
                        {"frontend_curve", options.frontend_curve.has_value()},
                        {"backend_curve", options.backend_curve.has_value()}};
    if (chroma_front) {
      const auto& s = chroma_front->stats();
      j["chroma"] = endpoints.chroma;
      j["chroma_requests"] = s.requests;
      j["chroma_refused"] = s.refused;
      j["chroma_replies"] = s.replies;
      j["chroma_failed"] = s.failed;
    }
    return j;
  }

  // ZAP (RFC 27): request [version, request_id, domain, address, identity,
  // mechanism, credentials...]; reply [version, request_id, status_code,
  // status_text, user_id, metadata].
  void serve_zap() {
    std::vector<Buffer> req;
    while (net::recv_frames(*zap, req, zmq::recv_flags::dontwait)) {
      auto text = [&](std::size_t i) {
        return i < req.size()
                   ? std::string(reinterpret_cast<const char*>(req[i].data()), req[i].size())
                   : std::string();
      };
      const bool curve = text(5) == "CURVE";
      const bool ok = curve && req.size() >= 7 && allowed.count(text(6)) > 0;
      if (!ok) log::warn("CURVE peer at {} refused: its key is not allowed", text(3));
      const std::vector<Buffer> reply = {Buffer::copy_of("1.0"),
                                         req.size() > 1 ? req[1] : Buffer{},
                                         Buffer::copy_of(ok ? "200" : "400"),
                                         Buffer::copy_of(ok ? "OK" : "key not allowed"),
                                         Buffer{},
                                         Buffer{}};
      net::send_frames(*zap, reply);
    }
  }
};

Broker::Broker(BrokerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& m = *impl_;
  if (!m.options.curve_allowed.empty()) {
    for (const auto& z85 : m.options.curve_allowed) {
      std::array<std::uint8_t, 32> key{};
      if (!zmq_z85_decode(key.data(), z85.c_str())) {
        throw SetupError("allowed CURVE key '" + z85 +
                         "' is not valid Z85 (a typo?) copy it "
                         "from the peer's .pub file");
      }
      m.allowed.emplace(reinterpret_cast<const char*>(key.data()), key.size());
    }
    // The handler must exist before any CURVE handshake starts.
    m.zap.emplace(m.context, zmq::socket_type::rep);
    net::set_linger(*m.zap, std::chrono::milliseconds(0));
    m.zap->bind(kZapEndpoint);
  }
  auto setup = [&](zmq::socket_t& s, const std::string& endpoint,
                   const std::optional<net::CurveKeys>& curve, const char* which,
                   const char* option) {
    net::set_linger(s, std::chrono::milliseconds(0));
    if (curve) net::make_curve_server(s, *curve);
    try {
      s.bind(endpoint);
    } catch (const zmq::error_t& e) {
      throw SetupError(std::string("cannot bind the ") + which + " to " + endpoint + " (" +
                       e.what() + ") choose a free address with " + option);
    }
    return std::string(s.get(zmq::sockopt::last_endpoint));
  };
  // Frontend: many clients, one request each in flight; replies to vanished
  // clients are dropped silently.
  m.frontend.set(zmq::sockopt::router_mandatory, 0);
  m.frontend.set(zmq::sockopt::sndhwm, 10000);
  m.frontend.set(zmq::sockopt::rcvhwm, 10000);
  net::set_max_message_size(m.frontend, m.options.max_message_size);
  // Backend: at most worker_prefetch jobs plus a heartbeat a second queue for
  // a worker, so no limit is needed, and none means a send fails only when the
  // worker is gone (ROUTER_MANDATORY).
  m.backend.set(zmq::sockopt::router_mandatory, 1);
  m.backend.set(zmq::sockopt::sndhwm, 0);
  m.backend.set(zmq::sockopt::rcvhwm, 0);
  net::set_max_message_size(m.backend, m.options.max_message_size);
  endpoints_.frontend =
      setup(m.frontend, m.options.frontend, m.options.frontend_curve, "frontend", "--frontend");
  endpoints_.backend =
      setup(m.backend, m.options.backend, m.options.backend_curve, "backend", "--backend");
  if (!m.options.chroma_bind.empty()) {
    // chroma-server clients speak plain TCP; the socket limits message size
    // (ChromaOptions::max_message_bytes) and drops replies to vanished
    // clients like the frontend.
    m.chroma.emplace(m.context, zmq::socket_type::router);
    m.chroma_front.emplace(m.options.chroma);
    auto& s = *m.chroma;
    net::set_linger(s, std::chrono::milliseconds(0));
    s.set(zmq::sockopt::router_mandatory, 0);
    s.set(zmq::sockopt::sndhwm, 10000);
    s.set(zmq::sockopt::rcvhwm, 10000);
    s.set(zmq::sockopt::maxmsgsize, m.options.chroma.max_message_bytes);
    for (const auto& e : m.options.chroma_bind) {
      try {
        s.bind(e);
      } catch (const zmq::error_t& err) {
        throw SetupError("cannot bind the chroma front to " + e + " (" + err.what() +
                         ") choose a free address with --chroma-bind");
      }
      endpoints_.chroma.push_back(s.get(zmq::sockopt::last_endpoint));
    }
  }
  m.router.set_stats_labels(m.labels(endpoints_));
  if (m.options.router.async) {
    log::info("broker: asynchronous mode, run files in {}",
              m.options.router.async_options.outdir.string());
  }
  log::info("broker: clients on {}, workers on {}", endpoints_.frontend, endpoints_.backend);
  for (const auto& e : endpoints_.chroma) log::info("broker: chroma-server clients on {}", e);
}

Broker::~Broker() = default;

void Broker::set_monitor(std::shared_ptr<BrokerMonitor> monitor) {
  impl_->monitor = std::move(monitor);
  impl_->monitor->set_info(impl_->labels(endpoints_));
  impl_->publish(Clock::now());
}

void Broker::stop() noexcept {
  impl_->stopping.store(true);
  impl_->waker.wake();
}

void Broker::run() {
  Impl& m = *impl_;
  std::vector<zmq::pollitem_t> items = {{m.frontend.handle(), 0, ZMQ_POLLIN, 0},
                                        {m.backend.handle(), 0, ZMQ_POLLIN, 0},
                                        {nullptr, m.waker.fd(), ZMQ_POLLIN, 0}};
  const std::size_t zap_item = items.size();
  if (m.zap) items.push_back({m.zap->handle(), 0, ZMQ_POLLIN, 0});
  if (m.chroma) items.push_back({m.chroma->handle(), 0, ZMQ_POLLIN, 0});
  std::vector<Buffer> frames;
  std::string peer;
  TimePoint last_tick = Clock::now();
  std::uint64_t chroma_seen = 0;
  while (!m.stopping.load()) {
    TimePoint now = Clock::now();
    auto wait = std::min<Duration>(m.options.tick, m.router.next_heartbeat() - now);
    wait = std::max<Duration>(wait, Duration::zero());
    try {
      // Round up so the loop does not spin just before a deadline.
      zmq::poll(items.data(), items.size(), std::chrono::ceil<std::chrono::milliseconds>(wait));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal; stop() decides
      throw;
    }
    if (items[2].revents & ZMQ_POLLIN) m.waker.drain();
    if (m.stopping.load()) break;
    if (m.zap && (items[zap_item].revents & ZMQ_POLLIN)) m.serve_zap();
    now = Clock::now();
    for (int i = 0; i < kBatch; ++i) {
      if (!net::recv_frames(m.frontend, frames, zmq::recv_flags::dontwait, &peer)) break;
      m.deliver(m.router.on_frontend_message(std::move(frames), peer, now), now);
    }
    for (int i = 0; m.chroma && i < kBatch; ++i) {
      if (!net::recv_frames(*m.chroma, frames, zmq::recv_flags::dontwait, &peer)) break;
      m.on_chroma_message(std::move(frames), peer, now);
    }
    for (int i = 0; i < kBatch; ++i) {
      if (!net::recv_frames(m.backend, frames, zmq::recv_flags::dontwait,
                            m.monitor ? &peer : nullptr)) {
        break;
      }
      if (m.monitor && !frames.empty() && !peer.empty()) {
        m.worker_peers[std::string(reinterpret_cast<const char*>(frames[0].data()),
                                   frames[0].size())] = peer;
      }
      m.deliver(m.router.on_backend_message(std::move(frames), now), now);
    }
    now = Clock::now();
    if (now - last_tick >= m.options.tick || now >= m.router.next_heartbeat()) {
      last_tick = now;
      m.deliver(m.router.on_tick(now), now);
    }
    if (m.monitor && now - m.last_publish >= std::chrono::milliseconds(250)) m.publish(now);
    if (m.chroma_front) {
      // The chroma counters reach STATS through the router's labels.
      const auto& cs = m.chroma_front->stats();
      const auto seen = cs.requests + cs.dropped + cs.replies + cs.failed;
      if (seen != chroma_seen) {
        chroma_seen = seen;
        m.router.set_stats_labels(m.labels(endpoints_));
      }
    }
  }
  // Asynchronous mode: what has completed is written and the files renamed.
  m.router.close_runs();
}

}  // namespace acheron::broker
