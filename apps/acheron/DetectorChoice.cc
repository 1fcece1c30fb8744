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
}

std::shared_ptr<const optics::Detector> load_detector(const DetectorChoice& c) {
  if (!c.file.empty()) {
    if (!c.pmt_pattern.empty()) {
      if (std::filesystem::path(c.file).extension() != ".gdml") {
        throw SetupError("--pmt-pattern applies to GDML detectors (" + c.file +
                         " is not a .gdml file) drop the option or give a GDML file");
      }
      optics::GdmlOptions g;
      g.pmt_pattern = c.pmt_pattern;
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
