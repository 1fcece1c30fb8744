// A C++ client of the DaqData service (the CLI's ping, init and stream, the
// benchmark and tests). Targets are "unix:///path", "host:port", or a bare
// host (port 50051, as the PANOSETI clients do).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "acheron/daq/Config.hh"
#include "acheron/daqdata.pb.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace acheron::daq {

// "host" → "host:50051"; unix: targets and host:port unchanged.
std::string resolve_target(const std::string& address);

// TLS for TCP targets (PEM files). Empty ca_file with TLS on: the system's
// trusted roots. cert_file and key_file: a client certificate, for servers
// that require one. Unix-socket targets always connect in plaintext, as the
// server's unix socket serves.
struct ClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool enabled() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

struct StreamOptions {
  bool movie = true;
  bool pulse_height = true;
  double update_interval_seconds = 0;
  std::vector<std::uint32_t> module_ids;
  double timeout_seconds = 0;  // 0: no deadline
};

class Client final {
 public:
  // Throws SetupError if a TLS file cannot be read (or a certificate comes
  // without its key).
  explicit Client(const std::string& address, const ClientTls& tls = {});
  ~Client();

  // True if the server answered within timeout.
  bool ping(double timeout_seconds = 0.3, bool wait_for_ready = false);
  // InitHpIo: throws Failure with the RPC's status; returns success.
  bool init_hp_io(const HpIoConfig& config, double timeout_seconds = 10,
                  std::string* error_message = nullptr);
  // Streams until on_image returns false, cancel() is called, or the server
  // ends the stream. Returns the final status (code, message) — CANCELLED
  // when ended by on_image or cancel().
  std::pair<int, std::string> stream(
      const StreamOptions& options,
      const std::function<bool(daqdata::StreamImagesResponse&)>& on_image);
  // Sends every image next() yields (until it returns false); throws Failure
  // when the server refuses.
  void upload(const std::function<bool(daqdata::PanoImage*)>& next);
  // Cancels a running stream() from another thread.
  void cancel();
  const std::string& target() const noexcept { return target_; }

 private:
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::mutex mutex_;
  grpc::ClientContext* streaming_ = nullptr;
  bool cancelled_ = false;
};

// A received image back as a PFF frame (fixed-width header when the header
// carries the DAQ's stamps). Returns false for images of unknown props.
bool image_to_pff(const daqdata::PanoImage& image, std::string* frame, wire::pff::Product* product);

}  // namespace acheron::daq
