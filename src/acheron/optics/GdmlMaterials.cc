// GDML reader, part 2: isotopes, elements and materials (checked for their
// references; what the engine uses is each material's optical properties)
// and optical surfaces, as read; their mapping onto the engine's tables is in
// GdmlEngineTables.cc.
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

// Element symbols Geant4's NIST manager builds on first reference.
constexpr std::array<std::string_view, 98> kElementSymbols = {
    "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si",
    "P",  "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni",
    "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo",
    "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba",
    "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
    "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po",
    "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf"};

bool nist_element(const std::string& name) {
  const std::string_view n = std::string_view(name).substr(name.rfind("G4_", 0) == 0 ? 3 : 0);
  return std::find(kElementSymbols.begin(), kElementSymbols.end(), n) != kElementSymbols.end();
}

// Material properties the engine uses, by the check their values need.
enum class Check { none, positive, probability, nonnegative };
Check material_check(const std::string& name) {
  if (name == "RINDEX" || name == "ABSLENGTH" || name == "RAYLEIGH" || name == "WLSABSLENGTH" ||
      name == "WLSABSLENGTH2" || name == "GROUPVEL")
    return Check::positive;
  if (name == "REEMISSIONPROB") return Check::probability;
  if (name == "WLSCOMPONENT" || name == "WLSCOMPONENT2" || name == "WLSTIMECONSTANT" ||
      name == "WLSTIMECONSTANT2")
    return Check::nonnegative;
  return Check::none;
}

// Material properties that do not change how a photon propagates: photon
// production (scintillation, Cherenkov yields) and values Geant4 derives.
bool production_property(const std::string& n) {
  static const std::set<std::string, std::less<>> names = {"SCINTILLATIONYIELD",
                                                           "RESOLUTIONSCALE",
                                                           "FASTCOMPONENT",
                                                           "SLOWCOMPONENT",
                                                           "FASTTIMECONSTANT",
                                                           "SLOWTIMECONSTANT",
                                                           "YIELDRATIO",
                                                           "FASTSCINTILLATIONRISETIME",
                                                           "SLOWSCINTILLATIONRISETIME",
                                                           "ELECTRONSCINTILLATIONYIELD",
                                                           "PROTONSCINTILLATIONYIELD",
                                                           "DEUTERONSCINTILLATIONYIELD",
                                                           "TRITONSCINTILLATIONYIELD",
                                                           "ALPHASCINTILLATIONYIELD",
                                                           "IONSCINTILLATIONYIELD",
                                                           "BIRKS_CONSTANT",
                                                           "WLSMEANNUMBERPHOTONS",
                                                           "WLSMEANNUMBERPHOTONS2",
                                                           "SCINTILLATIONRISETIME1",
                                                           "SCINTILLATIONRISETIME2",
                                                           "SCINTILLATIONRISETIME3"};
  if (names.count(n)) return true;
  // SCINTILLATIONCOMPONENT1..3, SCINTILLATIONTIMECONSTANT1..3,
  // SCINTILLATIONYIELD1..3 and the per-particle yields.
  return n.rfind("SCINTILLATION", 0) == 0 || n.find("SCINTILLATIONYIELD") != std::string::npos;
}
}  // namespace

// ------------------------------------------------------------ OpticalProperty

double OpticalProperty::at(double energy) const {
  if (constant) return value;
  if (points.empty()) return 0;
  if (energy <= points.front().first) return points.front().second;
  if (energy >= points.back().first) return points.back().second;
  const auto it = std::upper_bound(points.begin(), points.end(), energy,
                                   [](double e, const auto& p) { return e < p.first; });
  const auto& [e1, v1] = *it;
  const auto& [e0, v0] = *(it - 1);
  return v0 + (v1 - v0) * (energy - e0) / (e1 - e0);
}

double OpticalProperty::at_wavelength(double nm) const {
  if (constant) return value;
  if (points.empty()) return 0;
  const double energy = kHcEvNm / nm * kEv;
  if (energy <= points.front().first) return points.front().second;
  if (energy >= points.back().first) return points.back().second;
  const auto it = std::upper_bound(points.begin(), points.end(), energy,
                                   [](double e, const auto& p) { return e < p.first; });
  const double l1 = kHcEvNm / (it->first / kEv), v1 = it->second;
  const double l0 = kHcEvNm / ((it - 1)->first / kEv), v0 = (it - 1)->second;
  return v1 + (v0 - v1) * (nm - l1) / (l0 - l1);
}

Property OpticalProperty::over_wavelength() const {
  if (constant) return Property::constant(value);
  std::vector<std::pair<double, double>> pts;
  pts.reserve(points.size());
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    pts.emplace_back(kHcEvNm / (it->first / kEv), it->second);
  }
  return Property::table(std::move(pts));
}

// ------------------------------------------------------------ reading

OpticalProperty Scope::read_property(pugi::xml_node node) const {
  OpticalProperty p;
  p.name = text(node, "name");
  p.where = file.where(node);
  if (std::string_view(node.name()) == "constproperty") {
    // ROOT's writer: <constproperty name ref="a constant"/> (or value=).
    p.constant = true;
    p.value = has(node, "value") ? number(node, "value") : evaluate(node, "ref", text(node, "ref"));
  } else {
    const std::string ref = text(node, "ref");
    const Matrix& m = matrix(node, ref);
    if (m.coldim == 1) {
      // Geant4: a one-column matrix is a constant property (its first value).
      p.constant = true;
      p.value = m.values.front();
    } else if (m.coldim == 2) {
      for (std::size_t i = 0; i + 1 < m.values.size(); i += 2) {
        const double energy = m.values[i];
        if (!(energy > 0)) {
          file.fail(node, fmt::format("uses matrix '{}' (defined at {}) whose row {} has photon "
                                      "energy {} MeV (the first column is a photon energy, > 0) "
                                      "fix the matrix",
                                      ref, m.where, i / 2 + 1, energy));
        }
        if (!p.points.empty() && !(energy > p.points.back().first)) {
          file.fail(node, fmt::format("uses matrix '{}' (defined at {}) whose energies do not "
                                      "ascend at row {} ({} after {} MeV; Geant4 needs strictly "
                                      "ascending photon energies) sort the rows",
                                      ref, m.where, i / 2 + 1, energy, p.points.back().first));
        }
        p.points.emplace_back(energy, m.values[i + 1]);
      }
    } else {
      file.fail(node, fmt::format("uses matrix '{}' with coldim {} (a property is a 1-column "
                                  "constant or 2-column (energy, value) table) fix the matrix",
                                  ref, m.coldim));
    }
  }
  return p;
}

namespace {
void check_values(const Scope& s, pugi::xml_node node, const OpticalProperty& p, Check check,
                  std::string_view owner) {
  if (check == Check::none) return;
  auto bad = [&](double v) {
    switch (check) {
      case Check::positive:
        return !(v > 0);
      case Check::probability:
        return !(v >= 0 && v <= 1);
      case Check::nonnegative:
        return !(v >= 0);
      case Check::none:
        break;
    }
    return false;
  };
  const char* need = check == Check::positive      ? "> 0"
                     : check == Check::probability ? "in [0, 1]"
                                                   : ">= 0";
  if (p.constant && bad(p.value)) {
    s.file.fail(node, fmt::format("of {} is {} ({} must be {}) fix the value", owner, p.value,
                                  p.name, need));
  }
  for (const auto& [e, v] : p.points) {
    if (bad(v)) {
      s.file.fail(node, fmt::format("of {} is {} at {:.4g} eV ({:.1f} nm) ({} must be {}) fix the "
                                    "table",
                                    owner, v, e / kEv, kHcEvNm / (e / kEv), p.name, need));
    }
  }
}
}  // namespace

void Scope::read_materials(pugi::xml_node section) {
  check_children(section, {"isotope", "element", "material"}, "<materials>");
  for (pugi::xml_node m : section.children()) {
    if (m.type() != pugi::node_element) continue;
    const std::string_view tag = m.name();
    const std::string name = text(m, "name");
    if (tag == "isotope") {
      check_children(m, {"atom"}, "<isotope>");
      number(m, "Z");
      number(m, "N");
      claim(isotope_names, m, name, "isotope");
    } else if (tag == "element") {
      check_children(m, {"atom", "fraction"}, "<element>");
      for (pugi::xml_node f : m.children("fraction")) {
        number(f, "n");
        const std::string ref = text(f, "ref");
        if (!isotope_names.count(ref)) {
          file.fail(f, fmt::format("refers to the unknown isotope '{}' (an element's fractions "
                                   "name isotopes defined before it) define it or fix the name",
                                   ref));
        }
      }
      if (!m.child("fraction") && !has(m, "Z")) {
        file.fail(m,
                  "has neither Z nor <fraction> children (an element is built from Z and "
                  "<atom> or from isotope fractions) add one of them");
      }
      claim(element_names, m, name, "element");
    } else {
      check_children(m,
                     {"D", "Dref", "T", "Tref", "P", "Pref", "MEE", "MEEref", "atom", "fraction",
                      "composite", "property", "constproperty"},
                     "<material>");
      if (pugi::xml_node d = m.child("D")) {
        const double density = number(d, "value") * unit(d, "unit", UnitKind::density, "g/cm3");
        if (!(density > 0)) {
          file.fail(d, "gives a density <= 0 (a material needs a positive density) fix D");
        }
      }
      for (pugi::xml_node f : m.children()) {
        const std::string_view ft = f.name();
        if (ft != "fraction" && ft != "composite") continue;
        number(f, "n");
        const std::string ref = text(f, "ref");
        const bool element = element_names.count(ref) || nist_element(ref);
        // A G4_ name Geant4 builds from its NIST database on first use.
        const bool material =
            ft == "fraction" && (materials.count(ref) || reader.find_material(ref) ||
                                 (ref.rfind("G4_", 0) == 0 && ref.size() > 3));
        if (!element && !material) {
          file.fail(f, fmt::format("refers to the unknown {} '{}' (it must be defined before the "
                                   "material that uses it) define it or fix the name",
                                   ft == "fraction" ? "element or material" : "element", ref));
        }
      }
      claim(material_names, m, name, "material");
      MaterialDef def;
      def.name = name;
      def.where = file.where(m);
      const std::string owner = "material '" + name + "'";
      for (pugi::xml_node p : m.children()) {
        const std::string_view pt = p.name();
        if (pt != "property" && pt != "constproperty") continue;
        OpticalProperty prop = read_property(p);
        check_values(*this, p, prop, material_check(prop.name), owner);
        if (prop.name.rfind("MIEHG", 0) == 0) {
          file.fail(p, "of " + owner +
                           " is a Mie scattering property (the engine has Rayleigh scattering "
                           "only) remove the MIEHG properties");
        }
        if (prop.name == "ISOTHERMAL_COMPRESSIBILITY" &&
            !m.find_child_by_attribute("name", "RAYLEIGH")) {
          file.fail(p, "of " + owner +
                           " asks Geant4 to compute the Rayleigh length from the compressibility "
                           "(the engine does not) compute it and give RAYLEIGH");
        }
        def.properties[prop.name] = std::move(prop);  // a repeated name replaces, as in Geant4
      }
      for (const auto& [pname, prop] : def.properties) {
        if (material_check(pname) == Check::none && !production_property(pname) &&
            pname != "ISOTHERMAL_COMPRESSIBILITY" && pname != "RS_SCALE_FACTOR") {
          log::warn(
              "{}: property {} of {} has no effect on photon propagation in Acheron "
              "(ignored)",
              prop.where, pname, owner);
        }
      }
      const MaterialDef* stored = reader.add_material(std::move(def), file, m);
      materials[name] = stored;
    }
  }
}

void Scope::read_optical_surface(pugi::xml_node node) {
  check_children(node, {"property", "constproperty"}, "<opticalsurface>");
  const std::string name = text(node, "name");
  claim(surface_names, node, name, "optical surface");
  const std::string model = model_name(text(node, "model"));
  const std::string finish = finish_name(text(node, "finish"));
  const std::string type = type_name(text(node, "type"));
  const double value = number_or(node, "value", 0.0);
  PropertyMap props;
  const std::string owner = "optical surface '" + name + "'";
  for (pugi::xml_node p : node.children()) {
    if (p.type() != pugi::node_element) continue;
    OpticalProperty prop = read_property(p);
    static const std::set<std::string, std::less<>> probabilities = {
        "REFLECTIVITY",          "EFFICIENCY",         "TRANSMITTANCE", "SPECULARLOBECONSTANT",
        "SPECULARSPIKECONSTANT", "BACKSCATTERCONSTANT"};
    static const std::set<std::string, std::less<>> others = {"RINDEX", "REALRINDEX",
                                                              "IMAGINARYRINDEX", "GROUPVEL"};
    if (probabilities.count(prop.name)) {
      check_values(*this, p, prop, Check::probability, owner);
    } else if (!others.count(prop.name)) {
      log::warn("{}: property {} of {} has no effect in Acheron (ignored)", prop.where, prop.name,
                owner);
    }
    props[prop.name] = std::move(prop);
  }
  SurfaceDef def;
  def.name = name;
  def.where = file.where(node);
  optical_surfaces[name] =
      reader.add_surface(map_surface(std::move(def), model, finish, type, value, props));
}
}  // namespace acheron::optics::gdml
