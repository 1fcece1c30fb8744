// The solid mesher: every GDML solid kind, booleans, scaling, the chord
// error bound (analytic distances from points on every triangle to the true
// surface), closedness and orientation, analytic volumes, determinism,
// thread safety and every validation error.
#include <gtest/gtest.h>

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <numbers>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Error.hh"
#include "acheron/optics/SolidMesher.hh"

namespace acheron::optics {
namespace {

namespace so = solids;
constexpr double kPi = std::numbers::pi;

so::SolidPtr make(std::string name, so::SolidVariant shape) {
  return std::make_shared<so::Solid>(
      so::Solid{std::move(name), "test.gdml:" + std::to_string(__LINE__), std::move(shape)});
}

struct D3 {
  double x, y, z;
};
D3 d3(Vec3 v) {
  return {v.x, v.y, v.z};
}

double mesh_area(const Mesh& m) {
  double a = 0;
  for (const auto& t : m.triangles) {
    const D3 p = d3(m.vertices[t[0]]), q = d3(m.vertices[t[1]]), r = d3(m.vertices[t[2]]);
    const D3 u{q.x - p.x, q.y - p.y, q.z - p.z}, v{r.x - p.x, r.y - p.y, r.z - p.z};
    a += 0.5 * std::sqrt(std::pow(u.y * v.z - u.z * v.y, 2) + std::pow(u.z * v.x - u.x * v.z, 2) +
                         std::pow(u.x * v.y - u.y * v.x, 2));
  }
  return a;
}

// Closed (every directed edge once, its reverse once), no zero-area
// triangle (Geometry's float test), no two vertices at one position, every
// vertex used. Returns the number of shells (edge-connected components).
int check_mesh(const Mesh& m) {
  EXPECT_GE(m.size(), 4u);
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> directed;
  for (const auto& t : m.triangles) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_LT(t[k], m.vertices.size());
      directed[{t[k], t[(k + 1) % 3]}] += 1;
    }
    const Vec3 n = cross(m.vertices[t[1]] - m.vertices[t[0]], m.vertices[t[2]] - m.vertices[t[1]]);
    EXPECT_GT(norm(n), 0.0f) << "degenerate triangle";
  }
  int open = 0;
  for (const auto& [e, n] : directed) {
    if (n != 1 || directed.count({e.second, e.first}) != 1 ||
        directed.at({e.second, e.first}) != 1) {
      ++open;
    }
  }
  EXPECT_EQ(open, 0) << "edges not shared by exactly two oppositely wound triangles";
  std::set<std::tuple<float, float, float>> positions;
  for (const Vec3& v : m.vertices) positions.insert({v.x, v.y, v.z});
  EXPECT_EQ(positions.size(), m.vertices.size()) << "unmerged vertices";
  std::vector<int> used(m.vertices.size(), 0);
  for (const auto& t : m.triangles) {
    for (auto v : t) used[v] = 1;
  }
  EXPECT_EQ(std::count(used.begin(), used.end(), 0), 0) << "unused vertices";
  // Shells by union-find over triangle vertices.
  std::vector<std::uint32_t> parent(m.vertices.size());
  for (std::uint32_t i = 0; i < parent.size(); ++i) parent[i] = i;
  std::function<std::uint32_t(std::uint32_t)> find = [&](std::uint32_t x) {
    return parent[x] == x ? x : parent[x] = find(parent[x]);
  };
  for (const auto& t : m.triangles) {
    parent[find(t[1])] = find(t[0]);
    parent[find(t[2])] = find(t[0]);
  }
  std::set<std::uint32_t> roots;
  for (std::uint32_t i = 0; i < parent.size(); ++i) roots.insert(find(i));
  return static_cast<int>(roots.size());
}

// The volume agrees with the analytic one within what the chord error
// allows: every surface point moves by at most `tolerance`, so the volume
// changes by at most tolerance * area.
void expect_volume(const Mesh& m, double exact, double tolerance) {
  const double v = mesh_volume(m);
  EXPECT_GT(v, 0);
  EXPECT_NEAR(v, exact, tolerance * mesh_area(m) + 1e-6 * exact)
      << "relative " << (v - exact) / exact;
}

using Distance = std::function<double(D3)>;

struct ChordStats {
  double vertex = 0;  // largest vertex distance from the surface
  double sample = 0;  // largest distance of centroids, edge midpoints and more
};

// Distances to the true surface of points on every triangle: the vertices,
// the centroid, the edge midpoints and three interior points.
ChordStats chord(const Mesh& m, const Distance& distance) {
  ChordStats s;
  for (const Vec3& v : m.vertices) s.vertex = std::max(s.vertex, distance(d3(v)));
  const double bary[][3] = {{1.0 / 3, 1.0 / 3, 1.0 / 3},
                            {0.5, 0.5, 0},
                            {0, 0.5, 0.5},
                            {0.5, 0, 0.5},
                            {4.0 / 6, 1.0 / 6, 1.0 / 6},
                            {1.0 / 6, 4.0 / 6, 1.0 / 6},
                            {1.0 / 6, 1.0 / 6, 4.0 / 6}};
  for (const auto& t : m.triangles) {
    const D3 a = d3(m.vertices[t[0]]), b = d3(m.vertices[t[1]]), c = d3(m.vertices[t[2]]);
    for (const auto& w : bary) {
      const D3 p{w[0] * a.x + w[1] * b.x + w[2] * c.x, w[0] * a.y + w[1] * b.y + w[2] * c.y,
                 w[0] * a.z + w[1] * b.z + w[2] * c.z};
      s.sample = std::max(s.sample, distance(p));
    }
  }
  return s;
}

void expect_chord(const Mesh& m, const Distance& distance, double tolerance) {
  const ChordStats s = chord(m, distance);
  EXPECT_LT(s.vertex, 2e-3) << "vertices must lie on the surface";
  EXPECT_LE(s.sample, tolerance) << "chord error above the tolerance";
  EXPECT_GT(s.sample, 0.05 * tolerance) << "suspiciously fine: the sizing ignores the tolerance";
}

// Analytic surfaces (distances to the untrimmed surface; a solid's distance
// is the smallest over its faces).
double rho(D3 p) {
  return std::hypot(p.x, p.y);
}
Distance sphere_d(double r, D3 c = {0, 0, 0}) {
  return [=](D3 p) { return std::abs(std::hypot(p.x - c.x, p.y - c.y, p.z - c.z) - r); };
}
Distance cylinder_d(double r, double cx = 0, double cy = 0) {
  return [=](D3 p) { return std::abs(std::hypot(p.x - cx, p.y - cy) - r); };
}
Distance plane_z(double z) {
  return [=](D3 p) { return std::abs(p.z - z); };
}
Distance plane_phi(double phi) {
  return [=](D3 p) { return std::abs(-std::sin(phi) * p.x + std::cos(phi) * p.y); };
}
// A cone through (r1, z1) and (r2, z2) in the meridian plane.
Distance cone_d(double r1, double z1, double r2, double z2) {
  return [=](D3 p) {
    const double dr = r2 - r1, dz = z2 - z1, len = std::hypot(dr, dz);
    return std::abs((rho(p) - r1) * dz - (p.z - z1) * dr) / len;
  };
}
Distance torus_d(double rtor, double r) {
  return [=](D3 p) { return std::abs(std::hypot(rho(p) - rtor, p.z) - r); };
}
// First-order (algebraic) distance to an ellipsoid: |F| / |grad F|, exact to
// second order in the distance (well below 1e-4 mm here).
Distance ellipsoid_d(double a, double b, double c) {
  return [=](D3 p) {
    const double f = p.x * p.x / (a * a) + p.y * p.y / (b * b) + p.z * p.z / (c * c) - 1;
    const double g = 2 * std::hypot(p.x / (a * a), p.y / (b * b), p.z / (c * c));
    return std::abs(f) / g;
  };
}
Distance elliptic_cylinder_d(double a, double b) {
  return [=](D3 p) {
    const double f = p.x * p.x / (a * a) + p.y * p.y / (b * b) - 1;
    return std::abs(f) / (2 * std::hypot(p.x / (a * a), p.y / (b * b)));
  };
}
Distance nearest(std::vector<Distance> faces) {
  return [faces = std::move(faces)](D3 p) {
    double d = std::numeric_limits<double>::infinity();
    for (const auto& f : faces) d = std::min(d, f(p));
    return d;
  };
}

MeshingOptions with_tolerance(double t) {
  MeshingOptions o;
  o.tolerance = t;
  return o;
}

// ---------------------------------------------------------------- CSG solids

TEST(SolidMesher, BoxIsExact) {
  const Mesh m = tessellate(*make("box", so::Box{10, 20, 30}));
  EXPECT_EQ(check_mesh(m), 1);
  EXPECT_EQ(m.size(), 12u);
  EXPECT_EQ(m.vertices.size(), 8u);
  EXPECT_DOUBLE_EQ(mesh_volume(m), 6000.0);
  for (const Vec3& v : m.vertices) {
    EXPECT_EQ(std::abs(v.x), 5.0f);
    EXPECT_EQ(std::abs(v.y), 10.0f);
    EXPECT_EQ(std::abs(v.z), 15.0f);
  }
}

TEST(SolidMesher, TubeFull) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("tube", so::Tube{0, 50, 100}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, kPi * 2500 * 100, tol);
  expect_chord(m, nearest({cylinder_d(50), plane_z(-50), plane_z(50)}), tol);
}

TEST(SolidMesher, TubeWithHoleAndPhiSegment) {
  const double tol = 0.1;
  const so::Tube t{20, 50, 60, 0.5, 1.5 * kPi};
  const Mesh m = tessellate(*make("tube", t), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 0.75 * kPi * (2500 - 400) * 60, tol);
  expect_chord(m,
               nearest({cylinder_d(50), cylinder_d(20), plane_z(-30), plane_z(30), plane_phi(0.5),
                        plane_phi(0.5 + 1.5 * kPi)}),
               tol);
  // The segment spans phi in [0.5, 0.5 + 1.5 pi]: nothing at phi = 0.5 - 0.25 pi.
  for (const Vec3& v : m.vertices) {
    double phi = std::atan2(v.y, v.x) - 0.5;
    while (phi < -1e-6) phi += 2 * kPi;
    EXPECT_LE(phi, 1.5 * kPi + 1e-5);
  }
  // A hollow tube segment is one shell, so nothing faces inward: check the
  // normals of the inner cylinder point towards the axis (away from material).
  int inner = 0;
  for (const auto& tri : m.triangles) {
    bool on_inner = true;
    for (auto v : tri)
      on_inner &= std::abs(std::hypot(m.vertices[v].x, m.vertices[v].y) - 20) < 1e-3;
    if (!on_inner) continue;
    const Vec3 c = (m.vertices[tri[0]] + m.vertices[tri[1]] + m.vertices[tri[2]]) / 3.0f;
    const Vec3 n =
        cross(m.vertices[tri[1]] - m.vertices[tri[0]], m.vertices[tri[2]] - m.vertices[tri[1]]);
    EXPECT_LT(n.x * c.x + n.y * c.y, 0);
    ++inner;
  }
  EXPECT_GT(inner, 10);
}

TEST(SolidMesher, ConeWithApex) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("cone", so::Cone{0, 50, 0, 0, 80}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, kPi * 2500 * 80 / 3, tol);
  expect_chord(m, nearest({cone_d(50, -40, 0, 40), plane_z(-40)}), tol);
}

TEST(SolidMesher, ConeWithHolesAndPhiSegment) {
  const double tol = 0.1;
  const so::Cone c{10, 40, 20, 30, 50, -0.3, kPi};
  const Mesh m = tessellate(*make("cone", c), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  auto frustum = [](double r1, double r2, double h) {
    return kPi * h / 3 * (r1 * r1 + r1 * r2 + r2 * r2);
  };
  expect_volume(m, 0.5 * (frustum(40, 30, 50) - frustum(10, 20, 50)), tol);
  expect_chord(m,
               nearest({cone_d(40, -25, 30, 25), cone_d(10, -25, 20, 25), plane_z(-25), plane_z(25),
                        plane_phi(-0.3), plane_phi(-0.3 + kPi)}),
               tol);
}

TEST(SolidMesher, SphereFull) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("sphere", so::Sphere{0, 127}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 4.0 / 3 * kPi * std::pow(127, 3), tol);
  expect_chord(m, sphere_d(127), tol);
}

TEST(SolidMesher, HollowSphereHasAnInnerShellFacingTheCavity) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("shell", so::Sphere{80, 100}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 2);
  expect_volume(m, 4.0 / 3 * kPi * (1e6 - 512000), tol);
  expect_chord(m, nearest({sphere_d(80), sphere_d(100)}), tol);
  for (const auto& t : m.triangles) {
    const Vec3 c = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0f;
    const Vec3 n = cross(m.vertices[t[1]] - m.vertices[t[0]], m.vertices[t[2]] - m.vertices[t[1]]);
    // Outer shell faces out (+c), the cavity's faces in (-c): away from the material.
    if (norm(c) > 90) {
      EXPECT_GT(dot(n, c), 0);
    } else {
      EXPECT_LT(dot(n, c), 0);
    }
  }
}

TEST(SolidMesher, SphereThetaAndPhiSegment) {
  const double tol = 0.1;
  // Theta from +z: a band between 30 and 100 degrees, over half the azimuth.
  const double t1 = kPi / 6, t2 = t1 + 70 * kPi / 180;
  const so::Sphere s{40, 100, 0.2, kPi, t1, t2 - t1};
  const Mesh m = tessellate(*make("band", s), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  const double v = (kPi / 3) * (std::pow(100, 3) - std::pow(40, 3)) * (std::cos(t1) - std::cos(t2));
  expect_volume(m, v, tol);
  auto theta_cone = [](double t) {
    return [t](D3 p) { return std::abs(rho(p) * std::cos(t) - p.z * std::sin(t)); };
  };
  expect_chord(m,
               nearest({sphere_d(100), sphere_d(40), theta_cone(t1), theta_cone(t2), plane_phi(0.2),
                        plane_phi(0.2 + kPi)}),
               tol);
  for (const Vec3& p : m.vertices) {
    const double theta = std::acos(p.z / norm(p));
    EXPECT_GE(theta, t1 - 1e-5);
    EXPECT_LE(theta, t2 + 1e-5);
  }
}

TEST(SolidMesher, SphereUpperHemisphereClampsDeltaTheta) {
  // deltatheta beyond pi - starttheta stops at the -z pole, as in Geant4.
  const Mesh m = tessellate(*make("lower", so::Sphere{0, 50, 0, 2 * kPi, kPi / 2, kPi}));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 2.0 / 3 * kPi * 125000, 0.1);
  for (const Vec3& p : m.vertices) EXPECT_LE(p.z, 1e-4);
}

TEST(SolidMesher, Orb) {
  const double tol = 0.05;
  const Mesh m = tessellate(*make("orb", so::Orb{30}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 4.0 / 3 * kPi * 27000, tol);
  expect_chord(m, sphere_d(30), tol);
}

TEST(SolidMesher, EllipsoidWithZCuts) {
  const double tol = 0.1;
  const so::Ellipsoid e{127, 100, 95, -50, 80};
  const Mesh m = tessellate(*make("ell", e), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  auto area = [](double z) { return kPi * 127 * 100 * (1 - z * z / (95.0 * 95)); };
  auto integral = [&](double z) { return kPi * 127 * 100 * (z - z * z * z / (3 * 95.0 * 95)); };
  expect_volume(m, integral(80) - integral(-50), tol);
  (void)area;
  expect_chord(m, nearest({ellipsoid_d(127, 100, 95), plane_z(-50), plane_z(80)}), tol);
  for (const Vec3& p : m.vertices) {
    EXPECT_GE(p.z, -50 - 1e-4);
    EXPECT_LE(p.z, 80 + 1e-4);
  }
}

TEST(SolidMesher, EllipsoidWithoutCuts) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("ell", so::Ellipsoid{127, 127, 95}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 4.0 / 3 * kPi * 127 * 127 * 95, tol);
  expect_chord(m, ellipsoid_d(127, 127, 95), tol);
}

TEST(SolidMesher, EllipticalTube) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("elt", so::EllipticalTube{60, 25, 40}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, kPi * 60 * 25 * 80, tol);
  expect_chord(m, nearest({elliptic_cylinder_d(60, 25), plane_z(-40), plane_z(40)}), tol);
}

TEST(SolidMesher, TorusFull) {
  const double tol = 0.1;
  const Mesh m = tessellate(*make("torus", so::Torus{0, 15, 60}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 2 * kPi * kPi * 60 * 225, tol);
  expect_chord(m, torus_d(60, 15), tol);
}

TEST(SolidMesher, TorusWithHoleAndPhiSegment) {
  const double tol = 0.1;
  const Mesh m =
      tessellate(*make("torus", so::Torus{10, 15, 60, 1.0, kPi / 2}), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 0.25 * 2 * kPi * kPi * 60 * (225 - 100), tol);
  expect_chord(
      m, nearest({torus_d(60, 15), torus_d(60, 10), plane_phi(1.0), plane_phi(1.0 + kPi / 2)}),
      tol);
}

// ---------------------------------------------------------------- polycones, polyhedra

TEST(SolidMesher, PolyconeWithHoleAndPhiSegment) {
  const double tol = 0.1;
  const so::Polycone p{0.1, 1.5 * kPi, {{10, 40, -50}, {10, 40, 0}, {5, 20, 50}}};
  const Mesh m = tessellate(*make("pcon", p), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  auto frustum = [](double r1, double r2, double h) {
    return kPi * h / 3 * (r1 * r1 + r1 * r2 + r2 * r2);
  };
  const double full = kPi * 1600 * 50 + frustum(40, 20, 50) - kPi * 100 * 50 - frustum(10, 5, 50);
  expect_volume(m, 0.75 * full, tol);
  expect_chord(m,
               nearest({cylinder_d(40), cylinder_d(10), cone_d(40, 0, 20, 50), cone_d(10, 0, 5, 50),
                        plane_z(-50), plane_z(50), plane_phi(0.1), plane_phi(0.1 + 1.5 * kPi)}),
               tol);
}

TEST(SolidMesher, PolyconeZPlanesGivenDownwards) {
  const so::Polycone up{0, 2 * kPi, {{0, 30, -20}, {0, 10, 20}}};
  const so::Polycone down{0, 2 * kPi, {{0, 10, 20}, {0, 30, -20}}};
  const double a = mesh_volume(tessellate(*make("up", up)));
  const double b = mesh_volume(tessellate(*make("down", down)));
  EXPECT_NEAR(a, b, 1e-6 * a);
}

TEST(SolidMesher, GenericPolycone) {
  const double tol = 0.1;
  // A triangle in (r, z) with one side on the axis: a double cone.
  const so::GenericPolycone p{0, 2 * kPi, {{0, -30}, {25, 0}, {0, 30}}};
  const Mesh m = tessellate(*make("gpcon", p), with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 2 * kPi * 625 * 30 / 3, tol);
  expect_chord(m, nearest({cone_d(0, -30, 25, 0), cone_d(25, 0, 0, 30)}), tol);
}

// Largest signed distance of a vertex beyond the side faces of a regular
// polyhedra whose corners sit at start + k * 2pi / n: the faces' normals point
// at the side centres, start + (k + 1/2) * 2pi / n.
double side_distance(Vec3 v, int n, double start) {
  double d = -1e300;
  for (int k = 0; k < n; ++k) {
    const double phi = start + (k + 0.5) * 2 * kPi / n;
    d = std::max(d, v.x * std::cos(phi) + v.y * std::sin(phi));
  }
  return d;
}

TEST(SolidMesher, PolyhedraRadiiAreDistancesToTheSideFaces) {
  const int n = 6;
  const double start = 0.3;
  const so::Polyhedra p{start, 2 * kPi, n, {{20, 50, -40}, {20, 50, 40}}};
  const Mesh m = tessellate(*make("hex", p));
  EXPECT_EQ(check_mesh(m), 1);
  const double corner = 50 / std::cos(kPi / n);
  int outer = 0, inner = 0;
  for (const Vec3& v : m.vertices) {
    const double d = side_distance(v, n, start);
    if (std::hypot(v.x, v.y) > 35) {
      EXPECT_NEAR(d, 50, 1e-4);  // on an outer side face
      EXPECT_NEAR(std::hypot(v.x, v.y), corner, 1e-4);
      ++outer;
    } else {
      EXPECT_NEAR(d, 20, 1e-4);
      ++inner;
    }
  }
  EXPECT_EQ(outer, 2 * n);
  EXPECT_EQ(inner, 2 * n);
  // A corner sits at startphi.
  bool corner_at_start = false;
  for (const Vec3& v : m.vertices) {
    corner_at_start |= std::abs(v.x - corner * std::cos(start)) < 1e-4 &&
                       std::abs(v.y - corner * std::sin(start)) < 1e-4;
  }
  EXPECT_TRUE(corner_at_start);
  // Hexagonal prism with a hexagonal hole: area = n * r^2 * tan(pi / n).
  const double exact = n * std::tan(kPi / n) * (2500 - 400) * 80;
  EXPECT_NEAR(mesh_volume(m), exact, 1e-5 * exact);
}

TEST(SolidMesher, PolyhedraPhiSegmentAndTaper) {
  // Three sides over 90 degrees; radii change with z; rmin 0 (the axis).
  const int n = 3;
  const double span = kPi / 2, half = span / (2 * n);
  const so::Polyhedra p{0.4, span, n, {{0, 30, 0}, {0, 30, 20}, {0, 10, 40}}};
  const Mesh m = tessellate(*make("pgon", p));
  EXPECT_EQ(check_mesh(m), 1);
  // Cross-section area at side distance r: n * r^2 * tan(half); integrate.
  const double k = n * std::tan(half);
  const double exact = k * 900 * 20 + k * 20 / 3 * (900 + 300 + 100);
  EXPECT_NEAR(mesh_volume(m), exact, 1e-5 * exact);
  for (const Vec3& v : m.vertices) {
    const double phi = std::atan2(v.y, v.x);
    if (std::hypot(v.x, v.y) > 1e-3) {
      EXPECT_GE(phi, 0.4 - 1e-5);
      EXPECT_LE(phi, 0.4 + span + 1e-5);
    }
  }
}

TEST(SolidMesher, GenericPolyhedraUsesCornerRadii) {
  const int n = 8;
  const so::GenericPolyhedra p{0, 2 * kPi, n, {{0, -10}, {40, -10}, {40, 10}, {0, 10}}};
  const Mesh m = tessellate(*make("gpgon", p));
  EXPECT_EQ(check_mesh(m), 1);
  const double exact = n * 0.5 * 1600 * std::sin(2 * kPi / n) * 20;
  EXPECT_NEAR(mesh_volume(m), exact, 1e-5 * exact);
  for (const Vec3& v : m.vertices) {
    if (std::hypot(v.x, v.y) > 1) {
      EXPECT_NEAR(std::hypot(v.x, v.y), 40, 1e-4);
    }
  }
}

// ---------------------------------------------------------------- planar solids

TEST(SolidMesher, TrdVolume) {
  const so::Trd t{40, 20, 30, 10, 50};
  const Mesh m = tessellate(*make("trd", t));
  EXPECT_EQ(check_mesh(m), 1);
  const double exact = 50.0 / 6 * (40 * 30 + 4 * 30 * 20 + 20 * 10);
  EXPECT_NEAR(mesh_volume(m), exact, 1e-5 * exact);
}

TEST(SolidMesher, TrdToAnEdge) {
  // x2 = 0: the top face shrinks to an edge (a wedge).
  const Mesh m = tessellate(*make("wedge", so::Trd{40, 0, 30, 30, 50}));
  EXPECT_EQ(check_mesh(m), 1);
  EXPECT_NEAR(mesh_volume(m), 0.5 * 40 * 30 * 50, 1e-3);
}

TEST(SolidMesher, TrapFollowsGeant4Corners) {
  // G4Trap: theta/phi tilt the axis joining the face centres; alpha shears x with y.
  const so::Trap t{60, 0.3, 0.7, 40, 30, 30, 0.2, 40, 30, 30, 0.2};
  const Mesh m = tessellate(*make("trap", t));
  EXPECT_EQ(check_mesh(m), 1);
  EXPECT_NEAR(mesh_volume(m), 30.0 * 40 * 60, 1e-2);
  // The top face centre sits at dz * tan(theta) * (cos phi, sin phi).
  double cx = 0, cy = 0;
  int top = 0;
  for (const Vec3& v : m.vertices) {
    if (v.z > 29) cx += v.x, cy += v.y, ++top;
  }
  ASSERT_EQ(top, 4);
  EXPECT_NEAR(cx / 4, 30 * std::tan(0.3) * std::cos(0.7), 1e-4);
  EXPECT_NEAR(cy / 4, 30 * std::tan(0.3) * std::sin(0.7), 1e-4);
}

TEST(SolidMesher, TrapWithUnequalFaces) {
  const so::Trap t{50, 0.1, 0.2, 40, 30, 20, 0.1, 32, 24, 16, 0.1};
  const Mesh m = tessellate(*make("trap", t));
  EXPECT_EQ(check_mesh(m), 1);
  // Cross-sections are trapezoids whose area is quadratic in z: Simpson is exact.
  const double a1 = 0.5 * (30 + 20) * 40, a2 = 0.5 * (24 + 16) * 32, am = 0.5 * (27 + 18) * 36;
  const double exact = 50.0 / 6 * (a1 + 4 * am + a2);
  EXPECT_NEAR(mesh_volume(m), exact, 1e-5 * exact);
}

TEST(SolidMesher, ParaFollowsGeant4Shear) {
  const so::Para p{20, 30, 40, 0.3, 0.4, 0.5};
  const Mesh m = tessellate(*make("para", p));
  EXPECT_EQ(check_mesh(m), 1);
  EXPECT_NEAR(mesh_volume(m), 20.0 * 30 * 40, 1e-2);
  // The corner (+x, +y, +z) is at (dx + dy tan(alpha) + dz tan(theta) cos(phi), dy + dz
  // tan(theta) sin(phi), dz).
  const double x = 10 + 15 * std::tan(0.3) + 20 * std::tan(0.4) * std::cos(0.5);
  const double y = 15 + 20 * std::tan(0.4) * std::sin(0.5);
  bool found = false;
  for (const Vec3& v : m.vertices) {
    found |= std::abs(v.x - x) < 1e-4 && std::abs(v.y - y) < 1e-4 && std::abs(v.z - 20) < 1e-4;
  }
  EXPECT_TRUE(found);
}

so::Tessellated cube_facets(double h, bool inward = false) {
  so::Tessellated t;
  for (int i = 0; i < 8; ++i)
    t.vertices.push_back({i & 1 ? h : -h, i & 2 ? h : -h, i & 4 ? h : -h});
  t.facets = {{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4}, {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}};
  if (inward) {
    for (auto& f : t.facets) std::reverse(f.begin(), f.end());
  }
  return t;
}

TEST(SolidMesher, TessellatedQuadsAndTriangles) {
  so::Tessellated t = cube_facets(10);
  const Mesh m = tessellate(*make("cube", t));
  EXPECT_EQ(check_mesh(m), 1);
  EXPECT_EQ(m.size(), 12u);
  EXPECT_NEAR(mesh_volume(m), 8000, 1e-3);
  so::Tessellated tet;
  tet.vertices = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}};
  tet.facets = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
  const Mesh mt = tessellate(*make("tet", tet));
  EXPECT_EQ(check_mesh(mt), 1);
  EXPECT_NEAR(mesh_volume(mt), 1000.0 / 6, 1e-4);
}

TEST(SolidMesher, TessellatedWoundInwardComesOutOutward) {
  const Mesh m = tessellate(*make("cube", cube_facets(10, true)));
  EXPECT_EQ(check_mesh(m), 1);
  EXPECT_NEAR(mesh_volume(m), 8000, 1e-3);
}

TEST(SolidMesher, TessellatedOpenSurfaceIsAnError) {
  so::Tessellated t = cube_facets(10);
  t.facets.pop_back();
  try {
    tessellate(*make("opencube", t));
    FAIL() << "expected SetupError";
  } catch (const SetupError& e) {
    EXPECT_NE(std::string(e.what()).find("not closed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("opencube"), std::string::npos);
  }
}

// ---------------------------------------------------------------- scaled

TEST(SolidMesher, ScaledOrbIsAnEllipsoid) {
  const double tol = 0.1;
  const Mesh m =
      tessellate(*make("scaled", so::ScaledSolid{make("orb", so::Orb{40}), {1.5, 1, 0.5}}),
                 with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 4.0 / 3 * kPi * 60 * 40 * 20, tol);
  expect_chord(m, ellipsoid_d(60, 40, 20), tol);
}

TEST(SolidMesher, ScaledWithReflectionStaysOutward) {
  // A reflected cone (z -> -z): its apex moves to -z; still outward.
  const so::ScaledSolid s{make("cone", so::Cone{0, 30, 0, 10, 40}), {1, 1, -2}};
  const Mesh m = tessellate(*make("mirrored", s));
  EXPECT_EQ(check_mesh(m), 1);
  const double exact = 2 * kPi * 40 / 3 * (900 + 300 + 100);
  expect_volume(m, exact, 0.1);
  // The wide end (r = 30) was at -z and is now at +z.
  float zmax_wide = -1e9;
  for (const Vec3& v : m.vertices) {
    if (std::hypot(v.x, v.y) > 29.9) zmax_wide = std::max(zmax_wide, v.z);
  }
  EXPECT_NEAR(zmax_wide, 40, 1e-3);
  // Planar children are scaled exactly, reflections included.
  const Mesh b =
      tessellate(*make("sbox", so::ScaledSolid{make("box", so::Box{2, 4, 6}), {-1, 2, 3}}));
  EXPECT_EQ(check_mesh(b), 1);
  EXPECT_NEAR(mesh_volume(b), 48.0 * 6, 1e-4);
}

// ---------------------------------------------------------------- booleans

so::SolidPtr boolean(std::string name, so::Boolean::Op op, so::SolidPtr a, so::SolidPtr b,
                     std::array<double, 3> at = {0, 0, 0},
                     std::array<double, 9> rotation = {1, 0, 0, 0, 1, 0, 0, 0, 1}) {
  so::Boolean x;
  x.op = op;
  x.first = std::move(a);
  x.second = std::move(b);
  x.second_transform.translation = at;
  x.second_transform.rotation = rotation;
  return make(std::move(name), x);
}

TEST(SolidMesher, PmtBulbSphereUnionTube) {
  // A 10-inch PMT-like bulb: a sphere of radius R and a neck tube of radius
  // a from z = -h up to z = 0 (its top inside the sphere).
  const double tol = 0.1, R = 127, a = 42, h = 200;
  const auto pmt = boolean("pmt", so::Boolean::Op::union_, make("bulb", so::Sphere{0, R}),
                           make("neck", so::Tube{0, a, h}), {0, 0, -h / 2});
  const Mesh m = tessellate(*pmt, with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  // The tube's part inside the sphere: rho < a, -sqrt(R^2 - rho^2) < z < 0.
  const double overlap = 2 * kPi / 3 * (R * R * R - std::pow(R * R - a * a, 1.5));
  expect_volume(m, 4.0 / 3 * kPi * R * R * R + kPi * a * a * h - overlap, tol);
  expect_chord(m, nearest({sphere_d(R), cylinder_d(a), plane_z(-h)}), tol);
}

TEST(SolidMesher, BoxMinusCylinder) {
  const double tol = 0.1;
  const auto s = boolean("holed", so::Boolean::Op::subtraction, make("block", so::Box{100, 80, 60}),
                         make("hole", so::Tube{0, 20, 100}));
  const Mesh m = tessellate(*s, with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 100.0 * 80 * 60 - kPi * 400 * 60, tol);
  expect_chord(m,
               nearest({cylinder_d(20), plane_z(-30), plane_z(30),
                        [](D3 p) { return std::abs(std::abs(p.x) - 50); },
                        [](D3 p) { return std::abs(std::abs(p.y) - 40); }}),
               tol);
}

TEST(SolidMesher, IntersectionOfTwoCylindersIsSteinmetz) {
  // A tube along z intersected with one turned onto the x axis (rotation
  // about y by 90 degrees): the Steinmetz solid, 16 r^3 / 3.
  const double tol = 0.05, r = 20;
  const auto s =
      boolean("steinmetz", so::Boolean::Op::intersection, make("cz", so::Tube{0, r, 100}),
              make("cx", so::Tube{0, r, 100}), {0, 0, 0}, {0, 0, 1, 0, 1, 0, -1, 0, 0});
  const Mesh m = tessellate(*s, with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 1);
  expect_volume(m, 16 * r * r * r / 3, tol);
  expect_chord(
      m, nearest({cylinder_d(r), [r](D3 p) { return std::abs(std::hypot(p.y, p.z) - r); }}), tol);
}

TEST(SolidMesher, SubtractionMakingACavityHasTwoShells) {
  const double tol = 0.1;
  const auto s = boolean("hollow", so::Boolean::Op::subtraction, make("out", so::Orb{50}),
                         make("in", so::Orb{20}), {5, -3, 8});
  const Mesh m = tessellate(*s, with_tolerance(tol));
  EXPECT_EQ(check_mesh(m), 2);
  expect_volume(m, 4.0 / 3 * kPi * (125000 - 8000), tol);
  expect_chord(m, nearest({sphere_d(50), sphere_d(20, {5, -3, 8})}), tol);
}

TEST(SolidMesher, NestedBooleansWithPlanarAndTessellatedOperands) {
  // ((trd - cube corner of a tetrahedron) u disjoint sphere), first operand moved.
  so::Tessellated tet;
  tet.vertices = {{0, 0, 0}, {100, 0, 0}, {0, 100, 0}, {0, 0, 100}};
  tet.facets = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
  const auto cut = boolean("tetcut", so::Boolean::Op::subtraction, make("tet", tet),
                           make("corner", so::Box{20, 20, 20}));
  so::Boolean u;
  u.op = so::Boolean::Op::union_;
  u.first = cut;
  u.second = make("ball", so::Orb{10});
  u.first_transform.translation = {0, 0, 50};
  u.second_transform.translation = {0, 0, -40};
  const auto s = make("nested", u);
  const Mesh m = tessellate(*s);
  EXPECT_EQ(check_mesh(m), 2);  // disjoint parts: two outward shells
  expect_volume(m, 1e6 / 6 - 1000 + 4.0 / 3 * kPi * 1000, 0.1);
  // Both shells face outward: each has positive volume on its own side of z.
  double upper = 0, lower = 0;
  for (const auto& t : m.triangles) {
    const Vec3 a = m.vertices[t[0]], b = m.vertices[t[1]], c = m.vertices[t[2]];
    const double v = dot(a, cross(b, c)) / 6.0;
    (a.z > 0 ? upper : lower) += v;
  }
  EXPECT_GT(upper, 0);
  EXPECT_NEAR(lower, 4.0 / 3 * kPi * 1000, 0.1 * mesh_area(m));

  // A trap and a polyhedra as operands.
  const auto planar =
      boolean("planar", so::Boolean::Op::subtraction,
              make("trap", so::Trap{60, 0, 0, 40, 40, 40, 0, 40, 40, 40, 0}),
              make("hex", so::Polyhedra{0, 2 * kPi, 6, {{0, 10, -50}, {0, 10, 50}}}));
  const Mesh p = tessellate(*planar);
  EXPECT_EQ(check_mesh(p), 1);
  const double hex = 6 * std::tan(kPi / 6) * 100 * 60;
  EXPECT_NEAR(mesh_volume(p), 40.0 * 40 * 60 - hex, 1e-3);
}

TEST(SolidMesher, OpenTessellatedOperandIsAnError) {
  so::Tessellated t = cube_facets(10);
  t.facets.pop_back();
  const auto s = boolean("withopen", so::Boolean::Op::union_, make("open", t),
                         make("ball", so::Orb{5}), {0, 0, 20});
  try {
    tessellate(*s);
    FAIL() << "expected SetupError";
  } catch (const SetupError& e) {
    // Found before any kernel call, and named by the operand.
    EXPECT_NE(std::string(e.what()).find("'open'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not closed"), std::string::npos) << e.what();
  }
}

TEST(SolidMesher, KeepsTheProcessLocale) {
  const std::string before = std::setlocale(LC_ALL, nullptr);
  tessellate(*make("orb", so::Orb{5}));
  EXPECT_EQ(std::string(std::setlocale(LC_ALL, nullptr)), before);
}

TEST(SolidMesher, EmptyBooleanIsAnError) {
  const auto s = boolean("nothing", so::Boolean::Op::intersection, make("a", so::Orb{10}),
                         make("b", so::Orb{10}), {100, 0, 0});
  try {
    tessellate(*s);
    FAIL() << "expected SetupError";
  } catch (const SetupError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'nothing'"), std::string::npos) << what;
    EXPECT_NE(what.find("empty"), std::string::npos) << what;
  }
  const auto all = boolean("all gone", so::Boolean::Op::subtraction, make("a", so::Orb{10}),
                           make("b", so::Box{50, 50, 50}));
  EXPECT_THROW(tessellate(*all), SetupError);
}

// ---------------------------------------------------------------- options, determinism

TEST(SolidMesher, ChordErrorFollowsTheTolerance) {
  const auto s = make("sphere", so::Orb{100});
  std::size_t previous = 0;
  for (double tol : {1.0, 0.3, 0.1, 0.03}) {
    const Mesh m = tessellate(*s, with_tolerance(tol));
    const ChordStats c = chord(m, sphere_d(100));
    EXPECT_LE(c.sample, tol) << "tolerance " << tol;
    EXPECT_GT(c.sample, 0.3 * tol) << "tolerance " << tol << ": finer than needed";
    EXPECT_GT(m.size(), previous);
    previous = m.size();
  }
}

TEST(SolidMesher, MaxEdgeLimitsEveryEdge) {
  MeshingOptions o;
  o.max_edge = 5;
  for (const auto& s : {make("box", so::Box{40, 30, 20}), make("orb", so::Orb{30})}) {
    const Mesh m = tessellate(*s, o);
    EXPECT_EQ(check_mesh(m), 1);
    double longest = 0;
    for (const auto& t : m.triangles) {
      for (int k = 0; k < 3; ++k) {
        longest = std::max<double>(longest, norm(m.vertices[t[k]] - m.vertices[t[(k + 1) % 3]]));
      }
    }
    EXPECT_LE(longest, o.max_edge) << s->name;
  }
}

TEST(SolidMesher, SameInputSameMesh) {
  const auto pmt =
      boolean("pmt", so::Boolean::Op::union_, make("bulb", so::Ellipsoid{127, 127, 95}),
              make("neck", so::Tube{0, 42, 100}), {0, 0, -100});
  const Mesh a = tessellate(*pmt);
  tessellate(*make("other", so::Torus{0, 5, 30}));
  const Mesh b = tessellate(*pmt);
  ASSERT_EQ(a.vertices.size(), b.vertices.size());
  ASSERT_EQ(a.triangles, b.triangles);
  for (std::size_t i = 0; i < a.vertices.size(); ++i) {
    EXPECT_EQ(a.vertices[i].x, b.vertices[i].x);
    EXPECT_EQ(a.vertices[i].y, b.vertices[i].y);
    EXPECT_EQ(a.vertices[i].z, b.vertices[i].z);
  }
}

TEST(SolidMesher, ConcurrentCallsAreSerialisedAndAgree) {
  const auto s = make("tube", so::Tube{5, 20, 30, 0, kPi});
  const Mesh serial = tessellate(*s);
  std::vector<Mesh> results(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = tessellate(*s); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r.triangles, serial.triangles);
}

// ---------------------------------------------------------------- validation

void expect_error(const so::SolidPtr& s, const std::string& fragment,
                  const MeshingOptions& o = {}) {
  try {
    tessellate(*s, o);
    ADD_FAILURE() << s->name << ": expected SetupError mentioning '" << fragment << "'";
  } catch (const SetupError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + s->name + "'"), std::string::npos) << what;
    EXPECT_NE(what.find(s->where), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

TEST(SolidMesherValidation, RadiiAndLengths) {
  expect_error(make("negative", so::Tube{-1, 10, 10}), "cannot be negative");
  expect_error(make("inverted", so::Tube{10, 5, 10}), "inner radius must be smaller");
  expect_error(make("flat", so::Tube{0, 10, 0}), "tube z");
  expect_error(make("nobox", so::Box{10, 0, 10}), "box y");
  expect_error(make("cone", so::Cone{5, 5, 7, 7, 10}), "rmin < rmax at one end");
  expect_error(make("orb", so::Orb{-2}), "orb r");
  expect_error(make("sph", so::Sphere{10, 10}), "inner radius must be smaller");
  expect_error(make("torus", so::Torus{0, 20, 15}), "rtor");
  expect_error(make("eltube", so::EllipticalTube{1, 0, 1}), "eltube dy");
  expect_error(make("ell", so::Ellipsoid{10, 10, 0}), "ellipsoid cz");
  expect_error(make("ellcut", so::Ellipsoid{10, 10, 10, 5, -5}), "z cuts");
  expect_error(make("trd", so::Trd{0, 0, 5, 5, 10}), "trd lengths");
  expect_error(make("trap", so::Trap{10, 0, 0, 5, 0, 5, 0, 5, 5, 5, 0}), "trap x1");
  expect_error(make("para", so::Para{10, 10, 10, 2.0, 0, 0}), "para alpha");
  expect_error(make("nan", so::Box{10, std::nan(""), 10}), "finite");
}

TEST(SolidMesherValidation, Angles) {
  expect_error(make("tube", so::Tube{0, 10, 10, 0, 0}), "deltaphi");
  expect_error(make("cone", so::Cone{0, 10, 0, 5, 10, 0, -1}), "deltaphi");
  expect_error(make("sph", so::Sphere{0, 10, 0, 1, 4, 1}), "starttheta");
  expect_error(make("sph2", so::Sphere{0, 10, 0, 1, 0, 0}), "deltatheta");
  expect_error(make("torus", so::Torus{0, 5, 20, 0, -1}), "deltaphi");
  expect_error(make("pgon", so::Polyhedra{0, 2 * kPi, 2, {{0, 5, 0}, {0, 5, 1}}}), "numsides");
  expect_error(make("pgon0", so::Polyhedra{0, 1, 0, {{0, 5, 0}, {0, 5, 1}}}), "numsides");
}

TEST(SolidMesherValidation, Outlines) {
  expect_error(make("pcon1", so::Polycone{0, 2 * kPi, {{0, 10, 0}}}), "at least 2");
  expect_error(make("pcon", so::Polycone{0, 2 * kPi, {{0, 10, 0}, {0, 10, 5}, {0, 10, 2}}}),
               "not in order");
  expect_error(make("pconr", so::Polycone{0, 2 * kPi, {{5, 3, 0}, {0, 10, 5}}}), "rmin <= rmax");
  expect_error(make("gpcon", so::GenericPolycone{0, 2 * kPi, {{0, 0}, {10, 0}}}), "at least 3");
  expect_error(
      make("bowtie", so::GenericPolycone{0, 2 * kPi, {{0, 0}, {10, 10}, {10, 0}, {2, 12}}}),
      "crosses");
  expect_error(make("line", so::GenericPolycone{0, 2 * kPi, {{0, 0}, {5, 5}, {10, 10}}}),
               "fewer than 3 distinct points");
  expect_error(make("negr", so::GenericPolyhedra{0, 2 * kPi, 6, {{-1, 0}, {10, 0}, {10, 5}}}),
               "never negative");
  // Two z-planes at one z whose radial ranges do not touch: the outline crosses itself.
  expect_error(
      make("gap", so::Polycone{0, 2 * kPi, {{0, 10, 0}, {0, 10, 5}, {20, 30, 5}, {20, 30, 10}}}),
      "crosses or touches");
}

TEST(SolidMesherValidation, Tessellated) {
  so::Tessellated t = cube_facets(10);
  t.facets.resize(2);
  expect_error(make("few", t), "at least 4");
  t = cube_facets(10);
  t.facets[0] = {0, 1, 99};
  expect_error(make("range", t), "vertex 99");
  t = cube_facets(10);
  t.facets[0] = {0, 1};
  expect_error(make("two", t), "triangular or quadrangular");
  t = cube_facets(10);
  t.facets[0] = {0, 1, 1};
  expect_error(make("repeat", t), "repeats vertex");
}

TEST(SolidMesherValidation, TrapMustBePlanar) {
  // x1/x2 at -z differ from x3/x4 at +z in a way no plane can join.
  expect_error(make("warped", so::Trap{10, 0, 0, 10, 10, 2, 0, 10, 2, 10, 0}), "not planar");
}

TEST(SolidMesherValidation, CompositesAndOptions) {
  so::Boolean b;
  b.first = make("a", so::Orb{1});
  expect_error(make("half", b), "lacks its first or second operand");
  b.second = make("b", so::Orb{1});
  b.second_transform.rotation = {1, 0, 0, 0, 2, 0, 0, 0, 1};
  expect_error(make("stretch", b), "not orthonormal");
  expect_error(make("flatten", so::ScaledSolid{make("o", so::Orb{1}), {1, 0, 1}}),
               "scale factor 0");
  expect_error(make("dangling", so::ScaledSolid{nullptr, {1, 1, 1}}), "no solid to scale");
  // An invalid operand is reported with its own name.
  b.second_transform = {};
  b.second = make("badop", so::Orb{0});
  try {
    tessellate(*make("parent", b));
    ADD_FAILURE() << "expected SetupError";
  } catch (const SetupError& e) {
    EXPECT_NE(std::string(e.what()).find("'badop'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("orb r"), std::string::npos) << e.what();
  }
  MeshingOptions o;
  o.tolerance = 0;
  expect_error(make("orb", so::Orb{1}), "tolerance", o);
  o = {};
  o.max_edge = -1;
  expect_error(make("orb", so::Orb{1}), "max_edge", o);
}

}  // namespace
}  // namespace acheron::optics
