#include "acheron/charon/AsyncRuns.hh"

#include <stdexcept>

#include "acheron/charon/RunFile.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

std::shared_ptr<RunSink> AsyncRuns::sink_for(const AsyncOptions& options) {
  if (options.sink) return options.sink;
  return std::make_shared<RunFileSink>(options.outdir, options.attributes);
}

AsyncRuns::AsyncRuns(AsyncOptions options, wire::charon::DetectorInfo detector)
    : options_(std::move(options)), detector_(std::move(detector)) {
  ACHERON_EXPECT(options_.events_per_basket >= 1,
                 "events_per_basket is 0 (nothing would ever be written) use 1 or more");
  sink_ = sink_for(options_);
}

AsyncRuns::~AsyncRuns() {
  try {
    close_all();
  } catch (const std::exception& e) {
    log::error("closing runs: {}", e.what());
  }
}

std::uint64_t AsyncRuns::open(const std::string& peer, const std::string& name) {
  const std::uint64_t id = next_id_++;
  Run run;
  try {
    run.writer = sink_->begin_run(name, detector_);
    if (!run.writer) throw std::runtime_error("the run sink opened no writer");
  } catch (const std::exception& e) {
    // The run exists without output: its events are accepted and dropped,
    // and its RUN_END says why.
    run.error = e.what();
  }
  const std::string opened =
      run.writer ? run.writer->path().string() : sink_->path_for(name).string();
  auto& stored = runs_.emplace(id, std::move(run)).first->second;
  by_peer_[peer] = id;
  if (!stored.error.empty()) {
    ++failed_;
    log::error("run {} for {} cannot be written: {}", id, peer.empty() ? "?" : peer, stored.error);
  } else {
    log::info("run {} opened for {}: {}", id, peer.empty() ? "?" : peer, opened);
  }
  return id;
}

void AsyncRuns::fail(std::uint64_t id, Run& r, const std::string& why) {
  if (!r.error.empty()) return;
  r.error = why;
  ++failed_;
  if (r.writer) r.writer->abandon();
  log::error("run {} failed and is given up (its RUN_END gets RUN_FAILED): {}", id, why);
}

std::vector<Buffer> AsyncRuns::end_reply(const Run& r) const {
  if (r.error.empty()) return wire::charon::encode_header(wire::charon::kAck);
  return {Buffer::copy_of(wire::charon::kRunFailed), Buffer::copy_of(r.error)};
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
  const Run& r = runs_.at(id);
  return r.writer ? r.writer->path() : sink_->path_for(name);
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

std::vector<AsyncRuns::EndReply> AsyncRuns::complete(const Ticket& t, wire::charon::Hits hits) {
  auto it = runs_.find(t.run);
  if (it == runs_.end() || t.seq < it->second.next_write) return {};
  Run& r = it->second;
  const std::size_t slot = static_cast<std::size_t>(t.seq - r.next_write);
  if (slot >= r.slots.size() || r.slots[slot]) return {};
  backlog_ -= std::min(backlog_, r.slot_photons[t.seq]);
  r.slots[slot] = std::move(hits);
  if (!flush(t.run, r, false)) return {};
  std::vector<Route> waiters = std::move(r.waiters);
  const auto reply = finish(t.run);
  std::vector<EndReply> replies;
  for (auto& w : waiters) replies.push_back({std::move(w), reply});
  return replies;
}

bool AsyncRuns::flush(std::uint64_t id, Run& r, bool force) {
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
    if (!basket.empty() && r.error.empty()) {
      try {
        r.writer->append(basket);
      } catch (const std::exception& e) {
        fail(id, r, e.what());
      }
    }
  }
  return r.ending && r.slots.empty();
}

std::vector<Buffer> AsyncRuns::finish(std::uint64_t id) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return wire::charon::encode_header(wire::charon::kAck);
  Run& r = it->second;
  if (r.error.empty()) {
    try {
      r.writer->close();
    } catch (const std::exception& e) {
      fail(id, r, e.what());
    }
  }
  if (r.error.empty()) {
    closed_.push_back({r.writer->path(), r.writer->events(), r.writer->hits()});
    log::info("run {} closed: {} events, {} hits in {}", id, r.writer->events(), r.writer->hits(),
              r.writer->path().string());
  }
  auto reply = end_reply(r);
  for (auto p = by_peer_.begin(); p != by_peer_.end();) {
    p = p->second == id ? by_peer_.erase(p) : std::next(p);
  }
  runs_.erase(it);
  return reply;
}

std::optional<std::vector<Buffer>> AsyncRuns::end(const std::string& peer, Route route) {
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) {
    // No open run: never opened, or already closed (a resend after the
    // close completed). Either way the answer is ACK.
    return wire::charon::encode_header(wire::charon::kAck);
  }
  // The peer stays mapped to its draining run, so RUN_END resends wait too.
  const std::uint64_t id = it->second;
  Run& r = runs_.at(id);
  r.ending = true;
  if (flush(id, r, true)) return finish(id);
  r.waiters.push_back(std::move(route));
  return std::nullopt;
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

}  // namespace acheron::charon
