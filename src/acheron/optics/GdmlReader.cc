// GDML reader, part 1: files and line numbers, expressions and units
// (CLHEP's Evaluator with Geant4's system of units), <define> and <setup>;
// the reader that loads files is in GdmlLoader.cc.
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
namespace {

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A plain decimal number (most attributes Geant4 writes): parsed without the
// Evaluator, which is much slower.
std::optional<double> plain_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

struct UnitName {
  std::string_view name;
  UnitKind kind;
};
// Unit names accepted in unit / lunit / aunit attributes (Geant4's unit
// table symbols and names of these categories).
constexpr UnitName kUnits[] = {
    {"pc", UnitKind::length},     {"parsec", UnitKind::length},
    {"km", UnitKind::length},     {"kilometer", UnitKind::length},
    {"m", UnitKind::length},      {"meter", UnitKind::length},
    {"cm", UnitKind::length},     {"centimeter", UnitKind::length},
    {"mm", UnitKind::length},     {"millimeter", UnitKind::length},
    {"um", UnitKind::length},     {"micrometer", UnitKind::length},
    {"nm", UnitKind::length},     {"nanometer", UnitKind::length},
    {"Ang", UnitKind::length},    {"angstrom", UnitKind::length},
    {"fm", UnitKind::length},     {"fermi", UnitKind::length},
    {"rad", UnitKind::angle},     {"radian", UnitKind::angle},
    {"mrad", UnitKind::angle},    {"milliradian", UnitKind::angle},
    {"deg", UnitKind::angle},     {"degree", UnitKind::angle},
    {"eV", UnitKind::energy},     {"electronvolt", UnitKind::energy},
    {"keV", UnitKind::energy},    {"kiloelectronvolt", UnitKind::energy},
    {"MeV", UnitKind::energy},    {"megaelectronvolt", UnitKind::energy},
    {"GeV", UnitKind::energy},    {"gigaelectronvolt", UnitKind::energy},
    {"TeV", UnitKind::energy},    {"teraelectronvolt", UnitKind::energy},
    {"PeV", UnitKind::energy},    {"petaelectronvolt", UnitKind::energy},
    {"J", UnitKind::energy},      {"joule", UnitKind::energy},
    {"s", UnitKind::time},        {"second", UnitKind::time},
    {"ms", UnitKind::time},       {"millisecond", UnitKind::time},
    {"us", UnitKind::time},       {"microsecond", UnitKind::time},
    {"ns", UnitKind::time},       {"nanosecond", UnitKind::time},
    {"ps", UnitKind::time},       {"picosecond", UnitKind::time},
    {"g/cm3", UnitKind::density}, {"mg/cm3", UnitKind::density},
    {"kg/m3", UnitKind::density},
};

std::string_view kind_name(UnitKind kind) {
  switch (kind) {
    case UnitKind::length:
      return "length";
    case UnitKind::angle:
      return "angle";
    case UnitKind::energy:
      return "energy";
    case UnitKind::time:
      return "time";
    case UnitKind::density:
      return "density";
    case UnitKind::any:
      break;
  }
  return "any";
}

std::string unit_examples(UnitKind kind) {
  std::string out;
  for (const auto& u : kUnits) {
    if (kind != UnitKind::any && u.kind != kind) continue;
    if (u.name.size() > 6) continue;  // the symbols, not the long names
    out += out.empty() ? "" : ", ";
    out += u.name;
  }
  return out;
}

std::string evaluator_error(const HepTool::Evaluator& e) {
  switch (e.status()) {
    case HepTool::Evaluator::ERROR_NOT_A_NAME:
      return "not a name";
    case HepTool::Evaluator::ERROR_SYNTAX_ERROR:
      return "syntax error";
    case HepTool::Evaluator::ERROR_UNPAIRED_PARENTHESIS:
      return "unpaired parenthesis";
    case HepTool::Evaluator::ERROR_UNEXPECTED_SYMBOL:
      return "unexpected symbol";
    case HepTool::Evaluator::ERROR_UNKNOWN_VARIABLE:
      return "unknown name";
    case HepTool::Evaluator::ERROR_UNKNOWN_FUNCTION:
      return "unknown function";
    case HepTool::Evaluator::ERROR_EMPTY_PARAMETER:
      return "empty function argument";
    case HepTool::Evaluator::ERROR_CALCULATION_ERROR:
      return "calculation error";
    case HepTool::Evaluator::WARNING_BLANK_STRING:
      return "empty expression";
    default:
      return "error " + std::to_string(e.status());
  }
}

}  // namespace

// ------------------------------------------------------------------ geometry

Affine Affine::compose(const Affine& inner) const {
  Affine out;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      out.m[r * 3 + c] =
          m[r * 3] * inner.m[c] + m[r * 3 + 1] * inner.m[3 + c] + m[r * 3 + 2] * inner.m[6 + c];
    }
  }
  out.t = apply(inner.t);
  return out;
}

double Affine::det() const {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
         m[2] * (m[3] * m[7] - m[4] * m[6]);
}

bool Affine::is_rotation() const {
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const double d =
          m[i * 3] * m[j * 3] + m[i * 3 + 1] * m[j * 3 + 1] + m[i * 3 + 2] * m[j * 3 + 2];
      if (std::abs(d - (i == j ? 1.0 : 0.0)) > 1e-9) return false;
    }
  }
  return det() > 0;
}

Affine gdml_transform(V3 position, V3 angles, V3 scale) {
  Affine a;
  a.m = gdml_placement_rotation(angles.x, angles.y, angles.z);
  const double s[3] = {scale.x, scale.y, scale.z};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) a.m[r * 3 + c] *= s[c];  // R^-1 * diag(s)
  }
  a.t = position;
  return a;
}

// ------------------------------------------------------------------ XmlFile

XmlFile::XmlFile(fs::path path, std::string display)
    : path_(std::move(path)), display_(std::move(display)) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    throw SetupError("cannot open GDML file '" + path_.string() +
                     "' (missing or unreadable) check the path");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  line_starts_.push_back(0);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') line_starts_.push_back(i + 1);
  }
  const pugi::xml_parse_result r =
      doc_.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) {
    const auto offset = static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, r.offset));
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    throw SetupError(fmt::format("{}:{}: not well-formed XML ({}) fix the file", display_,
                                 it - line_starts_.begin(), r.description()));
  }
}

int XmlFile::line(pugi::xml_node node) const {
  const std::ptrdiff_t offset = node.offset_debug();
  if (offset < 0) return 0;
  const auto it =
      std::upper_bound(line_starts_.begin(), line_starts_.end(), static_cast<std::size_t>(offset));
  return static_cast<int>(it - line_starts_.begin());
}

std::string XmlFile::where(pugi::xml_node node) const {
  return display_ + ":" + std::to_string(line(node));
}

void XmlFile::fail(pugi::xml_node node, const std::string& message) const {
  throw SetupError(where(node) + ": " + element_label(node) + " " + message);
}

std::string element_label(pugi::xml_node node) {
  const char* name = node.attribute("name").value();
  if (*name) return fmt::format("<{} name=\"{}\">", node.name(), name);
  if (const char* ref = node.attribute("ref").value(); *ref) {
    return fmt::format("<{} ref=\"{}\">", node.name(), ref);
  }
  return fmt::format("<{}>", node.name());
}

// ------------------------------------------------------------------ Scope

Scope::Scope(Reader& r, fs::path path, std::string display)
    : reader(r), file(std::move(path), std::move(display)) {
  evaluator = std::make_unique<HepTool::Evaluator>();
  evaluator->setStdMath();
  // Geant4's G4GDMLEvaluator: mm, ns, MeV (so eV = 1e-6), rad, eplus = 1.
  evaluator->setSystemOfUnits(1.e+3, 1. / 1.60217733e-25, 1.e+9, 1. / 1.60217733e-10, 1.0, 1.0,
                              1.0);
  // Symbols of Geant4's unit table that this CLHEP's evaluator lacks.
  const std::pair<const char*, double> extra[] = {{"um", 1e-3},
                                                  {"nm", 1e-6},
                                                  {"ps", 1e-3},
                                                  {"us", 1e3},
                                                  {"fm", 1e-12},
                                                  {"Ang", 1e-7},
                                                  {"pc", 3.0856775807e19},
                                                  {"parsec", 3.0856775807e19},
                                                  {"twopi", 2 * std::numbers::pi},
                                                  {"halfpi", std::numbers::pi / 2}};
  for (const auto& [name, value] : extra) {
    if (!evaluator->findVariable(name)) evaluator->setVariable(name, value);
  }
}

double Scope::evaluate(pugi::xml_node node, std::string_view attribute,
                       std::string_view text) const {
  const std::string_view t = trim_view(text);
  if (auto v = plain_number(t)) return *v;
  if (t.empty()) {
    file.fail(node, fmt::format("{} is empty (a number or expression is expected) give a value",
                                attribute));
  }
  const std::string expr(t);
  const double v = evaluator->evaluate(expr.c_str());
  if (evaluator->status() != HepTool::Evaluator::OK) {
    const int pos = std::clamp(evaluator->error_position(), 0, static_cast<int>(expr.size()));
    file.fail(node, fmt::format("{}=\"{}\" cannot be evaluated ({} at \"{}\") use numbers, "
                                "units and names defined in <define>",
                                attribute, expr, evaluator_error(*evaluator), expr.substr(pos)));
  }
  if (!std::isfinite(v)) {
    file.fail(node, fmt::format("{}=\"{}\" is not a finite number (it evaluates to {}) fix the "
                                "expression",
                                attribute, expr, v));
  }
  return v;
}

bool Scope::has(pugi::xml_node node, const char* attribute) const {
  return static_cast<bool>(node.attribute(attribute));
}

double Scope::number(pugi::xml_node node, const char* attribute) const {
  const pugi::xml_attribute a = node.attribute(attribute);
  if (!a) {
    file.fail(node, fmt::format("has no {} attribute (it is required) add {}=\"...\"", attribute,
                                attribute));
  }
  return evaluate(node, attribute, a.value());
}

double Scope::number_or(pugi::xml_node node, const char* attribute, double fallback) const {
  const pugi::xml_attribute a = node.attribute(attribute);
  return a ? evaluate(node, attribute, a.value()) : fallback;
}

int Scope::integer(pugi::xml_node node, const char* attribute, int fallback) const {
  const pugi::xml_attribute a = node.attribute(attribute);
  if (!a) return fallback;
  const double v = evaluate(node, attribute, a.value());
  if (v != std::floor(v) || std::abs(v) > 2147483647.0) {
    file.fail(node, fmt::format("{}=\"{}\" is not an integer (it evaluates to {}) give a whole "
                                "number",
                                attribute, a.value(), v));
  }
  return static_cast<int>(v);
}

std::string Scope::text(pugi::xml_node node, const char* attribute) const {
  const pugi::xml_attribute a = node.attribute(attribute);
  if (!a || !*a.value()) {
    file.fail(node, fmt::format("has no {} attribute (it is required) add {}=\"...\"", attribute,
                                attribute));
  }
  return a.value();
}

double Scope::unit(pugi::xml_node node, const char* attribute, UnitKind kind,
                   const char* fallback) const {
  const pugi::xml_attribute a = node.attribute(attribute);
  const std::string name = a ? std::string(trim_view(a.value())) : std::string(fallback);
  const auto it = std::find_if(std::begin(kUnits), std::end(kUnits),
                               [&](const UnitName& u) { return u.name == name; });
  if (it == std::end(kUnits) || (kind != UnitKind::any && it->kind != kind)) {
    file.fail(node, fmt::format("{}=\"{}\" is not a {} unit (Geant4 accepts only units of that "
                                "category here) use one of {}",
                                attribute, name, kind_name(kind), unit_examples(kind)));
  }
  return evaluate(node, attribute, name);
}

double Scope::length(pugi::xml_node node, const char* attribute) const {
  return number(node, attribute) * unit(node, "lunit", UnitKind::length, "mm");
}
double Scope::length_or(pugi::xml_node node, const char* attribute, double fallback) const {
  return has(node, attribute) ? length(node, attribute) : fallback;
}
double Scope::angle(pugi::xml_node node, const char* attribute) const {
  return number(node, attribute) * unit(node, "aunit", UnitKind::angle, "rad");
}
double Scope::angle_or(pugi::xml_node node, const char* attribute, double fallback) const {
  return has(node, attribute) ? angle(node, attribute) : fallback;
}

void Scope::check_children(pugi::xml_node node, std::initializer_list<std::string_view> allowed,
                           std::string_view what) const {
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
      if (!trim_view(c.value()).empty()) {
        file.fail(node, fmt::format("contains the text \"{}\" ({} holds elements only; an "
                                    "external entity such as &materials; is not expanded) put "
                                    "the elements in the file or use <physvol><file .../>",
                                    escaped(trim_view(c.value()), 40), what));
      }
      continue;
    }
    if (c.type() != pugi::node_element) continue;
    if (std::find(allowed.begin(), allowed.end(), std::string_view(c.name())) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      file.fail(c, fmt::format("is not allowed in {} (Geant4's reader refuses unknown tags) use "
                               "one of {}",
                               what, list));
    }
  }
}

V3 Scope::read_vector(pugi::xml_node node, UnitKind kind, const char* fallback_unit,
                      double fallback) const {
  const double u = kind == UnitKind::any ? 1.0 : unit(node, "unit", kind, fallback_unit);
  return {number_or(node, "x", fallback) * u, number_or(node, "y", fallback) * u,
          number_or(node, "z", fallback) * u};
}

namespace {
template <class Map>
std::optional<V3> vector_child(const Scope& s, pugi::xml_node node, const char* inline_tag,
                               const char* ref_tag, const Map& map, std::string_view kind,
                               UnitKind unit_kind, const char* fallback_unit, double fallback) {
  if (pugi::xml_node c = node.child(inline_tag)) {
    return s.read_vector(c, unit_kind, fallback_unit, fallback);
  }
  if (pugi::xml_node c = node.child(ref_tag)) {
    const std::string ref = s.text(c, "ref");
    const auto it = map.find(ref);
    if (it == map.end()) {
      s.file.fail(c, fmt::format("refers to the unknown {} '{}' (it must be defined in <define> "
                                 "before use) define it or fix the name",
                                 kind, ref));
    }
    return it->second;
  }
  return std::nullopt;
}
}  // namespace

std::optional<V3> Scope::position_child(pugi::xml_node node, const char* inline_tag,
                                        const char* ref_tag) const {
  return vector_child(*this, node, inline_tag, ref_tag, positions, "position", UnitKind::length,
                      "mm", 0.0);
}
std::optional<V3> Scope::rotation_child(pugi::xml_node node, const char* inline_tag,
                                        const char* ref_tag) const {
  return vector_child(*this, node, inline_tag, ref_tag, rotations, "rotation", UnitKind::angle,
                      "rad", 0.0);
}
std::optional<V3> Scope::scale_child(pugi::xml_node node, const char* inline_tag,
                                     const char* ref_tag) const {
  return vector_child(*this, node, inline_tag, ref_tag, scales, "scale", UnitKind::any, "", 1.0);
}

const Matrix& Scope::matrix(pugi::xml_node node, const std::string& ref) const {
  const auto it = matrices.find(ref);
  if (it == matrices.end()) {
    file.fail(node, fmt::format("refers to the unknown matrix '{}' (a property's ref names a "
                                "<matrix> defined in <define> before it) define it or fix the "
                                "name",
                                ref));
  }
  return it->second;
}

const MaterialDef& Scope::material(pugi::xml_node node, const std::string& ref) const {
  if (auto it = materials.find(ref); it != materials.end()) return *it->second;
  if (const MaterialDef* m = reader.find_material(ref)) return *m;
  if (ref.rfind("G4_", 0) == 0) {
    // Geant4 builds G4_ materials from its NIST database on first use; they
    // carry no optical properties.
    MaterialDef def;
    def.name = ref;
    def.where = "Geant4's NIST database";
    def.nist = true;
    return *reader.add_material(std::move(def), file, node);
  }
  file.fail(node, fmt::format("refers to the unknown material '{}' (materials must be defined "
                              "in <materials> before use) define it or fix the name",
                              ref));
}

solids::SolidPtr Scope::solid(pugi::xml_node node, const std::string& ref) const {
  const auto it = solids.find(ref);
  if (it == solids.end()) {
    file.fail(node, fmt::format("refers to the unknown solid '{}' (solids must be defined in "
                                "<solids> before use) define it or fix the name",
                                ref));
  }
  return it->second;
}

const Volume& Scope::volume(pugi::xml_node node, const std::string& ref) const {
  const auto it = volumes.find(ref);
  if (it == volumes.end()) {
    file.fail(node, fmt::format("refers to the unknown volume '{}' (a volume must be defined "
                                "before the volume that places it) define it earlier or fix the "
                                "name",
                                ref));
  }
  return *it->second;
}

void Scope::claim(std::unordered_map<std::string, std::string>& names, pugi::xml_node node,
                  const std::string& name, std::string_view kind) const {
  const auto [it, inserted] = names.emplace(name, file.where(node));
  if (!inserted) {
    file.fail(node, fmt::format("redefines the {} '{}' first defined at {} (names are unique "
                                "within a file's {}s, as Geant4 requires) rename one",
                                kind, name, it->second, kind));
  }
}

void Scope::read() {
  const pugi::xml_node root = file.root();
  if (std::string_view(root.name()) != "gdml") {
    throw SetupError(
        fmt::format("{}: the root element is <{}> (a GDML file's root is <gdml>) "
                    "check that this is a GDML file",
                    file.where(root), root.name()));
  }
  check_children(root,
                 {"define", "materials", "solids", "structure", "setup", "userinfo", "extension"},
                 "<gdml>");
  for (pugi::xml_node s = root.first_child(); s; s = s.next_sibling()) {
    if (s.type() != pugi::node_element) continue;
    const std::string_view tag = s.name();
    if (tag == "define") read_define(s);
    if (tag == "materials") read_materials(s);
    if (tag == "solids") read_solids(s);
    if (tag == "structure") read_structure(s);
    if (tag == "setup") read_setup(s);
    // userinfo (auxiliary data for user code) and extension (colours) have
    // no optical meaning.
  }
  done = true;
}

void Scope::read_define(pugi::xml_node section) {
  check_children(
      section,
      {"constant", "variable", "quantity", "expression", "position", "rotation", "scale", "matrix"},
      "<define>");
  for (pugi::xml_node d : section.children()) {
    if (d.type() != pugi::node_element) continue;
    const std::string_view tag = d.name();
    const std::string name = text(d, "name");
    if (tag == "constant" || tag == "variable" || tag == "quantity" || tag == "expression") {
      double v = 0;
      if (tag == "expression") {
        v = evaluate(d, "expression", d.child_value());
      } else {
        v = number(d, "value");
        if (tag == "quantity" && has(d, "unit")) v *= unit(d, "unit", UnitKind::any, "");
      }
      claim(define_names, d, name, "define");
      if (evaluator->findVariable(name.c_str())) {
        file.fail(d, fmt::format("redefines '{}', a unit or constant the evaluator already knows "
                                 "(Geant4 refuses this) choose another name",
                                 name));
      }
      evaluator->setVariable(name.c_str(), v);
      if (evaluator->status() != HepTool::Evaluator::OK) {
        file.fail(d, fmt::format("has the name '{}', which the evaluator refuses ({}) use "
                                 "letters, digits and _ starting with a letter",
                                 name, evaluator_error(*evaluator)));
      }
    } else if (tag == "position") {
      claim(define_names, d, name, "define");
      positions[name] = read_vector(d, UnitKind::length, "mm", 0.0);
    } else if (tag == "rotation") {
      claim(define_names, d, name, "define");
      rotations[name] = read_vector(d, UnitKind::angle, "rad", 0.0);
    } else if (tag == "scale") {
      claim(define_names, d, name, "define");
      scales[name] = read_vector(d, UnitKind::any, "", 1.0);
    } else if (tag == "matrix") {
      claim(define_names, d, name, "define");
      Matrix m;
      m.where = file.where(d);
      m.coldim = integer(d, "coldim", 0);
      if (m.coldim < 1) {
        file.fail(d,
                  "has coldim < 1 or none (coldim is the number of columns) give coldim=\"2\" "
                  "for (energy, value) rows");
      }
      const std::string_view values = d.attribute("values").value();
      std::size_t i = 0;
      while (i < values.size()) {
        while (i < values.size() && std::isspace(static_cast<unsigned char>(values[i]))) ++i;
        std::size_t j = i;
        while (j < values.size() && !std::isspace(static_cast<unsigned char>(values[j]))) ++j;
        if (j > i) m.values.push_back(evaluate(d, "values", values.substr(i, j - i)));
        i = j;
      }
      if (m.values.empty() || m.values.size() % static_cast<std::size_t>(m.coldim) != 0) {
        file.fail(d, fmt::format("has {} values, not a multiple of coldim {} (Geant4: the matrix "
                                 "is not filled correctly) give whole rows",
                                 m.values.size(), m.coldim));
      }
      matrices[name] = std::move(m);
    }
  }
}

void Scope::read_setup(pugi::xml_node section) {
  check_children(section, {"world"}, "<setup>");
  const pugi::xml_node w = section.child("world");
  if (!w) file.fail(section, "has no <world ref=.../> (a setup names the world volume) add one");
  const Volume& v = volume(w, text(w, "ref"));
  // Geant4 uses the setup named "Default", else the first one.
  const bool is_default = std::string_view(section.attribute("name").value()) == "Default";
  if (!world || is_default) world = &v;
  if (v.assembly) {
    file.fail(w,
              "names an assembly as the world (the world must be a volume with a solid) "
              "name a <volume>");
  }
}

}  // namespace gdml
}  // namespace acheron::optics
