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

struct ServerOptions {
  std::string bind = "[::]:50051";  // upstream's listener; "127.0.0.1:0" picks a free port
  Duration shutdown_grace = std::chrono::milliseconds(500);
  ServiceOptions service;
};

class UbloxControlServer final {
 public:
  // Starts serving. Throws SetupError if the address cannot be bound.
  explicit UbloxControlServer(ServerOptions options = {});
  ~UbloxControlServer();
  UbloxControlServer(const UbloxControlServer&) = delete;
  UbloxControlServer& operator=(const UbloxControlServer&) = delete;

  int port() const noexcept { return port_; }
  // host:port a client can dial (the bind host with the chosen port).
  std::string address() const;
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
