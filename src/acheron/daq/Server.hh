// The DaqData gRPC server (spec 5): StreamImages, InitHpIo, Ping and
// UploadImages on TCP and a unix socket, with server reflection. Streams run
// on gRPC's asynchronous API, all on one completion-queue thread, and idle
// ones are woken by one dispatcher thread, so hundreds of streams need no
// thread each; every stream sends the cached, already serialized responses
// (shared, not copied). Uploads run side by side up to a limit and end when
// idle too long; InitHpIo calls run one at a time on one thread with a
// bounded queue; a real data_dir must lie under allowed_data_roots; TCP can
// use TLS (docs/daq.md, "Limits and security").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "acheron/daq/Config.hh"
#include "acheron/daq/ImageStore.hh"

namespace acheron::daq {

struct ServerStats {
  std::size_t active_streams = 0;
  std::uint64_t images_sent = 0;
  bool hp_io_valid = false;
  std::size_t active_uploads = 0;
  std::uint64_t streams_accepted = 0;  // StreamImages calls served since start
  std::uint64_t streams_refused = 0;   // refused (bad request, busy, not initialised, full)
};

// A StreamImages client being served.
struct StreamClient {
  std::string peer;  // gRPC's peer string, e.g. ipv4:127.0.0.1:40312
  bool movie = false;
  bool pulse_height = false;
  std::vector<std::uint32_t> modules;  // empty: every module
  double interval_s = 0;               // effective update interval
};

class Server final {
 public:
  explicit Server(ServerConfig config);
  ~Server();  // shutdown() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts serving; runs the default InitHpIo when
  // init_from_default is set. Throws SetupError when a listener cannot bind.
  void start();
  // The bound TCP port (0 without a TCP listener).
  int tcp_port() const;
  // Graceful stop (spec 5.4): streams end CANCELLED, hp_io stops, gRPC stops
  // with the grace period as deadline, the unix socket file is removed.
  // Safe from any thread, idempotent.
  void shutdown();
  // Blocks until shutdown() completed.
  void wait();

  // InitHpIo as the RPC runs it (for the boot-time default and tests).
  // Returns (gRPC status code, message, success).
  struct InitResult {
    int code = 0;
    std::string message;
    bool success = false;
  };
  InitResult init_hp_io(const HpIoConfig& config);

  ImageStore& store();
  ServerStats stats() const;
  std::vector<StreamClient> clients() const;
  const ServerConfig& config() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace acheron::daq
