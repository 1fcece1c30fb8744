// `acheron photon serve`: the ChAR0N SimpleWorker role on one ROUTER socket,
// serving many clients at once, and optionally the chroma-server front on
// another (docs/chroma.md). The I/O thread owns the sockets and never waits
// for a simulation; events from both fronts simulate concurrently on one
// job pool and one engine, and their replies come back through a queue and
// a waker.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acheron/charon/AsyncRuns.hh"
#include "acheron/charon/ChromaFront.hh"
#include "acheron/net/Zmq.hh"
#include "acheron/photon/Monitor.hh"
#include "acheron/photon/Service.hh"

namespace acheron::photon {

struct ServerOptions {
  // The ChAR0N front's endpoint; empty: no ChAR0N front (chroma clients only).
  std::string bind = "tcp://*:5555";
  // The chroma-server front: one ROUTER socket bound to each endpoint (the
  // chroma-server default is tcp://*:5024); empty: none. Its requests run on
  // the same job pool and engine as ChAR0N requests, synchronously in
  // either mode, and are not deduplicated.
  std::vector<std::string> chroma_bind;
  acheron::charon::ChromaOptions chroma;
  ServiceOptions service;
  std::size_t max_concurrent = 2;  // events simulated at once
  // Requests waiting for or in simulation (synchronous ChAR0N and chroma);
  // beyond either bound a request is answered at once: NO_WORKERS (ChAR0N's
  // "retry later") or the chroma error reply (resource_exhausted).
  std::size_t max_queued_jobs = 1024;
  std::uint64_t max_queued_bytes = std::uint64_t{4} << 30;
  // Requests waiting (not yet simulating) start in turn by client, not in
  // arrival order (charon/FairQueue.hh), and one host (Peer-Address) may
  // have at most this many waiting; beyond it its new requests are refused
  // like a full queue's.
  std::size_t max_queued_per_host = 256;
  std::chrono::seconds dedupe_window{120};
  std::optional<net::CurveKeys> curve;  // CURVE server keys; none: plain TCP
  // Largest frame accepted from a client (net::set_max_message_size).
  std::int64_t max_message_size = net::kDefaultMaxMessageSize;
  // Asynchronous mode (charon-protocol.md §11): PHOTONDATA is answered
  // SIM_COMPLETE_ASYNC at once, events are batched across requests, and hits
  // are written per run to HDF5 files in async_options.outdir.
  bool async = false;
  acheron::charon::AsyncOptions async_options;
  std::uint64_t photons_per_batch = 2'000'000;  // ChAR0N's value
};

class Server final {
 public:
  Server(std::shared_ptr<const optics::Detector> detector, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The ChAR0N front's bound endpoint with the real port (for binds to port
  // 0 or "*"); empty without a ChAR0N front.
  const std::string& endpoint() const noexcept { return endpoint_; }
  // The chroma front's bound endpoints, in chroma_bind order.
  const std::vector<std::string>& chroma_endpoints() const noexcept { return chroma_endpoints_; }
  // Serves until stop(); rethrows socket errors other than shutdown.
  void run();
  // Thread-safe; run() returns soon after.
  void stop();

  PhotonService& service() noexcept { return *service_; }
  // Feeds the HTTP status front's monitor (events, queue, errors). Call
  // before run().
  void set_monitor(std::shared_ptr<PhotonMonitor> monitor);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<PhotonService> service_;
  std::string endpoint_;
  std::vector<std::string> chroma_endpoints_;
};

}  // namespace acheron::photon
