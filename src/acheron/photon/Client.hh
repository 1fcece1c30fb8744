// C++ client of the photon service (ChAR0N protocol): ping, detector info,
// simulate one event or many. Every call has a deadline; a timed-out attempt
// is retried on a fresh socket (Lazy Pirate, as RAT-PAC does), so a server
// or broker restart is survived. Usable from a Geant4 program.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acheron/net/Zmq.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::photon {

struct ClientOptions {
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::chrono::milliseconds timeout{2500};         // per attempt (RAT-PAC's CHROMA.timeout)
  int attempts = 3;                                // RAT-PAC's retries
  std::chrono::milliseconds no_workers_wait{500};  // pause before retrying after NO_WORKERS
  std::optional<net::CurveKeys> curve;
  std::string curve_server_key;
};

// One event's photons, structure of arrays as on the wire.
struct EventPhotons {
  std::uint32_t event_id = 0;
  std::array<std::vector<float>, wire::charon::kComponents> f32;
  std::vector<std::uint32_t> flags;  // creator bits (CHERENKOV, SCINTILLATION) or 0

  std::size_t size() const noexcept { return f32[0].size(); }
  // The photons of one event of a batch (those with batch.event == event).
  static EventPhotons from_batch(const optics::PhotonBatch& batch, std::uint32_t event,
                                 std::uint32_t event_id);
};

class Client final {
 public:
  explicit Client(ClientOptions options);
  ~Client();

  // True if the server answered PING with ACK or PONG within the deadline.
  bool ping();
  wire::charon::DetectorInfo detector_info();
  void run_begin(const std::string& filename);
  void run_end();
  // Simulates one event and returns its hits (Hits::steps stays empty: the
  // ChAR0N reply carries no step data; run files do, charon::read_run_file).
  // Throws Failure: unavailable after every attempt timed out or got
  // NO_WORKERS, aborted on SIM_FAILED.
  wire::charon::Hits simulate(const EventPhotons& event);
  // Simulates many events with up to `in_flight` requests outstanding on
  // one connection; replies are matched by event id. Calls on_done (if set)
  // as each completes. Event ids must be unique within the call.
  std::vector<wire::charon::Hits> simulate_many(
      const std::vector<EventPhotons>& events, std::size_t in_flight = 8,
      const std::function<void(std::size_t done)>& on_done = {});
  // The STATS extension (servers and brokers of this project).
  std::string stats_json();

  const ClientOptions& options() const noexcept { return options_; }

 private:
  // Sends a request on a fresh REQ socket per attempt; returns the reply.
  std::vector<Buffer> request(const std::vector<Buffer>& frames, bool accept_no_workers_as_final);
  zmq::socket_t open(zmq::socket_type type);

  ClientOptions options_;
  zmq::context_t context_{1};
};

}  // namespace acheron::photon
