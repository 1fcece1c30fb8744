#include "acheron/photon/Client.hh"

#include <deque>
#include <map>
#include <thread>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::photon {

EventPhotons EventPhotons::from_batch(const optics::PhotonBatch& b, std::uint32_t event,
                                      std::uint32_t event_id) {
  EventPhotons e;
  e.event_id = event_id;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (b.event[i] != event) continue;
    const float v[wire::charon::kComponents] = {b.x[i],  b.y[i],          b.z[i],   b.dx[i],
                                                b.dy[i], b.dz[i],         b.px[i],  b.py[i],
                                                b.pz[i], b.wavelength[i], b.time[i]};
    for (int c = 0; c < wire::charon::kComponents; ++c) e.f32[c].push_back(v[c]);
    e.flags.push_back(b.history[i] & wire::charon::kCreatorMask);
  }
  return e;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  ACHERON_EXPECT(options_.attempts >= 1 && options_.timeout.count() > 0,
                 "client needs attempts >= 1 and a positive timeout (no request could "
                 "succeed otherwise) fix the options");
}

Client::~Client() = default;

zmq::socket_t Client::open(zmq::socket_type type) {
  zmq::socket_t s(context_, type);
  net::set_linger(s, std::chrono::milliseconds(0));
  net::set_max_message_size(s, net::kDefaultMaxMessageSize);
  if (options_.curve) net::make_curve_client(s, *options_.curve, options_.curve_server_key);
  s.connect(options_.endpoint);
  return s;
}

std::vector<Buffer> Client::request(const std::vector<Buffer>& frames,
                                    bool accept_no_workers_as_final) {
  std::vector<Buffer> reply;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    // A fresh socket per attempt: a REQ socket cannot send again after an
    // unanswered request (zguide's Lazy Pirate).
    zmq::socket_t s = open(zmq::socket_type::req);
    net::send_frames(s, frames);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, options_.timeout);
    if (item.revents & ZMQ_POLLIN) {
      net::recv_frames(s, reply);
      if (wire::charon::header_of(reply) == wire::charon::kNoWorkers &&
          !accept_no_workers_as_final) {
        log::debug("NO_WORKERS from {} (attempt {} of {})", options_.endpoint, attempt,
                   options_.attempts);
        std::this_thread::sleep_for(options_.no_workers_wait);
        continue;
      }
      return reply;
    }
    log::debug("no reply from {} within {} ms (attempt {} of {})", options_.endpoint,
               options_.timeout.count(), attempt, options_.attempts);
  }
  throw Failure(StatusCode::unavailable, "no usable reply from " + options_.endpoint + " after " +
                                             std::to_string(options_.attempts) + " attempts of " +
                                             std::to_string(options_.timeout.count()) + " ms");
}

bool Client::ping() {
  try {
    auto r = request(wire::charon::encode_header(wire::charon::kPing), true);
    const auto h = wire::charon::header_of(r);
    return h == wire::charon::kAck || h == wire::charon::kPong;
  } catch (const Failure&) {
    return false;
  }
}

wire::charon::DetectorInfo Client::detector_info() {
  auto r = request(wire::charon::encode_header(wire::charon::kDetectorInfo), false);
  auto info = wire::charon::decode_detector_info(r);
  if (!info) {
    throw Failure(StatusCode::unavailable, "bad DETECTOR_INFO reply from " + options_.endpoint +
                                               ": " + info.error().message);
  }
  return std::move(*info);
}

void Client::run_begin(const std::string& filename) {
  auto r = request(wire::charon::encode_run_begin(filename), false);
  if (wire::charon::header_of(r) != wire::charon::kAck) {
    throw Failure(StatusCode::aborted, "RUN_BEGIN was not acknowledged");
  }
}

void Client::run_end() {
  auto r = request(wire::charon::encode_header(wire::charon::kRunEnd), false);
  if (wire::charon::header_of(r) != wire::charon::kAck) {
    throw Failure(StatusCode::aborted, "RUN_END was not acknowledged");
  }
}

wire::charon::Hits Client::simulate(const EventPhotons& event) {
  const auto frames = wire::charon::encode_photon_data(event.event_id, event.f32, &event.flags);
  auto r = request(frames, false);
  const auto header = wire::charon::header_of(r);
  if (header == wire::charon::kSimFailed) {
    throw Failure(StatusCode::aborted,
                  "the server could not simulate event " + std::to_string(event.event_id));
  }
  auto hits = wire::charon::decode_sim_complete(r);
  if (!hits) {
    throw Failure(StatusCode::unavailable, "unexpected reply '" + std::string(header) +
                                               "' to PHOTONDATA: " + hits.error().message);
  }
  if (hits->event_id != event.event_id) {
    throw Failure(StatusCode::internal, "reply for event " + std::to_string(hits->event_id) +
                                            " to a request for " + std::to_string(event.event_id));
  }
  return std::move(*hits);
}

std::vector<wire::charon::Hits> Client::simulate_many(
    const std::vector<EventPhotons>& events, std::size_t in_flight,
    const std::function<void(std::size_t)>& on_done) {
  in_flight = std::max<std::size_t>(1, in_flight);
  std::vector<wire::charon::Hits> results(events.size());
  std::map<std::uint32_t, std::size_t> index_of;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!index_of.emplace(events[i].event_id, i).second) {
      throw Failure(StatusCode::invalid_argument,
                    "event id " + std::to_string(events[i].event_id) + " appears twice");
    }
  }
  // One DEALER connection, REQ-style envelope (empty delimiter), so servers
  // and brokers route it like any REQ client; replies are matched by id.
  struct Pending {
    std::size_t index;
    int attempts;
    std::chrono::steady_clock::time_point deadline;
  };
  zmq::socket_t s = open(zmq::socket_type::dealer);
  std::map<std::uint32_t, Pending> pending;
  std::deque<std::size_t> todo;
  for (std::size_t i = 0; i < events.size(); ++i) todo.push_back(i);
  std::size_t done = 0;
  auto send = [&](std::size_t i, int attempts) {
    const auto& e = events[i];
    auto frames = wire::charon::encode_photon_data(e.event_id, e.f32, &e.flags);
    frames.insert(frames.begin(), Buffer());
    net::send_frames(s, frames);
    pending[e.event_id] = {i, attempts, std::chrono::steady_clock::now() + options_.timeout};
  };
  std::vector<Buffer> reply;
  while (done < events.size()) {
    while (pending.size() < in_flight && !todo.empty()) {
      send(todo.front(), 1);
      todo.pop_front();
    }
    auto next_deadline = std::chrono::steady_clock::time_point::max();
    for (const auto& [id, p] : pending) next_deadline = std::min(next_deadline, p.deadline);
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_deadline - std::chrono::steady_clock::now());
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::max(std::chrono::milliseconds(0), wait));
    while (net::recv_frames(s, reply, zmq::recv_flags::dontwait)) {
      if (reply.empty() || !reply[0].empty()) continue;
      std::span<const Buffer> body(reply.data() + 1, reply.size() - 1);
      const auto header = wire::charon::header_of(body);
      if (header == wire::charon::kSimComplete) {
        auto hits = wire::charon::decode_sim_complete(body);
        if (!hits) continue;
        auto it = pending.find(hits->event_id);
        if (it == pending.end()) continue;  // a late duplicate
        results[it->second.index] = std::move(*hits);
        pending.erase(it);
        ++done;
        if (on_done) on_done(done);
      } else if (header == wire::charon::kSimFailed) {
        auto id = wire::charon::decode_event_id_reply(body);
        if (id && pending.count(*id)) {
          throw Failure(StatusCode::aborted,
                        "the server could not simulate event " + std::to_string(*id));
        }
      }
      // NO_WORKERS carries no event id: the affected request times out and
      // is sent again below.
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      const auto p = it->second;
      it = pending.erase(it);
      if (p.attempts >= options_.attempts) {
        throw Failure(StatusCode::unavailable, "event " + std::to_string(events[p.index].event_id) +
                                                   " unanswered after " +
                                                   std::to_string(p.attempts) + " attempts");
      }
      send(p.index, p.attempts + 1);  // the server deduplicates resends
    }
  }
  return results;
}

std::string Client::stats_json() {
  auto r = request(wire::charon::encode_header(wire::charon::kStats), true);
  if (r.size() != 2 || wire::charon::header_of(r) != wire::charon::kStats) {
    throw Failure(StatusCode::unimplemented,
                  "the peer at " + options_.endpoint + " does not answer STATS");
  }
  return std::string(reinterpret_cast<const char*>(r[1].data()), r[1].size());
}

}  // namespace acheron::photon
