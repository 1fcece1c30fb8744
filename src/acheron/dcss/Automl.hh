// The AutoML Vision Edge classifier (a TF-Serving container, dcss-xos.md
// §9.2, §9.4): the predict request and reply, the loop result semantics, and a
// REST client with a health check.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "acheron/core/Result.hh"

namespace acheron::dcss {

struct Detection {
  std::string cls;  // pin, nylon, mitegen
  double score = 0;
  double ymin = 0, xmin = 0, ymax = 0, xmax = 0;  // normalised, origin top-left
};

struct Prediction {
  std::string key;
  std::vector<Detection> detections;  // in the reply's (descending score) order
};

// The predict request body for one JPEG.
std::string automl_request(std::string_view jpeg, std::string_view key, int max_boxes = 10);
// Parses a predict reply and picks the prediction with `key` (the first one
// when no prediction carries a key).
Result<Prediction> parse_automl_reply(std::string_view body, std::string_view key);

// What LOOP_INFO and the loop operations report for one image (§9.2).
struct LoopResult {
  bool ok = false;  // top score >= threshold and a loop was found
  double top_score = 0;
  double tip_x = 0, tip_y = 0, pin_base_x = 0;
  double fiber_width = 0.222;  // not measured: placeholder kept from loop-dhs
  double loop_width = 0, loop_width_x = 0;
  double box_min_x = 0, box_max_x = 0, box_min_y = 0, box_max_y = 0;
  int is_micro_mount = 0;
  std::string loop_class = "none";
  double loop_score = 0;
};

LoopResult evaluate_loop(const Prediction& p, double threshold, int scan_n_results);

// "LOOP_INFO index status tipX ... loopClass loopScore" (16 tokens).
std::string loop_info_text(int index, const LoopResult& r);

// base64 of bytes (libsodium, original variant with padding).
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

struct AutomlOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5000;
  std::string model = "default";
  double timeout_s = 10;
  double health_interval_s = 30;
};

// Thread-safe: each call uses its own HTTP connection.
class AutomlClient final {
 public:
  explicit AutomlClient(AutomlOptions options);
  ~AutomlClient();
  AutomlClient(const AutomlClient&) = delete;
  AutomlClient& operator=(const AutomlClient&) = delete;

  // POST /v1/models/<model>:predict. Non-2xx, bad JSON, no prediction or a
  // timeout are errors.
  Result<Prediction> predict(std::string_view jpeg, std::string_view key) const;
  // GET /v1/models/<model>: up only on 2xx.
  bool check_health() const;
  // Starts checking every health_interval_s in the background.
  void start_health_checks();
  bool healthy() const noexcept { return healthy_.load(); }

 private:
  AutomlOptions options_;
  std::atomic<bool> healthy_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread health_;
};

}  // namespace acheron::dcss
