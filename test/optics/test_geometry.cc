// Primitives, placement, vertex merging and mesh files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>

#include "acheron/core/Error.hh"
#include "acheron/optics/Geometry.hh"

namespace acheron::optics {
namespace {

// Signed volume by the divergence theorem: positive iff normals point outward.
double signed_volume(const Mesh& m) {
  double v = 0;
  for (const auto& t : m.triangles) {
    const Vec3 a = m.vertices[t[0]], b = m.vertices[t[1]], c = m.vertices[t[2]];
    v += dot(a, cross(b, c)) / 6.0;
  }
  return v;
}

// Every directed edge appears once and its reverse once: closed, consistently wound.
bool closed_and_consistent(const Mesh& m) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> edges;
  for (const auto& t : m.triangles) {
    for (int k = 0; k < 3; ++k) edges[{t[k], t[(k + 1) % 3]}] += 1;
  }
  for (const auto& [e, n] : edges) {
    if (n != 1 || !edges.count({e.second, e.first})) return false;
  }
  return true;
}

TEST(Primitives, SphereIsClosedOutwardAndConvergesToTheVolume) {
  const float r = 100;
  Mesh coarse = make_sphere(r, 16), fine = make_sphere(r, 128);
  EXPECT_TRUE(closed_and_consistent(coarse));
  EXPECT_TRUE(closed_and_consistent(fine));
  const double exact = 4.0 / 3.0 * std::numbers::pi * r * r * r;
  EXPECT_GT(signed_volume(coarse), 0);
  // An inscribed polyhedron: below the sphere's volume, within 0.2 % at 128
  // segments (the deficit shrinks as 1/segments^2: 64x larger at 16).
  EXPECT_LT(signed_volume(fine), exact);
  EXPECT_NEAR(signed_volume(fine), exact, 2e-3 * exact);
  EXPECT_GT(exact - signed_volume(coarse), 10 * (exact - signed_volume(fine)));
  for (const Vec3& v : fine.vertices) EXPECT_NEAR(norm(v), r, 1e-3);
}

TEST(Primitives, CylinderAndBoxVolumes) {
  Mesh c = make_cylinder(10, 20, 256);
  EXPECT_TRUE(closed_and_consistent(c));
  const double cyl = std::numbers::pi * 100 * 40;
  EXPECT_NEAR(signed_volume(c), cyl, 1e-3 * cyl);
  ASSERT_EQ(c.part.size(), c.triangles.size());
  Mesh b = make_box({1, 2, 3});
  EXPECT_TRUE(closed_and_consistent(b));
  EXPECT_NEAR(signed_volume(b), 48.0, 1e-9);
  EXPECT_EQ(b.triangles.size(), 12u);
}

TEST(Primitives, PmtCapHasWindowAndBackParts) {
  const float a = 127, rs = 165;
  Mesh m = make_pmt_cap(a, rs, 64);
  EXPECT_TRUE(closed_and_consistent(m));
  EXPECT_GT(signed_volume(m), 0);
  ASSERT_EQ(m.part.size(), m.triangles.size());
  float zmax = 0;
  for (const Vec3& v : m.vertices) zmax = std::max(zmax, v.z);
  const float height = rs - std::sqrt(rs * rs - a * a);
  EXPECT_NEAR(zmax, height, 1e-3);
  // The back (part 1) is flat at z = 0 and faces -z.
  for (std::size_t i = 0; i < m.triangles.size(); ++i) {
    if (m.part[i] != 1) continue;
    for (auto idx : m.triangles[i]) EXPECT_EQ(m.vertices[idx].z, 0.f);
  }
  EXPECT_THROW(make_pmt_cap(10, 5), SetupError);
}

TEST(Placement, FacingTurnsZOntoTheAxis) {
  for (Vec3 axis : {Vec3{1, 0, 0}, Vec3{0, 0, -1}, Vec3{0.3f, -0.4f, 0.866f}, Vec3{0, 0, 1}}) {
    axis = normalize(axis);
    Placement p = Placement::facing(axis, {5, 6, 7});
    Vec3 z = p.apply({0, 0, 1}) - Vec3{5, 6, 7};
    EXPECT_NEAR(z.x, axis.x, 1e-6);
    EXPECT_NEAR(z.y, axis.y, 1e-6);
    EXPECT_NEAR(z.z, axis.z, 1e-6);
    // Rotations keep lengths.
    EXPECT_NEAR(norm(p.apply({1, 2, 3}) - Vec3{5, 6, 7}), std::sqrt(14.f), 1e-5);
  }
  Placement e = Placement::from_euler({0, 0, std::numbers::pi_v<float> / 2}, {});
  Vec3 x = e.apply({1, 0, 0});
  EXPECT_NEAR(x.y, 1, 1e-6);
}

TEST(GeometryBuild, MergesSharedVerticesAndMapsChannels) {
  Geometry g;
  SolidMaterials sm{0, 1, {3}};
  g.add_solid("a", make_box({1, 1, 1}), sm, {});
  g.add_pmt("p0", make_box({1, 1, 1}), sm, Placement::facing({0, 0, 1}, {2, 0, 0}));
  g.add_pmt("p1", make_box({1, 1, 1}), sm, Placement::facing({0, 0, 1}, {0, 5, 0}), 7);
  g.finalize();
  // The box at x=2 shares its -x face corners with the first box's +x face.
  EXPECT_EQ(g.vertices().size(), 8u + 4u + 8u);
  ASSERT_EQ(g.channels().size(), 2u);
  EXPECT_EQ(g.channels()[0].solid, 1u);
  EXPECT_EQ(g.channels()[0].type, 0);  // defaults to the channel index
  EXPECT_EQ(g.channels()[1].type, 7);
  EXPECT_EQ(g.channels()[1].position.y, 5.f);
  EXPECT_EQ(g.solid_channel(), (std::vector<std::int32_t>{-1, 0, 1}));
  EXPECT_EQ(g.triangle_data()[0].surface, 3);
  for (const Vec3& n : g.normals()) EXPECT_NEAR(norm(n), 1, 1e-6);
  ParamsView v;
  g.fill(v);
  EXPECT_EQ(v.n_triangles, 36u);
  EXPECT_EQ(v.n_solids, 3u);
}

TEST(GeometryBuild, RejectsDegenerateTrianglesAndBadIndices) {
  Mesh m = make_box({1, 1, 1});
  m.triangles[0] = {0, 0, 1};
  Geometry g;
  g.add_solid("bad", m, {}, {});
  EXPECT_THROW(g.finalize(), SetupError);
  Mesh idx = make_box({1, 1, 1});
  idx.triangles[0][2] = 99;
  Geometry g2;
  EXPECT_THROW(g2.add_solid("bad", idx, {}, {}), SetupError);
}

std::string box_obj() {
  Mesh b = make_box({1, 2, 3});
  std::string s = "# box\n";
  for (const Vec3& v : b.vertices)
    s += "v " + std::to_string(v.x) + " " + std::to_string(v.y) + " " + std::to_string(v.z) + "\n";
  for (const auto& t : b.triangles) {
    s += "f " + std::to_string(t[0] + 1) + "/1 " + std::to_string(t[1] + 1) + " " +
         std::to_string(t[2] + 1) + "\n";
  }
  return s;
}

std::string box_stl_binary() {
  Mesh b = make_box({1, 2, 3});
  std::string s(80, ' ');
  std::uint32_t n = static_cast<std::uint32_t>(b.triangles.size());
  s.append(reinterpret_cast<const char*>(&n), 4);
  for (const auto& t : b.triangles) {
    float normal[3] = {0, 0, 0};
    s.append(reinterpret_cast<const char*>(normal), 12);
    for (auto i : t) s.append(reinterpret_cast<const char*>(&b.vertices[i]), 12);
    s.append(2, '\0');
  }
  return s;
}

std::string box_stl_ascii() {
  Mesh b = make_box({1, 2, 3});
  std::string s = "solid box\n";
  for (const auto& t : b.triangles) {
    s += " facet normal 0 0 0\n  outer loop\n";
    for (auto i : t) {
      s += "   vertex " + std::to_string(b.vertices[i].x) + " " + std::to_string(b.vertices[i].y) +
           " " + std::to_string(b.vertices[i].z) + "\n";
    }
    s += "  endloop\n endfacet\n";
  }
  return s + "endsolid box\n";
}

std::string box_ply(bool binary) {
  Mesh b = make_box({1, 2, 3});
  std::string s = "ply\nformat " + std::string(binary ? "binary_little_endian" : "ascii") +
                  " 1.0\ncomment test\nelement vertex 8\nproperty float x\nproperty float y\n"
                  "property float z\nproperty uchar red\nelement face 12\n"
                  "property list uchar int vertex_indices\nend_header\n";
  for (const Vec3& v : b.vertices) {
    if (binary) {
      s.append(reinterpret_cast<const char*>(&v), 12);
      s.push_back(static_cast<char>(200));
    } else {
      s += std::to_string(v.x) + " " + std::to_string(v.y) + " " + std::to_string(v.z) + " 200\n";
    }
  }
  for (const auto& t : b.triangles) {
    if (binary) {
      s.push_back(3);
      for (auto i : t) {
        std::int32_t k = static_cast<std::int32_t>(i);
        s.append(reinterpret_cast<const char*>(&k), 4);
      }
    } else {
      s += "3 " + std::to_string(t[0]) + " " + std::to_string(t[1]) + " " + std::to_string(t[2]) +
           "\n";
    }
  }
  return s;
}

TEST(MeshFiles, EveryFormatReadsTheSameBox) {
  const std::vector<std::pair<std::string, std::string>> files = {{"obj", box_obj()},
                                                                  {"stl", box_stl_binary()},
                                                                  {"stl", box_stl_ascii()},
                                                                  {"ply", box_ply(false)},
                                                                  {"ply", box_ply(true)}};
  for (const auto& [fmt, bytes] : files) {
    Mesh m = parse_mesh(bytes, fmt, "box." + fmt);
    EXPECT_EQ(m.triangles.size(), 12u) << fmt;
    // Through Geometry (which merges STL's repeated corners) the box is closed.
    Geometry g;
    g.add_solid("box", m, {}, {});
    g.finalize();
    EXPECT_EQ(g.vertices().size(), 8u) << fmt;
    double vol = 0;
    for (const auto& t : g.triangles()) {
      vol += dot(g.vertices()[t[0]], cross(g.vertices()[t[1]], g.vertices()[t[2]])) / 6.0;
    }
    EXPECT_NEAR(vol, 48.0, 1e-4) << fmt;
  }
}

TEST(MeshFiles, ErrorsNameTheFileAndProblem) {
  auto expect_error = [](const std::string& bytes, const std::string& fmt,
                         const std::string& fragment) {
    try {
      parse_mesh(bytes, fmt, "thing." + fmt);
      ADD_FAILURE() << "accepted " << fmt;
    } catch (const SetupError& e) {
      EXPECT_NE(std::string(e.what()).find("thing." + fmt), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error("v 0 0 0\nf 1 2 3\n", "obj", "out of range");
  expect_error("v 0 0 0\nf 1 x 3\n", "obj", "bad face index");
  expect_error(std::string(90, 'x'), "stl", "nor ASCII");
  expect_error("ply\nformat binary_big_endian 1.0\nend_header\n", "ply", "unsupported");
  expect_error(box_ply(true).substr(0, 300), "ply", "truncated");
  expect_error("", "3ds", "unknown mesh format");
  EXPECT_THROW(load_mesh("/nonexistent/mesh.stl"), SetupError);
}

TEST(MeshFiles, LoadMeshPicksTheFormatByExtension) {
  const auto path = std::filesystem::temp_directory_path() / "acheron_geometry_test_box.obj";
  std::ofstream(path) << box_obj();
  Mesh m = load_mesh(path);
  EXPECT_EQ(m.triangles.size(), 12u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace acheron::optics
