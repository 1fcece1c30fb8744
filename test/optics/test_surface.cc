// Surface reflectors and models (photon-physics.md §7 and §11 items 5-8).
#include "acheron/optics/Surfaces.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "OpticsTestSupport.hh"
#include "acheron/optics/ThinFilm.hh"

namespace acheron::optics {
namespace {

using testing::expect_binomial;
using testing::expect_mean;
using testing::expect_shape;
using testing::Histogram;

double normal_cdf(double x, double mean, double sigma) {
  return 0.5 * std::erfc(-(x - mean) / (sigma * std::sqrt(2.0)));
}

// ----------------------------------------------------------------- reflectors

// Specular: equal angles, outgoing direction in the plane of incidence,
// polarization p' = 2(p.n)n - p perpendicular to d' with the same s fraction.
TEST(SpecularReflector, EqualAnglesInPlaneAndPolarization) {
  Random rng(41, 0, 0);
  for (int i = 0; i < 10000; ++i) {
    Vec3 n = rng.uniform_sphere();
    Vec3 d = rng.uniform_sphere();
    if (dot(d, n) > 0) d = -d;  // n points back into the current medium
    Photon photon;
    photon.direction = d;
    photon.polarization = rng.perpendicular(d);
    const Vec3 p = photon.polarization;
    const Vec3 s_hat = normalize(cross(d, n));
    EXPECT_EQ(SpecularReflector{}(photon, n), Action::next_step);
    const Vec3 d2 = photon.direction, p2 = photon.polarization;
    ASSERT_NEAR(dot(d2, n), -dot(d, n), 1e-5f);      // equal angles
    ASSERT_NEAR(dot(cross(d, n), d2), 0.0f, 1e-5f);  // in the plane of incidence
    ASSERT_NEAR(dot(p2, d2), 0.0f, 1e-5f);           // transverse
    ASSERT_NEAR(norm(p2), 1.0f, 1e-5f);
    ASSERT_NEAR(std::pow(dot(p2, s_hat), 2), std::pow(dot(p, s_hat), 2), 1e-5f);  // s fraction
    ASSERT_TRUE(photon.history & history::reflect_specular);
  }
}

// Exact normal incidence: d' = -d (deviation 2); chroma_compat gives Chroma's
// NaN there and leaves the polarization unchanged elsewhere.
TEST(SpecularReflector, NormalIncidenceAndChromaCompat) {
  Photon photon;
  photon.direction = {0, 0, -1};
  photon.polarization = {1, 0, 0};
  SpecularReflector{}(photon, {0, 0, 1});
  EXPECT_EQ(photon.direction.z, 1.0f);
  EXPECT_TRUE(isfinite(photon.direction));
  EXPECT_TRUE(isfinite(photon.polarization));

  Photon compat;
  compat.direction = {0, 0, -1};
  compat.polarization = {1, 0, 0};
  SpecularReflector{true}(compat, {0, 0, 1});
  EXPECT_FALSE(isfinite(compat.direction));

  Photon oblique;
  oblique.direction = normalize(Vec3{1, 0, -1});
  oblique.polarization = normalize(Vec3{1, 0, 1});
  SpecularReflector{true}(oblique, {0, 0, 1});
  EXPECT_NEAR(oblique.direction.z, std::sqrt(0.5f), 1e-6f);
  EXPECT_NEAR(oblique.polarization.x, std::sqrt(0.5f), 1e-6f);  // unchanged
  EXPECT_NEAR(oblique.polarization.z, std::sqrt(0.5f), 1e-6f);
}

// Lambertian: mu = d'.n has density 2 mu (CDF mu^2, chi-square p > 1e-3),
// mean 2/3 within 5 standard errors (population sd sqrt(1/18)), uniform
// azimuth, random transverse polarization. 1e5 reflections.
TEST(DiffuseReflector, LambertianLaw) {
  Random rng(42, 0, 0);
  const Vec3 n = normalize(Vec3{0.2f, -0.3f, 0.9f});
  Vec3 b1, b2;
  orthonormal_basis(n, b1, b2);
  Histogram mu(0, 1, 40), azimuth(-M_PI, M_PI, 40);
  double sum = 0;
  const int count = 100000;
  for (int i = 0; i < count; ++i) {
    Photon photon;
    photon.direction = -n;
    photon.polarization = b1;
    EXPECT_EQ(DiffuseReflector{}(photon, n, rng), Action::next_step);
    const Vec3 d = photon.direction;
    ASSERT_NEAR(norm(d), 1.0f, 1e-5f);
    ASSERT_GE(dot(d, n), 0.0f);
    ASSERT_NEAR(dot(photon.polarization, d), 0.0f, 1e-5f);
    ASSERT_TRUE(photon.history & history::reflect_diffuse);
    mu.fill(dot(d, n));
    azimuth.fill(std::atan2(dot(d, b2), dot(d, b1)));
    sum += dot(d, n);
  }
  expect_shape(
      mu, [](double m) { return m * m; }, "Lambertian mu");
  expect_shape(
      azimuth, [](double a) { return (a + M_PI) / (2 * M_PI); }, "azimuth");
  expect_mean(sum, count, 2.0 / 3, std::sqrt(1.0 / 18), "mean mu");
}

// ----------------------------------------------- surface models via propagate

// The plane z = 0 with normal +z between two media of the given indices
// (inner below, outer above) carrying surface 0.
struct PlaneSetup {
  OpticsTables tables;
  testing::Scene scene;
  ParamsView params;

  PlaneSetup(const SurfaceInput& surface, double n_inner, double n_outer, std::uint64_t seed)
      : tables(make_input(surface, n_inner, n_outer)) {
    scene.add_plane({0, 0, 0}, {0, 0, 1}, 0, 1, 0);
    params = scene.view(tables, seed);
  }
  static OpticsInput make_input(const SurfaceInput& surface, double n_inner, double n_outer) {
    OpticsInput in;
    in.materials.push_back(testing::constant_material("below", n_inner, 1e9, 1e9));
    in.materials.push_back(testing::constant_material("above", n_outer, 1e9, 1e9));
    in.surfaces.push_back(surface);
    return in;
  }
  // A photon 10 mm from the plane heading for it at angle theta from the
  // normal, from below (+z travel) or above (-z travel).
  Photon shoot(double theta, bool from_below, float wavelength, std::uint32_t index,
               Vec3 polarization = {0, 1, 0}) {
    const float s = static_cast<float>(std::sin(theta)), c = static_cast<float>(std::cos(theta));
    const float side = from_below ? 1.0f : -1.0f;
    Photon p = testing::make_photon({-10 * s, 0, -10 * side}, {s, 0, c * side}, polarization,
                                    wavelength, index);
    propagate(p, params, scene.tracer);
    return p;
  }
};

// DEFAULT: absorb, detect, diffuse, specular and pass fractions equal the
// table values at the photon's wavelength (detect is a table, 0.2 at 400 nm),
// from both sides of the surface. 1e5 photons per side; each fraction within
// 5 binomial sigma (a multinomial's marginals are binomial).
TEST(DefaultSurface, FractionsFromBothSides) {
  SurfaceInput s;
  s.absorb = Property::constant(0.1);
  s.detect = Property::table({{300, 0.1}, {500, 0.3}});
  s.reflect_diffuse = Property::constant(0.15);
  s.reflect_specular = Property::constant(0.25);
  PlaneSetup setup(s, 1.0, 1.0, 51);
  for (const bool from_below : {true, false}) {
    const int n = 100000;
    int absorb = 0, detect = 0, diffuse = 0, specular = 0, pass = 0;
    for (int i = 0; i < n; ++i) {
      const Photon p = setup.shoot(0.5, from_below, 400, i);
      const float back = from_below ? -p.direction.z : p.direction.z;  // > 0 if reflected
      if (p.history == history::surface_absorb) {
        ++absorb;
      } else if (p.history == history::surface_detect) {
        ++detect;
      } else if (p.history == (history::reflect_diffuse | history::no_hit) && back > 0) {
        ++diffuse;
      } else if (p.history == (history::reflect_specular | history::no_hit) && back > 0) {
        ++specular;
      } else if (p.history == history::no_hit && back < 0) {
        ++pass;
      }
    }
    const std::string side = from_below ? " (from below)" : " (from above)";
    expect_binomial(absorb, n, 0.1, "absorb" + side);
    expect_binomial(detect, n, 0.2, "detect" + side);
    expect_binomial(diffuse, n, 0.15, "diffuse" + side);
    expect_binomial(specular, n, 0.25, "specular" + side);
    expect_binomial(pass, n, 0.3, "pass" + side);
    EXPECT_EQ(absorb + detect + diffuse + specular + pass, n);
  }
}

// WLS: reemit (a * reemit = 0.3), absorb (a (1 - reemit) = 0.2), specular
// 0.1, diffuse 0.2 and transmit 0.2 fractions (5 binomial sigma); reemitted
// photons take the reemission CDF's wavelengths (Gaussian 500 +- 30 nm;
// chi-square on 5 nm grid cells, where the sampled piecewise-linear CDF is
// exact), isotropic directions (cos theta uniform, mean 0 within 5 standard
// errors, population sd 1/sqrt(3)) and no time delay (no reemission_time).
TEST(WlsSurface, FractionsSpectrumAndIsotropy) {
  SurfaceInput s;
  s.model = SurfaceModel::wls;
  s.absorb = Property::constant(0.5);
  s.reemit = Property::constant(0.6);
  s.reflect_specular = Property::constant(0.1);
  s.reflect_diffuse = Property::constant(0.2);
  const auto cdf = [](double x) { return normal_cdf(x, 500, 30); };
  s.reemission_cdf = testing::cdf_on_grid(cdf, 60, 5, kWavelengthPoints);
  PlaneSetup setup(s, 1.0, 1.0, 52);
  const int n = 100000;
  int reemit = 0, absorb = 0, specular = 0, diffuse = 0, transmit = 0;
  Histogram wavelength(400, 600, 40), cos_theta(-1, 1, 20);
  double sum_cos = 0;
  const float hit_time = static_cast<float>(10 / std::cos(0.5) / kSpeedOfLight);
  for (int i = 0; i < n; ++i) {
    const Photon p = setup.shoot(0.5, true, 350, i);
    if (p.history == (history::surface_reemit | history::no_hit)) {
      ++reemit;
      wavelength.fill(p.wavelength);
      cos_theta.fill(p.direction.z);
      sum_cos += p.direction.z;
      ASSERT_NEAR(p.time, hit_time, 1e-6f);
    } else if (p.history == history::surface_absorb) {
      ++absorb;
    } else if (p.history == (history::reflect_specular | history::no_hit)) {
      ++specular;
    } else if (p.history == (history::reflect_diffuse | history::no_hit)) {
      ++diffuse;
    } else if (p.history == (history::surface_transmit | history::no_hit) && p.direction.z > 0) {
      ++transmit;
    }
  }
  expect_binomial(reemit, n, 0.3, "reemit");
  expect_binomial(absorb, n, 0.2, "absorb");
  expect_binomial(specular, n, 0.1, "specular");
  expect_binomial(diffuse, n, 0.2, "diffuse");
  expect_binomial(transmit, n, 0.2, "transmit");
  EXPECT_EQ(reemit + absorb + specular + diffuse + transmit, n);
  expect_shape(wavelength, cdf, "WLS reemission spectrum");
  expect_shape(
      cos_theta, [](double c) { return (c + 1) / 2; }, "WLS reemission cos theta");
  expect_mean(sum_cos, reemit, 0.0, 1 / std::sqrt(3.0), "WLS <cos theta>");
}

// WLS energy conservation: absorbed at 500 nm and 517.3 nm (the middle of
// the 500 +- 30 nm spectrum) every reemitted wavelength is at or above the
// absorbed one and follows the spectrum restricted above it (chi-square
// against the engine's piecewise-linear CDF); absorbed at 1000 nm, beyond
// the spectrum, the photon is absorbed (SURFACE_ABSORB); with chroma_compat
// it is reemitted from the whole spectrum. absorb = reemit = 1; 50,000
// photons per wavelength.
TEST(WlsSurface, ReemitsOnlyAtOrAboveTheAbsorbedWavelength) {
  SurfaceInput s;
  s.model = SurfaceModel::wls;
  s.absorb = Property::constant(1);
  s.reemit = Property::constant(1);
  const auto cdf = [](double x) { return normal_cdf(x, 500, 30); };
  s.reemission_cdf = testing::cdf_on_grid(cdf, 60, 5, kWavelengthPoints);
  // The engine's CDF: the grid values, linear in between.
  const auto grid_cdf = [&](double x) {
    const double first = cdf(60), last = cdf(995);
    const auto at = [&](int i) { return (cdf(60 + 5.0 * i) - first) / (last - first); };
    if (x <= 60) return 0.0;
    if (x >= 995) return 1.0;
    const int i = static_cast<int>((x - 60) / 5);
    return at(i) + (x - 60 - 5.0 * i) / 5 * (at(i + 1) - at(i));
  };
  PlaneSetup setup(s, 1.0, 1.0, 56);
  std::uint32_t index = 0;
  for (const float absorbed : {500.0f, 517.3f}) {
    SCOPED_TRACE(absorbed);
    const int n = 50000;
    Histogram wavelength(absorbed, 700, static_cast<int>((700 - absorbed) / 2.5));
    for (int i = 0; i < n; ++i) {
      const Photon p = setup.shoot(0.3, true, absorbed, index++);
      ASSERT_EQ(p.history, history::surface_reemit | history::no_hit);
      ASSERT_GE(p.wavelength, absorbed);
      wavelength.fill(p.wavelength);
    }
    expect_shape(wavelength, grid_cdf, "restricted WLS spectrum");
  }
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(setup.shoot(0.3, true, 1000, index++).history, history::surface_absorb);
  }
  setup.params.chroma_compat = 1;
  const int n = 20000;
  int shorter = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = setup.shoot(0.3, true, 500, index++);
    ASSERT_EQ(p.history, history::surface_reemit | history::no_hit);
    if (p.wavelength < 500) ++shorter;
  }
  expect_binomial(shorter, n, grid_cdf(500), "chroma_compat: shorter than absorbed");
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(setup.shoot(0.3, true, 1000, index++).history,
              history::surface_reemit | history::no_hit);
  }
}

// WLS reemission delay: a fixed 2 ns plus an exponential of 8 ns
// (reemission_time) is added to the hit time: no delay below 2 ns, mean 10
// ns within 5 standard errors (sd 8 ns) and the shape 1 - exp(-(t - 2)/8)
// (chi-square). 50,000 reemissions.
TEST(WlsSurface, ReemissionDelayFollowsTheTimeProfile) {
  SurfaceInput s;
  s.model = SurfaceModel::wls;
  s.absorb = Property::constant(1);
  s.reemit = Property::constant(1);
  s.reemission_cdf = Property::table({{600, 0}, {610, 1}});
  s.reemission_time = TimeProfile::exponential(8);
  s.reemission_time.delay = 2;
  PlaneSetup setup(s, 1.0, 1.0, 57);
  const double hit_time = 10 / std::cos(0.5) / kSpeedOfLight;
  const int n = 50000;
  double sum = 0;
  Histogram delay(0, 60, 60);
  for (int i = 0; i < n; ++i) {
    const Photon p = setup.shoot(0.5, true, 400, i);
    ASSERT_EQ(p.history, history::surface_reemit | history::no_hit);
    const double t = p.time - hit_time;
    ASSERT_GE(t, 2 - 1e-4);
    sum += t;
    delay.fill(t);
  }
  expect_mean(sum, n, 10, 8, "WLS mean delay");
  expect_shape(
      delay, [](double t) { return t <= 2 ? 0.0 : 1 - std::exp(-(t - 2) / 8); }, "WLS delay");
}

// DICHROIC: reflect, transmit and absorb fractions at (theta, lambda) follow
// the tables, bilinear in angle rows and wavelength, clamped past the last
// angle. 40,000 photons per point, 5 binomial sigma. Equal indices on both
// sides make the Fresnel step after a transmission a no-op.
TEST(DichroicSurface, FractionsVersusAngleAndWavelength) {
  SurfaceInput s;
  s.model = SurfaceModel::dichroic;
  s.angles = {0.0, 0.4, 0.8};
  s.reflect = {Property::table({{400, 0.1}, {600, 0.3}}), Property::constant(0.5),
               Property::constant(0.8)};
  s.transmit = {Property::constant(0.7), Property::constant(0.3),
                Property::table({{400, 0.0}, {600, 0.2}})};
  PlaneSetup setup(s, 1.2, 1.2, 53);
  struct Case {
    double theta;
    float wavelength;
    double reflect, transmit;
  };
  const Case cases[] = {
      {0.0, 500, 0.2, 0.7},
      {0.2, 450, 0.5 * 0.15 + 0.5 * 0.5, 0.5 * 0.7 + 0.5 * 0.3},
      {0.6, 400, 0.65, 0.15},
      {1.2, 550, 0.8, 0.15},  // beyond the last angle: last row (deviation 4)
      {0.9, 300, 0.8, 0.0},   // below the tables' wavelength range: end values
  };
  std::uint32_t index = 0;
  for (const Case& c : cases) {
    const int n = 40000;
    int reflect = 0, transmit = 0, absorb = 0;
    for (int i = 0; i < n; ++i) {
      const Photon p = setup.shoot(c.theta, true, c.wavelength, index++);
      if (p.history == (history::reflect_specular | history::no_hit)) {
        ++reflect;
        EXPECT_NEAR(p.direction.z, -std::cos(c.theta), 1e-5);
      } else if (p.history == (history::surface_transmit | history::no_hit)) {
        ++transmit;
        EXPECT_NEAR(p.direction.z, std::cos(c.theta), 1e-5);
      } else if (p.history == history::surface_absorb) {
        ++absorb;
      }
    }
    const std::string what =
        "theta " + std::to_string(c.theta) + " lambda " + std::to_string(c.wavelength);
    expect_binomial(reflect, n, c.reflect, what + " reflect");
    expect_binomial(transmit, n, c.transmit, what + " transmit");
    expect_binomial(absorb, n, 1 - c.reflect - c.transmit, what + " absorb");
  }
}

// ------------------------------------------------------------------- COMPLEX

double fresnel_rs(double cos_i, double n1, double n3) {
  const double sin2_t = std::pow(n1 / n3, 2) * (1 - cos_i * cos_i);
  if (sin2_t >= 1) return 1;
  const double cos_t = std::sqrt(1 - sin2_t);
  return std::pow((n1 * cos_i - n3 * cos_t) / (n1 * cos_i + n3 * cos_t), 2);
}
double fresnel_rp(double cos_i, double n1, double n3) {
  const double sin2_t = std::pow(n1 / n3, 2) * (1 - cos_i * cos_i);
  if (sin2_t >= 1) return 1;
  const double cos_t = std::sqrt(1 - sin2_t);
  return std::pow((n3 * cos_i - n1 * cos_t) / (n3 * cos_i + n1 * cos_t), 2);
}

// A film with k = 0 and thickness 0 is invisible: R equals Fresnel between
// n1 and n3 and T = 1 - R, whatever eta is (float precision, 2e-5).
TEST(ThinFilm, ZeroThicknessReducesToFresnel) {
  for (const double n3 : {1.0, 1.5, 0.8}) {
    for (int a = 0; a <= 89; a += 7) {
      const double cos_i = std::cos(a * M_PI / 180);
      const ThinFilmResult r = thin_film(1.2f, Complex{1.9f, 0.0f}, static_cast<float>(n3),
                                         static_cast<float>(cos_i), 0.0f, 420.0f);
      EXPECT_NEAR(r.r_s, fresnel_rs(cos_i, 1.2, n3), 2e-5) << "n3 " << n3 << " angle " << a;
      EXPECT_NEAR(r.r_p, fresnel_rp(cos_i, 1.2, n3), 2e-5) << "n3 " << n3 << " angle " << a;
      EXPECT_NEAR(r.r_s + r.t_s, 1.0, 2e-5) << "n3 " << n3 << " angle " << a;
      EXPECT_NEAR(r.r_p + r.t_p, 1.0, 2e-5) << "n3 " << n3 << " angle " << a;
    }
  }
}

// Closed forms of a lossless film: energy is conserved at any thickness;
// a quarter-wave layer of index sqrt(n1 n3) cancels reflection at normal
// incidence; a half-wave layer is absent (R = Fresnel between n1 and n3).
// An absorbing film absorbs (A > 0) and grazing incidence reflects fully.
TEST(ThinFilm, ClosedForms) {
  for (const float d : {10.0f, 55.0f, 130.0f, 400.0f}) {
    for (const float cos_i : {1.0f, 0.8f, 0.3f}) {
      const ThinFilmResult r = thin_film(1.0f, Complex{1.7f, 0.0f}, 1.5f, cos_i, d, 500.0f);
      EXPECT_NEAR(r.r_s + r.t_s, 1.0f, 2e-5f);
      EXPECT_NEAR(r.r_p + r.t_p, 1.0f, 2e-5f);
    }
  }
  const float film = std::sqrt(1.5f);
  const ThinFilmResult quarter =
      thin_film(1.0f, Complex{film, 0}, 1.5f, 1.0f, 500.0f / (4 * film), 500.0f);
  EXPECT_NEAR(quarter.r_s, 0.0f, 1e-6f);
  EXPECT_NEAR(quarter.r_p, 0.0f, 1e-6f);
  const ThinFilmResult half = thin_film(1.0f, Complex{2.0f, 0}, 1.5f, 1.0f, 500.0f / 4, 500.0f);
  EXPECT_NEAR(half.r_s, 0.04f, 1e-5f);
  const ThinFilmResult metal = thin_film(1.5f, Complex{2.2f, 1.4f}, 1.0f, 0.9f, 20.0f, 420.0f);
  EXPECT_GT(1 - metal.r_s - metal.t_s, 0.1f);
  EXPECT_GT(1 - metal.r_p - metal.t_p, 0.1f);
  EXPECT_LT(metal.r_s, 1.0f);
  const ThinFilmResult grazing = thin_film(1.0f, Complex{2.2f, 1.4f}, 1.5f, 0.0f, 20.0f, 420.0f);
  EXPECT_EQ(grazing.r_s, 1.0f);
  EXPECT_EQ(grazing.t_s, 0.0f);
  // Beyond the far medium's critical angle nothing is transmitted.
  const ThinFilmResult tir = thin_film(1.5f, Complex{1.7f, 0.0f}, 1.0f, 0.3f, 50.0f, 420.0f);
  EXPECT_EQ(tir.t_s, 0.0f);
  EXPECT_NEAR(tir.r_s, 1.0f, 2e-5f);
}

// COMPLEX with k = 0 and thickness 0 through propagate: unpolarized photons
// reflect with the Fresnel probability (R_s + R_p)/2 between n1 and n3 and
// transmit otherwise (SURFACE_TRANSMIT, Snell direction, no separate Fresnel
// step); 1e5 photons per side, 5 binomial sigma.
TEST(ComplexSurface, TransparentFilmEqualsFresnel) {
  SurfaceInput s;
  s.model = SurfaceModel::complex;
  s.eta = Property::constant(1.8);
  s.k = Property::constant(0);
  s.thickness = 0;
  s.transmissive = true;
  PlaneSetup setup(s, 1.0, 1.5, 54);
  const double theta = 0.6;  // below the 1.5 -> 1.0 critical angle (0.73 rad)
  for (const bool from_below : {true, false}) {
    const double n1 = from_below ? 1.0 : 1.5, n3 = from_below ? 1.5 : 1.0;
    const double cos_i = std::cos(theta);
    const double expected_r = 0.5 * (fresnel_rs(cos_i, n1, n3) + fresnel_rp(cos_i, n1, n3));
    const double sin_t = n1 / n3 * std::sin(theta);
    Random pol_rng(99, 0, 0);
    const int n = 100000;
    int reflected = 0, transmitted = 0;
    for (int i = 0; i < n; ++i) {
      const float side = from_below ? 1.0f : -1.0f;
      const Vec3 d{static_cast<float>(std::sin(theta)), 0, static_cast<float>(cos_i) * side};
      const Photon p = setup.shoot(theta, from_below, 420, i, pol_rng.perpendicular(d));
      if (p.history == (history::reflect_specular | history::no_hit)) {
        ++reflected;
      } else if (p.history == (history::surface_transmit | history::no_hit)) {
        ++transmitted;
        ASSERT_NEAR(p.direction.x, sin_t, 2e-6);
        ASSERT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-5f);
      }
    }
    const std::string side = from_below ? " (1.0 -> 1.5)" : " (1.5 -> 1.0)";
    expect_binomial(reflected, n, expected_r, "reflected" + side);
    // A = 1 - R - T is zero up to float rounding (~1e-7), so a stray
    // absorption is possible but has an expectation of ~0.01 photons here.
    EXPECT_LE(n - reflected - transmitted, 3) << side;
  }
}

// COMPLEX decision logic with an absorbing film, s-polarized photons:
// absorbed fraction A = 1 - R_s - T_s (from thin_film) split by `detect`
// into SURFACE_DETECT and SURFACE_ABSORB, reflections split by
// reflect_diffuse; a non-transmissive film turns T into reflection.
TEST(ComplexSurface, AbsorbingFilmDecisions) {
  SurfaceInput s;
  s.model = SurfaceModel::complex;
  s.eta = Property::constant(2.2);
  s.k = Property::constant(1.4);
  s.thickness = 20;
  s.detect = Property::constant(0.7);
  s.reflect_diffuse = Property::constant(0.25);
  for (const bool transmissive : {true, false}) {
    s.transmissive = transmissive;
    PlaneSetup setup(s, 1.5, 1.0, transmissive ? 55 : 56);
    const double theta = 0.3;
    const ThinFilmResult rt = thin_film(1.5f, Complex{2.2f, 1.4f}, 1.0f,
                                        static_cast<float>(std::cos(theta)), 20.0f, 420.0f);
    const double t = transmissive ? rt.t_s : 0.0;
    const double a = 1 - rt.r_s - t;
    const int n = 100000;
    int detect = 0, absorb = 0, diffuse = 0, specular = 0, transmit = 0;
    for (int i = 0; i < n; ++i) {
      const Photon p = setup.shoot(theta, true, 420, i, {0, 1, 0});
      if (p.history == history::surface_detect) ++detect;
      if (p.history == history::surface_absorb) ++absorb;
      if (p.history == (history::reflect_diffuse | history::no_hit)) ++diffuse;
      if (p.history == (history::reflect_specular | history::no_hit)) ++specular;
      if (p.history == (history::surface_transmit | history::no_hit)) ++transmit;
    }
    const std::string what = transmissive ? " (transmissive)" : " (opaque)";
    expect_binomial(detect, n, 0.7 * a, "detect" + what);
    expect_binomial(absorb, n, 0.3 * a, "absorb" + what);
    expect_binomial(diffuse, n, 0.25 * (1 - a - t), "diffuse" + what);
    expect_binomial(specular, n, 0.75 * (1 - a - t), "specular" + what);
    expect_binomial(transmit, n, t, "transmit" + what);
  }
}

}  // namespace
}  // namespace acheron::optics
