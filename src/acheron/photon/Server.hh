// `acheron photon serve`: the ChAR0N SimpleWorker role on one ROUTER socket,
// serving many clients at once. The I/O thread owns the socket and never
// waits for a simulation; events simulate concurrently on a job pool and
// their replies come back through a queue and a waker.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "acheron/broker/AsyncRuns.hh"
#include "acheron/net/Zmq.hh"
#include "acheron/photon/Service.hh"

namespace acheron::photon {

struct ServerOptions {
  std::string bind = "tcp://*:5555";
  ServiceOptions service;
  std::size_t max_concurrent = 2;  // events simulated at once
  std::chrono::seconds dedupe_window{120};
  std::optional<net::CurveKeys> curve;  // CURVE server keys; none: plain TCP
  // Largest frame accepted from a client (net::set_max_message_size).
  std::int64_t max_message_size = net::kDefaultMaxMessageSize;
  // Asynchronous mode (charon-protocol.md §11): PHOTONDATA is answered
  // SIM_COMPLETE_ASYNC at once, events are batched across requests, and hits
  // are written per run to HDF5 files in async_options.outdir.
  bool async = false;
  broker::AsyncOptions async_options;
  std::uint64_t photons_per_batch = 2'000'000;  // ChAR0N's value
};

class Server final {
 public:
  Server(std::shared_ptr<const optics::Detector> detector, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound endpoint with the real port (for binds to port 0 or "*").
  const std::string& endpoint() const noexcept { return endpoint_; }
  // Serves until stop(); rethrows socket errors other than shutdown.
  void run();
  // Thread-safe; run() returns soon after.
  void stop();

  PhotonService& service() noexcept { return *service_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<PhotonService> service_;
  std::string endpoint_;
};

}  // namespace acheron::photon
