// The photon simulation service behind every ChAR0N-speaking process (the
// single-process server and the broker's workers): answers each request kind,
// runs PHOTONDATA through the engine and builds the reply frames.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "acheron/optics/Engine.hh"
#include "acheron/photon/Convert.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::photon {

enum class PingReply { ack, pong };

struct ServiceOptions {
  std::size_t threads = 0;  // engine threads; 0 = one per core
  // The engine's seed. Unset: a fresh one from the kernel for each service
  // (each process start), so two servers or workers never share streams;
  // set it (`--seed`) for reproducible runs. See stream_key().
  std::optional<std::uint64_t> seed;
  PingReply ping_reply = PingReply::ack;
  wire::charon::Limits limits;
  // Steps of each hit recorded in its sequence word (optics::EngineOptions::
  // step_history, 0..16); they reach run files, never SIM_COMPLETE.
  std::uint32_t step_history = 0;
};

// Counters for `acheron ping --stats` and logs; all monotonic.
struct ServiceStats {
  std::uint64_t requests = 0;
  std::uint64_t events = 0;
  std::uint64_t photons = 0;
  std::uint64_t hits = 0;
  std::uint64_t failed = 0;
  std::uint64_t invalid_photons = 0;
  std::uint64_t steps = 0;
  double busy_seconds = 0;
  // Simulation time per request: counts of requests at or below each bound
  // (ms), the last bucket open-ended.
  static constexpr std::array<double, 12> kLatencyBoundsMs{1,   2,   5,   10,   20,   50,
                                                           100, 200, 500, 1000, 2000, 5000};
  std::array<std::uint64_t, 13> latency_counts{};
  void record_latency(double seconds);
};

// The key of an event's random streams: a 32-bit digest of the seed, the
// client's event id and the event's photons as the engine received them
// (photons [begin, end) of the batch). Two jobs that both number their
// events from 0 send different photons and so draw independent numbers; a
// resent event (same id, same photons) draws the same ones on any server
// with the same seed, however events are batched.
std::uint32_t stream_key(std::uint64_t seed, std::uint32_t event_id,
                         const optics::PhotonBatch& batch, std::size_t begin, std::size_t end);

struct EventObservation;  // Monitor.hh

class PhotonService final {
 public:
  PhotonService(std::shared_ptr<const optics::Detector> detector, ServiceOptions options = {});

  // The reply to a request that needs no simulation (PING, DETECTOR_INFO,
  // RUN_BEGIN/RUN_END in synchronous mode).
  std::vector<Buffer> reply_now(const wire::charon::Request& request) const;
  // Simulates one event: SIM_COMPLETE (12 or 5 frames, as the request's
  // generation) or SIM_FAILED on an engine error. Thread-safe.
  std::vector<Buffer> simulate(const wire::charon::PhotonData& photons);
  // Simulates one event and returns the engine's hit records in input order
  // (with the final positions, which SIM_COMPLETE does not carry; the
  // chroma front replies with them). Throws on an engine error, counted as
  // failed. Thread-safe.
  std::vector<optics::HitRecord> simulate_records(const wire::charon::PhotonData& photons);
  // The same for an event whose `photons` photons `fill` appends to the
  // batch (with append_event: validated and normalised as above), e.g. a
  // chroma-server list read where it lies in its message.
  std::vector<optics::HitRecord> simulate_records(
      std::uint32_t event_id, std::uint64_t photons,
      const std::function<InputReport(optics::PhotonBatch&)>& fill);

  // Simulates several events as one engine batch (their event ids must be
  // distinct) and returns each event's hits, in the given order, with
  // Hits::steps set (positions and step history). Throws on an engine error.
  std::vector<wire::charon::Hits> simulate_batch(
      const std::vector<const wire::charon::PhotonData*>& events);

  const wire::charon::DetectorInfo& detector_info() const noexcept { return info_; }
  const optics::Engine& engine() const noexcept { return *engine_; }
  // The seed in use (the given one, or the fresh one drawn at construction).
  std::uint64_t seed() const noexcept { return seed_; }
  ServiceStats stats() const;
  // Called on the simulating thread after every simulation call (the HTTP
  // status front's PhotonMonitor::record). Set it before serving.
  void set_observer(std::function<void(const EventObservation&)> observer) {
    observer_ = std::move(observer);
  }

 private:
  std::shared_ptr<const optics::Detector> detector_;
  std::unique_ptr<optics::Engine> engine_;
  ServiceOptions options_;
  std::uint64_t seed_ = 0;
  wire::charon::DetectorInfo info_;
  mutable std::mutex stats_mutex_;
  ServiceStats stats_;
  std::function<void(const EventObservation&)> observer_;
};

}  // namespace acheron::photon
