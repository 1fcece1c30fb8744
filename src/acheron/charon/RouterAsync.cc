// CharonRouter, asynchronous mode (§11): events accepted into runs, their
// hits handed to the runs, RUN_BEGIN / RUN_END, held ASYNC replies.
#include "acheron/charon/CharonRouter.hh"

#include "acheron/charon/RouterInternal.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

using namespace router_detail;

void CharonRouter::on_async_photon_data(Route route, std::span<const Buffer> body,
                                        std::uint32_t event_id, std::uint64_t photons,
                                        std::string_view peer, TimePoint now) {
  ++stats_.photon_data;
  RequestKey key{std::string(peer), event_id, digest_frames(body.subspan(1))};
  auto look = dedupe_.arrive(key, route, now);
  if (look.verdict == Dedupe::Verdict::finished) {
    ++stats_.duplicates;
    ++stats_.cached_replies;
    reply(route, look.reply);  // the ASYNC reply again; never a second entry
    return;
  }
  if (look.verdict == Dedupe::Verdict::running) {
    // Its ASYNC reply is held back (backlog); the dedupe entry now routes it
    // to this newest sender.
    ++stats_.duplicates;
    return;
  }
  // Runs need the detector for their files: until the first worker has
  // answered its probe, events are refused like any request without a
  // worker (NO_WORKERS means "retry later" to RAT-PAC). The same once no
  // worker has existed for the grace, so events are not accepted that no
  // one would simulate.
  if (!runs_ || no_workers_expired(now)) {
    dedupe_.abandon(key);
    ++stats_.no_workers;
    reply_header(route, wire::charon::kNoWorkers);
    return;
  }
  std::uint64_t bytes = 0;
  for (const Buffer& f : body) bytes += f.size();
  // The queue limits do not apply: the backlog limit below holds clients
  // back instead, and an accepted event must never be dropped.
  ClientId client = client_of(peer, route);
  const JobId id = enqueue(std::move(route), body, key, std::move(client), bytes, photons, now);
  jobs_.at(id).ticket = runs_->accept(std::string(peer), photons);
  ++stats_.async_accepted;
  if (runs_->over_backlog() || !held_acks_.empty()) {
    held_acks_.push_back({std::move(key), event_id});
  } else {
    const auto ack = wire::charon::encode_sim_complete_async(event_id);
    for (const auto& r : dedupe_.finish(key, ack, now)) reply(r, ack);
  }
  dispatch(now);
}

void CharonRouter::on_run_begin(const Route& route, std::string_view peer,
                                const std::string& name) {
  if (!runs_) {
    // Opened when the detector is known (before any event can be accepted).
    pending_begins_.emplace_back(std::string(peer), name);
  } else {
    try {
      runs_->begin(std::string(peer), name);
    } catch (const std::exception& e) {
      // RAT-PAC only warns about a failed RUN_BEGIN; its events then go to a
      // run with a generated name, so ACK either way.
      log::error("RUN_BEGIN from {}: {}", peer.empty() ? "?" : std::string(peer), e.what());
    }
  }
  reply_header(route, wire::charon::kAck);
}

void CharonRouter::on_run_end(Route route, std::string_view peer) {
  if (!runs_) {
    // No event can have been accepted yet: the run is empty and not written.
    std::erase_if(pending_begins_, [&](const auto& p) { return p.first == peer; });
    reply_header(route, wire::charon::kAck);
    return;
  }
  // Acknowledged now if the run is closed, else once its last event is
  // written (resends wait with it).
  if (auto now_reply = runs_->end(std::string(peer), route)) reply(route, *now_reply);
}

void CharonRouter::open_runs_store() {
  auto a = options_.async_options;
  a.attributes.emplace("detector_source", detector_source_);
  runs_ = std::make_unique<AsyncRuns>(std::move(a), *detector_);
  for (const auto& [peer, name] : pending_begins_) {
    try {
      runs_->begin(peer, name);
    } catch (const std::exception& e) {
      log::error("RUN_BEGIN from {}: {}", peer.empty() ? "?" : peer, e.what());
    }
  }
  pending_begins_.clear();
}

void CharonRouter::complete_async(Job& job, wire::charon::Hits hits, TimePoint now) {
  ++stats_.async_written;
  stats_.hits_out += hits.size();
  if (hits.size() == 0) hits.event_id = job.key.event_id;
  for (auto& end : runs_->complete(*job.ticket, std::move(hits))) reply(end.route, end.reply);
  drop_job(job.id);
  release_held_acks(now);
}

void CharonRouter::release_held_acks(TimePoint now) {
  while (!held_acks_.empty() && !runs_->over_backlog()) {
    HeldAck h = std::move(held_acks_.front());
    held_acks_.pop_front();
    const auto ack = wire::charon::encode_sim_complete_async(h.event_id);
    for (const auto& r : dedupe_.finish(h.key, ack, now)) reply(r, ack);
  }
}

void CharonRouter::close_runs() {
  if (runs_) runs_->close_all();
}

std::uint64_t CharonRouter::async_backlog_photons() const noexcept {
  return runs_ ? runs_->backlog_photons() : 0;
}

}  // namespace acheron::charon
