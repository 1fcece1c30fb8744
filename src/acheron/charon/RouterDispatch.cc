// CharonRouter, dispatch: the queue, handing jobs to workers, timers,
// retries after a worker died and poison requests (§8.3, §8.4, §8.9).
#include "acheron/charon/CharonRouter.hh"

#include <limits>

#include "acheron/charon/RouterInternal.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

using namespace router_detail;

void CharonRouter::queue_push(const Job& job) {
  fair_.push(job.client, request_cost(job.photons), job.id);
  queue_bytes_ += job.bytes;
}

void CharonRouter::queue_push_front(JobId id) {
  requeued_.push_front(id);
  queue_bytes_ += jobs_.at(id).bytes;
}

CharonRouter::JobId CharonRouter::queue_pop() {
  JobId id = 0;
  if (!requeued_.empty()) {
    id = requeued_.front();
    requeued_.pop_front();
  } else {
    id = fair_.pop();
  }
  queue_bytes_ -= jobs_.at(id).bytes;
  return id;
}

template <class Pred>
std::size_t CharonRouter::queue_remove_if(Pred pred) {
  auto remove = [&](JobId id) {
    if (!pred(id)) return false;
    queue_bytes_ -= jobs_.at(id).bytes;
    return true;
  };
  return std::erase_if(requeued_, remove) + fair_.remove_if(remove);
}

void CharonRouter::requeue_or_fail(Job& job, TimePoint now) {
  job.worker.clear();
  const bool poison = job.deaths_alone >= options_.poison_deaths;
  if (job.retries >= options_.max_job_retries || poison) {
    // The request may be what kills workers: stop here (§8.4). The failure is
    // cached like any reply, so a resend cannot take down more workers.
    ++stats_.failed;
    if (poison) {
      ++stats_.poison_failed;
      log::warn("event {}: SIM_FAILED, {} workers died holding it alone (a poison request?)",
                job.key.event_id, job.deaths_alone);
    } else {
      log::warn("event {}: SIM_FAILED after {} retries", job.key.event_id, job.retries);
    }
    if (job.ticket) {
      // The run gets an empty entry, so it still closes (§8.4, §11).
      ++stats_.async_empty;
      complete_async(job, {}, now);
      return;
    }
    const auto failed = wire::charon::encode_sim_failed(job.key.event_id);
    dedupe_.finish(job.key, failed, now);
    for (const auto& r : job.routes) reply(r, failed);
    drop_job(job.id);
    return;
  }
  ++job.retries;
  ++stats_.retried;
  queue_push_front(job.id);
}

void CharonRouter::complete(Job& job, std::span<const Buffer> reply, TimePoint now) {
  if (job.ticket) {
    // A worker of this project appends the STEPS frame (asked for by the
    // job's slot); an original worker does not, and its hits are written
    // without step data.
    std::span<const Buffer> sim = reply;
    const Buffer* steps_frame = nullptr;
    if (sim.size() > 1 && wire::charon::is_steps_frame(sim.back())) {
      steps_frame = &sim.back();
      sim = sim.first(sim.size() - 1);
    }
    auto hits = wire::charon::decode_sim_complete(sim);
    if (hits && steps_frame) {
      auto steps = wire::charon::decode_hit_steps(*steps_frame, hits->size());
      if (steps) {
        hits->steps = std::move(*steps);
      } else {
        ++stats_.bad_backend_messages;
        log::warn("event {}: {}; its hits are written without step data", job.key.event_id,
                  steps.error().message);
      }
    }
    if (!hits) {
      // A worker's SIM_FAILED (engine error) or a reply that does not
      // decode: an empty entry, so the run still closes.
      ++stats_.async_empty;
      log::warn("event {}: worker replied '{}' ({}); written without hits", job.key.event_id,
                std::string(wire::charon::header_of(reply)), hits.error().message);
      complete_async(job, {}, now);
    } else {
      complete_async(job, std::move(*hits), now);
    }
    return;
  }
  const Frames frames(reply.begin(), reply.end());
  dedupe_.finish(job.key, frames, now);
  for (const auto& r : job.routes) this->reply(r, reply);
  ++stats_.completed;
  const double ms = std::chrono::duration<double, std::milli>(now - job.arrived).count();
  const auto& bounds = RouterStats::kLatencyBoundsMs;
  const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), ms) - bounds.begin();
  ++stats_.latency_counts[static_cast<std::size_t>(bucket)];
  stats_.latency_seconds_sum += ms / 1000;
  // SIM_COMPLETE's third frame holds one uint32 channel per hit.
  if (reply.size() >= 3 && wire::charon::header_of(reply) == wire::charon::kSimComplete) {
    stats_.hits_out += reply[2].size() / sizeof(std::uint32_t);
  }
  drop_job(job.id);
}

void CharonRouter::drop_job(JobId id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  // Async jobs are not in by_key_ (their dedupe entry is finished at once),
  // and another job may hold the same key by now.
  if (auto k = by_key_.find(it->second.key); k != by_key_.end() && k->second == id) {
    by_key_.erase(k);
  }
  jobs_.erase(it);
}

void CharonRouter::remove_from_queue(JobId id) {
  queue_remove_if([id](JobId j) { return j == id; });
}

bool CharonRouter::busy(const Worker& w) noexcept {
  return !w.in_flight.empty() || w.probe == Probe::pending;
}

bool CharonRouter::dead(const Worker& w, TimePoint now) const {
  const Duration silence = now - w.last_seen;
  // An original worker neither reads nor heartbeats while it simulates
  // (§7), so only busy_timeout can tell it is dead. A probe is answered at
  // once, so a worker busy only with its probe gets the normal liveness.
  if (!w.in_flight.empty() && !w.heartbeats_while_busy) return silence > options_.busy_timeout;
  return silence > options_.heartbeat_interval * options_.heartbeat_liveness;
}

void CharonRouter::mark_idle(Worker& w) {
  w.ready_seq = next_ready_seq_++;
}

Outbox CharonRouter::on_tick(TimePoint now) {
  std::vector<std::string> dead_ids;
  for (const auto& [id, w] : workers_) {
    if (dead(w, now)) dead_ids.push_back(id);
  }
  for (const auto& id : dead_ids) {
    const Worker& w = workers_.at(id);
    lose_worker(id, fmt::format("silent for {:.1f} s", seconds(now - w.last_seen)), now);
  }

  // Timer-driven heartbeats to every worker, busy ones included (§8.10).
  if (now >= next_heartbeat_) {
    for (const auto& [id, w] : workers_) {
      out_.push_back(
          {Socket::backend, {Buffer::copy_of(id), byte_frame(wire::charon::kHeartbeat)}});
    }
    next_heartbeat_ += options_.heartbeat_interval;
    if (next_heartbeat_ <= now) next_heartbeat_ = now + options_.heartbeat_interval;
  }

  // Queued requests nobody waits for any more.
  // Accepted async events never expire: their client was answered already and
  // their run waits for them.
  std::vector<JobId> gone;
  queue_remove_if([&](JobId id) {
    const Job& job = jobs_.at(id);
    if (job.ticket || now - job.wanted <= options_.queue_ttl) return false;
    gone.push_back(id);
    return true;
  });
  for (JobId id : gone) {
    const Job& job = jobs_.at(id);
    ++stats_.expired;
    log::info("event {}: dropped after {:.0f} s in the queue", job.key.event_id,
              seconds(now - job.wanted));
    dedupe_.abandon(job.key);
    drop_job(id);
  }
  gone.clear();
  std::erase_if(waiting_info_,
                [&](const WaitingInfo& w) { return now - w.wanted > options_.queue_ttl; });

  // Nothing will serve the waiting requests: tell their clients now.
  // Accepted async events stay queued for the next worker.
  const bool expired = no_workers_expired(now);
  if (expired) {
    queue_remove_if([&](JobId id) {
      if (jobs_.at(id).ticket) return false;
      gone.push_back(id);
      return true;
    });
  }
  if (expired && (!gone.empty() || !waiting_info_.empty())) {
    log::warn("no worker for {:.1f} s: answering {} waiting request(s) NO_WORKERS",
              seconds(now - no_workers_since_), gone.size() + waiting_info_.size());
    // Oldest first, as they arrived.
    std::sort(gone.begin(), gone.end(),
              [&](JobId a, JobId b) { return jobs_.at(a).arrived < jobs_.at(b).arrived; });
    for (JobId id : gone) {
      const Job& job = jobs_.at(id);
      ++stats_.no_workers;
      for (const auto& r : job.routes) reply_header(r, wire::charon::kNoWorkers);
      dedupe_.abandon(job.key);
      drop_job(id);
    }
    for (auto& waiting : waiting_info_) {
      ++stats_.no_workers;
      reply_header(waiting.route, wire::charon::kNoWorkers);
    }
    waiting_info_.clear();
  }

  dedupe_.expire(now);
  dispatch(now);
  return take_outbox();
}

void CharonRouter::dispatch(TimePoint now) {
  while (!queue_empty()) {
    const Job& next = jobs_.at(queue_front());
    Worker* w = pick_worker(next.photons, next.suspect);
    if (!w) return;
    const JobId id = queue_pop();
    Job& job = jobs_.at(id);
    if (!busy(*w)) w->busy_since = now;
    w->in_flight.push_back(id);
    job.worker = w->id;
    if (std::find(job.holders.begin(), job.holders.end(), w->id) == job.holders.end()) {
      job.holders.push_back(w->id);
    }
    ++stats_.dispatched;
    Outgoing o{Socket::backend, {}};
    o.frames.reserve(3 + job.body.size());
    o.frames.push_back(Buffer::copy_of(w->id));
    o.frames.push_back(job.ticket ? steps_slot_frame(id) : slot_frame(kJobTag, id));
    o.frames.push_back(Buffer{});
    o.frames.insert(o.frames.end(), job.body.begin(), job.body.end());
    out_.push_back(std::move(o));
  }
}

bool CharonRouter::holds_suspect(const Worker& w) const {
  return std::any_of(w.in_flight.begin(), w.in_flight.end(), [&](JobId j) {
    auto it = jobs_.find(j);
    return it != jobs_.end() && it->second.suspect && it->second.worker == w.id;
  });
}

std::uint64_t CharonRouter::photons_in_flight(const Worker& w) const {
  std::uint64_t n = 0;
  for (JobId j : w.in_flight) {
    if (auto it = jobs_.find(j); it != jobs_.end()) n += it->second.photons;
  }
  return n;
}

CharonRouter::Worker* CharonRouter::pick_worker(std::uint64_t photons, bool alone) {
  // The least loaded worker with room, the one waiting longest among equals
  // (LRU among idle workers, §7). In asynchronous mode a worker past its
  // prefetch still has room for whole events up to photons_per_batch (§11).
  constexpr std::size_t kMaxPackedEvents = 256;
  const bool packing = options_.async && options_.photons_per_batch > 0;
  auto has_room = [&](const Worker& w) {
    // A suspect job goes to an empty worker and stays alone there.
    if (alone) return w.in_flight.empty();
    if (holds_suspect(w)) return false;
    if (w.in_flight.size() < options_.worker_prefetch) return true;
    return packing && w.in_flight.size() < kMaxPackedEvents &&
           photons_in_flight(w) + photons <= options_.photons_per_batch;
  };
  Worker* best = nullptr;
  for (auto& [id, w] : workers_) {
    if (w.probe != Probe::matched || w.draining || !has_room(w)) continue;
    if (!best || w.in_flight.size() < best->in_flight.size() ||
        (w.in_flight.size() == best->in_flight.size() && w.ready_seq < best->ready_seq)) {
      best = &w;
    }
  }
  return best;
}

std::size_t CharonRouter::usable_workers() const {
  return static_cast<std::size_t>(std::count_if(workers_.begin(), workers_.end(), [](auto& kv) {
    return kv.second.probe != Probe::rejected && !kv.second.draining;
  }));
}

void CharonRouter::update_usable(TimePoint now) {
  const bool has = usable_workers() > 0;
  if (had_usable_ && !has) no_workers_since_ = now;
  had_usable_ = has;
}

}  // namespace acheron::charon
