// Load-time checks of the optics input (photon-physics.md §4): property
// shapes, probabilities, CDFs, time profiles and probability sums.
#include "acheron/optics/OpticsTables.hh"
#include "acheron/optics/OpticsTablesInternal.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>

#include "acheron/core/Error.hh"
#include "acheron/optics/Tables.hh"

namespace acheron::optics::tables_check {

std::string owner_label(std::string_view kind, const std::string& name, std::size_t index) {
  if (name.empty()) return fmt::format("{} #{}", kind, index);
  return fmt::format("{} '{}'", kind, name);
}

// " at 400 nm" for a table point, "" for a constant.
std::string where(const Property& p, double x, std::string_view x_unit) {
  if (p.kind != Property::Kind::table) return "";
  return fmt::format(" at {:g} {}", x, x_unit);
}

// Shape of a property: finite values, non-empty table with strictly
// ascending finite x.
void check_shape(const Property& p, const std::string& owner, std::string_view name,
                 std::string_view x_unit) {
  if (p.kind == Property::Kind::constant && !std::isfinite(p.value)) {
    throw SetupError(fmt::format("{}: {} is {} (values must be finite numbers) give a finite value",
                                 owner, name, p.value));
  }
  if (p.kind != Property::Kind::table) return;
  if (p.points.empty()) {
    throw SetupError(
        fmt::format("{}: {} is a table without points (a table needs at least one (x, value) pair) "
                    "give points or a constant",
                    owner, name));
  }
  for (std::size_t i = 0; i < p.points.size(); ++i) {
    const auto [x, v] = p.points[i];
    if (!std::isfinite(x) || !std::isfinite(v)) {
      throw SetupError(fmt::format(
          "{}: {} has the non-finite point ({}, {}) (table entries must be finite numbers) "
          "correct the table",
          owner, name, x, v));
    }
    if (i > 0 && !(x > p.points[i - 1].first)) {
      throw SetupError(fmt::format(
          "{}: {} has x = {:g} {} after {:g} {} (x must be strictly ascending) sort the table "
          "and remove duplicate x",
          owner, name, x, x_unit, p.points[i - 1].first, x_unit));
    }
  }
}

void require_set(const Property& p, const std::string& owner, std::string_view name,
                 std::string_view why) {
  if (!p.is_set()) {
    throw SetupError(fmt::format("{}: {} is not set ({}) give a constant or (x, value) pairs",
                                 owner, name, why));
  }
}

// Calls check(x, value) for every input value; x is NaN for a constant.
void for_each_value(const Property& p, const std::function<void(double, double)>& check) {
  if (p.kind == Property::Kind::constant) check(std::nan(""), p.value);
  if (p.kind == Property::Kind::table) {
    for (const auto& [x, v] : p.points) check(x, v);
  }
}

void check_positive_length(const Property& p, const std::string& owner, std::string_view name) {
  check_shape(p, owner, name, "nm");
  for_each_value(p, [&](double x, double v) {
    if (!(v > 0) || v > static_cast<double>(FLT_MAX)) {
      throw SetupError(
          fmt::format("{}: {} is {} mm{} (lengths must be > 0 and finite in float) give a positive "
                      "length; use a large value such as 1e12 mm for 'never'",
                      owner, name, v, where(p, x, "nm")));
    }
  });
}

void check_probability(const Property& p, const std::string& owner, std::string_view name) {
  check_shape(p, owner, name, "nm");
  for_each_value(p, [&](double x, double v) {
    if (v < 0 || v > 1) {
      throw SetupError(
          fmt::format("{}: {} is {}{} (a probability must lie in [0, 1]) correct the value", owner,
                      name, v, where(p, x, "nm")));
    }
  });
}

void check_cdf(const Property& p, const std::string& owner, std::string_view name,
               std::string_view x_unit) {
  check_shape(p, owner, name, x_unit);
  if (p.kind != Property::Kind::table) {
    throw SetupError(fmt::format(
        "{}: {} is a constant (a CDF must rise from 0 to 1) give (x, value) pairs", owner, name));
  }
  const auto& pts = p.points;
  for (std::size_t i = 1; i < pts.size(); ++i) {
    if (pts[i].second < pts[i - 1].second) {
      throw SetupError(fmt::format(
          "{}: {} decreases from {} to {} between {:g} and {:g} {} (a CDF must be "
          "non-decreasing) correct the table",
          owner, name, pts[i - 1].second, pts[i].second, pts[i - 1].first, pts[i].first, x_unit));
    }
  }
  if (std::abs(pts.front().second) > kTolerance) {
    throw SetupError(
        fmt::format("{}: {} starts at {} (a CDF must start at 0) begin the table with a 0 entry",
                    owner, name, pts.front().second));
  }
  if (std::abs(pts.back().second - 1.0) > kTolerance) {
    throw SetupError(
        fmt::format("{}: {} ends at {} (a CDF must end at 1 within {:g}) normalise the table",
                    owner, name, pts.back().second, kTolerance));
  }
}

// A resampled CDF made exactly monotone and bounded after rounding.
std::vector<double> tidy_cdf(std::vector<double> cdf) {
  double running = 0;
  for (double& v : cdf) {
    v = std::clamp(v, 0.0, 1.0);
    running = std::max(running, v);
    v = running;
  }
  return cdf;
}

double grid_wavelength(std::size_t i) {
  return static_cast<double>(kWavelengthMin) + static_cast<double>(kWavelengthStep) * i;
}

std::vector<double> on_wavelength_grid(const Property& p) {
  return resample(p, kWavelengthMin, kWavelengthStep, kWavelengthPoints);
}

// A time (delay, decay or rise constant, table point) of a time profile:
// finite, >= 0 (> 0 if `positive`) and at most kMaxReemissionDelay.
void check_time(double t, bool positive, const std::string& owner, std::string_view name) {
  if (!std::isfinite(t) || t < 0 || (positive && t == 0)) {
    throw SetupError(fmt::format("{}: {} is {} ns (it must be a finite time {} 0) correct it",
                                 owner, name, t, positive ? ">" : ">="));
  }
  if (t > kMaxReemissionDelay) {
    throw SetupError(fmt::format(
        "{}: {} is {:g} ns (reemission times are limited to {:g} ns, where float photon times "
        "still resolve 100 ns) give a shorter time",
        owner, name, t, kMaxReemissionDelay));
  }
}

// Load-time checks of a set time profile; `owner` names the component or
// surface. Messages use the detector file's keys.
void check_time_profile(const TimeProfile& p, const std::string& owner) {
  using Kind = TimeProfile::Kind;
  check_time(p.delay, false, owner, "time_delay");
  if ((p.kind == Kind::exponentials) != !p.exponentials.empty() ||
      (p.kind == Kind::table) != p.cdf.is_set()) {
    throw SetupError(fmt::format(
        "{}: the time profile mixes kinds (one profile is a delay, exponentials or a time_cdf "
        "table) build it with one of TimeProfile::fixed, exponential, mixture or table",
        owner));
  }
  for (std::size_t i = 0; i < p.exponentials.size(); ++i) {
    const TimeExponential& e = p.exponentials[i];
    const std::string term = p.exponentials.size() == 1 ? std::string("time_constant")
                                                        : fmt::format("time_constants[{}]", i);
    check_time(e.decay, true, owner, term + " decay time");
    check_time(e.rise, false, owner, term + " rise time");
    if (!std::isfinite(e.weight) || !(e.weight > 0)) {
      throw SetupError(fmt::format(
          "{}: {} has weight {} (weights must be finite and > 0) correct it or drop the term",
          owner, term, e.weight));
    }
  }
  if (p.kind == Kind::table) {
    check_cdf(p.cdf, owner, "time_cdf", "ns");
    for (const auto& point : p.cdf.points)
      check_time(point.first, false, owner, "a time_cdf point");
  }
}

// Sum of resampled probability tables must stay <= 1 (+ tolerance) everywhere.
void check_sum(const std::vector<const std::vector<double>*>& tables, const std::string& owner,
               std::string_view names, std::string_view model) {
  for (std::size_t i = 0; i < static_cast<std::size_t>(kWavelengthPoints); ++i) {
    double sum = 0;
    for (const auto* t : tables) sum += (*t)[i];
    if (sum > 1 + kTolerance) {
      throw SetupError(fmt::format(
          "{}: {} is {} at {:g} nm (the {} model's probabilities must sum to at most 1) lower "
          "one of them",
          owner, names, sum, grid_wavelength(i), model));
    }
  }
}

}  // namespace acheron::optics::tables_check
