#include "acheron/photon/Service.hh"

#include <chrono>
#include <exception>

#include "acheron/core/Log.hh"
#include "acheron/photon/Convert.hh"

namespace acheron::photon {
namespace charon = wire::charon;

void ServiceStats::record_latency(double seconds) {
  const double ms = seconds * 1000;
  std::size_t i = 0;
  while (i < kLatencyBoundsMs.size() && ms > kLatencyBoundsMs[i]) ++i;
  ++latency_counts[i];
}

PhotonService::PhotonService(std::shared_ptr<const optics::Detector> detector,
                             ServiceOptions options)
    : detector_(std::move(detector)), options_(options) {
  engine_ = std::make_unique<optics::Engine>(detector_,
                                             optics::EngineOptions{.threads = options.threads});
  info_ = photon::detector_info(*detector_);
}

std::vector<Buffer> PhotonService::reply_now(const charon::Request& r) const {
  switch (r.kind) {
    case charon::RequestKind::ping:
      return charon::encode_header(options_.ping_reply == PingReply::ack ? charon::kAck
                                                                         : charon::kPong);
    case charon::RequestKind::detector_info:
      return charon::encode_detector_info(info_);
    case charon::RequestKind::run_begin:
    case charon::RequestKind::run_end:
      return charon::encode_header(charon::kAck);
    case charon::RequestKind::photon_data:
      break;
  }
  return charon::encode_header(charon::kUnknownRequest);
}

std::vector<Buffer> PhotonService::simulate(const charon::PhotonData& in) {
  try {
    const auto hits = simulate_records(in);
    return charon::encode_sim_complete(
        to_charon_hits(in.event_id, hits.data(), hits.data() + hits.size()), in.version);
  } catch (const std::exception&) {
    return charon::encode_sim_failed(in.event_id);  // logged by simulate_records
  }
}

std::vector<optics::HitRecord> PhotonService::simulate_records(const charon::PhotonData& in) {
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
  if (report.invalid || report.polarization_replaced || report.flags_masked) {
    log::debug("event {}: {} invalid photons, {} polarizations replaced, {} flags masked", event_id,
               report.invalid, report.polarization_replaced, report.flags_masked);
  }
  optics::SimulationResult result;
  std::exception_ptr error;
  try {
    result = engine_->simulate(batch, options_.seed);
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
  if (error) std::rethrow_exception(error);
  return std::move(result.hits);
}

std::vector<charon::Hits> PhotonService::simulate_batch(
    const std::vector<const charon::PhotonData*>& events) {
  const auto t0 = std::chrono::steady_clock::now();
  optics::PhotonBatch batch;
  std::uint64_t photons = 0, invalid = 0;
  for (const auto* e : events) {
    invalid += append_event(batch, *e, e->event_id).invalid;
    photons += e->num_photons;
  }
  auto result = engine_->simulate(batch, options_.seed);
  // Hits come back in input order, so each event's hits are one run.
  std::vector<charon::Hits> out;
  out.reserve(events.size());
  const optics::HitRecord* h = result.hits.data();
  const optics::HitRecord* end = h + result.hits.size();
  for (const auto* e : events) {
    const optics::HitRecord* first = h;
    while (h != end && h->event == e->event_id) ++h;
    out.push_back(to_charon_hits(e->event_id, first, h));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
