// GDML reader, the loader: the reader that loads files and detects include
// cycles, its stores of materials, surfaces and volumes, and the entry points.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <numbers>

#include "acheron/core/Error.hh"
#include "acheron/optics/GdmlInternal.hh"
#include "acheron/optics/SolidMesher.hh"

namespace acheron::optics {
namespace gdml {

// ------------------------------------------------------------------ Reader

Reader::Reader(const GdmlOptions& o) : options(o) {
  if (!options.mesher) {
    options.mesher = [relative = options.relative_tolerance](const solids::Solid& solid,
                                                             double tolerance_mm) {
      const double tolerance = std::max(tolerance_mm, relative * solid_extent(solid));
      return tessellate(solid, MeshingOptions{.tolerance = tolerance});
    };
  }
  if (!(options.tolerance_mm > 0) || !std::isfinite(options.tolerance_mm)) {
    throw SetupError(
        fmt::format("GDML tolerance_mm is {} (it must be a positive length) give a "
                    "value such as 0.05",
                    options.tolerance_mm));
  }
  if (!options.pmt_pattern.empty()) {
    auto p = Pattern::compile(options.pmt_pattern);
    if (!p) {
      throw SetupError("GDML pmt_pattern is invalid (" + p.error().message +
                       ") give an RE2 regular expression matching PMT volume names");
    }
    pmt_pattern = std::move(p.value());
  }
}

Scope& Reader::load(const fs::path& path, const std::string& from) {
  std::error_code ec;
  fs::path key = fs::weakly_canonical(path, ec);
  if (ec) key = path.lexically_normal();
  if (std::find(loading_.begin(), loading_.end(), key) != loading_.end()) {
    std::string chain;
    for (const auto& p : loading_) chain += p.filename().string() + " -> ";
    throw SetupError(
        fmt::format("{}: <file name=\"{}\"> includes a file that is being read "
                    "(the cycle {}{}) remove the cycle",
                    from, path.filename().string(), chain, key.filename().string()));
  }
  if (auto it = by_path_.find(key); it != by_path_.end()) return *it->second;
  if (!fs::exists(path)) {
    throw SetupError(
        fmt::format("{}{}GDML file '{}' does not exist (paths of <file> are "
                    "relative to the including file) check the path",
                    from, from.empty() ? "" : ": ", path.string()));
  }
  auto scope = std::make_unique<Scope>(*this, path, path.filename().string());
  Scope& s = *scope;
  scopes_.push_back(std::move(scope));
  loading_.push_back(key);
  s.read();
  loading_.pop_back();
  by_path_[key] = &s;
  return s;
}

const MaterialDef* Reader::find_material(const std::string& name) const {
  const auto it = material_by_name_.find(name);
  return it == material_by_name_.end() ? nullptr : it->second;
}

namespace {
bool same_properties(const PropertyMap& a, const PropertyMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, p] : a) {
    const auto it = b.find(name);
    if (it == b.end()) return false;
    const OpticalProperty& q = it->second;
    if (p.constant != q.constant || p.value != q.value || p.points != q.points) return false;
  }
  return true;
}
}  // namespace

const MaterialDef* Reader::add_material(MaterialDef def, const XmlFile& file, pugi::xml_node node) {
  if (const MaterialDef* old = find_material(def.name)) {
    // The engine's materials form one table by name (as Geant4's material
    // table): another file's material of the same name is the same material
    // if its optical properties are equal.
    if (same_properties(old->properties, def.properties)) return old;
    file.fail(node, fmt::format("defines the material '{}' with other optical properties than "
                                "the one at {} (the detector's materials are one table by name) "
                                "give them different names",
                                def.name, old->where));
  }
  materials_.push_back(std::move(def));
  const MaterialDef* m = &materials_.back();
  material_by_name_[m->name] = m;
  return m;
}

const SurfaceDef* Reader::add_surface(SurfaceDef def) {
  surfaces_.push_back(std::move(def));
  return &surfaces_.back();
}
Volume* Reader::add_volume(Volume v) {
  volumes_.push_back(std::move(v));
  return &volumes_.back();
}
const PhysVol* Reader::add_physvol(PhysVol p) {
  physvols_.push_back(std::move(p));
  return &physvols_.back();
}

Detector Reader::build(const fs::path& path) {
  Scope& main = load(path, "");
  if (!main.world) {
    throw SetupError(
        fmt::format("{}: no <setup> with a <world ref=.../> (the reader needs the "
                    "world volume) add <setup name=\"Default\" version=\"1.0\"><world "
                    "ref=\"...\"/></setup>",
                    main.file.display()));
  }
  return flatten(*this, *main.world, path.filename().string());
}

}  // namespace gdml

std::array<double, 9> gdml_placement_rotation(double x, double y, double z) {
  // R = Rz(z) Ry(y) Rx(x); its inverse is its transpose.
  const std::array<double, 9> r = rotation_zyx(x, y, z);
  return {r[0], r[3], r[6], r[1], r[4], r[7], r[2], r[5], r[8]};
}

Detector Detector::load_gdml(const std::filesystem::path& path, const GdmlOptions& options) {
  gdml::Reader reader(options);
  return reader.build(path);
}

}  // namespace acheron::optics
