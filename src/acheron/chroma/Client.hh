// A chroma-server client for Geant4 programs: sends a photon list to a
// chroma front (`acheron photon serve --chroma-bind`, `acheron broker
// --chroma-bind`, or any chroma-server) and returns the detected photons.
// Each attempt has a deadline; an unanswered attempt is retried on a fresh
// REQ socket (Lazy Pirate, as RAT-PAC does), so a server restart is
// survived and a lost reply never blocks the program. Needs neither ROOT
// nor Geant4.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <zmq.hpp>

#include "acheron/chroma/PhotonList.hh"
#include "acheron/core/Error.hh"

namespace acheron::chroma {

struct ClientOptions {
  std::string endpoint = "tcp://127.0.0.1:5024";  // chroma-server's port
  // Per attempt. chroma-server clients wait for the simulation itself, so
  // this must exceed the longest event's simulation time: an attempt that
  // times out is sent again and simulated again.
  std::chrono::milliseconds timeout{30000};
  int attempts = 3;
  // Pause before the next attempt when the server answers "unavailable"
  // (a broker without workers).
  std::chrono::milliseconds unavailable_wait{500};
  // How the list is written: a bare TBufferFile (chroma-server's own
  // clients) or a TMessage. The reply comes back the same way.
  wire::chroma::Framing framing = wire::chroma::Framing::buffer;
  wire::chroma::Limits limits;  // largest reply accepted
};

class Client final {
 public:
  // Throws SetupError for options no request could succeed with.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the list and returns the detected photons: final position,
  // direction, polarisation, time and wavelength, pmtid = channel id.
  // event_id goes out as the list's fUniqueID; it keys the server's random
  // streams (the same list and id give the same hits). Throws Failure with
  // the server's status code and text when it answers with the error reply;
  // unavailable after every attempt went unanswered; invalid_argument when
  // the list cannot be written (NaN, vectors of different lengths) or the
  // reply cannot be read.
  PhotonList simulate(const PhotonList& photons, std::uint32_t event_id = 0);
  // Sends bytes as they are (a list written elsewhere, e.g. by ROOT) and
  // returns the reply's bytes, retrying like simulate.
  std::vector<std::byte> request(const std::vector<std::byte>& message);

  const ClientOptions& options() const noexcept { return options_; }

 private:
  ClientOptions options_;
  zmq::context_t context_{1};
};

}  // namespace acheron::chroma
