// The UbloxControl gRPC front (package ubloxcontrol), with server reflection.
// Thin: requests go to UbloxService, Failures become gRPC statuses.
#pragma once

#include <memory>
#include <string>

#include "acheron/core/Clock.hh"
#include "acheron/gnss/Service.hh"

namespace grpc {
class Server;
}

namespace acheron::gnss {

// TLS of the listener (PEM files; no certificate: plaintext). With a client
// CA, clients must present a certificate it signed.
struct ServerTls {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
};

struct ServerOptions {
  // Upstream's listener: every interface, port 50051 (PANOSETI clients dial
  // it); "127.0.0.1:0" picks a free port on loopback.
  std::string bind = "[::]:50051";
  Duration shutdown_grace = std::chrono::milliseconds(500);
  ServiceOptions service;
  ServerTls tls;
  // Limits (docs/gnss.md, "Limits and security"). Every call holds a gRPC
  // thread while it runs (a CaptureUblox stream for its whole life): at most
  // max_threads - 1 calls run at once, one more gets RESOURCE_EXHAUSTED.
  int max_threads = 64;
  // HTTP/2 streams one connection may have open (more wait in the client).
  int max_streams_per_connection = 100;
  // Largest request accepted, bytes (an InitF9t configuration is a few KiB);
  // a larger one gets RESOURCE_EXHAUSTED.
  int max_receive_message_bytes = 4 << 20;
};

class UbloxControlServer final {
 public:
  // Starts serving. Throws SetupError if the address cannot be bound.
  explicit UbloxControlServer(ServerOptions options = {});
  ~UbloxControlServer();
  UbloxControlServer(const UbloxControlServer&) = delete;
  UbloxControlServer& operator=(const UbloxControlServer&) = delete;

  int port() const noexcept { return port_; }
  // host:port a client can dial (the bind host with the chosen port;
  // localhost for a wildcard bind).
  std::string address() const;
  // The bind address with the chosen port ([::]:50051).
  std::string bound_address() const;
  // True if bound to every interface ([::], 0.0.0.0).
  bool wildcard() const;
  UbloxService& service() noexcept { return *service_; }
  // Blocks until shutdown() is called from another thread.
  void wait();
  // Stops I/O (open streams end with OK), then stops gRPC within the grace period.
  void shutdown();

 private:
  class Impl;
  ServerOptions options_;
  std::unique_ptr<UbloxService> service_;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> shut_{false};
};

}  // namespace acheron::gnss
