// Live figures of a UbloxControl server for the HTTP status front
// (docs/dashboard.md): Prometheus metrics acheron_gnss_* in a hub service's
// registry and a status snapshot with the receiver's state, its latest fix
// and timing (NAV-TIMEUTC, TIM-TP and its quantisation error), message
// counts by identity (the page plots their rates) and the capture clients.
// The reading thread records messages; HTTP threads read.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "acheron/gnss/Service.hh"
#include "acheron/hub/Metrics.hh"
#include "acheron/hub/Service.hh"

namespace acheron::gnss {

class GnssMonitor final {
 public:
  // Distinct message identities counted separately; further ones count
  // under "other" (a receiver sends a handful).
  static constexpr std::size_t kMaxIdentities = 32;
  // TIM-TP quantisation error (qErr) histogram bounds, picoseconds (the
  // F9T's qErr stays within a few ns).
  static constexpr std::array<double, 9> kQErrBoundsPs{-4000, -3000, -2000, -1000, 0,
                                                       1000,  2000,  3000,  4000};

  // The monitor of `service` (which must outlive it) and its hub service
  // `name`; it observes the service's messages from now on.
  static std::shared_ptr<GnssMonitor> create(UbloxService& service, std::string name = "gnss",
                                             nlohmann::json info = nlohmann::json::object());
  ~GnssMonitor();
  GnssMonitor(const GnssMonitor&) = delete;
  GnssMonitor& operator=(const GnssMonitor&) = delete;

  const std::shared_ptr<hub::Service>& service() const noexcept { return service_; }

  // A message read from the receiver (the service's observer; also for tests).
  void observe(const std::string& identity, const nlohmann::json& parsed, std::int64_t wall_ns);
  void refresh();
  nlohmann::json snapshot() const;

 private:
  GnssMonitor(UbloxService& service, std::string name, nlohmann::json info);

  UbloxService& ubx_;
  std::shared_ptr<hub::Service> service_;
  nlohmann::json info_;
  prometheus::Family<prometheus::Counter>* messages_family_;
  prometheus::Histogram* qerr_hist_;
  prometheus::Gauge* qerr_;
  prometheus::Gauge* t_acc_;
  prometheus::Gauge* io_running_;
  prometheus::Gauge* captures_;
  prometheus::Counter* inits_ok_;
  prometheus::Counter* inits_failed_;
  prometheus::Counter* capture_sent_;
  prometheus::Counter* capture_dropped_;

  mutable std::mutex mutex_;  // below
  struct PerIdentity {
    std::uint64_t count = 0;
    std::int64_t last_wall_ns = 0;
    prometheus::Counter* counter = nullptr;
  };
  std::map<std::string, PerIdentity> identities_;
  std::uint64_t messages_ = 0;
  nlohmann::json tim_tp_, nav_timeutc_;  // latest parsed fields
  std::array<std::uint64_t, kQErrBoundsPs.size() + 1> qerr_counts_{};
  std::mutex refresh_mutex_;
};

}  // namespace acheron::gnss
