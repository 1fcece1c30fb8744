// A C++ client of UbloxControl (what `acheron gnss init|capture` use).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/wire/Ubx.hh"

namespace acheron::gnss {

struct CapturedMessage {
  std::string name;
  nlohmann::json parsed;   // parsed_data
  wire::ubx::Bytes frame;  // payload: the complete UBX frame
  std::int64_t unix_ns = 0;
};

// TLS to the server (PEM files). Empty ca_file with TLS on: the system's
// trusted roots. cert_file and key_file: a client certificate, for servers
// that require one.
struct ClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool enabled() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

class UbloxClient final {
 public:
  // target: host:port. Throws SetupError if a TLS file cannot be read (or a
  // certificate comes without its key).
  explicit UbloxClient(const std::string& target, const ClientTls& tls = {});
  ~UbloxClient();

  // InitF9t; returns the server's message. Throws Failure with the gRPC
  // status (deadline_exceeded / unavailable if the server does not answer).
  std::string init(const nlohmann::json& config, bool force, Duration timeout);
  // CaptureUblox: calls on_message until it returns false, the stream ends
  // or `duration` passes. Throws Failure for a stream that ends with an
  // error; returns normally when the server ends it with OK, when
  // on_message stops it or when the duration is over.
  void capture(const std::vector<std::string>& patterns,
               const std::function<bool(const CapturedMessage&)>& on_message,
               Duration duration = Duration::max());
  // Ends a capture running in another thread (e.g. from a signal handler's
  // thread); capture() then returns normally.
  void cancel();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acheron::gnss
