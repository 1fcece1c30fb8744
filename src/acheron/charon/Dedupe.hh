// Serving a re-sent request once (charon-protocol.md §8.5). Clients such as
// RAT-PAC resend an event after a timeout on a fresh socket, so a request is
// identified by (peer address, event id, digest of its payload frames), not
// by socket identity. The reply to a running request goes to every sender
// of it (a RAT-PAC resend comes from a new socket and the old one is gone,
// so its copy is dropped); a duplicate cannot take the reply away from the
// client that sent the request first. One of a finished request gets the
// cached reply.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/core/Payload.hh"

namespace acheron::charon {

struct RequestKey {
  std::string peer;  // Peer-Address of the sender ("" when unknown)
  std::uint32_t event_id = 0;
  std::uint64_t digest = 0;  // of the payload frames
  auto operator<=>(const RequestKey&) const = default;
};

// 64-bit digest (XXH3) of frames, in order and with their boundaries.
std::uint64_t digest_frames(std::span<const Buffer> frames);

using Route = std::vector<Buffer>;  // the routing envelope to reply through
using Routes = std::vector<Route>;
using Frames = std::vector<Buffer>;

// Adds route to routes unless it is there already; keeps at most
// kMaxRoutes (the oldest extra senders give way).
inline constexpr std::size_t kMaxRoutes = 16;
void add_route(Routes& routes, Route route);

class Dedupe final {
 public:
  // window: how long finished replies are kept (0 disables deduplication);
  // max_bytes: cap on cached reply bytes (oldest evicted first).
  explicit Dedupe(Duration window = std::chrono::seconds(120),
                  std::size_t max_bytes = std::size_t{512} << 20);

  enum class Verdict { fresh, running, finished };
  struct Lookup {
    Verdict verdict = Verdict::fresh;
    Frames reply;  // finished: the cached reply
  };
  // Called for every incoming request. fresh: the caller starts the job (it
  // is now recorded as running); running: the reply will go to `route` as
  // well; finished: send `reply` to `route`.
  Lookup arrive(const RequestKey& key, Route route, TimePoint now);
  // Called when a job finishes: returns the routes to reply to (every
  // sender, first first) and caches the reply. Empty if the key was not
  // running.
  Routes finish(const RequestKey& key, const Frames& reply, TimePoint now);
  // Forgets a running job without caching (the job was abandoned).
  void abandon(const RequestKey& key);
  // Drops finished entries older than the window.
  void expire(TimePoint now);

  bool enabled() const noexcept { return window_.count() > 0; }
  std::size_t running() const noexcept;
  std::size_t cached() const noexcept { return done_order_.size(); }
  std::size_t cached_bytes() const noexcept { return cached_bytes_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }

 private:
  struct Entry {
    bool finished = false;
    Routes routes;
    Frames reply;
    std::size_t bytes = 0;
    TimePoint finished_at{};
  };
  void evict_oldest();

  Duration window_;
  std::size_t max_bytes_;
  std::map<RequestKey, Entry> entries_;
  std::deque<std::pair<TimePoint, RequestKey>> done_order_;
  std::size_t cached_bytes_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace acheron::charon
