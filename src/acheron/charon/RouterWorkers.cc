// CharonRouter, backend: worker registration, heartbeats, DETECTOR_INFO
// probes, job replies, WORKER_INFO, workers that die or leave (§6, §8.2-8.4).
#include "acheron/charon/CharonRouter.hh"

#include "acheron/charon/RouterInternal.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

using namespace router_detail;

Outbox CharonRouter::on_backend_message(std::vector<Buffer> frames, TimePoint now) {
  if (frames.size() < 2 || frames[0].empty()) {
    ++stats_.bad_backend_messages;
    log::warn("backend message with {} frame(s) and no worker id ignored", frames.size());
    return take_outbox();
  }
  const std::string id(text_of(frames[0]));
  const std::span<const Buffer> body = std::span<const Buffer>(frames).subspan(1);
  auto it = workers_.find(id);
  const bool known = it != workers_.end();

  if (body.size() == 1) {  // control: READY or HEARTBEAT (§6)
    if (is_control(body[0], wire::charon::kReady)) {
      if (known) lose_worker(id, "it sent READY again, so it restarted", now);
      register_worker(id, now);
    } else if (is_control(body[0], wire::charon::kHeartbeat)) {
      if (!known) {
        // A worker of an earlier broker run, or one declared dead too early.
        register_worker(id, now);
      } else {
        Worker& w = it->second;
        w.last_seen = now;
        // A heartbeat sent just before a job reached the worker arrives
        // right after dispatch; only one well into the job proves that the
        // worker heartbeats while busy (§8.3).
        if (!w.in_flight.empty() && now - w.busy_since >= options_.heartbeat_interval / 2) {
          w.heartbeats_while_busy = true;
        }
      }
    } else if (known && !body[0].empty() &&
               static_cast<std::uint8_t>(body[0].data()[0]) == wire::charon::kWorkerInfo) {
      it->second.last_seen = now;
      on_worker_info(it->second, body[0]);
    } else if (known && is_control(body[0], wire::charon::kDraining)) {
      Worker& w = it->second;
      w.last_seen = now;
      if (!w.draining) {
        w.draining = true;
        log::info("worker {} is draining: no new jobs; {} in flight", printable(id),
                  w.in_flight.size());
      }
      update_usable(now);
    } else if (is_control(body[0], wire::charon::kDisconnect)) {
      if (known) release_worker(id, now);
    } else {
      ++stats_.bad_backend_messages;
      log::warn("worker {}: unknown control frame of {} byte(s) ignored", printable(id),
                body[0].size());
      if (known) it->second.last_seen = now;
    }
    dispatch(now);
    return take_outbox();
  }

  // A reply: [slot, "", reply...] (the delimiter is optional).
  std::span<const Buffer> rest = body.subspan(1);
  if (!rest.empty() && rest[0].empty()) rest = rest.subspan(1);
  const auto slot = parse_slot(body[0]);
  if (!known) {
    // Only an earlier holder of the job (a worker declared dead too early)
    // may answer before it has registered again; anyone else is not
    // registered by a reply, and its reply goes nowhere.
    const auto job = slot && slot->tag == kJobTag ? jobs_.find(slot->number) : jobs_.end();
    if (job == jobs_.end() || std::find(job->second.holders.begin(), job->second.holders.end(),
                                        id) == job->second.holders.end()) {
      ++stats_.forged_replies;
      log::warn("backend peer {} that is not a registered worker sent a reply; ignored",
                printable(id));
      return take_outbox();
    }
  }
  Worker& w = known ? it->second : register_worker(id, now);
  w.last_seen = now;
  if (!slot) {
    ++stats_.bad_backend_messages;
    log::warn("worker {}: reply for an unknown client ({} bytes) ignored", printable(id),
              body[0].size());
  } else if (slot->tag == kJobTag) {
    on_job_reply(w, slot->number, rest, now);
  } else {
    on_probe_reply(w, slot->number, rest, now);
  }
  dispatch(now);
  return take_outbox();
}

Outbox CharonRouter::on_worker_unreachable(std::string_view worker_id, TimePoint now) {
  lose_worker(std::string(worker_id), "unreachable: its connection is gone", now);
  dispatch(now);
  return take_outbox();
}

CharonRouter::Worker& CharonRouter::register_worker(const std::string& id, TimePoint now) {
  Worker& w = workers_[id];
  w = Worker{};
  w.id = id;
  w.last_seen = now;
  ++stats_.workers_seen;
  log::info("worker {} connected; probing its detector", printable(id));
  send_probe(w, now);
  update_usable(now);
  return w;
}

void CharonRouter::send_probe(Worker& w, TimePoint now) {
  w.probe = Probe::pending;
  w.probe_id = next_probe_++;
  if (w.in_flight.empty()) w.busy_since = now;
  out_.push_back({Socket::backend,
                  {Buffer::copy_of(w.id), slot_frame(kProbeTag, w.probe_id), Buffer{},
                   Buffer::copy_of(wire::charon::kDetectorInfo)}});
}

void CharonRouter::on_job_reply(Worker& w, JobId id, std::span<const Buffer> reply, TimePoint now) {
  const auto pos = std::find(w.in_flight.begin(), w.in_flight.end(), id);
  const bool held = pos != w.in_flight.end();
  if (held) {
    w.in_flight.erase(pos);
    mark_idle(w);
  }
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    ++stats_.stale_replies;  // answered already (by another worker or the cache)
    log::debug("worker {}: reply for finished job {} dropped", printable(w.id), id);
    return;
  }
  Job& job = it->second;
  if (job.worker != w.id &&
      std::find(job.holders.begin(), job.holders.end(), w.id) == job.holders.end()) {
    // Never given this job: a guess or a forgery, not an answer.
    ++stats_.forged_replies;
    log::warn("worker {}: reply for a job it was never given ignored", printable(w.id));
    return;
  }
  if (reply.empty() || reply[0].empty()) {
    ++stats_.bad_backend_messages;
    log::warn("worker {}: empty reply for event {}", printable(w.id), job.key.event_id);
    if (held && job.worker == w.id) requeue_or_fail(job, now);
    return;
  }
  if (job.worker != w.id) {
    // The job had been taken from this worker (declared dead) and is queued
    // or running elsewhere: the first answer wins, a later one is stale.
    ++stats_.late_replies;
    log::info("worker {}: late reply for event {} accepted", printable(w.id), job.key.event_id);
    if (job.worker.empty()) remove_from_queue(id);
  }
  const std::string_view header = wire::charon::header_of(reply);
  if ((header == wire::charon::kSimComplete || header == wire::charon::kSimFailed ||
       header == wire::charon::kSimCompleteAsync) &&
      reply.size() >= 2 && reply[1].size() == 4 && read_u32(reply[1]) != job.key.event_id) {
    log::warn("worker {}: reply for event {} carries event id {}", printable(w.id),
              job.key.event_id, read_u32(reply[1]));
  }
  complete(job, reply, now);
}

void CharonRouter::on_probe_reply(Worker& w, std::uint64_t probe_id, std::span<const Buffer> reply,
                                  TimePoint now) {
  if (w.probe != Probe::pending || w.probe_id != probe_id) {
    ++stats_.stale_replies;
    log::debug("worker {}: stale DETECTOR_INFO probe reply dropped", printable(w.id));
    return;
  }
  auto info = wire::charon::decode_detector_info(reply);
  if (!info) {
    w.probe = Probe::rejected;
    ++stats_.bad_backend_messages;
    log::warn("worker {} answered the DETECTOR_INFO probe with '{}' ({}); it gets no jobs",
              printable(w.id), std::string(wire::charon::header_of(reply)), info.error().message);
    update_usable(now);
    return;
  }
  if (!detector_) {
    detector_ = std::move(*info);
    detector_reply_.assign(reply.begin(), reply.end());
    detector_source_ = printable(w.id);
    log::info("detector from worker {}: {} channels", detector_source_, detector_->size());
    for (auto& waiting : waiting_info_) this->reply(waiting.route, detector_reply_);
    waiting_info_.clear();
    if (options_.async) {
      try {
        open_runs_store();
      } catch (const std::exception& e) {
        // Events keep getting NO_WORKERS; the log says why.
        log::error("asynchronous mode cannot start: {}", e.what());
      }
    }
  } else if (!(*info == *detector_)) {
    w.probe = Probe::rejected;
    ++stats_.detector_mismatches;
    log::warn(
        "worker {} serves a different detector ({} channels) from worker {} ({} "
        "channels); it gets no jobs",
        printable(w.id), info->size(), detector_source_, detector_->size());
    update_usable(now);
    return;
  }
  w.probe = Probe::matched;
  mark_idle(w);
  update_usable(now);
}

void CharonRouter::lose_worker(const std::string& id, std::string_view why, TimePoint now) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  const Worker w = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_lost;
  log::warn("worker {} lost ({}); {} job(s) in flight", printable(id), why, w.in_flight.size());
  std::vector<Job*> held;
  for (JobId j : w.in_flight) {
    if (auto job = jobs_.find(j); job != jobs_.end() && job->second.worker == id) {
      held.push_back(&job->second);
    }
  }
  // Newest first, so the oldest ends up at the queue head.
  for (auto r = held.rbegin(); r != held.rend(); ++r) {
    Job& job = **r;
    job.suspect = true;
    if (held.size() == 1) ++job.deaths_alone;
    requeue_or_fail(job, now);
  }
  update_usable(now);
}

void CharonRouter::release_worker(const std::string& id, TimePoint now) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  const Worker w = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_left;
  std::vector<JobId> held;
  for (JobId j : w.in_flight) {
    if (auto job = jobs_.find(j); job != jobs_.end() && job->second.worker == id) {
      held.push_back(j);
    }
  }
  log::info("worker {} left; {} job(s) handed back", printable(id), held.size());
  // Newest first, so the oldest ends up at the queue head. A hand-back is no
  // failure: the job keeps its retries and is not suspect.
  for (auto r = held.rbegin(); r != held.rend(); ++r) {
    Job& job = jobs_.at(*r);
    job.worker.clear();
    ++stats_.handed_back;
    queue_push_front(job.id);
  }
  update_usable(now);
}

void CharonRouter::on_worker_info(Worker& w, const Buffer& frame) {
  // 0x03 then a JSON object of short strings or integers; anything else in
  // it is dropped, and a malformed one leaves the worker as it was.
  constexpr std::size_t kMaxFields = 16;
  constexpr std::size_t kMaxValue = 256;
  const std::string_view text = text_of(frame).substr(1);
  auto parsed = text.size() <= wire::charon::kMaxWorkerInfoBytes
                    ? nlohmann::json::parse(text, nullptr, false)
                    : nlohmann::json(nlohmann::json::value_t::discarded);
  if (!parsed.is_object()) {
    ++stats_.bad_backend_messages;
    log::warn("worker {}: WORKER_INFO of {} bytes is not a JSON object (at most {} bytes); ignored",
              printable(w.id), text.size(), wire::charon::kMaxWorkerInfoBytes);
    return;
  }
  nlohmann::json info = nlohmann::json::object();
  for (const auto& [key, value] : parsed.items()) {
    if (info.size() >= kMaxFields || key.size() > 64) break;
    if (value.is_string() && value.get_ref<const std::string&>().size() <= kMaxValue) {
      info[key] = value;
    } else if (value.is_number_integer()) {
      info[key] = value;
    }
  }
  w.info = std::move(info);
  log::info("worker {}: {}", printable(w.id), w.info.dump());
}

}  // namespace acheron::charon
