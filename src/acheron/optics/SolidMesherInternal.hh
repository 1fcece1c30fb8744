// Internal to the solid mesher (SolidMesher.cc, SolidMesherChecks.cc,
// SolidMesherPlanar.cc, SolidMesherSizing.cc, SolidMesherCleanup.cc): the
// shared constants, the intermediate mesh and face types, the curvature size
// field, and the helpers one part calls in another. Not for clients.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "acheron/optics/SolidMesher.hh"

namespace acheron::optics::mesher {

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

// A closed (r, z) outline, counter-clockwise after check_outline.
using Outline = std::vector<solids::RZPoint>;

struct RawMesh {
  std::vector<P3> points;
  std::vector<Tri> triangles;
};

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

// Messages and checks (SolidMesherChecks.cc).
std::string label(const Solid& s);
[[noreturn]] void fail(const Solid& s, const std::string& what);
std::string num(double v);
bool is_full_phi(double deltaphi);
double sin_theta(double t);
double cos_theta(double t);
void reduce_outline(Outline& o);
void check_outline(const Solid& s, Outline& o, const std::string& what);
Outline zplane_outline(const Solid& s, std::vector<solids::ZPlane> planes, double radial,
                       const char* kind);
std::pair<double, double> ellipsoid_cuts(const solids::Ellipsoid& e);
void validate(const Solid& s, int depth);

// Clean-up (SolidMesherCleanup.cc).
double tri_volume(const Vec3& a, const Vec3& b, const Vec3& c);
Mesh finish(const Solid& s, const RawMesh& raw);

// Planar solids (SolidMesherPlanar.cc).
P3 sub(const P3& a, const P3& b);
double dot3(const P3& a, const P3& b);
double nonplanarity(const Faces& f, const std::vector<std::uint32_t>& poly);
void triangulate(const Faces& f, const std::vector<std::uint32_t>& poly, std::vector<Tri>& out);
void check_closed_facets(const Solid& s, const solids::Tessellated& t);
bool is_planar(const Solid& s);
Faces planar(const Solid& s);
RawMesh triangulate_faces(const Faces& f);

// Curvature sizing and extraction from gmsh (SolidMesherSizing.cc).
SizeField sample_sizes(const std::vector<int>& surfaces, double tolerance, double h_max);
double sagitta(double k, double r);
RawMesh extract(const Solid& s, const std::vector<int>& surfaces, std::vector<int>& tri_surface);
bool closed_by_node(const RawMesh& raw);

}  // namespace acheron::optics::mesher
