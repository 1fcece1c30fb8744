// Live figures of a DHS for the HTTP status front (docs/dashboard.md):
// Prometheus metrics acheron_dhs_* in a hub service's registry and a status
// snapshot with the DCSS connection, the registered devices with their
// state and the recent-operations log. Operations' threads record
// completions; HTTP threads read.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "acheron/dcss/Runner.hh"
#include "acheron/hub/Metrics.hh"
#include "acheron/hub/Service.hh"

namespace acheron::dcss {

class DhsMonitor final {
 public:
  // Rows of the devices table (a beamline registers a few hundred at most).
  static constexpr std::size_t kMaxDeviceRows = 500;
  // Operation durations, seconds.
  static constexpr std::array<double, 10> kDurationBoundsS{0.001, 0.01, 0.1, 0.5, 1,
                                                           5,     10,   30,  60,  300};

  // The monitor of `runner` (which must outlive it) and its hub service
  // `name`; it observes the DHS's operations from now on.
  static std::shared_ptr<DhsMonitor> create(DhsRunner& runner, std::string name = "dhs",
                                            nlohmann::json info = nlohmann::json::object());
  ~DhsMonitor();
  DhsMonitor(const DhsMonitor&) = delete;
  DhsMonitor& operator=(const DhsMonitor&) = delete;

  const std::shared_ptr<hub::Service>& service() const noexcept { return service_; }

  void observe(const OperationRecord& done);
  void refresh();
  nlohmann::json snapshot() const;

 private:
  DhsMonitor(DhsRunner& runner, std::string name, nlohmann::json info);

  DhsRunner& runner_;
  std::shared_ptr<hub::Service> service_;
  nlohmann::json info_;
  hub::BucketHistogram durations_;
  prometheus::Family<prometheus::Counter>* completed_family_;
  prometheus::Family<prometheus::Gauge>* devices_family_;
  prometheus::Counter* started_;
  prometheus::Counter* messages_;
  prometheus::Counter* connections_;
  prometheus::Counter* truncated_;
  prometheus::Gauge* connected_;
  prometheus::Gauge* active_;
  std::mutex refresh_mutex_;  // below
  std::map<std::string, prometheus::Counter*> completed_;
  std::map<std::string, prometheus::Gauge*> devices_;
};

}  // namespace acheron::dcss
