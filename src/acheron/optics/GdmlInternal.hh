// Internal to the GDML reader (GdmlReader.cc, GdmlLoader.cc,
// GdmlMaterials.cc, GdmlEngineTables.cc, GdmlSolids.cc, GdmlStructure.cc,
// GdmlFlatten.cc): the parsed file with its line map, one scope per file
// (defines, materials, solids, volumes), and the reader that owns them and
// flattens the volume tree. Not installed for clients: it includes pugixml
// and CLHEP, which are private dependencies.
#pragma once

#include <CLHEP/Evaluator/Evaluator.h>

#include <array>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "acheron/core/Pattern.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/OpticsTables.hh"

namespace acheron::optics::gdml {

namespace fs = std::filesystem;

// h c in eV nm: lambda[nm] = kHcEvNm / E[eV].
inline constexpr double kHcEvNm = 1239.84198;
// One eV in the reader's energy unit (MeV = 1).
inline constexpr double kEv = 1e-6;

struct V3 {
  double x = 0, y = 0, z = 0;
};

// v' = m v + t, m row-major (any invertible 3x3: rotations and scales).
struct Affine {
  std::array<double, 9> m{1, 0, 0, 0, 1, 0, 0, 0, 1};
  V3 t;

  V3 linear(V3 v) const {
    return {m[0] * v.x + m[1] * v.y + m[2] * v.z, m[3] * v.x + m[4] * v.y + m[5] * v.z,
            m[6] * v.x + m[7] * v.y + m[8] * v.z};
  }
  V3 apply(V3 v) const {
    const V3 r = linear(v);
    return {r.x + t.x, r.y + t.y, r.z + t.z};
  }
  // This after `inner`: v -> this(inner(v)).
  Affine compose(const Affine& inner) const;
  double det() const;
  // A proper rotation (orthonormal, det +1) within 1e-9.
  bool is_rotation() const;
};

// A GDML placement: v_mother = R^-1 S v + t (Geant4's physvol convention).
Affine gdml_transform(V3 position, V3 angles, V3 scale);

// One parsed file and its byte-offset -> line map.
class XmlFile final {
 public:
  XmlFile(fs::path path, std::string display);
  const fs::path& path() const noexcept { return path_; }
  const std::string& display() const noexcept { return display_; }
  pugi::xml_node root() const { return doc_.document_element(); }
  int line(pugi::xml_node node) const;
  // "file.gdml:123"
  std::string where(pugi::xml_node node) const;
  // Throws SetupError("file.gdml:123: <tag name="x"> message").
  [[noreturn]] void fail(pugi::xml_node node, const std::string& message) const;

 private:
  fs::path path_;
  std::string display_;
  pugi::xml_document doc_;
  std::vector<std::size_t> line_starts_;
};

// <tag name="value"> (or <tag> without a name) for messages.
std::string element_label(pugi::xml_node node);

// <matrix name coldim values>: values row by row.
struct Matrix {
  int coldim = 1;
  std::vector<double> values;
  std::string where;
};

// A Geant4 material or surface property as read: a constant, or (energy,
// value) pairs with energy in MeV, strictly ascending.
struct OpticalProperty {
  std::string name;
  std::string where;  // the <property> element
  bool constant = false;
  double value = 0;
  std::vector<std::pair<double, double>> points;

  // Geant4's G4PhysicsVector::Value: linear in energy, clamped to the end
  // values outside the table.
  double at(double energy) const;
  // As the engine reads the table: at the user's points converted to
  // wavelength, linear in wavelength between them, clamped outside.
  double at_wavelength(double nm) const;
  // The table over wavelength (nm, ascending): lambda = hc / E for every
  // point, order reversed; a constant stays a constant.
  Property over_wavelength() const;
};
using PropertyMap = std::map<std::string, OpticalProperty>;

struct MaterialDef {
  std::string name;
  std::string where;
  PropertyMap properties;
  bool nist = false;  // a G4_ name Geant4 builds from its NIST database
};

// An optical surface and its mapping onto the engine's standard model, or
// the reason it cannot be mapped.
struct SurfaceDef {
  std::string name;
  std::string where;
  std::optional<SurfaceInput> input;
  std::string refusal;
  // The remainder goes on to the Fresnel boundary (dielectric_dielectric
  // polished): Geant4 then needs a refractive index on the far side.
  bool passes_to_fresnel = false;
};

struct Volume;

struct PhysVol {
  std::string name;
  std::string where;
  const Volume* volume = nullptr;
  Affine transform;
  bool has_copynumber = false;
  int copynumber = 0;
};

struct Volume {
  std::string name;
  std::string where;
  bool assembly = false;
  const MaterialDef* material = nullptr;  // null for an assembly
  solids::SolidPtr solid;                 // null for an assembly
  std::vector<const PhysVol*> daughters;
  bool sensitive = false;
  std::string sensdet;  // the SensDet auxvalue
  const SurfaceDef* skin = nullptr;
};

struct BorderSurface {
  std::string name;
  std::string where;
  const PhysVol* first = nullptr;
  const PhysVol* second = nullptr;
  const SurfaceDef* surface = nullptr;
};

class Reader;

// Unit categories checked on lunit / aunit / unit attributes, as Geant4's
// G4UnitDefinition::GetValueOf with its category check does.
enum class UnitKind { length, angle, energy, time, density, any };

// Everything one file defines. Each file has its own defines namespace (its
// own Evaluator), solids, volumes and surfaces, as in Geant4; materials are
// global by name (Geant4's material table), see Reader::add_material.
class Scope final {
 public:
  Scope(Reader& reader, fs::path path, std::string display);
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // Reads the whole file, sections in document order.
  void read();

  Reader& reader;
  XmlFile file;

  // Expressions and attributes.
  double evaluate(pugi::xml_node node, std::string_view attribute, std::string_view text) const;
  bool has(pugi::xml_node node, const char* attribute) const;
  double number(pugi::xml_node node, const char* attribute) const;  // required
  double number_or(pugi::xml_node node, const char* attribute, double fallback) const;
  int integer(pugi::xml_node node, const char* attribute, int fallback) const;
  std::string text(pugi::xml_node node, const char* attribute) const;  // required, non-empty
  double unit(pugi::xml_node node, const char* attribute, UnitKind kind,
              const char* fallback) const;
  // Required length / angle attribute times the element's lunit / aunit.
  double length(pugi::xml_node node, const char* attribute) const;
  double length_or(pugi::xml_node node, const char* attribute, double fallback) const;
  double angle(pugi::xml_node node, const char* attribute) const;
  double angle_or(pugi::xml_node node, const char* attribute, double fallback) const;
  // Children must be among `allowed`.
  void check_children(pugi::xml_node node, std::initializer_list<std::string_view> allowed,
                      std::string_view what) const;

  // Inline <position>/<rotation>/<scale> or the <positionref ref/>-style
  // reference among node's children; nullopt when neither is there.
  std::optional<V3> position_child(pugi::xml_node node, const char* inline_tag,
                                   const char* ref_tag) const;
  std::optional<V3> rotation_child(pugi::xml_node node, const char* inline_tag,
                                   const char* ref_tag) const;
  std::optional<V3> scale_child(pugi::xml_node node, const char* inline_tag,
                                const char* ref_tag) const;
  V3 read_vector(pugi::xml_node node, UnitKind kind, const char* fallback_unit,
                 double fallback) const;

  const Matrix& matrix(pugi::xml_node node, const std::string& ref) const;
  const MaterialDef& material(pugi::xml_node node, const std::string& ref) const;
  solids::SolidPtr solid(pugi::xml_node node, const std::string& ref) const;
  const Volume& volume(pugi::xml_node node, const std::string& ref) const;

  // Sections (GdmlReader.cc, GdmlMaterials.cc, GdmlSolids.cc, GdmlStructure.cc).
  void read_define(pugi::xml_node section);
  void read_materials(pugi::xml_node section);
  void read_solids(pugi::xml_node section);
  void read_structure(pugi::xml_node section);
  void read_setup(pugi::xml_node section);

  // Pieces of the sections.
  solids::SolidPtr read_solid(pugi::xml_node node);
  void read_optical_surface(pugi::xml_node node);
  OpticalProperty read_property(pugi::xml_node node) const;
  void read_volume(pugi::xml_node node, bool assembly);
  const PhysVol* read_physvol(pugi::xml_node node, const std::string& mother);

  // Name bookkeeping: duplicates within a namespace are errors, as in Geant4.
  void claim(std::unordered_map<std::string, std::string>& names, pugi::xml_node node,
             const std::string& name, std::string_view kind) const;

  std::unique_ptr<HepTool::Evaluator> evaluator;
  std::unordered_map<std::string, std::string> define_names;  // name -> where
  std::unordered_map<std::string, V3> positions, rotations, scales;
  std::unordered_map<std::string, Matrix> matrices;
  std::unordered_map<std::string, std::string> isotope_names, element_names, material_names,
      solid_names, volume_names, surface_names, physvol_names;
  std::unordered_map<std::string, const MaterialDef*> materials;
  std::unordered_map<std::string, solids::SolidPtr> solids;
  std::unordered_map<std::string, const SurfaceDef*> optical_surfaces;
  std::unordered_map<std::string, Volume*> volumes;
  std::unordered_map<std::string, const PhysVol*> physvols;  // the first of each name
  const Volume* world = nullptr;
  bool done = false;
};

class Reader final {
 public:
  explicit Reader(const GdmlOptions& options);

  // The scope of a file, read on first use (a file placed many times is read
  // once); `from` is the including element's location for messages.
  Scope& load(const fs::path& path, const std::string& from);
  Detector build(const fs::path& path);

  const MaterialDef* add_material(MaterialDef def, const XmlFile& file, pugi::xml_node node);
  const MaterialDef* find_material(const std::string& name) const;
  const SurfaceDef* add_surface(SurfaceDef def);
  Volume* add_volume(Volume v);
  const PhysVol* add_physvol(PhysVol p);

  GdmlOptions options;
  std::optional<Pattern> pmt_pattern;
  std::vector<BorderSurface> borders;

 private:
  std::deque<std::unique_ptr<Scope>> scopes_;
  std::map<fs::path, Scope*> by_path_;
  std::vector<fs::path> loading_;
  std::deque<MaterialDef> materials_;
  std::unordered_map<std::string, const MaterialDef*> material_by_name_;
  std::deque<SurfaceDef> surfaces_;
  std::deque<Volume> volumes_;
  std::deque<PhysVol> physvols_;
};

// Optical surface as Geant4 defines it onto the engine's surface model, and
// the names of Geant4's numeric model, finish and type values
// (GdmlEngineTables.cc).
SurfaceDef map_surface(SurfaceDef def, const std::string& model, const std::string& finish,
                       const std::string& type, double value, const PropertyMap& props);
std::string model_name(const std::string& v);
std::string finish_name(const std::string& v);
std::string type_name(const std::string& v);

// Materials and surfaces onto the engine (GdmlEngineTables.cc).
// The engine's material for a GDML material (docs/optics.md, "GDML detectors").
MaterialInput engine_material(const MaterialDef& def, WlsTimeProfile profile);
// Whether a material has a refractive index (Geant4 kills photons entering
// one without).
bool has_rindex(const MaterialDef& def);
// The absorber that stands for Geant4's NoRINDEX kill at a boundary.
SurfaceInput no_rindex_surface();
inline constexpr const char* kNoRindexSurface = "<no RINDEX: absorbed>";

// Structure flattening (GdmlFlatten.cc).
Detector flatten(Reader& reader, const Volume& world, const std::string& name);

}  // namespace acheron::optics::gdml
