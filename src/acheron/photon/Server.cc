#include "acheron/photon/Server.hh"

#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <variant>

#include "acheron/broker/Dedupe.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"

namespace acheron::photon {
namespace charon = wire::charon;

struct Server::Impl {
  ServerOptions options;
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::router};
  net::Waker waker;
  std::atomic<bool> stopping{false};
  broker::Dedupe dedupe;

  struct Completion {
    broker::RequestKey key;
    std::vector<Buffer> reply;
  };
  std::mutex mutex;
  std::deque<Completion> completed;
  std::uint64_t received = 0;
  std::uint64_t rejected = 0;
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
};

Server::Server(std::shared_ptr<const optics::Detector> detector, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))),
      service_(std::make_unique<PhotonService>(std::move(detector), impl_->options.service)) {
  auto& s = impl_->socket;
  net::set_linger(s, std::chrono::milliseconds(0));
  s.set(zmq::sockopt::router_mandatory, 0);
  s.set(zmq::sockopt::sndhwm, 10000);
  s.set(zmq::sockopt::rcvhwm, 10000);
  if (impl_->options.curve) net::make_curve_server(s, *impl_->options.curve);
  try {
    s.bind(impl_->options.bind);
  } catch (const zmq::error_t& e) {
    throw SetupError("cannot bind " + impl_->options.bind + " (" + e.what() +
                     ") choose a free port with --bind");
  }
  endpoint_ = s.get(zmq::sockopt::last_endpoint);
  log::info("photon server on {} ({} channels)", endpoint_, service_->detector_info().size());
}

Server::~Server() {
  stop();
  impl_.reset();  // waits for running jobs, which use service_
}

void Server::stop() {
  impl_->stopping = true;
  impl_->waker.wake();
}

void Server::run() {
  Impl& m = *impl_;
  std::vector<Buffer> frames;
  std::string peer;
  zmq::pollitem_t items[] = {{m.socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, m.waker.fd(), ZMQ_POLLIN, 0}};
  while (!m.stopping) {
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(1000));
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
      const auto now = Clock::now();
      for (auto& c : done) {
        if (auto route = m.dedupe.finish(c.key, c.reply, now)) m.reply(*route, c.reply);
      }
    }
    // Drain everything that is waiting, without blocking.
    while (!m.stopping && net::recv_frames(m.socket, frames, zmq::recv_flags::dontwait, &peer)) {
      ++m.received;
      auto routed = charon::split_envelope(frames);
      if (routed.envelope_frames == 0) {
        ++m.rejected;
        continue;  // no way to answer a message without an envelope
      }
      std::vector<Buffer> route(frames.begin(), frames.begin() + routed.envelope_frames);
      if (charon::header_of(routed.body) == kStats) {
        const auto st = service_->stats();
        nlohmann::json j = {{"role", "server"},
                            {"endpoint", endpoint_},
                            {"requests", st.requests},
                            {"events", st.events},
                            {"photons", st.photons},
                            {"hits", st.hits},
                            {"failed", st.failed},
                            {"steps", st.steps},
                            {"busy_seconds", st.busy_seconds},
                            {"received", m.received},
                            {"rejected", m.rejected},
                            {"running", m.dedupe.running()},
                            {"duplicates", m.dedupe.duplicates()},
                            {"channels", service_->detector_info().size()}};
        const std::string text = j.dump();
        m.reply(route, {Buffer::copy_of(kStats.data(), kStats.size()),
                        Buffer::copy_of(text.data(), text.size())});
        continue;
      }
      auto decoded = charon::decode_request(routed.body, m.options.service.limits);
      if (auto* rej = std::get_if<charon::Rejection>(&decoded)) {
        ++m.rejected;
        log::warn("rejected a request from {}: {}", peer.empty() ? "?" : peer, rej->reason);
        m.reply(route, rej->reply);
        continue;
      }
      auto& request = std::get<charon::Request>(decoded);
      if (request.kind != charon::RequestKind::photon_data) {
        m.reply(route, service_->reply_now(request));
        continue;
      }
      if (request.metadata_truncated) {
        log::info("event {}: metadata frame longer than 8 bytes, using the first two values",
                  request.photons.event_id);
      }
      broker::RequestKey key{peer, request.photons.event_id,
                             broker::digest_frames(routed.body.subspan(1))};
      auto look = m.dedupe.arrive(key, route, Clock::now());
      if (look.verdict == broker::Dedupe::Verdict::finished) {
        m.reply(route, look.reply);
        continue;
      }
      if (look.verdict == broker::Dedupe::Verdict::running) continue;
      m.jobs.submit([this, key = std::move(key), photons = std::move(request.photons)]() mutable {
        auto reply = service_->simulate(photons);
        {
          std::lock_guard lock(impl_->mutex);
          impl_->completed.push_back({std::move(key), std::move(reply)});
        }
        impl_->waker.wake();
      });
    }
  }
}

}  // namespace acheron::photon
