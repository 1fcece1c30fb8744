// Images from an Axis video server (dcss-xos.md §9.3): the snapshot GET and
// the MJPEG stream reader (the receiver for the JPEGs the server POSTs is
// JpegReceiver.hh). Also JPEG helpers (libturbojpeg) shared with the test doubles.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "acheron/core/Result.hh"

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

}  // namespace acheron::dcss
