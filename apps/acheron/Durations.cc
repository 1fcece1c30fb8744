#include "Durations.hh"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "Commands.hh"

namespace acheron::app {
namespace {

void check_range(const std::string& name, double s, DurationRange range) {
  if (!(s >= range.min_s && s <= range.max_s)) {
    throw CLI::ValidationError(name, "must be between " + format_duration(range.min_s) + " and " +
                                         format_duration(range.max_s));
  }
}

}  // namespace

double parse_duration(const std::string& text) {
  // The number (digits, sign, point, exponent), then the unit.
  const std::size_t unit_at = text.find_first_not_of("0123456789.+-eE");
  const std::string number = text.substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "" : text.substr(unit_at);
  double value = 0;
  std::size_t used = 0;
  try {
    value = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (number.empty() || used != number.size() || !std::isfinite(value)) {
    throw std::invalid_argument("'" + text + "' is not a duration (a number and a unit: 500ms, " +
                                "5s, 2m)");
  }
  if (value < 0) throw std::invalid_argument("'" + text + "' is negative");
  static const std::pair<const char*, double> kUnits[] = {
      {"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3}, {"s", 1.0}, {"m", 60.0}, {"h", 3600.0}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) return value * scale;
  }
  if (unit.empty()) {
    throw std::invalid_argument("'" + text + "' has no unit (write " + number + "s, " + number +
                                "ms, ...; units ns, us, ms, s, m, h)");
  }
  throw std::invalid_argument("'" + text + "': unknown unit '" + unit +
                              "' (units ns, us, ms, s, m, h)");
}

std::string format_duration(double s) {
  char buf[64];
  if (s >= 3600 && std::fmod(s, 3600) == 0) {
    std::snprintf(buf, sizeof buf, "%gh", s / 3600);
  } else if (s >= 60 && std::fmod(s, 60) == 0) {
    std::snprintf(buf, sizeof buf, "%gm", s / 60);
  } else if (s > 0 && s < 1) {
    std::snprintf(buf, sizeof buf, "%gms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%gs", s);
  }
  return buf;
}

CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name, double& seconds,
                                 const std::string& description, DurationRange range,
                                 bool bare_seconds) {
  return cmd
      ->add_option_function<std::string>(
          name,
          [&seconds, name, range, bare_seconds](const std::string& text) {
            double s = 0;
            try {
              s = parse_duration(text);
            } catch (const std::invalid_argument& e) {
              char* end = nullptr;
              const double plain = std::strtod(text.c_str(), &end);
              if (!bare_seconds || end == text.c_str() || *end != '\0' || !std::isfinite(plain)) {
                throw CLI::ValidationError(name, e.what());
              }
              std::fprintf(stderr,
                           "acheron: warning: %s %s without a unit is read as seconds; write %s "
                           "(plain numbers will be refused in a later release)\n",
                           name.c_str(), text.c_str(), (text + "s").c_str());
              s = plain;
            }
            check_range(name, s, range);
            seconds = s;
          },
          description)
      ->type_name("DURATION")
      ->default_str(format_duration(seconds));
}

void add_deprecated_duration(CLI::App* cmd, const std::string& old_name,
                             const std::string& new_name, double unit_s, double& seconds,
                             DurationRange range) {
  cmd->add_option_function<double>(
         old_name,
         [&seconds, old_name, new_name, unit_s, range](double value) {
           const double s = value * unit_s;
           warn_deprecated(old_name, new_name + " " + format_duration(s));
           check_range(old_name, s, range);
           seconds = s;
         },
         "deprecated: " + new_name)
      ->group("");  // hidden from --help
}

}  // namespace acheron::app
