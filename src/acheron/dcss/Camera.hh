// Images from an Axis video server (dcss-xos.md §9.3): the snapshot GET, the
// MJPEG stream reader, and the HTTP receiver for the JPEGs the server POSTs.
// Also JPEG helpers (libturbojpeg) shared with the test doubles.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "acheron/core/Result.hh"

namespace httplib {
class Server;
}

namespace acheron::dcss {

// A JPEG of `width`×`height` with a pattern that depends on `seed`.
std::string make_test_jpeg(int width, int height, int seed, int quality = 80);
// Width and height from a JPEG header; an error if it is not a JPEG.
Result<std::pair<int, int>> jpeg_size(std::string_view jpeg);
bool looks_like_jpeg(std::string_view bytes);

struct AxisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  int camera = 1;
  std::string user, password;  // Basic auth when user is set
  double timeout_s = 5;
};

class AxisClient final {
 public:
  explicit AxisClient(AxisOptions options) : options_(std::move(options)) {}

  // GET /axis-cgi/jpg/image.cgi?camera=N; the body must be a JPEG.
  Result<std::string> snapshot() const;

  // GET /axis-cgi/mjpg/video.cgi?camera=N[&resolution=WxH][&compression=C][&fps=F]
  // and calls on_frame for every JPEG until it returns false, the stream ends
  // or `stop` becomes true. Returns the number of frames delivered.
  Result<std::size_t> stream(const std::function<bool(std::string jpeg)>& on_frame,
                             const std::atomic<bool>& stop, double fps = 0,
                             const std::string& resolution = {}, int compression = -1) const;

 private:
  AxisOptions options_;
};

// HTTP/1.1 server that accepts JPEG (or PNG) POSTs on any path, as the Axis
// server sends them while the video trigger is open: exactly Content-Length
// bytes, Expect: 100-continue honoured, 200 OK + Connection: close; 411 without
// a length, 413 above the limit, 415 for other content types.
class JpegReceiver final {
 public:
  using Callback = std::function<void(std::string image, std::string content_type)>;
  JpegReceiver(std::string bind, std::uint16_t port, std::size_t max_bytes, Callback callback);
  ~JpegReceiver();
  JpegReceiver(const JpegReceiver&) = delete;
  JpegReceiver& operator=(const JpegReceiver&) = delete;

  // Binds and serves in a background thread; throws SetupError if the port is taken.
  void start();
  void stop();
  bool running() const noexcept { return running_.load(); }
  std::uint16_t port() const noexcept { return port_; }
  std::uint64_t received() const noexcept { return received_.load(); }

 private:
  std::string bind_;
  std::uint16_t port_;
  std::size_t max_bytes_;
  Callback callback_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> received_{0};
};

}  // namespace acheron::dcss
