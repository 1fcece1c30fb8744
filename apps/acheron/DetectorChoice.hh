// The detector a command works with: `--detector FILE` or the embedded
// default (`--pmts N` sets its PMT count). Shared by the photon commands and
// the broker, which must expect the same detector its workers load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "acheron/optics/Detector.hh"

namespace acheron::app {

struct DetectorChoice {
  std::string file;
  int pmts = 0;
  std::string pmt_pattern;  // GDML: volumes whose name matches are sensitive
  double tolerance = 0;     // GDML: meshing tolerance in mm (0: GdmlOptions' default)
};

void add_detector_options(CLI::App* cmd, DetectorChoice& c);
// on_mesh_progress: for a GDML file, the meshing's progress
// (GdmlOptions::on_mesh_progress), for a command that shows it.
std::shared_ptr<const optics::Detector> load_detector(
    const DetectorChoice& c,
    const std::function<void(std::uint64_t done, std::uint64_t total)>& on_mesh_progress = {});

}  // namespace acheron::app
