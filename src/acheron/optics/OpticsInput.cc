// The optics input types' constructors (properties, time profiles,
// materials) and property resampling.
#include "acheron/optics/OpticsTables.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>

#include "acheron/core/Error.hh"
#include "acheron/optics/Tables.hh"

namespace acheron::optics {

Property Property::constant(double value) {
  Property p;
  p.kind = Kind::constant;
  p.value = value;
  return p;
}

Property Property::table(std::vector<std::pair<double, double>> points) {
  Property p;
  p.kind = Kind::table;
  p.points = std::move(points);
  return p;
}

Property Property::table(const std::vector<double>& x, const std::vector<double>& values) {
  if (x.size() != values.size()) {
    throw SetupError(
        fmt::format("property table has {} x values but {} values (each x needs exactly one value) "
                    "give both lists the same length",
                    x.size(), values.size()));
  }
  std::vector<std::pair<double, double>> points;
  points.reserve(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) points.emplace_back(x[i], values[i]);
  return table(std::move(points));
}

TimeProfile TimeProfile::fixed(double delay) {
  TimeProfile p;
  p.kind = Kind::delay;
  p.delay = delay;
  return p;
}

TimeProfile TimeProfile::exponential(double decay, double rise) {
  return mixture({TimeExponential{decay, 1.0, rise}});
}

TimeProfile TimeProfile::mixture(std::vector<TimeExponential> terms) {
  TimeProfile p;
  p.kind = Kind::exponentials;
  p.exponentials = std::move(terms);
  return p;
}

TimeProfile TimeProfile::table(Property cdf) {
  TimeProfile p;
  p.kind = Kind::table;
  p.cdf = std::move(cdf);
  return p;
}

MaterialInput MaterialInput::vacuum(std::string name) {
  MaterialInput m;
  m.name = std::move(name);
  m.refractive_index = Property::constant(1.0);
  m.absorption_length = Property::constant(1e6);
  m.scattering_length = Property::constant(1e6);
  return m;
}

std::vector<double> resample(const Property& property, double x0, double dx, int n) {
  std::vector<double> out(static_cast<std::size_t>(n), 0.0);
  if (property.kind == Property::Kind::constant) {
    std::fill(out.begin(), out.end(), property.value);
  } else if (property.kind == Property::Kind::table && !property.points.empty()) {
    const auto& pts = property.points;
    for (int i = 0; i < n; ++i) {
      const double x = x0 + dx * i;
      // First point with pts.x > x; the segment is [it - 1, it].
      const auto it = std::upper_bound(pts.begin(), pts.end(), x,
                                       [](double v, const auto& p) { return v < p.first; });
      double v;
      if (it == pts.begin()) {
        v = pts.front().second;
      } else if (it == pts.end()) {
        v = pts.back().second;
      } else {
        const auto& a = *(it - 1);
        const auto& b = *it;
        v = a.second + (b.second - a.second) * (x - a.first) / (b.first - a.first);
      }
      out[static_cast<std::size_t>(i)] = v;
    }
  }
  return out;
}

Property group_velocity_from_index(const Property& refractive_index) {
  const double c = static_cast<double>(kSpeedOfLight);
  switch (refractive_index.kind) {
    case Property::Kind::unset:
      throw SetupError(
          "group velocity needs a refractive index (none given) give refractive_index");
    case Property::Kind::constant:
      return Property::constant(c / refractive_index.value);
    case Property::Kind::table:
      break;
  }
  // In photon energy (E ~ 1/lambda) ascending, as Geant4 tabulates RINDEX.
  const auto& pts = refractive_index.points;
  std::vector<std::pair<double, double>> by_energy;  // (1/lambda, n)
  by_energy.reserve(pts.size());
  for (auto it = pts.rbegin(); it != pts.rend(); ++it) {
    if (!(it->first > 0)) {
      throw SetupError(
          fmt::format("refractive index point at {} nm (wavelengths must be > 0) correct the table",
                      it->first));
    }
    by_energy.emplace_back(1.0 / it->first, it->second);
  }
  if (by_energy.size() == 1) return Property::constant(c / by_energy[0].second);
  // v_g at a point of index n with slope dn/dlnE over one interval.
  const auto vg = [c](double n, double e0, double n0, double e1, double n1) {
    const double v = c / (n + (n1 - n0) / std::log(e1 / e0));
    return (v < 0 || v > c / n || !std::isfinite(v)) ? c / n : v;
  };
  std::vector<std::pair<double, double>> out;  // (wavelength, v_g)
  const std::size_t m = by_energy.size();
  const auto& [e_first, n_first] = by_energy[0];
  out.emplace_back(1 / e_first,
                   vg(n_first, e_first, n_first, by_energy[1].first, by_energy[1].second));
  for (std::size_t i = 0; i + 2 < m; ++i) {
    const auto& [e0, n0] = by_energy[i];
    const auto& [e1, n1] = by_energy[i + 1];
    out.emplace_back(2 / (e0 + e1), vg(0.5 * (n0 + n1), e0, n0, e1, n1));
  }
  const auto& [e0, n0] = by_energy[m - 2];
  const auto& [e1, n1] = by_energy[m - 1];
  out.emplace_back(1 / e1, vg(n1, e0, n0, e1, n1));
  std::reverse(out.begin(), out.end());  // wavelength ascending
  return Property::table(std::move(out));
}
}  // namespace acheron::optics
