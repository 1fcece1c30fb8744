// The engine end to end on Embree geometry: hits, timing, channel mapping,
// determinism, and the default detector's hit fraction against an
// independent calculation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>

#include "acheron/core/Error.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/optics/Sources.hh"

namespace acheron::optics {
namespace {

const char* kDetectingSphere = R"(
[[material]]
name = "water"
refractive_index = 1.33
absorption_length = 1e12
scattering_length = 1e12
[[material]]
name = "outside"
refractive_index = 1.0
absorption_length = 1e6
scattering_length = 1e6
[[surface]]
name = "cathode"
detect = 1.0
[[solid]]
name = "sphere"
shape = "sphere"
radius = 1000
segments = 128
inner = "water"
outer = "outside"
surface = "cathode"
pmt = true
)";

TEST(Engine, IsotropicSourceInADetectingSphereHitsAtRadiusAndTimeOfFlight) {
  auto det = std::make_shared<const Detector>(Detector::parse(kDetectingSphere, "sphere.toml"));
  Engine engine(det, {.threads = 2});
  PhotonBatch batch;
  append_photons(batch, IsotropicSource{{0, 0, 0}, 400, 400, 5.0f}, 20000, 0, 7);
  auto res = engine.simulate(batch, 7);
  // Every photon is detected (no absorption or scattering at 1e12 mm).
  ASSERT_EQ(res.hits.size(), 20000u);
  EXPECT_EQ(res.diagnostics.surface_detect, 20000u);
  // Facets of the 128-segment sphere lie inside it by at most R (1 - cos(pi/64)).
  const double sagitta = 1000 * (1 - std::cos(std::numbers::pi / 64)) + 1e-2;
  for (const auto& h : res.hits) {
    const double r =
        std::sqrt(double(h.position[0]) * h.position[0] + double(h.position[1]) * h.position[1] +
                  double(h.position[2]) * h.position[2]);
    ASSERT_LE(r, 1000.01);
    ASSERT_GE(r, 1000 - sagitta);
    // Phase velocity c/n; float arithmetic over ~7 ns: 1e-5 relative.
    ASSERT_NEAR(h.time, 5.0 + r * 1.33 / kSpeedOfLight, 1e-4);
    ASSERT_EQ(h.channel, 0u);
    ASSERT_TRUE(h.flags & history::surface_detect);
  }
}

const char* kPmtBall = R"(
[[material]]
name = "water"
refractive_index = 1.33
absorption_length = 1e12
scattering_length = 1e12
[[material]]
name = "glass"
refractive_index = 1.5
absorption_length = 1e6
scattering_length = 1e6
[[surface]]
name = "cathode"
detect = 1.0
[[surface]]
name = "black"
absorb = 1.0
[[solid]]
name = "tank"
shape = "sphere"
radius = 2100
inner = "water"
outer = "glass"
surface = "black"
[[pmt_array]]
shape = "pmt"
aperture_radius = 120
sphere_radius = 160
inner = "glass"
outer = "water"
surfaces = ["cathode", "black"]
layout = "sphere"
count = 60
radius_of_array = 2000
)";

TEST(Engine, APhotonAimedAtPmtKHitsChannelK) {
  auto det = std::make_shared<const Detector>(Detector::parse(kPmtBall, "ball.toml"));
  Engine engine(det, {.threads = 2});
  PhotonBatch batch;
  const auto& channels = det->geometry().channels();
  for (std::uint32_t k = 0; k < channels.size(); ++k) {
    Photon p;
    p.direction = normalize(channels[k].position);
    p.polarization = normalize(cross(p.direction, Vec3{0.3f, 0.1f, 0.9f}));
    p.wavelength = 420;
    p.event = 0;
    p.index = k;
    batch.push_back(p);
  }
  auto res = engine.simulate(batch, 1);
  ASSERT_EQ(res.hits.size(), channels.size());
  for (std::uint32_t k = 0; k < channels.size(); ++k) {
    EXPECT_EQ(res.hits[k].channel, k);
    EXPECT_EQ(res.hits[k].photon, k);  // hits come back in input order
  }
}

TEST(Engine, ResultsDoNotDependOnThreadsOrBatchSplit) {
  auto det = std::make_shared<const Detector>(Detector::default_detector());
  PhotonBatch all;
  for (std::uint32_t ev = 0; ev < 4; ++ev) {
    append_photons(all, CherenkovTrack{{0, 0, -500}, {0, 0.2f, 1}, 800}, 5000, ev, 11);
  }
  Engine one(det, {.threads = 1, .chunk = 997});
  Engine two(det, {.threads = 2, .chunk = 64});
  auto a = one.simulate(all, 99);
  auto b = two.simulate(all, 99);
  ASSERT_GT(a.hits.size(), 100u);
  ASSERT_EQ(a.hits.size(), b.hits.size());
  EXPECT_EQ(std::memcmp(a.hits.data(), b.hits.data(), a.hits.size() * sizeof(HitRecord)), 0);
  // The same events split over two batches give the same hits.
  PhotonBatch first, second;
  for (std::size_t i = 0; i < all.size(); ++i)
    (all.event[i] < 2 ? first : second).push_back(all.get(i));
  auto c1 = two.simulate(first, 99);
  auto c2 = two.simulate(second, 99);
  c1.hits.insert(c1.hits.end(), c2.hits.begin(), c2.hits.end());
  ASSERT_EQ(c1.hits.size(), a.hits.size());
  EXPECT_EQ(std::memcmp(a.hits.data(), c1.hits.data(), a.hits.size() * sizeof(HitRecord)), 0);
  // A different seed gives different hits.
  auto d = one.simulate(all, 100);
  EXPECT_FALSE(d.hits.size() == a.hits.size() &&
               std::memcmp(a.hits.data(), d.hits.data(), a.hits.size() * sizeof(HitRecord)) == 0);
}

TEST(Engine, EveryPhotonEndsInExactlyOneState) {
  auto det = std::make_shared<const Detector>(Detector::default_detector());
  Engine engine(det, {.keep_final_states = true});
  PhotonBatch batch;
  append_photons(batch, IsotropicSource{{100, -200, 300}, 250, 700}, 20000, 3, 5);
  auto res = engine.simulate(batch, 5);
  const auto& dg = res.diagnostics;
  EXPECT_EQ(dg.photons, 20000u);
  EXPECT_EQ(dg.no_hit + dg.bulk_absorb + dg.surface_detect + dg.surface_absorb + dg.nan_abort +
                dg.max_steps + dg.already_terminal,
            20000u);
  EXPECT_EQ(dg.no_hit, 0u);  // the tank is closed
  EXPECT_EQ(dg.nan_abort, 0u);
  std::size_t terminal = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto h = res.final_states.history[i] & history::terminal;
    // exactly one terminal bit (or none at max_steps)
    if (h) {
      EXPECT_EQ(h & (h - 1), 0u) << "photon " << i << " history " << std::hex << h;
      ++terminal;
    }
  }
  EXPECT_EQ(terminal + dg.max_steps, 20000u);
  EXPECT_EQ(res.hits.size(), dg.surface_detect);  // every detection is on a PMT window
}

// A client's photon at |x| >= 2e18 mm used to abort the process (Embree's
// ray-validity assertion). Photons outside the world box end NO_HIT |
// NAN_ABORT without a ray cast; the others of the batch are simulated.
TEST(Engine, PhotonsOutsideTheWorldAreAbortedNotCast) {
  auto det = std::make_shared<const Detector>(Detector::parse(kDetectingSphere, "sphere.toml"));
  // The sphere's bounds are +-1000 mm; the world adds its 2000 mm extent.
  const auto [lo, hi] = det->geometry().world();
  EXPECT_FLOAT_EQ(lo.x, -3000.0f);
  EXPECT_FLOAT_EQ(hi.z, 3000.0f);
  Engine engine(det, {.threads = 2, .keep_final_states = true});
  PhotonBatch batch;
  const float far[] = {2e18f, -2e18f, 1e30f, 3.4e38f, 1e12f, 3100.0f};
  std::uint32_t index = 0;
  for (float x : far) {
    Photon p;
    p.position = {x, 0, 0};
    p.direction = {-1, 0, 0};
    p.polarization = {0, 1, 0};
    p.wavelength = 400;
    p.index = index++;
    batch.push_back(p);
  }
  Photon inside;  // outside the mesh, inside the world: simulated
  inside.position = {2900, 0, 0};
  inside.direction = {-1, 0, 0};
  inside.polarization = {0, 1, 0};
  inside.wavelength = 400;
  inside.index = index++;
  batch.push_back(inside);
  Photon centre = inside;
  centre.position = {0, 0, 0};
  centre.index = index++;
  batch.push_back(centre);
  auto res = engine.simulate(batch, 3);
  EXPECT_EQ(res.diagnostics.nan_abort, std::size(far));
  for (std::size_t i = 0; i < std::size(far); ++i) {
    EXPECT_EQ(res.final_states.history[i], history::no_hit | history::nan_abort) << far[i];
  }
  EXPECT_EQ(res.final_states.history[std::size(far)] & history::nan_abort, 0u);
  ASSERT_EQ(res.hits.size(), 2u);  // the last two reach the detecting sphere
  EXPECT_EQ(res.diagnostics.steps, 2u);
}

TEST(Engine, RejectsInconsistentBatches) {
  auto det = std::make_shared<const Detector>(Detector::parse(kDetectingSphere, "sphere.toml"));
  Engine engine(det, {.threads = 1});
  PhotonBatch batch;
  append_photons(batch, IsotropicSource{}, 10, 0, 1);
  batch.time.pop_back();
  EXPECT_THROW(engine.simulate(batch, 1), acheron::Failure);
}

// Default detector: the hit fraction of an isotropic 400 nm source at the
// centre equals (solid angle of the PMT windows / 4 pi) x QE(400 nm) x the
// water transmission, each computed here from first principles.
TEST(Engine, DefaultDetectorHitFractionMatchesCoverageTimesQeTimesTransmission) {
  DefaultDetectorOptions opt;
  auto det = std::make_shared<const Detector>(Detector::default_detector(opt));
  Engine engine(det, {.threads = 2});
  const std::uint32_t n = 200000;
  PhotonBatch batch;
  append_photons(batch, IsotropicSource{{0, 0, 0}, 400, 400}, n, 0, 2024);
  auto res = engine.simulate(batch, 2024);
  const double measured = double(res.hits.size()) / n;

  // Geometry: the dome of each PMT (aperture a, sphere radius 1.3 a, rim plane
  // at distance d from the centre, apex toward it). Its angular radius seen
  // from the centre is the largest angle of any point of the dome profile.
  const double a = opt.pmt_radius, rs = 1.3 * a;
  const double d = a * std::sqrt(opt.pmts / (4 * opt.coverage));
  const double zc = -std::sqrt(rs * rs - a * a);
  double alpha = 0;
  const double tmax = std::asin(a / rs);
  for (int i = 0; i <= 100000; ++i) {
    const double t = tmax * i / 100000;
    const double rho = rs * std::sin(t), z = zc + rs * std::cos(t);
    alpha = std::max(alpha, std::atan2(rho, d - z));
  }
  // A circle tessellated with n segments is an inscribed n-gon: its area is
  // (n / 2 pi) sin(2 pi / n) of the circle's (the cone is narrow, ~3 deg).
  const int seg = opt.pmt_segments;
  const double polygon = seg / (2 * std::numbers::pi) * std::sin(2 * std::numbers::pi / seg);
  const double coverage = opt.pmts * (1 - std::cos(alpha)) / 2 * polygon;
  const double qe = 0.25;  // bialkali table at 400 nm (a grid point)
  // Pure-water absorption at 400 nm: a = 0.00663 /m (Pope & Fry 1997), over
  // the distance to the dome (its apex is h nearer than the rim plane).
  const double h = rs + zc;
  const double transmission = std::exp(-(d - h) * 0.00663e-3);
  const double expected = coverage * qe * transmission;
  // Tolerance: 5 binomial sigma, plus 0.5 % for the ~1.8 % of photons that
  // Rayleigh-scatter once and then see a slightly different coverage.
  const double sigma = std::sqrt(expected * (1 - expected) / n);
  EXPECT_NEAR(measured, expected, 5 * sigma + 0.005 * expected)
      << "coverage " << coverage << " transmission " << transmission;
  EXPECT_NEAR(coverage, 0.30, 0.02);  // the design value, for orientation
}

}  // namespace
}  // namespace acheron::optics
