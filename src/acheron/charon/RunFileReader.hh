// Reading an asynchronous-mode run file (RunFile.hh has the layout) back
// into memory: tests, tools and C++ users that want the hits of a run.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "acheron/charon/RunFile.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::charon {

// A run file read back: every event in file order, Hits::steps set for the
// events that carry step data (never for version 1 files).
struct RunContents {
  int version = 0;
  std::string run_name;
  wire::charon::DetectorInfo detector;
  std::vector<wire::charon::Hits> events;
};

// Reads a whole run file (version 1 or 2). Throws SetupError naming the
// file and what is wrong with it.
RunContents read_run_file(const std::filesystem::path& path);

}  // namespace acheron::charon
