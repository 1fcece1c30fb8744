// A Service is a named set of methods and topics, the unit every front
// exposes (a photon engine, a DAQ node, a motor, a registered object).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/hub/Call.hh"
#include "acheron/hub/Topic.hh"

namespace prometheus {
class Registry;
}

namespace acheron::hub {

struct MethodInfo {
  std::string name;
  std::string doc;
  nlohmann::json signature = nlohmann::json::object();  // JSON Schema of arguments, if known
  bool mutating = false;  // needs the write lock where a service has one
};

struct CallOptions {
  TimePoint deadline = TimePoint::max();
  Call::ProgressSink on_progress;
};

class Service final {
 public:
  explicit Service(std::string name, std::string doc = {});

  // Throws SetupError if the name is empty or taken.
  void add_method(MethodInfo info, MethodHandler handler);
  bool remove_method(const std::string& name);
  // Creates a topic; throws SetupError if the name is taken.
  std::shared_ptr<Topic> add_topic(const std::string& name, TopicOptions options = {});
  bool remove_topic(const std::string& name);

  // The handler, or nullptr.
  std::shared_ptr<const MethodHandler> find_method(const std::string& name) const;
  std::shared_ptr<Topic> find_topic(const std::string& name) const;
  std::vector<MethodInfo> methods() const;
  std::vector<std::string> topics() const;

  // Runs a method in the calling thread. Unknown methods give not_found.
  Reply call(const std::string& method, const Payload& request, CallOptions options = {}) const;

  const std::string& name() const noexcept { return name_; }
  const std::string& doc() const noexcept { return doc_; }

  // Live status for the HTTP front (hub/HttpStatus.hh): the provider returns
  // a JSON object and is called from other threads, so it must read only
  // thread-safe state (atomics, a snapshot under its own lock). Replacing it
  // is thread-safe.
  void set_status(std::function<nlohmann::json()> provider);
  // The provider's snapshot; {} without one.
  nlohmann::json status() const;
  // The service's Prometheus metrics, created with the service; metric names
  // read acheron_<service kind>_..., with units (_seconds, _total).
  const std::shared_ptr<prometheus::Registry>& metrics() const noexcept { return metrics_; }
  // Called before every scrape of metrics() (from HTTP threads, possibly
  // concurrently): brings gauges and counters up to date from figures the
  // service keeps itself. Replacing it is thread-safe.
  void set_metrics_refresh(std::function<void()> refresh);
  void refresh_metrics() const;

 private:
  struct Method {
    MethodInfo info;
    std::shared_ptr<const MethodHandler> handler;
  };
  std::string name_;
  std::string doc_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, Method> methods_;
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  std::shared_ptr<const std::function<nlohmann::json()>> status_;  // under mutex_
  std::shared_ptr<const std::function<void()>> refresh_;           // under mutex_
  std::shared_ptr<prometheus::Registry> metrics_;
};

}  // namespace acheron::hub
