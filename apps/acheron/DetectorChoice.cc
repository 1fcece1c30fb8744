#include "DetectorChoice.hh"

namespace acheron::app {

void add_detector_options(CLI::App* cmd, DetectorChoice& c) {
  cmd->add_option(
      "--detector", c.file,
      "detector file (TOML, or GDML by its .gdml extension); default: the embedded detector");
  cmd->add_option("--pmts", c.pmts, "PMT count of the embedded default (e.g. 29000)")
      ->check(CLI::Range(1, 1000000));
}

std::shared_ptr<const optics::Detector> load_detector(const DetectorChoice& c) {
  if (!c.file.empty()) {
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
