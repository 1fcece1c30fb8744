// The solid mesher. Three parts: parameter validation (before any kernel
// call), exact meshes of planar solids, and the gmsh/OpenCASCADE route
// (B-rep construction, curvature-driven surface meshing, extraction); both
// routes end in one clean-up that merges vertices, drops degenerate
// triangles, checks closedness and orients every shell.
#include "acheron/optics/SolidMesher.hh"

#include <gmsh.h>

#include <algorithm>
#include <array>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <numbers>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "acheron/core/Error.hh"

namespace acheron::optics {
namespace {
namespace mesher {

using solids::Solid;
using P3 = std::array<double, 3>;
using Tri = std::array<std::uint32_t, 3>;

constexpr double kPi = std::numbers::pi;
constexpr double kTwoPi = 2 * std::numbers::pi;
// Boolean and scaled solids nest; deeper than this is a cycle or a mistake.
constexpr int kMaxDepth = 200;
// Mesh size h = kSizeFactor * sqrt(tolerance * R) where the largest
// curvature is 1/R. A flat triangle of edge h inscribed in a sphere of radius
// R deviates by h^2/(6R) at its centre (equilateral) and h^2/(8R) at an edge
// midpoint, 0.43 and 0.32 tolerance at 1.6; gmsh's triangles vary around the
// size asked for, and every triangle is then checked (kernel_mesh) and
// refined where it fails. Measured worst cases: ~0.6-0.85 of the tolerance.
constexpr double kSizeFactor = 1.6;
// gmsh's own curvature sizing (elements per 2*pi), used only where our
// sampled curvature misses a singular point (a cone's apex): it refines in
// proportion to the local radius.
constexpr double kElementsPer2Pi = 24;

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

// A closed (r, z) outline, counter-clockwise after check_outline.
using Outline = std::vector<solids::RZPoint>;

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

void validate(const Solid& s, int depth);

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

void check_closed_facets(const Solid& s, const solids::Tessellated& t);

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

// ---------------------------------------------------------------- clean-up

struct RawMesh {
  std::vector<P3> points;
  std::vector<Tri> triangles;
};

struct FloatKey {
  std::array<std::uint32_t, 3> bits;
  bool operator==(const FloatKey&) const = default;
};
struct FloatKeyHash {
  std::size_t operator()(const FloatKey& k) const noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (auto b : k.bits) h = (h ^ b) * 1099511628211ull;
    return static_cast<std::size_t>(h);
  }
};

Vec3 to_vec3(const P3& p) {
  // + 0.0f turns -0 into +0 so equal positions merge.
  return {static_cast<float>(p[0]) + 0.0f, static_cast<float>(p[1]) + 0.0f,
          static_cast<float>(p[2]) + 0.0f};
}

double tri_volume(const Vec3& a, const Vec3& b, const Vec3& c) {
  const double ax = a.x, ay = a.y, az = a.z, bx = b.x, by = b.y, bz = b.z, cx = c.x, cy = c.y,
               cz = c.z;
  return (ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)) / 6.0;
}

// Solid angle of triangle abc seen from p (Van Oosterom & Strackee).
double solid_angle(const Vec3& pa, const Vec3& pb, const Vec3& pc, const P3& p) {
  const double a[3] = {pa.x - p[0], pa.y - p[1], pa.z - p[2]};
  const double b[3] = {pb.x - p[0], pb.y - p[1], pb.z - p[2]};
  const double c[3] = {pc.x - p[0], pc.y - p[1], pc.z - p[2]};
  const double la = std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
  const double lb = std::sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2]);
  const double lc = std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
  const double det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) +
                     a[2] * (b[0] * c[1] - b[1] * c[0]);
  const double ab = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const double ac = a[0] * c[0] + a[1] * c[1] + a[2] * c[2];
  const double bc = b[0] * c[0] + b[1] * c[1] + b[2] * c[2];
  return 2 * std::atan2(det, la * lb * lc + ab * lc + ac * lb + bc * la);
}

// Merges equal float vertices, drops degenerate triangles, checks that the
// surface is closed and orientable, and orients each shell away from the
// material (outer shells outward, cavity shells into their cavity).
Mesh finish(const Solid& s, const RawMesh& raw) {
  std::vector<Vec3> verts;
  std::vector<std::uint32_t> remap(raw.points.size());
  {
    std::unordered_map<FloatKey, std::uint32_t, FloatKeyHash> index;
    index.reserve(raw.points.size());
    for (std::size_t i = 0; i < raw.points.size(); ++i) {
      const Vec3 v = to_vec3(raw.points[i]);
      if (!isfinite(v)) {
        fail(s,
             "the mesh has a non-finite vertex (the parameters overflow float) scale the "
             "solid to a sensible size");
      }
      FloatKey key;
      std::memcpy(key.bits.data(), &v, sizeof(float) * 3);
      auto [it, inserted] = index.try_emplace(key, static_cast<std::uint32_t>(verts.size()));
      if (inserted) verts.push_back(v);
      remap[i] = it->second;
    }
  }
  std::vector<Tri> tris;
  tris.reserve(raw.triangles.size());
  for (const Tri& t0 : raw.triangles) {
    const Tri t{remap[t0[0]], remap[t0[1]], remap[t0[2]]};
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) continue;
    // The same test as Geometry::finalize: a zero float normal is degenerate.
    const Vec3 n = cross(verts[t[1]] - verts[t[0]], verts[t[2]] - verts[t[1]]);
    const float len = norm(n);
    if (!(len > 0) || !std::isfinite(len)) continue;
    tris.push_back(t);
  }
  if (tris.size() < 4) {
    fail(s, "the mesh has " + std::to_string(tris.size()) +
                " non-degenerate triangles (the solid is too small for float precision) "
                "check its dimensions (mm)");
  }

  // Edges: (lo, hi, triangle, forward) sorted, so that each undirected edge
  // is one run; a closed manifold surface has runs of exactly two.
  struct EdgeUse {
    std::uint32_t lo, hi, tri;
    bool forward;
  };
  std::vector<EdgeUse> uses;
  uses.reserve(tris.size() * 3);
  for (std::uint32_t i = 0; i < tris.size(); ++i) {
    for (int k = 0; k < 3; ++k) {
      const std::uint32_t a = tris[i][k], b = tris[i][(k + 1) % 3];
      uses.push_back({std::min(a, b), std::max(a, b), i, a < b});
    }
  }
  std::sort(uses.begin(), uses.end(), [](const EdgeUse& x, const EdgeUse& y) {
    return std::tie(x.lo, x.hi, x.tri) < std::tie(y.lo, y.hi, y.tri);
  });
  // Neighbour across each edge and whether the two triangles traverse it the
  // same way (then one of them must flip).
  std::vector<std::vector<std::pair<std::uint32_t, bool>>> adjacent(tris.size());
  std::size_t bad_edges = 0;
  Vec3 bad_at{};
  for (std::size_t i = 0; i < uses.size();) {
    std::size_t j = i + 1;
    while (j < uses.size() && uses[j].lo == uses[i].lo && uses[j].hi == uses[i].hi) ++j;
    if (j - i != 2) {
      if (bad_edges++ == 0) bad_at = verts[uses[i].lo];
    } else {
      const bool same = uses[i].forward == uses[i + 1].forward;
      adjacent[uses[i].tri].push_back({uses[i + 1].tri, same});
      adjacent[uses[i + 1].tri].push_back({uses[i].tri, same});
    }
    i = j;
  }
  if (bad_edges > 0) {
    fail(s, "the surface mesh is not closed: " + std::to_string(bad_edges) +
                " edge(s) are not shared by exactly two triangles, first near (" + num(bad_at.x) +
                ", " + num(bad_at.y) + ", " + num(bad_at.z) +
                ") mm (open facets, touching parts or a non-manifold boolean) make the solid a "
                "closed volume whose parts overlap or stay apart");
  }

  // Consistent winding within each connected shell.
  std::vector<int> flip(tris.size(), -1);
  std::vector<std::uint32_t> shell_of(tris.size());
  std::vector<std::vector<std::uint32_t>> shells;
  for (std::uint32_t seed = 0; seed < tris.size(); ++seed) {
    if (flip[seed] >= 0) continue;
    const auto shell = static_cast<std::uint32_t>(shells.size());
    shells.emplace_back();
    std::vector<std::uint32_t> stack{seed};
    flip[seed] = 0;
    while (!stack.empty()) {
      const std::uint32_t t = stack.back();
      stack.pop_back();
      shell_of[t] = shell;
      shells.back().push_back(t);
      for (const auto& [n, same] : adjacent[t]) {
        const int want = flip[t] ^ (same ? 1 : 0);
        if (flip[n] < 0) {
          flip[n] = want;
          stack.push_back(n);
        } else if (flip[n] != want) {
          fail(s,
               "the surface mesh is not orientable (a shell cannot be wound consistently) "
               "check the solid's facets or boolean operands");
        }
      }
    }
  }
  auto oriented = [&](std::uint32_t t) {
    Tri x = tris[t];
    if (flip[t]) std::swap(x[1], x[2]);
    return x;
  };
  // Each shell faces away from the material: outward when it lies inside an
  // even number of other shells, inward (into a cavity) when odd.
  for (std::size_t sh = 0; sh < shells.size(); ++sh) {
    double volume = 0, best_area = -1;
    P3 probe{};
    for (std::uint32_t t : shells[sh]) {
      const Tri x = oriented(t);
      volume += tri_volume(verts[x[0]], verts[x[1]], verts[x[2]]);
      const double area = norm(cross(verts[x[1]] - verts[x[0]], verts[x[2]] - verts[x[0]]));
      if (area > best_area) {
        best_area = area;
        probe = {(double(verts[x[0]].x) + verts[x[1]].x + verts[x[2]].x) / 3.0,
                 (double(verts[x[0]].y) + verts[x[1]].y + verts[x[2]].y) / 3.0,
                 (double(verts[x[0]].z) + verts[x[1]].z + verts[x[2]].z) / 3.0};
      }
    }
    int depth = 0;
    for (std::size_t other = 0; other < shells.size() && shells.size() > 1; ++other) {
      if (other == sh) continue;
      double omega = 0;
      for (std::uint32_t t : shells[other]) {
        const Tri x = oriented(t);
        omega += solid_angle(verts[x[0]], verts[x[1]], verts[x[2]], probe);
      }
      if (std::abs(omega) > 2 * kPi) ++depth;  // |winding number| > 1/2
    }
    const bool want_positive = depth % 2 == 0;
    if ((volume > 0) != want_positive) {
      for (std::uint32_t t : shells[sh]) flip[t] ^= 1;
    }
  }

  // Compact the vertices in order of first use.
  Mesh out;
  std::vector<std::uint32_t> used(verts.size(), UINT32_MAX);
  out.triangles.reserve(tris.size());
  for (std::uint32_t t = 0; t < tris.size(); ++t) {
    Tri x = oriented(t);
    for (auto& v : x) {
      if (used[v] == UINT32_MAX) {
        used[v] = static_cast<std::uint32_t>(out.vertices.size());
        out.vertices.push_back(verts[v]);
      }
      v = used[v];
    }
    out.triangles.push_back(x);
  }
  if (!(mesh_volume(out) > 0)) {
    fail(s, "the meshed solid has no positive volume (its shells cancel) check the solid");
  }
  return out;
}

// ---------------------------------------------------------------- planar solids

// Polygonal faces of a planar solid, vertices deduplicated by position.
struct Faces {
  std::vector<P3> points;
  std::vector<std::vector<std::uint32_t>> polygons;
  std::map<P3, std::uint32_t> index;

  std::uint32_t add(double x, double y, double z) {
    const P3 p{x + 0.0, y + 0.0, z + 0.0};
    auto [it, inserted] = index.try_emplace(p, static_cast<std::uint32_t>(points.size()));
    if (inserted) points.push_back(p);
    return it->second;
  }
  void face(std::vector<std::uint32_t> poly) {
    std::vector<std::uint32_t> out;
    for (auto v : poly) {
      if (out.empty() || out.back() != v) out.push_back(v);
    }
    while (out.size() > 1 && out.front() == out.back()) out.pop_back();
    if (out.size() >= 3) polygons.push_back(std::move(out));
  }
};

P3 sub(const P3& a, const P3& b) {
  return {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
}
double dot3(const P3& a, const P3& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

P3 newell_normal(const Faces& f, const std::vector<std::uint32_t>& poly) {
  P3 n{0, 0, 0};
  for (std::size_t i = 0; i < poly.size(); ++i) {
    const P3& a = f.points[poly[i]];
    const P3& b = f.points[poly[(i + 1) % poly.size()]];
    n[0] += (a[1] - b[1]) * (a[2] + b[2]);
    n[1] += (a[2] - b[2]) * (a[0] + b[0]);
    n[2] += (a[0] - b[0]) * (a[1] + b[1]);
  }
  return n;
}

// Largest distance of a polygon's corners from its mean plane.
double nonplanarity(const Faces& f, const std::vector<std::uint32_t>& poly) {
  P3 n = newell_normal(f, poly);
  const double len = std::sqrt(dot3(n, n));
  if (len == 0) return 0;
  for (auto& c : n) c /= len;
  P3 centre{0, 0, 0};
  for (auto v : poly) {
    for (int k = 0; k < 3; ++k) centre[k] += f.points[v][k] / static_cast<double>(poly.size());
  }
  double worst = 0;
  for (auto v : poly) worst = std::max(worst, std::abs(dot3(sub(f.points[v], centre), n)));
  return worst;
}

// Ear clipping of a simple planar polygon (in its own plane), keeping every
// boundary vertex so that neighbouring faces still share all edges.
void triangulate(const Faces& f, const std::vector<std::uint32_t>& poly, std::vector<Tri>& out) {
  if (poly.size() == 3) {
    out.push_back({poly[0], poly[1], poly[2]});
    return;
  }
  const P3 n = newell_normal(f, poly);
  int axis = 0;
  for (int k = 1; k < 3; ++k) {
    if (std::abs(n[k]) > std::abs(n[axis])) axis = k;
  }
  const int iu = (axis + 1) % 3, iv = (axis + 2) % 3;
  const double sign = n[axis] >= 0 ? 1.0 : -1.0;
  std::vector<std::array<double, 2>> uv;
  for (auto v : poly) uv.push_back({f.points[v][iu], sign * f.points[v][iv]});
  std::vector<std::size_t> idx(poly.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  auto cross2 = [&](std::size_t a, std::size_t b, std::size_t c) {
    return (uv[b][0] - uv[a][0]) * (uv[c][1] - uv[a][1]) -
           (uv[b][1] - uv[a][1]) * (uv[c][0] - uv[a][0]);
  };
  double scale = 0;
  for (const auto& p : uv) scale = std::max({scale, std::abs(p[0]), std::abs(p[1])});
  const double eps = 1e-14 * scale * scale;
  while (idx.size() > 3) {
    const std::size_t m = idx.size();
    std::size_t ear = m;
    for (std::size_t i = 0; i < m && ear == m; ++i) {
      const std::size_t a = idx[(i + m - 1) % m], b = idx[i], c = idx[(i + 1) % m];
      if (cross2(a, b, c) <= eps) continue;
      bool empty = true;
      for (std::size_t j = 0; j < m && empty; ++j) {
        const std::size_t p = idx[j];
        if (p == a || p == b || p == c) continue;
        if (cross2(a, b, p) >= -eps && cross2(b, c, p) >= -eps && cross2(c, a, p) >= -eps) {
          empty = false;
        }
      }
      if (empty) ear = i;
    }
    if (ear == m) ear = 0;  // numerically stuck: clip anyway (clean-up drops slivers)
    const std::size_t a = idx[(ear + m - 1) % m], b = idx[ear], c = idx[(ear + 1) % m];
    out.push_back({poly[a], poly[b], poly[c]});
    idx.erase(idx.begin() + static_cast<std::ptrdiff_t>(ear));
  }
  out.push_back({poly[idx[0]], poly[idx[1]], poly[idx[2]]});
}

// Six faces of a hexahedron with corners in Geant4's trap order: 0..3 at
// -z, 4..7 at +z, each (-x,-y), (+x,-y), (-x,+y), (+x,+y).
void hexahedron(const Solid& s, Faces& f, const std::array<P3, 8>& p, bool check_planar) {
  std::array<std::uint32_t, 8> v;
  for (int i = 0; i < 8; ++i) v[i] = f.add(p[i][0], p[i][1], p[i][2]);
  const int quads[6][4] = {{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4},
                           {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}};
  double scale = 0;
  for (const auto& q : p) scale = std::max({scale, std::abs(q[0]), std::abs(q[1]), std::abs(q[2])});
  for (const auto& q : quads) {
    const std::vector<std::uint32_t> poly{v[q[0]], v[q[1]], v[q[2]], v[q[3]]};
    if (check_planar && nonplanarity(f, poly) > 1e-6 + 1e-9 * scale) {
      fail(s, "a side face of the trap is not planar (deviation " + num(nonplanarity(f, poly)) +
                  " mm; Geant4 rejects such a trap too) make x1/x2, x3/x4, y1/y2 and alpha1/"
                  "alpha2 consistent");
    }
    f.face(poly);
  }
}

void planar_faces(const Solid& s, Faces& f, const solids::Box& b) {
  const double x = b.x / 2, y = b.y / 2, z = b.z / 2;
  hexahedron(s, f,
             {P3{-x, -y, -z},
              {x, -y, -z},
              {-x, y, -z},
              {x, y, -z},
              {-x, -y, z},
              {x, -y, z},
              {-x, y, z},
              {x, y, z}},
             false);
}
void planar_faces(const Solid& s, Faces& f, const solids::Trd& t) {
  const double x1 = t.x1 / 2, x2 = t.x2 / 2, y1 = t.y1 / 2, y2 = t.y2 / 2, z = t.z / 2;
  hexahedron(s, f,
             {P3{-x1, -y1, -z},
              {x1, -y1, -z},
              {-x1, y1, -z},
              {x1, y1, -z},
              {-x2, -y2, z},
              {x2, -y2, z},
              {-x2, y2, z},
              {x2, y2, z}},
             false);
}
void planar_faces(const Solid& s, Faces& f, const solids::Trap& t) {
  // Geant4's G4Trap corners (GDML lengths are full lengths, halved here).
  const double dz = t.z / 2, dy1 = t.y1 / 2, dx1 = t.x1 / 2, dx2 = t.x2 / 2, dy2 = t.y2 / 2,
               dx3 = t.x3 / 2, dx4 = t.x4 / 2;
  const double tc = std::tan(t.theta) * std::cos(t.phi), ts = std::tan(t.theta) * std::sin(t.phi);
  const double ta1 = std::tan(t.alpha1), ta2 = std::tan(t.alpha2);
  hexahedron(s, f,
             {P3{-dz * tc - dy1 * ta1 - dx1, -dz * ts - dy1, -dz},
              {-dz * tc - dy1 * ta1 + dx1, -dz * ts - dy1, -dz},
              {-dz * tc + dy1 * ta1 - dx2, -dz * ts + dy1, -dz},
              {-dz * tc + dy1 * ta1 + dx2, -dz * ts + dy1, -dz},
              {dz * tc - dy2 * ta2 - dx3, dz * ts - dy2, dz},
              {dz * tc - dy2 * ta2 + dx3, dz * ts - dy2, dz},
              {dz * tc + dy2 * ta2 - dx4, dz * ts + dy2, dz},
              {dz * tc + dy2 * ta2 + dx4, dz * ts + dy2, dz}},
             true);
}
void planar_faces(const Solid& s, Faces& f, const solids::Para& p) {
  // Geant4's G4Para: x shears with y (alpha) and both with z (theta, phi).
  const double dx = p.x / 2, dy = p.y / 2, dz = p.z / 2;
  const double ta = std::tan(p.alpha), tc = std::tan(p.theta) * std::cos(p.phi),
               ts = std::tan(p.theta) * std::sin(p.phi);
  std::array<P3, 8> c;
  for (int i = 0; i < 8; ++i) {
    const double x = (i & 1) ? dx : -dx, y = (i & 2) ? dy : -dy, z = (i & 4) ? dz : -dz;
    c[i] = {x + y * ta + z * tc, y + z * ts, z};
  }
  hexahedron(s, f, c, false);
}
void polyhedra_faces(Faces& f, const Outline& o, double startphi, double deltaphi, int numsides) {
  // Corners (edges between sides) at startphi + k * deltaphi / numsides, as
  // Geant4's G4Polyhedra; outline radii are corner radii.
  const bool full = is_full_phi(deltaphi);
  const double span = full ? kTwoPi : deltaphi;
  const int corners = full ? numsides : numsides + 1;
  std::vector<std::vector<std::uint32_t>> v(o.size(), std::vector<std::uint32_t>(corners));
  for (std::size_t i = 0; i < o.size(); ++i) {
    for (int k = 0; k < corners; ++k) {
      const double phi = startphi + span * k / numsides;
      v[i][k] = f.add(o[i].r * std::cos(phi), o[i].r * std::sin(phi), o[i].z);
    }
  }
  for (std::size_t i = 0; i < o.size(); ++i) {
    const std::size_t j = (i + 1) % o.size();
    for (int k = 0; k < numsides; ++k) {
      const int k1 = (k + 1) % corners;
      f.face({v[i][k], v[j][k], v[j][k1], v[i][k1]});
    }
  }
  if (!full) {
    std::vector<std::uint32_t> start, end;
    for (std::size_t i = 0; i < o.size(); ++i) {
      start.push_back(v[i][0]);
      end.push_back(v[o.size() - 1 - i][corners - 1]);
    }
    f.face(start);
    f.face(end);
  }
}
void planar_faces(const Solid& s, Faces& f, const solids::Polyhedra& p) {
  const double span = is_full_phi(p.deltaphi) ? kTwoPi : p.deltaphi;
  // zplane radii are distances to the side faces: corner = side / cos(half side angle).
  Outline o = zplane_outline(s, p.zplanes, 1.0 / std::cos(span / (2.0 * p.numsides)), "polyhedra");
  check_outline(s, o, "the polyhedra's (r, z) outline");
  polyhedra_faces(f, o, p.startphi, p.deltaphi, p.numsides);
}
void planar_faces(const Solid& s, Faces& f, const solids::GenericPolyhedra& p) {
  Outline o = p.rzpoints;
  check_outline(s, o, "the genericPolyhedra's (r, z) outline");
  polyhedra_faces(f, o, p.startphi, p.deltaphi, p.numsides);
}
void planar_faces(const Solid&, Faces& f, const solids::Tessellated& t) {
  for (const auto& facet : t.facets) {
    std::vector<std::uint32_t> poly;
    for (int i : facet) {
      const auto& v = t.vertices[static_cast<std::size_t>(i)];
      poly.push_back(f.add(v[0], v[1], v[2]));
    }
    f.face(poly);
  }
}

// A tessellated solid's facets must close: every edge (between vertices at
// distinct positions) used by exactly two facets.
void check_closed_facets(const Solid& s, const solids::Tessellated& t) {
  Faces f;
  planar_faces(s, f, t);
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> edges;
  for (const auto& poly : f.polygons) {
    for (std::size_t i = 0; i < poly.size(); ++i) {
      ++edges[std::minmax(poly[i], poly[(i + 1) % poly.size()])];
    }
  }
  std::size_t open = 0;
  std::pair<std::uint32_t, std::uint32_t> first{};
  for (const auto& [e, n] : edges) {
    if (n != 2 && open++ == 0) first = e;
  }
  if (open > 0) {
    const P3 &a = f.points[first.first], &b = f.points[first.second];
    fail(s, "tessellated solid is not closed: " + std::to_string(open) +
                " edge(s) are not shared by exactly two facets, first from (" + num(a[0]) + ", " +
                num(a[1]) + ", " + num(a[2]) + ") to (" + num(b[0]) + ", " + num(b[1]) + ", " +
                num(b[2]) +
                ") mm (a solid's surface must enclose its volume) add the missing "
                "facets or fix their vertices");
  }
}

bool is_planar(const Solid& s) {
  return std::visit(
      [](const auto& shape) {
        using T = std::decay_t<decltype(shape)>;
        if constexpr (std::is_same_v<T, solids::ScaledSolid>) {
          return is_planar(*shape.solid);
        } else {
          return std::is_same_v<T, solids::Box> || std::is_same_v<T, solids::Trd> ||
                 std::is_same_v<T, solids::Trap> || std::is_same_v<T, solids::Para> ||
                 std::is_same_v<T, solids::Polyhedra> ||
                 std::is_same_v<T, solids::GenericPolyhedra> ||
                 std::is_same_v<T, solids::Tessellated>;
        }
      },
      s.shape);
}

// Faces of a planar solid (ScaledSolid of one included), exact.
Faces planar(const Solid& s) {
  Faces f;
  if (const auto* sc = std::get_if<solids::ScaledSolid>(&s.shape)) {
    Faces inner = planar(*sc->solid);
    for (const auto& poly : inner.polygons) {
      std::vector<std::uint32_t> out;
      for (auto v : poly) {
        const P3& p = inner.points[v];
        out.push_back(f.add(p[0] * sc->scale[0], p[1] * sc->scale[1], p[2] * sc->scale[2]));
      }
      f.face(out);
    }
    return f;
  }
  std::visit(
      [&](const auto& shape) {
        using T = std::decay_t<decltype(shape)>;
        if constexpr (std::is_same_v<T, solids::Box> || std::is_same_v<T, solids::Trd> ||
                      std::is_same_v<T, solids::Trap> || std::is_same_v<T, solids::Para> ||
                      std::is_same_v<T, solids::Polyhedra> ||
                      std::is_same_v<T, solids::GenericPolyhedra> ||
                      std::is_same_v<T, solids::Tessellated>) {
          planar_faces(s, f, shape);
        }
      },
      s.shape);
  return f;
}

RawMesh triangulate_faces(const Faces& f) {
  RawMesh raw;
  raw.points = f.points;
  for (const auto& poly : f.polygons) triangulate(f, poly, raw.triangles);
  return raw;
}

// ---------------------------------------------------------------- gmsh

std::mutex& gmsh_mutex() {
  static std::mutex m;
  return m;
}

// Initialises gmsh once per process (caller holds the mutex): cheaper than
// initialize/finalize around every call (see docs/optics.md).
void ensure_gmsh() {
  static bool initialised = false;
  if (initialised) return;
  // gmsh::initialize sets the process locale from the environment; the host
  // program's locale is its own business, so it is put back.
  const std::string locale = std::setlocale(LC_ALL, nullptr);
  gmsh::initialize(0, nullptr, false);
  std::setlocale(LC_ALL, locale.c_str());
  gmsh::option::setNumber("General.Terminal", 0);
  gmsh::option::setNumber("General.AbortOnError", 2);  // errors throw std::string
  initialised = true;
}

namespace occ = gmsh::model::occ;

gmsh::vectorpair volumes_of(const gmsh::vectorpair& dt) {
  gmsh::vectorpair out;
  for (const auto& p : dt) {
    if (p.first == 3) out.push_back(p);
  }
  return out;
}

class OccBuilder {
 public:
  // The innermost solid being built (for error messages).
  const Solid* current = nullptr;

  gmsh::vectorpair build(const Solid& s) {
    const Solid* outer = current;
    current = &s;
    gmsh::vectorpair v = std::visit([&](const auto& shape) { return make(s, shape); }, s.shape);
    if (v.empty()) fail(s, "the geometry kernel produced no volume (degenerate shape) check it");
    current = outer;
    return v;
  }

 private:
  static void rotate_z(const gmsh::vectorpair& dt, double angle) {
    if (angle != 0) occ::rotate(dt, 0, 0, 0, 0, 0, 1, angle);
  }

  // A closed polygon in the xz half-plane (x = r) as a plane surface.
  static int polygon_face(const Outline& o) {
    std::vector<int> pts, lines;
    for (const auto& p : o) pts.push_back(occ::addPoint(p.r, 0, p.z));
    for (std::size_t i = 0; i < pts.size(); ++i) {
      lines.push_back(occ::addLine(pts[i], pts[(i + 1) % pts.size()]));
    }
    return occ::addPlaneSurface({occ::addCurveLoop(lines)});
  }

  // Revolves a face of the xz half-plane about z: deltaphi from startphi.
  static gmsh::vectorpair revolve(int face, double startphi, double deltaphi) {
    const bool full = is_full_phi(deltaphi);
    gmsh::vectorpair out;
    occ::revolve({{2, face}}, 0, 0, 0, 0, 0, 1, full ? kTwoPi : deltaphi, out);
    gmsh::vectorpair v = volumes_of(out);
    if (!full) rotate_z(v, startphi);
    return v;
  }

  gmsh::vectorpair make(const Solid&, const solids::Box& b) {
    return {{3, occ::addBox(-b.x / 2, -b.y / 2, -b.z / 2, b.x, b.y, b.z)}};
  }
  gmsh::vectorpair make(const Solid&, const solids::Tube& t) {
    if (t.rmin == 0 && is_full_phi(t.deltaphi)) {
      return {{3, occ::addCylinder(0, 0, -t.z / 2, 0, 0, t.z, t.rmax)}};
    }
    Outline o{{t.rmin, -t.z / 2}, {t.rmax, -t.z / 2}, {t.rmax, t.z / 2}, {t.rmin, t.z / 2}};
    reduce_outline(o);
    return revolve(polygon_face(o), t.startphi, t.deltaphi);
  }
  gmsh::vectorpair make(const Solid&, const solids::Cone& c) {
    if (c.rmin1 == 0 && c.rmin2 == 0 && is_full_phi(c.deltaphi)) {
      return {{3, occ::addCone(0, 0, -c.z / 2, 0, 0, c.z, c.rmax1, c.rmax2)}};
    }
    Outline o{{c.rmin1, -c.z / 2}, {c.rmax1, -c.z / 2}, {c.rmax2, c.z / 2}, {c.rmin2, c.z / 2}};
    reduce_outline(o);
    return revolve(polygon_face(o), c.startphi, c.deltaphi);
  }
  gmsh::vectorpair make(const Solid&, const solids::Sphere& p) {
    const double t1 = p.starttheta, t2 = std::min(kPi, p.starttheta + p.deltatheta);
    const bool full_theta = t1 == 0 && t2 >= kPi * (1 - 1e-12);
    if (p.rmin == 0 && full_theta) {
      const int tag = occ::addSphere(0, 0, 0, p.rmax, -1, -kPi / 2, kPi / 2,
                                     is_full_phi(p.deltaphi) ? kTwoPi : p.deltaphi);
      gmsh::vectorpair v{{3, tag}};
      if (!is_full_phi(p.deltaphi)) rotate_z(v, p.startphi);
      return v;
    }
    // Profile in the xz half-plane: the outer arc from t1 to t2, the cone
    // line at t2 down to rmin (or the centre), the inner arc back, and the
    // cone line at t1. Theta from +z: (r sin t, r cos t).
    const int centre = occ::addPoint(0, 0, 0);
    auto arc = [&](double r, double from, double to, std::vector<int>& curves, int first,
                   int& last) {
      const int pieces = std::max(1, static_cast<int>(std::ceil(std::abs(to - from) / (kPi / 2))));
      int prev = first;
      for (int i = 1; i <= pieces; ++i) {
        const double t = from + (to - from) * i / pieces;
        const int pt =
            (i == pieces && last > 0) ? last : occ::addPoint(r * sin_theta(t), 0, r * cos_theta(t));
        curves.push_back(occ::addCircleArc(prev, centre, pt));
        prev = pt;
      }
      last = prev;
    };
    std::vector<int> curves;
    const int a = occ::addPoint(p.rmax * sin_theta(t1), 0, p.rmax * cos_theta(t1));
    int b = -1;
    arc(p.rmax, t1, t2, curves, a, b);
    if (p.rmin > 0) {
      const int c = occ::addPoint(p.rmin * sin_theta(t2), 0, p.rmin * cos_theta(t2));
      const int d = occ::addPoint(p.rmin * sin_theta(t1), 0, p.rmin * cos_theta(t1));
      curves.push_back(occ::addLine(b, c));
      int dd = d;
      arc(p.rmin, t2, t1, curves, c, dd);
      curves.push_back(occ::addLine(d, a));
    } else {
      curves.push_back(occ::addLine(b, centre));
      curves.push_back(occ::addLine(centre, a));
    }
    const int face = occ::addPlaneSurface({occ::addCurveLoop(curves)});
    return revolve(face, p.startphi, p.deltaphi);
  }
  gmsh::vectorpair make(const Solid&, const solids::Orb& o) {
    return {{3, occ::addSphere(0, 0, 0, o.r)}};
  }
  gmsh::vectorpair make(const Solid&, const solids::Ellipsoid& e) {
    const auto [lo, hi] = ellipsoid_cuts(e);
    // A unit sphere cut flat at latitudes asin(z/cz), scaled to the semi-axes:
    // the flat cuts stay planes z = zcut.
    const double lat1 = lo <= -e.cz ? -kPi / 2 : std::asin(lo / e.cz);
    const double lat2 = hi >= e.cz ? kPi / 2 : std::asin(hi / e.cz);
    gmsh::vectorpair v{{3, occ::addSphere(0, 0, 0, 1, -1, lat1, lat2)}};
    occ::dilate(v, 0, 0, 0, e.ax, e.by, e.cz);
    return v;
  }
  gmsh::vectorpair make(const Solid&, const solids::EllipticalTube& e) {
    gmsh::vectorpair v{{3, occ::addCylinder(0, 0, -e.dz, 0, 0, 2 * e.dz, 1)}};
    occ::dilate(v, 0, 0, 0, e.dx, e.dy, 1);
    return v;
  }
  gmsh::vectorpair make(const Solid&, const solids::Torus& t) {
    const bool full = is_full_phi(t.deltaphi);
    if (t.rmin == 0) {
      gmsh::vectorpair v{
          {3, occ::addTorus(0, 0, 0, t.rtor, t.rmax, -1, full ? kTwoPi : t.deltaphi)}};
      if (!full) rotate_z(v, t.startphi);
      return v;
    }
    // An annulus centred at (rtor, 0, 0) in the xz-plane, revolved.
    auto circle_loop = [&](double r) {
      const int c = occ::addCircle(t.rtor, 0, 0, r);
      occ::rotate({{1, c}}, t.rtor, 0, 0, 1, 0, 0, kPi / 2);
      return occ::addCurveLoop({c});
    };
    const int outer = circle_loop(t.rmax), inner = circle_loop(t.rmin);
    return revolve(occ::addPlaneSurface({outer, inner}), t.startphi, t.deltaphi);
  }
  gmsh::vectorpair make(const Solid& s, const solids::Polycone& p) {
    Outline o = zplane_outline(s, p.zplanes, 1.0, "polycone");
    check_outline(s, o, "the polycone's (r, z) outline");
    return revolve(polygon_face(o), p.startphi, p.deltaphi);
  }
  gmsh::vectorpair make(const Solid& s, const solids::GenericPolycone& p) {
    Outline o = p.rzpoints;
    check_outline(s, o, "the genericPolycone's (r, z) outline");
    return revolve(polygon_face(o), p.startphi, p.deltaphi);
  }
  // Planar solids as an OCC shell of plane faces sharing their edges.
  gmsh::vectorpair faces_volume(const Solid& s, const Faces& f) {
    std::vector<int> point_tag(f.points.size(), 0);
    std::map<std::pair<std::uint32_t, std::uint32_t>, int> line_tag;
    auto point = [&](std::uint32_t v) {
      if (point_tag[v] == 0) {
        point_tag[v] = occ::addPoint(f.points[v][0], f.points[v][1], f.points[v][2]);
      }
      return point_tag[v];
    };
    auto line = [&](std::uint32_t a, std::uint32_t b) {
      const auto key = std::minmax(a, b);
      auto it = line_tag.find(key);
      if (it == line_tag.end()) it = line_tag.emplace(key, occ::addLine(point(a), point(b))).first;
      return it->second;
    };
    double scale = 0;
    for (const auto& p : f.points) {
      scale = std::max({scale, std::abs(p[0]), std::abs(p[1]), std::abs(p[2])});
    }
    std::vector<int> surfaces;
    auto add_face = [&](const std::vector<std::uint32_t>& poly) {
      std::vector<int> lines;
      for (std::size_t i = 0; i < poly.size(); ++i) {
        lines.push_back(line(poly[i], poly[(i + 1) % poly.size()]));
      }
      surfaces.push_back(occ::addPlaneSurface({occ::addCurveLoop(lines)}));
    };
    for (const auto& poly : f.polygons) {
      if (poly.size() > 3 && nonplanarity(f, poly) > 1e-9 * scale) {
        std::vector<Tri> tris;
        triangulate(f, poly, tris);
        for (const auto& t : tris) add_face({t[0], t[1], t[2]});
      } else {
        add_face(poly);
      }
    }
    (void)s;
    const int shell = occ::addSurfaceLoop(surfaces);
    return {{3, occ::addVolume({shell})}};
  }
  template <typename T>
  gmsh::vectorpair make(const Solid& s, const T&) requires(
      std::is_same_v<T, solids::Trd> || std::is_same_v<T, solids::Trap> ||
      std::is_same_v<T, solids::Para> || std::is_same_v<T, solids::Polyhedra> ||
      std::is_same_v<T, solids::GenericPolyhedra> || std::is_same_v<T, solids::Tessellated>) {
    return faces_volume(s, planar(s));
  }
  gmsh::vectorpair make(const Solid&, const solids::ScaledSolid& sc) {
    gmsh::vectorpair v = build(*sc.solid);
    // Reflections as mirrors (they keep the shape valid), then the sizes.
    if (sc.scale[0] < 0) occ::mirror(v, 1, 0, 0, 0);
    if (sc.scale[1] < 0) occ::mirror(v, 0, 1, 0, 0);
    if (sc.scale[2] < 0) occ::mirror(v, 0, 0, 1, 0);
    const double a = std::abs(sc.scale[0]), b = std::abs(sc.scale[1]), c = std::abs(sc.scale[2]);
    if (a != 1 || b != 1 || c != 1) occ::dilate(v, 0, 0, 0, a, b, c);
    return v;
  }
  static void place(const gmsh::vectorpair& v, const solids::Transform& t) {
    std::array<double, 9> m = t.rotation;
    const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                       m[2] * (m[3] * m[7] - m[4] * m[6]);
    if (det < 0) {
      // R = R' * diag(1, 1, -1): mirror z first, then the proper rotation R'.
      occ::mirror(v, 0, 0, 1, 0);
      m[2] = -m[2];
      m[5] = -m[5];
      m[8] = -m[8];
    }
    // Rotation matrix -> quaternion -> axis and angle (keeps the geometry
    // analytic, where a general affine map would turn it into B-splines).
    double w, x, y, z;
    const double tr = m[0] + m[4] + m[8];
    if (tr > 0) {
      const double q = std::sqrt(tr + 1) * 2;
      w = q / 4, x = (m[7] - m[5]) / q, y = (m[2] - m[6]) / q, z = (m[3] - m[1]) / q;
    } else if (m[0] > m[4] && m[0] > m[8]) {
      const double q = std::sqrt(1 + m[0] - m[4] - m[8]) * 2;
      w = (m[7] - m[5]) / q, x = q / 4, y = (m[1] + m[3]) / q, z = (m[2] + m[6]) / q;
    } else if (m[4] > m[8]) {
      const double q = std::sqrt(1 + m[4] - m[0] - m[8]) * 2;
      w = (m[2] - m[6]) / q, x = (m[1] + m[3]) / q, y = q / 4, z = (m[5] + m[7]) / q;
    } else {
      const double q = std::sqrt(1 + m[8] - m[0] - m[4]) * 2;
      w = (m[3] - m[1]) / q, x = (m[2] + m[6]) / q, y = (m[5] + m[7]) / q, z = q / 4;
    }
    const double s = std::sqrt(x * x + y * y + z * z);
    const double angle = 2 * std::atan2(s, w);
    if (s > 1e-15 && std::abs(angle) > 1e-15) occ::rotate(v, 0, 0, 0, x / s, y / s, z / s, angle);
    const auto& d = t.translation;
    if (d[0] != 0 || d[1] != 0 || d[2] != 0) occ::translate(v, d[0], d[1], d[2]);
  }
  gmsh::vectorpair make(const Solid& s, const solids::Boolean& b) {
    gmsh::vectorpair first = build(*b.first);
    place(first, b.first_transform);
    gmsh::vectorpair second = build(*b.second);
    place(second, b.second_transform);
    current = &s;
    gmsh::vectorpair out;
    std::vector<gmsh::vectorpair> map;
    switch (b.op) {
      case solids::Boolean::Op::union_:
        occ::fuse(first, second, out, map);
        break;
      case solids::Boolean::Op::subtraction:
        occ::cut(first, second, out, map);
        break;
      case solids::Boolean::Op::intersection:
        occ::intersect(first, second, out, map);
        break;
    }
    gmsh::vectorpair v = volumes_of(out);
    if (v.empty()) {
      const char* op = b.op == solids::Boolean::Op::union_        ? "union"
                       : b.op == solids::Boolean::Op::subtraction ? "subtraction"
                                                                  : "intersection";
      fail(s, std::string("the ") + op + " of '" + b.first->name + "' and '" + b.second->name +
                  "' is empty (the operands do not overlap, or the second removes all of the "
                  "first) check the operands' sizes and the second's position");
    }
    return v;
  }
};

// Mesh size from sampled curvature: h = kSizeFactor * sqrt(tolerance / k)
// at samples of each surface and curve; a lookup takes the nearest sample
// and its neighbours (the smallest size among them).
double size_from_curvature(double k, double tolerance);

// A parametric singularity of a surface: a whole grid edge at one point (a
// sphere's pole, a cone's apex), where the kernel reports no curvature.
// Within the first sample ring the curvature is extrapolated from the next
// two rings as k1 * (d1 / d)^p, p fitted per direction: 0 where it stays
// constant (a pole), 1 where it grows as 1/distance (an apex).
struct Singularity {
  P3 at;
  double reach2 = 0;                        // squared distance of the first ring
  std::vector<std::array<double, 3>> rays;  // k1, d1, p
};

struct SizeSamples {
  std::vector<P3> pos;
  std::vector<double> h;
  int nu = 0, nv = 1;
  std::vector<Singularity> singular;
  double tolerance = 0;

  double at(double x, double y, double z) const {
    if (pos.empty()) return std::numeric_limits<double>::infinity();
    std::size_t best = 0;
    double bd = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < pos.size(); ++i) {
      const double dx = pos[i][0] - x, dy = pos[i][1] - y, dz = pos[i][2] - z;
      const double d = dx * dx + dy * dy + dz * dz;
      if (d < bd) bd = d, best = i;
    }
    const int bu = static_cast<int>(best) / nv, bv = static_cast<int>(best) % nv;
    double out = std::numeric_limits<double>::infinity();
    for (int du = -1; du <= 1; ++du) {
      for (int dv = -1; dv <= 1; ++dv) {
        const int u = bu + du, v = bv + dv;
        if (u < 0 || u >= nu || v < 0 || v >= nv) continue;
        out = std::min(out, h[static_cast<std::size_t>(u * nv + v)]);
      }
    }
    for (const Singularity& sing : singular) {
      const double dx = x - sing.at[0], dy = y - sing.at[1], dz = z - sing.at[2];
      const double d2 = dx * dx + dy * dy + dz * dz;
      if (d2 >= sing.reach2) continue;
      const double d = std::max(std::sqrt(d2), 1e-300);
      double k = 0;
      for (const auto& [k1, d1, p] : sing.rays) k = std::max(k, k1 * std::pow(d1 / d, p));
      out = std::min(out, size_from_curvature(k, tolerance));
    }
    return out;
  }
};

double size_from_curvature(double k, double tolerance) {
  k = std::abs(k);
  if (!std::isfinite(k)) return std::numeric_limits<double>::infinity();  // singular point
  if (k < 1e-12) return std::numeric_limits<double>::infinity();
  return kSizeFactor * std::sqrt(tolerance / k);
}

// A local size limit: within `radius` of `centre`, at most `h`.
struct Spot {
  P3 centre;
  double radius2, h;
};

struct SizeField {
  std::unordered_map<int, SizeSamples> surface, curve;
  std::unordered_map<int, std::vector<int>> curve_surfaces, point_curves;
  // Refinements added after a mesh failed its check: per surface, a factor
  // on the sampled size and local spots.
  std::unordered_map<int, double> factor;
  std::unordered_map<int, std::vector<Spot>> spots;
  double tolerance = 0, h_min = 0, h_max = 0;

  // Largest curvature the samples near (x, y, z) report (the inverse of the
  // size rule), 0 where flat.
  double curvature(int s, double x, double y, double z) const {
    const auto it = surface.find(s);
    if (it == surface.end()) return 0;
    const double h = it->second.at(x, y, z);
    return std::isfinite(h) ? tolerance * kSizeFactor * kSizeFactor / (h * h) : 0.0;
  }
  double surface_size(int s, double x, double y, double z) const {
    double h = std::numeric_limits<double>::infinity();
    if (auto it = surface.find(s); it != surface.end()) h = it->second.at(x, y, z);
    if (auto it = factor.find(s); it != factor.end()) h *= it->second;
    if (auto it = spots.find(s); it != spots.end()) {
      for (const Spot& spot : it->second) {
        const double dx = x - spot.centre[0], dy = y - spot.centre[1], dz = z - spot.centre[2];
        if (dx * dx + dy * dy + dz * dz <= spot.radius2) h = std::min(h, spot.h);
      }
    }
    return h;
  }
  double curve_size(int tag, double x, double y, double z) const {
    double h = std::numeric_limits<double>::infinity();
    if (auto it = curve.find(tag); it != curve.end()) h = it->second.at(x, y, z);
    if (auto it = curve_surfaces.find(tag); it != curve_surfaces.end()) {
      for (int s : it->second) h = std::min(h, surface_size(s, x, y, z));
    }
    return h;
  }
  double operator()(int dim, int tag, double x, double y, double z) const {
    double h = std::numeric_limits<double>::infinity();
    if (dim == 2) {
      h = surface_size(tag, x, y, z);
    } else if (dim == 1) {
      h = curve_size(tag, x, y, z);
    } else if (dim == 0) {
      if (auto it = point_curves.find(tag); it != point_curves.end()) {
        for (int c : it->second) h = std::min(h, curve_size(c, x, y, z));
      }
    }
    return std::clamp(h, h_min, h_max);
  }
};

SizeField sample_sizes(const std::vector<int>& surfaces, double tolerance, double h_max) {
  SizeField f;
  f.tolerance = tolerance;
  f.h_min = tolerance;
  f.h_max = h_max;
  constexpr int n = 9;
  std::vector<int> curves;
  for (int s : surfaces) {
    std::vector<double> lo, hi;
    gmsh::model::getParametrizationBounds(2, s, lo, hi);
    std::vector<double> uv;
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        uv.push_back(lo[0] + (hi[0] - lo[0]) * i / (n - 1));
        uv.push_back(lo[1] + (hi[1] - lo[1]) * j / (n - 1));
      }
    }
    std::vector<double> kmax, kmin, dmax, dmin, xyz;
    gmsh::model::getPrincipalCurvatures(s, uv, kmax, kmin, dmax, dmin);
    gmsh::model::getValue(2, s, uv, xyz);
    SizeSamples& samples = f.surface[s];
    samples.nu = n;
    samples.nv = n;
    samples.tolerance = tolerance;
    std::vector<double> curv;
    double extent = 0;
    for (int i = 0; i < n * n; ++i) {
      samples.pos.push_back({xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]});
      const double k = std::max(std::abs(kmax[static_cast<std::size_t>(i)]),
                                std::abs(kmin[static_cast<std::size_t>(i)]));
      curv.push_back(std::isfinite(k) ? k : 0.0);
      samples.h.push_back(size_from_curvature(k, tolerance));
      for (int c = 0; c < 3; ++c) extent = std::max(extent, std::abs(samples.pos.back()[c]));
    }
    // Grid edges that collapse to a point: j = 0 / n-1 (rows), i = 0 / n-1 (columns).
    auto index = [&](int i, int j) { return static_cast<std::size_t>(i * n + j); };
    for (int edge = 0; edge < 4; ++edge) {
      auto at = [&](int m, int ring) {
        switch (edge) {
          case 0:
            return index(m, ring);
          case 1:
            return index(m, n - 1 - ring);
          case 2:
            return index(ring, m);
          default:
            return index(n - 1 - ring, m);
        }
      };
      const P3 p0 = samples.pos[at(0, 0)];
      bool collapsed = true;
      for (int m = 1; m < n && collapsed; ++m) {
        const P3 q = sub(samples.pos[at(m, 0)], p0);
        collapsed = std::sqrt(dot3(q, q)) <= 1e-9 * std::max(extent, 1.0);
      }
      if (!collapsed) continue;
      Singularity sing{p0, 0, {}};
      for (int m = 0; m < n; ++m) {
        const double k1 = curv[at(m, 1)], k2 = curv[at(m, 2)];
        const P3 a = sub(samples.pos[at(m, 1)], p0), b = sub(samples.pos[at(m, 2)], p0);
        const double d1 = std::sqrt(dot3(a, a)), d2 = std::sqrt(dot3(b, b));
        if (!(k1 > 0) || !(d1 > 0)) continue;
        double p = 1;
        if (k2 > 0 && d2 > d1 * (1 + 1e-9)) {
          p = std::clamp(std::log(k1 / k2) / std::log(d2 / d1), 0.0, 1.0);
        }
        sing.rays.push_back({k1, d1, p});
        sing.reach2 = std::max(sing.reach2, d1 * d1);
      }
      if (!sing.rays.empty()) samples.singular.push_back(std::move(sing));
    }
    gmsh::vectorpair bnd;
    gmsh::model::getBoundary({{2, s}}, bnd, false, false, false);
    for (const auto& [d, c] : bnd) {
      auto& list = f.curve_surfaces[std::abs(c)];
      if (std::find(list.begin(), list.end(), s) == list.end()) list.push_back(s);
      curves.push_back(std::abs(c));
    }
  }
  std::sort(curves.begin(), curves.end());
  curves.erase(std::unique(curves.begin(), curves.end()), curves.end());
  for (int c : curves) {
    std::vector<double> lo, hi;
    gmsh::model::getParametrizationBounds(1, c, lo, hi);
    std::vector<double> t;
    for (int i = 0; i < n; ++i) t.push_back(lo[0] + (hi[0] - lo[0]) * i / (n - 1));
    std::vector<double> k, xyz;
    gmsh::model::getCurvature(1, c, t, k);
    gmsh::model::getValue(1, c, t, xyz);
    SizeSamples& samples = f.curve[c];
    samples.nu = n;
    samples.nv = 1;
    for (int i = 0; i < n; ++i) {
      samples.pos.push_back({xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]});
      samples.h.push_back(k.size() == static_cast<std::size_t>(n)
                              ? size_from_curvature(k[i], tolerance)
                              : std::numeric_limits<double>::infinity());
    }
    gmsh::vectorpair bnd;
    gmsh::model::getBoundary({{1, c}}, bnd, false, false, false);
    for (const auto& [d, p] : bnd) f.point_curves[std::abs(p)].push_back(c);
  }
  return f;
}

// Clears gmsh's model and callback whatever happens.
struct GmshScope {
  GmshScope() { gmsh::clear(); }
  ~GmshScope() {
    try {
      gmsh::model::mesh::removeSizeCallback();
      gmsh::clear();
    } catch (...) {
    }
  }
  GmshScope(const GmshScope&) = delete;
  GmshScope& operator=(const GmshScope&) = delete;
};

// Largest distance between a flat triangle whose smallest enclosing circle
// has radius r and a surface of curvature k through its corners (the
// sagitta of that circle; exact for a sphere).
double sagitta(double k, double r) {
  if (!(k > 0)) return 0;
  const double big = 1 / k;
  return r >= big ? r : big - std::sqrt(big * big - r * r);
}

// The mesh of the current model's `surfaces`, with each triangle's surface.
RawMesh extract(const Solid& s, const std::vector<int>& surfaces, std::vector<int>& tri_surface) {
  RawMesh raw;
  tri_surface.clear();
  std::vector<std::size_t> node_tags;
  std::vector<double> coords, params;
  gmsh::model::mesh::getNodes(node_tags, coords, params, -1, -1, false, false);
  std::size_t max_tag = 0;
  for (auto t : node_tags) max_tag = std::max(max_tag, t);
  std::vector<std::uint32_t> index(max_tag + 1, UINT32_MAX);
  raw.points.resize(node_tags.size());
  for (std::size_t i = 0; i < node_tags.size(); ++i) {
    index[node_tags[i]] = static_cast<std::uint32_t>(i);
    raw.points[i] = {coords[3 * i], coords[3 * i + 1], coords[3 * i + 2]};
  }
  for (int surface : surfaces) {
    std::vector<int> types;
    std::vector<std::vector<std::size_t>> elements, nodes;
    gmsh::model::mesh::getElements(types, elements, nodes, 2, surface);
    bool any = false;
    for (std::size_t k = 0; k < types.size(); ++k) {
      if (types[k] != 2) continue;  // 3-node triangles
      for (std::size_t e = 0; e + 2 < nodes[k].size(); e += 3) {
        Tri t{};
        for (std::size_t c = 0; c < 3; ++c) {
          const std::size_t tag = nodes[k][e + c];
          if (tag > max_tag || index[tag] == UINT32_MAX) {
            fail(s, "the kernel's mesh refers to an unknown node (internal error) report it");
          }
          t[c] = index[tag];
        }
        raw.triangles.push_back(t);
        tri_surface.push_back(surface);
        any = true;
      }
    }
    if (!any) {
      fail(s,
           "the kernel could not mesh one of its surfaces (it may be degenerate or tiny) "
           "check the solid or loosen the tolerance");
    }
  }
  return raw;
}

// True if every edge of the kernel's mesh (by node) has exactly two triangles.
bool closed_by_node(const RawMesh& raw) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> edges;
  edges.reserve(raw.triangles.size() * 3);
  for (const Tri& t : raw.triangles) {
    for (int k = 0; k < 3; ++k) edges.push_back(std::minmax(t[k], t[(k + 1) % 3]));
  }
  std::sort(edges.begin(), edges.end());
  for (std::size_t i = 0; i < edges.size();) {
    std::size_t j = i;
    while (j < edges.size() && edges[j] == edges[i]) ++j;
    if (j - i != 2) return false;
    i = j;
  }
  return true;
}

// Rounds of "mesh, check every triangle, refine where it fails": gmsh's
// triangles near a parametric singularity (a sphere's pole) can exceed the
// size asked for.
constexpr int kMaxRounds = 4;

RawMesh kernel_mesh(const Solid& s, const MeshingOptions& options, OccBuilder& builder) {
  builder.build(s);
  occ::synchronize();
  builder.current = &s;

  gmsh::vectorpair volumes;
  gmsh::model::getEntities(volumes, 3);
  if (volumes.empty()) {
    fail(s, "the geometry kernel produced no volume (degenerate shape) check it");
  }
  // Boundary surfaces; one shared by two volumes is an interface, not boundary.
  std::map<int, int> uses;
  for (const auto& v : volumes) {
    gmsh::vectorpair bnd;
    gmsh::model::getBoundary({v}, bnd, false, false, false);
    for (const auto& [d, t] : bnd) ++uses[std::abs(t)];
  }
  std::vector<int> surfaces;
  for (const auto& [t, n] : uses) {
    if (n == 1) surfaces.push_back(t);
  }

  double lo[3], hi[3];
  gmsh::model::getBoundingBox(-1, -1, lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]);
  const double diagonal = std::hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
  const double tol = options.tolerance;
  double h_max = options.max_edge > 0 ? options.max_edge : std::max(diagonal, 1e-3);
  SizeField field = sample_sizes(surfaces, tol, h_max);

  gmsh::option::setNumber("General.NumThreads", 1);
  gmsh::option::setNumber("Mesh.MaxNumThreads2D", 1);
  // Delaunay: 2-4x faster than Frontal-Delaunay. Where it gives up (near a
  // sphere's pole, now and then) gmsh would switch to MeshAdapt, 100x slower;
  // instead its result is checked below and Frontal-Delaunay takes over.
  int algorithm = 5;
  gmsh::option::setNumber("Mesh.AlgorithmSwitchOnFailure", 0);
  gmsh::option::setNumber("Mesh.Smoothing", 0);  // 3x faster; the check below holds
  gmsh::option::setNumber("Mesh.MeshSizeFromPoints", 0);
  gmsh::option::setNumber("Mesh.MeshSizeFromCurvature", kElementsPer2Pi);
  gmsh::option::setNumber("Mesh.MeshSizeExtendFromBoundary", 1);
  gmsh::option::setNumber("Mesh.MeshSizeMin", field.h_min);
  gmsh::model::mesh::setSizeCallback([&field](int dim, int tag, double x, double y, double z) {
    return field(dim, tag, x, y, z);
  });

  RawMesh raw;
  std::vector<int> tri_surface;
  for (int round = 0;; ++round) {
    gmsh::option::setNumber("Mesh.Algorithm", algorithm);
    gmsh::option::setNumber("Mesh.MeshSizeMax", field.h_max);
    gmsh::model::mesh::generate(2);
    raw = extract(s, surfaces, tri_surface);
    if (!closed_by_node(raw) && algorithm == 5) {
      algorithm = 6;
      gmsh::model::mesh::clear();
      --round;
      continue;
    }
    // Check every triangle: chord error from the sampled curvature and the
    // smallest enclosing circle, and the edge limit.
    std::map<int, std::vector<Spot>> new_spots;
    bool long_edges = false;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < raw.triangles.size(); ++i) {
      const auto& t = raw.triangles[i];
      const P3 &a = raw.points[t[0]], &b = raw.points[t[1]], &c = raw.points[t[2]];
      const double la = std::sqrt(dot3(sub(b, c), sub(b, c)));
      const double lb = std::sqrt(dot3(sub(c, a), sub(c, a)));
      const double lc = std::sqrt(dot3(sub(a, b), sub(a, b)));
      const double longest = std::max({la, lb, lc});
      if (options.max_edge > 0 && longest > options.max_edge) long_edges = true;
      const double sq = la * la + lb * lb + lc * lc - longest * longest;
      const double area2 = std::sqrt(
          std::max(0.0, (la + lb + lc) * (-la + lb + lc) * (la - lb + lc) * (la + lb - lc)));
      const double r = (longest * longest >= sq || area2 == 0) ? longest / 2 : la * lb * lc / area2;
      const P3 centre{(a[0] + b[0] + c[0]) / 3, (a[1] + b[1] + c[1]) / 3, (a[2] + b[2] + c[2]) / 3};
      const int surface = tri_surface[i];
      const double e = sagitta(field.curvature(surface, centre[0], centre[1], centre[2]), r);
      if (e > tol) {
        ++bad;
        const double h = field(2, surface, centre[0], centre[1], centre[2]);
        new_spots[surface].push_back(
            {centre, 4 * longest * longest, h * std::min(0.8, std::sqrt(0.7 * tol / e))});
      }
    }
    if ((bad == 0 && !long_edges) || round + 1 == kMaxRounds) break;
    if (long_edges) field.h_max *= 0.85;
    for (auto& [surface, list] : new_spots) {
      // Many failures on one surface: shrink it as a whole (few spots keep
      // the size callback cheap).
      if (list.size() > 16) {
        field.factor[surface] = field.factor.count(surface) ? field.factor[surface] * 0.85 : 0.85;
      } else {
        auto& spots = field.spots[surface];
        spots.insert(spots.end(), list.begin(), list.end());
      }
    }
    gmsh::model::mesh::clear();
  }
  return raw;
}

}  // namespace mesher
}  // namespace

double mesh_volume(const Mesh& mesh) {
  double v = 0;
  for (const auto& t : mesh.triangles) {
    v += mesher::tri_volume(mesh.vertices[t[0]], mesh.vertices[t[1]], mesh.vertices[t[2]]);
  }
  return v;
}

Mesh tessellate(const solids::Solid& solid, const MeshingOptions& options) {
  if (!(options.tolerance > 0) || !std::isfinite(options.tolerance)) {
    mesher::fail(solid, "meshing tolerance " + mesher::num(options.tolerance) +
                            " mm (the chord error bound must be positive) give a tolerance > 0");
  }
  if (!(options.max_edge >= 0) || !std::isfinite(options.max_edge)) {
    mesher::fail(solid, "max_edge " + mesher::num(options.max_edge) +
                            " mm (an edge limit is positive, or 0 for none) give max_edge >= 0");
  }
  mesher::validate(solid, 0);
  if (options.max_edge == 0 && mesher::is_planar(solid))
    return mesher::finish(solid, mesher::triangulate_faces(mesher::planar(solid)));

  std::lock_guard lock(mesher::gmsh_mutex());
  mesher::ensure_gmsh();
  mesher::GmshScope scope;
  mesher::OccBuilder builder;
  mesher::RawMesh raw;
  try {
    raw = mesher::kernel_mesh(solid, options, builder);
  } catch (const SetupError&) {
    throw;
  } catch (const std::string& e) {
    const mesher::Solid& where = builder.current ? *builder.current : solid;
    std::string what = "the geometry kernel (gmsh/OpenCASCADE) failed";
    if (&where != &solid) what += " on operand " + mesher::label(where);
    mesher::fail(solid, what + ": " + e +
                            " (the shape is degenerate or the kernel cannot handle it) "
                            "check the solid's parameters");
  } catch (const std::exception& e) {
    mesher::fail(solid, std::string("the geometry kernel (gmsh/OpenCASCADE) failed: ") + e.what() +
                            " (unexpected error) check the solid's parameters");
  }
  return mesher::finish(solid, raw);
}

namespace {

double extent_of(const solids::SolidVariant& v) {
  using namespace solids;
  const auto zmax = [](const auto& planes, auto r_of) {
    double r = 0, z0 = 0, z1 = 0;
    bool first = true;
    for (const auto& p : planes) {
      r = std::max(r, r_of(p));
      z0 = first ? p.z : std::min(z0, p.z);
      z1 = first ? p.z : std::max(z1, p.z);
      first = false;
    }
    return std::max(2 * r, z1 - z0);
  };
  return std::visit(
      [&](const auto& s) -> double {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, Box>) {
          return std::max({s.x, s.y, s.z});
        } else if constexpr (std::is_same_v<T, Tube>) {
          return std::max(2 * s.rmax, s.z);
        } else if constexpr (std::is_same_v<T, Cone>) {
          return std::max({2 * s.rmax1, 2 * s.rmax2, s.z});
        } else if constexpr (std::is_same_v<T, Sphere>) {
          return 2 * s.rmax;
        } else if constexpr (std::is_same_v<T, Orb>) {
          return 2 * s.r;
        } else if constexpr (std::is_same_v<T, Ellipsoid>) {
          return 2 * std::max({s.ax, s.by, s.cz});
        } else if constexpr (std::is_same_v<T, EllipticalTube>) {
          return 2 * std::max({s.dx, s.dy, s.dz});
        } else if constexpr (std::is_same_v<T, Torus>) {
          return 2 * (s.rtor + s.rmax);
        } else if constexpr (std::is_same_v<T, Polycone> || std::is_same_v<T, Polyhedra>) {
          return zmax(s.zplanes, [](const ZPlane& p) { return p.rmax; }) * 1.5;
        } else if constexpr (std::is_same_v<T, GenericPolycone> ||
                             std::is_same_v<T, GenericPolyhedra>) {
          return zmax(s.rzpoints, [](const RZPoint& p) { return p.r; }) * 1.5;
        } else if constexpr (std::is_same_v<T, Trd>) {
          return std::max({s.x1, s.x2, s.y1, s.y2, s.z});
        } else if constexpr (std::is_same_v<T, Trap>) {
          return std::max({s.z, s.y1, s.y2, s.x1, s.x2, s.x3, s.x4}) * 2;
        } else if constexpr (std::is_same_v<T, Para>) {
          return std::max({s.x, s.y, s.z}) * 2;
        } else if constexpr (std::is_same_v<T, Tessellated>) {
          double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
          bool first = true;
          for (const auto& p : s.vertices) {
            for (int k = 0; k < 3; ++k) {
              lo[k] = first ? p[k] : std::min(lo[k], p[k]);
              hi[k] = first ? p[k] : std::max(hi[k], p[k]);
            }
            first = false;
          }
          return std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
        } else if constexpr (std::is_same_v<T, ScaledSolid>) {
          const double f = std::max({std::fabs(s.scale[0]), std::fabs(s.scale[1]),
                                     std::fabs(s.scale[2])});
          return s.solid ? f * solid_extent(*s.solid) : 0.0;
        } else {  // Boolean
          const double a = s.first ? solid_extent(*s.first) : 0.0;
          if (s.op == Boolean::Op::intersection) return a;
          const double b = s.second ? solid_extent(*s.second) : 0.0;
          const auto& t = s.second_transform.translation;
          return std::max(a, b + 2 * std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]));
        }
      },
      v);
}

}  // namespace

double solid_extent(const solids::Solid& solid) {
  const double e = extent_of(solid.shape);
  return std::isfinite(e) && e > 0 ? e : 0.0;
}

}  // namespace acheron::optics
