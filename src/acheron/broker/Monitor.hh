// Live figures of the broker for the HTTP status front (docs/dashboard.md):
// Prometheus metrics acheron_broker_* in the hub service's registry and a
// status snapshot with the workers. The broker's poll thread calls update()
// with the router (which only it may touch); HTTP threads read the copy.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "acheron/charon/CharonRouter.hh"
#include "acheron/hub/Service.hh"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace acheron::broker {

class BrokerMonitor final {
 public:
  // Creates the monitor and its hub service `name`.
  static std::shared_ptr<BrokerMonitor> create(std::string name, std::string doc,
                                               nlohmann::json info = nlohmann::json::object());

  const std::shared_ptr<hub::Service>& service() const noexcept { return service_; }

  // Copies the router's figures (the broker's poll thread). peers: worker
  // identity -> the address its messages came from.
  void update(const charon::CharonRouter& router, TimePoint now,
              const std::map<std::string, std::string>& peers);
  void set_info(const nlohmann::json& info);
  nlohmann::json snapshot() const;

 private:
  BrokerMonitor(std::string name, std::string doc, nlohmann::json info);

  std::shared_ptr<hub::Service> service_;
  // Counters fed by differences between successive router stats.
  struct Fed {
    prometheus::Counter* counter;
    std::uint64_t charon::RouterStats::*field;
  };
  std::vector<Fed> counters_;
  prometheus::Histogram* latency_;
  prometheus::Gauge* queue_;
  prometheus::Gauge* queue_bytes_;
  prometheus::Gauge* in_flight_;
  std::map<std::string, prometheus::Gauge*> workers_;  // by state
  // acheron_broker_worker_info: one series per worker that sent WORKER_INFO
  // (its node and Slurm job as labels), removed when the worker leaves.
  prometheus::Family<prometheus::Gauge>* worker_info_;
  std::map<std::string, prometheus::Gauge*> worker_info_series_;  // by identity
  charon::RouterStats last_;

  mutable std::mutex mutex_;
  nlohmann::json snapshot_;
  nlohmann::json info_;
};

}  // namespace acheron::broker
