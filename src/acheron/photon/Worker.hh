// `acheron photon worker`: serves the photon service behind a broker. The
// I/O thread owns the DEALER socket and keeps heartbeating while events
// simulate on other threads; when the broker goes silent the worker
// reconnects on a fresh socket with capped exponential back-off, forever.
// Wire-compatible with the broker side of ChAR0N (charon-protocol.md §6-8).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "acheron/net/Zmq.hh"
#include "acheron/photon/Service.hh"

namespace acheron::photon {

struct WorkerOptions {
  std::string connect = "tcp://localhost:6667";
  ServiceOptions service;
  std::size_t max_concurrent = 1;  // engine batches simulated at once
  // PHOTONDATA requests waiting while the engine is busy (a broker sends
  // several with prefetch or in asynchronous mode) run together as one engine
  // batch of whole events up to this many photons; each still gets its own
  // reply (charon-protocol.md §8.9, §11).
  std::uint64_t photons_per_batch = 2'000'000;
  std::chrono::milliseconds heartbeat{1000};
  int liveness = 3;  // silent heartbeat intervals before the broker is presumed gone
  std::chrono::milliseconds reconnect_min{2000};
  std::chrono::milliseconds reconnect_max{30000};
  std::optional<net::CurveKeys> curve;  // own keys, with curve_server_key
  std::string curve_server_key;         // Z85 public key of the broker
  // Largest frame accepted from the broker (net::set_max_message_size).
  std::int64_t max_message_size = net::kDefaultMaxMessageSize;
};

struct WorkerStats {
  std::uint64_t connections = 0;  // sockets opened (1 + reconnects)
  std::uint64_t requests = 0;
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t events = 0;   // PHOTONDATA requests simulated
  std::uint64_t batches = 0;  // engine batches they ran in
};

class Worker final {
 public:
  Worker(std::shared_ptr<const optics::Detector> detector, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until stop().
  void run();
  void stop();  // thread-safe
  WorkerStats stats() const;
  PhotonService& service() noexcept { return *service_; }

 private:
  struct Impl;
  // On a job thread: one engine batch of the pending requests.
  void simulate_pending(Impl& m);

  std::unique_ptr<PhotonService> service_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acheron::photon
