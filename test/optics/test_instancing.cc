// Instancing (prototypes placed as Embree instances): the geometry it
// describes, the ray casts through the two-level BVH, and engine results
// equal to those of the same detector flattened.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <string>

#include "acheron/core/Error.hh"
#include "acheron/optics/EmbreeScene.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/optics/Sources.hh"

namespace acheron::optics {
namespace {

// Three PMT domes placed flattened in one geometry and instanced in another,
// after a flattened box, with the same placements.
struct TwoWays {
  Geometry flat, inst;
  std::vector<Placement> placements;
  TwoWays() {
    const Mesh dome = make_pmt_cap(50, 70, 32);
    const SolidMaterials sm{1, 0, {4, 5}};
    placements = {Placement::facing({0, 0, -1}, {0, 0, 500}),
                  Placement::facing(normalize(Vec3{1, 1, 0.2f}), {-300, 120, 7.5f}),
                  Placement::from_euler({0.3f, -1.1f, 2.0f}, {250, -250, -40})};
    for (Geometry* g : {&flat, &inst}) g->add_solid("box", make_box({900, 900, 900}), {0, 2}, {});
    const auto proto = inst.add_prototype("dome", dome, sm);
    for (std::size_t i = 0; i < placements.size(); ++i) {
      const std::int32_t type = i == 2 ? 9 : -1;
      flat.add_pmt("pmt" + std::to_string(i), dome, sm, placements[i], type);
      inst.add_instance("pmt" + std::to_string(i), proto, placements[i], true, type);
    }
    flat.finalize();
    inst.finalize();
  }
};

TEST(Instancing, GeometryEqualsTheFlattenedOne) {
  TwoWays w;
  ASSERT_EQ(w.inst.triangle_count(), w.flat.triangle_count());
  EXPECT_EQ(w.inst.triangles().size(), 12u);  // only the box is stored flattened
  EXPECT_EQ(w.inst.instances().size(), 3u);
  EXPECT_EQ(w.inst.prototypes().size(), 1u);
  // Bounds (and so the world box) are bit-identical: instances are placed
  // vertex by vertex exactly as add_solid places a mesh.
  const auto bi = w.inst.bounds(), bf = w.flat.bounds();
  const auto wi = w.inst.world(), wf = w.flat.world();
  EXPECT_EQ(std::memcmp(&bi, &bf, sizeof(bi)), 0);
  EXPECT_EQ(std::memcmp(&wi, &wf, sizeof(wi)), 0);
  // Solids, channels, types and positions are the same.
  ASSERT_EQ(w.inst.solids().size(), w.flat.solids().size());
  EXPECT_EQ(w.inst.solid_channel(), w.flat.solid_channel());
  ASSERT_EQ(w.inst.channels().size(), 3u);
  for (std::size_t c = 0; c < 3; ++c) {
    EXPECT_EQ(w.inst.channels()[c].solid, w.flat.channels()[c].solid);
    EXPECT_EQ(w.inst.channels()[c].type, w.flat.channels()[c].type);
    EXPECT_EQ(
        std::memcmp(&w.inst.channels()[c].position, &w.flat.channels()[c].position, sizeof(Vec3)),
        0);
  }
  EXPECT_EQ(w.inst.channels()[2].type, 9);
  // Triangle by triangle (the virtual ids run in the same order here): the
  // same corners bit for bit, the same materials, surface and solid, and the
  // normal rotated from the prototype's equal to the one computed from the
  // placed corners to float rounding.
  for (std::uint32_t id = 0; id < w.flat.triangle_count(); ++id) {
    const auto a = w.flat.triangle_corners(id), b = w.inst.triangle_corners(id);
    ASSERT_EQ(std::memcmp(a.data(), b.data(), sizeof(a)), 0) << id;
    const TriangleData ra = w.flat.triangle_record(id), rb = w.inst.triangle_record(id);
    ASSERT_EQ(ra.inner_material, rb.inner_material);
    ASSERT_EQ(ra.outer_material, rb.outer_material);
    ASSERT_EQ(ra.surface, rb.surface);
    ASSERT_EQ(ra.solid, rb.solid) << id;
    ASSERT_NEAR(dot(ra.normal, rb.normal), 1.0f, 2e-6f) << id;
    const std::uint32_t per = w.inst.prototypes()[0].triangle_count;
    ASSERT_EQ(w.inst.instance_of(id), id < 12 ? -1 : std::int32_t((id - 12) / per)) << id;
  }
  EXPECT_EQ(w.inst.instance_of(static_cast<std::uint32_t>(w.inst.triangle_count())), -1);
  EXPECT_THROW(w.inst.triangle_record(static_cast<std::uint32_t>(w.inst.triangle_count())),
               SetupError);
  // Memory: the instanced arrays hold one dome instead of three.
  EXPECT_LT(w.inst.memory_bytes(), w.flat.memory_bytes());
  EXPECT_EQ(w.inst.flattened_memory_bytes(), w.flat.flattened_memory_bytes());
}

TEST(Instancing, RaysReportVirtualIdsAndSkipTheExcludedTriangle) {
  TwoWays w;
  EmbreeScene flat(w.flat), inst(w.inst);
  // Straight down the axis of the first dome (apex at z = 500 - h, facing -z).
  const Vec3 o{0.1f, 0.2f, 0}, d{0, 0, 1};
  RayHit a, b;
  ASSERT_TRUE(flat.tracer().intersect(o, d, -1, a));
  ASSERT_TRUE(inst.tracer().intersect(o, d, -1, b));
  EXPECT_EQ(a.triangle, b.triangle);
  EXPECT_EQ(a.instance, -1);
  EXPECT_EQ(b.instance, 0);
  EXPECT_NEAR(a.distance, b.distance, 1e-3);
  EXPECT_EQ(w.inst.triangle_record(b.triangle).solid, 1u);
  // From that point, excluding the triangle just hit, the next surface is the
  // dome's flat back (same instance), then the box.
  const Vec3 p = o + d * b.distance;
  RayHit a2, b2;
  ASSERT_TRUE(flat.tracer().intersect(p, d, a.triangle, a2));
  ASSERT_TRUE(inst.tracer().intersect(p, d, b.triangle, b2));
  EXPECT_EQ(a2.triangle, b2.triangle);
  EXPECT_EQ(b2.instance, 0);
  EXPECT_EQ(w.inst.triangle_record(b2.triangle).surface, 5);  // the back's surface
  RayHit b3;
  ASSERT_TRUE(inst.tracer().intersect(p + d * b2.distance, d, b2.triangle, b3));
  EXPECT_EQ(b3.instance, -1);
  EXPECT_LT(b3.triangle, 12);
  EXPECT_NEAR(p.z + b2.distance + b3.distance, 900, 1e-2);
  EXPECT_GT(inst.embree_bytes(), 0);
}

TEST(Instancing, RefusesNonRigidPlacementsAndUnknownPrototypes) {
  Geometry g;
  const auto proto = g.add_prototype("box", make_box({1, 1, 1}), {});
  Placement scaled;
  scaled.rotation = {2, 0, 0, 0, 2, 0, 0, 0, 2};
  Placement mirrored;
  mirrored.rotation = {-1, 0, 0, 0, 1, 0, 0, 0, 1};
  Placement sheared;
  sheared.rotation = {1, 0.1f, 0, 0, 1, 0, 0, 0, 1};
  for (const Placement& p : {scaled, mirrored, sheared}) {
    try {
      g.add_instance("bad", proto, p);
      ADD_FAILURE() << "accepted a non-rigid placement";
    } catch (const SetupError& e) {
      EXPECT_NE(std::string(e.what()).find("not a rotation"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(g.add_instance("orphan", 7, {}), SetupError);
  Mesh degenerate = make_box({1, 1, 1});
  degenerate.triangles[3] = {0, 0, 1};
  EXPECT_THROW(g.add_prototype("flat", degenerate, {}), SetupError);
  EXPECT_THROW(g.add_prototype("empty", Mesh{}, {}), SetupError);
  g.add_instance("ok", proto, Placement::from_euler({0.1f, 0.2f, 0.3f}, {5, 5, 5}));
  g.finalize();
  EXPECT_THROW(g.add_instance("late", proto, {}), SetupError);
  EXPECT_THROW(g.add_prototype("late", make_box({1, 1, 1}), {}), SetupError);
  EXPECT_EQ(g.triangle_count(), 12u);
}

// The default detector built with its PMTs instanced (the default) and
// flattened, run on the same photons with the same seed.
TEST(Instancing, EngineResultsEqualTheFlattenedDetector) {
  const std::string toml = Detector::default_toml();
  std::string flat_toml = toml;
  const std::string key = "[settings]\n";
  flat_toml.insert(flat_toml.find(key) + key.size(), "instancing = false\n");
  auto inst = std::make_shared<const Detector>(Detector::parse(toml, "default"));
  auto flat = std::make_shared<const Detector>(Detector::parse(flat_toml, "default, flattened"));
  ASSERT_FALSE(inst->geometry().instances().empty());
  ASSERT_TRUE(flat->geometry().instances().empty());
  ASSERT_EQ(inst->geometry().triangle_count(), flat->geometry().triangle_count());

  PhotonBatch batch;
  append_photons(batch, IsotropicSource{{0, 0, 0}, 300, 700}, 60000, 0, 5);
  append_photons(batch, CherenkovTrack{{200, -100, -800}, {0.1f, 0.3f, 1}, 1500}, 60000, 1, 5);
  Engine ei(inst, {.threads = 2, .keep_final_states = true});
  Engine ef(flat, {.threads = 2, .keep_final_states = true});
  const auto ri = ei.simulate(batch, 42), rf = ef.simulate(batch, 42);

  // Photon by photon: the same final history and, for hits, the same
  // channel, with positions and times equal to float rounding.
  std::size_t same_history = 0, bit_identical = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Photon a = ri.final_states.get(i), b = rf.final_states.get(i);
    same_history += a.history == b.history;
    bit_identical += a.history == b.history && a.time == b.time && a.position.x == b.position.x &&
                     a.position.y == b.position.y && a.position.z == b.position.z;
  }
  std::size_t same_hit = 0, close = 0;
  std::size_t j = 0, k = 0;
  double worst_dx = 0, worst_dt = 0;
  while (j < ri.hits.size() && k < rf.hits.size()) {
    const HitRecord &a = ri.hits[j], &b = rf.hits[k];
    if (a.event != b.event || a.photon != b.photon) {
      (std::tie(a.event, a.photon) < std::tie(b.event, b.photon) ? j : k)++;
      continue;
    }
    if (a.channel == b.channel) {
      ++same_hit;
      double dx = 0;
      for (int c = 0; c < 3; ++c)
        dx = std::max(dx, std::fabs(double(a.position[c]) - b.position[c]));
      const double dt = std::fabs(double(a.time) - b.time);
      close += dx < 0.5 && dt < 1e-3;
      worst_dx = std::max(worst_dx, dx);
      worst_dt = std::max(worst_dt, dt);
    }
    ++j, ++k;
  }
  const double n = double(batch.size());
  RecordProperty("same_history", std::to_string(same_history));
  RecordProperty("bit_identical", std::to_string(bit_identical));
  std::printf(
      "instanced vs flattened: %zu photons, %zu same final history, %zu bit-identical "
      "final position and time; hits %zu vs %zu, %zu on the same channel, %zu of them within "
      "0.5 mm and 1 ps; worst |dx| %.3g mm, |dt| %.3g ns\n",
      batch.size(), same_history, bit_identical, ri.hits.size(), rf.hits.size(), same_hit, close,
      worst_dx, worst_dt);
  ASSERT_GT(ri.hits.size(), 2000u);
  // Float rounding differs (Embree intersects an instance in its own frame,
  // and its normals are rotated rather than computed from placed corners),
  // so a photon can take another branch only where a random draw falls
  // within rounding of a probability edge or a ray grazes an edge: rare.
  EXPECT_GE(same_history, 0.999 * n);
  EXPECT_GE(same_hit, 0.999 * std::max(ri.hits.size(), rf.hits.size()));
  // Nearly every hit is at the same place and time to float rounding. The
  // flattened facets' normals come from corners rounded at ~2 m from the
  // origin (1e-4 mm on a 20 mm facet: ~1e-5 rad; the instanced ones are
  // computed in the prototype's frame), so a photon reflected across the
  // 4 m detector can land some 0.1 mm away.
  EXPECT_GE(close, 0.999 * same_hit);
  // The diagnostics agree to within those rare photons.
  const auto& di = ri.diagnostics;
  const auto& df = rf.diagnostics;
  EXPECT_EQ(di.photons, df.photons);
  EXPECT_NEAR(double(di.surface_detect), double(df.surface_detect), 0.001 * n);
  EXPECT_NEAR(double(di.steps), double(df.steps), 0.002 * double(df.steps));
  EXPECT_EQ(di.nan_abort, 0u);
  EXPECT_EQ(df.nan_abort, 0u);
}

TEST(Instancing, DetectorSummaryCountsPrototypesAndInstances) {
  auto d = Detector::default_detector();
  const std::string s = d.summary();
  EXPECT_NE(s.find("instances  400"), std::string::npos) << s;
  EXPECT_NE(s.find("prototypes 1"), std::string::npos) << s;
  EXPECT_NE(s.find("if flattened"), std::string::npos) << s;
  EXPECT_NE(s.find(std::to_string(d.geometry().triangle_count())), std::string::npos) << s;
}

}  // namespace
}  // namespace acheron::optics
