#include "acheron/photon/Monitor.hh"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace acheron::photon {
namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Rounds to 0.1 mm so the JSON stays short.
nlohmann::json rounded(const std::vector<float>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (float x : v) j.push_back(std::round(x * 10.0) / 10.0);
  return j;
}

}  // namespace

HitMapLayout hit_map_layout(const wire::charon::DetectorInfo& c) {
  HitMapLayout l;
  const std::size_t n = c.size();
  if (n == 0) {
    l.projection = "none";
    return l;
  }
  const auto [xmin, xmax] = std::minmax_element(c.x.begin(), c.x.end());
  const auto [ymin, ymax] = std::minmax_element(c.y.begin(), c.y.end());
  const auto [zmin, zmax] = std::minmax_element(c.z.begin(), c.z.end());
  const double span_xy = std::max(*xmax - *xmin, *ymax - *ymin);
  const double height = *zmax - *zmin;
  l.u.resize(n);
  l.v.resize(n);
  if (height <= 0.05 * span_xy) {
    l.projection = "x-y top view";
    l.u = c.x;
    l.v = c.y;
    return l;
  }
  std::vector<double> r(n);
  double rmax = 0;
  for (std::size_t i = 0; i < n; ++i) {
    r[i] = std::hypot(c.x[i], c.y[i]);
    rmax = std::max(rmax, r[i]);
  }
  // Caps: channels at the top or bottom (within 2 % of the height) well
  // inside the barrel radius.
  const double tol = 0.02 * height;
  std::size_t caps = 0, barrel = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (r[i] >= 0.9 * rmax) {
      ++barrel;
    } else if (c.z[i] >= *zmax - tol || c.z[i] <= *zmin + tol) {
      ++caps;
    }
  }
  const bool cylinder = caps > 0 && barrel > 0 && caps + barrel == n;
  l.projection = cylinder ? "barrel unrolled (R phi, z) with end caps" : "R phi against z";
  for (std::size_t i = 0; i < n; ++i) {
    const double phi = std::atan2(c.y[i], c.x[i]);
    if (cylinder && r[i] < 0.9 * rmax) {
      const bool top = c.z[i] >= *zmax - tol;
      l.u[i] = c.x[i];
      l.v[i] = static_cast<float>(top ? *zmax + 1.1 * rmax + c.y[i] : *zmin - 1.1 * rmax - c.y[i]);
    } else {
      l.u[i] = static_cast<float>(rmax * phi);
      l.v[i] = c.z[i];
    }
  }
  return l;
}

std::shared_ptr<PhotonMonitor> PhotonMonitor::create(std::string name, std::string doc,
                                                     const wire::charon::DetectorInfo& channels,
                                                     nlohmann::json info) {
  std::shared_ptr<PhotonMonitor> m(
      new PhotonMonitor(std::move(name), std::move(doc), channels, std::move(info)));
  std::weak_ptr<PhotonMonitor> weak = m;
  m->service_->set_status([weak] {
    auto self = weak.lock();
    return self ? self->snapshot() : nlohmann::json{{"error", "the service has stopped"}};
  });
  return m;
}

PhotonMonitor::PhotonMonitor(std::string name, std::string doc,
                             const wire::charon::DetectorInfo& channels, nlohmann::json info)
    : service_(std::make_shared<hub::Service>(std::move(name), std::move(doc))),
      layout_(hit_map_layout(channels)),
      channel_hits_(channels.size(), 0.0),
      hit_times_(kHitTimeBins, 0.0),
      info_(std::move(info)) {
  auto& reg = *service_->metrics();
  requests_ = &prometheus::BuildCounter()
                   .Name("acheron_photon_requests_total")
                   .Help("Simulation requests finished (one per event), failed ones included")
                   .Register(reg)
                   .Add({});
  photons_ = &prometheus::BuildCounter()
                  .Name("acheron_photon_photons_total")
                  .Help("Photons received in simulation requests")
                  .Register(reg)
                  .Add({});
  hits_ = &prometheus::BuildCounter()
               .Name("acheron_photon_hits_total")
               .Help("PMT hits returned")
               .Register(reg)
               .Add({});
  latency_ = &prometheus::BuildHistogram()
                  .Name("acheron_photon_request_duration_seconds")
                  .Help("Simulation time per request (per engine batch when events are batched)")
                  .Register(reg)
                  .Add({}, prometheus::Histogram::BucketBoundaries(kLatencyBoundsS.begin(),
                                                                   kLatencyBoundsS.end()));
  queue_ = &prometheus::BuildGauge()
                .Name("acheron_photon_queue_depth")
                .Help("Requests waiting for or in simulation")
                .Register(reg)
                .Add({});
  auto& workers = prometheus::BuildGauge()
                      .Name("acheron_photon_workers")
                      .Help("Simulation job slots by state")
                      .Register(reg);
  busy_ = &workers.Add({{"state", "busy"}});
  idle_ = &workers.Add({{"state", "idle"}});
  prometheus::BuildGauge()
      .Name("acheron_photon_channels")
      .Help("PMT channels of the detector")
      .Register(reg)
      .Add({})
      .Set(static_cast<double>(channels.size()));
  auto& errors = prometheus::BuildCounter()
                     .Name("acheron_photon_errors_total")
                     .Help("Requests refused or failed, by kind (rejected, busy, failed)")
                     .Register(reg);
  for (const char* kind : {"rejected", "busy", "failed"}) {
    errors_.emplace(kind, &errors.Add({{"kind", kind}}));
  }
}

prometheus::Counter& PhotonMonitor::error_counter(const std::string& kind) {
  auto it = errors_.find(kind);
  if (it != errors_.end()) return *it->second;
  // Unknown kinds share one series, so labels stay a small fixed set.
  return *errors_.at("failed");
}

void PhotonMonitor::record(const EventObservation& o) {
  requests_->Increment(static_cast<double>(o.events));
  photons_->Increment(static_cast<double>(o.photons));
  hits_->Increment(static_cast<double>(o.hits.size()));
  latency_->Observe(o.seconds);
  std::lock_guard lock(mutex_);
  if (o.failed) {
    error_counter("failed").Increment(static_cast<double>(std::max<std::uint64_t>(1, o.events)));
    n_errors_ += std::max<std::uint64_t>(1, o.events);
  }
  n_requests_ += o.events;
  n_photons_ += o.photons;
  n_hits_ += o.hits.size();
  std::size_t b = 0;
  while (b < kLatencyBoundsS.size() && o.seconds > kLatencyBoundsS[b]) ++b;
  ++latency_counts_[b];
  const double decay = std::pow(kDecay, static_cast<double>(o.events));
  for (auto& h : channel_hits_) h *= decay;
  for (auto& h : hit_times_) h *= decay;
  recent_events_ = recent_events_ * decay + static_cast<double>(o.events);
  for (const auto& h : o.hits) {
    if (h.channel < channel_hits_.size()) channel_hits_[h.channel] += 1;
    const double bin = std::floor(static_cast<double>(h.time) / kHitTimeBinNs);
    const auto i = static_cast<std::size_t>(
        std::clamp(std::isfinite(bin) ? bin : 0.0, 0.0, static_cast<double>(kHitTimeBins - 1)));
    hit_times_[i] += 1;
  }
}

void PhotonMonitor::set_queue(std::size_t queued, std::size_t busy_slots, std::size_t slots) {
  busy_slots = std::min(busy_slots, slots);
  queue_->Set(static_cast<double>(queued));
  busy_->Set(static_cast<double>(busy_slots));
  idle_->Set(static_cast<double>(slots - busy_slots));
  queue_depth_ = queued;
  busy_slots_ = busy_slots;
  slots_ = slots;
  has_queue_ = true;
}

void PhotonMonitor::count_error(const std::string& kind, std::uint64_t n) {
  if (n == 0) return;
  std::lock_guard lock(mutex_);
  error_counter(kind).Increment(static_cast<double>(n));
  n_errors_ += n;
}

void PhotonMonitor::set_info(const nlohmann::json& info) {
  std::lock_guard lock(mutex_);
  for (const auto& [k, v] : info.items()) info_[k] = v;
}

nlohmann::json PhotonMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j;
  j["kind"] = "photon";
  j["doc"] = service_->doc();
  j["time"] = wall_seconds();
  j["counters"] = {
      {"requests", n_requests_}, {"photons", n_photons_}, {"hits", n_hits_}, {"errors", n_errors_}};
  if (has_queue_) {
    j["gauges"] = {{"queue_depth", queue_depth_.load()},
                   {"busy_slots", busy_slots_.load()},
                   {"slots", slots_.load()}};
    j["plot_gauges"] = {"queue_depth"};
  }
  j["rates"] = {{"requests", "requests/s"}, {"photons", "photons/s"}, {"hits", "hits/s"}};
  j["latency"] = {{"bounds_s", kLatencyBoundsS}, {"counts", latency_counts_}};
  nlohmann::json times = nlohmann::json::array();
  for (double h : hit_times_) times.push_back(std::round(h * 100) / 100);
  j["hit_times"] = {{"bin_ns", kHitTimeBinNs}, {"counts", std::move(times)}};
  nlohmann::json values = nlohmann::json::array();
  for (double h : channel_hits_) values.push_back(std::round(h * 100) / 100);
  j["hitmap"] = {{"projection", layout_.projection},
                 {"u", rounded(layout_.u)},
                 {"v", rounded(layout_.v)},
                 {"values", std::move(values)},
                 {"events", std::round(recent_events_ * 10) / 10}};
  j["info"] = info_;
  return j;
}

}  // namespace acheron::photon
