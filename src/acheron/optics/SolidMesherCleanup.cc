// Solid mesher, clean-up: both routes end here. Merges vertices, drops
// degenerate triangles, checks closedness and orients every shell; and the
// volume of a finished mesh.
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

// ---------------------------------------------------------------- clean-up

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

}  // namespace mesher

double mesh_volume(const Mesh& mesh) {
  double v = 0;
  for (const auto& t : mesh.triangles) {
    v += mesher::tri_volume(mesh.vertices[t[0]], mesh.vertices[t[1]], mesh.vertices[t[2]]);
  }
  return v;
}

}  // namespace acheron::optics
