#include "acheron/photon/Service.hh"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <unordered_set>

#include <xxhash.h>

#include "acheron/core/Log.hh"
#include "acheron/photon/Convert.hh"
#include "acheron/photon/Monitor.hh"

namespace acheron::photon {

void ServiceStats::record_latency(double seconds) {
  const double ms = seconds * 1000;
  std::size_t i = 0;
  while (i < kLatencyBoundsMs.size() && ms > kLatencyBoundsMs[i]) ++i;
  ++latency_counts[i];
}

namespace {

// Hashes one array's slice [begin, end) into the digest.
template <class T>
void hash_slice(XXH3_state_t* state, const std::vector<T>& v, std::size_t begin, std::size_t end) {
  if (end > begin) XXH3_64bits_update(state, v.data() + begin, (end - begin) * sizeof(T));
}

std::uint64_t fresh_seed() {
  std::uint64_t s;
  ::arc4random_buf(&s, sizeof s);  // glibc's ChaCha20 generator, seeded by the kernel
  return s;
}

}  // namespace

std::uint32_t stream_key(std::uint64_t seed, std::uint32_t event_id,
                         const optics::PhotonBatch& batch, std::size_t begin, std::size_t end) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset_withSeed(state, seed);
  XXH3_64bits_update(state, &event_id, sizeof event_id);
  for (const auto* v : {&batch.x, &batch.y, &batch.z, &batch.dx, &batch.dy, &batch.dz, &batch.px,
                        &batch.py, &batch.pz, &batch.wavelength, &batch.time}) {
    hash_slice(state, *v, begin, end);
  }
  hash_slice(state, batch.history, begin, end);
  const std::uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

PhotonService::PhotonService(std::shared_ptr<const optics::Detector> detector,
                             ServiceOptions options)
    : detector_(std::move(detector)), options_(options) {
  seed_ = options_.seed ? *options_.seed : fresh_seed();
  log::info("engine seed {} ({})", seed_,
            options_.seed ? "given" : "fresh for this process; --seed makes runs reproducible");
  engine_ = std::make_unique<optics::Engine>(
      detector_,
      optics::EngineOptions{.threads = options.threads, .step_history = options.step_history});
  info_ = photon::detector_info(*detector_);
}

std::vector<Buffer> PhotonService::reply_now(const wire::charon::Request& r) const {
  switch (r.kind) {
    case wire::charon::RequestKind::ping:
      return wire::charon::encode_header(
          options_.ping_reply == PingReply::ack ? wire::charon::kAck : wire::charon::kPong);
    case wire::charon::RequestKind::detector_info:
      return wire::charon::encode_detector_info(info_);
    case wire::charon::RequestKind::run_begin:
    case wire::charon::RequestKind::run_end:
      return wire::charon::encode_header(wire::charon::kAck);
    case wire::charon::RequestKind::photon_data:
      break;
  }
  return wire::charon::encode_header(wire::charon::kUnknownRequest);
}

std::vector<Buffer> PhotonService::simulate(const wire::charon::PhotonData& in) {
  try {
    const auto hits = simulate_records(in);
    return wire::charon::encode_sim_complete(
        to_charon_hits(in.event_id, hits.data(), hits.data() + hits.size()), in.version);
  } catch (const std::exception&) {
    return wire::charon::encode_sim_failed(in.event_id);  // logged by simulate_records
  }
}

std::vector<optics::HitRecord> PhotonService::simulate_records(const wire::charon::PhotonData& in) {
  // The batch event index is the client's event id, so the random streams of
  // an event are the same however requests are batched.
  return simulate_records(in.event_id, in.num_photons, [&](optics::PhotonBatch& batch) {
    return append_event(batch, in, in.event_id);
  });
}

std::vector<optics::HitRecord> PhotonService::simulate_records(
    std::uint32_t event_id, std::uint64_t photons,
    const std::function<InputReport(optics::PhotonBatch&)>& fill) {
  const auto t0 = std::chrono::steady_clock::now();
  optics::PhotonBatch batch;
  const InputReport report = fill(batch);
  // The batch holds this event alone: key its streams, and give the hits
  // back the client's event id.
  const std::uint32_t key = stream_key(seed_, event_id, batch, 0, batch.size());
  std::fill(batch.event.begin(), batch.event.end(), key);
  if (report.invalid || report.polarization_replaced || report.flags_masked) {
    log::debug("event {}: {} invalid photons, {} polarizations replaced, {} flags masked", event_id,
               report.invalid, report.polarization_replaced, report.flags_masked);
  }
  optics::SimulationResult result;
  std::exception_ptr error;
  try {
    result = engine_->simulate(batch, seed_);
    for (auto& h : result.hits) h.event = event_id;
  } catch (const std::exception& e) {
    log::error("event {}: simulation failed: {}", event_id, e.what());
    error = std::current_exception();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.requests;
    ++stats_.events;
    stats_.photons += photons;
    stats_.hits += result.hits.size();
    stats_.failed += error ? 1 : 0;
    // Photons the engine refused (outside the world, or non-finite in flight)
    // besides those the input check marked.
    stats_.invalid_photons += report.invalid + result.diagnostics.nan_abort;
    stats_.steps += result.diagnostics.steps;
    stats_.busy_seconds += seconds;
    stats_.record_latency(seconds);
  }
  if (observer_) {
    observer_(EventObservation{.events = 1,
                               .photons = photons,
                               .hits = result.hits,
                               .seconds = seconds,
                               .failed = error != nullptr});
  }
  if (error) std::rethrow_exception(error);
  return std::move(result.hits);
}

std::vector<wire::charon::Hits> PhotonService::simulate_batch(
    const std::vector<const wire::charon::PhotonData*>& events) {
  const auto t0 = std::chrono::steady_clock::now();
  optics::PhotonBatch batch;
  std::uint64_t photons = 0, invalid = 0;
  std::vector<std::uint32_t> keys;
  keys.reserve(events.size());
  std::unordered_set<std::uint32_t> used;
  for (const auto* e : events) {
    const std::size_t begin = batch.size();
    invalid += append_event(batch, *e, e->event_id).invalid;
    photons += e->num_photons;
    std::uint32_t key = stream_key(seed_, e->event_id, batch, begin, batch.size());
    // Hits are told apart by key: two equal keys in one batch (identical
    // events, or a 1-in-2^32 digest collision) get distinct ones.
    while (!used.insert(key).second) ++key;
    std::fill(batch.event.begin() + static_cast<std::ptrdiff_t>(begin), batch.event.end(), key);
    keys.push_back(key);
  }
  auto result = engine_->simulate(batch, seed_);
  // Hits come back in input order, so each event's hits are one run.
  std::vector<wire::charon::Hits> out;
  out.reserve(events.size());
  const optics::HitRecord* h = result.hits.data();
  const optics::HitRecord* end = h + result.hits.size();
  for (std::size_t i = 0; i < events.size(); ++i) {
    const optics::HitRecord* first = h;
    while (h != end && h->event == keys[i]) ++h;
    out.push_back(to_charon_hits(events[i]->event_id, first, h));
    // hit_steps is parallel to hits.
    add_hit_steps(out.back(), first, result.hit_steps.data() + (first - result.hits.data()),
                  options_.step_history);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (observer_) {
    observer_(EventObservation{
        .events = events.size(), .photons = photons, .hits = result.hits, .seconds = seconds});
  }
  std::lock_guard lock(stats_mutex_);
  stats_.requests += events.size();
  stats_.events += events.size();
  stats_.photons += photons;
  stats_.hits += result.hits.size();
  stats_.invalid_photons += invalid + result.diagnostics.nan_abort;
  stats_.steps += result.diagnostics.steps;
  stats_.busy_seconds += seconds;
  stats_.record_latency(seconds);
  return out;
}

ServiceStats PhotonService::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

}  // namespace acheron::photon
