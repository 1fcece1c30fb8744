// GDML reader, engine tables: GDML materials' optical properties onto the
// engine's materials (reemission spectra and time profiles), and optical
// surfaces onto the engine's standard or unified surface model
// (docs/optics.md, "GDML detectors").
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/optics/GdmlInternal.hh"

namespace acheron::optics::gdml {
namespace {

Property constant_or_table(const OpticalProperty& p) {
  return p.over_wavelength();
}

// A property computed from several Geant4 properties at each wavelength of
// the engine's grid, each input read as the engine reads a single property
// (linear in wavelength between the user's points); a constant when every
// input is a constant.
template <class F>
Property on_grid(std::initializer_list<const OpticalProperty*> inputs, F f) {
  bool all_constant = true;
  for (const auto* p : inputs) all_constant = all_constant && (p == nullptr || p->constant);
  if (all_constant) return Property::constant(f(500.0));
  std::vector<std::pair<double, double>> pts;
  for (int i = 0; i < kWavelengthPoints; ++i) {
    const double nm = kWavelengthMin + kWavelengthStep * i;
    pts.emplace_back(nm, f(nm));
  }
  return Property::table(std::move(pts));
}

double value_at(const OpticalProperty* p, double nm, double fallback) {
  return p ? p->at_wavelength(nm) : fallback;
}

// CDF over wavelength (ascending) of an emission spectrum given per unit
// energy: Geant4 integrates WLSCOMPONENT over energy (trapezoid rule) and
// samples the energy from that integral; at each table point the wavelength
// CDF is 1 - F(E).
Property spectrum_cdf(const OpticalProperty& p, const std::string& material) {
  if (p.constant || p.points.size() < 2) {
    throw SetupError(
        fmt::format("{}: <property name=\"{}\"> of material '{}' is not a spectrum "
                    "(an emission spectrum needs at least two (energy, intensity) "
                    "rows) give a 2-column matrix",
                    p.where, p.name, material));
  }
  std::vector<double> f(p.points.size(), 0.0);
  for (std::size_t i = 1; i < p.points.size(); ++i) {
    const auto [e0, y0] = p.points[i - 1];
    const auto [e1, y1] = p.points[i];
    f[i] = f[i - 1] + 0.5 * (y0 + y1) * (e1 - e0);
  }
  const double total = f.back();
  if (!(total > 0)) {
    throw SetupError(
        fmt::format("{}: <property name=\"{}\"> of material '{}' integrates to zero "
                    "(an emission spectrum needs some intensity) give a non-zero "
                    "spectrum",
                    p.where, p.name, material));
  }
  std::vector<std::pair<double, double>> pts;
  for (std::size_t i = p.points.size(); i-- > 0;) {
    pts.emplace_back(kHcEvNm / (p.points[i].first / kEv), 1.0 - f[i] / total);
  }
  pts.front().second = 0.0;
  pts.back().second = 1.0;
  return Property::table(std::move(pts));
}

// The reemission delay of a time constant (WLSTIMECONSTANT or a
// scintillation time constant): exponential with that mean, or exactly that
// delay (Geant4's WLS profile "delta"); none without the constant.
TimeProfile reemission_time_profile(const OpticalProperty* tau_property, WlsTimeProfile profile) {
  const double tau = tau_property ? tau_property->at(1.0) : 0.0;
  if (tau <= 0) return TimeProfile::fixed(0.0);
  if (profile == WlsTimeProfile::delta) return TimeProfile::fixed(tau);
  return TimeProfile::exponential(tau);
}

const OpticalProperty* find_prop(const PropertyMap& m, const char* name) {
  const auto it = m.find(name);
  return it == m.end() ? nullptr : &it->second;
}

// One reemission component with reemission probability 1 (WLS) or `prob`.
ReemissionComponentInput component(Property absorption, Property prob, Property wavelength_cdf,
                                   TimeProfile times) {
  ReemissionComponentInput c;
  c.absorption_length = std::move(absorption);
  c.reemission_prob = std::move(prob);
  c.wavelength_cdf = std::move(wavelength_cdf);
  c.time_profile = std::move(times);
  return c;
}

// ---------------------------------------------------------------- surfaces

SurfaceDef refuse(SurfaceDef def, std::string why) {
  def.refusal = std::move(why);
  return def;
}

bool nonzero_anywhere(const OpticalProperty* p) {
  if (!p) return false;
  if (p->constant) return p->value != 0;
  return std::any_of(p->points.begin(), p->points.end(),
                     [](const auto& pt) { return pt.second != 0; });
}

// The largest value over the engine's wavelength grid of the sum of some
// properties (unset ones read 0), each read as the engine reads it.
double max_sum_on_grid(std::initializer_list<const OpticalProperty*> inputs) {
  double worst = 0;
  for (int i = 0; i < kWavelengthPoints; ++i) {
    const double nm = kWavelengthMin + kWavelengthStep * i;
    double sum = 0;
    for (const auto* p : inputs) sum += value_at(p, nm, 0.0);
    worst = std::max(worst, sum);
  }
  return worst;
}

// Geant4's unified model (G4OpBoundaryProcess) for a unified ground finish
// or a surface with TRANSMITTANCE: the engine's UNIFIED model takes
// Geant4's properties as they are.
SurfaceDef map_unified(SurfaceDef def, const std::string& model, const std::string& finish,
                       bool metal, double value, const PropertyMap& props) {
  const bool unified = model == "unified";
  const bool ground = unified && finish == "ground";
  if (ground && !(std::isfinite(value) && value >= 0)) {
    return refuse(std::move(def),
                  fmt::format("has sigma_alpha (value) {} (the spread of the facet slopes is an "
                              "angle >= 0) give value >= 0 in rad",
                              value));
  }
  const OpticalProperty* r = find_prop(props, "REFLECTIVITY");
  const OpticalProperty* t = find_prop(props, "TRANSMITTANCE");
  // Geant4 reads the reflection-type constants for the unified model only.
  const OpticalProperty* spike = unified ? find_prop(props, "SPECULARSPIKECONSTANT") : nullptr;
  const OpticalProperty* lobe = unified ? find_prop(props, "SPECULARLOBECONSTANT") : nullptr;
  const OpticalProperty* back = unified ? find_prop(props, "BACKSCATTERCONSTANT") : nullptr;
  const OpticalProperty one{.name = "", .where = "", .constant = true, .value = 1.0};
  if (const double sum = max_sum_on_grid({r ? r : &one, t}); sum > 1 + 1e-6) {
    return refuse(std::move(def),
                  fmt::format("has REFLECTIVITY + TRANSMITTANCE = {:.6g} at some wavelength (a "
                              "photon is reflected, transmitted straight through or absorbed; "
                              "Geant4 draws reflection first, REFLECTIVITY defaulting to 1, and "
                              "would silently transmit less than TRANSMITTANCE) give "
                              "REFLECTIVITY + TRANSMITTANCE <= 1",
                              sum));
  }
  if (const double sum = max_sum_on_grid({spike, lobe, back}); sum > 1 + 1e-6) {
    return refuse(std::move(def),
                  fmt::format("has SPECULARSPIKECONSTANT + SPECULARLOBECONSTANT + "
                              "BACKSCATTERCONSTANT = {:.6g} at some wavelength (they are "
                              "fractions of the reflected light, Lambertian the rest; Geant4 "
                              "would silently cut the last ones short) lower one of them",
                              sum));
  }
  SurfaceInput s;
  s.name = def.name;
  s.model = SurfaceModel::unified;
  s.type = metal ? SurfaceType::dielectric_metal : SurfaceType::dielectric_dielectric;
  s.finish = ground                             ? SurfaceFinish::ground
             : finish == "polishedfrontpainted" ? SurfaceFinish::polishedfrontpainted
             : finish == "groundfrontpainted"   ? SurfaceFinish::groundfrontpainted
                                                : SurfaceFinish::polished;
  s.sigma_alpha = ground ? value : 0.0;
  if (r) s.reflectivity = constant_or_table(*r);
  if (const OpticalProperty* e = find_prop(props, "EFFICIENCY")) {
    s.efficiency = constant_or_table(*e);
  }
  if (t) s.transmittance = constant_or_table(*t);
  if (spike) s.specular_spike = constant_or_table(*spike);
  if (lobe) s.specular_lobe = constant_or_table(*lobe);
  if (back) s.backscatter = constant_or_table(*back);
  // Polished and ground dielectric_dielectric surfaces meet the far
  // medium's refractive index (SameMaterial and NoRINDEX apply).
  def.passes_to_fresnel =
      !metal && (s.finish == SurfaceFinish::polished || s.finish == SurfaceFinish::ground);
  def.input = std::move(s);
  return def;
}
}  // namespace

// Geant4's G4OpBoundaryProcess semantics. Surfaces that need the unified
// model's facets, reflection types or TRANSMITTANCE map onto the engine's
// UNIFIED model (map_unified); the others onto the standard model (draw u
// against absorb, detect, reflect_diffuse, reflect_specular; the rest
// passes on to the Fresnel boundary), which gives them the same
// distributions. R = REFLECTIVITY (default 1), E = EFFICIENCY (default 0):
// with probability 1 - R the photon is absorbed, and an absorbed photon is
// detected with probability E.
SurfaceDef map_surface(SurfaceDef def, const std::string& model, const std::string& finish,
                       const std::string& type, double value, const PropertyMap& props) {
  const OpticalProperty* r = find_prop(props, "REFLECTIVITY");
  const OpticalProperty* e = find_prop(props, "EFFICIENCY");
  if (find_prop(props, "REALRINDEX") || find_prop(props, "IMAGINARYRINDEX")) {
    return refuse(std::move(def),
                  "has REALRINDEX/IMAGINARYRINDEX (Geant4 then computes the reflectivity of a "
                  "metal from its complex refractive index, which the engine's surfaces do not "
                  "model) give REFLECTIVITY instead");
  }
  if (type != "dielectric_metal" && type != "dielectric_dielectric") {
    return refuse(std::move(def),
                  "has type " + type +
                      " (only dielectric_metal and dielectric_dielectric map onto the engine's "
                      "surfaces; LUT and dichroic types need Geant4's data tables) use one of "
                      "those two types");
  }
  if (model != "glisur" && model != "unified") {
    return refuse(std::move(def),
                  "has model " + model +
                      " (the LUT, DAVIS and dichroic models need Geant4's measured tables) use "
                      "glisur or unified");
  }
  const bool metal = type == "dielectric_metal";
  const bool polished = finish == "polished";
  const bool ground = finish == "ground";
  const bool frontpainted = finish == "polishedfrontpainted" || finish == "groundfrontpainted";
  const bool backpainted = finish == "polishedbackpainted" || finish == "groundbackpainted";
  if (backpainted) {
    return refuse(std::move(def),
                  "has finish " + finish +
                      " (a paint layer behind a thin gap of another medium is not modelled) use "
                      "a frontpainted finish or a dielectric_metal surface");
  }
  if (!polished && !ground && !frontpainted) {
    return refuse(std::move(def), "has finish " + finish +
                                      " (the LUT finishes need Geant4's measured tables) use "
                                      "polished, ground or a frontpainted finish");
  }
  if (metal && frontpainted) {
    return refuse(std::move(def), "has finish " + finish +
                                      " on a dielectric_metal surface (painted finishes belong "
                                      "to dielectric_dielectric surfaces) use polished or ground");
  }
  if (ground && model == "glisur" && value < 1) {
    return refuse(std::move(def),
                  fmt::format("is glisur ground with polish {} (glisur's smearing of the facet "
                              "normals is not modelled) use the unified model with "
                              "sigma_alpha, polish 1 or a polished finish",
                              value));
  }
  if ((model == "unified" && ground) || nonzero_anywhere(find_prop(props, "TRANSMITTANCE"))) {
    return map_unified(std::move(def), model, finish, metal, value, props);
  }
  // Polished finishes (and glisur's ground with polish 1, whose facet normal
  // is the surface normal) reflect specularly; groundfrontpainted is
  // Lambertian.
  const bool lambertian = finish == "groundfrontpainted";
  SurfaceInput s;
  s.name = def.name;
  s.model = SurfaceModel::standard;
  s.absorb = on_grid(
      {r, e}, [&](double nm) { return (1 - value_at(r, nm, 1.0)) * (1 - value_at(e, nm, 0.0)); });
  s.detect =
      on_grid({r, e}, [&](double nm) { return (1 - value_at(r, nm, 1.0)) * value_at(e, nm, 0.0); });
  const bool reflects = metal || frontpainted;
  if (reflects) {
    const Property reflected = on_grid({r}, [&](double nm) { return value_at(r, nm, 1.0); });
    if (lambertian) {
      s.reflect_diffuse = reflected;
    } else {
      s.reflect_specular = reflected;
    }
  }
  def.passes_to_fresnel = !reflects;
  def.input = std::move(s);
  return def;
}

std::string model_name(const std::string& v) {
  static const char* names[] = {"glisur", "unified", "LUT", "DAVIS", "dichroic"};
  if (v.size() == 1 && v[0] >= '0' && v[0] <= '4') return names[v[0] - '0'];
  return v;
}
std::string finish_name(const std::string& v) {
  static const char* names[] = {"polished", "polishedfrontpainted", "polishedbackpainted",
                                "ground",   "groundfrontpainted",   "groundbackpainted"};
  if (v.size() == 1 && v[0] >= '0' && v[0] <= '5') return names[v[0] - '0'];
  return v;
}
std::string type_name(const std::string& v) {
  static const char* names[] = {"dielectric_metal",
                                "dielectric_dielectric",
                                "dielectric_LUT",
                                "dielectric_LUTDAVIS",
                                "dielectric_dichroic",
                                "firsov",
                                "x_ray"};
  if (v.size() == 1 && v[0] >= '0' && v[0] <= '6') return names[v[0] - '0'];
  return v;
}
// ------------------------------------------------------------ engine tables

bool has_rindex(const MaterialDef& def) {
  return def.properties.count("RINDEX") > 0;
}

SurfaceInput no_rindex_surface() {
  SurfaceInput s;
  s.name = kNoRindexSurface;
  s.model = SurfaceModel::standard;
  s.absorb = Property::constant(1.0);
  return s;
}

MaterialInput engine_material(const MaterialDef& def, WlsTimeProfile profile) {
  MaterialInput m;
  m.name = def.name;
  const PropertyMap& p = def.properties;
  // "Never" for a length Geant4 leaves infinite (no such process).
  const Property never = Property::constant(1e12);
  const OpticalProperty* rindex = find_prop(p, "RINDEX");
  if (!rindex) {
    // Geant4 kills a photon at the boundary of a material without RINDEX;
    // the flattening puts an absorbing surface there. Inside (a photon
    // started here) it is absorbed at once.
    m.refractive_index = Property::constant(1.0);
    m.absorption_length = Property::constant(1e-3);
    m.scattering_length = never;
    return m;
  }
  m.refractive_index = constant_or_table(*rindex);
  const OpticalProperty* abs = find_prop(p, "ABSLENGTH");
  m.scattering_length =
      find_prop(p, "RAYLEIGH") ? constant_or_table(*find_prop(p, "RAYLEIGH")) : never;
  // Velocities in Geant4's internal unit, mm/ns; without GROUPVEL the
  // engine derives it from RINDEX as Geant4 does.
  if (const OpticalProperty* vg = find_prop(p, "GROUPVEL"))
    m.group_velocity = constant_or_table(*vg);
  // WLS components: G4OpWLS (WLS*) and G4OpWLS2 (WLS*2).
  struct Wls {
    const char *length, *spectrum, *time;
  };
  std::vector<const OpticalProperty*> wls_lengths;
  for (const Wls w : {Wls{"WLSABSLENGTH", "WLSCOMPONENT", "WLSTIMECONSTANT"},
                      Wls{"WLSABSLENGTH2", "WLSCOMPONENT2", "WLSTIMECONSTANT2"}}) {
    const OpticalProperty* len = find_prop(p, w.length);
    if (!len) continue;
    const OpticalProperty* spectrum = find_prop(p, w.spectrum);
    if (!spectrum) {
      throw SetupError(
          fmt::format("{}: <material name=\"{}\"> has {} but no {} (a wavelength "
                      "shifter needs its emission spectrum) add {}",
                      def.where, def.name, w.length, w.spectrum, w.spectrum));
    }
    m.components.push_back(component(constant_or_table(*len), Property::constant(1.0),
                                     spectrum_cdf(*spectrum, def.name),
                                     reemission_time_profile(find_prop(p, w.time), profile)));
    wls_lengths.push_back(len);
  }
  if (abs && find_prop(p, "REEMISSIONPROB")) {
    // Daya Bay's DsG4Scintillation convention (also Opticks): a photon
    // absorbed by ABSLENGTH is reemitted with REEMISSIONPROB from the
    // scintillation spectrum with its decay time.
    const OpticalProperty* spectrum = find_prop(p, "SCINTILLATIONCOMPONENT1");
    if (!spectrum) spectrum = find_prop(p, "FASTCOMPONENT");
    if (!spectrum) {
      throw SetupError(
          fmt::format("{}: <material name=\"{}\"> has REEMISSIONPROB but no "
                      "SCINTILLATIONCOMPONENT1 or FASTCOMPONENT (the reemission "
                      "spectrum) add the spectrum",
                      def.where, def.name));
    }
    const OpticalProperty* tau = find_prop(p, "SCINTILLATIONTIMECONSTANT1");
    if (!tau) tau = find_prop(p, "FASTTIMECONSTANT");
    m.components.push_back(component(constant_or_table(*abs),
                                     constant_or_table(*find_prop(p, "REEMISSIONPROB")),
                                     spectrum_cdf(*spectrum, def.name),
                                     reemission_time_profile(tau, WlsTimeProfile::exponential)));
  } else if (abs && !m.components.empty()) {
    // Plain absorption beside WLS: the last component, never reemitting.
    m.components.push_back(component(constant_or_table(*abs), Property::constant(0.0),
                                     Property::table({{kWavelengthMin, 0.0}, {995.0, 1.0}}),
                                     TimeProfile::fixed(0.0)));
  }
  if (wls_lengths.empty()) {
    m.absorption_length = abs ? constant_or_table(*abs) : never;
  } else {
    // The engine draws one absorption length and then picks the component
    // by L / L_k: L = 1 / (1/ABSLENGTH + sum 1/WLSABSLENGTH_k).
    std::vector<const OpticalProperty*> all = wls_lengths;
    if (abs) all.push_back(abs);
    auto total = [&](double nm) {
      double inv = 0;
      for (const auto* q : all) inv += 1 / q->at_wavelength(nm);
      return 1 / inv;
    };
    bool constant = true;
    for (const auto* q : all) constant = constant && q->constant;
    if (constant) {
      m.absorption_length = Property::constant(total(500.0));
    } else {
      std::vector<std::pair<double, double>> pts;
      for (int i = 0; i < kWavelengthPoints; ++i) {
        const double nm = kWavelengthMin + kWavelengthStep * i;
        pts.emplace_back(nm, total(nm));
      }
      m.absorption_length = Property::table(std::move(pts));
    }
  }
  return m;
}

}  // namespace acheron::optics::gdml
