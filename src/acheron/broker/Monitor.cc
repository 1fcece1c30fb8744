#include "acheron/broker/Monitor.hh"

#include <algorithm>
#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace acheron::broker {
namespace {

const char* state_name(charon::WorkerView::State s) {
  switch (s) {
    case charon::WorkerView::State::probing:
      return "probing";
    case charon::WorkerView::State::idle:
      return "idle";
    case charon::WorkerView::State::busy:
      return "busy";
    case charon::WorkerView::State::rejected:
      return "rejected";
  }
  return "?";
}

// A worker identity as text: as it is when printable (a worker that names
// its socket), else hex (ZeroMQ's generated 5-byte identities).
std::string identity_text(const std::string& id) {
  const bool printable = !id.empty() && std::all_of(id.begin(), id.end(),
                                                    [](char c) { return c >= 0x20 && c < 0x7f; });
  if (printable) return id.size() <= 64 ? id : id.substr(0, 64) + "...";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "0x";
  for (std::size_t i = 0; i < id.size() && i < 32; ++i) {
    const auto b = static_cast<unsigned char>(id[i]);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// The WORKER_INFO fields a worker's row and info metric show. A worker
// chooses their values, so they are cut to a printable, bounded text.
constexpr const char* kInfoFields[] = {"node", "slurm_job_id", "slurm_array_job_id",
                                       "slurm_array_task_id", "slurm_restart_count"};
constexpr std::size_t kMaxInfoSeries = 1024;

std::string info_text(const nlohmann::json& info, const char* key) {
  auto it = info.find(key);
  if (it == info.end() || !it->is_string()) return "";
  std::string v = it->get<std::string>();
  if (v.size() > 64) v.resize(64);
  for (char& c : v)
    if (c < 0x20 || c >= 0x7f) c = '?';
  return v;
}

double monitor_wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::shared_ptr<BrokerMonitor> BrokerMonitor::create(std::string name, std::string doc,
                                                     nlohmann::json info) {
  std::shared_ptr<BrokerMonitor> m(
      new BrokerMonitor(std::move(name), std::move(doc), std::move(info)));
  std::weak_ptr<BrokerMonitor> weak = m;
  m->service_->set_status([weak] {
    auto self = weak.lock();
    return self ? self->snapshot() : nlohmann::json{{"error", "the broker has stopped"}};
  });
  return m;
}

BrokerMonitor::BrokerMonitor(std::string name, std::string doc, nlohmann::json info)
    : service_(std::make_shared<hub::Service>(std::move(name), std::move(doc))),
      info_(std::move(info)) {
  auto& reg = *service_->metrics();
  auto counter = [&](const char* name, const char* help,
                     std::uint64_t charon::RouterStats::*field) {
    counters_.push_back(
        {&prometheus::BuildCounter().Name(name).Help(help).Register(reg).Add({}), field});
  };
  counter("acheron_broker_requests_total", "Client messages with a routing envelope (any kind)",
          &charon::RouterStats::requests);
  counter("acheron_broker_photon_requests_total",
          "PHOTONDATA requests (chroma-front jobs and resends included)",
          &charon::RouterStats::photon_data);
  counter("acheron_broker_photons_total", "Photons in the simulation jobs queued",
          &charon::RouterStats::photons_in);
  counter("acheron_broker_hits_total", "Hits in the replies forwarded to clients or run files",
          &charon::RouterStats::hits_out);
  counter("acheron_broker_dispatched_total", "Jobs sent to workers, retries included",
          &charon::RouterStats::dispatched);
  counter("acheron_broker_completed_total", "Worker replies forwarded to clients",
          &charon::RouterStats::completed);
  counter("acheron_broker_retried_total", "Jobs put back in the queue after a worker died",
          &charon::RouterStats::retried);
  counter("acheron_broker_host_limited_total",
          "NO_WORKERS replies for a host over its share of the queue (also in no_workers)",
          &charon::RouterStats::host_limited);
  auto& errors = prometheus::BuildCounter()
                     .Name("acheron_broker_errors_total")
                     .Help("Requests refused, dropped or failed, and workers lost, by kind")
                     .Register(reg);
  const std::pair<const char*, std::uint64_t charon::RouterStats::*> kinds[] = {
      {"rejected", &charon::RouterStats::rejected},
      {"dropped", &charon::RouterStats::dropped},
      {"no_workers", &charon::RouterStats::no_workers},
      {"expired", &charon::RouterStats::expired},
      {"failed", &charon::RouterStats::failed},
      {"worker_lost", &charon::RouterStats::workers_lost},
      {"poison_failed", &charon::RouterStats::poison_failed}};
  for (const auto& [kind, field] : kinds)
    counters_.push_back({&errors.Add({{"kind", kind}}), field});
  std::vector<double> bounds;
  for (double ms : charon::RouterStats::kLatencyBoundsMs) bounds.push_back(ms / 1000);
  latency_ = &prometheus::BuildHistogram()
                  .Name("acheron_broker_request_duration_seconds")
                  .Help("Time from a PHOTONDATA request's arrival to its reply")
                  .Register(reg)
                  .Add({}, bounds);
  queue_ = &prometheus::BuildGauge()
                .Name("acheron_broker_queue_depth")
                .Help("Jobs waiting for a worker")
                .Register(reg)
                .Add({});
  queue_bytes_ = &prometheus::BuildGauge()
                      .Name("acheron_broker_queue_bytes")
                      .Help("Request bytes waiting for a worker")
                      .Register(reg)
                      .Add({});
  in_flight_ = &prometheus::BuildGauge()
                    .Name("acheron_broker_in_flight")
                    .Help("Jobs held by workers")
                    .Register(reg)
                    .Add({});
  auto& workers = prometheus::BuildGauge()
                      .Name("acheron_broker_workers")
                      .Help("Workers by state")
                      .Register(reg);
  for (const char* s : {"idle", "busy", "probing", "rejected"}) {
    workers_.emplace(s, &workers.Add({{"state", s}}));
  }
  worker_info_ = &prometheus::BuildGauge()
                      .Name("acheron_broker_worker_info")
                      .Help("1 for each worker that told its node and Slurm job (WORKER_INFO)")
                      .Register(reg);
  snapshot_ = nlohmann::json::object();
}

void BrokerMonitor::update(const charon::CharonRouter& router, TimePoint now,
                           const std::map<std::string, std::string>& peers) {
  const charon::RouterStats s = router.stats();
  for (const auto& f : counters_) {
    const auto d = s.*(f.field) - last_.*(f.field);
    if (d > 0) f.counter->Increment(static_cast<double>(d));
  }
  std::vector<double> increments(s.latency_counts.size());
  bool any = false;
  for (std::size_t i = 0; i < increments.size(); ++i) {
    increments[i] = static_cast<double>(s.latency_counts[i] - last_.latency_counts[i]);
    any = any || increments[i] > 0;
  }
  if (any) latency_->ObserveMultiple(increments, s.latency_seconds_sum - last_.latency_seconds_sum);
  queue_->Set(static_cast<double>(s.queue_depth));
  queue_bytes_->Set(static_cast<double>(s.queue_bytes));
  in_flight_->Set(static_cast<double>(s.in_flight));
  workers_.at("idle")->Set(static_cast<double>(s.workers_idle));
  workers_.at("busy")->Set(static_cast<double>(s.workers_busy));
  workers_.at("probing")->Set(static_cast<double>(s.workers_probing));
  workers_.at("rejected")->Set(static_cast<double>(s.workers_rejected));
  last_ = s;

  nlohmann::json j;
  j["kind"] = "broker";
  j["doc"] = service_->doc();
  j["time"] = monitor_wall_seconds();
  const std::uint64_t errors =
      s.rejected + s.dropped + s.no_workers + s.expired + s.failed + s.poison_failed;
  j["counters"] = {{"requests", s.photon_data}, {"photons", s.photons_in},
                   {"hits", s.hits_out},        {"completed", s.completed},
                   {"errors", errors},          {"workers_lost", s.workers_lost}};
  j["gauges"] = {{"queue_depth", s.queue_depth},
                 {"in_flight", s.in_flight},
                 {"workers", s.workers},
                 {"workers_idle", s.workers_idle},
                 {"workers_busy", s.workers_busy}};
  j["rates"] = {{"requests", "requests/s"}, {"photons", "photons/s"}, {"hits", "hits/s"}};
  j["plot_gauges"] = {"queue_depth", "workers_busy"};
  std::vector<double> bounds;
  for (double ms : charon::RouterStats::kLatencyBoundsMs) bounds.push_back(ms / 1000);
  j["latency"] = {{"bounds_s", bounds}, {"counts", s.latency_counts}};
  nlohmann::json workers = nlohmann::json::array();
  std::map<std::string, prometheus::Gauge*> info_series;
  for (const auto& w : router.workers(now)) {
    auto peer = peers.find(w.id);
    nlohmann::json row = {{"id", identity_text(w.id)},
                          {"peer", peer == peers.end() ? "" : peer->second},
                          {"state", state_name(w.state)},
                          {"in_flight", w.in_flight},
                          {"last_seen_s", w.last_seen_s}};
    prometheus::Labels labels{{"worker", identity_text(w.id)}};
    for (const char* field : kInfoFields) {
      std::string v = info_text(w.info, field);
      if (!v.empty()) labels[field] = v;
      row[field] = std::move(v);
    }
    workers.push_back(std::move(row));
    if (labels.size() == 1) continue;  // no WORKER_INFO (ChAR0N's own workers)
    auto old = worker_info_series_.find(w.id);
    if (old != worker_info_series_.end()) {
      info_series.emplace(w.id, old->second);
      worker_info_series_.erase(old);
    } else if (info_series.size() < kMaxInfoSeries) {
      auto& g = worker_info_->Add(labels);
      g.Set(1);
      info_series.emplace(w.id, &g);
    }
  }
  // Workers that left take their series with them.
  for (const auto& [id, gauge] : worker_info_series_) worker_info_->Remove(gauge);
  worker_info_series_ = std::move(info_series);
  j["workers"] = std::move(workers);
  std::lock_guard lock(mutex_);
  j["info"] = info_;
  snapshot_ = std::move(j);
}

void BrokerMonitor::set_info(const nlohmann::json& info) {
  std::lock_guard lock(mutex_);
  for (const auto& [k, v] : info.items()) info_[k] = v;
  if (snapshot_.is_object()) snapshot_["info"] = info_;
}

nlohmann::json BrokerMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

}  // namespace acheron::broker
