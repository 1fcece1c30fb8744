// The chroma-server front (docs/chroma.md), socket-free: what `acheron photon
// serve` and `acheron broker` do with a message from their chroma ROUTER
// socket. A chroma-server client (a Geant4 program) sends one ROOT-serialised
// ChromaPhotonList per request on a REQ socket and waits for the list of
// detected photons, or for the error reply (a TObjString) if its list cannot
// be served; it never waits forever for a reply that will not come.
//
// The broker turns each decoded list into a ChAR0N PHOTONDATA job for its
// router (CharonRouter::on_photon_job) under a route frame of its own: one
// frame that no ROUTER identity can equal, carrying the client's envelope and
// the header its reply is written with. The router's reply for that route
// comes back here and becomes the chroma reply.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "acheron/charon/Dedupe.hh"
#include "acheron/core/Payload.hh"
#include "acheron/core/Result.hh"
#include "acheron/wire/Charon.hh"
#include "acheron/wire/ChromaPhotonList.hh"

namespace acheron::charon {

struct ChromaOptions {
  wire::chroma::Limits limits;  // photons per list (10,000,000); above: resource_exhausted
  // ZMQ_MAXMSGSIZE of the chroma socket. ZeroMQ closes the connection of a
  // peer that sends a larger message, so such a message gets no reply (the
  // client's deadline expires); every size up to it gets a list or an error
  // reply. 1 GiB holds 22 M photons, twice the default photon limit (10 M
  // photons are 480 MB).
  std::int64_t max_message_bytes = std::int64_t{1} << 30;

  // Throws SetupError if the byte limit cannot hold a list of
  // limits.max_photons photons (such lists would be cut off without a reply).
  void validate() const;
};

// The event id that keys a chroma request's random streams: the list's
// TObject::fUniqueID (0 unless the client calls SetUniqueID). The same list
// with the same fUniqueID gives the same hits as a PHOTONDATA request with
// that event id, through either front, on any server or worker with the
// same seed.
inline std::uint32_t chroma_event_id(const wire::chroma::Header& header) {
  return header.unique_id;
}

// One message of a chroma ROUTER socket: the client's routing envelope
// ([id, ""] from REQ, [id] from DEALER) and its request body. nullopt when
// there is no envelope (nothing can be answered). A body of more than one
// frame is refused (chroma-server clients send exactly one).
struct ChromaMessage {
  Route route;
  std::vector<Buffer> body;
};
std::optional<ChromaMessage> split_chroma_message(std::vector<Buffer> frames);

// A request that cannot be served: the error reply's bytes (in the framing
// the request appears to use) and why.
struct ChromaRefusal {
  Buffer reply;
  ErrorInfo error;
};
// Decodes a request body: the photons and the header the reply is written
// with, or the refusal.
std::variant<wire::chroma::Decoded, ChromaRefusal> decode_chroma_request(
    std::span<const Buffer> body, const wire::chroma::Limits& limits);

// The same check without converting the arrays: the list's layout in
// body[0] (wire::chroma::View), for reading it in place.
std::variant<wire::chroma::View, ChromaRefusal> check_chroma_request(
    std::span<const Buffer> body, const wire::chroma::Limits& limits);

// The route frames followed by one reply frame.
std::vector<Buffer> chroma_reply(const Route& route, Buffer reply);

// The broker's side: chroma requests in, router jobs out, router replies back.
class ChromaFront final {
 public:
  explicit ChromaFront(ChromaOptions options);

  // A job for CharonRouter::on_photon_job.
  struct Job {
    Route route;               // one frame: see is_chroma_route
    std::vector<Buffer> body;  // a current-generation PHOTONDATA request
    std::uint32_t event_id = 0;
    std::uint64_t photons = 0;
  };
  // What to do with one message of the chroma socket: send `reply` on the
  // chroma socket (a refusal), or give `job` to the router; neither for a
  // message without an envelope.
  struct Action {
    std::vector<Buffer> reply;
    std::optional<Job> job;
    std::string refused;  // why, for the log
  };
  Action on_message(std::vector<Buffer> frames);

  // Whether a message the router addresses to the frontend is for a chroma
  // client (its first frame is a route made by on_message).
  static bool is_chroma_route(const std::vector<Buffer>& frames);
  // The chroma socket's message for the router's reply [route, reply...]:
  // SIM_COMPLETE becomes the detected photons (positions from `detector`,
  // see wire/ChromaCharon.hh), SIM_FAILED and NO_WORKERS become error
  // replies. Empty if the route is not one of ours.
  std::vector<Buffer> on_router_reply(std::span<const Buffer> frames,
                                      const std::optional<wire::charon::DetectorInfo>& detector);

  struct Stats {
    std::uint64_t requests = 0;  // messages with an envelope
    std::uint64_t dropped = 0;   // without one
    std::uint64_t refused = 0;   // answered with an error reply at once
    std::uint64_t replies = 0;   // lists of detected photons sent
    std::uint64_t failed = 0;    // error replies for accepted requests
  };
  const Stats& stats() const noexcept { return stats_; }
  const ChromaOptions& options() const noexcept { return options_; }

 private:
  ChromaOptions options_;
  Stats stats_;
};

}  // namespace acheron::charon
