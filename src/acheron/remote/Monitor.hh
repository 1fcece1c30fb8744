// Live figures of a RemoteServer for the HTTP status front
// (docs/dashboard.md): Prometheus metrics acheron_remote_* in a hub
// service's registry and a status snapshot with the calls served (counts,
// errors, time), the streams (messages, drops, subscribers) and the clients
// seen recently. Everything is read from the server's own figures when asked.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/hub/Metrics.hh"
#include "acheron/hub/Service.hh"
#include "acheron/remote/Server.hh"

namespace acheron::remote {

class RemoteMonitor final {
 public:
  // Client rows shown on the page (the server remembers up to kMaxClients).
  static constexpr std::size_t kMaxClientRows = 50;

  // The monitor of `server` (which must outlive it) and its hub service `name`.
  static std::shared_ptr<RemoteMonitor> create(RemoteServer& server, std::string name = "remote",
                                               nlohmann::json info = nlohmann::json::object());
  RemoteMonitor(const RemoteMonitor&) = delete;
  RemoteMonitor& operator=(const RemoteMonitor&) = delete;

  const std::shared_ptr<hub::Service>& service() const noexcept { return service_; }

  void refresh();
  nlohmann::json snapshot() const;

 private:
  RemoteMonitor(RemoteServer& server, std::string name, nlohmann::json info);

  RemoteServer& server_;
  std::shared_ptr<hub::Service> service_;
  nlohmann::json info_;
  prometheus::Counter* requests_;
  prometheus::Family<prometheus::Counter>* calls_family_;
  prometheus::Family<prometheus::Counter>* errors_family_;
  prometheus::Family<prometheus::Counter>* refused_family_;
  prometheus::Family<prometheus::Counter>* stream_messages_family_;
  prometheus::Family<prometheus::Counter>* stream_dropped_family_;
  prometheus::Family<prometheus::Gauge>* stream_subscribed_family_;
  prometheus::Histogram* durations_;
  prometheus::Gauge* clients_;
  prometheus::Gauge* in_flight_;

  std::mutex refresh_mutex_;  // below
  std::map<std::string, prometheus::Counter*> calls_, errors_, refused_, stream_messages_,
      stream_dropped_;
  std::map<std::string, prometheus::Gauge*> stream_subscribed_;
  std::vector<std::uint64_t> durations_seen_;  // bucket counts already given to durations_
  double duration_sum_seen_ = 0;
};

}  // namespace acheron::remote
