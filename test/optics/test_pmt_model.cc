// PMTs built from a profile: the R7081-like bulb, the inner surface offset
// by the glass thickness, the photocathode cut, the mesh and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "acheron/core/Error.hh"
#include "acheron/optics/PmtModel.hh"

namespace acheron::optics {
namespace {

double distance_to_segment(ProfilePoint p, ProfilePoint a, ProfilePoint b) {
  const double er = b.r - a.r, ez = b.z - a.z;
  double u = ((p.r - a.r) * er + (p.z - a.z) * ez) / (er * er + ez * ez);
  u = std::clamp(u, 0.0, 1.0);
  return std::hypot(p.r - (a.r + u * er), p.z - (a.z + u * ez));
}

double distance_to_polyline(ProfilePoint p, const std::vector<ProfilePoint>& poly) {
  double d = 1e300;
  for (std::size_t i = 0; i + 1 < poly.size(); ++i) {
    d = std::min(d, distance_to_segment(p, poly[i], poly[i + 1]));
  }
  return d;
}

double signed_volume(const Mesh& m, int part_lo, int part_hi) {
  double v = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m.part[i] < part_lo || m.part[i] > part_hi) continue;
    const auto& t = m.triangles[i];
    v += dot(m.vertices[t[0]], cross(m.vertices[t[1]], m.vertices[t[2]])) / 6.0;
  }
  return v;
}

TEST(PmtModel, R7081ProfileHasTheBulbsDimensions) {
  const auto p = r7081_profile(6.0);
  ASSERT_GT(p.size(), 20u);
  EXPECT_EQ(p.front().r, 0.f);
  EXPECT_FLOAT_EQ(p.front().z, 96.7f);
  EXPECT_EQ(p.back().r, 0.f);
  EXPECT_FLOAT_EQ(p.back().z, -142.f);
  float r_max = 0, z_at_max = 0;
  for (const auto& q : p) {
    if (q.r > r_max) r_max = q.r, z_at_max = q.z;
  }
  EXPECT_FLOAT_EQ(r_max, 126.5f);  // 253 mm bulb
  EXPECT_FLOAT_EQ(z_at_max, 0.f);  // at the equator
  // The edges of the description are points of the profile, the arcs are
  // divided into steps of at most 6 degrees, the neck is 84.5 mm wide.
  bool rim = false, neck = false;
  for (const auto& q : p) {
    rim |= q.r == 111.f && q.z == 40.f;
    neck |= q.r == 42.25f && q.z == -90.f;
  }
  EXPECT_TRUE(rim);
  EXPECT_TRUE(neck);
  EXPECT_GT(r7081_profile(2.0).size(), 2 * p.size() - 10);
  EXPECT_THROW(r7081_profile(0.0), SetupError);
}

TEST(PmtModel, InnerSurfaceIsTheOuterOffsetByTheGlassThickness) {
  PmtModelShape shape;
  shape.profile = r7081_profile(6.0);
  shape.glass_thickness = 3;
  shape.photocathode_cut = 40;
  const PmtProfiles p = pmt_profiles(shape, "r7081");
  EXPECT_EQ(p.outer.size(), shape.profile.size());
  // One point more inside: the one inserted at the cut.
  ASSERT_EQ(p.inner.size(), p.outer.size() + 1);
  // Each inner point (but the poles and the inserted one) lies 3 mm inside
  // the lines of both outer segments meeting at its outer point, so every
  // inner segment is parallel to its outer one at 3 mm; nothing of the
  // inner surface comes nearer than 3 mm to the outer one.
  std::vector<ProfilePoint> inner = p.inner;
  inner.erase(inner.begin() + long(p.photocathode_segments));
  auto line_distance = [](ProfilePoint q, ProfilePoint a, ProfilePoint b) {
    const double er = b.r - a.r, ez = b.z - a.z;
    return std::fabs((q.r - a.r) * ez - (q.z - a.z) * er) / std::hypot(er, ez);
  };
  for (std::size_t i = 1; i + 1 < inner.size(); ++i) {
    EXPECT_NEAR(line_distance(inner[i], p.outer[i - 1], p.outer[i]), 3.0, 1e-4) << i;
    EXPECT_NEAR(line_distance(inner[i], p.outer[i], p.outer[i + 1]), 3.0, 1e-4) << i;
  }
  for (const auto& q : p.inner) EXPECT_GT(distance_to_polyline(q, p.outer), 3.0 - 1e-4);
  // The photocathode runs from the apex down to z = cut exactly.
  const auto& edge = p.inner[p.photocathode_segments];
  EXPECT_FLOAT_EQ(edge.z, 40.f);
  for (std::size_t i = 0; i < p.photocathode_segments; ++i) EXPECT_GT(p.inner[i].z, 40.f);
  for (std::size_t i = p.photocathode_segments + 1; i < p.inner.size(); ++i) {
    EXPECT_LT(p.inner[i].z, 40.f);
  }
  // The poles sit on the axis where the offset lines of their segments meet
  // it: 3 mm / cos(tilt) inside the outer poles (the bottom is flat).
  const double tilt = std::atan2(p.outer[0].z - p.outer[1].z, p.outer[1].r);
  EXPECT_NEAR(p.inner.front().z, 96.7 - 3 / std::cos(tilt), 1e-4);
  EXPECT_NEAR(line_distance(p.inner.front(), p.outer[0], p.outer[1]), 3.0, 1e-4);
  EXPECT_FLOAT_EQ(p.inner.back().z, -139.f);
}

TEST(PmtModel, MeshIsTwoClosedShellsWithParts) {
  PmtModelShape shape;
  shape.profile = r7081_profile(6.0);
  shape.photocathode_cut = 40;
  shape.segments = 32;
  const Mesh m = make_pmt_model(shape, "r7081");
  ASSERT_EQ(m.part.size(), m.size());
  EXPECT_GT(m.size(), 2000u);  // a few thousand triangles
  EXPECT_LT(m.size(), 6000u);
  // Closed and consistently wound: each directed edge once, its reverse once.
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> edges;
  for (const auto& t : m.triangles) {
    for (int k = 0; k < 3; ++k) edges[{t[k], t[(k + 1) % 3]}] += 1;
  }
  for (const auto& [e, n] : edges) {
    ASSERT_EQ(n, 1);
    ASSERT_TRUE(edges.count({e.second, e.first}));
  }
  // Both shells point outward; the glass between them is ~ area x 3 mm.
  const double outer = signed_volume(m, pmt_part::envelope, pmt_part::envelope);
  const double inner = signed_volume(m, pmt_part::photocathode, pmt_part::back);
  EXPECT_GT(inner, 0);
  EXPECT_GT(outer, inner);
  double area = 0, inner_area = 0;
  std::size_t cathode = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const auto& t = m.triangles[i];
    const Vec3 a = m.vertices[t[0]], b = m.vertices[t[1]], c = m.vertices[t[2]];
    (m.part[i] == pmt_part::envelope ? area : inner_area) += norm(cross(b - a, c - b)) / 2;
    if (m.part[i] == pmt_part::photocathode) {
      ++cathode;
      EXPECT_GE(std::min({a.z, b.z, c.z}), 40.f - 1e-4f);
    }
  }
  // A shell of thickness t between areas A and A': volume ~ t (A + A') / 2.
  const double shell = 3 * (area + inner_area) / 2;
  EXPECT_NEAR(outer - inner, shell, 0.005 * shell);
  EXPECT_GT(cathode, 0u);
  const SolidMaterials sm = pmt_model_materials(1, 2, 0, 5, 6, -1);
  EXPECT_EQ(sm.inner_by_part, (std::vector<std::uint32_t>{1, 2, 2}));
  EXPECT_EQ(sm.outer_by_part, (std::vector<std::uint32_t>{0, 1, 1}));
  EXPECT_EQ(sm.surface_by_part, (std::vector<std::int32_t>{-1, 5, 6}));
}

std::string error_of(const PmtModelShape& shape) {
  try {
    make_pmt_model(shape, "tube");
  } catch (const SetupError& e) {
    return e.what();
  }
  return "no error";
}

TEST(PmtModel, ErrorsSayWhatIsWrongWithTheProfile) {
  PmtModelShape ok;
  ok.profile = {{0, 50}, {40, 40}, {50, 0}, {40, -40}, {0, -50}};
  ok.glass_thickness = 2;
  ok.photocathode_cut = 0;
  EXPECT_EQ(error_of(ok), "no error");
  auto with = [&](auto change) {
    PmtModelShape s = ok;
    change(s);
    return error_of(s);
  };
  EXPECT_NE(with([](auto& s) { s.profile.front().r = 5; }).find("start and end on the axis"),
            std::string::npos);
  EXPECT_NE(with([](auto& s) {
              std::reverse(s.profile.begin(), s.profile.end());
            }).find("from the bottom up"),
            std::string::npos);
  const std::string thick = with([](auto& s) { s.glass_thickness = 60; });
  EXPECT_NE(thick.find("make the glass thinner"), std::string::npos) << thick;
  EXPECT_NE(thick.find("PMT model 'tube'"), std::string::npos) << thick;
  EXPECT_NE(with([](auto& s) { s.glass_thickness = 0; }).find("glass_thickness must be > 0"),
            std::string::npos);
  EXPECT_NE(with([](auto& s) { s.photocathode_cut = 48; }).find("no photocathode"),
            std::string::npos);
  EXPECT_NE(with([](auto& s) {
              s.profile = {{0, 1}, {1, 0}};
            }).find("at least 3"),
            std::string::npos);
  EXPECT_NE(with([](auto& s) {
              s.profile = {{0, 50}, {40, 40}, {50, 0}, {0, 30}, {40, -40}, {0, -50}};
            }).find("lies on the axis"),
            std::string::npos);
  const std::string crossing = with([](auto& s) {
    s.profile = {{0, 50}, {30, 50}, {30, 0}, {10, 20}, {40, 20}, {40, -50}, {0, -50}};
  });
  EXPECT_NE(crossing.find("crosses itself"), std::string::npos) << crossing;
  EXPECT_NE(with([](auto& s) { s.segments = 2; }).find("segments"), std::string::npos);
}

}  // namespace
}  // namespace acheron::optics
