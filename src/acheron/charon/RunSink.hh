// Where the asynchronous-mode runs' hits go (charon-protocol.md §11). The
// run policy (AsyncRuns, and CharonRouter through it) calls only this
// interface; RunFile.hh writes each run as an HDF5 file (RunFileSink, the
// default), tests keep runs in memory. No HDF5 here.
//
// A run's life: the sink opens a writer when the run begins (RUN_BEGIN, or a
// client's first event without one), the policy appends baskets of events in
// submission order, then closes it when the run ends, or abandons it after an
// error. An exception from any call is a write error: the run is given up
// (its RUN_END is answered RUN_FAILED with the exception's message) and the
// other runs go on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "acheron/wire/Charon.hh"

namespace acheron::charon {

// One run's output.
class RunWriter {
 public:
  virtual ~RunWriter() = default;

  // Appends events in the given order (one basket). Throws on a write error.
  virtual void append(const std::vector<wire::charon::Hits>& events) = 0;
  // The run ended: completes the output. Throws on a write error. Called at
  // most once, never after abandon().
  virtual void close() = 0;
  // The run is given up after an error: drops what is incomplete. Never throws.
  virtual void abandon() noexcept = 0;

  // Where the run goes (logs, RunSummary), and what has been appended.
  virtual const std::filesystem::path& path() const noexcept = 0;
  virtual std::uint64_t events() const noexcept = 0;
  virtual std::uint64_t hits() const noexcept = 0;
};

// Opens one writer per run.
class RunSink {
 public:
  virtual ~RunSink() = default;

  // A writer for a new run. requested_name is the client's RUN_BEGIN name
  // (untrusted; empty for a generated run); detector is the geometry every
  // event of the run was simulated with. Throws if the run cannot be
  // written: it then exists without output and its RUN_END says why.
  virtual std::unique_ptr<RunWriter> begin_run(const std::string& requested_name,
                                               const wire::charon::DetectorInfo& detector) = 0;
  // Where a run of that name would go (for logs when begin_run failed).
  virtual std::filesystem::path path_for(const std::string& requested_name) const = 0;
};

}  // namespace acheron::charon
