// The solid mesher's entry and its gmsh/OpenCASCADE route: B-rep
// construction of every solid, curvature-driven surface meshing with checks
// and refinement. Validation (SolidMesherChecks.cc), the exact planar route
// (SolidMesherPlanar.cc), the size field (SolidMesherSizing.cc) and the
// clean-up both routes end in (SolidMesherCleanup.cc) are beside it.
#include "acheron/optics/SolidMesher.hh"
#include "acheron/optics/SolidMesherInternal.hh"

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
namespace mesher {

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

}  // namespace acheron::optics
