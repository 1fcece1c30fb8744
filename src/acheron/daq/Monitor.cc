#include "acheron/daq/Monitor.hh"

#include <algorithm>
#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "acheron/daq/Server.hh"
#include "acheron/daqdata.pb.h"

namespace acheron::daq {
namespace {

std::int64_t monitor_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string product_of(bool ph, std::uint32_t side, int bytes_per_pixel) {
  if (ph) return side == 16 ? "ph256" : "ph1024";
  return bytes_per_pixel == 1 ? "img8" : "img16";
}

}  // namespace

std::optional<PageImage> page_image(const EncodedImage& image) {
  daqdata::StreamImagesResponse r;
  if (!r.ParseFromArray(image.bytes.data(), static_cast<int>(image.bytes.size()))) {
    return std::nullopt;
  }
  const auto& p = r.pano_image();
  if (p.shape_size() != 2) return std::nullopt;
  const std::uint32_t h = p.shape(0), w = p.shape(1);
  if (w == 0 || h == 0 || w > 32 || h > 32 ||
      static_cast<std::size_t>(p.image_array_size()) != std::size_t{w} * h) {
    return std::nullopt;
  }
  PageImage out;
  out.module_id = p.module_id();
  out.pulse_height = p.type() == daqdata::PanoImage::PULSE_HEIGHT;
  out.product = product_of(out.pulse_height, w, p.bytes_per_pixel());
  out.width = w;
  out.height = h;
  out.frame_id = image.frame_id;
  out.frame_number = p.frame_number();
  out.pixels.reserve(p.image_array_size());
  const bool signed16 = out.pulse_height && p.bytes_per_pixel() == 2;
  for (const std::uint32_t v : p.image_array()) {
    out.pixels.push_back(signed16 ? static_cast<std::int16_t>(v & 0xFFFF)
                                  : static_cast<std::int32_t>(v));
  }
  return out;
}

std::shared_ptr<DaqMonitor> DaqMonitor::create(Server& server, std::string name,
                                               nlohmann::json info) {
  std::shared_ptr<DaqMonitor> m(new DaqMonitor(server, std::move(name), std::move(info)));
  std::weak_ptr<DaqMonitor> weak = m;
  m->service_->set_status([weak] {
    if (auto s = weak.lock()) return s->snapshot();
    return nlohmann::json{{"error", "the DaqData server has stopped"}};
  });
  m->service_->set_metrics_refresh([weak] {
    if (auto s = weak.lock()) s->refresh();
  });
  server.store().set_observer([weak](const EncodedImage& image) {
    if (auto s = weak.lock()) s->observe(image, monitor_now_ns());
  });
  return m;
}

DaqMonitor::DaqMonitor(Server& server, std::string name, nlohmann::json info)
    : server_(server),
      service_(std::make_shared<hub::Service>(
          std::move(name), "PANOSETI DaqData server: live images and streams (acheron daq serve)")),
      info_(std::move(info)),
      latency_(*service_->metrics(), "acheron_daq_image_latency_seconds",
               "Time from an image's arrival (source or upload) to its publication in the cache",
               kLatencyBoundsS) {
  auto& reg = *service_->metrics();
  images_family_ =
      &hub::counter_family(reg, "acheron_daq_images_total",
                           "Images published in the cache, by module and kind (movie or ph)");
  sent_ = &hub::add_counter(reg, "acheron_daq_images_sent_total",
                            "Images written to StreamImages clients (one per client)");
  auto& dropped = hub::counter_family(reg, "acheron_daq_images_dropped_total",
                                      "Images not published: the ingest queue was full "
                                      "(queue_full) or the image was malformed (rejected)");
  dropped_full_ = &dropped.Add({{"reason", "queue_full"}});
  rejected_ = &dropped.Add({{"reason", "rejected"}});
  auto& streams = hub::counter_family(
      reg, "acheron_daq_stream_requests_total",
      "StreamImages calls: accepted, or refused (bad request, no hp_io, too many clients)");
  streams_accepted_ = &streams.Add({{"result", "accepted"}});
  streams_refused_ = &streams.Add({{"result", "refused"}});
  streams_ = &hub::add_gauge(reg, "acheron_daq_streams", "StreamImages clients being served");
  uploads_ = &hub::add_gauge(reg, "acheron_daq_uploads", "UploadImages calls being served");
  queue_ = &hub::add_gauge(reg, "acheron_daq_queue_depth", "Images waiting in the ingest queue");
  hp_io_ = &hub::add_gauge(reg, "acheron_daq_hp_io_initialized",
                           "1 while hp_io (the data sources) is initialised, else 0");
}

DaqMonitor::~DaqMonitor() = default;

std::string DaqMonitor::module_label(std::uint32_t module_id) {
  std::string label = std::to_string(module_id);
  if (module_images_.contains(label) || module_images_.size() < kMaxModules) return label;
  return "other";
}

void DaqMonitor::observe(const EncodedImage& image, std::int64_t now_ns) {
  latency_.observe(std::max<std::int64_t>(0, now_ns - image.ingest_ns) * 1e-9);
  std::lock_guard lock(mutex_);
  const std::string label = module_label(image.module_id);
  auto& counter = image_counters_[{label, image.pulse_height}];
  if (!counter) {
    counter =
        &images_family_->Add({{"module", label}, {"kind", image.pulse_height ? "ph" : "movie"}});
  }
  counter->Increment();
  ++module_images_[label];
  ++published_;
}

void DaqMonitor::refresh() {
  const ServerStats s = server_.stats();
  const StoreStats st = server_.store().stats();
  std::lock_guard lock(refresh_mutex_);
  hub::raise_to(*sent_, static_cast<double>(s.images_sent));
  hub::raise_to(*dropped_full_, static_cast<double>(st.dropped_full));
  hub::raise_to(*rejected_, static_cast<double>(st.rejected));
  hub::raise_to(*streams_accepted_, static_cast<double>(s.streams_accepted));
  hub::raise_to(*streams_refused_, static_cast<double>(s.streams_refused));
  streams_->Set(static_cast<double>(s.active_streams));
  uploads_->Set(static_cast<double>(s.active_uploads));
  queue_->Set(static_cast<double>(server_.store().queue_depth()));
  hp_io_->Set(s.hp_io_valid ? 1 : 0);
}

nlohmann::json DaqMonitor::snapshot() const {
  const ServerStats s = server_.stats();
  const StoreStats st = server_.store().stats();
  nlohmann::json j;
  j["kind"] = "daq";
  j["time"] = hub::unix_seconds();
  nlohmann::json counters = {
      {"images_published", st.ingested},        {"images_sent", s.images_sent},
      {"dropped_queue_full", st.dropped_full},  {"rejected", st.rejected},
      {"streams_accepted", s.streams_accepted}, {"streams_refused", s.streams_refused}};
  nlohmann::json rates = {{"images_published", "images/s published"},
                          {"images_sent", "images/s sent to clients"}};
  {
    std::lock_guard lock(mutex_);
    for (const auto& [module, n] : module_images_) {
      const std::string key = "module_" + module + "_images";
      counters[key] = n;
      rates[key] = "module " + module + " images/s";
    }
  }
  j["counters"] = std::move(counters);
  j["rates"] = std::move(rates);
  j["gauges"] = {{"streams", s.active_streams},
                 {"uploads", s.active_uploads},
                 {"queue_depth", server_.store().queue_depth()},
                 {"hp_io_initialized", s.hp_io_valid ? 1 : 0}};
  j["plot_gauges"] = nlohmann::json::array({"streams"});
  auto latency = latency_.json();
  latency["title"] = "ingest to publication (images per bucket)";
  latency["unit"] = "images";
  j["latency"] = std::move(latency);

  std::vector<hub::SamplePtr> samples;
  server_.store().snapshot(&samples);
  nlohmann::json images = nlohmann::json::array();
  for (const auto& sample : samples) {
    if (images.size() >= kMaxImages) break;
    auto im = page_image(ImageStore::image(*sample));
    if (!im) continue;
    images.push_back({{"key", "module_" + std::to_string(im->module_id) + "_" + im->product},
                      {"title", "module " + std::to_string(im->module_id) + " " + im->product},
                      {"module", im->module_id},
                      {"product", im->product},
                      {"width", im->width},
                      {"height", im->height},
                      {"frame_id", im->frame_id},
                      {"frame_number", im->frame_number},
                      {"caption", "frame " + std::to_string(im->frame_number) + ", id " +
                                      std::to_string(im->frame_id)},
                      {"pixels", im->pixels}});
  }
  j["images"] = std::move(images);

  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : server_.clients()) {
    std::string kinds = c.movie && c.pulse_height ? "movie, ph" : c.movie ? "movie" : "ph";
    std::string modules;
    for (auto m : c.modules) modules += (modules.empty() ? "" : " ") + std::to_string(m);
    rows.push_back({c.peer, kinds, modules.empty() ? "all" : modules, c.interval_s});
  }
  j["tables"] = nlohmann::json::array({{{"id", "clients"},
                                        {"title", "StreamImages clients"},
                                        {"columns", {"peer", "images", "modules", "interval (s)"}},
                                        {"rows", std::move(rows)},
                                        {"empty", "no client connected"}}});
  nlohmann::json info = info_;
  info["hp_io"] = s.hp_io_valid ? "initialised" : "not initialised";
  j["info"] = std::move(info);
  return j;
}

}  // namespace acheron::daq
