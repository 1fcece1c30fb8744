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
  if (o.pmts > 5000) o.pmt_segments = 16;  // keep the benchmark-scale mesh to a few M triangles
  return std::make_shared<const optics::Detector>(optics::Detector::default_detector(o));
}

}  // namespace acheron::app
