// Small helpers for services that publish Prometheus metrics and a status
// snapshot (docs/dashboard.md): building metrics in a service's registry,
// raising counters to totals a service keeps itself (at scrape time, from
// Service::set_metrics_refresh), and a histogram that both /metrics and the
// status page's bar plot read.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace acheron::hub {

using MetricLabels = std::map<std::string, std::string>;

prometheus::Family<prometheus::Counter>& counter_family(prometheus::Registry& registry,
                                                        const std::string& name,
                                                        const std::string& help);
prometheus::Family<prometheus::Gauge>& gauge_family(prometheus::Registry& registry,
                                                    const std::string& name,
                                                    const std::string& help);
// An unlabelled metric of a new family.
prometheus::Counter& add_counter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help);
prometheus::Gauge& add_gauge(prometheus::Registry& registry, const std::string& name,
                             const std::string& help);

// Raises `counter` to `total`, a monotonic count the service keeps itself;
// never lowers it. Callers serialise calls per counter.
void raise_to(prometheus::Counter& counter, double total);

// A histogram with fixed upper bounds (seconds), shown twice: as the
// Prometheus histogram `name` and as the snapshot's {"bounds_s", "counts"}
// (counts per bucket, the last one above the last bound). Thread-safe.
class BucketHistogram final {
 public:
  BucketHistogram(prometheus::Registry& registry, const std::string& name, const std::string& help,
                  std::span<const double> bounds_s);
  void observe(double seconds);
  nlohmann::json json() const;
  std::uint64_t count() const;

 private:
  prometheus::Histogram* histogram_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> counts_;  // bounds_.size() + 1
};

// Wall clock, Unix seconds (the snapshots' "time").
double unix_seconds();

}  // namespace acheron::hub
