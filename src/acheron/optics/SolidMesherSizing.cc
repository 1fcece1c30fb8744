// Solid mesher, gmsh route: the mesh size field sampled from the surfaces'
// curvature, and the extraction of the kernel's surface mesh.
#include "acheron/optics/SolidMesherInternal.hh"

#include <gmsh.h>

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

double size_from_curvature(double k, double tolerance) {
  k = std::abs(k);
  if (!std::isfinite(k)) return std::numeric_limits<double>::infinity();  // singular point
  if (k < 1e-12) return std::numeric_limits<double>::infinity();
  return kSizeFactor * std::sqrt(tolerance / k);
}

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

}  // namespace mesher
}  // namespace acheron::optics
