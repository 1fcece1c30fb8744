#include "acheron/broker/AsyncRuns.hh"

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::broker {

AsyncRuns::AsyncRuns(AsyncOptions options, wire::charon::DetectorInfo detector)
    : options_(std::move(options)), detector_(std::move(detector)) {
  ACHERON_EXPECT(options_.events_per_basket >= 1,
                 "events_per_basket is 0 (nothing would ever be written) use 1 or more");
  std::error_code ec;
  std::filesystem::create_directories(options_.outdir, ec);
  ACHERON_EXPECT(std::filesystem::is_directory(options_.outdir),
                 "output directory '" + options_.outdir.string() +
                     "' does not exist and cannot be created (permissions?) choose --outdir");
}

AsyncRuns::~AsyncRuns() {
  try {
    close_all();
  } catch (const std::exception& e) {
    log::error("closing runs: {}", e.what());
  }
}

std::uint64_t AsyncRuns::open(const std::string& peer, const std::string& name) {
  // Directory parts of the requested name are dropped: a client cannot
  // write outside the output directory.
  const auto path = options_.outdir / run_file_name(name);
  const std::uint64_t id = next_id_++;
  Run run;
  run.file = std::make_unique<RunFile>(path, detector_, options_.attributes);
  const std::string opened = run.file->path().string();
  runs_.emplace(id, std::move(run));
  by_peer_[peer] = id;
  log::info("run {} opened for {}: {}", id, peer.empty() ? "?" : peer, opened);
  return id;
}

std::filesystem::path AsyncRuns::begin(const std::string& peer, const std::string& name) {
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) {
    log::warn("RUN_BEGIN from {} while its run {} is open: ending that run", peer, it->second);
    const std::uint64_t old = it->second;
    by_peer_.erase(it);
    Run& r = runs_.at(old);
    r.ending = true;
    if (flush(old, r, true)) finish(old);
  }
  const std::uint64_t id = open(peer, name);
  return runs_.at(id).file->path();
}

Ticket AsyncRuns::accept(const std::string& peer, std::uint64_t photons) {
  auto it = by_peer_.find(peer);
  // Events after RUN_END (no RUN_BEGIN yet) start a run with a generated name.
  const std::uint64_t id =
      it != by_peer_.end() && !runs_.at(it->second).ending ? it->second : open(peer, "");
  Run& r = runs_.at(id);
  r.slots.emplace_back();
  r.slot_photons.push_back(photons);
  backlog_ += photons;
  return {id, r.next_seq++};
}

std::vector<Route> AsyncRuns::complete(const Ticket& t, wire::charon::Hits hits) {
  auto it = runs_.find(t.run);
  if (it == runs_.end() || t.seq < it->second.next_write) return {};
  Run& r = it->second;
  const std::size_t slot = static_cast<std::size_t>(t.seq - r.next_write);
  if (slot >= r.slots.size() || r.slots[slot]) return {};
  backlog_ -= std::min(backlog_, r.slot_photons[t.seq]);
  r.slots[slot] = std::move(hits);
  if (!flush(t.run, r, false)) return {};
  std::vector<Route> waiters = std::move(r.waiters);
  finish(t.run);
  return waiters;
}

bool AsyncRuns::flush(std::uint64_t, Run& r, bool force) {
  std::size_t ready = 0;
  while (ready < r.slots.size() && r.slots[ready]) ++ready;
  const bool drained = ready == r.slots.size();
  if (ready >= options_.events_per_basket || (r.ending && drained) || (force && ready > 0)) {
    std::vector<wire::charon::Hits> basket;
    basket.reserve(ready);
    for (std::size_t i = 0; i < ready; ++i) {
      basket.push_back(std::move(*r.slots.front()));
      r.slots.pop_front();
    }
    r.next_write += ready;
    if (!basket.empty()) r.file->append(basket);
  }
  return r.ending && r.slots.empty();
}

void AsyncRuns::finish(std::uint64_t id) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  Run& r = it->second;
  r.file->close();
  closed_.push_back({r.file->path(), r.file->events(), r.file->hits()});
  log::info("run {} closed: {} events, {} hits in {}", id, r.file->events(), r.file->hits(),
            r.file->path().string());
  for (auto p = by_peer_.begin(); p != by_peer_.end();) {
    p = p->second == id ? by_peer_.erase(p) : std::next(p);
  }
  runs_.erase(it);
}

bool AsyncRuns::end(const std::string& peer, Route route) {
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) {
    // No open run: never opened, or already closed (a resend after the
    // close completed). Either way the answer is ACK.
    return true;
  }
  // The peer stays mapped to its draining run, so RUN_END resends wait too.
  const std::uint64_t id = it->second;
  Run& r = runs_.at(id);
  r.ending = true;
  if (flush(id, r, true)) {
    finish(id);
    return true;
  }
  r.waiters.push_back(std::move(route));
  return false;
}

void AsyncRuns::close_all() {
  while (!runs_.empty()) {
    auto& [id, r] = *runs_.begin();
    r.ending = true;
    // Write whatever completed in order; later events are lost with a warning.
    std::size_t ready = 0;
    while (ready < r.slots.size() && r.slots[ready]) ++ready;
    if (ready < r.slots.size()) {
      log::warn("run {}: {} events not simulated at shutdown are not written", id,
                r.slots.size() - ready);
      r.slots.resize(ready);
    }
    flush(id, r, true);
    finish(id);
  }
  backlog_ = 0;
}

}  // namespace acheron::broker
