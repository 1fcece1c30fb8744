#include "acheron/dcss/Camera.hh"

#include <httplib.h>
#include <turbojpeg.h>

#include <vector>

#include "acheron/core/Log.hh"
#include "acheron/wire/Mjpeg.hh"

namespace acheron::dcss {

namespace {
void set_timeouts(httplib::Client& cli, double seconds) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(seconds));
  cli.set_connection_timeout(us);
  cli.set_read_timeout(us);
  cli.set_write_timeout(us);
}
}  // namespace

bool looks_like_jpeg(std::string_view bytes) {
  return bytes.size() >= 4 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8;
}

std::string make_test_jpeg(int width, int height, int seed, int quality) {
  std::vector<unsigned char> rgb(static_cast<std::size_t>(width) * height * 3);
  const int sx = (seed * 7) % std::max(1, width), sy = (seed * 3) % std::max(1, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      auto* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
      const bool square = std::abs(x - sx) < width / 8 && std::abs(y - sy) < height / 8;
      p[0] = static_cast<unsigned char>(square ? 250 : (x * 255) / std::max(1, width));
      p[1] = static_cast<unsigned char>(square ? 40 : (y * 255) / std::max(1, height));
      p[2] = static_cast<unsigned char>((seed * 37) & 0xFF);
    }
  }
  tjhandle h = tjInitCompress();
  if (!h)
    throw SetupError(
        "turbojpeg compressor unavailable (tjInitCompress failed) reinstall libturbojpeg");
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(h, rgb.data(), width, 0, height, TJPF_RGB, &out, &size, TJSAMP_420,
                             quality, TJFLAG_FASTDCT);
  std::string jpeg;
  if (rc == 0) jpeg.assign(reinterpret_cast<const char*>(out), size);
  tjFree(out);
  tjDestroy(h);
  if (rc != 0) throw SetupError("cannot encode a test JPEG (turbojpeg failed) check the size");
  return jpeg;
}

Result<std::pair<int, int>> jpeg_size(std::string_view jpeg) {
  if (!looks_like_jpeg(jpeg)) {
    return Result<std::pair<int, int>>::failure(StatusCode::invalid_argument, "not a JPEG");
  }
  tjhandle h = tjInitDecompress();
  int w = 0, hgt = 0, sub = 0, cs = 0;
  const int rc = tjDecompressHeader3(h, reinterpret_cast<const unsigned char*>(jpeg.data()),
                                     static_cast<unsigned long>(jpeg.size()), &w, &hgt, &sub, &cs);
  tjDestroy(h);
  if (rc != 0) return Result<std::pair<int, int>>::failure(StatusCode::invalid_argument, "bad JPEG header");
  return std::make_pair(w, hgt);
}

Result<std::string> AxisClient::snapshot() const {
  httplib::Client cli(options_.host, options_.port);
  set_timeouts(cli, options_.timeout_s);
  if (!options_.user.empty()) cli.set_basic_auth(options_.user, options_.password);
  const auto res = cli.Get("/axis-cgi/jpg/image.cgi?camera=" + std::to_string(options_.camera));
  if (!res) {
    return Result<std::string>::failure(StatusCode::unavailable,
                             "camera " + options_.host + ":" + std::to_string(options_.port) +
                                 " unreachable (" + httplib::to_string(res.error()) + ")");
  }
  if (res->status != 200) {
    return Result<std::string>::failure(StatusCode::unavailable,
                             "camera answered HTTP " + std::to_string(res->status));
  }
  if (!looks_like_jpeg(res->body)) {
    return Result<std::string>::failure(StatusCode::invalid_argument, "camera snapshot is not a JPEG");
  }
  return res->body;
}

Result<std::size_t> AxisClient::stream(const std::function<bool(std::string)>& on_frame,
                                       const std::atomic<bool>& stop, double fps,
                                       const std::string& resolution, int compression) const {
  httplib::Client cli(options_.host, options_.port);
  set_timeouts(cli, options_.timeout_s);
  if (!options_.user.empty()) cli.set_basic_auth(options_.user, options_.password);
  std::string path = "/axis-cgi/mjpg/video.cgi?camera=" + std::to_string(options_.camera);
  if (!resolution.empty()) path += "&resolution=" + resolution;
  if (compression >= 0) path += "&compression=" + std::to_string(compression);
  if (fps > 0) path += "&fps=" + std::to_string(static_cast<int>(fps + 0.5));
  std::unique_ptr<wire::mjpeg::Parser> parser;
  std::size_t frames = 0;
  bool wanted_more = true;
  std::string error;
  const auto res = cli.Get(
      path,
      [&](const httplib::Response& r) {
        if (r.status != 200) {
          error = "camera answered HTTP " + std::to_string(r.status);
          return false;
        }
        auto boundary = wire::mjpeg::boundary_of(r.get_header_value("Content-Type"));
        parser = std::make_unique<wire::mjpeg::Parser>(boundary ? *boundary : "myboundary");
        return true;
      },
      [&](const char* data, std::size_t size) {
        if (stop) return false;
        parser->feed(data, size);
        while (auto part = parser->next()) {
          ++frames;
          if (!on_frame(std::move(*part)) || stop) {
            wanted_more = false;
            return false;
          }
        }
        return !parser->ended();
      });
  if (!error.empty()) return Result<std::size_t>::failure(StatusCode::unavailable, error);
  if (!res && (wanted_more && !stop) && res.error() != httplib::Error::Canceled) {
    return Result<std::size_t>::failure(
        StatusCode::unavailable,
        "MJPEG stream from " + options_.host + " failed (" + httplib::to_string(res.error()) + ")");
  }
  return frames;
}

}  // namespace acheron::dcss
