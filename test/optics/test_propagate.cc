// The stepping loop (photon-physics.md §5, §11 item 9 and Chroma's
// test_propagation.py::testAbort): geometry, bookkeeping, robustness and
// determinism.
#include "acheron/optics/Propagate.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "OpticsTestSupport.hh"

namespace acheron::optics {
namespace {

using testing::constant_material;
using testing::expect_binomial;

struct NoGeometry {
  bool intersect(Vec3, Vec3, std::int32_t, RayHit&) const { return false; }
};

// Attenuation lengths of 1e12 mm make bulk interactions impossible in
// practice (1e-9 per metre), so geometry tests see only the boundaries.
OpticsTables vacuum_and_glass() {
  OpticsInput in;
  in.materials.push_back(constant_material("vacuum", 1.0, 1e12, 1e12));
  in.materials.push_back(constant_material("glass", 1.5, 1e12, 1e12));
  SurfaceInput detector;
  detector.name = "detector";
  detector.detect = Property::constant(1);
  in.surfaces.push_back(detector);
  SurfaceInput mirror;
  mirror.name = "mirror";
  mirror.reflect_specular = Property::constant(1);
  in.surfaces.push_back(mirror);
  return OpticsTables(in);
}

// From the centre of a detecting sphere every photon hits at r = R with
// t = R n/c (float rounding: 1e-4 R in position, relative 1e-5 in time).
TEST(Propagate, DetectingSphereFromItsCentre) {
  const OpticsTables tables = vacuum_and_glass();
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, 500, 1, 0, 0);
  const ParamsView params = scene.view(tables, 71);
  Random directions(3, 0, 0);
  Diagnostics diag;
  for (std::uint32_t i = 0; i < 10000; ++i) {
    const Vec3 d = directions.uniform_sphere();
    Photon p = testing::make_photon({0, 0, 0}, d, directions.perpendicular(d), 420, i);
    const PropagateResult r = propagate(p, params, scene.tracer, diag);
    ASSERT_EQ(r.outcome, Outcome::surface_detect);
    ASSERT_EQ(r.steps, 1u);
    ASSERT_EQ(p.history, history::surface_detect);
    ASSERT_EQ(p.last_hit_triangle, 0);
    ASSERT_NEAR(norm(p.position), 500, 0.05);
    ASSERT_NEAR(p.time, 500 * 1.5 / kSpeedOfLight, 1e-5 * p.time);
  }
  EXPECT_EQ(diag.photons, 10000u);
  EXPECT_EQ(diag.surface_detect, 10000u);
  EXPECT_EQ(diag.steps, 10000u);
}

// Box faces: a photon along each axis from the centre ends on the right face
// (its triangle id and position).
TEST(Propagate, BoxFaces) {
  const OpticsTables tables = vacuum_and_glass();
  testing::Scene scene;
  const std::int32_t first = scene.add_box({-10, -20, -30}, {10, 20, 30}, 1, 0, 0);
  const ParamsView params = scene.view(tables, 72);
  const Vec3 axes[6] = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0}, {0, 1, 0}, {0, 0, -1}, {0, 0, 1}};
  const float extent[3] = {10, 20, 30};
  for (int face = 0; face < 6; ++face) {
    Photon p = testing::make_photon({0, 0, 0}, axes[face], {0, 0, 0}, 420, face);
    propagate(p, params, scene.tracer);
    EXPECT_EQ(p.history, history::surface_detect);
    EXPECT_EQ(p.last_hit_triangle, first + face);
    const float expected = extent[face / 2] * (face % 2 ? 1.0f : -1.0f);
    const float got = face / 2 == 0 ? p.position.x : face / 2 == 1 ? p.position.y : p.position.z;
    EXPECT_FLOAT_EQ(got, expected);
  }
}

TEST(Propagate, NoHitEndsWithNoHitAndNoTriangle) {
  const OpticsTables tables = vacuum_and_glass();
  const ParamsView params = tables.params_view();
  Photon p = testing::make_photon({1, 2, 3}, {0, 0, 2}, {1, 0, 0}, 420, 0);
  p.last_hit_triangle = 5;
  p.history = history::cherenkov;
  const PropagateResult r = propagate(p, params, NoGeometry{});
  EXPECT_EQ(r.outcome, Outcome::no_hit);
  EXPECT_EQ(r.steps, 1u);
  EXPECT_EQ(p.history, history::no_hit | history::cherenkov);  // creator bits carried through
  EXPECT_EQ(p.last_hit_triangle, -1);
  EXPECT_EQ(p.direction.z, 1.0f);  // normalized on entry
}

// Non-finite position or direction, or a zero direction: NO_HIT | NAN_ABORT
// before any ray is cast.
TEST(Propagate, NonFiniteInputAborts) {
  const OpticsTables tables = vacuum_and_glass();
  const ParamsView params = tables.params_view();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const Photon bad[] = {
      testing::make_photon({nan, 0, 0}, {0, 0, 1}, {1, 0, 0}, 420, 0),
      testing::make_photon({0, inf, 0}, {0, 0, 1}, {1, 0, 0}, 420, 1),
      testing::make_photon({0, 0, 0}, {0, nan, 1}, {1, 0, 0}, 420, 2),
      testing::make_photon({0, 0, 0}, {0, 0, 0}, {1, 0, 0}, 420, 3),
      testing::make_photon({0, 0, 0}, {inf, 0, 0}, {1, 0, 0}, 420, 4),
  };
  for (Photon p : bad) {
    Diagnostics diag;
    const PropagateResult r = propagate(p, params, NoGeometry{}, diag);
    EXPECT_EQ(r.outcome, Outcome::nan_abort);
    EXPECT_EQ(r.steps, 0u);
    EXPECT_EQ(p.history, history::no_hit | history::nan_abort);
    EXPECT_EQ(diag.nan_abort, 1u);
  }
  // Huge but finite direction components normalize without overflow.
  Photon big = testing::make_photon({0, 0, 0}, {0, 0, 1e30f}, {1, 0, 0}, 420, 5);
  EXPECT_EQ(propagate(big, params, NoGeometry{}).outcome, Outcome::no_hit);
  EXPECT_EQ(big.direction.z, 1.0f);
}

// Terminal photons are left untouched, bit for bit.
TEST(Propagate, TerminalPhotonsAreUntouched) {
  const OpticsTables tables = vacuum_and_glass();
  const ParamsView params = tables.params_view();
  for (const std::uint32_t bit : {history::no_hit, history::bulk_absorb, history::surface_detect,
                                  history::surface_absorb, history::nan_abort}) {
    Photon p = testing::make_photon({1, 2, 3}, {0, 0, 3}, {0, 0, 0}, 10, 0);
    p.history = bit | history::reflect_diffuse;
    const Photon before = p;
    Diagnostics diag;
    const PropagateResult r = propagate(p, params, NoGeometry{}, diag);
    EXPECT_EQ(r.outcome, Outcome::already_terminal);
    EXPECT_EQ(std::memcmp(&p, &before, sizeof(Photon)), 0);
    EXPECT_EQ(diag.already_terminal, 1u);
  }
}

// A zero, non-finite or parallel polarization is replaced by a random unit
// vector perpendicular to the direction; wavelengths off the grid are counted.
TEST(Propagate, InvalidPolarizationAndClampedWavelength) {
  const OpticsTables tables = vacuum_and_glass();
  const ParamsView params = tables.params_view();
  const Vec3 polarizations[] = {{0, 0, 0}, {0, 0, 5}, {std::nanf(""), 0, 0}};
  for (const Vec3 pol : polarizations) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, pol, 1200, 0);
    Diagnostics diag;
    propagate(p, params, NoGeometry{}, diag);
    EXPECT_NEAR(norm(p.polarization), 1.0f, 1e-6f);
    EXPECT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-6f);
    EXPECT_EQ(diag.wavelength_clamped, 1u);
  }
}

// A photon between two parallel mirrors never stops: after max_steps it is
// alive, its history holds no terminal bit, and it is counted as a survivor.
TEST(Propagate, MaxStepsSurvivor) {
  const OpticsTables tables = vacuum_and_glass();
  testing::Scene scene;
  scene.add_plane({0, 0, 10}, {0, 0, 1}, 0, 0, 1);
  scene.add_plane({0, 0, -10}, {0, 0, -1}, 0, 0, 1);
  ParamsView params = scene.view(tables, 73);
  params.max_steps = 37;
  Photon p = testing::make_photon({0, 0, 0}, {0.1f, 0, 1}, {0, 1, 0}, 420, 0);
  Diagnostics diag;
  const PropagateResult r = propagate(p, params, scene.tracer, diag);
  EXPECT_EQ(r.outcome, Outcome::max_steps);
  EXPECT_EQ(r.steps, 37u);
  EXPECT_EQ(p.history, history::reflect_specular);
  EXPECT_EQ(diag.max_steps, 1u);
  EXPECT_EQ(diag.steps, 37u);
}

// Chroma's testAbort: axis-aligned photons from the centre of a vacuum box
// (and towards its edges and corners) leave no NaN after one step and no
// NAN_ABORT after ten, also for a glass box (Fresnel at exact normal
// incidence) and a mirror box (specular reflection at normal incidence,
// deviation 2).
TEST(Propagate, AbortTestAtNormalIncidenceEdgesAndVertices) {
  const OpticsTables tables = vacuum_and_glass();
  std::vector<Vec3> directions = {{1, 0, 0},  {-1, 0, 0}, {0, 1, 0},
                                  {0, -1, 0}, {0, 0, 1},  {0, 0, -1}};
  for (int sx = -1; sx <= 1; sx += 2) {
    for (int sy = -1; sy <= 1; sy += 2) {
      directions.push_back(normalize(Vec3{float(sx), float(sy), 0}));     // edges
      directions.push_back(normalize(Vec3{float(sx), float(sy), 1.0f}));  // corners
    }
  }
  struct Box {
    std::uint32_t inner;
    std::int32_t surface;
  };
  for (const Box box : {Box{0, -1}, Box{1, -1}, Box{0, 1}}) {
    testing::Scene scene;
    scene.add_box({-500, -500, -500}, {500, 500, 500}, box.inner, 0, box.surface);
    ParamsView params = scene.view(tables, 74);
    for (std::uint32_t i = 0; i < 200; ++i) {
      const Vec3 d = directions[i % directions.size()];
      const Vec3 pol = normalize(cross(d, std::fabs(d.x) < 0.9f ? Vec3{1, 0, 0} : Vec3{0, 1, 0}));
      Photon one = testing::make_photon({0, 0, 0}, d, pol, 400, i);
      params.max_steps = 1;
      propagate(one, params, scene.tracer);
      EXPECT_TRUE(isfinite(one.position) && isfinite(one.direction) && isfinite(one.polarization));
      Photon ten = testing::make_photon({0, 0, 0}, d, pol, 400, i);
      params.max_steps = 10;
      propagate(ten, params, scene.tracer);
      EXPECT_FALSE(ten.history & history::nan_abort) << "box " << box.inner << " dir " << i;
    }
  }
}

// Chroma compatibility restores its NaN at a mirror hit at exact normal
// incidence: NAN_ABORT on the next step.
TEST(Propagate, ChromaCompatMirrorAtNormalIncidence) {
  const OpticsTables tables = vacuum_and_glass();
  testing::Scene scene;
  scene.add_plane({0, 0, 10}, {0, 0, 1}, 0, 0, 1);
  ParamsView params = scene.view(tables, 75);
  params.chroma_compat = 1;
  Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 420, 0);
  EXPECT_EQ(propagate(p, params, scene.tracer).outcome, Outcome::nan_abort);
  EXPECT_EQ(p.history, history::reflect_specular | history::no_hit | history::nan_abort);
  params.chroma_compat = 0;
  Photon q = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 420, 0);
  EXPECT_EQ(propagate(q, params, scene.tracer).outcome, Outcome::no_hit);
  EXPECT_EQ(q.direction.z, -1.0f);
}

// Normal incidence from vacuum onto a glass half-space through the loop:
// R = ((1 - 1.5)/(1 + 1.5))^2 = 0.04 (5 binomial sigma over 1e5 photons),
// never NAN_ABORT; with chroma_compat every photon transmits.
TEST(Propagate, NormalIncidenceFresnelThroughTheLoop) {
  const OpticsTables tables = vacuum_and_glass();
  testing::Scene scene;
  scene.add_plane({0, 0, 0}, {0, 0, -1}, 1, 0);  // glass above z = 0 (inner), vacuum below
  ParamsView params = scene.view(tables, 76);
  for (const std::uint32_t compat : {0u, 1u}) {
    params.chroma_compat = compat;
    const int n = 100000;
    int reflected = 0;
    Diagnostics diag;
    Random pol(8, 0, 0);
    for (int i = 0; i < n; ++i) {
      Photon p = testing::make_photon({0, 0, -5}, {0, 0, 1}, pol.perpendicular({0, 0, 1}), 420, i);
      propagate(p, params, scene.tracer, diag);
      if (p.direction.z < 0) ++reflected;
    }
    EXPECT_EQ(diag.nan_abort, 0u);
    EXPECT_EQ(diag.no_hit, static_cast<std::uint64_t>(n));
    expect_binomial(reflected, n, compat ? 0.0 : 0.04, compat ? "compat" : "cos form");
  }
}

// A scene with every process: a scattering, absorbing water box with
// partially reflecting walls around a sphere carrying a DEFAULT surface.
struct BusyScene {
  OpticsTables tables;
  testing::Scene scene;
  ParamsView params;

  BusyScene() : tables(make()) {
    scene.add_box({-200, -200, -200}, {200, 200, 200}, 1, 0, 1);
    scene.add_sphere({30, 0, 0}, 60, 2, 1, 0);
    params = scene.view(tables, 77);
    params.max_steps = 12;  // low enough that some photons survive it
  }
  static OpticsInput make() {
    OpticsInput in;
    in.materials.push_back(MaterialInput::vacuum());
    in.materials.push_back(constant_material("water", 1.33, 400, 150));
    in.materials.push_back(constant_material("glass", 1.5, 1000, 1e6));
    SurfaceInput pmt;
    pmt.name = "pmt";
    pmt.detect = Property::constant(0.3);
    pmt.absorb = Property::constant(0.2);
    pmt.reflect_diffuse = Property::constant(0.2);
    pmt.reflect_specular = Property::constant(0.1);
    in.surfaces.push_back(pmt);
    SurfaceInput wall;
    wall.name = "wall";
    wall.reflect_diffuse = Property::constant(0.5);
    wall.reflect_specular = Property::constant(0.3);
    wall.absorb = Property::constant(0.1);
    in.surfaces.push_back(wall);
    return in;
  }
  std::vector<Photon> photons(int n) const {
    std::vector<Photon> out;
    Random rng(9, 0, 0);
    for (int i = 0; i < n; ++i) {
      const Vec3 d = rng.uniform_sphere();
      out.push_back(testing::make_photon({-100, 50, 0}, d, rng.perpendicular(d),
                                         300 + 400 * rng.uniform(), i % 1000, i / 1000));
    }
    return out;
  }
};

// Photon conservation: every photon ends in exactly one terminal state
// (matching its history bits) or survives max_steps with no terminal bit,
// the diagnostics add up, and no photon aborts.
TEST(Propagate, EveryPhotonEndsOnce) {
  BusyScene busy;
  auto photons = busy.photons(20000);
  Diagnostics diag;
  std::uint64_t steps = 0;
  for (Photon& p : photons) {
    const PropagateResult r = propagate(p, busy.params, busy.scene.tracer, diag);
    steps += r.steps;
    ASSERT_LE(r.steps, busy.params.max_steps);
    const std::uint32_t terminal = p.history & history::terminal;
    switch (r.outcome) {
      case Outcome::no_hit:
        ASSERT_EQ(terminal, history::no_hit);
        break;
      case Outcome::bulk_absorb:
        ASSERT_EQ(terminal, history::bulk_absorb);
        break;
      case Outcome::surface_detect:
        ASSERT_EQ(terminal, history::surface_detect);
        break;
      case Outcome::surface_absorb:
        ASSERT_EQ(terminal, history::surface_absorb);
        break;
      case Outcome::max_steps:
        ASSERT_EQ(terminal, 0u);
        ASSERT_EQ(r.steps, busy.params.max_steps);
        break;
      default:
        FAIL() << "unexpected outcome " << static_cast<int>(r.outcome);
    }
  }
  EXPECT_EQ(diag.photons, photons.size());
  EXPECT_EQ(diag.no_hit + diag.bulk_absorb + diag.surface_detect + diag.surface_absorb +
                diag.nan_abort + diag.max_steps + diag.already_terminal,
            diag.photons);
  EXPECT_EQ(diag.steps, steps);
  EXPECT_EQ(diag.nan_abort, 0u);
  EXPECT_GT(diag.surface_detect, 0u);
  EXPECT_GT(diag.bulk_absorb, 0u);
  EXPECT_GT(diag.surface_absorb, 0u);
  EXPECT_GT(diag.max_steps, 0u);
  Diagnostics sum;
  sum += diag;
  sum += diag;
  EXPECT_EQ(sum.photons, 2 * diag.photons);
}

// Determinism: the same seed gives bit-identical photons whatever the order
// they are processed in (as with any thread or batch split); another seed or
// another photon index gives a different history.
TEST(Propagate, Determinism) {
  BusyScene busy;
  const auto input = busy.photons(2000);
  auto run = [&](std::vector<Photon> photons, bool reversed, std::uint64_t seed) {
    ParamsView params = busy.params;
    params.seed = seed;
    if (reversed) {
      for (auto it = photons.rbegin(); it != photons.rend(); ++it) {
        propagate(*it, params, busy.scene.tracer);
      }
    } else {
      for (Photon& p : photons) propagate(p, params, busy.scene.tracer);
    }
    return photons;
  };
  const auto a = run(input, false, 77);
  const auto b = run(input, true, 77);
  ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(Photon)), 0);
  const auto c = run(input, false, 78);
  EXPECT_NE(std::memcmp(a.data(), c.data(), a.size() * sizeof(Photon)), 0);

  // Identical photons that differ only in index take different paths.
  std::vector<Photon> twins(2, input[0]);
  twins[1].index = input[0].index + 1;
  const auto t = run(twins, false, 77);
  EXPECT_FALSE(t[0].position.x == t[1].position.x && t[0].position.y == t[1].position.y &&
               t[0].time == t[1].time);
}

}  // namespace
}  // namespace acheron::optics
