// CharonRouter, frontend: what a client's request becomes (answered at once,
// merged with a resend, queued, or refused with NO_WORKERS) (§8.1, §8.5).
#include "acheron/charon/CharonRouter.hh"

#include <cstdlib>

#include "acheron/charon/RouterInternal.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

using namespace router_detail;

Outbox CharonRouter::on_frontend_message(std::vector<Buffer> frames, std::string_view peer,
                                         TimePoint now) {
  const auto routed = wire::charon::split_envelope(frames);
  if (routed.envelope_frames == 0) {
    ++stats_.dropped;  // nobody to answer
    log::debug("frontend message without a routing envelope dropped");
    return take_outbox();
  }
  ++stats_.requests;
  Route route(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(routed.envelope_frames));
  const std::span<const Buffer> body = routed.body;

  if (wire::charon::header_of(body) == wire::charon::kStats) {
    const std::string text = stats_json(now).dump();
    const Buffer reply[] = {Buffer::copy_of(wire::charon::kStats), Buffer::copy_of(text)};
    this->reply(route, reply);
    return take_outbox();
  }

  auto decoded = wire::charon::decode_request(body, options_.limits);
  if (auto* rejection = std::get_if<wire::charon::Rejection>(&decoded)) {
    ++stats_.rejected;
    log::warn("rejected a request from {}: {}", peer.empty() ? "?" : std::string(peer),
              rejection->reason);
    reply(route, rejection->reply);
    return take_outbox();
  }
  auto& request = std::get<wire::charon::Request>(decoded);
  switch (request.kind) {
    case wire::charon::RequestKind::ping:
      ++stats_.pings;
      reply_header(
          route, options_.ping_reply == PingReply::pong ? wire::charon::kPong : wire::charon::kAck);
      break;
    case wire::charon::RequestKind::run_begin:
      ++stats_.run_control;
      if (options_.async) {
        on_run_begin(route, peer, request.filename);
      } else {
        reply_header(route, wire::charon::kAck);  // synchronous mode: a no-op (§11)
      }
      break;
    case wire::charon::RequestKind::run_end:
      ++stats_.run_control;
      if (options_.async) {
        on_run_end(std::move(route), peer);
      } else {
        reply_header(route, wire::charon::kAck);
      }
      break;
    case wire::charon::RequestKind::detector_info:
      on_client_detector_info(std::move(route), now);
      break;
    case wire::charon::RequestKind::photon_data:
      if (request.metadata_truncated) {
        log::info("event {}: metadata frame longer than 8 bytes, using the first two values",
                  request.photons.event_id);
      }
      if (options_.async) {
        on_async_photon_data(std::move(route), body, request.photons.event_id,
                             request.photons.num_photons, peer, now);
      } else {
        on_photon_data(std::move(route), body, request.photons.event_id,
                       request.photons.num_photons, peer, now);
      }
      break;
  }
  return take_outbox();
}

void CharonRouter::on_photon_data(Route route, std::span<const Buffer> body, std::uint32_t event_id,
                                  std::uint64_t photons, std::string_view peer, TimePoint now) {
  ++stats_.photon_data;
  RequestKey key{std::string(peer), event_id, digest_frames(body.subspan(1))};
  auto look = dedupe_.arrive(key, route, now);
  if (look.verdict == Dedupe::Verdict::finished) {
    ++stats_.duplicates;
    ++stats_.cached_replies;
    reply(route, look.reply);
    return;
  }
  if (look.verdict == Dedupe::Verdict::running) {
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      ++stats_.duplicates;
      Job& job = jobs_.at(it->second);
      // The reply goes to every sender (§8.5: the newest is the resend; the
      // first must not lose it to a duplicate).
      add_route(job.routes, std::move(route));
      job.wanted = now;
      return;
    }
    // The cache thinks the job runs but the router has no such job: keep the
    // two consistent and treat the request as new.
    dedupe_.abandon(key);
    dedupe_.arrive(key, route, now);
  }

  std::uint64_t bytes = 0;
  for (const Buffer& f : body) bytes += f.size();
  ClientId client = client_of(peer, route);
  const bool dispatchable_now = queue_empty() && pick_worker(photons) != nullptr;
  if (!dispatchable_now && !may_queue(client, bytes, event_id, now)) {
    dedupe_.abandon(key);
    reply_header(route, wire::charon::kNoWorkers);
    return;
  }
  const JobId id = enqueue(std::move(route), body, key, std::move(client), bytes, photons, now);
  by_key_.emplace(std::move(key), id);
  dispatch(now);
}

bool CharonRouter::may_queue(const ClientId& client, std::uint64_t bytes, std::uint32_t event_id,
                             TimePoint now) {
  const char* why = nullptr;
  if (no_workers_expired(now)) {
    why = "no worker within the grace";
  } else if (!queue_has_room(bytes)) {
    why = "queue full";
  } else if (fair_.queued(client.host) >= options_.max_queue_jobs_per_host) {
    why = "the host's share of the queue is full";
    ++stats_.host_limited;
  }
  if (!why) return true;
  ++stats_.no_workers;
  log::debug("event {} from {}: NO_WORKERS ({})", event_id, client.host.empty() ? "?" : client.host,
             why);
  return false;
}

Outbox CharonRouter::on_photon_job(Route route, std::vector<Buffer> body, std::uint32_t event_id,
                                   std::uint64_t photons, TimePoint now, std::string_view peer) {
  ACHERON_EXPECT(!options_.async,
                 "a job from another front reached an asynchronous router (its client waits for "
                 "hits) serve that front in synchronous mode");
  ++stats_.requests;
  ++stats_.photon_data;
  // A key no client request has (Peer-Address is a numeric address), and
  // the job is never registered with the resend cache: it is neither merged
  // with another request nor cached.
  RequestKey key{"(front)", event_id, 0};
  std::uint64_t bytes = 0;
  for (const Buffer& f : body) bytes += f.size();
  ClientId client = client_of(peer, route);
  const bool dispatchable_now = queue_empty() && pick_worker(photons) != nullptr;
  if (!dispatchable_now && !may_queue(client, bytes, event_id, now)) {
    reply_header(route, wire::charon::kNoWorkers);
    return take_outbox();
  }
  enqueue(std::move(route), body, std::move(key), std::move(client), bytes, photons, now);
  dispatch(now);
  return take_outbox();
}

CharonRouter::JobId CharonRouter::new_job_id() const {
  JobId id = 0;
  do {
    ::arc4random_buf(&id, sizeof id);  // glibc's ChaCha20 generator, seeded by the kernel
  } while (id == 0 || jobs_.count(id) != 0);
  return id;
}

CharonRouter::JobId CharonRouter::enqueue(Route route, std::span<const Buffer> body, RequestKey key,
                                          ClientId client, std::uint64_t bytes,
                                          std::uint64_t photons, TimePoint now) {
  const JobId id = new_job_id();
  Job job;
  job.id = id;
  job.routes.push_back(std::move(route));
  job.body.assign(body.begin(), body.end());
  job.key = std::move(key);
  job.client = std::move(client);
  job.bytes = bytes;
  job.photons = photons;
  job.arrived = job.wanted = now;
  stats_.photons_in += photons;
  queue_push(job);
  jobs_.emplace(id, std::move(job));
  return id;
}

void CharonRouter::on_client_detector_info(Route route, TimePoint now) {
  ++stats_.detector_info;
  if (detector_) {
    reply(route, detector_reply_);
    return;
  }
  if (no_workers_expired(now) || !queue_has_room(0)) {
    ++stats_.no_workers;
    reply_header(route, wire::charon::kNoWorkers);
    return;
  }
  // Answered when the first worker answers its probe.
  waiting_info_.push_back({std::move(route), now});
}

bool CharonRouter::no_workers_expired(TimePoint now) const {
  return !had_usable_ && now - no_workers_since_ >= options_.no_worker_grace;
}

bool CharonRouter::queue_has_room(std::uint64_t bytes) const {
  return queue_size() + waiting_info_.size() < options_.max_queue_jobs &&
         queue_bytes_ + bytes <= options_.max_queue_bytes;
}

void CharonRouter::reply(const Route& route, std::span<const Buffer> body) {
  Outgoing o{Socket::frontend, {}};
  o.frames.reserve(route.size() + body.size());
  o.frames.insert(o.frames.end(), route.begin(), route.end());
  o.frames.insert(o.frames.end(), body.begin(), body.end());
  out_.push_back(std::move(o));
}

void CharonRouter::reply_header(const Route& route, std::string_view header) {
  const Buffer body[] = {Buffer::copy_of(header)};
  reply(route, body);
}

}  // namespace acheron::charon
