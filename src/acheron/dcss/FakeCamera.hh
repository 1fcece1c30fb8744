// Test doubles of the loop DHS's HTTP peers (dcss-xos.md §10), usable from
// tests and from `acheron dhs fake-axis` / `fake-automl`:
// - FakeAxis: an Axis video server (snapshot GET, MJPEG multipart stream,
//   and pushing JPEG frames by POST at a frame rate, as while the video
//   trigger is open);
// - FakeAutoml: the AutoML TF-Serving container (predict with base64 JSON,
//   health check) with canned predictions, delays and errors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"

namespace httplib {
class Server;
}

namespace acheron::dcss {

struct FakeAxisOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;  // 0: ephemeral
  int width = 320, height = 240;
  std::string user, password;  // require Basic auth when user is set
  double mjpeg_fps = 30;       // unless the request gives fps=
  int mjpeg_max_frames = 0;    // > 0: each MJPEG stream ends (--myboundary--) after this many
  int snapshot_status = 200;   // anything else: that HTTP error
};

class FakeAxis final {
 public:
  explicit FakeAxis(FakeAxisOptions options = {});
  ~FakeAxis();
  FakeAxis(const FakeAxis&) = delete;
  FakeAxis& operator=(const FakeAxis&) = delete;

  void start();
  void stop();
  std::uint16_t port() const noexcept { return port_; }
  void set_snapshot_status(int status) { snapshot_status_ = status; }

  // POSTs `count` JPEGs to http://host:port/path at `fps` in the background.
  void push(std::string host, std::uint16_t port, int count, double fps,
            std::string path = "/jpeg");
  // Waits until every push has finished; false on timeout.
  bool wait_pushes(Duration timeout);
  std::uint64_t pushed() const noexcept { return pushed_.load(); }
  std::uint64_t push_failures() const noexcept { return push_failures_.load(); }
  std::uint64_t snapshots() const noexcept { return snapshots_.load(); }
  std::uint64_t streamed_frames() const noexcept { return streamed_.load(); }

 private:
  FakeAxisOptions options_;
  std::uint16_t port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::thread> pushers_;
  std::atomic<bool> running_{false};
  std::atomic<int> snapshot_status_{200};
  std::atomic<std::uint64_t> pushed_{0}, push_failures_{0}, snapshots_{0}, streamed_{0}, seq_{0};
};

struct FakeAutomlOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;
  Duration delay{};                  // before each predict reply
  int status = 200;                  // predict HTTP status
  bool bad_json = false;             // reply with a body that is not JSON
  bool no_predictions = false;       // reply {"predictions": []}
  bool healthy = true;               // GET /v1/models/default answers 200 (else 503)
  double score = 0.95;               // the loop's (top) score
  std::string loop_class = "nylon";  // nylon | mitegen | pin (no loop)
};

class FakeAutoml final {
 public:
  explicit FakeAutoml(FakeAutomlOptions options = {});
  ~FakeAutoml();
  FakeAutoml(const FakeAutoml&) = delete;
  FakeAutoml& operator=(const FakeAutoml&) = delete;

  void start();
  void stop();
  std::uint16_t port() const noexcept { return port_; }
  // Changes the canned behaviour (thread-safe).
  void set_options(const FakeAutomlOptions& options);
  FakeAutomlOptions options() const;
  std::uint64_t predictions() const noexcept { return predictions_.load(); }
  std::uint64_t bad_requests() const noexcept { return bad_requests_.load(); }

  // The canned reply for `key`: a loop whose tip x is 0.5 + 0.002 × (the
  // number after the key's last ':', mod 100), and a pin (pydhsfw's
  // gcp_automl/automl_output.json layout).
  static std::string canned_reply(const std::string& key, const FakeAutomlOptions& options);

 private:
  mutable std::mutex mutex_;
  FakeAutomlOptions options_;
  std::uint16_t port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> predictions_{0}, bad_requests_{0};
};

}  // namespace acheron::dcss
