// Detector TOML, materials and surfaces: [[material]] and [[surface]]
// tables with their properties (constants, tables, CDFs, time profiles).
#include "acheron/optics/DetectorInternal.hh"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <set>
#include <sstream>

#include "acheron/core/Config.hh"
#include "acheron/core/Error.hh"
#include "acheron/optics/EmbreeScene.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/PmtModel.hh"

namespace acheron::optics::detector_toml {

[[noreturn]] void fail(const TomlTable& t, std::string_view key, const std::string& what,
                       const std::string& fix) {
  const std::string full = t.path().empty() ? std::string(key) : t.path() + "." + std::string(key);
  throw SetupError(t.where(key) + ": " + full + " " + what + " (" + fix + ")");
}

// A property: a number (constant), [[x, value], ...] pairs, or absent.
Property read_property(const TomlTable& t, std::string_view key) {
  if (!t.contains(key)) return {};
  if (auto rows = [&]() -> std::optional<std::vector<std::vector<double>>> {
        try {
          return t.find_number_rows(key);
        } catch (const SetupError&) {
          return std::nullopt;
        }
      }()) {
    std::vector<std::pair<double, double>> pts;
    for (const auto& r : *rows) {
      if (r.size() != 2) fail(t, key, "rows must be [x, value] pairs", "write [[x, v], ...]");
      pts.emplace_back(r[0], r[1]);
    }
    if (pts.empty()) fail(t, key, "is an empty table", "give at least one [x, value] pair");
    return Property::table(std::move(pts));
  }
  return Property::constant(t.require<double>(key));
}

// A CDF given directly ([[x, cdf], ...]) or as an unnormalised density
// ([[x, intensity], ...], integrated with the trapezoid rule).
Property read_cdf(const TomlTable& t, std::string_view cdf_key, std::string_view density_key) {
  if (t.contains(cdf_key)) return read_property(t, cdf_key);
  if (!t.contains(density_key)) return {};
  Property d = read_property(t, density_key);
  if (d.kind != Property::Kind::table || d.points.size() < 2) {
    fail(t, density_key, "must be a table of at least two [x, intensity] pairs",
         "list the spectrum or distribution");
  }
  std::vector<std::pair<double, double>> cdf{{d.points[0].first, 0.0}};
  double total = 0;
  for (std::size_t i = 1; i < d.points.size(); ++i) {
    const auto [x0, y0] = d.points[i - 1];
    const auto [x1, y1] = d.points[i];
    if (y0 < 0 || y1 < 0) fail(t, density_key, "has a negative value", "intensities are >= 0");
    total += 0.5 * (y0 + y1) * (x1 - x0);
    cdf.emplace_back(x1, total);
  }
  if (!(total > 0)) fail(t, density_key, "integrates to zero", "give a non-zero distribution");
  for (auto& p : cdf) p.second /= total;
  return Property::table(std::move(cdf));
}

// Keys of a reemission time profile, in [[material.component]] and in a
// WLS [[surface]].
constexpr std::array<std::string_view, 6> kTimeKeys = {
    "time_constant", "time_constants", "rise_time", "time_cdf", "time_profile", "time_delay"};

// A reemission time profile (ns): one of time_constant (an exponential's
// mean), time_constants ([[decay, weight], ...] or [[decay, weight, rise],
// ...], a mixture), time_cdf ([[t, cdf], ...]) or time_profile ([[t,
// intensity], ...]); rise_time (with either exponential form: the rise of
// every term without its own); time_delay added to every draw (alone: a
// fixed delay, 0 for none). Unset if none is given.
TimeProfile read_time_profile(const TomlTable& t) {
  std::string_view shape;
  for (std::string_view key : {"time_constant", "time_constants", "time_cdf", "time_profile"}) {
    if (!t.contains(key)) continue;
    if (!shape.empty()) {
      fail(t, key, "is given together with " + std::string(shape),
           "give one of time_constant, time_constants, time_cdf or time_profile");
    }
    shape = key;
  }
  double rise = 0;
  if (t.contains("rise_time")) {
    if (shape != "time_constant" && shape != "time_constants") {
      fail(t, "rise_time", "is given without time_constant or time_constants",
           "a rise time belongs to an exponential decay");
    }
    rise = t.require<double>("rise_time");
    if (!(rise >= 0)) fail(t, "rise_time", "must be >= 0", "give the rise time in ns");
  }
  TimeProfile p;
  if (shape == "time_constant") {
    const double tau = t.require<double>("time_constant");
    if (!(tau > 0)) fail(t, "time_constant", "must be > 0", "give the decay time in ns");
    p = TimeProfile::exponential(tau, rise);
  } else if (shape == "time_constants") {
    const auto rows = t.find_number_rows("time_constants");
    const std::string form = "write [[decay_ns, weight], ...], e.g. [[6, 0.3], [1600, 0.7]]";
    if (!rows || rows->empty()) fail(t, "time_constants", "is not a list of rows", form);
    std::vector<TimeExponential> terms;
    for (const auto& r : *rows) {
      if (r.size() != 2 && r.size() != 3) {
        fail(t, "time_constants", "rows must be [decay, weight] or [decay, weight, rise]", form);
      }
      if (!(r[0] > 0)) fail(t, "time_constants", "has a decay time <= 0", "decay times are > 0");
      if (!(r[1] > 0)) fail(t, "time_constants", "has a weight <= 0", "weights are > 0");
      if (r.size() == 3 && !(r[2] >= 0)) {
        fail(t, "time_constants", "has a rise time < 0", "rise times are >= 0");
      }
      terms.push_back(TimeExponential{r[0], r[1], r.size() == 3 ? r[2] : rise});
    }
    p = TimeProfile::mixture(std::move(terms));
  } else if (!shape.empty()) {
    p = TimeProfile::table(read_cdf(t, "time_cdf", "time_profile"));
  }
  if (t.contains("time_delay")) {
    const double delay = t.require<double>("time_delay");
    if (!(delay >= 0)) fail(t, "time_delay", "must be >= 0", "give the delay in ns");
    if (p.is_set()) {
      p.delay = delay;
    } else {
      p = TimeProfile::fixed(delay);
    }
  }
  return p;
}

SurfaceModel read_model(const TomlTable& t) {
  const auto m = t.get<std::string>("model", "default");
  if (m == "default" || m == "standard") return SurfaceModel::standard;
  if (m == "complex") return SurfaceModel::complex;
  if (m == "wls") return SurfaceModel::wls;
  if (m == "dichroic") return SurfaceModel::dichroic;
  if (m == "unified") return SurfaceModel::unified;
  fail(t, "model", "is '" + m + "'", "use default, complex, wls, dichroic or unified");
}

// Keys of the unified model (Geant4's names in lower case).
constexpr std::array<std::string_view, 9> kUnifiedKeys = {
    "type",          "finish",         "sigma_alpha",   "reflectivity", "efficiency",
    "transmittance", "specular_spike", "specular_lobe", "backscatter"};

void read_unified(const TomlTable& t, SurfaceInput& s) {
  const auto type = t.get<std::string>("type", "dielectric_dielectric");
  if (type == "dielectric_dielectric") {
    s.type = SurfaceType::dielectric_dielectric;
  } else if (type == "dielectric_metal") {
    s.type = SurfaceType::dielectric_metal;
  } else {
    fail(t, "type", "is '" + type + "'", "use dielectric_dielectric or dielectric_metal");
  }
  const auto finish = t.get<std::string>("finish", "polished");
  if (finish == "polished") {
    s.finish = SurfaceFinish::polished;
  } else if (finish == "ground") {
    s.finish = SurfaceFinish::ground;
  } else if (finish == "polishedfrontpainted") {
    s.finish = SurfaceFinish::polishedfrontpainted;
  } else if (finish == "groundfrontpainted") {
    s.finish = SurfaceFinish::groundfrontpainted;
  } else {
    fail(t, "finish", "is '" + finish + "'",
         "use polished, ground, polishedfrontpainted or groundfrontpainted");
  }
  if (s.type == SurfaceType::dielectric_metal && s.finish != SurfaceFinish::polished &&
      s.finish != SurfaceFinish::ground) {
    fail(t, "finish", "is '" + finish + "' on a dielectric_metal surface",
         "painted finishes belong to dielectric_dielectric surfaces; use polished or ground");
  }
  s.sigma_alpha = t.get<double>("sigma_alpha", 0.0);
  if (!std::isfinite(s.sigma_alpha) || s.sigma_alpha < 0) {
    fail(t, "sigma_alpha", "must be finite and >= 0", "give the facet slope spread in rad");
  }
  s.reflectivity = read_property(t, "reflectivity");
  s.efficiency = read_property(t, "efficiency");
  s.transmittance = read_property(t, "transmittance");
  s.specular_spike = read_property(t, "specular_spike");
  s.specular_lobe = read_property(t, "specular_lobe");
  s.backscatter = read_property(t, "backscatter");
}

MaterialInput read_material(const TomlTable& t) {
  t.check_keys({"name", "refractive_index", "absorption_length", "scattering_length",
                "group_velocity", "component", "source"});
  MaterialInput m;
  m.name = t.require<std::string>("name");
  m.refractive_index = read_property(t, "refractive_index");
  m.absorption_length = read_property(t, "absorption_length");
  m.scattering_length = read_property(t, "scattering_length");
  m.group_velocity = read_property(t, "group_velocity");
  for (const auto& c : t.tables_in_array("component")) {
    c.check_keys({"absorption_length", "reemission_prob", "wavelength_cdf", "spectrum",
                  "time_constant", "time_constants", "rise_time", "time_cdf", "time_profile",
                  "time_delay"});
    ReemissionComponentInput in;
    in.absorption_length = read_property(c, "absorption_length");
    in.reemission_prob = read_property(c, "reemission_prob");
    in.wavelength_cdf = read_cdf(c, "wavelength_cdf", "spectrum");
    in.time_profile = read_time_profile(c);
    if (!in.time_profile.is_set()) {
      throw SetupError(c.where() + ": " + c.path() +
                       " has no reemission time profile (every component needs one) give "
                       "time_constant, time_constants, time_cdf, time_profile or time_delay "
                       "(time_delay = 0 for none)");
    }
    m.components.push_back(std::move(in));
  }
  return m;
}

SurfaceInput read_surface(const TomlTable& t) {
  // A list this long would be laid out one key per line.
  // clang-format off
  t.check_keys({"name", "model", "detect", "absorb", "reemit", "reflect_diffuse",
                "reflect_specular", "eta", "k", "reemission_cdf", "reemission_spectrum",
                "thickness", "transmissive", "angle", "source", "time_constant",
                "time_constants", "rise_time", "time_cdf", "time_profile", "time_delay",
                "type", "finish", "sigma_alpha", "reflectivity", "efficiency", "transmittance",
                "specular_spike", "specular_lobe", "backscatter"});
  // clang-format on
  SurfaceInput s;
  s.name = t.require<std::string>("name");
  s.model = read_model(t);
  if (s.model == SurfaceModel::unified) {
    read_unified(t, s);
  } else {
    for (const auto key : kUnifiedKeys) {
      if (t.contains(key)) {
        fail(t, key, "belongs to the unified model", "set model = \"unified\" or remove it");
      }
    }
  }
  s.detect = read_property(t, "detect");
  s.absorb = read_property(t, "absorb");
  s.reemit = read_property(t, "reemit");
  s.reflect_diffuse = read_property(t, "reflect_diffuse");
  s.reflect_specular = read_property(t, "reflect_specular");
  s.eta = read_property(t, "eta");
  s.k = read_property(t, "k");
  s.reemission_cdf = read_cdf(t, "reemission_cdf", "reemission_spectrum");
  s.reemission_time = read_time_profile(t);
  if (s.reemission_time.is_set() && s.model != SurfaceModel::wls) {
    for (std::string_view key : kTimeKeys) {
      if (t.contains(key)) {
        fail(t, key, "is a reemission time key but the model is not wls",
             "only WLS surfaces reemit; remove it or set model = \"wls\"");
      }
    }
  }
  s.thickness = t.get<double>("thickness", 0.0);
  s.transmissive = t.get<bool>("transmissive", false);
  for (const auto& a : t.tables_in_array("angle")) {
    a.check_keys({"degrees", "reflect", "transmit"});
    s.angles.push_back(a.require<double>("degrees") * kDeg);
    s.reflect.push_back(read_property(a, "reflect"));
    s.transmit.push_back(read_property(a, "transmit"));
  }
  return s;
}

}  // namespace acheron::optics::detector_toml
