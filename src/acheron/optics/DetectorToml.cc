// Detector TOML: reading a detector file (settings, PMT models, solids and
// PMT arrays placed in the geometry); materials and surfaces are read in
// DetectorMaterials.cc.
#include "acheron/optics/Detector.hh"
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

namespace acheron::optics {
namespace {

using detector_toml::fail;
using detector_toml::kDeg;
using detector_toml::read_material;
using detector_toml::read_surface;

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

}  // namespace

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

}  // namespace acheron::optics
