#include "acheron/dcss/Automl.hh"

#include <httplib.h>
#include <sodium.h>

#include <nlohmann/json.hpp>

#include "acheron/core/Log.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {

namespace {
template <class T>
Result<T> fail(StatusCode code, std::string message) {
  return Result<T>::failure(code, std::move(message));
}
}  // namespace

std::string base64_encode(std::string_view bytes) {
  const auto variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), " \r\n", &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return Result<std::string>::failure(StatusCode::invalid_argument, "invalid base64");
  }
  out.resize(len);
  return out;
}

std::string automl_request(std::string_view jpeg, std::string_view key, int max_boxes) {
  nlohmann::json j;
  j["instances"] = nlohmann::json::array(
      {{{"image_bytes", {{"b64", base64_encode(jpeg)}}}, {"key", std::string(key)}}});
  j["params"] = nlohmann::json::array({{{"max_bounding_box_count", std::to_string(max_boxes)}}});
  return j.dump();
}

Result<Prediction> parse_automl_reply(std::string_view body, std::string_view key) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Result<Prediction>::failure(StatusCode::invalid_argument, "classifier reply is not JSON");
  }
  const auto preds = j.find("predictions");
  if (preds == j.end() || !preds->is_array() || preds->empty()) {
    return Result<Prediction>::failure(StatusCode::invalid_argument, "classifier reply has no predictions");
  }
  const nlohmann::json* chosen = nullptr;
  for (const auto& p : *preds) {
    if (p.is_object() && p.contains("key") && p["key"].is_string() && p["key"] == key) {
      chosen = &p;
      break;
    }
  }
  if (!chosen) {
    const auto& first = preds->front();
    if (first.is_object() && first.contains("key") && first["key"].is_string() && !key.empty()) {
      return Result<Prediction>::failure(StatusCode::invalid_argument,
                              "classifier reply has no prediction for key " + std::string(key));
    }
    chosen = &first;
  }
  const auto& p = *chosen;
  if (!p.is_object()) {
    return Result<Prediction>::failure(StatusCode::invalid_argument, "prediction is not an object");
  }
  Prediction out;
  out.key = std::string(key);
  try {
    const auto& scores = p.at("detection_scores");
    const auto& boxes = p.at("detection_boxes");
    const nlohmann::json* texts =
        p.contains("detection_classes_as_text") ? &p["detection_classes_as_text"] : nullptr;
    const nlohmann::json* classes =
        p.contains("detection_classes") ? &p["detection_classes"] : nullptr;
    const std::size_t n = std::min(scores.size(), boxes.size());
    for (std::size_t i = 0; i < n; ++i) {
      Detection d;
      d.score = scores.at(i).get<double>();
      const auto& b = boxes.at(i);
      if (!b.is_array() || b.size() != 4) throw std::runtime_error("box is not 4 numbers");
      d.ymin = b[0].get<double>();
      d.xmin = b[1].get<double>();
      d.ymax = b[2].get<double>();
      d.xmax = b[3].get<double>();
      if (texts && i < texts->size() && (*texts)[i].is_string()) {
        d.cls = (*texts)[i].get<std::string>();
      } else if (classes && i < classes->size() && (*classes)[i].is_number()) {
        // A class index; one that no int holds names no class (the cast
        // would be undefined).
        const double c = (*classes)[i].get<double>();
        if (c > -2147483649.0 && c < 2147483648.0)
          d.cls = "class" + std::to_string(static_cast<int>(c));
      }
      out.detections.push_back(std::move(d));
    }
  } catch (const std::exception& e) {
    return Result<Prediction>::failure(StatusCode::invalid_argument,
                            std::string("malformed prediction: ") + e.what());
  }
  return out;
}

LoopResult evaluate_loop(const Prediction& p, double threshold, int scan_n_results) {
  LoopResult r;
  if (p.detections.empty()) return r;
  r.top_score = p.detections[0].score;
  const Detection* loop = nullptr;
  const Detection* pin = nullptr;
  const std::size_t n = std::min<std::size_t>(
      p.detections.size(), static_cast<std::size_t>(std::max(1, scan_n_results)));
  for (std::size_t i = 0; i < n; ++i) {
    const auto& d = p.detections[i];
    if ((d.cls == "nylon" || d.cls == "mitegen") && (!loop || d.score > loop->score)) loop = &d;
    if (d.cls == "pin" && (!pin || d.score > pin->score)) pin = &d;
  }
  if (pin) r.pin_base_x = pin->xmax;
  if (!loop) return r;  // no loop: detection score 0
  r.loop_class = loop->cls;
  r.loop_score = loop->score;
  r.tip_x = loop->xmax;
  r.tip_y = loop->ymin + (loop->ymax - loop->ymin) / 2;
  r.loop_width = loop->ymax - loop->ymin;
  r.loop_width_x = loop->xmax - loop->xmin;
  r.box_min_x = loop->xmin;
  r.box_max_x = loop->xmax;
  r.box_min_y = loop->ymin;
  r.box_max_y = loop->ymax;
  r.is_micro_mount = loop->cls == "mitegen" ? 1 : 0;
  r.ok = r.top_score >= threshold;
  return r;
}

std::string loop_info_text(int index, const LoopResult& r) {
  using wire::xos::format_loop;
  return "LOOP_INFO " + std::to_string(index) + (r.ok ? " normal " : " failed ") +
         format_loop(r.tip_x) + " " + format_loop(r.tip_y) + " " + format_loop(r.pin_base_x) + " " +
         format_loop(r.fiber_width) + " " + format_loop(r.loop_width) + " " +
         format_loop(r.box_min_x) + " " + format_loop(r.box_max_x) + " " +
         format_loop(r.box_min_y) + " " + format_loop(r.box_max_y) + " " +
         format_loop(r.loop_width_x) + " " + std::to_string(r.is_micro_mount) + " " + r.loop_class +
         " " + format_loop(r.loop_score);
}

AutomlClient::AutomlClient(AutomlOptions options) : options_(std::move(options)) {
  if (sodium_init() < 0) throw SetupError("libsodium failed to initialise (no entropy?) retry");
}

AutomlClient::~AutomlClient() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (health_.joinable()) health_.join();
}

Result<Prediction> AutomlClient::predict(std::string_view jpeg, std::string_view key) const {
  httplib::Client cli(options_.host, options_.port);
  const auto t = std::chrono::duration<double>(options_.timeout_s);
  cli.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  cli.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  cli.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  const auto res = cli.Post("/v1/models/" + options_.model + ":predict", automl_request(jpeg, key),
                            "application/json");
  if (!res) {
    return Result<Prediction>::failure(StatusCode::unavailable,
                            "classifier " + options_.host + ":" + std::to_string(options_.port) +
                                " unreachable (" + httplib::to_string(res.error()) + ")");
  }
  if (res->status < 200 || res->status > 299) {
    return Result<Prediction>::failure(StatusCode::unavailable,
                            "classifier answered HTTP " + std::to_string(res->status));
  }
  return parse_automl_reply(res->body, key);
}

bool AutomlClient::check_health() const {
  httplib::Client cli(options_.host, options_.port);
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(std::chrono::seconds(5));
  const auto res = cli.Get("/v1/models/" + options_.model);
  return res && res->status >= 200 && res->status <= 299;
}

void AutomlClient::start_health_checks() {
  if (health_.joinable()) return;
  health_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    bool first = true;
    while (!stopping_) {
      lock.unlock();
      const bool up = check_health();
      lock.lock();
      if (first || up != healthy_) {
        if (up) {
          log::info("loop: classifier {}:{} is up", options_.host, options_.port);
        } else {
          log::warn("loop: classifier {}:{} is down", options_.host, options_.port);
        }
      }
      first = false;
      healthy_ = up;
      cv_.wait_for(lock, std::chrono::duration<double>(options_.health_interval_s),
                   [&] { return stopping_; });
    }
  });
}

}  // namespace acheron::dcss
