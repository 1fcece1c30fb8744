// The ChAR0N broker's routing policy (charon-protocol.md §8), free of sockets
// and clocks: the ZeroMQ adapter (broker/Broker.hh) feeds it every received message
// and the current time, and sends the messages it returns. Tests drive it
// with a fake clock.
//
// Roles: clients (RAT-PAC, REQ sockets) talk to the frontend ROUTER; workers
// (DEALER sockets, ours or ChAR0N's original Python worker) talk to the
// backend ROUTER. Backend messages are [worker_id, client_id, "", header, …]
// both ways, and a control message is exactly one frame after the worker id
// (READY 0x01 or HEARTBEAT 0x02) (§6).
//
// An original worker echoes the client_id frame it received, so the router
// puts its own job reference into that slot ("J" + job number, or "P" +
// probe number for its own DETECTOR_INFO probes) and maps replies back to
// the client's real route itself. Workers never see client identities.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/charon/AsyncRuns.hh"
#include "acheron/charon/Dedupe.hh"
#include "acheron/charon/FairQueue.hh"
#include "acheron/core/Clock.hh"
#include "acheron/core/Payload.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::charon {

enum class PingReply : std::uint8_t {
  ack,   // current ChAR0N (RAT-PAC accepts nothing else)
  pong,  // v1 clients (§4)
};

struct RouterOptions {
  // §8.1: requests wait in a queue; beyond these limits the reply is
  // NO_WORKERS. The queue serves clients in turn (FairQueue.hh), not in
  // arrival order.
  std::size_t max_queue_jobs = 1024;
  std::uint64_t max_queue_bytes = std::uint64_t{4} << 30;  // 4 GiB of request frames
  // Requests one host (Peer-Address) may have waiting; beyond it its new
  // requests get NO_WORKERS, so one host cannot fill the queue for all.
  std::size_t max_queue_jobs_per_host = 256;
  // Queued requests older than this are dropped: RAT-PAC gives up after
  // 3 × 2.5 s, so nobody waits for them any more.
  Duration queue_ttl = std::chrono::seconds(60);
  // NO_WORKERS once no usable worker has existed for this long (counted from
  // the router's start, too, so a broker starting without workers queues
  // requests while its workers connect).
  Duration no_worker_grace = std::chrono::seconds(10);
  // §2: HEARTBEAT_INTERVAL 1 s, HEARTBEAT_LIVENESS 3.
  Duration heartbeat_interval = std::chrono::seconds(1);
  int heartbeat_liveness = 3;
  // §8.3: a busy worker never seen heartbeating while busy (an original,
  // single-threaded worker) is declared dead only after this much silence.
  Duration busy_timeout = std::chrono::seconds(600);
  // §8.4: how often a job goes back to the queue after its worker died.
  int max_job_retries = 2;
  // Poison requests: a job whose worker died while holding it alone is
  // "suspect" and is dispatched alone from then on (nothing is packed with
  // it, so no other job shares its fate); after this many such deaths it
  // fails with SIM_FAILED (cached for resends), whatever retries remain. A
  // request that crashes workers takes down at most this many.
  int poison_deaths = 2;
  // The detector every worker must serve, from the operator (`--detector`).
  // Unset: the first worker to answer its DETECTOR_INFO probe sets it, which
  // is safe only when every backend peer is trusted (loopback or CURVE with
  // an allow-list); Broker refuses other set-ups unless told to trust.
  std::optional<wire::charon::DetectorInfo> expected_detector;
  // §8.5: finished replies kept for resends (0: no cache; resends of running
  // jobs are still merged), and a cap on the bytes they hold.
  Duration dedupe_window = std::chrono::seconds(120);
  std::size_t dedupe_max_bytes = std::size_t{512} << 20;
  // §8.9: jobs in flight per worker.
  std::size_t worker_prefetch = 1;
  // §11 batching, asynchronous mode only: beyond worker_prefetch, a worker
  // is given further whole events while its events in flight hold at most
  // this many photons (and at most 256 events), so a worker that
  // batches what is waiting (`acheron photon worker`) simulates large engine
  // batches. 0 turns packing off.
  std::uint64_t photons_per_batch = 2'000'000;
  PingReply ping_reply = PingReply::ack;
  // Request validation (hard limit on photons per request).
  wire::charon::Limits limits;
  // §11: asynchronous mode. PHOTONDATA is answered SIM_COMPLETE_ASYNC at once
  // and the hits are written per run by the router; async_options gives the
  // output directory, basket size and the backlog limit.
  bool async = false;
  AsyncOptions async_options;

  // Throws SetupError naming the first invalid field.
  void validate() const;
};

// Which socket an outgoing message goes to.
enum class Socket : std::uint8_t { frontend, backend };

// One multipart message to send; frames[0] is the routing identity (the
// client's route frames for the frontend, the worker id for the backend).
struct Outgoing {
  Socket socket = Socket::frontend;
  std::vector<Buffer> frames;
};
using Outbox = std::vector<Outgoing>;

// Counters and gauges, reported by STATS.
struct RouterStats {
  // Frontend traffic.
  std::uint64_t requests = 0;  // messages with a routing envelope
  std::uint64_t dropped = 0;   // messages without one (cannot be answered)
  std::uint64_t rejected = 0;  // malformed: answered with the codec's error reply
  std::uint64_t pings = 0;
  std::uint64_t detector_info = 0;   // client DETECTOR_INFO requests
  std::uint64_t run_control = 0;     // RUN_BEGIN / RUN_END (answered ACK)
  std::uint64_t photon_data = 0;     // PHOTONDATA requests, duplicates included
  std::uint64_t duplicates = 0;      // resends merged with a queued/running/finished job
  std::uint64_t cached_replies = 0;  // resends answered from the reply cache
  std::uint64_t no_workers = 0;      // NO_WORKERS replies
  std::uint64_t host_limited = 0;    // of those, for a host over max_queue_jobs_per_host
  std::uint64_t expired = 0;         // queued jobs dropped after queue_ttl
  // Jobs.
  std::uint64_t dispatched = 0;      // job sends to workers, retries included
  std::uint64_t completed = 0;       // worker replies forwarded to clients
  std::uint64_t retried = 0;         // jobs put back at the queue head
  std::uint64_t failed = 0;          // SIM_FAILED after max_job_retries
  std::uint64_t late_replies = 0;    // replies from a worker the job had been taken from
  std::uint64_t forged_replies = 0;  // replies from a peer that was never given the job
  std::uint64_t poison_failed = 0;   // jobs failed after poison_deaths lone worker deaths
  std::uint64_t stale_replies = 0;   // replies for jobs already answered (dropped)
  // Asynchronous mode.
  std::uint64_t async_accepted = 0;  // events accepted into runs (resends excluded)
  std::uint64_t async_written = 0;   // events whose hits went to their run
  std::uint64_t async_empty = 0;     // of those, written without hits (failed)
  // Workers.
  std::uint64_t workers_seen = 0;  // registrations
  std::uint64_t workers_lost = 0;  // declared dead or unreachable
  std::uint64_t detector_mismatches = 0;
  std::uint64_t bad_backend_messages = 0;
  std::uint64_t workers_left = 0;  // left with DISCONNECT (not counted as lost)
  std::uint64_t handed_back = 0;   // jobs a leaving worker returned unanswered
  // Gauges.
  std::size_t queue_depth = 0;  // PHOTONDATA jobs waiting for a worker
  std::uint64_t queue_bytes = 0;
  std::size_t queue_hosts = 0;        // hosts (Peer-Address) with jobs waiting
  std::size_t queue_connections = 0;  // sockets with jobs waiting
  std::size_t waiting_detector_info = 0;
  std::size_t in_flight = 0;         // jobs held by workers
  std::size_t workers = 0;           // registered
  std::size_t workers_idle = 0;      // usable, nothing in flight
  std::size_t workers_busy = 0;      // usable, jobs in flight
  std::size_t workers_probing = 0;   // DETECTOR_INFO probe not yet answered
  std::size_t workers_rejected = 0;  // detector differs from the reference
  std::size_t workers_draining = 0;  // sent DRAINING: no new jobs (also counted by state)
  // Latency from a PHOTONDATA request's arrival to its reply, in buckets with
  // these upper bounds (milliseconds; the last bucket is open).
  static constexpr std::array<double, 14> kLatencyBoundsMs = {
      1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2500, 7500, 30000, 60000};
  std::array<std::uint64_t, kLatencyBoundsMs.size() + 1> latency_counts{};
  double latency_seconds_sum = 0;  // of the requests in latency_counts
  // Photons in the PHOTONDATA jobs queued (resends merged with a job are not
  // counted again), and hits in the replies forwarded or written.
  std::uint64_t photons_in = 0;
  std::uint64_t hits_out = 0;
};

// What a test or the STATS reply may know about one worker.
struct WorkerView {
  enum class State : std::uint8_t { probing, idle, busy, rejected };
  State state = State::probing;
  std::size_t in_flight = 0;
  bool heartbeats_while_busy = false;
  bool draining = false;  // sent DRAINING: finishes what it holds, gets nothing new
  // What the worker said about itself in WORKER_INFO (a JSON object of
  // strings: node, pid, slurm_job_id, ...); empty for ChAR0N's workers.
  nlohmann::json info = nlohmann::json::object();
};

// One registered worker, for status pages.
struct WorkerStatus {
  std::string id;  // the worker's routing identity as received (may be binary)
  WorkerView::State state = WorkerView::State::probing;
  std::size_t in_flight = 0;
  double last_seen_s = 0;                          // seconds since its last message
  nlohmann::json info = nlohmann::json::object();  // its WORKER_INFO (node, Slurm job, ...)
};

class CharonRouter final {
 public:
  // now: the start time (the no-worker grace counts from it).
  CharonRouter(RouterOptions options, TimePoint now);

  // A message from the frontend ROUTER, routing envelope included.
  // peer: the Peer-Address of the sender ("" if unknown), used to recognise
  // resends from new sockets (§8.5).
  Outbox on_frontend_message(std::vector<Buffer> frames, std::string_view peer, TimePoint now);
  // A PHOTONDATA request `body` that another front decoded (the chroma
  // front, ChromaFront.hh): counted as a request and queued, dispatched and
  // answered NO_WORKERS like a client's, its reply sent to `route` on the
  // frontend. Never merged with another request nor answered from the
  // resend cache: each is its own simulation. Synchronous mode only.
  // peer: the sender's Peer-Address, for fairness and the per-host bound.
  Outbox on_photon_job(Route route, std::vector<Buffer> body, std::uint32_t event_id,
                       std::uint64_t photons, TimePoint now, std::string_view peer = {});
  // A request another front refused as malformed: counted in the stats.
  void count_rejected() noexcept {
    ++stats_.requests;
    ++stats_.rejected;
  }
  // A message from the backend ROUTER, worker id first.
  Outbox on_backend_message(std::vector<Buffer> frames, TimePoint now);
  // The adapter could not deliver to this worker (its connection is gone):
  // it is dead now, its jobs go back to the queue.
  Outbox on_worker_unreachable(std::string_view worker_id, TimePoint now);
  // Timers: heartbeats, worker liveness, queue ttl, the no-worker grace and
  // the reply cache. Call it at least every 100 ms or so; timers are only as
  // precise as the calls.
  Outbox on_tick(TimePoint now);
  // When on_tick must run next at the latest (the next heartbeat).
  TimePoint next_heartbeat() const noexcept { return next_heartbeat_; }

  const RouterOptions& options() const noexcept { return options_; }
  RouterStats stats() const;
  // The STATS reply body: stats() as JSON plus `labels` (endpoints etc.).
  nlohmann::json stats_json(TimePoint now) const;
  void set_stats_labels(nlohmann::json labels) { labels_ = std::move(labels); }

  std::optional<WorkerView> worker(std::string_view worker_id) const;
  // Every registered worker, in identity order.
  std::vector<WorkerStatus> workers(TimePoint now) const;
  // Asynchronous mode: closes every run, writing what has completed (the
  // broker calls it when it stops). Waiting RUN_ENDs are not answered.
  void close_runs();
  // Asynchronous mode: unsimulated photons over all runs, open runs.
  std::uint64_t async_backlog_photons() const noexcept;
  std::size_t open_runs() const noexcept { return runs_ ? runs_->open_runs() : 0; }

  // The reference geometry, once the first probe has been answered.
  const std::optional<wire::charon::DetectorInfo>& detector() const noexcept { return detector_; }

 private:
  using JobId = std::uint64_t;
  enum class Probe : std::uint8_t { pending, matched, rejected };

  struct Job {
    JobId id = 0;
    Routes routes;             // where the reply goes (every sender, first first)
    std::vector<Buffer> body;  // request frames, header first
    RequestKey key;
    ClientId client;  // whose turn it takes in the queue
    std::uint64_t bytes = 0;
    std::uint64_t photons = 0;
    TimePoint arrived{};  // first arrival (latency)
    TimePoint wanted{};   // latest arrival, resends included (ttl)
    int retries = 0;
    int deaths_alone = 0;  // holders that died holding only this job
    bool suspect = false;  // a holder died: dispatched alone from now on
    std::string worker;    // holder; empty while queued
    // Every worker ever given this job: only they may answer it (a late
    // answer from an earlier holder is still accepted).
    std::vector<std::string> holders;
    // Asynchronous mode: the result goes to this run slot, not to a client.
    std::optional<Ticket> ticket;
  };

  struct Worker {
    std::string id;
    Probe probe = Probe::pending;
    std::uint64_t probe_id = 0;
    TimePoint last_seen{};
    TimePoint busy_since{};
    bool heartbeats_while_busy = false;
    std::vector<JobId> in_flight;  // dispatch order; may hold answered (orphan) ids
    std::uint64_t ready_seq = 0;   // LRU order among workers with room
    bool draining = false;
    nlohmann::json info = nlohmann::json::object();  // from WORKER_INFO
  };

  struct WaitingInfo {
    Route route;
    TimePoint wanted{};
  };

  // Asynchronous mode: an ASYNC reply held back while the backlog is over
  // its limit (the client's resends re-target it through the dedupe entry).
  struct HeldAck {
    RequestKey key;
    std::uint32_t event_id = 0;
  };

  // Frontend.
  void reply(const Route& route, std::span<const Buffer> body);
  void reply_header(const Route& route, std::string_view header);
  void on_photon_data(Route route, std::span<const Buffer> body, std::uint32_t event_id,
                      std::uint64_t photons, std::string_view peer, TimePoint now);
  void on_client_detector_info(Route route, TimePoint now);
  bool no_workers_expired(TimePoint now) const;
  bool queue_has_room(std::uint64_t bytes) const;
  // Whether a new job of `client` may wait (the global and per-host bounds);
  // counts and logs a refusal. Async jobs are not bounded this way.
  bool may_queue(const ClientId& client, std::uint64_t bytes, std::uint32_t event_id,
                 TimePoint now);
  // Asynchronous mode.
  void on_async_photon_data(Route route, std::span<const Buffer> body, std::uint32_t event_id,
                            std::uint64_t photons, std::string_view peer, TimePoint now);
  void on_run_begin(const Route& route, std::string_view peer, const std::string& name);
  void on_run_end(Route route, std::string_view peer);
  void open_runs_store();
  // Hands an async job's hits to its run and answers the RUN_ENDs that
  // closed; then releases held ASYNC replies the smaller backlog allows.
  void complete_async(Job& job, wire::charon::Hits hits, TimePoint now);
  void release_held_acks(TimePoint now);

  // Backend.
  Worker& register_worker(const std::string& id, TimePoint now);
  void send_probe(Worker& w, TimePoint now);
  void on_job_reply(Worker& w, JobId id, std::span<const Buffer> reply, TimePoint now);
  void on_probe_reply(Worker& w, std::uint64_t probe_id, std::span<const Buffer> reply,
                      TimePoint now);
  void lose_worker(const std::string& id, std::string_view why, TimePoint now);
  // DISCONNECT: the worker leaves; what it holds goes back to the queue head
  // as it was (not suspect, no retry used up).
  void release_worker(const std::string& id, TimePoint now);
  void on_worker_info(Worker& w, const Buffer& frame);
  // Puts a job that lost its worker back at the queue head, or fails it.
  void requeue_or_fail(Job& job, TimePoint now);
  void complete(Job& job, std::span<const Buffer> reply, TimePoint now);
  void drop_job(JobId id);
  void remove_from_queue(JobId id);
  // The queue: jobs handed back or retried first (oldest first), then the
  // others in fair order.
  bool queue_empty() const noexcept { return requeued_.empty() && fair_.empty(); }
  std::size_t queue_size() const noexcept { return requeued_.size() + fair_.size(); }
  JobId queue_front() const { return requeued_.empty() ? fair_.front() : requeued_.front(); }
  JobId queue_pop();
  void queue_push(const Job& job);
  void queue_push_front(JobId id);
  template <class Pred>
  std::size_t queue_remove_if(Pred pred);
  static bool busy(const Worker& w) noexcept;
  bool dead(const Worker& w, TimePoint now) const;
  void mark_idle(Worker& w);

  // Both.
  void dispatch(TimePoint now);
  // The worker to give a job of `photons` photons, or none with room; a job
  // that must run alone (suspect) needs a worker with nothing in flight.
  Worker* pick_worker(std::uint64_t photons = 0, bool alone = false);
  bool holds_suspect(const Worker& w) const;
  std::uint64_t photons_in_flight(const Worker& w) const;
  // Creates a queued job (both modes).
  JobId enqueue(Route route, std::span<const Buffer> body, RequestKey key, ClientId client,
                std::uint64_t bytes, std::uint64_t photons, TimePoint now);
  void update_usable(TimePoint now);
  std::size_t usable_workers() const;
  Outbox take_outbox();

  RouterOptions options_;
  TimePoint started_;
  Dedupe dedupe_;
  std::map<std::string, Worker> workers_;
  std::unordered_map<JobId, Job> jobs_;
  std::map<RequestKey, JobId> by_key_;  // running (queued or in-flight) PHOTONDATA jobs
  std::deque<JobId> requeued_;          // back at the head after a worker died or left
  FairQueue<JobId> fair_;               // new jobs, clients served in turn
  std::uint64_t queue_bytes_ = 0;
  std::deque<WaitingInfo> waiting_info_;
  std::optional<wire::charon::DetectorInfo> detector_;
  std::vector<Buffer> detector_reply_;  // the reference probe's reply frames
  std::string detector_source_;         // the worker that gave it (for logs)
  // Asynchronous mode: runs exist once the detector is known (the files hold
  // it); RUN_BEGINs that came earlier wait in pending_begins_.
  std::unique_ptr<AsyncRuns> runs_;
  std::vector<std::pair<std::string, std::string>> pending_begins_;  // peer, name
  std::deque<HeldAck> held_acks_;
  // Creates an unused, unguessable job id (the slot workers echo): a peer
  // cannot answer a job it was not given by guessing its number.
  JobId new_job_id() const;
  std::uint64_t next_probe_ = 1;
  std::uint64_t next_ready_seq_ = 1;
  TimePoint next_heartbeat_;
  bool had_usable_ = false;
  TimePoint no_workers_since_;
  RouterStats stats_;
  nlohmann::json labels_ = nlohmann::json::object();
  Outbox out_;
};

}  // namespace acheron::charon
