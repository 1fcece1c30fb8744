// The engine benchmark behind `acheron photon bench`: photons/s and steps/s
// of the stepping loop, the raw Embree ray-cast rate for the same rays (the
// limit for the loop), and the thread scaling, all measured in one run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "acheron/optics/Detector.hh"

namespace acheron::optics {

struct BenchOptions {
  std::uint32_t photons = 500000;      // Chroma's benchmark.py: 500k isotropic, 400-800 nm
  std::size_t threads = 2;             // compared against 1 thread
  std::uint32_t ray_sample = 1000000;  // steps recorded for the raw ray-cast measurement
  std::uint64_t seed = 1;
  int repeats = 3;  // rounds; each measurement keeps its best
  // > 0: also time the 1-thread loop recording this many steps per photon
  // (EngineOptions::step_history) against the loop without.
  std::uint32_t step_history = 0;
  // Progress, for a caller that shows it: called as each timed loop starts
  // (phase "1 thread", "N threads" or "step history") and once at the end
  // (phase "done"), with the photons simulated so far and in all the rounds.
  std::function<void(std::string_view phase, std::uint64_t done, std::uint64_t total)> on_progress;
};

struct BenchReport {
  std::uint32_t photons = 0;
  std::size_t threads = 0;
  double seconds_1 = 0, seconds_n = 0;  // stepping loop, 1 and N threads
  std::uint64_t steps = 0;
  std::uint64_t hits = 0;
  double photons_per_s_1 = 0, photons_per_s_n = 0;
  double steps_per_s_1 = 0, steps_per_s_n = 0;
  double raw_casts_per_s = 0;     // 1 thread, same rays
  double steps_vs_raw = 0;        // steps_per_s_1 / raw_casts_per_s
  double thread_scaling = 0;      // photons_per_s_n / photons_per_s_1
  double scene_seconds = 0;       // building the Embree scene (once per engine)
  std::int64_t embree_bytes = 0;  // Embree's memory for the scene
  std::uint32_t step_history = 0;
  double seconds_steps = 0;   // 1 thread, step history on (0 unless step_history > 0)
  double steps_cost = 0;      // seconds_steps / seconds_1
  std::string table() const;  // includes the ratios against their targets
};

BenchReport run_bench(std::shared_ptr<const Detector> detector, const BenchOptions& options);

}  // namespace acheron::optics
