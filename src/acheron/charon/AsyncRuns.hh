// Asynchronous-mode run bookkeeping (charon-protocol.md §11), socket-free:
// one open run per peer, its events in submission order, results written in
// that order in baskets as they complete, RUN_END answered once the run's
// last event is written and its output closed. Used by the front process
// (server or broker), never by a worker. Where the hits go is a RunSink
// (RunSink.hh): HDF5 files by default.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acheron/charon/Dedupe.hh"
#include "acheron/charon/RunSink.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::charon {

struct AsyncOptions {
  std::filesystem::path outdir = ".";
  std::size_t events_per_basket = 500;             // flush cadence
  std::uint64_t max_backlog_photons = 20'000'000;  // above: ASYNC replies are held back
  std::map<std::string, std::string> attributes;   // extra file attributes
  // Where the runs go. Unset: HDF5 run files in outdir, with attributes
  // (RunFileSink); set: outdir and attributes are not used.
  std::shared_ptr<RunSink> sink;
};

struct Ticket {
  std::uint64_t run = 0;
  std::uint64_t seq = 0;  // position in the run's submission order
};

struct RunSummary {
  std::filesystem::path path;
  std::uint64_t events = 0;
  std::uint64_t hits = 0;
};

class AsyncRuns final {
 public:
  // Throws SetupError for invalid options, or when the default sink's
  // output directory cannot be created.
  AsyncRuns(AsyncOptions options, wire::charon::DetectorInfo detector);
  ~AsyncRuns();

  // options.sink, or the default sink (HDF5 files in options.outdir) made
  // from the options; throws SetupError if its directory cannot be created.
  static std::shared_ptr<RunSink> sink_for(const AsyncOptions& options);

  // RUN_BEGIN from peer. An open run of the same peer is ended first (it
  // closes once its events are written). Returns where the new run goes.
  std::filesystem::path begin(const std::string& peer, const std::string& requested_name);
  // An accepted PHOTONDATA: its place in the peer's run (a run with a
  // generated name is opened if the peer has none).
  Ticket accept(const std::string& peer, std::uint64_t photons);
  // A RUN_END reply to send: ACK, or RUN_FAILED with the reason when the
  // run's file could not be written.
  struct EndReply {
    Route route;
    std::vector<Buffer> reply;
  };
  // The event's hits: written when every earlier event of its run is. Returns
  // the RUN_END replies to send now (their runs just closed or failed).
  std::vector<EndReply> complete(const Ticket& ticket, wire::charon::Hits hits);
  // RUN_END from peer: the reply to send now (no open run, or nothing
  // pending: the run is closed or failed), or nothing: the route waits and
  // comes back from complete(). Resends join the waiters.
  std::optional<std::vector<Buffer>> end(const std::string& peer, Route route);
  // Unsimulated photons over all runs (for back-pressure).
  std::uint64_t backlog_photons() const noexcept { return backlog_; }
  bool over_backlog() const noexcept { return backlog_ > options_.max_backlog_photons; }
  // Closes every run, writing what has completed (shutdown).
  void close_all();
  std::vector<RunSummary> closed_runs() const { return closed_; }
  // Runs given up after a write error (their RUN_END got RUN_FAILED).
  std::uint64_t failed_runs() const noexcept { return failed_; }
  std::size_t open_runs() const noexcept { return runs_.size(); }

 private:
  struct Run {
    std::unique_ptr<RunWriter> writer;
    std::deque<std::optional<wire::charon::Hits>> slots;  // from next_write onward
    std::vector<std::uint64_t> slot_photons;              // photons per seq, for the backlog
    std::uint64_t next_seq = 0;
    std::uint64_t next_write = 0;
    bool ending = false;
    std::vector<Route> waiters;
    // Non-empty once the writer failed: later events are discarded, RUN_END
    // is answered RUN_FAILED with this reason, and nothing stops the others.
    std::string error;
  };
  void fail(std::uint64_t id, Run& run, const std::string& why);
  std::vector<Buffer> end_reply(const Run& run) const;
  std::uint64_t open(const std::string& peer, const std::string& name);
  // Writes complete baskets (or everything, when the run is ending); closes
  // the run when it is ending and drained. Returns true if it closed.
  bool flush(std::uint64_t id, Run& run, bool force);
  // Closes (or, after an error, drops) the run; returns its RUN_END reply.
  std::vector<Buffer> finish(std::uint64_t id);

  AsyncOptions options_;
  std::shared_ptr<RunSink> sink_;
  wire::charon::DetectorInfo detector_;
  std::map<std::uint64_t, Run> runs_;
  std::map<std::string, std::uint64_t> by_peer_;
  std::uint64_t next_id_ = 1;
  std::uint64_t backlog_ = 0;
  std::vector<RunSummary> closed_;
  std::uint64_t failed_ = 0;
};

}  // namespace acheron::charon
