#include "acheron/photon/Worker.hh"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::photon {

std::map<std::string, std::string> worker_info_from_environment() {
  std::map<std::string, std::string> info;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  std::string node = env("SLURMD_NODENAME");
  if (node.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) node = host;
  }
  if (!node.empty()) info["node"] = node;
  info["pid"] = std::to_string(getpid());
  // SLURM_RESTART_COUNT is set only in a job that was requeued (preemption,
  // `scontrol requeue`, node failure): how many times it started again.
  for (const char* name :
       {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"}) {
    if (std::string v = env(name); !v.empty()) {
      std::string key(name);
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      info[key] = v;
    }
  }
  return info;
}

struct Worker::Impl {
  WorkerOptions options;
  zmq::context_t context{1};
  net::Waker waker;
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  struct Completion {
    std::uint64_t connection;  // replies from an older connection are dropped
    std::vector<Buffer> frames;
  };
  std::deque<Completion> completed;
  // PHOTONDATA requests not yet taken by a job thread.
  struct Pending {
    std::uint64_t connection;
    std::vector<Buffer> route;
    wire::charon::PhotonData photons;
  };
  std::deque<Pending> pending;
  std::size_t running = 0;  // requests taken by job threads, not yet completed
  std::atomic<int> drain_requests{0};
  std::atomic<std::uint64_t> connection{0};
  mutable std::mutex stats_mutex;
  WorkerStats stats;
  ThreadPool jobs;  // last: destroyed first, while the queue above exists

  explicit Impl(WorkerOptions o)
      : options(std::move(o)), jobs(std::max<std::size_t>(1, options.max_concurrent)) {}

  // Takes the next engine batch from `pending`: whole events in arrival
  // order, up to photons_per_batch (a larger event runs alone), with distinct
  // event ids (the random streams are keyed by event id).
  std::vector<Pending> take_batch() {
    std::vector<Pending> batch;
    std::lock_guard lock(mutex);
    std::uint64_t photons = 0;
    while (!pending.empty()) {
      const Pending& next = pending.front();
      if (next.connection != connection) {  // its broker connection is gone
        pending.pop_front();
        continue;
      }
      if (!batch.empty()) {
        if (photons + next.photons.num_photons > options.photons_per_batch) break;
        const bool repeated = std::any_of(batch.begin(), batch.end(), [&](const Pending& p) {
          return p.photons.event_id == next.photons.event_id;
        });
        if (repeated) break;
      }
      photons += next.photons.num_photons;
      batch.push_back(std::move(pending.front()));
      pending.pop_front();
    }
    running += batch.size();
    return batch;
  }

  zmq::socket_t open() {
    zmq::socket_t s(context, zmq::socket_type::dealer);
    net::set_linger(s, std::chrono::milliseconds(0));
    net::set_max_message_size(s, options.max_message_size);
    if (options.curve) net::make_curve_client(s, *options.curve, options.curve_server_key);
    s.connect(options.connect);
    const std::uint8_t ready = wire::charon::kReady;
    s.send(zmq::buffer(&ready, 1), zmq::send_flags::dontwait);
    if (!options.info.empty()) {
      std::string frame(1, static_cast<char>(wire::charon::kWorkerInfo));
      frame += nlohmann::json(options.info).dump();
      if (frame.size() <= wire::charon::kMaxWorkerInfoBytes + 1) {
        s.send(zmq::buffer(frame), zmq::send_flags::dontwait);
      } else {
        log::warn("worker: its info is {} bytes (at most {}); not sent", frame.size() - 1,
                  wire::charon::kMaxWorkerInfoBytes);
      }
    }
    std::lock_guard lock(stats_mutex);
    ++stats.connections;
    return s;
  }
};

Worker::Worker(std::shared_ptr<const optics::Detector> detector, WorkerOptions options)
    : service_(std::make_unique<PhotonService>(std::move(detector), options.service)),
      impl_(std::make_unique<Impl>(std::move(options))) {
  ACHERON_EXPECT(impl_->options.heartbeat.count() > 0 && impl_->options.liveness > 0,
                 "worker heartbeat and liveness must be positive (a broker could never be "
                 "declared gone otherwise) fix the options");
}

Worker::~Worker() {
  stop();
  impl_.reset();  // waits for running jobs, which use service_
}

void Worker::stop() {
  impl_->stopping = true;
  impl_->waker.wake();
}

void Worker::drain() {
  ++impl_->drain_requests;
  impl_->waker.wake();
}

WorkerStats Worker::stats() const {
  WorkerStats s;
  {
    std::lock_guard lock(impl_->stats_mutex);
    s = impl_->stats;
  }
  std::lock_guard lock(impl_->mutex);
  s.in_hand = impl_->running;
  return s;
}

void Worker::simulate_pending(Impl& m) {
  auto batch = m.take_batch();
  if (batch.empty()) return;
  log::debug("worker: simulating {} event(s), the first {} with {} photons", batch.size(),
             batch.front().photons.event_id, batch.front().photons.num_photons);
  std::vector<std::vector<Buffer>> replies;
  replies.reserve(batch.size());
  // A job whose slot asks for it gets the STEPS frame after its SIM_COMPLETE
  // (an asynchronous-mode Acheron broker; never a client).
  auto wants_steps = [](const Impl::Pending& p) {
    return !p.route.empty() && wire::charon::slot_wants_steps(p.route.front());
  };
  const bool any_steps = std::any_of(batch.begin(), batch.end(), wants_steps);
  if (batch.size() == 1 && !any_steps) {
    replies.push_back(service_->simulate(batch.front().photons));
  } else {
    std::vector<const wire::charon::PhotonData*> events;
    events.reserve(batch.size());
    for (const auto& p : batch) events.push_back(&p.photons);
    try {
      auto hits = service_->simulate_batch(events);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        std::optional<Buffer> steps;
        if (wants_steps(batch[i]) && hits[i].steps) {
          steps = wire::charon::encode_hit_steps(*hits[i].steps);
        }
        replies.push_back(
            wire::charon::encode_sim_complete(std::move(hits[i]), batch[i].photons.version));
        if (steps) replies.back().push_back(std::move(*steps));
      }
    } catch (const std::exception& e) {
      log::error("worker: a batch of {} events failed: {}", batch.size(), e.what());
      replies.clear();
      for (const auto& p : batch)
        replies.push_back(wire::charon::encode_sim_failed(p.photons.event_id));
    }
  }
  {
    std::lock_guard lock(m.stats_mutex);
    m.stats.events += batch.size();
    ++m.stats.batches;
  }
  {
    std::lock_guard lock(m.mutex);
    m.running -= batch.size();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto out = std::move(batch[i].route);
      out.insert(out.end(), replies[i].begin(), replies[i].end());
      m.completed.push_back({batch[i].connection, std::move(out)});
    }
  }
  m.waker.wake();
}

void Worker::run() {
  Impl& m = *impl_;
  using namespace std::chrono;
  auto backoff = m.options.reconnect_min;
  std::vector<Buffer> frames;
  bool drained = false;  // drain() has run its course: leave for good
  while (!m.stopping && !drained) {
    zmq::socket_t socket = m.open();
    const std::uint64_t conn = ++m.connection;
    log::info("worker connected to {} (connection {})", m.options.connect, conn);
    int liveness = m.options.liveness;
    auto next_heartbeat = steady_clock::now() + m.options.heartbeat;
    bool heard = false;             // anything from the broker on this connection
    bool heard_since_tick = false;  // ... since the last heartbeat tick
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, m.waker.fd(), ZMQ_POLLIN, 0}};
    bool draining = false;
    steady_clock::time_point drain_deadline{};
    auto hand_back = [&m](std::uint64_t n) {
      std::lock_guard lock(m.stats_mutex);
      m.stats.handed_back += n;
    };
    while (!m.stopping && liveness > 0) {
      if (m.drain_requests > 0 && !draining) {
        // No new work from here on; requests not yet started go back to the
        // broker with the DISCONNECT below.
        draining = true;
        drain_deadline = steady_clock::now() + m.options.grace;
        const std::uint8_t byte = wire::charon::kDraining;
        socket.send(zmq::buffer(&byte, 1), zmq::send_flags::dontwait);
        std::size_t dropped = 0;
        {
          std::lock_guard lock(m.mutex);
          for (const auto& p : m.pending) dropped += p.connection == conn;
          m.pending.clear();
        }
        hand_back(dropped);
        log::info("worker: draining; finishing the events in hand within {} ms",
                  m.options.grace.count());
      }
      if (draining && m.drain_requests > 1) drain_deadline = steady_clock::now();
      auto until = next_heartbeat;
      if (draining) until = std::min(until, drain_deadline);
      const auto wait = duration_cast<milliseconds>(until - steady_clock::now());
      try {
        zmq::poll(items, 2, std::max(milliseconds(0), wait));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        m.waker.drain();
        std::deque<Impl::Completion> done;
        {
          std::lock_guard lock(m.mutex);
          done.swap(m.completed);
        }
        for (auto& c : done) {
          if (c.connection == conn) net::send_frames(socket, c.frames, zmq::send_flags::dontwait);
        }
      }
      while (net::recv_frames(socket, frames, zmq::recv_flags::dontwait)) {
        liveness = m.options.liveness;
        heard_since_tick = true;
        if (!heard) {
          heard = true;
          backoff = m.options.reconnect_min;  // a working connection resets the back-off
        }
        if (frames.size() == 1) continue;  // HEARTBEAT (or any control frame)
        // [client_id, "", header, ...]: the envelope is everything up to the
        // first empty frame; the reply goes back with the same envelope.
        std::size_t delim = 0;
        while (delim < frames.size() && !frames[delim].empty()) ++delim;
        if (delim == 0 || delim >= frames.size() - 1) {
          log::warn("worker: ignoring a message without a routing envelope");
          continue;
        }
        std::vector<Buffer> route(frames.begin(), frames.begin() + delim + 1);
        std::span<const Buffer> body(frames.data() + delim + 1, frames.size() - delim - 1);
        {
          std::lock_guard lock(m.stats_mutex);
          ++m.stats.requests;
        }
        auto decoded = wire::charon::decode_request(body, m.options.service.limits);
        std::vector<Buffer> reply;
        if (auto* rej = std::get_if<wire::charon::Rejection>(&decoded)) {
          log::warn("worker: rejected a request: {}", rej->reason);
          reply = rej->reply;
        } else if (auto& req = std::get<wire::charon::Request>(decoded);
                   req.kind != wire::charon::RequestKind::photon_data) {
          reply = service_->reply_now(req);
        } else if (draining) {
          // Sent before the broker saw DRAINING: not started, handed back.
          hand_back(1);
          continue;
        } else {
          {
            std::lock_guard lock(m.mutex);
            m.pending.push_back({conn, std::move(route), std::move(req.photons)});
          }
          // One job per request; a job finding the queue already taken by an
          // earlier one has nothing to do.
          // The job gets the Impl itself: jobs still queued when the worker
          // is destroyed run while impl_ is already reset.
          m.jobs.submit([this, &m] { simulate_pending(m); });
          continue;
        }
        route.insert(route.end(), reply.begin(), reply.end());
        net::send_frames(socket, route, zmq::send_flags::dontwait);
      }
      const auto now = steady_clock::now();
      if (now >= next_heartbeat) {
        // Timer-driven, independent of traffic and of running simulations.
        const std::uint8_t hb = wire::charon::kHeartbeat;
        socket.send(zmq::buffer(&hb, 1), zmq::send_flags::dontwait);
        {
          std::lock_guard lock(m.stats_mutex);
          ++m.stats.heartbeats_sent;
        }
        if (!heard_since_tick) --liveness;
        heard_since_tick = false;
        next_heartbeat = now + m.options.heartbeat;
      }
      if (draining) {
        std::size_t running = 0;
        bool idle = false;
        {
          std::lock_guard lock(m.mutex);
          running = m.running;
          idle = running == 0 && m.completed.empty();
        }
        if (idle || now >= drain_deadline) {
          if (!idle) {
            log::warn("worker: grace of {} ms over; {} event(s) still simulating handed back",
                      m.options.grace.count(), running);
            hand_back(running);
            std::lock_guard lock(m.stats_mutex);
            m.stats.abandoned = running > 0;
          }
          const std::uint8_t byte = wire::charon::kDisconnect;
          socket.send(zmq::buffer(&byte, 1), zmq::send_flags::dontwait);
          // Deliver DISCONNECT (and the replies before it) before closing:
          // closing the context waits for them, up to the linger (bounded,
          // because a broker that has gone would never take them).
          net::set_linger(socket, std::chrono::milliseconds(500));
          socket.close();
          m.context.close();
          drained = true;
          break;
        }
      }
    }
    if (m.stopping || drained) break;
    if (draining) {
      // The broker re-dispatches what this worker held once it declares it
      // dead; do not wait for simulations nobody will take the answer of.
      std::lock_guard lock(m.mutex);
      std::lock_guard stats_lock(m.stats_mutex);
      m.stats.abandoned = m.running > 0;
      m.stats.handed_back += m.running;
      log::warn("worker: broker at {} went silent while draining; leaving", m.options.connect);
      break;
    }
    log::warn("worker: broker at {} silent for {} heartbeats; reconnecting in {} ms",
              m.options.connect, m.options.liveness, backoff.count());
    // Sleep in small slices so stop() stays prompt.
    const auto until = steady_clock::now() + backoff;
    while (!m.stopping && m.drain_requests == 0 && steady_clock::now() < until)
      std::this_thread::sleep_for(milliseconds(20));
    if (m.drain_requests > 0) {
      // Nothing is held without a broker (it re-dispatched what this worker had).
      log::info("worker: stopping while disconnected");
      break;
    }
    backoff = std::min(backoff * 2, m.options.reconnect_max);
  }
}

}  // namespace acheron::photon
