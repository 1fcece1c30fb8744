// One asynchronous-mode run written as an HDF5 file (charon-protocol.md §11),
// readable with h5py:
//
//   /detinfo/pmt_x, pmt_y, pmt_z  float32[C]   channel positions, mm
//   /detinfo/pmt_type              int32[C]
//   /output/event_id               uint32[E]    one row per accepted event, submission order
//   /output/nchannel_id            uint32[E]    hits of each event
//   /output/hit_offset             uint64[E+1]  event e's hits are [hit_offset[e], hit_offset[e+1])
//   /output/channel_id             uint32[H]    hits of all events, flattened
//   /output/time, wavelength, u, v, w, pol_x, pol_y, pol_z   float32[H]
//   /output/flag                   uint32[H]
//   version 2 adds (written by this version; read_run_file reads both):
//   /output/pos_x, pos_y, pos_z    float32[H]   hit positions, mm (NaN if unknown)
//   /output/boundaries, scatters, reemissions, steps   uint32[H]   (0 if unknown)
//   /output/sequence               uint64[H]    first steps, 4 bits each (docs/optics.md)
//   /output/has_steps              uint8[E]     1: the event's hits carry the five above
//   /output/step_history           uint8[E]     steps recorded per sequence (0: off)
//
// Root attributes: format ("acheron.charon.run"), version, run_name,
// created_unix, timing, plus any given metadata. The file is written under a
// temporary name and renamed when closed, so a complete file is never
// confused with one being written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "acheron/charon/RunSink.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::charon {

// The layout version RunFile writes (attribute "version").
inline constexpr int kRunFileVersion = 2;

class RunFile final : public RunWriter {
 public:
  // Creates `final_path`'s temporary sibling (exclusively) and writes
  // /detinfo. If `final_path` or its temporary exists, the first free
  // "-N" variant is used instead; path() tells which.
  RunFile(std::filesystem::path final_path, const wire::charon::DetectorInfo& detector,
          const std::map<std::string, std::string>& attributes = {});
  ~RunFile() override;  // closes (and renames) if close() was not called
  RunFile(const RunFile&) = delete;
  RunFile& operator=(const RunFile&) = delete;

  // Appends events in the given order (one basket).
  void append(const std::vector<wire::charon::Hits>& events) override;
  // Flushes, closes and renames to the final path. Idempotent.
  void close() override;
  // Gives up after a write error: closes what can be closed and deletes the
  // temporary file, never the final name. Idempotent; never throws.
  void abandon() noexcept override;

  const std::filesystem::path& path() const noexcept override { return final_path_; }
  std::uint64_t events() const noexcept override { return events_; }
  std::uint64_t hits() const noexcept override { return hits_; }

 private:
  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  std::int64_t file_ = -1;  // hid_t
  std::map<std::string, std::int64_t> datasets_;
  std::uint64_t events_ = 0;
  std::uint64_t hits_ = 0;
  bool closed_ = false;
};

// The output file name for a RUN_BEGIN name: its last path component, with
// every byte outside [A-Za-z0-9._+-] replaced by '_', cut to 128 bytes,
// trailing ".root" / ".ntuple" suffixes removed (repeatedly) and leading
// dots dropped, plus ".charon.h5"; an empty name gives
// "run_<unix time>_<counter>". RunFile never replaces an existing file: a
// taken name becomes "<name>-1.charon.h5", "-2", ...
std::string run_file_name(const std::string& requested);

// The default RunSink: each run an HDF5 file (RunFile) named run_file_name()
// of its RUN_BEGIN name in `outdir`, with `attributes` added to its root.
class RunFileSink final : public RunSink {
 public:
  // Creates outdir if it is missing; throws SetupError if it cannot.
  explicit RunFileSink(std::filesystem::path outdir,
                       std::map<std::string, std::string> attributes = {});

  std::unique_ptr<RunWriter> begin_run(const std::string& requested_name,
                                       const wire::charon::DetectorInfo& detector) override;
  std::filesystem::path path_for(const std::string& requested_name) const override;

 private:
  std::filesystem::path outdir_;
  std::map<std::string, std::string> attributes_;
};

}  // namespace acheron::charon
