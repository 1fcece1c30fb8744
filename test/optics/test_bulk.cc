// Bulk processes through the stepping loop (photon-physics.md §6 and §11
// items 1, 2 and 7).
#include "acheron/optics/Bulk.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "OpticsTestSupport.hh"

namespace acheron::optics {
namespace {

using testing::constant_material;
using testing::expect_binomial;
using testing::expect_mean;
using testing::expect_shape;
using testing::Histogram;

SurfaceInput detector_surface() {
  SurfaceInput s;
  s.name = "detector";
  s.detect = Property::constant(1);
  return s;
}

// Survival to L = 100 mm with L_abs = 50 mm is exp(-L/L_abs) (5 binomial
// sigma over 1e5 photons); absorption points are exponential truncated at L
// (chi-square p > 1e-3); survivors arrive at t = L n / c (float rounding,
// relative 1e-5). L_sca = 1e9 mm makes scattering negligible (1e-7 per photon).
TEST(Attenuation, SurvivalAndAbsorptionPoints) {
  const double length = 100, l_abs = 50, n_medium = 1.4;
  OpticsInput in;
  in.materials.push_back(constant_material("medium", n_medium, l_abs, 1e9));
  in.surfaces.push_back(detector_surface());
  const OpticsTables tables(in);
  testing::Scene scene;
  scene.add_plane({0, 0, static_cast<float>(length)}, {0, 0, 1}, 0, 0, 0);
  const ParamsView params = scene.view(tables, 61);

  const int n = 100000;
  int detected = 0, absorbed = 0;
  Histogram depth(0, length, 50);
  Diagnostics diag;
  for (int i = 0; i < n; ++i) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 420, i);
    propagate(p, params, scene.tracer, diag);
    if (p.history == history::surface_detect) {
      ++detected;
      ASSERT_NEAR(p.position.z, length, 1e-4);
      ASSERT_NEAR(p.time, length * n_medium / kSpeedOfLight, 1e-5 * p.time);
      ASSERT_EQ(p.last_hit_triangle, 0);
    } else if (p.history == history::bulk_absorb) {
      ++absorbed;
      depth.fill(p.position.z);
      ASSERT_EQ(p.last_hit_triangle, -1);
      ASSERT_NEAR(p.time, p.position.z * n_medium / kSpeedOfLight, 1e-5 * p.time + 1e-9);
    }
  }
  expect_binomial(detected, n, std::exp(-length / l_abs), "survival");
  EXPECT_GE(detected + absorbed, n - 5);  // scattered photons: ~0.01 expected
  EXPECT_EQ(diag.surface_detect, static_cast<std::uint64_t>(detected));
  EXPECT_EQ(diag.bulk_absorb, static_cast<std::uint64_t>(absorbed));
  expect_shape(
      depth, [&](double z) { return 1 - std::exp(-z / l_abs); }, "absorption depth");
}

// With scattering, the first interaction is absorption with probability
// L_sca/(L_abs + L_sca) = 0.75 (5 binomial sigma), and the first interaction
// point is exponential in L_att = 1/(1/L_abs + 1/L_sca) = 75 mm (chi-square).
// max_steps = 1 stops the photon after its first interaction; the absorbing
// sphere is 1e5 mm away (reaching it first has probability e^-1333).
TEST(Attenuation, AbsorbedFirstFraction) {
  const double l_abs = 100, l_sca = 300, l_att = 75;
  OpticsInput in;
  in.materials.push_back(constant_material("medium", 1.33, l_abs, l_sca));
  SurfaceInput black;
  black.absorb = Property::constant(1);
  in.surfaces.push_back(black);
  const OpticsTables tables(in);
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, 1e5, 0, 0, 0);
  ParamsView params = scene.view(tables, 62);
  params.max_steps = 1;

  const int n = 100000;
  int absorbed = 0, scattered = 0;
  Histogram distance(0, 6 * l_att, 60);
  for (int i = 0; i < n; ++i) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 420, i);
    const PropagateResult r = propagate(p, params, scene.tracer);
    if (r.outcome == Outcome::bulk_absorb) ++absorbed;
    if (r.outcome == Outcome::max_steps && p.history == history::rayleigh_scatter) ++scattered;
    distance.fill(p.position.z);
  }
  expect_binomial(absorbed, n, l_sca / (l_abs + l_sca), "absorbed first");
  EXPECT_EQ(absorbed + scattered, n);
  expect_shape(
      distance, [&](double z) { return 1 - std::exp(-z / l_att); }, "first interaction point");
}

// Time of flight from the centre of a detecting sphere of radius R: with the
// phase velocity t = R n(lambda)/c, with the group option t = R n_g/c. The
// medium's n = 1.6 - lambda/5000 is linear, so n_g = 1.6 exactly while
// n(400 nm) = 1.52. Tolerance: float rounding, relative 1e-5.
TEST(TimeOfFlight, PhaseAndGroupVelocity) {
  const double radius = 500;
  OpticsInput in;
  MaterialInput m = constant_material("dispersive", 1, 1e9, 1e9);
  // Given every nm, as a measured table would be: the group index is taken
  // between neighbouring points (as Geant4 does), which for a line is
  // exact to (1 nm / 400 nm)^2 / 12, far below the tolerance.
  std::vector<std::pair<double, double>> points;
  for (int l = 60; l <= 995; ++l) points.emplace_back(l, 1.6 - l / 5000.0);
  m.refractive_index = Property::table(std::move(points));
  in.materials.push_back(m);
  in.surfaces.push_back(detector_surface());
  const OpticsTables tables(in);
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, radius, 0, 0, 0);
  for (const TimingMode timing : {TimingMode::phase, TimingMode::group}) {
    ParamsView params = scene.view(tables, 63);
    params.timing = timing;
    const double index = timing == TimingMode::phase ? 1.52 : 1.6;
    Random directions(7, 0, 0);
    for (std::uint32_t i = 0; i < 2000; ++i) {
      const Vec3 d = directions.uniform_sphere();
      Photon p = testing::make_photon({0, 0, 0}, d, directions.perpendicular(d), 400, i);
      p.time = 3;
      propagate(p, params, scene.tracer);
      ASSERT_EQ(p.history, history::surface_detect);
      ASSERT_NEAR(norm(p.position), radius, 1e-4 * radius);
      ASSERT_NEAR(p.time, 3 + radius * index / kSpeedOfLight, 1e-5 * p.time);
    }
  }
}

// A wavelength-shifting medium: absorbs strongly (L = 1 mm) below 440 nm and
// is transparent (1e7 mm) above 460 nm; one reemission component with the
// same absorption length, reemission probability 0.8, a Gaussian 600 +- 50
// nm spectrum and an exponential delay with tau = 5 ns.
OpticsInput wls_medium_input(double outer_index) {
  const auto spectrum = [](double x) {
    return 0.5 * std::erfc(-(x - 600) / (50 * std::sqrt(2.0)));
  };
  OpticsInput in;
  MaterialInput wls = constant_material("wls", 1.5, 1, 1e9);
  wls.absorption_length = Property::table({{440, 1}, {460, 1e7}});
  ReemissionComponentInput c;
  c.absorption_length = wls.absorption_length;
  c.reemission_prob = Property::constant(0.8);
  c.wavelength_cdf = testing::cdf_on_grid(spectrum, 60, 5, kWavelengthPoints);
  c.time_profile = TimeProfile::exponential(5.0);
  wls.components.push_back(c);
  in.materials.push_back(wls);
  in.materials.push_back(constant_material("water", outer_index, 1e9, 1e9));
  in.surfaces.push_back(detector_surface());
  return in;
}

// Bulk reemission, one step (max_steps = 1) so the photon stops where it was
// reemitted: reemitted fraction 0.8 (5 binomial sigma); wavelength follows
// the CDF and the delay t - |r| n/c the exponential time CDF (chi-square on
// bins aligned with the grids, where the sampled piecewise-linear CDF equals
// the analytic one); directions isotropic (cos theta uniform, mean 0 within
// 5 standard errors with population sd 1/sqrt(3)); polarization transverse.
TEST(BulkReemission, SpectrumDelayAndIsotropy) {
  const OpticsTables tables(wls_medium_input(1.5));
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, 100, 0, 1, 0);
  ParamsView params = scene.view(tables, 64);
  params.max_steps = 1;
  const int n = 100000;
  int reemitted = 0;
  Histogram wavelength(450, 750, 60), delay(0, 40, 40), cos_theta(-1, 1, 20);
  double sum_cos = 0;
  for (int i = 0; i < n; ++i) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 250, i);
    const PropagateResult r = propagate(p, params, scene.tracer);
    if (p.history == history::bulk_reemit) {
      ASSERT_EQ(r.outcome, Outcome::max_steps);
      ++reemitted;
      wavelength.fill(p.wavelength);
      delay.fill(p.time - norm(p.position) * 1.5 / kSpeedOfLight);
      cos_theta.fill(p.direction.z);
      sum_cos += p.direction.z;
      ASSERT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-5f);
      ASSERT_EQ(p.last_hit_triangle, -1);
    } else {
      ASSERT_EQ(p.history, history::bulk_absorb);
    }
  }
  expect_binomial(reemitted, n, 0.8, "reemitted fraction");
  expect_shape(
      wavelength, [](double x) { return 0.5 * std::erfc(-(x - 600) / (50 * std::sqrt(2.0))); },
      "reemission spectrum");
  expect_shape(
      delay, [](double t) { return 1 - std::exp(-t / 5.0); }, "reemission delay");
  expect_shape(
      cos_theta, [](double c) { return (c + 1) / 2; }, "reemission cos theta");
  expect_mean(sum_cos, reemitted, 0.0, 1 / std::sqrt(3.0), "reemission <cos theta>");
}

// Chroma's test_reemission.py: 250 nm photons from the centre of a WLS
// sphere (R = 50 mm, n = 1.5) in water (n = 1.33) inside a detecting sphere
// (R = 100 mm). Every photon is absorbed; reemitted ones (0.8, 5 binomial
// sigma) cross the WLS boundary (Fresnel, with reflections re-crossing the
// sphere) and are detected with the reemission spectrum (chi-square).
TEST(BulkReemission, ChromaReemissionSphere) {
  const OpticsTables tables(wls_medium_input(1.33));
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, 50, 0, 1, -1);
  scene.add_sphere({0, 0, 0}, 100, 1, 1, 0);
  const ParamsView params = scene.view(tables, 65);
  const int n = 100000;
  int detected = 0, absorbed = 0;
  Histogram wavelength(450, 750, 60);
  for (int i = 0; i < n; ++i) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 250, i);
    propagate(p, params, scene.tracer);
    if (p.history & history::surface_detect) {
      ASSERT_TRUE(p.history & history::bulk_reemit);
      ASSERT_NEAR(norm(p.position), 100, 1e-3);
      ++detected;
      wavelength.fill(p.wavelength);
    } else {
      ASSERT_TRUE(p.history & history::bulk_absorb) << p.history;
      ++absorbed;
    }
  }
  // Reemitted photons below 440 nm (P = 7e-4) can be absorbed again, which
  // shifts the detected fraction by ~1e-4, far inside the tolerance (6e-3).
  expect_binomial(detected, n, 0.8, "detected fraction");
  expect_shape(
      wavelength, [](double x) { return 0.5 * std::erfc(-(x - 600) / (50 * std::sqrt(2.0))); },
      "detected spectrum");
}

// Component choice: with L_abs = 1 mm and components of 4 mm and 2 mm, the
// first takes L_abs/4 = 0.25 of absorptions and the last takes the rest
// (0.5 + the 0.25 remainder). Each component reemits into its own 10 nm band.
// 1e5 photons, 5 binomial sigma.
TEST(BulkReemission, ComponentChoiceAndRemainder) {
  OpticsInput in;
  MaterialInput m = constant_material("two", 1.5, 1, 1e9);
  const double lengths[2] = {4, 2};
  const double bands[2] = {500, 700};
  for (int k = 0; k < 2; ++k) {
    ReemissionComponentInput c;
    c.absorption_length = Property::constant(lengths[k]);
    c.reemission_prob = Property::constant(1);
    c.wavelength_cdf = Property::table({{bands[k], 0}, {bands[k] + 10, 1}});
    c.time_profile = TimeProfile::table(Property::table({{0, 0}, {1, 1}}));
    m.components.push_back(c);
  }
  in.materials.push_back(m);
  in.surfaces.push_back(detector_surface());
  const OpticsTables tables(in);
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, 1e4, 0, 0, 0);
  ParamsView params = scene.view(tables, 66);
  params.max_steps = 1;
  const int n = 100000;
  int first = 0, second = 0;
  for (int i = 0; i < n; ++i) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 420, i);
    propagate(p, params, scene.tracer);
    ASSERT_EQ(p.history, history::bulk_reemit);
    if (p.wavelength >= 500 && p.wavelength <= 510) ++first;
    if (p.wavelength >= 700 && p.wavelength <= 710) ++second;
  }
  expect_binomial(first, n, 0.25, "first component");
  EXPECT_EQ(first + second, n);
}

// ------------------------------------------------ energy-conserving reemission

// A medium that absorbs every photon within ~1 mm (L = 1 mm at all
// wavelengths) with one component: reemission probability 1, the given
// spectrum and time profile, inside a large sphere; one step (max_steps = 1)
// so each photon stops where it was absorbed.
struct ReemittingMedium {
  OpticsTables tables;
  testing::Scene scene;
  ParamsView params;

  ReemittingMedium(Property wavelength_cdf, TimeProfile time, std::uint64_t seed)
      : tables(make_input(std::move(wavelength_cdf), std::move(time))) {
    scene.add_sphere({0, 0, 0}, 1e4, 0, 0, 0);
    params = scene.view(tables, seed);
    params.max_steps = 1;
  }
  static OpticsInput make_input(Property wavelength_cdf, TimeProfile time) {
    OpticsInput in;
    MaterialInput m = constant_material("shifter", 1.5, 1, 1e9);
    ReemissionComponentInput c;
    c.absorption_length = Property::constant(1);
    c.reemission_prob = Property::constant(1);
    c.wavelength_cdf = std::move(wavelength_cdf);
    c.time_profile = std::move(time);
    m.components.push_back(std::move(c));
    in.materials.push_back(m);
    in.surfaces.push_back(detector_surface());
    return in;
  }
  Photon shoot(float wavelength, std::uint32_t index) {
    Photon p = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, wavelength, index);
    propagate(p, params, scene.tracer);
    return p;
  }
  // The reemission delay: time minus the flight to the absorption point.
  static double delay(const Photon& p) { return p.time - norm(p.position) * 1.5 / kSpeedOfLight; }
};

// The Gaussian 600 +- 50 nm emission spectrum as the engine samples it:
// its CDF at the 5 nm grid points (normalised as cdf_on_grid does) and
// linear in between.
double gaussian_cdf(double x) {
  return 0.5 * std::erfc(-(x - 600) / (50 * std::sqrt(2.0)));
}
double grid_gaussian_cdf(double x) {
  const double first = gaussian_cdf(60), last = gaussian_cdf(995);
  const auto at = [&](int i) { return (gaussian_cdf(60 + 5.0 * i) - first) / (last - first); };
  if (x <= 60) return 0;
  if (x >= 995) return 1;
  const int i = static_cast<int>((x - 60) / 5);
  const double f = (x - 60 - 5.0 * i) / 5;
  return at(i) + f * (at(i + 1) - at(i));
}

// Energy conservation (Geant4's G4OpWLS): for absorbed wavelengths in the
// middle of the spectrum (on and between grid points), every reemitted
// wavelength is at or above the absorbed one and all photons are reemitted
// (the spectrum reaches 995 nm); the wavelengths follow the spectrum
// restricted to [lambda_abs, 995] and renormalised (chi-square against the
// engine's piecewise-linear CDF, exact for any bins). 50,000 photons each.
TEST(BulkReemission, ReemittedWavelengthIsNeverShorterThanTheAbsorbed) {
  ReemittingMedium medium(testing::cdf_on_grid(gaussian_cdf, 60, 5, kWavelengthPoints),
                          TimeProfile::fixed(0), 70);
  std::uint32_t index = 0;
  for (const float absorbed : {560.0f, 600.0f, 612.3f, 647.9f}) {
    SCOPED_TRACE(absorbed);
    const int n = 50000;
    const int bins = static_cast<int>((995 - absorbed) / 2.5);
    Histogram wavelength(absorbed, 995, bins);
    int reemitted = 0;
    for (int i = 0; i < n; ++i) {
      const Photon p = medium.shoot(absorbed, index++);
      ASSERT_EQ(p.history, history::bulk_reemit);
      ASSERT_GE(p.wavelength, absorbed);
      ++reemitted;
      wavelength.fill(p.wavelength);
    }
    EXPECT_EQ(reemitted, n);
    EXPECT_EQ(wavelength.entries, n);
    expect_shape(wavelength, grid_gaussian_cdf, "restricted reemission spectrum");
  }
}

// Chroma's behaviour under chroma_compat: the whole spectrum, so about half
// the photons absorbed at 600 nm come back shorter (binomial, 5 sigma, with
// the grid CDF's value at 600 nm) and the shape is the full spectrum.
TEST(BulkReemission, ChromaCompatDrawsFromTheWholeSpectrum) {
  ReemittingMedium medium(testing::cdf_on_grid(gaussian_cdf, 60, 5, kWavelengthPoints),
                          TimeProfile::fixed(0), 71);
  medium.params.chroma_compat = 1;
  const int n = 50000;
  int shorter = 0;
  Histogram wavelength(400, 800, 80);
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(600, i);
    ASSERT_EQ(p.history, history::bulk_reemit);
    if (p.wavelength < 600) ++shorter;
    wavelength.fill(p.wavelength);
  }
  expect_binomial(shorter, n, grid_gaussian_cdf(600), "reemitted shorter than absorbed");
  expect_shape(wavelength, grid_gaussian_cdf, "full reemission spectrum");
}

// A spectrum of 500..510 nm (uniform): a photon absorbed at 520 nm or at
// exactly 510 nm has nothing longer to emit and is absorbed (BULK_ABSORB,
// as Geant4 emits no secondary); absorbed at 505 nm it is reemitted
// uniformly on [505, 510] (mean 507.5 within 5 standard errors, sd 5/sqrt
// 12); with chroma_compat the 520 nm photon is reemitted on [500, 510].
TEST(BulkReemission, NothingLongerToEmitMeansAbsorbed) {
  ReemittingMedium medium(Property::table({{500, 0}, {510, 1}}), TimeProfile::fixed(0), 72);
  const int n = 20000;
  for (const float absorbed : {520.0f, 510.0f, 995.0f, 2000.0f}) {
    for (int i = 0; i < 1000; ++i) {
      ASSERT_EQ(medium.shoot(absorbed, i).history, history::bulk_absorb) << absorbed;
    }
  }
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(505, i);
    ASSERT_EQ(p.history, history::bulk_reemit);
    ASSERT_GE(p.wavelength, 505.0f);
    ASSERT_LE(p.wavelength, 510.0f);
    sum += p.wavelength;
  }
  expect_mean(sum, n, 507.5, 5 / std::sqrt(12.0), "reemitted above 505 nm");
  medium.params.chroma_compat = 1;
  sum = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(520, i);
    ASSERT_EQ(p.history, history::bulk_reemit);
    sum += p.wavelength;
  }
  expect_mean(sum, n, 505, 10 / std::sqrt(12.0), "chroma_compat reemission");
}

// ------------------------------------------------------ reemission time profiles

// A 1.6 us exponential (an argon triplet): mean delay 1600 ns within 5
// standard errors (sd 1600 ns); the fraction beyond 1 us is exp(-1/1.6)
// (5 binomial sigma; the old 1 us time grid put it all at 1 us); the shape
// to 16 us follows 1 - exp(-t/1600) (chi-square). 100,000 photons.
TEST(BulkReemission, LongExponentialDelay) {
  ReemittingMedium medium(Property::table({{500, 0}, {510, 1}}), TimeProfile::exponential(1600),
                          73);
  const int n = 100000;
  double sum = 0;
  int beyond = 0;
  Histogram delay(0, 16000, 80);
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(420, i);
    ASSERT_EQ(p.history, history::bulk_reemit);
    const double t = ReemittingMedium::delay(p);
    sum += t;
    if (t > 1000) ++beyond;
    delay.fill(t);
  }
  expect_mean(sum, n, 1600, 1600, "mean delay");
  expect_binomial(beyond, n, std::exp(-1 / 1.6), "fraction beyond 1 us");
  expect_shape(
      delay, [](double t) { return 1 - std::exp(-t / 1600); }, "1.6 us exponential");
}

// Two exponentials, 6 ns (weight 0.3) and 1.6 us (0.7): the mixture's CDF
// F(t) = 0.3 (1 - e^-t/6) + 0.7 (1 - e^-t/1600) on 0..60 ns (where the
// fast term dominates) and 0..16 us (chi-square each); the fraction below
// 30 ns (5 binomial sigma) and the mean 0.3 * 6 + 0.7 * 1600 ns within 5
// standard errors (population sd from E[t^2] = sum w 2 tau^2). 100,000.
TEST(BulkReemission, TwoExponentialMixture) {
  ReemittingMedium medium(
      Property::table({{500, 0}, {510, 1}}),
      TimeProfile::mixture({TimeExponential{6, 0.3}, TimeExponential{1600, 0.7}}), 74);
  const auto cdf = [](double t) {
    return 0.3 * (1 - std::exp(-t / 6)) + 0.7 * (1 - std::exp(-t / 1600));
  };
  const int n = 100000;
  double sum = 0;
  int fast = 0;
  Histogram early(0, 60, 60), late(0, 16000, 80);
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(420, i);
    const double t = ReemittingMedium::delay(p);
    sum += t;
    if (t < 30) ++fast;
    early.fill(t);
    late.fill(t);
  }
  const double mean = 0.3 * 6 + 0.7 * 1600;
  const double second_moment = 0.3 * 2 * 36 + 0.7 * 2 * 1600.0 * 1600;
  expect_mean(sum, n, mean, std::sqrt(second_moment - mean * mean), "mixture mean");
  expect_binomial(fast, n, cdf(30), "fraction below 30 ns");
  expect_shape(early, cdf, "mixture 0..60 ns");
  expect_shape(late, cdf, "mixture 0..16 us");
}

// A rise time as Geant4's scintillation has it: density proportional to
// e^-t/tau (1 - e^-t/tau_r), tau = 10 ns, tau_r = 2 ns, whose CDF is
// 1 - (b e^-a t - a e^-b t) / (b - a) with a = 1/tau, b = 1/tau + 1/tau_r,
// plus a fixed 20 ns delay: no delay below 20 ns, mean 20 + tau + tau
// tau_r / (tau + tau_r) within 5 standard errors (sd of the sum of the two
// exponentials), shape by chi-square. 100,000 photons.
TEST(BulkReemission, RiseTimeAndFixedDelay) {
  TimeProfile profile = TimeProfile::exponential(10, 2);
  profile.delay = 20;
  ReemittingMedium medium(Property::table({{500, 0}, {510, 1}}), profile, 75);
  const double a = 0.1, b = 0.1 + 0.5;
  const auto cdf = [&](double t) {
    if (t <= 20) return 0.0;
    t -= 20;
    return 1 - (b * std::exp(-a * t) - a * std::exp(-b * t)) / (b - a);
  };
  const int n = 100000;
  double sum = 0;
  Histogram delay(0, 100, 100);
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(420, i);
    const double t = ReemittingMedium::delay(p);
    ASSERT_GE(t, 20 - 1e-3);
    sum += t;
    delay.fill(t);
  }
  const double tau2 = 10.0 * 2 / 12;
  expect_mean(sum, n, 20 + 10 + tau2, std::sqrt(100 + tau2 * tau2), "rise-time mean");
  expect_shape(delay, cdf, "rise-time profile");
}

// A tabulated time CDF with points out to 10 us is sampled at its own
// points, linear between them: no delay beyond 10 us, fractions of each
// interval (chi-square over the intervals and over 100 ns bins) and the
// fraction beyond 1 us, 0.5 (5 binomial sigma). 100,000 photons.
TEST(BulkReemission, TabulatedDelayOutToTenMicroseconds) {
  const std::vector<std::pair<double, double>> points = {
      {0, 0}, {100, 0.2}, {1000, 0.5}, {5000, 0.9}, {10000, 1.0}};
  ReemittingMedium medium(Property::table({{500, 0}, {510, 1}}),
                          TimeProfile::table(Property::table(points)), 76);
  const auto cdf = [&](double t) {
    if (t <= 0) return 0.0;
    for (std::size_t i = 1; i < points.size(); ++i) {
      const auto [t0, c0] = points[i - 1];
      const auto [t1, c1] = points[i];
      if (t <= t1) return c0 + (c1 - c0) * (t - t0) / (t1 - t0);
    }
    return 1.0;
  };
  const int n = 100000;
  int beyond = 0;
  double latest = 0;
  Histogram delay(0, 10000, 100);
  for (int i = 0; i < n; ++i) {
    const Photon p = medium.shoot(420, i);
    const double t = ReemittingMedium::delay(p);
    ASSERT_LE(t, 10000 + 1e-2);
    latest = std::max(latest, t);
    if (t > 1000) ++beyond;
    delay.fill(t);
  }
  expect_binomial(beyond, n, 0.5, "fraction beyond 1 us");
  EXPECT_GT(latest, 9900);  // P(none of 1e5 above 9.9 us) = (1 - 0.002)^1e5
  expect_shape(delay, cdf, "tabulated profile to 10 us");
}

}  // namespace
}  // namespace acheron::optics

namespace acheron::optics {
namespace {

// The step history in numbers: from the centre of a detecting sphere of
// radius R in a medium that only scatters (length L), every photon reaches
// one boundary (the sphere, where it is detected), makes no reemission, and
// leaves the centre unscattered with probability exp(-R/L). Tolerance: 5
// binomial standard deviations.
TEST(StepCounts, BoundariesScattersAndReemissionsPerPhoton) {
  const double radius = 500, length = 400;
  OpticsInput in;
  in.materials.push_back(constant_material("scatterer", 1.33, 1e9, length));
  in.surfaces.push_back(detector_surface());
  const OpticsTables tables(in);
  testing::Scene scene;
  scene.add_sphere({0, 0, 0}, radius, 0, 0, 0);
  const ParamsView params = scene.view(tables, 5);
  Random directions(11, 0, 0);
  const std::uint32_t n = 20000;
  std::uint32_t unscattered = 0, scatters = 0, scattered_bits = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const Vec3 d = directions.uniform_sphere();
    Photon p = testing::make_photon({0, 0, 0}, d, directions.perpendicular(d), 400, i);
    const PropagateResult r = propagate(p, params, scene.tracer);
    ASSERT_EQ(r.outcome, Outcome::surface_detect);
    EXPECT_EQ(r.counts.boundaries, 1u);
    EXPECT_EQ(r.counts.reemissions, 0u);
    EXPECT_EQ(r.steps, r.counts.scatters + 1);  // one cast per flight
    unscattered += r.counts.scatters == 0;
    scatters += r.counts.scatters;
    scattered_bits += (p.history & history::rayleigh_scatter) != 0;
  }
  const double p0 = std::exp(-radius / length);
  EXPECT_NEAR(double(unscattered) / n, p0, 5 * std::sqrt(p0 * (1 - p0) / n));
  EXPECT_EQ(scattered_bits, n - unscattered);
  EXPECT_GT(scatters, n - unscattered);  // some photons scatter more than once
}

}  // namespace
}  // namespace acheron::optics
