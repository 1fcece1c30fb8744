#include "acheron/photon/Server.hh"

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <variant>

#include <fmt/format.h>

#include "acheron/charon/Dedupe.hh"
#include "acheron/charon/FairQueue.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/photon/Convert.hh"

namespace acheron::photon {

namespace {

// A copyable wrapper of a move-only callable (the job pool and the queue
// take std::function-like callables).
template <class F>
std::function<void()> shared_task(F f) {
  auto p = std::make_shared<F>(std::move(f));
  return [p] { (*p)(); };
}

// Bytes per photon of a chroma list (ROOT ChromaPhotonList: three float
// triples, wavelength, time, flag, parent), to weigh a request before it is
// decoded.
constexpr std::uint64_t kChromaBytesPerPhoton = 48;

}  // namespace

struct Server::Impl {
  ServerOptions options;
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::router};  // ChAR0N, if options.bind
  std::optional<zmq::socket_t> chroma;                      // if options.chroma_bind
  net::Waker waker;
  std::atomic<bool> stopping{false};
  charon::Dedupe dedupe;
  std::unique_ptr<charon::AsyncRuns> runs;

  // Asynchronous mode: accepted events waiting for a batch, and ASYNC
  // replies held back while the backlog is over its limit.
  struct AsyncEvent {
    charon::Ticket ticket;
    wire::charon::PhotonData photons;
  };
  charon::FairQueue<AsyncEvent> waiting;  // clients in turn
  std::size_t batches_running = 0;
  struct HeldAck {
    charon::RequestKey key;
    std::uint32_t event_id;
  };
  std::deque<HeldAck> held_acks;

  // Results coming back from the job threads.
  struct SyncDone {
    charon::RequestKey key;
    std::vector<Buffer> reply;
    std::uint64_t bytes = 0;  // of the request, counted in pending_bytes
  };
  struct BatchDone {
    std::vector<charon::Ticket> tickets;
    std::vector<wire::charon::Hits> hits;  // empty on failure
  };
  struct ChromaDone {
    charon::Route route;
    Buffer reply;          // the detected photons or the error reply
    bool refused = false;  // the request did not decode
    std::uint64_t bytes = 0;
  };
  // Requests given to the job pool and not yet answered (synchronous ChAR0N
  // and chroma), bounded by max_queued_jobs / max_queued_bytes.
  std::size_t pending_jobs = 0;
  std::uint64_t pending_bytes = 0;
  std::uint64_t busy_refusals = 0;
  std::uint64_t host_limited = 0;  // of those, for a host over max_queued_per_host
  // Of the pending requests, those not yet given to the job pool: at most
  // max_concurrent run, the others wait here and start in turn by client.
  charon::FairQueue<std::function<void()>> sync_waiting;
  std::size_t sync_running = 0;
  // Whether a request of `bytes` from `client` may wait; counts a refusal.
  bool admit(const charon::ClientId& client, std::uint64_t bytes) {
    if (pending_jobs >= options.max_queued_jobs ||
        pending_bytes + bytes > options.max_queued_bytes) {
      ++busy_refusals;
      return false;
    }
    if (sync_waiting.queued(client.host) >= options.max_queued_per_host) {
      ++busy_refusals;
      ++host_limited;
      return false;
    }
    return true;
  }
  // Queues an admitted request and starts what may run.
  void queue_sync(const charon::ClientId& client, std::uint64_t photons, std::uint64_t bytes,
                  std::function<void()> task) {
    ++pending_jobs;
    pending_bytes += bytes;
    sync_waiting.push(client, charon::request_cost(photons), std::move(task));
    start_sync();
  }
  void start_sync() {
    const std::size_t slots = std::max<std::size_t>(1, options.max_concurrent);
    while (!sync_waiting.empty() && sync_running < slots) {
      ++sync_running;
      jobs.submit(sync_waiting.pop());
    }
  }
  using Done = std::variant<SyncDone, BatchDone, ChromaDone>;
  std::mutex mutex;
  std::deque<Done> completed;
  std::uint64_t received = 0;
  std::uint64_t rejected = 0;
  std::uint64_t chroma_requests = 0;
  std::uint64_t chroma_refused = 0;
  // The HTTP status front's figures (set_monitor), and the error counts it
  // has been given.
  std::shared_ptr<PhotonMonitor> monitor;
  std::uint64_t monitored_rejected = 0;
  std::uint64_t monitored_busy = 0;
  void publish() {
    if (!monitor) return;
    const std::size_t slots = std::max<std::size_t>(1, options.max_concurrent);
    monitor->set_queue(pending_jobs + waiting.size(), sync_running + batches_running, slots);
    monitor->count_error("rejected", rejected - monitored_rejected);
    monitor->count_error("busy", busy_refusals - monitored_busy);
    monitored_rejected = rejected;
    monitored_busy = busy_refusals;
  }
  // Last member: destroyed first, so running jobs finish while the queue
  // they report to still exists.
  ThreadPool jobs;

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        dedupe(options.dedupe_window),
        jobs(std::max<std::size_t>(1, options.max_concurrent)) {}

  void reply(const std::vector<Buffer>& route, const std::vector<Buffer>& body) {
    std::vector<Buffer> frames = route;
    frames.insert(frames.end(), body.begin(), body.end());
    if (!net::send_frames(socket, frames, zmq::send_flags::dontwait)) {
      log::debug("reply dropped: the client has gone");
    }
  }
  void post(Done done) {
    {
      std::lock_guard lock(mutex);
      completed.push_back(std::move(done));
    }
    waker.wake();
  }
};

Server::Server(std::shared_ptr<const optics::Detector> detector, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))),
      service_(std::make_unique<PhotonService>(std::move(detector), impl_->options.service)) {
  const auto& o = impl_->options;
  ACHERON_EXPECT(!o.bind.empty() || !o.chroma_bind.empty(),
                 "the server has neither a ChAR0N nor a chroma endpoint (it could serve no one) "
                 "give --bind or --chroma-bind");
  if (!o.chroma_bind.empty()) o.chroma.validate();
  auto& s = impl_->socket;
  net::set_linger(s, std::chrono::milliseconds(0));
  s.set(zmq::sockopt::router_mandatory, 0);
  s.set(zmq::sockopt::sndhwm, 10000);
  s.set(zmq::sockopt::rcvhwm, 10000);
  net::set_max_message_size(s, impl_->options.max_message_size);
  if (impl_->options.curve) net::make_curve_server(s, *impl_->options.curve);
  if (impl_->options.async) {
    ACHERON_EXPECT(impl_->options.photons_per_batch > 0,
                   "photons_per_batch is 0 (no batch could hold a photon) use a positive size");
    auto a = impl_->options.async_options;
    a.attributes.emplace(
        "timing", service_->engine().detector().settings().timing == optics::TimingMode::phase
                      ? "phase"
                      : "group");
    a.attributes.emplace("detector", service_->engine().detector().name());
    a.attributes.emplace("seed", std::to_string(service_->seed()));
    impl_->runs = std::make_unique<charon::AsyncRuns>(std::move(a), service_->detector_info());
  }
  if (!o.bind.empty()) {
    try {
      s.bind(o.bind);
    } catch (const zmq::error_t& e) {
      throw SetupError("cannot bind " + o.bind + " (" + e.what() +
                       ") choose a free port with --bind");
    }
    endpoint_ = s.get(zmq::sockopt::last_endpoint);
    log::info("photon server on {} ({} channels{})", endpoint_, service_->detector_info().size(),
              o.async ? ", asynchronous mode" : "");
  }
  if (!o.chroma_bind.empty()) {
    // chroma-server clients speak plain TCP; the socket limits message size
    // (larger messages close the sender's connection, see ChromaOptions).
    auto& c = impl_->chroma.emplace(impl_->context, zmq::socket_type::router);
    net::set_linger(c, std::chrono::milliseconds(0));
    c.set(zmq::sockopt::router_mandatory, 0);
    c.set(zmq::sockopt::sndhwm, 10000);
    c.set(zmq::sockopt::rcvhwm, 10000);
    c.set(zmq::sockopt::maxmsgsize, o.chroma.max_message_bytes);
    for (const auto& e : o.chroma_bind) {
      try {
        c.bind(e);
      } catch (const zmq::error_t& err) {
        throw SetupError("cannot bind the chroma front to " + e + " (" + err.what() +
                         ") choose a free port with --chroma-bind");
      }
      chroma_endpoints_.push_back(c.get(zmq::sockopt::last_endpoint));
      log::info("photon server: chroma-server clients on {}", chroma_endpoints_.back());
    }
  }
}

Server::~Server() {
  stop();
  impl_.reset();  // waits for running jobs, which use service_
}

void Server::set_monitor(std::shared_ptr<PhotonMonitor> monitor) {
  impl_->monitor = monitor;
  service_->set_observer([monitor](const EventObservation& o) { monitor->record(o); });
  impl_->publish();
}

void Server::stop() {
  impl_->stopping = true;
  impl_->waker.wake();
}

void Server::run() {
  Impl& m = *impl_;
  std::vector<Buffer> frames;
  std::string peer;
  const bool charon_front = !m.options.bind.empty();
  std::vector<zmq::pollitem_t> items;
  if (charon_front) items.push_back({m.socket.handle(), 0, ZMQ_POLLIN, 0});
  if (m.chroma) items.push_back({m.chroma->handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({nullptr, m.waker.fd(), ZMQ_POLLIN, 0});
  const std::size_t waker_item = items.size() - 1;

  // A chroma request: checked, simulated and encoded on a job thread (a
  // large list takes a while to check), in the client's framing. The engine
  // reads the photons where they lie in the received message.
  auto submit_chroma = [&](charon::ChromaMessage message, std::string from) {
    const std::uint64_t bytes = message.body.empty() ? 0 : message.body[0].size();
    const charon::ClientId client = charon::client_of(from, message.route);
    if (!m.admit(client, bytes)) {
      const std::span<const std::byte> raw(message.body.empty() ? nullptr : message.body[0].data(),
                                           bytes);
      const std::size_t own = m.sync_waiting.queued(client.host);
      auto reply = wire::chroma::encode_error(
          StatusCode::resource_exhausted,
          own >= m.options.max_queued_per_host
              ? "this host has " + std::to_string(own) +
                    " requests waiting (max_queued_per_host); try again later"
              : "the server has " + std::to_string(m.pending_jobs) +
                    " requests waiting (max_queued_jobs / max_queued_bytes); try again later",
          wire::chroma::detect_framing(raw));
      if (!net::send_frames(*m.chroma, charon::chroma_reply(message.route, std::move(reply)),
                            zmq::send_flags::dontwait)) {
        log::debug("chroma reply dropped: the client has gone");
      }
      return;
    }
    m.queue_sync(
        client, bytes / kChromaBytesPerPhoton, bytes,
        shared_task([this, bytes, message = std::move(message), from = std::move(from)]() mutable {
          Impl::ChromaDone done;
          done.bytes = bytes;
          done.route = std::move(message.route);
          auto checked = charon::check_chroma_request(message.body, impl_->options.chroma.limits);
          if (auto* refusal = std::get_if<charon::ChromaRefusal>(&checked)) {
            log::warn("refused a chroma request from {}: {}: {}", from.empty() ? "?" : from,
                      to_string(refusal->error.code), refusal->error.message);
            done.reply = std::move(refusal->reply);
            done.refused = true;
          } else {
            const auto& list = std::get<wire::chroma::View>(checked);
            const std::span<const std::byte> bytes(message.body[0].data(), message.body[0].size());
            const std::uint32_t event_id = charon::chroma_event_id(list.header);
            try {
              const auto hits =
                  service_->simulate_records(event_id, list.size, [&](optics::PhotonBatch& batch) {
                    return append_event(batch, bytes, list, event_id);
                  });
              auto reply = wire::chroma::encode(
                  to_chroma_list(hits.data(), hits.data() + hits.size()), list.header);
              done.reply =
                  reply ? std::move(*reply)
                        : wire::chroma::encode_error(StatusCode::internal, reply.error().message,
                                                     list.header.framing);
            } catch (const std::exception& e) {
              done.reply = wire::chroma::encode_error(
                  StatusCode::internal, std::string("the simulation failed: ") + e.what(),
                  list.header.framing);
            }
          }
          message.body.clear();  // the request's bytes are not needed any more
          impl_->post(std::move(done));
        }));
  };

  // Starts engine batches while job threads are free: whole events, in
  // arrival order, up to photons_per_batch (an event larger than that runs
  // alone; the engine bounds its own memory by chunks), distinct event ids.
  auto dispatch_batches = [&] {
    while (!m.waiting.empty() && m.batches_running < m.options.max_concurrent) {
      std::vector<Impl::AsyncEvent> batch;
      std::set<std::uint32_t> ids;
      std::uint64_t photons = 0;
      while (!m.waiting.empty()) {
        const auto& e = m.waiting.front();
        if (!batch.empty() && (photons + e.photons.num_photons > m.options.photons_per_batch ||
                               ids.count(e.photons.event_id))) {
          break;
        }
        photons += e.photons.num_photons;
        ids.insert(e.photons.event_id);
        batch.push_back(m.waiting.pop());
      }
      ++m.batches_running;
      m.jobs.submit([this, batch = std::move(batch)]() mutable {
        Impl::BatchDone done;
        std::vector<const wire::charon::PhotonData*> events;
        for (const auto& e : batch) {
          done.tickets.push_back(e.ticket);
          events.push_back(&e.photons);
        }
        try {
          done.hits = service_->simulate_batch(events);
        } catch (const std::exception& ex) {
          log::error("a batch of {} events failed: {}", events.size(), ex.what());
        }
        impl_->post(std::move(done));
      });
    }
  };

  auto release_held_acks = [&] {
    while (!m.held_acks.empty() && !m.runs->over_backlog()) {
      auto h = std::move(m.held_acks.front());
      m.held_acks.pop_front();
      auto ack = wire::charon::encode_sim_complete_async(h.event_id);
      for (const auto& route : m.dedupe.finish(h.key, ack, Clock::now())) m.reply(route, ack);
    }
  };

  auto process_completions = [&] {
    std::deque<Impl::Done> done;
    {
      std::lock_guard lock(m.mutex);
      done.swap(m.completed);
    }
    const auto now = Clock::now();
    for (auto& d : done) {
      if (auto* s = std::get_if<Impl::SyncDone>(&d)) {
        --m.pending_jobs;
        --m.sync_running;
        m.pending_bytes -= s->bytes;
        // The status figures are current before the client has its reply
        // (it may read them next).
        m.publish();
        for (const auto& route : m.dedupe.finish(s->key, s->reply, now)) m.reply(route, s->reply);
        continue;
      }
      if (auto* c = std::get_if<Impl::ChromaDone>(&d)) {
        --m.pending_jobs;
        --m.sync_running;
        m.pending_bytes -= c->bytes;
        if (c->refused) {
          ++m.rejected;
          ++m.chroma_refused;
        }
        m.publish();
        if (!net::send_frames(*m.chroma, charon::chroma_reply(c->route, std::move(c->reply)),
                              zmq::send_flags::dontwait)) {
          log::debug("chroma reply dropped: the client has gone");
        }
        continue;
      }
      auto& b = std::get<Impl::BatchDone>(d);
      --m.batches_running;
      m.publish();
      if (b.hits.empty() && !b.tickets.empty() && m.monitor) {
        m.monitor->count_error("failed", b.tickets.size());
      }
      for (std::size_t i = 0; i < b.tickets.size(); ++i) {
        // A failed batch still completes its events (with no hits), so the
        // run's file and RUN_END are never stuck.
        wire::charon::Hits h = i < b.hits.size() ? std::move(b.hits[i]) : wire::charon::Hits{};
        for (auto& end : m.runs->complete(b.tickets[i], std::move(h))) {
          m.reply(end.route, end.reply);
        }
      }
    }
    m.start_sync();
    if (m.runs) {
      release_held_acks();
      dispatch_batches();
    }
  };

  while (!m.stopping) {
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (items[waker_item].revents & ZMQ_POLLIN) {
      m.waker.drain();
      process_completions();
    }
    // Drain everything that is waiting, without blocking.
    while (m.chroma && !m.stopping &&
           net::recv_frames(*m.chroma, frames, zmq::recv_flags::dontwait, &peer)) {
      ++m.received;
      auto message = charon::split_chroma_message(std::move(frames));
      if (!message) {
        ++m.rejected;
        continue;  // no envelope: nothing to answer
      }
      ++m.chroma_requests;
      submit_chroma(std::move(*message), peer);
    }
    while (charon_front && !m.stopping &&
           net::recv_frames(m.socket, frames, zmq::recv_flags::dontwait, &peer)) {
      ++m.received;
      auto routed = wire::charon::split_envelope(frames);
      if (routed.envelope_frames == 0) {
        ++m.rejected;
        continue;  // no way to answer a message without an envelope
      }
      std::vector<Buffer> route(frames.begin(), frames.begin() + routed.envelope_frames);
      if (wire::charon::header_of(routed.body) == wire::charon::kStats) {
        const auto st = service_->stats();
        nlohmann::json j = {{"role", "server"},
                            {"endpoint", endpoint_},
                            {"async", m.options.async},
                            {"requests", st.requests},
                            {"events", st.events},
                            {"photons", st.photons},
                            {"hits", st.hits},
                            {"failed", st.failed},
                            {"invalid_photons", st.invalid_photons},
                            {"seed", service_->seed()},
                            {"steps", st.steps},
                            {"busy_seconds", st.busy_seconds},
                            {"received", m.received},
                            {"rejected", m.rejected},
                            {"busy_refusals", m.busy_refusals},
                            {"host_limited", m.host_limited},
                            {"queued_jobs", m.pending_jobs},
                            {"waiting_jobs", m.sync_waiting.size() + m.waiting.size()},
                            {"waiting_hosts", m.sync_waiting.hosts()},
                            {"waiting_connections", m.sync_waiting.connections()},
                            {"max_queued_per_host", m.options.max_queued_per_host},
                            {"running", m.dedupe.running()},
                            {"duplicates", m.dedupe.duplicates()},
                            {"channels", service_->detector_info().size()}};
        auto& lat = j["latency_ms"];
        for (std::size_t i = 0; i < st.latency_counts.size(); ++i) {
          const std::string le = i < ServiceStats::kLatencyBoundsMs.size()
                                     ? fmt::format("{}", ServiceStats::kLatencyBoundsMs[i])
                                     : "inf";
          lat["le_" + le] = st.latency_counts[i];
        }
        if (m.chroma) {
          j["chroma"] = chroma_endpoints_;
          j["chroma_requests"] = m.chroma_requests;
          j["chroma_refused"] = m.chroma_refused;
        }
        if (m.runs) {
          j["backlog_photons"] = m.runs->backlog_photons();
          j["open_runs"] = m.runs->open_runs();
          j["closed_runs"] = m.runs->closed_runs().size();
        }
        const std::string text = j.dump();
        m.reply(route, {Buffer::copy_of(wire::charon::kStats.data(), wire::charon::kStats.size()),
                        Buffer::copy_of(text.data(), text.size())});
        continue;
      }
      auto decoded = wire::charon::decode_request(routed.body, m.options.service.limits);
      if (auto* rej = std::get_if<wire::charon::Rejection>(&decoded)) {
        ++m.rejected;
        log::warn("rejected a request from {}: {}", peer.empty() ? "?" : peer, rej->reason);
        m.reply(route, rej->reply);
        continue;
      }
      auto& request = std::get<wire::charon::Request>(decoded);
      if (m.runs && request.kind == wire::charon::RequestKind::run_begin) {
        try {
          m.runs->begin(peer, request.filename);
        } catch (const std::exception& e) {
          log::error("RUN_BEGIN from {}: {}", peer, e.what());
        }
        m.reply(route, wire::charon::encode_header(wire::charon::kAck));
        continue;
      }
      if (m.runs && request.kind == wire::charon::RequestKind::run_end) {
        if (auto reply = m.runs->end(peer, route)) m.reply(route, *reply);
        continue;
      }
      if (request.kind != wire::charon::RequestKind::photon_data) {
        m.reply(route, service_->reply_now(request));
        continue;
      }
      if (request.metadata_truncated) {
        log::info("event {}: metadata frame longer than 8 bytes, using the first two values",
                  request.photons.event_id);
      }
      charon::RequestKey key{peer, request.photons.event_id,
                             charon::digest_frames(routed.body.subspan(1))};
      auto look = m.dedupe.arrive(key, route, Clock::now());
      if (look.verdict == charon::Dedupe::Verdict::finished) {
        m.reply(route, look.reply);
        continue;
      }
      if (look.verdict == charon::Dedupe::Verdict::running) continue;
      if (m.runs) {
        // Accepted into the peer's run; answered at once unless the backlog
        // is over its limit (then the answer waits and a resend is deduped).
        const std::uint32_t event_id = request.photons.event_id;
        auto ticket = m.runs->accept(peer, request.photons.num_photons);
        const std::uint64_t cost = charon::request_cost(request.photons.num_photons);
        m.waiting.push(charon::client_of(peer, route), cost, {ticket, std::move(request.photons)});
        if (m.runs->over_backlog() || !m.held_acks.empty()) {
          m.held_acks.push_back({std::move(key), event_id});
        } else {
          auto ack = wire::charon::encode_sim_complete_async(event_id);
          for (const auto& r : m.dedupe.finish(key, ack, Clock::now())) m.reply(r, ack);
        }
        dispatch_batches();
        continue;
      }
      std::uint64_t bytes = 0;
      for (const Buffer& f : routed.body) bytes += f.size();
      const charon::ClientId client = charon::client_of(peer, route);
      if (!m.admit(client, bytes)) {
        // charon-protocol.md §8.1: a full queue (or the host's full share of
        // it) answers NO_WORKERS, which RAT-PAC takes as "retry later".
        m.dedupe.abandon(key);
        m.reply(route, wire::charon::encode_header(wire::charon::kNoWorkers));
        continue;
      }
      const std::uint64_t photons = request.photons.num_photons;
      m.queue_sync(client, photons, bytes,
                   shared_task([this, bytes, key = std::move(key),
                                photons = std::move(request.photons)]() mutable {
                     auto reply = service_->simulate(photons);
                     impl_->post(Impl::SyncDone{std::move(key), std::move(reply), bytes});
                   }));
    }
    m.publish();
  }
}

}  // namespace acheron::photon
