// A detector: materials and surfaces (OpticsTables), triangle geometry with
// solids and PMT channels, and the engine settings, read from a TOML detector
// description (docs/optics.md) or built from the embedded default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/optics/Geometry.hh"
#include "acheron/optics/OpticsTables.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

struct DetectorSettings {
  std::uint32_t max_steps = 1000;  // Chroma's and ChAR0N's value
  // Time of flight at the group velocity, as Geant4 and RAT; phase (c/n) is
  // Chroma's choice.
  TimingMode timing = TimingMode::group;
  bool chroma_compat = false;
  // PMT arrays share one prototype mesh (Embree instancing); false flattens
  // every PMT into the triangle list (same results, for A/B comparisons).
  bool instancing = true;
};

// Parameters of the embedded default: a water-filled spherical Cherenkov
// detector with inward-facing R7081-like 10-inch PMTs (PmtModel.hh) at ~30 %
// photocathode coverage inside a partly reflective liner. The sphere radius
// scales with the PMT count to keep the coverage.
struct DefaultDetectorOptions {
  int pmts = 400;
  double coverage = 0.30;     // N pi a^2 / (4 pi R^2), R the radius of the PMT equators
  double pmt_radius = 111.0;  // a (mm): the photocathode's rim on the bulb
  int pmt_segments = 32;      // azimuthal divisions of each PMT
  double pmt_arc_step = 6.0;  // degrees per step along the bulb's arcs
  int wall_segments = 96;
  bool reflective_wall = true;  // false: a black tank wall
};

struct GdmlOptions;  // Gdml.hh

class Detector final {
 public:
  // Reads a detector file: a .gdml file with load_gdml and default options,
  // anything else as TOML (mesh files are found relative to its directory).
  static Detector load(const std::filesystem::path& path);
  // Reads a GDML geometry (Gdml.hh, docs/optics.md "GDML detectors").
  static Detector load_gdml(const std::filesystem::path& path, const GdmlOptions& options);
  // A detector from its parts; the geometry is finalized here if it is not
  // yet. Throws SetupError if the geometry has no solids or names a material
  // or surface index the tables do not have.
  static Detector from_parts(std::string name, Geometry geometry, OpticsTables tables,
                             const DetectorSettings& settings);
  static Detector parse(std::string_view toml, const std::string& source,
                        const std::filesystem::path& base_dir = ".");
  // The embedded default (options.pmts = 29000 gives the benchmark-scale one).
  static Detector default_detector(const DefaultDetectorOptions& options = {});
  // The TOML text of the embedded default, as `acheron detector default` prints it.
  static std::string default_toml(const DefaultDetectorOptions& options = {});

  Detector(Detector&&) noexcept = default;
  Detector& operator=(Detector&&) noexcept = default;

  const std::string& name() const noexcept { return name_; }
  const Geometry& geometry() const noexcept { return *geometry_; }
  const OpticsTables& tables() const noexcept { return *tables_; }
  const DetectorSettings& settings() const noexcept { return settings_; }

  // Every view the stepping loop needs, for this seed.
  ParamsView params(std::uint64_t seed) const;

  // Human-readable summary for `acheron detector info`.
  std::string summary() const;
  // Validation for `acheron detector check`: open meshes (edges not shared by
  // exactly two triangles), inconsistent material codes between neighbouring
  // solids, overlapping PMTs. Empty when all is well.
  // on_progress (optional) follows the work: called with the stage ("meshes",
  // "scene", "materials", "overlaps"), the solids checked so far and the
  // total (each solid counted once per stage that visits it), at most every
  // 64 solids and when a stage starts and ends; the last call has done == total.
  using CheckProgress =
      std::function<void(std::string_view stage, std::uint64_t done, std::uint64_t total)>;
  std::vector<std::string> check(const CheckProgress& on_progress = {}) const;

 private:
  Detector() = default;
  std::string name_;
  std::unique_ptr<Geometry> geometry_;
  std::unique_ptr<OpticsTables> tables_;
  DetectorSettings settings_;
};

// The channels as JSON, for building RAT's PMTINFO and similar tables:
// {"detector": name, "channels": [{"id", "type", "copynumber", "volume",
// "solid", "position": [x, y, z] (mm), "direction": [x, y, z]}, ...]}, id
// being the channel index hits report (docs/optics.md).
std::string channels_json(const Detector& detector);

}  // namespace acheron::optics
