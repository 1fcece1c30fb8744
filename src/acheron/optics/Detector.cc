#include "acheron/optics/Detector.hh"

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

namespace acheron::optics {
namespace {

constexpr double kDeg = std::numbers::pi / 180.0;

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

Vec3 read_vec3(const TomlTable& t, std::string_view key, Vec3 fallback) {
  auto v = t.find_numbers(key);
  if (!v) return fallback;
  if (v->size() != 3) fail(t, key, "must have 3 numbers", "write [x, y, z]");
  return {static_cast<float>((*v)[0]), static_cast<float>((*v)[1]), static_cast<float>((*v)[2])};
}

// Shape keys shared by [[solid]] and [[pmt_array]].
constexpr std::array<std::string_view, 11> kShapeKeys = {
    "shape",           "radius",        "half_height", "height", "size", "segments",
    "aperture_radius", "sphere_radius", "file",        "scale",  "model"};

Mesh read_shape(const TomlTable& t, const std::filesystem::path& base_dir) {
  const auto shape = t.require<std::string>("shape");
  const int segments = static_cast<int>(t.get<std::int64_t>("segments", 48));
  auto positive = [&](std::string_view key) {
    const double v = t.require<double>(key);
    if (!(v > 0)) fail(t, key, "must be > 0", "give a length in mm");
    return static_cast<float>(v);
  };
  if (shape == "sphere") return make_sphere(positive("radius"), segments);
  if (shape == "cylinder") {
    const float hh = t.contains("height") ? positive("height") / 2 : positive("half_height");
    return make_cylinder(positive("radius"), hh, segments);
  }
  if (shape == "box") {
    Vec3 s = read_vec3(t, "size", {});
    if (!(s.x > 0 && s.y > 0 && s.z > 0))
      fail(t, "size", "must be 3 positive lengths", "[x, y, z] in mm");
    return make_box(s / 2.f);
  }
  if (shape == "pmt") {
    const float a = positive("aperture_radius");
    const float r = t.contains("sphere_radius") ? positive("sphere_radius") : a;
    return make_pmt_cap(a, r, static_cast<int>(t.get<std::int64_t>("segments", 24)));
  }
  if (shape == "mesh") {
    std::filesystem::path file = t.require<std::string>("file");
    if (file.is_relative()) file = base_dir / file;
    Mesh m = load_mesh(file);
    const double scale = t.get<double>("scale", 1.0);
    if (!(scale > 0)) fail(t, "scale", "must be > 0", "mesh units times scale give mm");
    for (auto& v : m.vertices) v = v * static_cast<float>(scale);
    return m;
  }
  fail(t, "shape", "is '" + shape + "'", "use sphere, cylinder, box, pmt, pmt_model or mesh");
}

struct Names {
  const OpticsTables& tables;
  std::uint32_t material(const TomlTable& t, std::string_view key) const {
    const auto name = t.require<std::string>(key);
    auto m = tables.find_material(name);
    if (!m) fail(t, key, "names unknown material '" + name + "'", "define it in a [[material]]");
    return *m;
  }
  std::int32_t surface(const TomlTable& t, std::string_view key, const std::string& name) const {
    if (name.empty() || name == "none") return -1;
    auto s = tables.find_surface(name);
    if (!s) fail(t, key, "names unknown surface '" + name + "'", "define it in a [[surface]]");
    return static_cast<std::int32_t>(*s);
  }
  SolidMaterials solid(const TomlTable& t) const {
    SolidMaterials sm;
    sm.inner_material = material(t, "inner");
    sm.outer_material = material(t, "outer");
    if (auto list = t.find_strings("surfaces")) {
      sm.surface_by_part.clear();
      for (const auto& n : *list) sm.surface_by_part.push_back(surface(t, "surfaces", n));
      if (sm.surface_by_part.empty()) sm.surface_by_part.push_back(-1);
    } else {
      sm.surface_by_part = {surface(t, "surface", t.get<std::string>("surface", ""))};
    }
    return sm;
  }
};

// A [[pmt_model]] as read (names resolved once the tables exist).
struct PmtModelDef {
  TomlTable table;
  PmtModelShape shape;
  Mesh mesh;
  SolidMaterials materials;
  std::int64_t prototype = -1;  // added to the geometry at first use
};
using PmtModels = std::map<std::string, PmtModelDef>;

// The surface a PMT model's back gets when it names none: an absorber.
constexpr const char* kPmtBackAbsorber = "pmt_back_absorber";

PmtModelDef read_pmt_model_shape(const TomlTable& t) {
  t.check_keys({"name", "profile", "glass_thickness", "photocathode_cut", "segments", "glass",
                "vacuum", "medium", "photocathode", "back", "outer_surface", "source"});
  PmtModelDef m{t, {}, {}, {}, -1};
  auto rows = t.find_number_rows("profile");
  if (!rows)
    fail(t, "profile", "is missing", "list the outer glass surface as [[r, z], ...] in mm");
  for (const auto& r : *rows) {
    if (r.size() != 2) fail(t, "profile", "rows must be [r, z] pairs", "write [[r, z], ...]");
    m.shape.profile.push_back({static_cast<float>(r[0]), static_cast<float>(r[1])});
  }
  m.shape.glass_thickness = static_cast<float>(t.get<double>("glass_thickness", 3.0));
  m.shape.photocathode_cut = static_cast<float>(t.get<double>("photocathode_cut", 0.0));
  const auto segments = t.get<std::int64_t>("segments", 32);
  if (segments < 3 || segments > 4096) fail(t, "segments", "is out of range", "3 to 4096");
  m.shape.segments = static_cast<int>(segments);
  const auto name = t.require<std::string>("name");
  try {
    m.mesh = make_pmt_model(m.shape, name);
  } catch (const SetupError& e) {
    throw SetupError(t.where("profile") + ": " + e.what());
  }
  return m;
}

void resolve_pmt_model(PmtModelDef& m, const Names& names) {
  const TomlTable& t = m.table;
  const std::int32_t back = t.contains("back")
                                ? names.surface(t, "back", t.require<std::string>("back"))
                                : names.surface(t, "back", kPmtBackAbsorber);
  m.materials = pmt_model_materials(
      names.material(t, "glass"), names.material(t, "vacuum"), names.material(t, "medium"),
      names.surface(t, "photocathode", t.require<std::string>("photocathode")), back,
      names.surface(t, "outer_surface", t.get<std::string>("outer_surface", "")));
}

// A solid's or array's mesh and materials: a primitive, a mesh file, or a PMT
// model (whose materials and surfaces come from its [[pmt_model]]).
struct SolidShape {
  Mesh mesh;
  SolidMaterials materials;
  PmtModelDef* model = nullptr;
};

SolidShape read_solid_shape(const TomlTable& t, const std::filesystem::path& base_dir,
                            const Names& names, PmtModels& models) {
  SolidShape out;
  if (t.get<std::string>("shape", "") != "pmt_model") {
    if (t.contains("model")) fail(t, "model", "is only for shape = \"pmt_model\"", "remove it");
    out.mesh = read_shape(t, base_dir);
    out.materials = names.solid(t);
    return out;
  }
  for (auto key : {"inner", "outer", "surface", "surfaces", "segments"}) {
    if (t.contains(key)) {
      fail(t, key, "is set by the [[pmt_model]] for shape = \"pmt_model\"",
           "remove it here (glass, vacuum, medium, photocathode, back, segments are the "
           "model's keys)");
    }
  }
  const auto name = t.require<std::string>("model");
  auto it = models.find(name);
  if (it == models.end())
    fail(t, "model", "names unknown PMT model '" + name + "'", "define it in a [[pmt_model]]");
  out.mesh = it->second.mesh;
  out.materials = it->second.materials;
  out.model = &it->second;
  return out;
}

// The prototype of a PMT model, added to the geometry at its first use.
std::uint32_t model_prototype(PmtModelDef& m, Geometry& geometry) {
  if (m.prototype < 0) {
    m.prototype = geometry.add_prototype(m.table.require<std::string>("name"), m.mesh, m.materials);
  }
  return static_cast<std::uint32_t>(m.prototype);
}

Placement read_placement(const TomlTable& t) {
  const Vec3 pos = read_vec3(t, "position", {});
  if (t.contains("axis")) return Placement::facing(read_vec3(t, "axis", {0, 0, 1}), pos);
  const Vec3 rot = read_vec3(t, "rotation", {});
  return Placement::from_euler(rot * static_cast<float>(kDeg), pos);
}

// N nearly uniform points on the unit sphere (golden-angle spiral).
std::vector<Vec3> fibonacci_sphere(int n) {
  std::vector<Vec3> out;
  const double golden = std::numbers::pi * (3 - std::sqrt(5.0));
  for (int i = 0; i < n; ++i) {
    const double z = 1 - (2.0 * i + 1) / n;
    const double r = std::sqrt(std::max(0.0, 1 - z * z));
    const double phi = golden * i;
    out.push_back({static_cast<float>(r * std::cos(phi)), static_cast<float>(r * std::sin(phi)),
                   static_cast<float>(z)});
  }
  return out;
}

void read_pmt_array(const TomlTable& t, const std::filesystem::path& base_dir, const Names& names,
                    PmtModels& models, bool instancing, Geometry& geometry) {
  std::vector<std::string_view> allowed(kShapeKeys.begin(), kShapeKeys.end());
  for (auto k : {"name", "layout", "count", "radius_of_array", "facing", "positions", "inner",
                 "outer", "surface", "surfaces", "channel_type", "center"}) {
    allowed.push_back(k);
  }
  for (const auto& key : t.keys()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      fail(t, key, "is not a pmt_array key", "check its spelling in docs/optics.md");
    }
  }
  const std::string name = t.get<std::string>("name", "pmt");
  const SolidShape shape = read_solid_shape(t, base_dir, names, models);
  const Mesh& mesh = shape.mesh;
  const SolidMaterials& sm = shape.materials;
  const auto type = static_cast<std::int32_t>(t.get<std::int64_t>("channel_type", -1));
  const std::string facing = t.get<std::string>("facing", "inward");
  if (facing != "inward" && facing != "outward") {
    fail(t, "facing", "is '" + facing + "'", "use inward or outward");
  }
  const float sign = facing == "inward" ? -1.f : 1.f;
  const Vec3 center = read_vec3(t, "center", {});
  std::vector<Vec3> positions;
  const std::string layout = t.get<std::string>("layout", "sphere");
  if (layout == "sphere") {
    const auto count = t.require<std::int64_t>("count");
    if (count < 1 || count > 1000000) fail(t, "count", "is out of range", "1 to 1000000 PMTs");
    const double r = t.require<double>("radius_of_array");
    if (!(r > 0)) fail(t, "radius_of_array", "must be > 0", "the sphere the PMTs sit on, mm");
    for (const Vec3& u : fibonacci_sphere(static_cast<int>(count))) {
      positions.push_back(center + u * static_cast<float>(r));
    }
  } else if (layout == "list") {
    auto rows = t.find_number_rows("positions");
    if (!rows) fail(t, "positions", "is missing", "list [x, y, z] rows for layout = \"list\"");
    for (const auto& r : *rows) {
      if (r.size() != 3) fail(t, "positions", "rows must have 3 numbers", "write [x, y, z]");
      positions.push_back({float(r[0]), float(r[1]), float(r[2])});
    }
  } else {
    fail(t, "layout", "is '" + layout + "'", "use sphere or list");
  }
  // One prototype for the array (or the PMT model's, shared), placed once
  // per PMT; with instancing off, a flattened copy per PMT (the same
  // results, more memory).
  std::uint32_t proto = 0;
  if (instancing) {
    proto = shape.model ? model_prototype(*shape.model, geometry)
                        : geometry.add_prototype(name, mesh, sm);
  }
  int i = 0;
  for (const Vec3& p : positions) {
    Vec3 axis = p - center;
    if (norm(axis) == 0) axis = {0, 0, 1};
    // The dome's apex (+z of the primitive) points along `axis`, toward or
    // away from the centre.
    const Placement placement = Placement::facing(normalize(axis) * sign, p);
    std::string pmt_name = name + "_" + std::to_string(i++);
    if (instancing) {
      geometry.add_instance(std::move(pmt_name), proto, placement, true, type);
    } else {
      geometry.add_pmt(std::move(pmt_name), mesh, sm, placement, type);
    }
  }
}

// Reference water and PMT data for the default detector, each cited.
std::string default_tables() {
  std::ostringstream os;
  // Pure water refractive index: Hale & Querry, Appl. Opt. 12, 555 (1973).
  os << "[[material]]\nname = \"water\"\n"
        "source = \"n: Hale & Querry 1973; absorption: Pope & Fry 1997 (380-700 nm), "
        "Smith & Baker 1981 (below 380 nm); scattering: Morel 1974\"\n"
        "refractive_index = [[200, 1.396], [250, 1.362], [300, 1.349], [350, 1.343], "
        "[400, 1.339], [450, 1.337], [500, 1.335], [550, 1.333], [600, 1.332], [650, 1.331], "
        "[700, 1.331], [750, 1.330], [800, 1.329]]\n";
  // Absorption coefficients a (1/m) of pure water: Smith & Baker, Appl. Opt.
  // 20, 177 (1981) below 380 nm; Pope & Fry, Appl. Opt. 36, 8710 (1997) above.
  const std::vector<std::pair<int, double>> absorption = {
      {200, 3.07},    {250, 0.167},   {300, 0.0382},  {350, 0.0204},  {380, 0.01137},
      {390, 0.00851}, {400, 0.00663}, {410, 0.00530}, {420, 0.00454}, {430, 0.00495},
      {440, 0.00635}, {450, 0.00922}, {460, 0.00979}, {470, 0.01060}, {480, 0.01270},
      {490, 0.01500}, {500, 0.0204},  {520, 0.0409},  {540, 0.0474},  {560, 0.0619},
      {580, 0.0896},  {600, 0.2224},  {620, 0.2755},  {640, 0.3170},  {660, 0.4100},
      {680, 0.4550},  {700, 0.6240},  {750, 2.47},    {800, 2.07}};
  os << "absorption_length = [";
  for (std::size_t i = 0; i < absorption.size(); ++i) {
    os << (i ? ", " : "") << "[" << absorption[i].first << ", "
       << fmt::format("{:.6g}", 1000.0 / absorption[i].second) << "]";
  }
  os << "]\n";
  // Scattering by pure water: b(λ) = 0.00288 (λ/500 nm)^-4.32 1/m, Morel (1974).
  os << "scattering_length = [";
  for (int l = 200; l <= 800; l += 50) {
    const double b = 0.00288 * std::pow(l / 500.0, -4.32);
    os << (l > 200 ? ", " : "") << "[" << l << ", " << fmt::format("{:.6g}", 1000.0 / b) << "]";
  }
  os << "]\n\n";
  // Borosilicate PMT glass: n = 1.49 at 400 nm, the value Chroma's and
  // SNO+'s "glass" use, given the wavelength dependence of Schott N-BK7 (a
  // borosilicate crown; Sellmeier coefficients from Schott's catalogue):
  // n(l) = 1 + 0.49 (n_BK7(l) - 1) / (n_BK7(400 nm) - 1).
  auto n_bk7 = [](double nm) {
    const double l2 = (nm / 1000) * (nm / 1000);
    return std::sqrt(1 + 1.03961212 * l2 / (l2 - 0.00600069867) +
                     0.231792344 * l2 / (l2 - 0.0200179144) + 1.01046945 * l2 / (l2 - 103.560653));
  };
  os << "[[material]]\nname = \"glass\"\nsource = \"borosilicate PMT glass: n(400 nm) = 1.49 "
        "(Chroma, SNO+) with Schott N-BK7's dispersion scaled to it; absorption: SNO+'s "
        "glass_sno table as Chroma's demo optics quote it\"\nrefractive_index = [";
  for (int l = 250; l <= 800; l += 50) {
    os << (l > 250 ? ", " : "") << "[" << l << ", "
       << fmt::format("{:.4f}", 1 + 0.49 * (n_bk7(l) - 1) / (n_bk7(400) - 1)) << "]";
  }
  os << "]\nabsorption_length = [[200, 1e-7], [300, 1e-7], [330, 1000], [500, 2000], "
        "[600, 1000], [770, 500], [800, 1e-7]]\nscattering_length = 1e6\n\n";
  os << "[[material]]\nname = \"vacuum\"\nsource = \"inside the PMTs\"\nrefractive_index = 1.0\n"
        "absorption_length = 1e6\nscattering_length = 1e6\n\n";
  os << "[[material]]\nname = \"rock\"\nsource = \"outside the tank; photons never enter "
        "(the wall absorbs or reflects)\"\nrefractive_index = 1.0\nabsorption_length = 1e6\n"
        "scattering_length = 1e6\n\n";
  // Bialkali photocathode QE: the shape of Hamamatsu's published typical
  // curve for 10-inch bialkali PMTs (R7081), peak ~25 % near 390 nm; values
  // read off the datasheet plot, so good to a few per cent of themselves.
  // The cathode sits on the inner glass: a film of zero thickness (the
  // COMPLEX model with thickness 0 is the Fresnel interface glass | vacuum),
  // opaque (not transmissive): the Fresnel-transmitted part is absorbed and
  // detected with probability `detect`, the rest reflects specularly.
  os << "[[surface]]\nname = \"photocathode\"\nmodel = \"complex\"\n"
        "source = \"typical bialkali QE (Hamamatsu R7081 datasheet curve) behind the Fresnel "
        "interface glass | vacuum\"\n"
        "eta = 2.0\nk = 0.0\nthickness = 0.0\ntransmissive = false\n"
        "detect = [[260, 0.0], [280, 0.02], [300, 0.10], [320, 0.18], [340, 0.22], "
        "[360, 0.24], [380, 0.25], [400, 0.25], [420, 0.24], [440, 0.22], [460, 0.19], "
        "[480, 0.16], [500, 0.12], [520, 0.09], [540, 0.06], [560, 0.04], [580, 0.025], "
        "[600, 0.015], [620, 0.008], [650, 0.003], [700, 0.0]]\n\n";
  os << "[[surface]]\nname = \"black\"\nmodel = \"default\"\nsource = \"ideal absorber: "
        "the PMTs' inner back\"\nabsorb = 1.0\n\n";
  os << "[[surface]]\nname = \"liner\"\nmodel = \"default\"\nsource = \"a partly reflective "
        "tank liner (chosen so that photons bounce, not a measured material)\"\n"
        "absorb = 0.7\nreflect_specular = 0.2\nreflect_diffuse = 0.1\n\n";
  return os.str();
}

}  // namespace

std::string Detector::default_toml(const DefaultDetectorOptions& o) {
  ACHERON_EXPECT(o.pmts >= 1 && o.coverage > 0 && o.coverage < 0.8 && o.pmt_radius > 0 &&
                     o.pmt_segments >= 3 && o.pmt_arc_step > 0.1 && o.pmt_arc_step <= 45 &&
                     o.wall_segments >= 3,
                 "default detector options out of range (pmts >= 1, 0 < coverage < 0.8, "
                 "pmt_segments >= 3, 0.1 < pmt_arc_step <= 45) fix the options");
  // Coverage = N pi a^2 / (4 pi R^2), so R = a sqrt(N / (4 coverage)); R is
  // the radius of the PMTs' equator planes.
  const double r_array = o.pmt_radius * std::sqrt(o.pmts / (4 * o.coverage));
  // The necks reach 142 mm outward; the wall stays clear of them.
  const double r_wall = r_array + 200.0;
  std::ostringstream os;
  os << "# Acheron default detector: a water-filled spherical Cherenkov detector with\n"
     << "# R7081-like 10-inch PMTs (glass bulb, vacuum, photocathode) and a partly\n"
     << "# reflective tank liner.\n"
     << fmt::format("name = \"default water Cherenkov sphere, {} PMTs\"\n\n", o.pmts)
     << "[settings]\nmax_steps = 1000\ntiming = \"group\"\n\n"
     << default_tables()
     << "[[pmt_model]]\nname = \"r7081\"\nsource = \"bulb outline of RAT-PAC's r7081 toroidal "
        "PMT geometry; 3 mm glass; photocathode down to rho = 111 mm (Hamamatsu: 220 mm minimum "
        "effective diameter)\"\nprofile = [";
  const auto profile = r7081_profile(o.pmt_arc_step);
  for (std::size_t i = 0; i < profile.size(); ++i) {
    os << (i ? ", " : "") << fmt::format("[{:.3f}, {:.3f}]", profile[i].r, profile[i].z);
  }
  os << fmt::format(
            "]\nglass_thickness = {:.1f}\nphotocathode_cut = {:.1f}\nsegments = {}\n"
            "glass = \"glass\"\nvacuum = \"vacuum\"\nmedium = \"water\"\n"
            "photocathode = \"photocathode\"\nback = \"black\"\n\n",
            kR7081GlassThickness, kR7081PhotocathodeCut, o.pmt_segments)
     << fmt::format(
            "[[solid]]\nname = \"tank\"\nshape = \"sphere\"\nradius = {:.3f}\nsegments = {}\n"
            "inner = \"water\"\nouter = \"rock\"\nsurface = \"{}\"\n\n",
            r_wall, o.wall_segments, o.reflective_wall ? "liner" : "black")
     << fmt::format(
            "[[pmt_array]]\nname = \"pmt\"\nshape = \"pmt_model\"\nmodel = \"r7081\"\n"
            "layout = \"sphere\"\ncount = {}\nradius_of_array = {:.3f}\nfacing = \"inward\"\n",
            o.pmts, r_array);
  return os.str();
}

Detector Detector::default_detector(const DefaultDetectorOptions& options) {
  return parse(default_toml(options), "<default detector>");
}

Detector Detector::load(const std::filesystem::path& path) {
  if (path.extension() == ".gdml") return load_gdml(path, GdmlOptions{});
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw SetupError("cannot open detector file '" + path.string() +
                     "' (missing or unreadable) check the path");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(text, path.string(), path.parent_path().empty() ? "." : path.parent_path());
}

Detector Detector::parse(std::string_view toml, const std::string& source,
                         const std::filesystem::path& base_dir) {
  const TomlTable doc = TomlTable::parse_string(toml, source);
  doc.check_keys({"name", "settings", "material", "surface", "pmt_model", "solid", "pmt_array"});
  Detector d;
  d.name_ = doc.get<std::string>("name", source);
  if (auto s = doc.find_table("settings")) {
    s->check_keys({"max_steps", "timing", "chroma_compat", "instancing"});
    const auto steps = s->get<std::int64_t>("max_steps", 1000);
    if (steps < 1 || steps > 1000000) fail(*s, "max_steps", "is out of range", "1 to 1000000");
    d.settings_.max_steps = static_cast<std::uint32_t>(steps);
    const auto timing = s->get<std::string>("timing", "group");
    if (timing == "phase") {
      d.settings_.timing = TimingMode::phase;
    } else if (timing == "group") {
      d.settings_.timing = TimingMode::group;
    } else {
      fail(*s, "timing", "is '" + timing + "'", "use phase or group");
    }
    d.settings_.chroma_compat = s->get<bool>("chroma_compat", false);
    d.settings_.instancing = s->get<bool>("instancing", true);
  }
  OpticsInput input;
  for (const auto& m : doc.tables_in_array("material")) input.materials.push_back(read_material(m));
  for (const auto& s : doc.tables_in_array("surface")) input.surfaces.push_back(read_surface(s));
  if (input.materials.empty()) {
    throw SetupError(source + ": no [[material]] (a detector needs at least one) define them");
  }
  PmtModels models;
  for (const auto& m : doc.tables_in_array("pmt_model")) {
    const auto name = m.require<std::string>("name");
    if (models.count(name)) {
      fail(m, "name", "repeats PMT model '" + name + "'", "give each [[pmt_model]] its own name");
    }
    models.emplace(name, read_pmt_model_shape(m));
    const bool named =
        std::any_of(input.surfaces.begin(), input.surfaces.end(),
                    [](const SurfaceInput& s) { return s.name == kPmtBackAbsorber; });
    if (!m.contains("back") && !named) {
      SurfaceInput back;
      back.name = kPmtBackAbsorber;
      back.absorb = Property::constant(1.0);
      input.surfaces.push_back(std::move(back));
    }
  }
  d.tables_ = std::make_unique<OpticsTables>(input);
  d.geometry_ = std::make_unique<Geometry>();
  const Names names{*d.tables_};
  for (auto& [name, m] : models) resolve_pmt_model(m, names);
  for (const auto& s : doc.tables_in_array("solid")) {
    std::vector<std::string_view> allowed(kShapeKeys.begin(), kShapeKeys.end());
    for (auto k : {"name", "inner", "outer", "surface", "surfaces", "position", "rotation", "axis",
                   "pmt", "channel_type"}) {
      allowed.push_back(k);
    }
    for (const auto& key : s.keys()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        fail(s, key, "is not a solid key", "check its spelling in docs/optics.md");
      }
    }
    const SolidShape shape = read_solid_shape(s, base_dir, names, models);
    const std::string name = s.get<std::string>("name", "solid");
    const bool pmt = s.get<bool>("pmt", false);
    const auto type = static_cast<std::int32_t>(s.get<std::int64_t>("channel_type", -1));
    const Placement placement = read_placement(s);
    if (shape.model && d.settings_.instancing) {
      d.geometry_->add_instance(name, model_prototype(*shape.model, *d.geometry_), placement, pmt,
                                type);
    } else if (pmt) {
      d.geometry_->add_pmt(name, shape.mesh, shape.materials, placement, type);
    } else {
      d.geometry_->add_solid(name, shape.mesh, shape.materials, placement);
    }
  }
  for (const auto& a : doc.tables_in_array("pmt_array"))
    read_pmt_array(a, base_dir, names, models, d.settings_.instancing, *d.geometry_);
  if (d.geometry_->solids().empty()) {
    throw SetupError(source +
                     ": no [[solid]] or [[pmt_array]] (nothing to trace against) add "
                     "the detector's solids");
  }
  d.geometry_->finalize();
  return d;
}

Detector Detector::from_parts(std::string name, Geometry geometry, OpticsTables tables,
                              const DetectorSettings& settings) {
  if (geometry.solids().empty()) {
    throw SetupError("detector '" + name +
                     "' has no solids (nothing to trace against) add the detector's solids");
  }
  if (!geometry.finalized()) geometry.finalize();
  const auto beyond_tables = [&](const TriangleData& t) {
    const auto surface_ok = [&](std::int32_t s) {
      return s < 0 || static_cast<std::uint32_t>(s) < tables.n_surfaces();
    };
    return t.inner_material >= tables.n_materials() || t.outer_material >= tables.n_materials() ||
           !surface_ok(t.surface) || !surface_ok(t.surface_in);
  };
  const auto refuse = [&](const std::string& what) {
    throw SetupError(fmt::format(
        "detector '{}': {} names material or surface indices beyond the tables ({} materials, "
        "{} surfaces) build the geometry from these tables",
        name, what, tables.n_materials(), tables.n_surfaces()));
  };
  for (const auto& t : geometry.triangle_data()) {
    if (beyond_tables(t)) refuse("solid '" + geometry.solids()[t.solid].name + "'");
  }
  for (const auto& p : geometry.prototypes()) {
    for (std::uint32_t i = p.first_triangle; i < p.first_triangle + p.triangle_count; ++i) {
      if (beyond_tables(geometry.prototype_triangle_data()[i])) {
        refuse("prototype '" + p.name + "'");
      }
    }
  }
  if (settings.max_steps < 1 || settings.max_steps > 1000000) {
    throw SetupError(fmt::format("detector '{}': max_steps is {} (out of range) give 1 to 1000000",
                                 name, settings.max_steps));
  }
  Detector d;
  d.name_ = std::move(name);
  d.geometry_ = std::make_unique<Geometry>(std::move(geometry));
  d.tables_ = std::make_unique<OpticsTables>(std::move(tables));
  d.settings_ = settings;
  return d;
}

std::string channels_json(const Detector& detector) {
  const auto& g = detector.geometry();
  // One channel per line; numbers in float's shortest form (as stored), and
  // direction components within float rounding of zero written as 0.
  auto vec = [](Vec3 v, bool snap) {
    auto c = [&](float x) { return snap && std::abs(x) < 1e-6f ? 0.f : x; };
    return fmt::format("[{}, {}, {}]", c(v.x), c(v.y), c(v.z));
  };
  // Names come from the detector file as they are; bytes that are not
  // UTF-8 become U+FFFD rather than making the JSON invalid.
  auto quoted = [](const std::string& text) {
    return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string out = "{\n \"detector\": " + quoted(detector.name()) + ",\n \"channels\": [";
  for (std::size_t i = 0; i < g.channels().size(); ++i) {
    const ChannelInfo& c = g.channels()[i];
    out += fmt::format(
        "{}\n  {{\"id\": {}, \"type\": {}, \"copynumber\": {}, \"volume\": {}, \"solid\": {}, "
        "\"position\": {}, \"direction\": {}}}",
        i ? "," : "", i, c.type, c.copy_number, quoted(c.volume), quoted(g.solids()[c.solid].name),
        vec(c.position, false),
        vec(c.direction, true));
  }
  out += g.channels().empty() ? "]\n}\n" : "\n ]\n}\n";
  return out;
}

ParamsView Detector::params(std::uint64_t seed) const {
  ParamsView v = tables_->params_view();
  geometry_->fill(v);
  v.max_steps = settings_.max_steps;
  v.timing = settings_.timing;
  v.chroma_compat = settings_.chroma_compat ? 1u : 0u;
  v.seed = seed;
  return v;
}

std::string Detector::summary() const {
  const auto& g = *geometry_;
  auto [lo, hi] = g.bounds();
  std::size_t proto_triangles = 0;
  for (const auto& p : g.prototypes()) proto_triangles += p.triangle_count;
  const double mib = 1024.0 * 1024.0;
  std::ostringstream os;
  os << "detector   " << name_ << "\n"
     << "solids     " << g.solids().size() << "\n"
     << "channels   " << g.channels().size() << "\n"
     << "prototypes " << g.prototypes().size();
  for (std::size_t i = 0; i < g.prototypes().size(); ++i) {
    os << (i ? ", " : " (") << g.prototypes()[i].name << ": " << g.prototypes()[i].triangle_count
       << " triangles" << (i + 1 == g.prototypes().size() ? ")" : "");
  }
  os << "\n"
     << "instances  " << g.instances().size() << "\n"
     << "triangles  " << g.triangle_count() << " (" << g.triangles().size() << " flattened + "
     << proto_triangles << " in prototypes stored)\n"
     << "vertices   " << g.vertices().size() + g.prototype_vertices().size() << " stored\n"
     << fmt::format(
            "memory     {:.1f} MiB of triangle arrays ({:.1f} MiB if flattened), "
            "before Embree's BVH\n",
            g.memory_bytes() / mib, g.flattened_memory_bytes() / mib)
     << fmt::format("bounds     [{:.1f}, {:.1f}, {:.1f}] .. [{:.1f}, {:.1f}, {:.1f}] mm\n", lo.x,
                    lo.y, lo.z, hi.x, hi.y, hi.z)
     << "materials  ";
  for (std::uint32_t i = 0; i < tables_->n_materials(); ++i) {
    os << (i ? ", " : "") << tables_->material_name(i);
  }
  os << "\nsurfaces   ";
  for (std::uint32_t i = 0; i < tables_->n_surfaces(); ++i) {
    os << (i ? ", " : "") << tables_->surface_name(i);
  }
  os << "\nmax_steps  " << settings_.max_steps << "\ntiming     "
     << (settings_.timing == TimingMode::phase ? "phase" : "group") << "\n";
  return os.str();
}

std::vector<std::string> Detector::check() const {
  std::vector<std::string> problems;
  const auto& g = *geometry_;
  const auto& tris = g.triangles();
  // 1. Closed meshes: within a solid (or prototype) every edge is shared by
  //    exactly two triangles, traversed in opposite directions (consistent
  //    winding). A prototype is checked once for all its instances.
  auto check_closed = [&](const std::string& what, const std::array<std::uint32_t, 3>* first,
                          std::uint32_t count) {
    std::map<std::pair<std::uint32_t, std::uint32_t>, int> edges;
    for (std::uint32_t i = 0; i < count; ++i) {
      for (int k = 0; k < 3; ++k) edges[{first[i][k], first[i][(k + 1) % 3]}] += 1;
    }
    std::size_t open = 0, flipped = 0;
    for (const auto& [e, n] : edges) {
      auto rev = edges.find({e.second, e.first});
      if (n > 1) ++flipped;
      if (rev == edges.end()) ++open;
    }
    if (open) {
      problems.push_back(fmt::format("{}: mesh is not closed ({} boundary edges)", what, open));
    }
    if (flipped) {
      problems.push_back(
          fmt::format("{}: inconsistent winding ({} edges used twice in "
                      "the same direction)",
                      what, flipped));
    }
  };
  for (const auto& s : g.solids()) {
    if (s.instance >= 0) continue;
    check_closed("solid '" + s.name + "'", tris.data() + s.first_triangle, s.triangle_count);
  }
  for (const auto& p : g.prototypes()) {
    check_closed("prototype '" + p.name + "'", g.prototype_triangles().data() + p.first_triangle,
                 p.triangle_count);
  }
  // 2. Material codes: from a point just outside each solid (along a triangle's
  //    normal) the medium reached must be the solid's outer material.
  EmbreeScene scene(g);
  const auto tracer = scene.tracer();
  for (const auto& s : g.solids()) {
    const std::uint32_t step = std::max<std::uint32_t>(1, s.triangle_count / 8);
    for (std::uint32_t i = s.first_triangle; i < s.first_triangle + s.triangle_count; i += step) {
      const auto corners = g.triangle_corners(i);
      const Vec3 c = (corners[0] + corners[1] + corners[2]) / 3.f;
      const TriangleData mine = g.triangle_record(i);
      // A transparent triangle (one medium on both sides, no surface: a
      // face shared with a touching sibling) changes nothing.
      if (mine.inner_material == mine.outer_material && mine.surface < 0 && mine.surface_in < 0) {
        continue;
      }
      const Vec3 n = mine.normal;
      RayHit hit;
      if (!tracer.intersect(c, n, static_cast<std::int32_t>(i), hit)) continue;  // outermost
      const TriangleData other = g.triangle_record(static_cast<std::uint32_t>(hit.triangle));
      if (other.solid == mine.solid) continue;
      const bool from_inside = dot(n, other.normal) > 0;
      const std::uint32_t medium = from_inside ? other.inner_material : other.outer_material;
      if (medium != mine.outer_material) {
        problems.push_back(fmt::format(
            "solid '{}': outer material is '{}' but the neighbouring solid '{}' says the medium "
            "there is '{}'",
            s.name, tables_->material_name(mine.outer_material), g.solids()[other.solid].name,
            tables_->material_name(medium)));
        break;
      }
    }
  }
  // 3. Overlapping PMTs: bounding spheres of sensor solids must not intersect.
  struct Ball {
    Vec3 c;
    float r;
    std::uint32_t solid;
  };
  std::vector<Ball> balls;
  float max_r = 0;
  for (const auto& ch : g.channels()) {
    const auto& s = g.solids()[ch.solid];
    if (s.instance >= 0) {  // the prototype's sphere, placed
      const auto& in = g.instances()[s.instance];
      const auto& proto = g.prototypes()[in.prototype];
      balls.push_back({in.placement.apply(proto.centre), proto.radius, ch.solid});
      max_r = std::max(max_r, proto.radius);
      continue;
    }
    // Sphere about the vertex centroid reaching the farthest vertex.
    Vec3 c{};
    std::size_t n = 0;
    for (std::uint32_t i = s.first_triangle; i < s.first_triangle + s.triangle_count; ++i) {
      for (auto v : tris[i]) c = c + g.vertices()[v], ++n;
    }
    c = c / static_cast<float>(n);
    float r = 0;
    for (std::uint32_t i = s.first_triangle; i < s.first_triangle + s.triangle_count; ++i) {
      for (auto v : tris[i]) r = std::max(r, norm(g.vertices()[v] - c));
    }
    balls.push_back({c, r, ch.solid});
    max_r = std::max(max_r, r);
  }
  // Grid hashing keeps this linear for tens of thousands of PMTs.
  const float cell = std::max(2 * max_r, 1e-3f);
  std::map<std::tuple<int, int, int>, std::vector<std::size_t>> grid;
  auto key = [&](Vec3 p) {
    return std::make_tuple(int(std::floor(p.x / cell)), int(std::floor(p.y / cell)),
                           int(std::floor(p.z / cell)));
  };
  for (std::size_t i = 0; i < balls.size(); ++i) grid[key(balls[i].c)].push_back(i);
  std::size_t overlaps = 0;
  for (std::size_t i = 0; i < balls.size(); ++i) {
    auto [kx, ky, kz] = key(balls[i].c);
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dz = -1; dz <= 1; ++dz) {
          auto it = grid.find({kx + dx, ky + dy, kz + dz});
          if (it == grid.end()) continue;
          for (std::size_t j : it->second) {
            if (j <= i) continue;
            // Conservative: flags PMTs whose bounding spheres intersect by
            // more than 0.1 % (they may only nearly touch).
            const float d = norm(balls[i].c - balls[j].c);
            if (d < 0.999f * (balls[i].r + balls[j].r)) {
              if (overlaps++ < 10) {
                problems.push_back(fmt::format("PMTs '{}' and '{}' overlap ({:.1f} mm apart)",
                                               g.solids()[balls[i].solid].name,
                                               g.solids()[balls[j].solid].name, d));
              }
            }
          }
        }
  }
  if (overlaps > 10)
    problems.push_back(fmt::format("... {} overlapping PMT pairs in all", overlaps));
  return problems;
}

}  // namespace acheron::optics
