// Durations on the command line: a number with a unit, as in 500ms, 5s, 2m,
// 1.5h (units ns, us, ms, s, m, h). Every option that is a length of time
// takes one (docs/cli.md, "Durations").
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

namespace acheron::app {

// Seconds as a whole number of milliseconds (rounded up, so a small
// timeout never becomes 0), saturating at a year.
inline std::chrono::milliseconds to_duration(double seconds) {
  const double ms = std::ceil(std::min(seconds, 365 * 86400.0) * 1e3);
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms > 0 ? ms : 0));
}

// Seconds of a duration; throws std::invalid_argument naming what is wrong.
double parse_duration(const std::string& text);
// A duration as the help shows defaults: 500ms, 2.5s, 2m.
std::string format_duration(double seconds);

struct DurationRange {
  double min_s = 0;
  double max_s = 1e9;
};

// --NAME DURATION, stored in `seconds` (its value is the default shown).
// bare_seconds: the option took plain seconds before, so a number without a
// unit is still read as seconds, with a warning to write the unit.
CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name, double& seconds,
                                 const std::string& description, DurationRange range = {},
                                 bool bare_seconds = false);

// An old spelling kept for a release: --OLD NUMBER in units of unit_s
// (0.001 for --timeout-ms), hidden from --help, stored in `seconds`, with a
// warning that names the new spelling.
void add_deprecated_duration(CLI::App* cmd, const std::string& old_name,
                             const std::string& new_name, double unit_s, double& seconds,
                             DurationRange range = {});

}  // namespace acheron::app
