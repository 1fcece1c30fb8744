// Live figures of a photon server or worker for the HTTP status front
// (docs/dashboard.md): Prometheus metrics acheron_photon_* in the hub
// service's registry and a status snapshot with a PMT hit map and a hit-time
// histogram of recent events. Job threads record events, the I/O thread sets
// the queue figures, HTTP threads read snapshots; all of it is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/hub/Service.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/wire/Charon.hh"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace acheron::photon {

// One simulation call as the service saw it: `events` events (one request,
// or an engine batch of several) of `photons` photons in `seconds`.
struct EventObservation {
  std::uint64_t events = 0;
  std::uint64_t photons = 0;
  std::span<const optics::HitRecord> hits;
  double seconds = 0;
  bool failed = false;
};

// Channel positions flattened to 2-D for the hit map: an x-y top view for a
// flat array; for a cylinder with end caps the barrel unrolled (R·phi, z)
// with each cap drawn as a disc above/below it; otherwise (a sphere, say)
// R·phi against z. u/v in mm.
struct HitMapLayout {
  std::string projection;
  std::vector<float> u, v;
};
HitMapLayout hit_map_layout(const wire::charon::DetectorInfo& channels);

class PhotonMonitor final {
 public:
  // Hits per channel and hit times decay by this factor per event, so the
  // map shows roughly the last 1 / (1 - kDecay) = 20 events.
  static constexpr double kDecay = 0.95;
  static constexpr double kHitTimeBinNs = 0.5;
  static constexpr std::size_t kHitTimeBins = 400;  // 0 to 200 ns; later hits in the last bin
  static constexpr std::array<double, 12> kLatencyBoundsS{0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                          0.1,   0.2,   0.5,   1,    2,    5};

  // Creates the monitor and its hub service `name` (doc: `doc`), whose status
  // provider reads the monitor (while it lives) and whose registry holds the
  // metrics.
  static std::shared_ptr<PhotonMonitor> create(std::string name, std::string doc,
                                               const wire::charon::DetectorInfo& channels,
                                               nlohmann::json info = nlohmann::json::object());

  const std::shared_ptr<hub::Service>& service() const noexcept { return service_; }

  // A finished simulation (job threads).
  void record(const EventObservation& o);
  // Requests waiting or in simulation, and busy/total job slots (I/O thread).
  // Until it is first called (a worker, whose queue is the broker's) the
  // snapshot has no queue gauges.
  void set_queue(std::size_t queued, std::size_t busy_slots, std::size_t slots);
  // Requests refused as malformed ("rejected"), for a full queue ("busy"), or
  // simulations that failed outside record() ("failed").
  void count_error(const std::string& kind, std::uint64_t n = 1);
  // Static details shown on the page (endpoints, seed, ...), merged.
  void set_info(const nlohmann::json& info);

  nlohmann::json snapshot() const;

 private:
  PhotonMonitor(std::string name, std::string doc, const wire::charon::DetectorInfo& channels,
                nlohmann::json info);
  prometheus::Counter& error_counter(const std::string& kind);

  std::shared_ptr<hub::Service> service_;
  prometheus::Counter* requests_;
  prometheus::Counter* photons_;
  prometheus::Counter* hits_;
  prometheus::Histogram* latency_;
  prometheus::Gauge* queue_;
  prometheus::Gauge* busy_;
  prometheus::Gauge* idle_;
  std::atomic<std::uint64_t> queue_depth_{0}, busy_slots_{0}, slots_{0};
  std::atomic<bool> has_queue_{false};  // set_queue() called: the snapshot shows the queue

  mutable std::mutex mutex_;  // everything below
  std::map<std::string, prometheus::Counter*> errors_;
  std::uint64_t n_requests_ = 0, n_photons_ = 0, n_hits_ = 0, n_errors_ = 0;
  std::array<std::uint64_t, kLatencyBoundsS.size() + 1> latency_counts_{};
  HitMapLayout layout_;
  std::vector<double> channel_hits_;  // decayed
  std::vector<double> hit_times_;     // decayed, kHitTimeBins
  double recent_events_ = 0;          // decayed event count
  nlohmann::json info_;
};

}  // namespace acheron::photon
