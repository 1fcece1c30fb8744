#include "acheron/charon/CharonRouter.hh"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

namespace {

// The client_id slot the router sends a worker: a tag byte and a 64-bit
// little-endian number. Original workers echo it untouched (§6).
constexpr char kJobTag = 'J';
constexpr char kProbeTag = 'P';
constexpr std::size_t kSlotSize = 9;

Buffer slot_frame(char tag, std::uint64_t n) {
  Buffer b = Buffer::allocate(kSlotSize);
  std::byte* p = b.mutable_data();
  p[0] = static_cast<std::byte>(tag);
  for (int i = 0; i < 8; ++i) p[1 + i] = static_cast<std::byte>(n >> (8 * i));
  return b;
}

struct Slot {
  char tag = 0;
  std::uint64_t number = 0;
};

// The slot of an asynchronous-mode job: tag 'S', the job number and "STEP"
// (13 bytes) asks `acheron photon worker` for the STEPS frame after its
// SIM_COMPLETE (docs/broker.md); original workers echo it like any slot.
Buffer steps_slot_frame(std::uint64_t n) {
  Buffer b = Buffer::allocate(wire::charon::kStepsSlotSize);
  std::byte* p = b.mutable_data();
  p[0] = static_cast<std::byte>(wire::charon::kStepsSlotTag);
  for (int i = 0; i < 8; ++i) p[1 + i] = static_cast<std::byte>(n >> (8 * i));
  std::memcpy(p + 9, wire::charon::kStepsSlotMark.data(), wire::charon::kStepsSlotMark.size());
  return b;
}

std::optional<Slot> parse_slot(const Buffer& b) {
  if (wire::charon::slot_wants_steps(b)) {
    Slot s{kJobTag, 0};
    for (int i = 0; i < 8; ++i) s.number |= static_cast<std::uint64_t>(b.data()[1 + i]) << (8 * i);
    return s;
  }
  if (b.size() != kSlotSize) return std::nullopt;
  const auto tag = static_cast<char>(b.data()[0]);
  if (tag != kJobTag && tag != kProbeTag) return std::nullopt;
  Slot s{tag, 0};
  for (int i = 0; i < 8; ++i) s.number |= static_cast<std::uint64_t>(b.data()[1 + i]) << (8 * i);
  return s;
}

Buffer byte_frame(std::uint8_t v) {
  return Buffer::copy_of(&v, 1);
}

bool is_control(const Buffer& b, std::uint8_t v) {
  return b.size() == 1 && static_cast<std::uint8_t>(b.data()[0]) == v;
}

std::string_view text_of(const Buffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A worker or client identity for logs: text if printable, else hex.
std::string printable(std::string_view id) {
  const bool text = !id.empty() &&
                    std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (text) return std::string(id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "0x";
  for (unsigned char c : id) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::uint32_t read_u32(const Buffer& b) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b.data()[i]) << (8 * i);
  return v;
}

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

void RouterOptions::validate() const {
  auto fail = [](const std::string& what) { throw SetupError(what); };
  if (queue_ttl <= Duration::zero()) {
    fail(
        "queue_ttl must be positive (queued requests would expire at once) give it in "
        "seconds, e.g. 60");
  }
  if (no_worker_grace < Duration::zero()) {
    fail("no_worker_grace is negative (it is a duration) use 0 or more seconds");
  }
  if (heartbeat_interval <= Duration::zero()) {
    fail(
        "heartbeat_interval must be positive (workers would never be heartbeated) use 1 s, "
        "the ChAR0N value");
  }
  if (heartbeat_liveness < 1) {
    fail(
        "heartbeat_liveness must be at least 1 (it counts missed intervals) use 3, the "
        "ChAR0N value");
  }
  if (busy_timeout <= Duration::zero()) {
    fail(
        "busy_timeout must be positive (busy workers would die at once) use the longest "
        "event time you expect, e.g. 600 s");
  }
  if (max_job_retries < 0) fail("max_job_retries is negative (it is a count) use 0 or more");
  if (poison_deaths < 1) {
    fail("poison_deaths must be at least 1 (a count of worker deaths) use 2, the default");
  }
  if (expected_detector && expected_detector->size() == 0) {
    fail("the expected detector has no channels (nothing could be detected) check --detector");
  }
  if (dedupe_window < Duration::zero()) {
    fail("dedupe_window is negative (it is a duration) use 0 to disable the reply cache");
  }
  if (worker_prefetch < 1 || worker_prefetch > 1024) {
    fail("worker_prefetch " + std::to_string(worker_prefetch) +
         " is out of range (jobs in flight per worker) use 1 to 1024");
  }
  if (max_queue_jobs_per_host == 0) {
    fail(
        "max_queue_jobs_per_host is 0 (no host could queue a request) use 1 or more, e.g. "
        "256, or max_queue_jobs to bound only the whole queue");
  }
  if (limits.max_photons == 0) {
    fail("max_photons is 0 (every PHOTONDATA would be refused) raise the photon limit");
  }
  if (async && async_options.events_per_basket == 0) {
    fail("events_per_basket is 0 (nothing would ever be written) use 1 or more, e.g. 500");
  }
  if (async && async_options.outdir.empty()) {
    fail("the output directory is empty (run files need a place) give --outdir, e.g. .");
  }
}

CharonRouter::CharonRouter(RouterOptions options, TimePoint now)
    : options_(std::move(options)),
      started_(now),
      dedupe_(options_.dedupe_window, options_.dedupe_max_bytes),
      next_heartbeat_(now + options_.heartbeat_interval),
      no_workers_since_(now) {
  options_.validate();
  if (options_.async) {
    // Checked at start, not at the first run: a broker that cannot write its
    // files should not accept events.
    std::error_code ec;
    std::filesystem::create_directories(options_.async_options.outdir, ec);
    if (!std::filesystem::is_directory(options_.async_options.outdir)) {
      throw SetupError("output directory '" + options_.async_options.outdir.string() +
                       "' does not exist and cannot be created (permissions?) choose --outdir");
    }
  }
  if (options_.expected_detector) {
    detector_ = options_.expected_detector;
    detector_reply_ = wire::charon::encode_detector_info(*detector_);
    detector_source_ = "the operator";
    if (options_.async) open_runs_store();
  }
}

// ---------------------------------------------------------------------------
// Frontend

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

// ---------------------------------------------------------------------------
// Asynchronous mode (§11)

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

// ---------------------------------------------------------------------------
// Backend

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

// ---------------------------------------------------------------------------
// Timers and dispatch

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

Outbox CharonRouter::take_outbox() {
  Outbox o;
  o.swap(out_);
  return o;
}

// ---------------------------------------------------------------------------
// Introspection

RouterStats CharonRouter::stats() const {
  RouterStats s = stats_;
  s.queue_depth = queue_size();
  s.queue_hosts = fair_.hosts();
  s.queue_connections = fair_.connections();
  s.queue_bytes = queue_bytes_;
  s.waiting_detector_info = waiting_info_.size();
  s.workers = workers_.size();
  s.in_flight = 0;
  for (const auto& [id, w] : workers_) {
    for (JobId j : w.in_flight) s.in_flight += jobs_.count(j);
    if (w.draining) ++s.workers_draining;
    switch (worker(id)->state) {
      case WorkerView::State::probing:
        ++s.workers_probing;
        break;
      case WorkerView::State::idle:
        ++s.workers_idle;
        break;
      case WorkerView::State::busy:
        ++s.workers_busy;
        break;
      case WorkerView::State::rejected:
        ++s.workers_rejected;
        break;
    }
  }
  return s;
}

std::optional<WorkerView> CharonRouter::worker(std::string_view worker_id) const {
  auto it = workers_.find(std::string(worker_id));
  if (it == workers_.end()) return std::nullopt;
  const Worker& w = it->second;
  WorkerView v;
  v.in_flight = w.in_flight.size();
  v.heartbeats_while_busy = w.heartbeats_while_busy;
  v.draining = w.draining;
  v.info = w.info;
  if (w.probe == Probe::pending) {
    v.state = WorkerView::State::probing;
  } else if (w.probe == Probe::rejected) {
    v.state = WorkerView::State::rejected;
  } else {
    v.state = w.in_flight.empty() ? WorkerView::State::idle : WorkerView::State::busy;
  }
  return v;
}

std::vector<WorkerStatus> CharonRouter::workers(TimePoint now) const {
  std::vector<WorkerStatus> out;
  out.reserve(workers_.size());
  for (const auto& [id, w] : workers_) {
    WorkerStatus s;
    s.id = id;
    s.state = worker(id)->state;
    s.in_flight = w.in_flight.size();
    s.last_seen_s = std::chrono::duration<double>(now - w.last_seen).count();
    s.info = w.info;
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json CharonRouter::stats_json(TimePoint now) const {
  const RouterStats s = stats();
  nlohmann::json j = {
      {"role", "broker"},
      {"uptime_s", seconds(now - started_)},
      {"requests", s.requests},
      {"dropped", s.dropped},
      {"rejected", s.rejected},
      {"pings", s.pings},
      {"detector_info", s.detector_info},
      {"run_control", s.run_control},
      {"photon_data", s.photon_data},
      {"duplicates", s.duplicates},
      {"cached_replies", s.cached_replies},
      {"no_workers", s.no_workers},
      {"expired", s.expired},
      {"dispatched", s.dispatched},
      {"completed", s.completed},
      {"retried", s.retried},
      {"failed", s.failed},
      {"late_replies", s.late_replies},
      {"forged_replies", s.forged_replies},
      {"poison_failed", s.poison_failed},
      {"stale_replies", s.stale_replies},
      {"async", options_.async},
      {"workers_seen", s.workers_seen},
      {"workers_lost", s.workers_lost},
      {"detector_mismatches", s.detector_mismatches},
      {"bad_backend_messages", s.bad_backend_messages},
      {"workers_left", s.workers_left},
      {"handed_back", s.handed_back},
      {"workers_draining", s.workers_draining},
      {"queue_depth", s.queue_depth},
      {"queue_bytes", s.queue_bytes},
      {"queue_hosts", s.queue_hosts},
      {"queue_connections", s.queue_connections},
      {"host_limited", s.host_limited},
      {"max_queue_jobs_per_host", options_.max_queue_jobs_per_host},
      {"waiting_detector_info", s.waiting_detector_info},
      {"in_flight", s.in_flight},
      {"workers", s.workers},
      {"workers_idle", s.workers_idle},
      {"workers_busy", s.workers_busy},
      {"workers_probing", s.workers_probing},
      {"workers_rejected", s.workers_rejected},
      {"dedupe_cached", dedupe_.cached()},
      {"dedupe_cached_bytes", dedupe_.cached_bytes()},
      {"detector_channels", detector_ ? nlohmann::json(detector_->size()) : nlohmann::json()},
      {"latency_ms", {{"bounds", RouterStats::kLatencyBoundsMs}, {"counts", s.latency_counts}}},
  };
  if (options_.async) {
    j["async_accepted"] = s.async_accepted;
    j["async_written"] = s.async_written;
    j["async_empty"] = s.async_empty;
    j["backlog_photons"] = async_backlog_photons();
    j["held_replies"] = held_acks_.size();
    j["open_runs"] = open_runs();
    j["closed_runs"] = runs_ ? runs_->closed_runs().size() : 0;
  }
  // One entry per registered worker: its state and what it said about
  // itself (WORKER_INFO: node, Slurm job); ChAR0N's workers have no info.
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, w] : workers_) {
    static constexpr const char* kStateNames[] = {"probing", "idle", "busy", "rejected"};
    const WorkerView v = *worker(id);
    nlohmann::json e = {{"id", printable(id)},
                        {"state", kStateNames[static_cast<int>(v.state)]},
                        {"in_flight", v.in_flight},
                        {"draining", v.draining},
                        {"last_seen_s", seconds(now - w.last_seen)}};
    for (const auto& [k, value] : w.info.items()) {
      if (!e.contains(k)) e[k] = value;
    }
    list.push_back(std::move(e));
  }
  j["worker_list"] = std::move(list);
  for (const auto& [k, v] : labels_.items()) j[k] = v;
  return j;
}

}  // namespace acheron::charon
