#include "acheron/dcss/FakeCamera.hh"

#include <httplib.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/dcss/Automl.hh"
#include "acheron/dcss/Camera.hh"

namespace acheron::dcss {

namespace {

int bind_server(httplib::Server& s, const std::string& bind, std::uint16_t port, const char* what) {
  const int p = port ? (s.bind_to_port(bind, port) ? port : -1) : s.bind_to_any_port(bind);
  if (p <= 0) {
    throw SetupError(std::string(what) + " cannot listen on " + bind + ":" + std::to_string(port) +
                     " (in use?) choose another port");
  }
  return p;
}

// Runs the server's accept loop on `thread` and returns once it runs:
// httplib's stop() does nothing before the loop has started, so a stop()
// right after start() (a SIGTERM as soon as the ready line is out) would
// otherwise leave the loop running and the join waiting for ever.
void listen_on_thread(httplib::Server& s, std::thread& thread) {
  auto ended = std::make_shared<std::atomic<bool>>(false);
  thread = std::thread([&s, ended] {
    s.listen_after_bind();
    *ended = true;
  });
  while (!s.is_running() && !*ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace

// ------------------------------------------------------------------ FakeAxis

FakeAxis::FakeAxis(FakeAxisOptions options)
    : options_(std::move(options)), snapshot_status_(options_.snapshot_status) {}

FakeAxis::~FakeAxis() {
  stop();
}

void FakeAxis::start() {
  if (running_) return;
  server_ = std::make_unique<httplib::Server>();
  auto& s = *server_;
  auto authorised = [this](const httplib::Request& req, httplib::Response& res) {
    if (options_.user.empty()) return true;
    const auto expected = "Basic " + base64_encode(options_.user + ":" + options_.password);
    if (req.get_header_value("Authorization") == expected) return true;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Basic realm=\"AXIS\"");
    return false;
  };
  s.Get("/axis-cgi/jpg/image.cgi",
        [this, authorised](const httplib::Request& req, httplib::Response& res) {
          if (!authorised(req, res)) return;
          if (snapshot_status_ != 200) {
            res.status = snapshot_status_;
            return;
          }
          ++snapshots_;
          res.set_content(make_test_jpeg(options_.width, options_.height, static_cast<int>(++seq_)),
                          "image/jpeg");
        });
  auto mjpeg = [this, authorised](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    double fps = options_.mjpeg_fps;
    if (req.has_param("fps")) fps = std::max(1.0, std::atof(req.get_param_value("fps").c_str()));
    const auto period =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(1 / fps));
    auto next = std::make_shared<TimePoint>(Clock::now());
    auto sent = std::make_shared<int>(0);
    res.set_chunked_content_provider(
        "multipart/x-mixed-replace;boundary=myboundary",
        [this, period, next, sent](std::size_t, httplib::DataSink& sink) {
          if (!running_) return false;
          if (options_.mjpeg_max_frames > 0 && *sent >= options_.mjpeg_max_frames) {
            const std::string end = "--myboundary--\r\n";
            sink.write(end.data(), end.size());
            sink.done();
            return true;
          }
          ++*sent;
          std::this_thread::sleep_until(*next);
          *next += period;
          const auto jpeg =
              make_test_jpeg(options_.width, options_.height, static_cast<int>(++seq_));
          const std::string head = "--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                   std::to_string(jpeg.size()) + "\r\n\r\n";
          if (!sink.write(head.data(), head.size()) || !sink.write(jpeg.data(), jpeg.size())) {
            return false;
          }
          ++streamed_;  // the whole image is out (the reader may close before the CRLF)
          return sink.write("\r\n", 2) && running_.load();
        });
  };
  s.Get("/axis-cgi/mjpg/video.cgi", mjpeg);
  s.Get("/cgi-bin/mjpg/video.cgi", mjpeg);  // older units
  port_ = static_cast<std::uint16_t>(bind_server(s, options_.bind, options_.port, "fake Axis"));
  running_ = true;
  listen_on_thread(*server_, thread_);
}

void FakeAxis::stop() {
  wait_pushes(std::chrono::seconds(30));
  if (!running_.exchange(false)) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

void FakeAxis::push(std::string host, std::uint16_t port, int count, double fps, std::string path) {
  std::lock_guard lock(mutex_);
  pushers_.emplace_back([this, host, port, count, fps, path] {
    const auto period =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(1.0 / fps));
    auto next = Clock::now();
    for (int i = 0; i < count; ++i) {
      std::this_thread::sleep_until(next);
      next += period;
      httplib::Client cli(host, port);
      cli.set_connection_timeout(std::chrono::seconds(2));
      cli.set_read_timeout(std::chrono::seconds(5));
      const auto jpeg = make_test_jpeg(options_.width, options_.height, i);
      auto res = cli.Post(path, jpeg, "image/jpeg");
      if (res && res->status == 200) {
        ++pushed_;
      } else {
        ++push_failures_;
      }
    }
  });
}

bool FakeAxis::wait_pushes(Duration timeout) {
  (void)timeout;  // pushes are bounded by count / fps
  std::vector<std::thread> pushers;
  {
    std::lock_guard lock(mutex_);
    pushers.swap(pushers_);
  }
  for (auto& t : pushers) t.join();
  return true;
}

// ---------------------------------------------------------------- FakeAutoml

FakeAutoml::FakeAutoml(FakeAutomlOptions options) : options_(std::move(options)) {}

FakeAutoml::~FakeAutoml() {
  stop();
}

void FakeAutoml::set_options(const FakeAutomlOptions& options) {
  std::lock_guard lock(mutex_);
  const auto bind = options_.bind;
  const auto port = options_.port;
  options_ = options;
  options_.bind = bind;
  options_.port = port;
}

FakeAutomlOptions FakeAutoml::options() const {
  std::lock_guard lock(mutex_);
  return options_;
}

std::string FakeAutoml::canned_reply(const std::string& key, const FakeAutomlOptions& o) {
  int index = 0;
  if (const auto colon = key.rfind(':'); colon != std::string::npos) {
    index = std::atoi(key.c_str() + colon + 1);
  }
  const double tip = 0.5 + 0.002 * (index % 100);
  const bool loop = o.loop_class == "nylon" || o.loop_class == "mitegen";
  nlohmann::json p;
  p["key"] = key;
  // Descending scores: the loop (or a stray pin), then the pin, then noise.
  std::vector<std::string> classes = {loop ? o.loop_class : "pin", "pin", "nylon", "mitegen"};
  std::vector<double> scores = {o.score, std::min(o.score, 0.8) * 0.9, 0.01, 0.005};
  std::vector<std::vector<double>> boxes = {{0.40, tip - 0.15, 0.60, tip},
                                            {0.45, 0.05, 0.55, tip - 0.15},
                                            {0.0, 0.0, 0.1, 0.1},
                                            {0.9, 0.9, 1.0, 1.0}};
  std::vector<double> class_ids;
  for (const auto& c : classes) class_ids.push_back(c == "pin" ? 1.0 : c == "nylon" ? 2.0 : 3.0);
  p["detection_scores"] = scores;
  p["detection_classes"] = class_ids;
  p["detection_classes_as_text"] = classes;
  p["detection_boxes"] = boxes;
  p["detection_multiclass_scores"] = nlohmann::json::array();
  for (double s : scores) p["detection_multiclass_scores"].push_back({s, s / 2, s / 4});
  p["num_detections"] = 40.0;
  p["image_info"] = {240, 320, 3, 240, 320};
  return nlohmann::json{{"predictions", nlohmann::json::array({p})}}.dump();
}

void FakeAutoml::start() {
  if (running_) return;
  server_ = std::make_unique<httplib::Server>();
  auto& s = *server_;
  s.set_payload_max_length(64u << 20);
  s.Post(R"(/v1/models/([^/:]+):predict)",
         [this](const httplib::Request& req, httplib::Response& res) {
           const auto o = options();
           const auto j = nlohmann::json::parse(req.body, nullptr, false);
           std::string key;
           bool valid = false;
           try {
             const auto& inst = j.at("instances").at(0);
             key = inst.value("key", "");
             auto img = base64_decode(inst.at("image_bytes").at("b64").get<std::string>());
             valid = img.ok() && looks_like_jpeg(*img);
           } catch (const std::exception&) {
           }
           if (!valid) {
             ++bad_requests_;
             res.status = 400;
             res.set_content(R"({"error":"bad request"})", "application/json");
             return;
           }
           if (o.delay > Duration::zero()) std::this_thread::sleep_for(o.delay);
           ++predictions_;
           if (o.status != 200) {
             res.status = o.status;
             res.set_content(R"({"error":"scripted failure"})", "application/json");
             return;
           }
           if (o.bad_json) {
             res.set_content("<html>not json</html>", "text/html");
             return;
           }
           if (o.no_predictions) {
             res.set_content(R"({"predictions": []})", "application/json");
             return;
           }
           res.set_content(canned_reply(key, o), "application/json");
         });
  s.Get(R"(/v1/models/([^/:]+))", [this](const httplib::Request&, httplib::Response& res) {
    if (!options().healthy) {
      res.status = 503;
      return;
    }
    res.set_content(
        R"({"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]})",
        "application/json");
  });
  port_ = static_cast<std::uint16_t>(bind_server(s, options_.bind, options_.port, "fake AutoML"));
  running_ = true;
  listen_on_thread(*server_, thread_);
}

void FakeAutoml::stop() {
  if (!running_.exchange(false)) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace acheron::dcss
