// The photon engine on the CPU: runs the stepping loop over a batch of
// photons on a thread pool, with Embree ray casting, and collects hits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "acheron/core/ThreadPool.hh"
#include "acheron/optics/Detector.hh"
#include "acheron/optics/EmbreeScene.hh"
#include "acheron/optics/Propagate.hh"

namespace acheron::optics {

// Photons as structure of arrays (the layout of the ChAR0N wire and of a
// future device launcher). `event` is the event index of each photon within
// the batch and `index` its photon index within that event; together with the
// seed they key the random stream, so results do not depend on how photons
// are split into batches or threads.
struct PhotonBatch {
  std::vector<float> x, y, z;     // mm
  std::vector<float> dx, dy, dz;  // unit
  std::vector<float> px, py, pz;  // unit, perpendicular to the direction
  std::vector<float> wavelength;  // nm
  std::vector<float> time;        // ns
  std::vector<std::uint32_t> history;
  std::vector<std::uint32_t> event;
  std::vector<std::uint32_t> index;
  std::vector<std::int32_t> last_hit_triangle;

  std::size_t size() const noexcept { return x.size(); }
  void reserve(std::size_t n);
  void resize(std::size_t n);
  void push_back(const Photon& p);
  Photon get(std::size_t i) const;
  void set(std::size_t i, const Photon& p);
  // Throws Failure(invalid_argument) if the arrays differ in length.
  void check() const;
};

// One detected photon. A fixed 64-byte record; as a NumPy dtype:
//   [("channel","<u4"),("event","<u4"),("photon","<u4"),("flags","<u4"),
//    ("time","<f4"),("wavelength","<f4"),("position","<f4",3),
//    ("direction","<f4",3),("polarization","<f4",3),("weight","<f4")]
struct HitRecord {
  std::uint32_t channel;
  std::uint32_t event;
  std::uint32_t photon;  // index within its event
  std::uint32_t flags;   // history bits
  float time;            // ns
  float wavelength;      // nm
  float position[3];     // mm
  float direction[3];
  float polarization[3];
  float weight;
};
static_assert(sizeof(HitRecord) == 64, "HitRecord is a wire/file layout");

// How a detected photon got there, beside its HitRecord (same index in
// SimulationResult): boundaries reached (bounces, the detecting one
// included), Rayleigh scatters and bulk reemissions (as in TrackRecord), the
// number of steps it made and, with EngineOptions::step_history N > 0, its
// first N steps as a sequence word (Step.hh, docs/optics.md; 0 when off). A
// fixed 24-byte record; as a NumPy dtype:
//   [("boundaries","<u4"),("scatters","<u4"),("reemissions","<u4"),
//    ("steps","<u4"),("sequence","<u8")]
struct HitSteps {
  std::uint32_t boundaries;
  std::uint32_t scatters;
  std::uint32_t reemissions;
  std::uint32_t steps;  // steps made (every one, not only the N recorded); 0 when off
  std::uint64_t sequence;
};
static_assert(sizeof(HitSteps) == 24, "HitSteps is a file layout");

// Every photon's end, for photon-by-photon comparisons (with Geant4, say):
// the final state (at detection for a hit), history bits, the channel of a
// hit (-1 otherwise) and how many boundaries it reached, Rayleigh scatters
// and bulk reemissions it made. A fixed 72-byte record; as a NumPy dtype
// (TRACK_DTYPE):
//   [("event","<u4"),("photon","<u4"),("pos","<f4",(3,)),("dir","<f4",(3,)),
//    ("pol","<f4",(3,)),("wavelength","<f4"),("time","<f4"),("history","<u4"),
//    ("channel","<i4"),("boundaries","<u4"),("scatters","<u4"),("reemissions","<u4")]
struct TrackRecord {
  std::uint32_t event;
  std::uint32_t photon;
  float position[3];
  float direction[3];
  float polarization[3];
  float wavelength;
  float time;
  std::uint32_t history;
  std::int32_t channel;
  std::uint32_t boundaries;
  std::uint32_t scatters;
  std::uint32_t reemissions;
};
static_assert(sizeof(TrackRecord) == 72, "TrackRecord is a file layout");

struct EngineOptions {
  std::size_t threads = 0;         // 0: one per core
  std::size_t chunk = 2048;        // photons per parallel task
  bool keep_final_states = false;  // return every photon's final state too
  bool keep_tracks = false;        // return a TrackRecord per photon
  // Steps recorded per photon in HitSteps::sequence (and per track with
  // keep_tracks): 0 (off, no cost) to kMaxStepHistory.
  std::uint32_t step_history = 0;
};

struct SimulationResult {
  std::vector<HitRecord> hits;  // in input photon order
  Diagnostics diagnostics;
  PhotonBatch final_states;         // filled when EngineOptions::keep_final_states
  std::vector<TrackRecord> tracks;  // filled when EngineOptions::keep_tracks, input order
  std::vector<HitSteps> hit_steps;  // one per hit, same order
  // With keep_tracks and step_history > 0: each track's steps made and sequence.
  std::vector<HitSteps> track_steps;
};

class Engine final {
 public:
  // Throws SetupError for a step_history above kMaxStepHistory.
  Engine(std::shared_ptr<const Detector> detector, EngineOptions options = {});

  // Simulates the batch with this seed. Thread-safe: concurrent calls share
  // the pool. Throws Failure(invalid_argument) for inconsistent arrays.
  SimulationResult simulate(const PhotonBatch& photons, std::uint64_t seed) const;

  const Detector& detector() const noexcept { return *detector_; }
  EmbreeTracer tracer() const { return scene_->tracer(true); }
  std::size_t threads() const noexcept { return pool_->size(); }
  // Bytes Embree holds for this engine's scene.
  std::int64_t embree_bytes() const noexcept { return scene_->embree_bytes(); }
  const EngineOptions& options() const noexcept { return options_; }

 private:
  template <class Recorder>
  SimulationResult run(const PhotonBatch& photons, std::uint64_t seed) const;

  std::shared_ptr<const Detector> detector_;
  std::unique_ptr<EmbreeScene> scene_;
  std::unique_ptr<ThreadPool> pool_;
  EngineOptions options_;
};

// True if a photon's final state is a hit on a channel; sets *channel.
bool photon_hit_channel(const Photon& photon, const ParamsView& params, std::uint32_t* channel);

}  // namespace acheron::optics
