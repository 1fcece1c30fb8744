// Solid mesher, part one: messages and the validation of every solid's
// parameters before any kernel call.
#include "acheron/optics/SolidMesherInternal.hh"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <numbers>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "acheron/core/Error.hh"

namespace acheron::optics {
namespace mesher {

// ---------------------------------------------------------------- messages

std::string label(const Solid& s) {
  std::string out = "solid '" + s.name + "'";
  if (!s.where.empty()) out += " (" + s.where + ")";
  return out;
}

[[noreturn]] void fail(const Solid& s, const std::string& what) {
  throw SetupError(label(s) + ": " + what);
}

std::string num(double v) {
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}

bool is_full_phi(double deltaphi) {
  return deltaphi >= kTwoPi * (1 - 1e-12);
}

// sin and cos of a polar angle, exact on the axis (theta = 0 or pi) so that
// profile points there lie exactly on it.
double sin_theta(double t) {
  return (t <= 0 || t >= kPi) ? 0.0 : std::sin(t);
}
double cos_theta(double t) {
  return t <= 0 ? 1.0 : (t >= kPi ? -1.0 : std::cos(t));
}

// ---------------------------------------------------------------- validation

void check_finite(const Solid& s, std::initializer_list<std::pair<const char*, double>> fields) {
  for (const auto& [name, v] : fields) {
    if (!std::isfinite(v)) {
      fail(s, std::string(name) + " is " + num(v) +
                  " (every parameter must be a finite number) fix the GDML value or expression");
    }
  }
}

void check_positive(const Solid& s, const char* name, double v, const char* why) {
  if (!(v > 0))
    fail(s, std::string(name) + " = " + num(v) + " mm (" + why + ") give it a value > 0");
}

void check_phi(const Solid& s, double startphi, double deltaphi) {
  check_finite(s, {{"startphi", startphi}, {"deltaphi", deltaphi}});
  if (!(deltaphi > 0)) {
    fail(s, "deltaphi = " + num(deltaphi) +
                " rad (the phi segment must open a positive angle) give deltaphi in (0, 2*pi]");
  }
}

void check_radii(const Solid& s, const char* inner, double rmin, const char* outer, double rmax) {
  if (rmin < 0) {
    fail(s, std::string(inner) + " = " + num(rmin) +
                " mm (a radius cannot be negative) use 0 for a solid without a hole");
  }
  if (!(rmax > rmin)) {
    fail(s, std::string(inner) + " = " + num(rmin) + " mm >= " + outer + " = " + num(rmax) +
                " mm (the inner radius must be smaller than the outer one) fix the radii");
  }
}

double outline_area(const Outline& o) {
  double a = 0;
  for (std::size_t i = 0; i < o.size(); ++i) {
    const auto& p = o[i];
    const auto& q = o[(i + 1) % o.size()];
    a += p.r * q.z - q.r * p.z;
  }
  return a / 2;
}

double outline_scale(const Outline& o) {
  double s = 0;
  for (const auto& p : o) s = std::max({s, std::abs(p.r), std::abs(p.z)});
  return std::max(s, 1e-300);
}

// Drops repeated points and points in the middle of a straight run (as
// Geant4's reducible polygon does), so every outline edge is one face.
void reduce_outline(Outline& o) {
  const double eps = 1e-12 * outline_scale(o);
  bool changed = true;
  while (changed && o.size() >= 3) {
    changed = false;
    for (std::size_t i = 0; i < o.size() && o.size() >= 3; ++i) {
      const auto& p = o[(i + o.size() - 1) % o.size()];
      const auto& c = o[i];
      const auto& n = o[(i + 1) % o.size()];
      const double dr1 = c.r - p.r, dz1 = c.z - p.z, dr2 = n.r - c.r, dz2 = n.z - c.z;
      const bool repeated = std::abs(dr2) <= eps && std::abs(dz2) <= eps;
      const double cross = dr1 * dz2 - dz1 * dr2;
      const double len = std::hypot(dr1, dz1) * std::hypot(dr2, dz2);
      const bool straight = std::abs(cross) <= 1e-12 * len && dr1 * dr2 + dz1 * dz2 > 0;
      if (repeated || straight) {
        o.erase(o.begin() + static_cast<std::ptrdiff_t>(repeated ? (i + 1) % o.size() : i));
        changed = true;
        break;
      }
    }
  }
  if (o.size() == 2 && std::hypot(o[0].r - o[1].r, o[0].z - o[1].z) <= eps) o.pop_back();
}

int orientation(const solids::RZPoint& a, const solids::RZPoint& b, const solids::RZPoint& c,
                double eps) {
  const double v = (b.r - a.r) * (c.z - a.z) - (b.z - a.z) * (c.r - a.r);
  return v > eps ? 1 : (v < -eps ? -1 : 0);
}

bool on_segment(const solids::RZPoint& a, const solids::RZPoint& b, const solids::RZPoint& p,
                double eps) {
  return p.r >= std::min(a.r, b.r) - eps && p.r <= std::max(a.r, b.r) + eps &&
         p.z >= std::min(a.z, b.z) - eps && p.z <= std::max(a.z, b.z) + eps;
}

// True if the closed segments ab and cd meet (crossing, touching or overlapping).
bool segments_meet(const solids::RZPoint& a, const solids::RZPoint& b, const solids::RZPoint& c,
                   const solids::RZPoint& d, double scale) {
  const double eps = 1e-12 * scale * scale, leps = 1e-12 * scale;
  const int o1 = orientation(a, b, c, eps), o2 = orientation(a, b, d, eps);
  const int o3 = orientation(c, d, a, eps), o4 = orientation(c, d, b, eps);
  if (o1 != o2 && o3 != o4 && o1 * o2 <= 0 && o3 * o4 <= 0 &&
      !(o1 == 0 || o2 == 0 || o3 == 0 || o4 == 0)) {
    return true;
  }
  if (o1 == 0 && on_segment(a, b, c, leps)) return true;
  if (o2 == 0 && on_segment(a, b, d, leps)) return true;
  if (o3 == 0 && on_segment(c, d, a, leps)) return true;
  if (o4 == 0 && on_segment(c, d, b, leps)) return true;
  return false;
}

// Reduces, checks and orients an outline; `what` names it in messages.
void check_outline(const Solid& s, Outline& o, const std::string& what) {
  for (const auto& p : o) {
    check_finite(s, {{"r", p.r}, {"z", p.z}});
    if (p.r < 0) {
      fail(s, what + " has r = " + num(p.r) +
                  " mm (radii are distances from the z axis, never negative) fix the point");
    }
  }
  reduce_outline(o);
  if (o.size() < 3) {
    fail(s, what + " has fewer than 3 distinct points (it encloses no area) give at least 3");
  }
  const double scale = outline_scale(o);
  const double area = outline_area(o);
  if (std::abs(area) <= 1e-12 * scale * scale) {
    fail(s, what + " encloses zero area (its points are collinear) fix the points");
  }
  if (area < 0) std::reverse(o.begin(), o.end());
  const std::size_t n = o.size();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const bool adjacent = j == i + 1 || (i == 0 && j == n - 1);
      if (adjacent) {
        // Adjacent edges share one point; they must not fold back on each other.
        const auto& a = o[i];
        const auto& b = o[(i + 1) % n];
        const auto& c = o[j];
        const auto& d = o[(j + 1) % n];
        const solids::RZPoint& shared = (j == i + 1) ? b : a;
        const solids::RZPoint& far1 = (j == i + 1) ? a : b;
        const solids::RZPoint& far2 = (j == i + 1) ? d : c;
        const double cr =
            (far1.r - shared.r) * (far2.z - shared.z) - (far1.z - shared.z) * (far2.r - shared.r);
        const double dt =
            (far1.r - shared.r) * (far2.r - shared.r) + (far1.z - shared.z) * (far2.z - shared.z);
        if (std::abs(cr) <= 1e-12 * scale * scale && dt > 0) {
          fail(s, what + " folds back on itself at point (" + num(shared.r) + ", " + num(shared.z) +
                      ") (edges overlap) fix the points");
        }
        continue;
      }
      if (segments_meet(o[i], o[(i + 1) % n], o[j], o[(j + 1) % n], scale)) {
        fail(s, what + " crosses or touches itself between (" + num(o[i].r) + ", " + num(o[i].z) +
                    ") and (" + num(o[j].r) + ", " + num(o[j].z) +
                    ") (the outline must be a simple polygon) fix the points or z-planes");
      }
    }
  }
}

// The (r, z) outline of a polycone or polyhedra given by z-planes: outer
// radii upwards, inner radii back down. `radial` scales the radii (the
// polyhedra's side distance -> corner radius).
Outline zplane_outline(const Solid& s, std::vector<solids::ZPlane> planes, double radial,
                       const char* kind) {
  if (planes.size() < 2) {
    fail(s, std::string(kind) + " has " + std::to_string(planes.size()) +
                " z-plane(s) (at least 2 are needed to enclose a volume) add z-planes");
  }
  for (const auto& p : planes) {
    check_finite(s, {{"zplane rmin", p.rmin}, {"zplane rmax", p.rmax}, {"zplane z", p.z}});
    if (p.rmin < 0 || p.rmax < p.rmin) {
      fail(s, "z-plane at z = " + num(p.z) + " mm has rmin = " + num(p.rmin) + " mm, rmax = " +
                  num(p.rmax) + " mm (need 0 <= rmin <= rmax) fix the z-plane's radii");
    }
  }
  bool up = true, down = true;
  for (std::size_t i = 1; i < planes.size(); ++i) {
    up = up && planes[i].z >= planes[i - 1].z;
    down = down && planes[i].z <= planes[i - 1].z;
  }
  if (!up && !down) {
    fail(s, std::string(kind) +
                " z-planes are not in order (z must be monotonic) sort the z-planes by z");
  }
  if (!up) std::reverse(planes.begin(), planes.end());
  Outline o;
  for (const auto& p : planes) o.push_back({p.rmax * radial, p.z});
  for (auto it = planes.rbegin(); it != planes.rend(); ++it)
    o.push_back({it->rmin * radial, it->z});
  return o;
}

void check_trap_like_angle(const Solid& s, const char* name, double a) {
  if (!(std::abs(a) < kPi / 2)) {
    fail(s, std::string(name) + " = " + num(a) +
                " rad (a tilt angle must lie strictly between -pi/2 and pi/2) fix the angle");
  }
}

void validate_shape(const Solid& s, const solids::Box& b) {
  check_finite(s, {{"x", b.x}, {"y", b.y}, {"z", b.z}});
  check_positive(s, "box x", b.x, "a box needs three positive full lengths");
  check_positive(s, "box y", b.y, "a box needs three positive full lengths");
  check_positive(s, "box z", b.z, "a box needs three positive full lengths");
}
void validate_shape(const Solid& s, const solids::Tube& t) {
  check_finite(s, {{"rmin", t.rmin}, {"rmax", t.rmax}, {"z", t.z}});
  check_radii(s, "tube rmin", t.rmin, "rmax", t.rmax);
  check_positive(s, "tube z", t.z, "the full length along z must be positive");
  check_phi(s, t.startphi, t.deltaphi);
}
void validate_shape(const Solid& s, const solids::Cone& c) {
  check_finite(
      s,
      {{"rmin1", c.rmin1}, {"rmax1", c.rmax1}, {"rmin2", c.rmin2}, {"rmax2", c.rmax2}, {"z", c.z}});
  if (c.rmin1 < 0 || c.rmin2 < 0 || c.rmax1 < c.rmin1 || c.rmax2 < c.rmin2 ||
      (c.rmax1 <= c.rmin1 && c.rmax2 <= c.rmin2)) {
    fail(s, "cone radii rmin1 = " + num(c.rmin1) + ", rmax1 = " + num(c.rmax1) +
                ", rmin2 = " + num(c.rmin2) + ", rmax2 = " + num(c.rmax2) +
                " mm (need 0 <= rmin <= rmax at both ends and rmin < rmax at one end at least)"
                " fix the radii");
  }
  check_positive(s, "cone z", c.z, "the full length along z must be positive");
  check_phi(s, c.startphi, c.deltaphi);
}
void validate_shape(const Solid& s, const solids::Sphere& p) {
  check_finite(s, {{"rmin", p.rmin},
                   {"rmax", p.rmax},
                   {"starttheta", p.starttheta},
                   {"deltatheta", p.deltatheta}});
  check_radii(s, "sphere rmin", p.rmin, "rmax", p.rmax);
  check_phi(s, p.startphi, p.deltaphi);
  if (p.starttheta < 0 || p.starttheta >= kPi) {
    fail(s, "starttheta = " + num(p.starttheta) +
                " rad (theta is measured from +z and must lie in [0, pi)) fix starttheta");
  }
  if (!(p.deltatheta > 0)) {
    fail(s, "deltatheta = " + num(p.deltatheta) +
                " rad (the theta segment must open a positive angle) give deltatheta > 0");
  }
}
void validate_shape(const Solid& s, const solids::Orb& o) {
  check_finite(s, {{"r", o.r}});
  check_positive(s, "orb r", o.r, "a sphere needs a positive radius");
}
std::pair<double, double> ellipsoid_cuts(const solids::Ellipsoid& e) {
  // GDML/Geant4: 0 (or a cut beyond the semi-axis) means no cut.
  const double lo = (e.zcut1 == 0 || e.zcut1 <= -e.cz) ? -e.cz : e.zcut1;
  const double hi = (e.zcut2 == 0 || e.zcut2 >= e.cz) ? e.cz : e.zcut2;
  return {lo, hi};
}
void validate_shape(const Solid& s, const solids::Ellipsoid& e) {
  check_finite(s,
               {{"ax", e.ax}, {"by", e.by}, {"cz", e.cz}, {"zcut1", e.zcut1}, {"zcut2", e.zcut2}});
  check_positive(s, "ellipsoid ax", e.ax, "semi-axes must be positive");
  check_positive(s, "ellipsoid by", e.by, "semi-axes must be positive");
  check_positive(s, "ellipsoid cz", e.cz, "semi-axes must be positive");
  const auto [lo, hi] = ellipsoid_cuts(e);
  if (!(lo < hi) || lo >= e.cz || hi <= -e.cz) {
    fail(s, "ellipsoid z cuts zcut1 = " + num(e.zcut1) + ", zcut2 = " + num(e.zcut2) +
                " mm leave nothing of the ellipsoid (need zcut1 < zcut2 within +-cz = " +
                num(e.cz) + " mm) fix the cuts");
  }
}
void validate_shape(const Solid& s, const solids::EllipticalTube& e) {
  check_finite(s, {{"dx", e.dx}, {"dy", e.dy}, {"dz", e.dz}});
  check_positive(s, "eltube dx", e.dx, "half lengths must be positive");
  check_positive(s, "eltube dy", e.dy, "half lengths must be positive");
  check_positive(s, "eltube dz", e.dz, "half lengths must be positive");
}
void validate_shape(const Solid& s, const solids::Torus& t) {
  check_finite(s, {{"rmin", t.rmin}, {"rmax", t.rmax}, {"rtor", t.rtor}});
  check_radii(s, "torus rmin", t.rmin, "rmax", t.rmax);
  if (!(t.rtor > t.rmax)) {
    fail(s, "torus rtor = " + num(t.rtor) + " mm <= rmax = " + num(t.rmax) +
                " mm (the tube would cross the axis and intersect itself) make rtor > rmax");
  }
  check_phi(s, t.startphi, t.deltaphi);
}
void validate_shape(const Solid& s, const solids::Polycone& p) {
  check_phi(s, p.startphi, p.deltaphi);
  Outline o = zplane_outline(s, p.zplanes, 1.0, "polycone");
  check_outline(s, o, "the polycone's (r, z) outline");
}
void validate_shape(const Solid& s, const solids::GenericPolycone& p) {
  check_phi(s, p.startphi, p.deltaphi);
  Outline o = p.rzpoints;
  if (o.size() < 3) {
    fail(s, "genericPolycone has " + std::to_string(o.size()) +
                " rzpoint(s) (at least 3 are needed to enclose an area) add rzpoints");
  }
  check_outline(s, o, "the genericPolycone's (r, z) outline");
}
void check_sides(const Solid& s, int numsides, double deltaphi) {
  if (numsides < 1) {
    fail(s, "numsides = " + std::to_string(numsides) +
                " (a polyhedra needs at least one side) give numsides >= 1");
  }
  const double span = (is_full_phi(deltaphi) ? kTwoPi : deltaphi) / numsides;
  if (!(span < kPi)) {
    fail(s, "numsides = " + std::to_string(numsides) + " over deltaphi = " + num(deltaphi) +
                " rad gives sides spanning >= pi (a side must be a proper plane) use more sides");
  }
}
void validate_shape(const Solid& s, const solids::Polyhedra& p) {
  check_phi(s, p.startphi, p.deltaphi);
  check_sides(s, p.numsides, p.deltaphi);
  Outline o = zplane_outline(s, p.zplanes, 1.0, "polyhedra");
  check_outline(s, o, "the polyhedra's (r, z) outline");
}
void validate_shape(const Solid& s, const solids::GenericPolyhedra& p) {
  check_phi(s, p.startphi, p.deltaphi);
  check_sides(s, p.numsides, p.deltaphi);
  Outline o = p.rzpoints;
  if (o.size() < 3) {
    fail(s, "genericPolyhedra has " + std::to_string(o.size()) +
                " rzpoint(s) (at least 3 are needed to enclose an area) add rzpoints");
  }
  check_outline(s, o, "the genericPolyhedra's (r, z) outline");
}
void validate_shape(const Solid& s, const solids::Trd& t) {
  check_finite(s, {{"x1", t.x1}, {"x2", t.x2}, {"y1", t.y1}, {"y2", t.y2}, {"z", t.z}});
  if (t.x1 < 0 || t.x2 < 0 || t.y1 < 0 || t.y2 < 0 || (t.x1 == 0 && t.x2 == 0) ||
      (t.y1 == 0 && t.y2 == 0)) {
    fail(s, "trd lengths x1 = " + num(t.x1) + ", x2 = " + num(t.x2) + ", y1 = " + num(t.y1) +
                ", y2 = " + num(t.y2) +
                " mm (need lengths >= 0, at least one of x1/x2 and of y1/y2 positive) fix them");
  }
  check_positive(s, "trd z", t.z, "the full length along z must be positive");
}
void validate_shape(const Solid& s, const solids::Trap& t) {
  check_finite(s, {{"z", t.z},
                   {"theta", t.theta},
                   {"phi", t.phi},
                   {"y1", t.y1},
                   {"x1", t.x1},
                   {"x2", t.x2},
                   {"alpha1", t.alpha1},
                   {"y2", t.y2},
                   {"x3", t.x3},
                   {"x4", t.x4},
                   {"alpha2", t.alpha2}});
  for (const auto& [n, v] : {std::pair{"trap z", t.z},
                             {"trap y1", t.y1},
                             {"trap x1", t.x1},
                             {"trap x2", t.x2},
                             {"trap y2", t.y2},
                             {"trap x3", t.x3},
                             {"trap x4", t.x4}}) {
    check_positive(s, n, v, "Geant4 requires every trap length to be positive");
  }
  check_trap_like_angle(s, "trap theta", t.theta);
  check_trap_like_angle(s, "trap alpha1", t.alpha1);
  check_trap_like_angle(s, "trap alpha2", t.alpha2);
}
void validate_shape(const Solid& s, const solids::Para& p) {
  check_finite(
      s,
      {{"x", p.x}, {"y", p.y}, {"z", p.z}, {"alpha", p.alpha}, {"theta", p.theta}, {"phi", p.phi}});
  check_positive(s, "para x", p.x, "a parallelepiped needs three positive full lengths");
  check_positive(s, "para y", p.y, "a parallelepiped needs three positive full lengths");
  check_positive(s, "para z", p.z, "a parallelepiped needs three positive full lengths");
  check_trap_like_angle(s, "para alpha", p.alpha);
  check_trap_like_angle(s, "para theta", p.theta);
}
void validate_shape(const Solid& s, const solids::Tessellated& t) {
  if (t.facets.size() < 4) {
    fail(s, "tessellated solid has " + std::to_string(t.facets.size()) +
                " facet(s) (a closed surface needs at least 4) add the missing facets");
  }
  for (const auto& v : t.vertices)
    check_finite(s, {{"vertex x", v[0]}, {"vertex y", v[1]}, {"vertex z", v[2]}});
  for (std::size_t f = 0; f < t.facets.size(); ++f) {
    const auto& facet = t.facets[f];
    if (facet.size() != 3 && facet.size() != 4) {
      fail(s, "facet " + std::to_string(f) + " has " + std::to_string(facet.size()) +
                  " vertices (GDML facets are triangular or quadrangular) fix the facet");
    }
    for (std::size_t i = 0; i < facet.size(); ++i) {
      if (facet[i] < 0 || static_cast<std::size_t>(facet[i]) >= t.vertices.size()) {
        fail(s, "facet " + std::to_string(f) + " refers to vertex " + std::to_string(facet[i]) +
                    " (only " + std::to_string(t.vertices.size()) +
                    " vertices exist) fix the facet's vertex reference");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (facet[i] == facet[j]) {
          fail(s, "facet " + std::to_string(f) + " repeats vertex " + std::to_string(facet[i]) +
                      " (a facet needs distinct corners) fix the facet");
        }
      }
    }
  }
}
void validate_shape(const Solid& s, const solids::ScaledSolid& sc) {
  check_finite(s, {{"scale x", sc.scale[0]}, {"scale y", sc.scale[1]}, {"scale z", sc.scale[2]}});
  if (!sc.solid) fail(s, "scaled solid has no solid to scale (missing reference) fix the GDML");
  for (double v : sc.scale) {
    if (v == 0) fail(s, "scale factor 0 (it flattens the solid to nothing) give non-zero scales");
  }
}
void check_transform(const Solid& s, const solids::Transform& t, const char* which) {
  for (double v : t.rotation) check_finite(s, {{"rotation", v}});
  for (double v : t.translation) check_finite(s, {{"translation", v}});
  const auto& r = t.rotation;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const double d =
          r[3 * i] * r[3 * j] + r[3 * i + 1] * r[3 * j + 1] + r[3 * i + 2] * r[3 * j + 2];
      if (std::abs(d - (i == j ? 1.0 : 0.0)) > 1e-6) {
        fail(s, std::string(which) +
                    " rotation is not orthonormal (a placement may only rotate) fix the rotation");
      }
    }
  }
}
void validate_shape(const Solid& s, const solids::Boolean& b) {
  if (!b.first || !b.second) {
    fail(s, "boolean solid lacks its first or second operand (missing reference) fix the GDML");
  }
  check_transform(s, b.first_transform, "first operand's");
  check_transform(s, b.second_transform, "second operand's");
}

void validate(const Solid& s, int depth) {
  if (depth > kMaxDepth) {
    fail(s, "boolean/scaled solids nest deeper than " + std::to_string(kMaxDepth) +
                " levels (a reference cycle?) simplify the solid");
  }
  std::visit([&](const auto& shape) { validate_shape(s, shape); }, s.shape);
  if (const auto* t = std::get_if<solids::Tessellated>(&s.shape)) check_closed_facets(s, *t);
  if (const auto* sc = std::get_if<solids::ScaledSolid>(&s.shape)) validate(*sc->solid, depth + 1);
  if (const auto* b = std::get_if<solids::Boolean>(&s.shape)) {
    validate(*b->first, depth + 1);
    validate(*b->second, depth + 1);
  }
}

}  // namespace mesher
}  // namespace acheron::optics
