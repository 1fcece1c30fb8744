#include "acheron/hub/Metrics.hh"

#include <algorithm>
#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace acheron::hub {

prometheus::Family<prometheus::Counter>& counter_family(prometheus::Registry& registry,
                                                        const std::string& name,
                                                        const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& gauge_family(prometheus::Registry& registry,
                                                    const std::string& name,
                                                    const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

prometheus::Counter& add_counter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help) {
  return counter_family(registry, name, help).Add({});
}

prometheus::Gauge& add_gauge(prometheus::Registry& registry, const std::string& name,
                             const std::string& help) {
  return gauge_family(registry, name, help).Add({});
}

void raise_to(prometheus::Counter& counter, double total) {
  const double now = counter.Value();
  if (total > now) counter.Increment(total - now);
}

BucketHistogram::BucketHistogram(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help, std::span<const double> bounds_s)
    : bounds_(bounds_s.begin(), bounds_s.end()), counts_(bounds_s.size() + 1, 0) {
  histogram_ = &prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add(
      {}, prometheus::Histogram::BucketBoundaries(bounds_.begin(), bounds_.end()));
}

void BucketHistogram::observe(double seconds) {
  histogram_->Observe(seconds);
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
}

nlohmann::json BucketHistogram::json() const {
  std::lock_guard lock(mutex_);
  return {{"bounds_s", bounds_}, {"counts", counts_}};
}

std::uint64_t BucketHistogram::count() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = 0;
  for (auto c : counts_) n += c;
  return n;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace acheron::hub
