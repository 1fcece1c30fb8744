// `acheron photon worker`: serves the photon service behind a broker. The
// I/O thread owns the DEALER socket and keeps heartbeating while events
// simulate on other threads; when the broker goes silent the worker
// reconnects on a fresh socket with capped exponential back-off, forever.
// Wire-compatible with the broker side of ChAR0N (charon-protocol.md §6-8).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
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
  // Sent as WORKER_INFO right after every READY (an Acheron extension the
  // broker shows per worker in its STATS; ChAR0N's router.py logs it as an
  // invalid message and carries on). Empty: nothing sent.
  std::map<std::string, std::string> info;
  // drain(): how long the events in hand may take before they are handed
  // back to the broker unanswered.
  std::chrono::milliseconds grace{20000};
};

// Who and where this process is, for WorkerOptions::info: `node` (Slurm's
// SLURMD_NODENAME, else the host name), `pid`, and under Slurm
// `slurm_job_id`, `slurm_array_job_id`, `slurm_array_task_id` and, in a
// requeued job, `slurm_restart_count` (from the environment variables of the
// same names in upper case).
std::map<std::string, std::string> worker_info_from_environment();

struct WorkerStats {
  std::uint64_t connections = 0;  // sockets opened (1 + reconnects)
  std::uint64_t requests = 0;
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t events = 0;   // PHOTONDATA requests simulated
  std::uint64_t batches = 0;  // engine batches they ran in
  // drain(): requests returned to the broker unanswered (never started, or
  // still simulating when the grace ran out).
  std::uint64_t handed_back = 0;
  bool abandoned = false;   // a simulation was still running when run() returned
  std::size_t in_hand = 0;  // requests simulating now (a gauge)
};

class Worker final {
 public:
  Worker(std::shared_ptr<const optics::Detector> detector, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until stop() or the end of drain().
  void run();
  void stop();  // thread-safe; what is in hand is dropped (the broker re-dispatches it)
  // Thread-safe graceful stop (SIGTERM from Slurm): tells the broker
  // DRAINING (no new work), finishes the events already simulating for up
  // to options.grace, sends their replies, hands everything else back with
  // DISCONNECT and makes run() return. A second call ends the grace at once.
  void drain();
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
