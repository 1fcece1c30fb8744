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

namespace {

// Tolerance of the load-time checks on probability sums and CDF ends
// (photon-physics.md §4).
constexpr double kTolerance = 1e-6;

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

// Offsets into the arena while it is being filled; turned into pointers
// once it is complete.
struct TimeProfileOffsets {
  float delay = 0;
  std::uint32_t n_exponentials = 0, n_points = 0;
  std::size_t exponentials = 0, times = 0, cdf = 0;
};
struct ComponentOffsets {
  std::size_t absorption_length, reemission_prob, wavelength_cdf;
  TimeProfileOffsets time;
};
struct MaterialOffsets {
  std::size_t refractive_index, absorption_length, scattering_length, group_velocity;
  std::uint32_t component_begin, component_count;
};
struct SurfaceOffsets {
  SurfaceModel model;
  std::size_t detect, absorb, reemit, reflect_diffuse, reflect_specular, eta, k, reemission_cdf;
  TimeProfileOffsets reemission_time;
  float thickness;
  std::uint32_t transmissive;
  std::uint32_t n_angles;
  std::size_t angles, reflect, transmit;
  SurfaceType type;
  SurfaceFinish finish;
  float sigma_alpha;
  bool unified;
  std::size_t reflectivity, efficiency, transmittance, specular_spike, specular_lobe, backscatter;
};

// The view of packed time-profile storage.
TimeProfileData time_profile_view(const TimeProfileOffsets& o, const float* base) {
  TimeProfileData d;
  d.delay = o.delay;
  d.n_exponentials = o.n_exponentials;
  d.exponentials = o.n_exponentials ? base + o.exponentials : nullptr;
  d.n_points = o.n_points;
  d.times = o.n_points ? base + o.times : nullptr;
  d.cdf = o.n_points ? base + o.cdf : nullptr;
  return d;
}

}  // namespace

OpticsTables::OpticsTables(const OpticsInput& input) {
  std::vector<MaterialOffsets> material_offsets;
  std::vector<ComponentOffsets> component_offsets;
  std::vector<SurfaceOffsets> surface_offsets;

  auto append = [this](const std::vector<double>& values) {
    const std::size_t offset = arena_.size();
    for (double v : values) arena_.push_back(static_cast<float>(v));
    return offset;
  };
  // A checked time profile into the arena: per exponential term the
  // cumulative normalised weight, the decay time and, for a rise time, the
  // second exponential's mean decay * rise / (decay + rise); a table at its
  // own points.
  auto pack_time = [&append](const TimeProfile& p) {
    TimeProfileOffsets o;
    o.delay = static_cast<float>(p.delay);
    if (p.kind == TimeProfile::Kind::exponentials) {
      double total = 0;
      for (const auto& e : p.exponentials) total += e.weight;
      std::vector<double> terms;
      double cumulative = 0;
      for (std::size_t i = 0; i < p.exponentials.size(); ++i) {
        const TimeExponential& e = p.exponentials[i];
        cumulative += e.weight / total;
        terms.push_back(i + 1 == p.exponentials.size() ? 1.0 : cumulative);
        terms.push_back(e.decay);
        terms.push_back(e.rise > 0 ? e.decay * e.rise / (e.decay + e.rise) : 0.0);
      }
      o.n_exponentials = static_cast<std::uint32_t>(p.exponentials.size());
      o.exponentials = append(terms);
    } else if (p.kind == TimeProfile::Kind::table) {
      std::vector<double> times, cdf;
      for (const auto& [t, v] : p.cdf.points) {
        times.push_back(t);
        cdf.push_back(v);
      }
      o.n_points = static_cast<std::uint32_t>(times.size());
      o.times = append(times);
      o.cdf = append(tidy_cdf(std::move(cdf)));
    }
    return o;
  };

  for (std::size_t mi = 0; mi < input.materials.size(); ++mi) {
    const MaterialInput& m = input.materials[mi];
    const std::string owner = owner_label("material", m.name, mi);
    if (!m.name.empty() && std::find(material_names_.begin(), material_names_.end(), m.name) !=
                               material_names_.end()) {
      throw SetupError(fmt::format(
          "{} is defined twice (detector files refer to materials by name) rename one", owner));
    }
    require_set(m.refractive_index, owner, "refractive_index", "every material needs n > 0");
    require_set(m.absorption_length, owner, "absorption_length",
                "every material needs an absorption length in mm");
    require_set(m.scattering_length, owner, "scattering_length",
                "every material needs a scattering length in mm");
    check_shape(m.refractive_index, owner, "refractive_index", "nm");
    for_each_value(m.refractive_index, [&](double x, double v) {
      if (!(v > 0) || v > static_cast<double>(FLT_MAX)) {
        throw SetupError(
            fmt::format("{}: refractive_index is {}{} (n must be > 0 and finite) correct the value",
                        owner, v, where(m.refractive_index, x, "nm")));
      }
    });
    check_positive_length(m.absorption_length, owner, "absorption_length");
    check_positive_length(m.scattering_length, owner, "scattering_length");
    if (m.group_velocity.is_set()) {
      check_shape(m.group_velocity, owner, "group_velocity", "nm");
      for_each_value(m.group_velocity, [&](double x, double v) {
        if (!(v > 0) || v > static_cast<double>(kSpeedOfLight) * (1 + 1e-9)) {
          throw SetupError(fmt::format(
              "{}: group_velocity is {}{} mm/ns (it must be > 0 and at most c = 299.79 mm/ns) "
              "correct the value",
              owner, v, where(m.group_velocity, x, "nm")));
        }
      });
    }

    MaterialOffsets mo{};
    const auto n = on_wavelength_grid(m.refractive_index);
    mo.refractive_index = append(n);
    mo.absorption_length = append(on_wavelength_grid(m.absorption_length));
    mo.scattering_length = append(on_wavelength_grid(m.scattering_length));
    mo.group_velocity = append(on_wavelength_grid(
        m.group_velocity.is_set() ? m.group_velocity
                                  : group_velocity_from_index(m.refractive_index)));
    mo.component_begin = static_cast<std::uint32_t>(component_offsets.size());
    mo.component_count = static_cast<std::uint32_t>(m.components.size());

    for (std::size_t ci = 0; ci < m.components.size(); ++ci) {
      const ReemissionComponentInput& c = m.components[ci];
      const std::string cowner = fmt::format("{} reemission component {}", owner, ci);
      constexpr std::string_view why =
          "every reemission component needs absorption_length, reemission_prob, wavelength_cdf "
          "and a time profile";
      require_set(c.absorption_length, cowner, "absorption_length", why);
      require_set(c.reemission_prob, cowner, "reemission_prob", why);
      require_set(c.wavelength_cdf, cowner, "wavelength_cdf", why);
      if (!c.time_profile.is_set()) {
        throw SetupError(fmt::format(
            "{}: the time profile is not set ({}) give time_constant, time_constants, time_cdf, "
            "time_profile or time_delay (0 for no delay)",
            cowner, why));
      }
      check_positive_length(c.absorption_length, cowner, "absorption_length");
      check_probability(c.reemission_prob, cowner, "reemission_prob");
      check_cdf(c.wavelength_cdf, cowner, "wavelength_cdf", "nm");
      check_time_profile(c.time_profile, cowner);
      ComponentOffsets co{};
      co.absorption_length = append(on_wavelength_grid(c.absorption_length));
      co.reemission_prob = append(on_wavelength_grid(c.reemission_prob));
      co.wavelength_cdf = append(tidy_cdf(on_wavelength_grid(c.wavelength_cdf)));
      co.time = pack_time(c.time_profile);
      component_offsets.push_back(co);
    }
    material_offsets.push_back(mo);
    material_names_.push_back(m.name);
  }

  for (std::size_t si = 0; si < input.surfaces.size(); ++si) {
    const SurfaceInput& s = input.surfaces[si];
    const std::string owner = owner_label("surface", s.name, si);
    if (!s.name.empty() &&
        std::find(surface_names_.begin(), surface_names_.end(), s.name) != surface_names_.end()) {
      throw SetupError(fmt::format(
          "{} is defined twice (detector files refer to surfaces by name) rename one", owner));
    }
    const auto model_value = static_cast<std::uint32_t>(s.model);
    if (model_value > static_cast<std::uint32_t>(SurfaceModel::unified)) {
      throw SetupError(fmt::format(
          "{}: model is {} (known models are 0 DEFAULT, 1 COMPLEX, 2 WLS, 3 DICHROIC, 4 UNIFIED) "
          "choose one of them",
          owner, model_value));
    }
    check_probability(s.detect, owner, "detect");
    check_probability(s.absorb, owner, "absorb");
    check_probability(s.reemit, owner, "reemit");
    check_probability(s.reflect_diffuse, owner, "reflect_diffuse");
    check_probability(s.reflect_specular, owner, "reflect_specular");
    check_shape(s.eta, owner, "eta", "nm");
    check_shape(s.k, owner, "k", "nm");
    if (s.reemission_cdf.is_set()) check_cdf(s.reemission_cdf, owner, "reemission_cdf", "nm");
    if (s.reemission_time.is_set()) {
      if (s.model != SurfaceModel::wls) {
        throw SetupError(fmt::format(
            "{}: a reemission time profile is set but the model is not WLS (only WLS surfaces "
            "reemit) remove the time keys or use model = \"wls\"",
            owner));
      }
      check_time_profile(s.reemission_time, owner);
    }
    if (!std::isfinite(s.thickness) || s.thickness < 0) {
      throw SetupError(fmt::format(
          "{}: thickness is {} nm (a film thickness must be finite and >= 0) correct it", owner,
          s.thickness));
    }

    const auto detect = on_wavelength_grid(s.detect);
    const auto absorb = on_wavelength_grid(s.absorb);
    const auto reemit = on_wavelength_grid(s.reemit);
    const auto diffuse = on_wavelength_grid(s.reflect_diffuse);
    const auto specular = on_wavelength_grid(s.reflect_specular);
    const auto eta = on_wavelength_grid(s.eta);
    const auto k = on_wavelength_grid(s.k);

    switch (s.model) {
      case SurfaceModel::standard:
        check_sum({&absorb, &detect, &diffuse, &specular}, owner,
                  "absorb + detect + reflect_diffuse + reflect_specular", "DEFAULT");
        break;
      case SurfaceModel::complex:
        for_each_value(s.eta, [&](double x, double v) {
          if (!(v > 0)) {
            throw SetupError(fmt::format(
                "{}: eta is {}{} (the COMPLEX model needs a film index eta > 0) give eta > 0",
                owner, v, where(s.eta, x, "nm")));
          }
        });
        require_set(s.eta, owner, "eta", "the COMPLEX model needs the film index eta > 0");
        for_each_value(s.k, [&](double x, double v) {
          if (v < 0) {
            throw SetupError(fmt::format(
                "{}: k is {}{} (an extinction coefficient cannot be negative) give k >= 0", owner,
                v, where(s.k, x, "nm")));
          }
        });
        break;
      case SurfaceModel::wls:
        check_sum({&absorb, &diffuse, &specular}, owner,
                  "absorb + reflect_diffuse + reflect_specular", "WLS");
        if (!s.reemission_cdf.is_set() &&
            std::any_of(reemit.begin(), reemit.end(), [](double v) { return v > 0; })) {
          throw SetupError(fmt::format(
              "{}: reemission_cdf is not set but reemit > 0 (a reemitted photon draws its "
              "wavelength from reemission_cdf) give reemission_cdf as (wavelength, cdf) pairs",
              owner));
        }
        break;
      case SurfaceModel::dichroic:
      case SurfaceModel::unified:
        break;
    }

    SurfaceOffsets so{};
    so.model = s.model;
    so.detect = append(detect);
    so.absorb = append(absorb);
    so.reemit = append(reemit);
    so.reflect_diffuse = append(diffuse);
    so.reflect_specular = append(specular);
    so.eta = append(eta);
    so.k = append(k);
    so.reemission_cdf =
        append(s.reemission_cdf.is_set() ? tidy_cdf(on_wavelength_grid(s.reemission_cdf))
                                         : std::vector<double>(kWavelengthPoints, 0.0));
    so.reemission_time = pack_time(s.reemission_time);
    so.thickness = static_cast<float>(s.thickness);
    so.transmissive = s.transmissive ? 1u : 0u;

    if (s.model == SurfaceModel::dichroic) {
      const std::size_t n_angles = s.angles.size();
      if (n_angles == 0) {
        throw SetupError(fmt::format(
            "{}: angles is empty (the DICHROIC model interpolates reflect and transmit between "
            "incidence angles) give at least one angle in rad",
            owner));
      }
      if (s.reflect.size() != n_angles || s.transmit.size() != n_angles) {
        throw SetupError(fmt::format(
            "{}: {} angles but {} reflect and {} transmit rows (each angle needs one reflect and "
            "one transmit row over wavelength) give one row per angle",
            owner, n_angles, s.reflect.size(), s.transmit.size()));
      }
      for (std::size_t a = 0; a < n_angles; ++a) {
        const double angle = s.angles[a];
        if (!std::isfinite(angle) || angle < 0 || angle > 1.5707963267948966 + kTolerance) {
          throw SetupError(fmt::format(
              "{}: angle {} is {} rad (incidence angles lie in [0, pi/2]) correct the angle", owner,
              a, angle));
        }
        if (a > 0 && !(angle > s.angles[a - 1])) {
          throw SetupError(fmt::format(
              "{}: angle {} is {} rad after {} rad (angles must be strictly ascending) sort them",
              owner, a, angle, s.angles[a - 1]));
        }
      }
      so.n_angles = static_cast<std::uint32_t>(n_angles);
      so.angles = append(s.angles);
      std::vector<std::vector<double>> reflect_rows, transmit_rows;
      for (std::size_t a = 0; a < n_angles; ++a) {
        const std::string row = fmt::format("reflect[{}]", a);
        const std::string trow = fmt::format("transmit[{}]", a);
        check_probability(s.reflect[a], owner, row);
        check_probability(s.transmit[a], owner, trow);
        reflect_rows.push_back(on_wavelength_grid(s.reflect[a]));
        transmit_rows.push_back(on_wavelength_grid(s.transmit[a]));
        check_sum({&reflect_rows.back(), &transmit_rows.back()}, owner,
                  fmt::format("{} + {} (angle {} rad)", row, trow, s.angles[a]), "DICHROIC");
      }
      so.reflect = arena_.size();
      for (const auto& r : reflect_rows) append(r);
      so.transmit = arena_.size();
      for (const auto& t : transmit_rows) append(t);
    }
    so.unified = s.model == SurfaceModel::unified;
    if (so.unified) {
      if (static_cast<std::uint32_t>(s.type) >
          static_cast<std::uint32_t>(SurfaceType::dielectric_metal)) {
        throw SetupError(
            fmt::format("{}: type is {} (the UNIFIED model knows 0 dielectric_dielectric and 1 "
                        "dielectric_metal) choose one of them",
                        owner, static_cast<std::uint32_t>(s.type)));
      }
      if (static_cast<std::uint32_t>(s.finish) >
          static_cast<std::uint32_t>(SurfaceFinish::groundfrontpainted)) {
        throw SetupError(
            fmt::format("{}: finish is {} (the UNIFIED model knows 0 polished, 1 ground, 2 "
                        "polishedfrontpainted and 3 groundfrontpainted) choose one of them",
                        owner, static_cast<std::uint32_t>(s.finish)));
      }
      if (s.type == SurfaceType::dielectric_metal && s.finish != SurfaceFinish::polished &&
          s.finish != SurfaceFinish::ground) {
        throw SetupError(fmt::format(
            "{}: a dielectric_metal surface has a painted finish (painted finishes belong to "
            "dielectric_dielectric surfaces) use polished or ground",
            owner));
      }
      if (!std::isfinite(s.sigma_alpha) || s.sigma_alpha < 0) {
        throw SetupError(fmt::format(
            "{}: sigma_alpha is {} rad (the facet slope spread must be finite and >= 0) correct "
            "it",
            owner, s.sigma_alpha));
      }
      check_probability(s.reflectivity, owner, "reflectivity");
      check_probability(s.efficiency, owner, "efficiency");
      check_probability(s.transmittance, owner, "transmittance");
      check_probability(s.specular_spike, owner, "specular_spike");
      check_probability(s.specular_lobe, owner, "specular_lobe");
      check_probability(s.backscatter, owner, "backscatter");
      const auto reflectivity =
          on_wavelength_grid(s.reflectivity.is_set() ? s.reflectivity : Property::constant(1.0));
      const auto transmittance = on_wavelength_grid(s.transmittance);
      const auto spike = on_wavelength_grid(s.specular_spike);
      const auto lobe = on_wavelength_grid(s.specular_lobe);
      const auto back = on_wavelength_grid(s.backscatter);
      check_sum({&reflectivity, &transmittance}, owner, "reflectivity + transmittance", "UNIFIED");
      check_sum({&spike, &lobe, &back}, owner, "specular_spike + specular_lobe + backscatter",
                "UNIFIED");
      so.type = s.type;
      so.finish = s.finish;
      so.sigma_alpha = static_cast<float>(s.sigma_alpha);
      so.reflectivity = append(reflectivity);
      so.efficiency = append(on_wavelength_grid(s.efficiency));
      so.transmittance = append(transmittance);
      so.specular_spike = append(spike);
      so.specular_lobe = append(lobe);
      so.backscatter = append(back);
    }
    surface_offsets.push_back(so);
    surface_names_.push_back(s.name);
  }

  // The arena is complete: from here on it is never resized, so pointers
  // into it stay valid for the object's lifetime.
  arena_.shrink_to_fit();
  const float* base = arena_.data();
  for (const auto& co : component_offsets) {
    components_.push_back(
        ReemissionComponentData{base + co.absorption_length, base + co.reemission_prob,
                                base + co.wavelength_cdf, time_profile_view(co.time, base)});
  }
  for (const auto& mo : material_offsets) {
    materials_.push_back(MaterialData{base + mo.refractive_index, base + mo.absorption_length,
                                      base + mo.scattering_length, base + mo.group_velocity,
                                      mo.component_begin, mo.component_count});
  }
  for (const auto& so : surface_offsets) {
    SurfaceData sd{};
    sd.model = so.model;
    sd.detect = base + so.detect;
    sd.absorb = base + so.absorb;
    sd.reemit = base + so.reemit;
    sd.reflect_diffuse = base + so.reflect_diffuse;
    sd.reflect_specular = base + so.reflect_specular;
    sd.eta = base + so.eta;
    sd.k = base + so.k;
    sd.reemission_cdf = base + so.reemission_cdf;
    sd.reemission_time = time_profile_view(so.reemission_time, base);
    sd.thickness = so.thickness;
    sd.transmissive = so.transmissive;
    sd.n_angles = so.n_angles;
    sd.angles = so.n_angles ? base + so.angles : nullptr;
    sd.reflect = so.n_angles ? base + so.reflect : nullptr;
    sd.transmit = so.n_angles ? base + so.transmit : nullptr;
    if (so.unified) {
      sd.type = so.type;
      sd.finish = so.finish;
      sd.sigma_alpha = so.sigma_alpha;
      sd.reflectivity = base + so.reflectivity;
      sd.efficiency = base + so.efficiency;
      sd.transmittance = base + so.transmittance;
      sd.specular_spike = base + so.specular_spike;
      sd.specular_lobe = base + so.specular_lobe;
      sd.backscatter = base + so.backscatter;
    }
    surfaces_.push_back(sd);
  }
}

ParamsView OpticsTables::params_view() const {
  ParamsView view;
  view.materials = materials_.data();
  view.n_materials = n_materials();
  view.surfaces = surfaces_.data();
  view.n_surfaces = n_surfaces();
  view.components = components_.data();
  return view;
}

std::optional<std::uint32_t> OpticsTables::find_material(std::string_view name) const {
  const auto it = std::find(material_names_.begin(), material_names_.end(), name);
  if (it == material_names_.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - material_names_.begin());
}

std::optional<std::uint32_t> OpticsTables::find_surface(std::string_view name) const {
  const auto it = std::find(surface_names_.begin(), surface_names_.end(), name);
  if (it == surface_names_.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - surface_names_.begin());
}

}  // namespace acheron::optics
