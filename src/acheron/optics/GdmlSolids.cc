// GDML reader, part 3: <solids> into solids::Solid (values in mm and rad,
// GDML's field meanings, see Solids.hh), and the kernel-free mesher of the
// planar solids.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>

#include "acheron/core/Error.hh"
#include "acheron/optics/GdmlInternal.hh"

namespace acheron::optics {
namespace gdml {
namespace {

// Geant4 solids (and GDML elements) the reader knows but Solids.hh has no
// parameters for.
constexpr std::string_view kUnsupportedSolids[] = {
    "cutTube", "elcone",     "arb8",           "hype",       "paraboloid",
    "tet",     "twistedbox", "twistedtrap",    "twistedtrd", "twistedtubs",
    "xtru",    "multiUnion", "reflectedSolid", "polycone2"};

[[noreturn]] void bad_value(const Scope& s, pugi::xml_node node, std::string_view what,
                            double value, std::string_view why) {
  s.file.fail(node, fmt::format("has {} = {} ({}) fix the value", what, value, why));
}

void require_positive(const Scope& s, pugi::xml_node node, const char* attr, double v) {
  if (!(v > 0)) bad_value(s, node, attr, v, "Geant4 refuses a solid with this dimension <= 0");
}

void require_phi(const Scope& s, pugi::xml_node node, double deltaphi) {
  if (!(deltaphi > 0)) {
    bad_value(s, node, "deltaphi", deltaphi, "the angular extent must be > 0");
  }
}

solids::Transform to_transform(V3 position, V3 angles) {
  solids::Transform t;
  t.rotation = gdml_placement_rotation(angles.x, angles.y, angles.z);
  t.translation = {position.x, position.y, position.z};
  return t;
}

std::vector<solids::ZPlane> zplanes(const Scope& s, pugi::xml_node node) {
  std::vector<solids::ZPlane> out;
  const double lunit = s.unit(node, "lunit", UnitKind::length, "mm");
  for (pugi::xml_node z : node.children("zplane")) {
    out.push_back({s.number_or(z, "rmin", 0.0) * lunit, s.number(z, "rmax") * lunit,
                   s.number(z, "z") * lunit});
  }
  if (out.size() < 2) {
    s.file.fail(node, fmt::format("has {} <zplane> children (at least two are needed) add the "
                                  "z planes",
                                  out.size()));
  }
  return out;
}

std::vector<solids::RZPoint> rzpoints(const Scope& s, pugi::xml_node node) {
  std::vector<solids::RZPoint> out;
  const double lunit = s.unit(node, "lunit", UnitKind::length, "mm");
  for (pugi::xml_node p : node.children("rzpoint")) {
    out.push_back({s.number(p, "r") * lunit, s.number(p, "z") * lunit});
  }
  if (out.size() < 3) {
    s.file.fail(node, fmt::format("has {} <rzpoint> children (an (r, z) outline needs at least "
                                  "three) add the points",
                                  out.size()));
  }
  return out;
}

solids::Tessellated tessellated(const Scope& s, pugi::xml_node node) {
  s.check_children(node, {"triangular", "quadrangular"}, "<tessellated>");
  solids::Tessellated t;
  std::map<std::array<double, 3>, int> index;
  auto vertex = [&](const std::array<double, 3>& v) {
    auto [it, inserted] = index.emplace(v, static_cast<int>(t.vertices.size()));
    if (inserted) t.vertices.push_back(v);
    return it->second;
  };
  for (pugi::xml_node f : node.children()) {
    if (f.type() != pugi::node_element) continue;
    const int n = std::string_view(f.name()) == "triangular" ? 3 : 4;
    const double lunit = s.unit(f, "lunit", UnitKind::length, "mm");
    const std::string type = f.attribute("type") ? f.attribute("type").value() : "ABSOLUTE";
    if (type != "ABSOLUTE" && type != "RELATIVE") {
      s.file.fail(f, fmt::format("has type=\"{}\" (a facet's vertices are ABSOLUTE or RELATIVE) "
                                 "use one of those",
                                 type));
    }
    std::array<V3, 4> v{};
    for (int k = 0; k < n; ++k) {
      const std::string attr = "vertex" + std::to_string(k + 1);
      const std::string ref = s.text(f, attr.c_str());
      const auto it = s.positions.find(ref);
      if (it == s.positions.end()) {
        s.file.fail(f, fmt::format("{} refers to the unknown position '{}' (facet vertices name "
                                   "<position>s defined in <define>) define it or fix the name",
                                   attr, ref));
      }
      v[k] = {it->second.x * lunit, it->second.y * lunit, it->second.z * lunit};
      if (type == "RELATIVE" && k > 0) {
        v[k] = {v[0].x + v[k].x, v[0].y + v[k].y, v[0].z + v[k].z};
      }
    }
    // Geant4 refuses facets with (nearly) zero area.
    auto area2 = [&](V3 a, V3 b, V3 c) {
      const V3 u{b.x - a.x, b.y - a.y, b.z - a.z}, w{c.x - a.x, c.y - a.y, c.z - a.z};
      const V3 x{u.y * w.z - u.z * w.y, u.z * w.x - u.x * w.z, u.x * w.y - u.y * w.x};
      return std::sqrt(x.x * x.x + x.y * x.y + x.z * x.z);
    };
    if (!(area2(v[0], v[1], v[2]) > 1e-18) || (n == 4 && !(area2(v[0], v[2], v[3]) > 1e-18))) {
      s.file.fail(f,
                  "is degenerate (its vertices are collinear or repeated, and Geant4 refuses "
                  "such a facet) fix its vertices");
    }
    std::vector<int> facet;
    for (int k = 0; k < n; ++k) facet.push_back(vertex({v[k].x, v[k].y, v[k].z}));
    t.facets.push_back(std::move(facet));
  }
  if (t.facets.size() < 4) {
    s.file.fail(node, fmt::format("has {} facets (a closed solid needs at least four) add the "
                                  "facets",
                                  t.facets.size()));
  }
  return t;
}

}  // namespace

void Scope::read_solids(pugi::xml_node section) {
  for (pugi::xml_node n : section.children()) {
    if (n.type() == pugi::node_pcdata &&
        std::string_view(n.value()).find_first_not_of(" \t\r\n") != std::string_view::npos) {
      file.fail(section,
                "contains text (<solids> holds elements only; an external entity is not "
                "expanded) put the solids in the file");
    }
    if (n.type() != pugi::node_element) continue;
    if (std::string_view(n.name()) == "opticalsurface") {
      read_optical_surface(n);
      continue;
    }
    const std::string name = text(n, "name");
    solids::SolidPtr solid = read_solid(n);
    claim(solid_names, n, name, "solid");
    solids[name] = std::move(solid);
  }
}

solids::SolidPtr Scope::read_solid(pugi::xml_node n) {
  const std::string_view tag = n.name();
  auto out = std::make_shared<solids::Solid>();
  out->name = text(n, "name");
  out->where = file.where(n);
  if (tag == "box") {
    solids::Box b{length(n, "x"), length(n, "y"), length(n, "z")};
    require_positive(*this, n, "x", b.x);
    require_positive(*this, n, "y", b.y);
    require_positive(*this, n, "z", b.z);
    out->shape = b;
  } else if (tag == "tube") {
    solids::Tube t{length_or(n, "rmin", 0), length(n, "rmax"), length(n, "z"),
                   angle_or(n, "startphi", 0), angle(n, "deltaphi")};
    require_positive(*this, n, "z", t.z);
    if (!(t.rmax > t.rmin) || t.rmin < 0)
      bad_value(*this, n, "rmax", t.rmax, "need rmax > rmin >= 0");
    require_phi(*this, n, t.deltaphi);
    out->shape = t;
  } else if (tag == "cone") {
    solids::Cone c{length_or(n, "rmin1", 0), length(n, "rmax1"), length_or(n, "rmin2", 0),
                   length(n, "rmax2"),       length(n, "z"),     angle_or(n, "startphi", 0),
                   angle(n, "deltaphi")};
    require_positive(*this, n, "z", c.z);
    require_phi(*this, n, c.deltaphi);
    out->shape = c;
  } else if (tag == "sphere") {
    solids::Sphere s{length_or(n, "rmin", 0),      length(n, "rmax"),
                     angle_or(n, "startphi", 0),   angle(n, "deltaphi"),
                     angle_or(n, "starttheta", 0), angle(n, "deltatheta")};
    if (!(s.rmax > s.rmin) || s.rmin < 0)
      bad_value(*this, n, "rmax", s.rmax, "need rmax > rmin >= 0");
    require_phi(*this, n, s.deltaphi);
    if (!(s.deltatheta > 0)) bad_value(*this, n, "deltatheta", s.deltatheta, "must be > 0");
    out->shape = s;
  } else if (tag == "orb") {
    solids::Orb o{length(n, "r")};
    require_positive(*this, n, "r", o.r);
    out->shape = o;
  } else if (tag == "ellipsoid") {
    solids::Ellipsoid e{length(n, "ax"), length(n, "by"), length(n, "cz"), length_or(n, "zcut1", 0),
                        length_or(n, "zcut2", 0)};
    require_positive(*this, n, "ax", e.ax);
    require_positive(*this, n, "by", e.by);
    require_positive(*this, n, "cz", e.cz);
    out->shape = e;
  } else if (tag == "eltube") {
    solids::EllipticalTube e{length(n, "dx"), length(n, "dy"), length(n, "dz")};
    require_positive(*this, n, "dx", e.dx);
    require_positive(*this, n, "dy", e.dy);
    require_positive(*this, n, "dz", e.dz);
    out->shape = e;
  } else if (tag == "torus") {
    solids::Torus t{length_or(n, "rmin", 0), length(n, "rmax"), length(n, "rtor"),
                    angle_or(n, "startphi", 0), angle(n, "deltaphi")};
    if (!(t.rmax > t.rmin) || !(t.rtor >= t.rmax)) {
      bad_value(*this, n, "rmax", t.rmax, "need rmin < rmax <= rtor");
    }
    require_phi(*this, n, t.deltaphi);
    out->shape = t;
  } else if (tag == "polycone") {
    check_children(n, {"zplane"}, "<polycone>");
    out->shape =
        solids::Polycone{angle_or(n, "startphi", 0), angle(n, "deltaphi"), zplanes(*this, n)};
  } else if (tag == "genericPolycone") {
    check_children(n, {"rzpoint"}, "<genericPolycone>");
    out->shape = solids::GenericPolycone{angle_or(n, "startphi", 0), angle(n, "deltaphi"),
                                         rzpoints(*this, n)};
  } else if (tag == "polyhedra" || tag == "genericPolyhedra") {
    const bool generic = tag == "genericPolyhedra";
    check_children(n, {generic ? "rzpoint" : "zplane"},
                   generic ? "<genericPolyhedra>" : "<polyhedra>");
    const int sides = integer(n, "numsides", 0);
    if (sides < 1) bad_value(*this, n, "numsides", sides, "a polyhedra needs at least one side");
    if (generic) {
      out->shape = solids::GenericPolyhedra{angle_or(n, "startphi", 0), angle(n, "deltaphi"), sides,
                                            rzpoints(*this, n)};
    } else {
      out->shape = solids::Polyhedra{angle_or(n, "startphi", 0), angle(n, "deltaphi"), sides,
                                     zplanes(*this, n)};
    }
  } else if (tag == "trd") {
    solids::Trd t{length(n, "x1"), length(n, "x2"), length(n, "y1"), length(n, "y2"),
                  length(n, "z")};
    require_positive(*this, n, "z", t.z);
    out->shape = t;
  } else if (tag == "trap") {
    solids::Trap t{length(n, "z"),           angle_or(n, "theta", 0), angle_or(n, "phi", 0),
                   length(n, "y1"),          length(n, "x1"),         length(n, "x2"),
                   angle_or(n, "alpha1", 0), length(n, "y2"),         length(n, "x3"),
                   length(n, "x4"),          angle_or(n, "alpha2", 0)};
    require_positive(*this, n, "z", t.z);
    out->shape = t;
  } else if (tag == "para") {
    solids::Para p{length(n, "x"),          length(n, "y"),          length(n, "z"),
                   angle_or(n, "alpha", 0), angle_or(n, "theta", 0), angle_or(n, "phi", 0)};
    require_positive(*this, n, "x", p.x);
    require_positive(*this, n, "y", p.y);
    require_positive(*this, n, "z", p.z);
    out->shape = p;
  } else if (tag == "tessellated") {
    out->shape = tessellated(*this, n);
  } else if (tag == "scaledSolid") {
    check_children(n, {"solidref", "scale", "scaleref"}, "<scaledSolid>");
    const pugi::xml_node ref = n.child("solidref");
    if (!ref) file.fail(n, "has no <solidref ref=.../> (the solid to scale) add it");
    solids::ScaledSolid s;
    s.solid = solid(ref, text(ref, "ref"));
    const auto scale = scale_child(n, "scale", "scaleref");
    if (!scale) file.fail(n, "has no <scale> or <scaleref> (the scale factors) add one");
    if (scale->x == 0 || scale->y == 0 || scale->z == 0) {
      file.fail(n, "has a zero scale factor (the solid would be flat) fix the scale");
    }
    s.scale = {scale->x, scale->y, scale->z};
    out->shape = s;
  } else if (tag == "union" || tag == "subtraction" || tag == "intersection") {
    check_children(n,
                   {"first", "second", "position", "positionref", "rotation", "rotationref",
                    "firstposition", "firstpositionref", "firstrotation", "firstrotationref"},
                   "<" + std::string(tag) + ">");
    solids::Boolean b;
    b.op = tag == "union"         ? solids::Boolean::Op::union_
           : tag == "subtraction" ? solids::Boolean::Op::subtraction
                                  : solids::Boolean::Op::intersection;
    const pugi::xml_node first = n.child("first");
    const pugi::xml_node second = n.child("second");
    if (!first || !second) {
      file.fail(n,
                "lacks <first ref=.../> or <second ref=.../> (a boolean solid combines two "
                "solids) add both");
    }
    b.first = solid(first, text(first, "ref"));
    b.second = solid(second, text(second, "ref"));
    b.second_transform = to_transform(position_child(n, "position", "positionref").value_or(V3{}),
                                      rotation_child(n, "rotation", "rotationref").value_or(V3{}));
    b.first_transform =
        to_transform(position_child(n, "firstposition", "firstpositionref").value_or(V3{}),
                     rotation_child(n, "firstrotation", "firstrotationref").value_or(V3{}));
    out->shape = b;
  } else if (std::find(std::begin(kUnsupportedSolids), std::end(kUnsupportedSolids), tag) !=
             std::end(kUnsupportedSolids)) {
    file.fail(n,
              "is a solid type the reader does not support yet (Solids.hh has no parameters "
              "for it) describe it with supported solids (a tessellated solid always works)");
  } else {
    file.fail(n,
              "is not a GDML solid (Geant4's reader refuses unknown tags in <solids>) check "
              "the spelling");
  }
  return out;
}

}  // namespace gdml

}  // namespace acheron::optics
