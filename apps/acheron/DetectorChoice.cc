#include "DetectorChoice.hh"

#include <filesystem>

#include "acheron/core/Error.hh"
#include "acheron/optics/Gdml.hh"

namespace acheron::app {

void add_detector_options(CLI::App* cmd, DetectorChoice& c) {
  cmd->add_option(
      "--detector", c.file,
      "detector file (TOML, or GDML by its .gdml extension); default: the embedded detector");
  cmd->add_option("--pmts", c.pmts, "PMT count of the embedded default (e.g. 29000)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--pmt-pattern", c.pmt_pattern,
                  "GDML: logical volumes whose whole name matches this RE2 pattern are PMTs "
                  "(besides those with <auxiliary auxtype=\"SensDet\"/>)");
  cmd->add_option("--tolerance", c.tolerance,
                  "GDML: largest distance (mm) between a curved surface and its triangles "
                  "(default 0.2, or 1e-4 of a solid's size when larger)")
      ->check(CLI::Range(1e-4, 1e3));
}

std::shared_ptr<const optics::Detector> load_detector(
    const DetectorChoice& c,
    const std::function<void(std::uint64_t done, std::uint64_t total)>& on_mesh_progress) {
  if (c.file.empty() && (!c.pmt_pattern.empty() || c.tolerance > 0)) {
    throw SetupError(
        "--pmt-pattern and --tolerance apply to GDML detectors (no detector file is given, "
        "so the embedded TOML detector is used) give a .gdml file or drop the option");
  }
  if (!c.file.empty()) {
    const bool gdml = std::filesystem::path(c.file).extension() == ".gdml";
    if ((!c.pmt_pattern.empty() || c.tolerance > 0) && !gdml) {
      throw SetupError("--pmt-pattern and --tolerance apply to GDML detectors (" + c.file +
                       " is not a .gdml file) drop the option or give a GDML file");
    }
    if (gdml) {
      optics::GdmlOptions g;
      g.pmt_pattern = c.pmt_pattern;
      if (c.tolerance > 0) g.tolerance_mm = c.tolerance;
      g.on_mesh_progress = on_mesh_progress;
      return std::make_shared<const optics::Detector>(optics::Detector::load_gdml(c.file, g));
    }
    return std::make_shared<const optics::Detector>(optics::Detector::load(c.file));
  }
  optics::DefaultDetectorOptions o;
  if (c.pmts > 0) o.pmts = c.pmts;
  // Every PMT is an instance of one R7081-like mesh (4,416 triangles), so
  // the 29,000-PMT detector (128 M triangles flattened) loads in about a
  // second in a few tens of MB.
  return std::make_shared<const optics::Detector>(optics::Detector::default_detector(o));
}

}  // namespace acheron::app
