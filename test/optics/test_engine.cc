// The engine end to end on Embree geometry: hits, timing, channel mapping,
// determinism, and the default detector's hit fraction against an
// independent calculation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>

#include "acheron/core/Error.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/optics/PmtModel.hh"
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

// ---- PMTs built from a profile ------------------------------------------

// Fresnel power transmission (s and p) from index n1 to n2 at incidence
// cosine c1; zero under total internal reflection. Written out here from
// the textbook formulas, independently of the engine's Fresnel.hh.
struct Transmission {
  double s, p;
};
Transmission fresnel_t(double n1, double n2, double c1) {
  const double s1 = std::sqrt(std::max(0.0, 1 - c1 * c1));
  const double s2 = n1 / n2 * s1;
  if (s2 >= 1) return {0, 0};
  const double c2 = std::sqrt(1 - s2 * s2);
  const double rs = (n1 * c1 - n2 * c2) / (n1 * c1 + n2 * c2);
  const double rp = (n2 * c1 - n1 * c2) / (n2 * c1 + n1 * c2);
  return {1 - rs * rs, 1 - rp * rp};
}

// The R7081 bulb as the default detector writes it (3 decimals).
std::vector<ProfilePoint> default_profile(double arc_step) {
  auto p = r7081_profile(arc_step);
  for (auto& q : p) {
    q.r = static_cast<float>(std::round(q.r * 1000.0) / 1000.0);
    q.z = static_cast<float>(std::round(q.z * 1000.0) / 1000.0);
  }
  return p;
}

std::string toml_profile(const std::vector<ProfilePoint>& p) {
  std::string s = "[";
  for (std::size_t i = 0; i < p.size(); ++i) {
    s += (i ? ", [" : "[") + std::to_string(p[i].r) + ", " + std::to_string(p[i].z) + "]";
  }
  return s + "]";
}

// One R7081-like PMT at the origin (apex +z) in a water ball with a black
// wall; constant indices so the expected numbers are plain.
std::string single_pmt_toml() {
  return R"(
[[material]]
name = "water"
refractive_index = 1.33
absorption_length = 1e12
scattering_length = 1e12
[[material]]
name = "glass"
refractive_index = 1.49
absorption_length = 1e12
scattering_length = 1e12
[[material]]
name = "vacuum"
refractive_index = 1.0
absorption_length = 1e12
scattering_length = 1e12
[[surface]]
name = "cathode"
model = "complex"
eta = 2.0
k = 0
thickness = 0
detect = 0.25
[[surface]]
name = "black"
absorb = 1.0
[[pmt_model]]
name = "r7081"
profile = )" +
         toml_profile(default_profile(6.0)) +
         R"(
glass_thickness = 3
photocathode_cut = 40
segments = 32
glass = "glass"
vacuum = "vacuum"
medium = "water"
photocathode = "cathode"
back = "black"
[[solid]]
name = "world"
shape = "sphere"
radius = 1000
inner = "water"
outer = "vacuum"
surface = "black"
[[solid]]
name = "pmt"
shape = "pmt_model"
model = "r7081"
pmt = true
)";
}

// Photons aimed along the inward normal of outer-glass facets whose centroid
// lies in a z range, starting 20 mm outside them.
PhotonBatch aimed_at_facets(float z_lo, float z_hi, std::uint32_t n) {
  PmtModelShape shape;
  shape.profile = default_profile(6.0);
  shape.photocathode_cut = 40;
  const Mesh m = make_pmt_model(shape, "r7081");
  std::vector<std::pair<Vec3, Vec3>> targets;  // centroid, outward normal
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m.part[i] != pmt_part::envelope) continue;
    const auto& t = m.triangles[i];
    const Vec3 a = m.vertices[t[0]], b = m.vertices[t[1]], c = m.vertices[t[2]];
    const Vec3 centroid = (a + b + c) / 3.f;
    if (centroid.z < z_lo || centroid.z > z_hi) continue;
    targets.push_back({centroid, normalize(cross(b - a, c - b))});
  }
  PhotonBatch batch;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto& [c, nrm] = targets[i % targets.size()];
    Photon p;
    p.position = c + nrm * 20.f;
    p.direction = -nrm;
    p.polarization = normalize(cross(p.direction, Vec3{0.3f, 0.5f, 0.8f}));
    p.wavelength = 400;
    p.index = i;
    batch.push_back(p);
  }
  return batch;
}

// Normal incidence on the photocathode: the photon crosses water -> glass
// (transmission T1), meets the cathode on glass -> vacuum, enters it with
// T2 and is detected with the QE; the part reflected there (R2) returns to
// the glass | water face, which reflects R1 of it back to the cathode, and
// so on: P = T1 T2 QE / (1 - R1 R2). Photons on the back never count.
TEST(PmtModel, NormalIncidenceOnTheCathodeIsDetectedWithFresnelTimesQe) {
  auto det = std::make_shared<const Detector>(Detector::parse(single_pmt_toml(), "pmt.toml"));
  ASSERT_EQ(det->geometry().channels().size(), 1u);
  ASSERT_EQ(det->geometry().instances().size(), 1u);
  EXPECT_TRUE(det->check().empty());
  Engine engine(det, {.threads = 2});
  const std::uint32_t n = 400000;
  const auto res = engine.simulate(aimed_at_facets(50, 200, n), 77);
  const double t1 = fresnel_t(1.33, 1.49, 1).s, t2 = fresnel_t(1.49, 1.0, 1).s;
  const double expected = t1 * t2 * 0.25 / (1 - (1 - t1) * (1 - t2));
  const double measured = double(res.hits.size()) / n;
  // 5 binomial sigma; facets are flat and parallel inside and out, so the
  // incidence is normal at both faces (to the inner facet's tilt when the
  // ray lands on a neighbour, a few degrees: < 1e-4 in T).
  const double sigma = std::sqrt(expected * (1 - expected) / n);
  EXPECT_NEAR(measured, expected, 5 * sigma) << "T1 " << t1 << " T2 " << t2;
  // Without the glass | vacuum Fresnel factor the rate would be 10 sigma higher.
  EXPECT_GT(t1 * 0.25 - expected, 10 * sigma);
  for (const auto& h : res.hits) {
    ASSERT_EQ(h.channel, 0u);
    ASSERT_GT(h.position[2], 40.f);  // on the photocathode, above the cut
  }
  EXPECT_EQ(res.diagnostics.nan_abort, 0u);

  // The back: photons enter the glass below the cut and are absorbed by the
  // inner back surface; none is ever detected.
  const auto back = engine.simulate(aimed_at_facets(-1000, 30, 100000), 78);
  EXPECT_EQ(back.hits.size(), 0u);
  EXPECT_EQ(back.diagnostics.surface_detect, 0u);
  EXPECT_GT(back.diagnostics.surface_absorb, 99000u);  // the back or the black world
  EXPECT_EQ(back.diagnostics.nan_abort, 0u);
}

// A 2-D ray cast in the (r, z) half-plane against a polyline: the nearest
// crossing at t > 1e-6 and the outward normal of the segment crossed.
struct Cast2 {
  double t = -1;
  double nr = 0, nz = 0;
  double z = 0;
};
Cast2 cast2(const std::vector<ProfilePoint>& poly, double or_, double oz, double dr, double dz) {
  Cast2 best;
  for (std::size_t i = 0; i + 1 < poly.size(); ++i) {
    const double ar = poly[i].r, az = poly[i].z, br = poly[i + 1].r, bz = poly[i + 1].z;
    const double er = br - ar, ez = bz - az;
    const double den = dr * ez - dz * er;
    if (std::fabs(den) < 1e-15) continue;
    const double t = ((ar - or_) * ez - (az - oz) * er) / den;
    const double u = ((ar - or_) * dz - (az - oz) * dr) / den;
    if (t > 1e-6 && u >= 0 && u <= 1 && (best.t < 0 || t < best.t)) {
      const double len = std::hypot(er, ez);
      best = {t, -ez / len, er / len, oz + t * dz};
    }
  }
  return best;
}

// Default detector: photons from an isotropic 400 nm source at the centre
// that reach a photocathode without scattering or reflecting (history
// SURFACE_DETECT alone) are, per PMT, the integral over the directions that
// meet its bulb of
//   water survival x T(water -> glass) x glass survival x T(glass -> vacuum) x QE
// for rays whose refracted path meets the inner glass above the cut. Every
// ray from the centre lies in a meridional plane of the PMT it meets (the
// PMT faces the centre), so the integral is 2-D: the rays are cast here
// against the bulb's outer and inner profiles, with the s and p
// transmissions of both faces multiplied per polarization (the plane of
// incidence is the same at both) and averaged over the source's random
// polarization. Photons that bounce off the partly reflective liner or a PMT
// add further hits, all flagged REFLECT_*; the first-order ones do not
// depend on the wall (checked against a black wall, same seed).
TEST(Engine, DefaultDetectorHitFractionIncludesFresnelAtTheGlass) {
  DefaultDetectorOptions opt;
  auto det = std::make_shared<const Detector>(Detector::default_detector(opt));
  DefaultDetectorOptions black = opt;
  black.reflective_wall = false;
  auto det_black = std::make_shared<const Detector>(Detector::default_detector(black));
  Engine engine(det, {.threads = 2});
  Engine engine_black(det_black, {.threads = 2});
  const std::uint32_t n = 1000000, n_black = 200000;
  PhotonBatch batch, first;
  append_photons(batch, IsotropicSource{{0, 0, 0}, 400, 400}, n, 0, 2024);
  append_photons(first, IsotropicSource{{0, 0, 0}, 400, 400}, n_black, 0, 2024);
  const auto res = engine.simulate(batch, 2024);
  const auto res_black = engine_black.simulate(first, 2024);
  auto first_order = [](const SimulationResult& r, std::uint32_t below) {
    std::vector<std::uint32_t> ids;
    std::size_t all = 0;
    for (const auto& h : r.hits) {
      if (h.photon >= below) continue;
      ++all;
      if ((h.flags & ~history::creator) == history::surface_detect) ids.push_back(h.photon);
    }
    return std::make_pair(ids, all);
  };
  const auto [direct, all] = first_order(res, n);
  const auto [direct_sub, all_sub] = first_order(res, n_black);
  const auto [direct_black, all_black] = first_order(res_black, n_black);
  const double measured = double(direct.size()) / n;
  EXPECT_EQ(direct_sub, direct_black);        // first-order hits never touch the wall
  EXPECT_GT(all_sub, all_black);              // the liner sends more photons back
  EXPECT_GT(all_black, direct_black.size());  // reflections off the PMTs

  // Inputs: the detector's tables at 400 nm (a grid point) and its geometry.
  const ParamsView v = det->params(0);
  const GridPoint g = wavelength_grid_point(400);
  auto table = [&](const char* material, int which) {
    const auto& m = v.materials[*det->tables().find_material(material)];
    const float* t[] = {m.refractive_index, m.absorption_length, m.scattering_length};
    return double(lookup(t[which], g));
  };
  const double n_water = table("water", 0), n_glass = table("glass", 0);
  const double water_att = 1 / (1 / table("water", 1) + 1 / table("water", 2));
  const double glass_att = 1 / (1 / table("glass", 1) + 1 / table("glass", 2));
  const double qe = 0.25;  // the bialkali table at 400 nm (a grid point)
  EXPECT_NEAR(n_glass, 1.49, 1e-4);
  PmtModelShape shape;
  shape.profile = default_profile(opt.pmt_arc_step);
  shape.glass_thickness = 3;
  shape.photocathode_cut = 40;
  const PmtProfiles prof = pmt_profiles(shape, "r7081");
  const std::vector<ProfilePoint> cathode(
      prof.inner.begin(), prof.inner.begin() + long(prof.photocathode_segments) + 1);
  const double big_r = opt.pmt_radius * std::sqrt(opt.pmts / (4 * opt.coverage));
  ASSERT_NEAR(norm(det->geometry().channels()[0].position), big_r, 1e-2);

  // Per PMT: (1/2) integral of F(beta) sin(beta) d(beta), beta from the axis.
  const int steps = 40000;
  const double beta_max = std::atan2(130.0, big_r - 150.0);  // beyond the bulb's silhouette
  double per_pmt = 0, no_fresnel = 0;
  for (int i = 0; i < steps; ++i) {
    const double beta = beta_max * (i + 0.5) / steps;
    const double dr = std::sin(beta), dz = -std::cos(beta);  // from (0, R) toward the PMT
    const Cast2 c1 = cast2(prof.outer, 0, big_r, dr, dz);
    if (c1.t < 0) continue;
    const double cos1 = -(dr * c1.nr + dz * c1.nz);
    const Transmission t1 = fresnel_t(n_water, n_glass, cos1);
    // Refract into the glass (vector Snell, normal pointing back at the water).
    const double eta = n_water / n_glass;
    const double k = 1 - eta * eta * (1 - cos1 * cos1);
    const double cos_t = std::sqrt(k);
    const double gr = eta * dr + (eta * cos1 - cos_t) * c1.nr;
    const double gz = eta * dz + (eta * cos1 - cos_t) * c1.nz;
    const double pr = c1.t * dr, pz = big_r + c1.t * dz;
    const Cast2 c2 = cast2(prof.inner, pr, pz, gr, gz);
    const Cast2 back_out = cast2(prof.outer, pr, pz, gr, gz);
    if (c2.t < 0 || (back_out.t > 0 && back_out.t < c2.t)) continue;  // grazes the rim
    if (c2.z < shape.photocathode_cut) continue;                      // the back absorbs
    const double cos2 = -(gr * c2.nr + gz * c2.nz);
    const Transmission t2 = fresnel_t(n_glass, 1.0, cos2);
    const double f = 0.5 * (t1.s * t2.s + t1.p * t2.p) * qe * std::exp(-c1.t / water_att) *
                     std::exp(-c2.t / glass_att);
    per_pmt += f * std::sin(beta) * (beta_max / steps) / 2;
    no_fresnel += qe * std::exp(-c1.t / water_att) * std::exp(-c2.t / glass_att) * std::sin(beta) *
                  (beta_max / steps) / 2;
  }
  // Tessellation: the bulb's cross-sections are inscribed 32-gons, whose
  // area is (n / 2 pi) sin(2 pi / n) of the circles' (the cones are narrow).
  const int seg = opt.pmt_segments;
  const double polygon = seg / (2 * std::numbers::pi) * std::sin(2 * std::numbers::pi / seg);
  const double expected = opt.pmts * per_pmt * polygon;
  // Tolerance: 5 binomial sigma, plus 0.5 % for the facets' normals, which
  // tilt out of the meridional plane by up to pi/32 between vertex meridians
  // (a second-order change of the Fresnel factors, largest at the rim).
  const double sigma = std::sqrt(expected * (1 - expected) / n);
  EXPECT_NEAR(measured, expected, 5 * sigma + 0.005 * expected)
      << "per PMT " << per_pmt << " expected " << expected << " measured " << measured;
  // The same integral without the Fresnel factors is well outside.
  const double without = opt.pmts * no_fresnel * polygon;
  EXPECT_GT(without - expected, 1.5 * (5 * sigma + 0.005 * expected));
  std::printf(
      "first-order hit fraction %.5f, expected %.5f (+- %.5f; %.5f without Fresnel); "
      "all hits %.5f; first %u photons: all hits %.5f, with a black wall %.5f\n",
      measured, expected, 5 * sigma + 0.005 * expected, without, double(all) / n, n_black,
      double(all_sub) / n_black, double(all_black) / n_black);
}

}  // namespace
}  // namespace acheron::optics
