// Solid mesher, planar route: exact meshes of solids bounded by planes
// (box, trd, trap, para, polyhedra, tessellated), faces triangulated by ear
// clipping.
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

// ---------------------------------------------------------------- planar solids

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

}  // namespace mesher
}  // namespace acheron::optics
