// CharonRouter, introspection: STATS counters, the STATS reply and worker
// views for tests and status pages.
#include "acheron/charon/CharonRouter.hh"

#include "acheron/charon/RouterInternal.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

using namespace router_detail;

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
