// Live figures of a DaqData server for the HTTP status front
// (docs/dashboard.md): Prometheus metrics acheron_daq_* in a hub service's
// registry and a status snapshot with each module's latest images (decoded
// pixels, for the page's pictures), per-module image counts (the page plots
// their rates), the connected StreamImages clients and the ingest latency.
// The store's publishing thread records images; HTTP threads read.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/daq/ImageStore.hh"
#include "acheron/hub/Metrics.hh"
#include "acheron/hub/Service.hh"

namespace acheron::daq {

class Server;

// One cached image decoded for the page.
struct PageImage {
  std::uint32_t module_id = 0;
  bool pulse_height = false;
  std::string product;  // img16, img8, ph256, ph1024 (from type, shape and bytes per pixel)
  std::uint32_t width = 0, height = 0;
  std::vector<std::int32_t> pixels;  // row-major; 16-bit pulse heights read as signed
  std::uint64_t frame_id = 0;
  std::uint32_t frame_number = 0;
};

// Decodes a cached image's StreamImagesResponse; nullopt if it does not parse
// or its pixel count is not width x height (at most 1024 pixels are kept).
std::optional<PageImage> page_image(const EncodedImage& image);

class DaqMonitor final {
 public:
  // Images shown on the page (the newest of each (module, kind), in the
  // cache's order): each is at most 32 x 32 pixels, so a snapshot stays
  // under ~150 kB.
  static constexpr std::size_t kMaxImages = 16;
  // Distinct modules counted separately (in metrics labels and the page's
  // rates); images of further modules count under module "other".
  static constexpr std::size_t kMaxModules = 64;
  // Ingest (queue entry) to publication in the cache, seconds.
  static constexpr std::array<double, 10> kLatencyBoundsS{1e-5, 3e-5, 1e-4, 3e-4, 1e-3,
                                                          3e-3, 0.01, 0.03, 0.1,  1};

  // The monitor of `server` (which must outlive it) and its hub service
  // `name`; it observes the server's image store from now on.
  static std::shared_ptr<DaqMonitor> create(Server& server, std::string name = "daq",
                                            nlohmann::json info = nlohmann::json::object());
  ~DaqMonitor();
  DaqMonitor(const DaqMonitor&) = delete;
  DaqMonitor& operator=(const DaqMonitor&) = delete;

  const std::shared_ptr<hub::Service>& service() const noexcept { return service_; }

  // A publication (the store's observer; also for tests). now_ns: wall clock.
  void observe(const EncodedImage& image, std::int64_t now_ns);
  // Gauges and counters from the server's figures (before each scrape).
  void refresh();
  nlohmann::json snapshot() const;

 private:
  DaqMonitor(Server& server, std::string name, nlohmann::json info);
  std::string module_label(std::uint32_t module_id);  // under mutex_

  Server& server_;
  std::shared_ptr<hub::Service> service_;
  nlohmann::json info_;
  hub::BucketHistogram latency_;
  prometheus::Family<prometheus::Counter>* images_family_;
  prometheus::Counter* sent_;
  prometheus::Counter* dropped_full_;
  prometheus::Counter* rejected_;
  prometheus::Counter* streams_accepted_;
  prometheus::Counter* streams_refused_;
  prometheus::Gauge* streams_;
  prometheus::Gauge* uploads_;
  prometheus::Gauge* queue_;
  prometheus::Gauge* hp_io_;

  mutable std::mutex mutex_;  // below
  std::map<std::pair<std::string, bool>, prometheus::Counter*> image_counters_;
  std::map<std::string, std::uint64_t> module_images_;  // by module label
  std::uint64_t published_ = 0;
  std::mutex refresh_mutex_;
};

}  // namespace acheron::daq
