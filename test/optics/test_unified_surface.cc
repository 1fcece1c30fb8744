// Geant4's unified surface model (Unified.hh, docs/optics.md "Surface
// models"), its detector-file spelling, and the dichroic surface's
// transmission without a second Fresnel draw.
#include "acheron/optics/Unified.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "OpticsTestSupport.hh"
#include "acheron/core/Error.hh"
#include "acheron/optics/Detector.hh"
#include "acheron/optics/Surfaces.hh"

namespace acheron::optics {
namespace {

using testing::expect_binomial;
using testing::expect_mean;
using testing::expect_shape;
using testing::Histogram;

// The plane z = 0 (normal +z) between "below" (index n_below) and "above"
// (n_above) carrying surface 0; photons come from below.
struct UnifiedPlane {
  OpticsTables tables;
  testing::Scene scene;
  ParamsView params;

  UnifiedPlane(const SurfaceInput& surface, double n_below, double n_above, std::uint64_t seed,
               bool chroma_compat = false)
      : tables(make_input(surface, n_below, n_above)) {
    scene.add_plane({0, 0, 0}, {0, 0, 1}, 0, 1, 0);
    params = scene.view(tables, seed);
    params.chroma_compat = chroma_compat ? 1u : 0u;
  }
  static OpticsInput make_input(const SurfaceInput& surface, double n_below, double n_above) {
    OpticsInput in;
    in.materials.push_back(testing::constant_material("below", n_below, 1e9, 1e9));
    in.materials.push_back(testing::constant_material("above", n_above, 1e9, 1e9));
    in.surfaces.push_back(surface);
    return in;
  }
  static Vec3 direction(double theta) {
    return {static_cast<float>(std::sin(theta)), 0, static_cast<float>(std::cos(theta))};
  }
  // A photon from 10 mm below the plane at angle theta to the normal,
  // travelling in the xz plane; it ends NO_HIT unless stopped on the plane.
  Photon shoot(double theta, std::uint32_t index, Vec3 polarization = {0, 1, 0}) {
    const Vec3 d = direction(theta);
    Photon p = testing::make_photon(-10.0f * d, d, polarization, 420, index);
    propagate(p, params, scene.tracer);
    return p;
  }
};

SurfaceInput unified(SurfaceType type, SurfaceFinish finish, double sigma_alpha) {
  SurfaceInput s;
  s.name = "unified";
  s.model = SurfaceModel::unified;
  s.type = type;
  s.finish = finish;
  s.sigma_alpha = sigma_alpha;
  return s;
}

constexpr auto kMetal = SurfaceType::dielectric_metal;
constexpr auto kDielectric = SurfaceType::dielectric_dielectric;
constexpr auto kGround = SurfaceFinish::ground;
constexpr auto kPolished = SurfaceFinish::polished;

// Density of the facet slope angle alpha with Geant4's weighting, up to
// normalization: Gaussian(alpha; 0, sigma) min(sin alpha, f_max), f_max =
// min(1, 4 sigma), on (0, pi/2).
double facet_density(double alpha, double sigma) {
  const double f_max = std::min(1.0, 4 * sigma);
  return std::exp(-alpha * alpha / (2 * sigma * sigma)) * std::min(std::sin(alpha), f_max);
}

// Integral of f over [a, b] by Simpson's rule with 20,000 intervals
// (relative error far below 1e-6 for these smooth integrands).
double integrate(const std::function<double(double)>& f, double a, double b) {
  const int n = 20000;
  const double h = (b - a) / n;
  double sum = f(a) + f(b);
  for (int i = 1; i < n; ++i) sum += f(a + i * h) * (i % 2 ? 4 : 2);
  return sum * h / 3;
}

// Fresnel reflectances at incidence angle i (sine/tangent form).
double rs2(double i, double n1, double n2) {
  if (i == 0) return std::pow((n1 - n2) / (n1 + n2), 2);
  const double t = std::asin(n1 / n2 * std::sin(i));
  return std::pow(std::sin(i - t) / std::sin(i + t), 2);
}
double rp2(double i, double n1, double n2) {
  if (i == 0) return std::pow((n1 - n2) / (n1 + n2), 2);
  const double t = std::asin(n1 / n2 * std::sin(i));
  return std::pow(std::tan(i - t) / std::tan(i + t), 2);
}

// ------------------------------------------------------------- facet normals

// At normal incidence the facet slope alpha follows Geant4's density
// g(alpha; sigma) min(sin alpha, f_max) (chi-square on 40 bins against the
// numerically integrated CDF, p > 1e-3) with mean within 5 standard errors
// of the integrated mean; the azimuth is uniform. 1e5 facets per sigma.
TEST(UnifiedSurface, FacetSlopesFollowGeant4sDensity) {
  const Vec3 n{0, 0, 1};
  for (const double sigma : {0.1, 0.3}) {
    const std::string what = "sigma " + std::to_string(sigma);
    const double total = integrate([&](double a) { return facet_density(a, sigma); }, 0, M_PI / 2);
    const double mean =
        integrate([&](double a) { return a * facet_density(a, sigma); }, 0, M_PI / 2) / total;
    const double mean2 =
        integrate([&](double a) { return a * a * facet_density(a, sigma); }, 0, M_PI / 2) / total;
    const double hi = std::min(M_PI / 2, 6 * sigma);
    Histogram alpha(0, hi, 40), azimuth(-M_PI, M_PI, 20);
    Random rng(400 + static_cast<std::uint64_t>(10 * sigma), 0, 0);
    double sum = 0;
    const int count = 100000;
    for (int i = 0; i < count; ++i) {
      const Vec3 f = sample_facet_normal({0, 0, -1}, n, static_cast<float>(sigma), rng);
      ASSERT_NEAR(norm(f), 1.0f, 1e-5f);
      const double a = std::acos(std::min(1.0f, dot(f, n)));
      alpha.fill(a);
      azimuth.fill(std::atan2(f.y, f.x));
      sum += a;
    }
    const auto cdf = [&](double x) {
      return integrate([&](double a) { return facet_density(a, sigma); }, 0, x) / total;
    };
    expect_shape(alpha, cdf, what + " alpha");
    expect_shape(
        azimuth, [](double a) { return (a + M_PI) / (2 * M_PI); }, what + " azimuth");
    expect_mean(sum, count, mean, std::sqrt(mean2 - mean * mean), what + " mean alpha");
  }
  // sigma_alpha = 0 is the average normal itself, with no draw.
  Random rng(409, 0, 0);
  const Vec3 f = sample_facet_normal({0.6f, 0, -0.8f}, n, 0.0f, rng);
  EXPECT_EQ(f.z, 1.0f);
  EXPECT_EQ(rng.draws(), 0u);
  // A grazing photon only meets facets it can hit (d.f < 0).
  for (int i = 0; i < 10000; ++i) {
    const Vec3 d = normalize(Vec3{1, 0, -0.05f});
    ASSERT_LT(dot(d, sample_facet_normal(d, n, 0.3f, rng)), 0.0f);
  }
}

// ------------------------------------------------------- reflection kinds

// A ground surface whose reflections are all specular spikes reflects
// about the average normal, exactly as a polished one: for a metal every
// photon, for a dielectric every reflected photon, leaves along the mirror
// direction (1e-6) whatever sigma_alpha; the metal mirrors the polarization.
TEST(UnifiedSurface, SpikeOnlyGroundEqualsSpecular) {
  for (const auto type : {kMetal, kDielectric}) {
    SurfaceInput s = unified(type, kGround, 0.3);
    s.specular_spike = Property::constant(1.0);
    UnifiedPlane plane(s, 1.0, 1.5, 410);
    const double theta = 0.5;
    int reflected = 0;
    for (int i = 0; i < 20000; ++i) {
      const Photon p = plane.shoot(theta, i);
      if (p.direction.z > 0) {
        ASSERT_EQ(type, kDielectric);  // a metal never transmits here
        continue;
      }
      ++reflected;
      ASSERT_EQ(p.history, history::reflect_specular | history::no_hit);
      ASSERT_NEAR(p.direction.x, std::sin(theta), 1e-6);
      ASSERT_NEAR(p.direction.z, -std::cos(theta), 1e-6);
      ASSERT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-5f);
      if (type == kMetal) {
        ASSERT_NEAR(p.polarization.y, -1.0f, 1e-6f);
      }
    }
    EXPECT_GT(reflected, 0);
  }
}

// A specular lobe with sigma_alpha = 0 is the specular direction.
TEST(UnifiedSurface, LobeWithZeroSigmaIsSpecular) {
  SurfaceInput s = unified(kMetal, kGround, 0.0);
  s.specular_lobe = Property::constant(1.0);
  UnifiedPlane plane(s, 1.0, 1.0, 411);
  for (const double theta : {0.0, 0.4, 1.3}) {
    for (int i = 0; i < 2000; ++i) {
      const Photon p = plane.shoot(theta, i);
      ASSERT_EQ(p.history, history::reflect_specular | history::no_hit);
      ASSERT_NEAR(p.direction.x, std::sin(theta), 1e-6);
      ASSERT_NEAR(p.direction.z, -std::cos(theta), 1e-6);
    }
  }
}

// With no constants every reflection is Lambertian about the average
// normal: mu = -d'.z has density 2 mu (chi-square p > 1e-3), mean 2/3 within
// 5 standard errors (population sd sqrt(1/18)), REFLECT_DIFFUSE, and the
// polarization (mirrored about the bisector of d and d') stays a unit
// vector perpendicular to d'. 1e5 photons at 0.7 rad.
TEST(UnifiedSurface, LambertianOnlyFollowsTheCosineLaw) {
  UnifiedPlane plane(unified(kMetal, kGround, 0.2), 1.0, 1.0, 412);
  Histogram mu(0, 1, 40);
  double sum = 0;
  const int count = 100000;
  for (int i = 0; i < count; ++i) {
    const Photon p = plane.shoot(0.7, i);
    ASSERT_EQ(p.history, history::reflect_diffuse | history::no_hit);
    ASSERT_NEAR(norm(p.polarization), 1.0f, 1e-5f);
    ASSERT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-5f);
    mu.fill(-p.direction.z);
    sum += -p.direction.z;
  }
  expect_shape(
      mu, [](double m) { return m * m; }, "Lambertian mu");
  expect_mean(sum, count, 2.0 / 3, std::sqrt(1.0 / 18), "mean mu");
}

// Backscatter sends the photon back along its incoming direction with its
// polarization reversed, on a metal and on a dielectric.
TEST(UnifiedSurface, BackscatterReversesTheDirection) {
  for (const auto type : {kMetal, kDielectric}) {
    SurfaceInput s = unified(type, kGround, 0.2);
    s.backscatter = Property::constant(1.0);
    UnifiedPlane plane(s, 1.0, 1.5, 413);
    const Vec3 d = UnifiedPlane::direction(0.6);
    int back = 0;
    for (int i = 0; i < 5000; ++i) {
      const Photon p = plane.shoot(0.6, i, {0, 1, 0});
      if (p.direction.z > 0) continue;  // a dielectric refracts some
      ++back;
      ASSERT_EQ(p.history, history::reflect_specular | history::no_hit);
      ASSERT_EQ(p.direction.x, -d.x);
      ASSERT_EQ(p.direction.z, -d.z);
      ASSERT_EQ(p.polarization.y, -1.0f);
    }
    EXPECT_GT(back, 0);
  }
}

// The spread of a specular lobe about the specular direction at normal
// incidence: a photon reflected off a facet of slope alpha leaves at 2 alpha
// from the specular direction, so its mean deviation is 2 <alpha> over the
// facet density (numerical integration; 1e5 photons, 5 standard errors).
// For sigma_alpha = 0.1 (facets steeper than pi/4 are 8 sigma out) that is
// the whole answer. For sigma_alpha = 0.3 a fraction P of facets steeper
// than pi/4 send the photon into the metal, where it reflects again and
// ends at some deviation in [0, pi/2]: the mean lies between the
// single-reflection part 2 <alpha; alpha < pi/4> and that plus P pi/2.
TEST(UnifiedSurface, LobeWidthMatchesTheFacetDistribution) {
  for (const double sigma : {0.1, 0.3}) {
    const std::string what = "sigma " + std::to_string(sigma);
    SurfaceInput s = unified(kMetal, kGround, sigma);
    s.specular_lobe = Property::constant(1.0);
    UnifiedPlane plane(s, 1.0, 1.0, 414 + static_cast<std::uint64_t>(10 * sigma));
    const auto density = [&](double a) { return facet_density(a, sigma); };
    const double norm = integrate(density, 0, M_PI / 2);
    const double single =
        integrate([&](double a) { return 2 * a * density(a); }, 0, M_PI / 4) / norm;
    const double steep = integrate(density, M_PI / 4, M_PI / 2) / norm;
    const double second =
        integrate([&](double a) { return 4 * a * a * density(a); }, 0, M_PI / 2) / norm;
    const int count = 100000;
    double sum = 0;
    for (int i = 0; i < count; ++i) {
      const Photon p = plane.shoot(0.0, i);
      ASSERT_EQ(p.history, history::reflect_specular | history::no_hit);
      ASSERT_LT(p.direction.z, 0.0f);
      sum += std::acos(std::min(1.0f, -p.direction.z));
    }
    const double mean = sum / count;
    const double se = std::sqrt(second - single * single) / std::sqrt(count);
    EXPECT_GE(mean, single - 5 * se) << what;
    EXPECT_LE(mean, single + steep * M_PI / 2 + 5 * se) << what;
    if (sigma == 0.1) {
      EXPECT_LT(steep, 1e-12);
      EXPECT_NEAR(mean, single, 5 * se) << what;
    }
  }
}

// ------------------------------------------------------- bookkeeping

// dielectric_metal, ground, with R = 0.6, T = 0.15, E = 0.3 and constants
// spike 0.3, lobe 0.3, backscatter 0.1 (Lambertian 0.3): reflected
// specularly 0.6 * 0.7, diffusely 0.6 * 0.3, transmitted straight through
// 0.15 (direction unchanged), detected 0.25 * 0.3, absorbed 0.25 * 0.7;
// every photon in exactly one class (R + T + A = 1), each fraction within
// 5 binomial sigma of 1e5 photons; every reflected photon heads back out.
TEST(UnifiedSurface, MetalBookkeepingAddsUpToOne) {
  SurfaceInput s = unified(kMetal, kGround, 0.2);
  s.reflectivity = Property::constant(0.6);
  s.transmittance = Property::constant(0.15);
  s.efficiency = Property::constant(0.3);
  s.specular_spike = Property::constant(0.3);
  s.specular_lobe = Property::constant(0.3);
  s.backscatter = Property::constant(0.1);
  UnifiedPlane plane(s, 1.0, 1.0, 420);
  const Vec3 d = UnifiedPlane::direction(0.5);
  const int n = 100000;
  int specular = 0, diffuse = 0, transmit = 0, detect = 0, absorb = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = plane.shoot(0.5, i);
    if (p.history == (history::reflect_specular | history::no_hit) && p.direction.z < 0) {
      ++specular;
    } else if (p.history == (history::reflect_diffuse | history::no_hit) && p.direction.z < 0) {
      ++diffuse;
    } else if (p.history == (history::surface_transmit | history::no_hit)) {
      ++transmit;
      ASSERT_EQ(p.direction.x, d.x);
      ASSERT_EQ(p.direction.z, d.z);
      ASSERT_EQ(p.polarization.y, 1.0f);
    } else if (p.history == history::surface_detect) {
      ++detect;
    } else if (p.history == history::surface_absorb) {
      ++absorb;
    }
  }
  EXPECT_EQ(specular + diffuse + transmit + detect + absorb, n);
  expect_binomial(specular, n, 0.6 * 0.7, "specular");
  expect_binomial(diffuse, n, 0.6 * 0.3, "diffuse");
  expect_binomial(transmit, n, 0.15, "transmit");
  expect_binomial(detect, n, 0.25 * 0.3, "detect");
  expect_binomial(absorb, n, 0.25 * 0.7, "absorb");
}

// TRANSMITTANCE T on a dielectric_dielectric surface (R = 0.5, T = 0.4):
// a photon passes straight through (SURFACE_TRANSMIT, direction unchanged)
// with probability T and is absorbed with 1 - R - T; the rest meets the
// boundary between the media, where Geant4 then refracts with probability
// T instead of the Fresnel value: refracted (Snell, no bit) R T = 0.2,
// reflected R (1 - T) = 0.3. 1e5 photons, 5 binomial sigma.
TEST(UnifiedSurface, TransmittanceTransmitsStraightThrough) {
  SurfaceInput s = unified(kDielectric, kPolished, 0.0);
  s.reflectivity = Property::constant(0.5);
  s.transmittance = Property::constant(0.4);
  UnifiedPlane plane(s, 1.0, 1.5, 421);
  const double theta = 0.7;
  const Vec3 d = UnifiedPlane::direction(theta);
  const double sin_t = std::sin(theta) / 1.5;
  const int n = 100000;
  int straight = 0, absorb = 0, refract = 0, reflect = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = plane.shoot(theta, i);
    if (p.history == (history::surface_transmit | history::no_hit)) {
      ++straight;
      ASSERT_EQ(p.direction.x, d.x);
      ASSERT_EQ(p.direction.z, d.z);
    } else if (p.history == history::surface_absorb) {
      ++absorb;
    } else if (p.history == history::no_hit) {
      ++refract;
      ASSERT_NEAR(p.direction.x, sin_t, 2e-6);
      ASSERT_GT(p.direction.z, 0.0f);
    } else if (p.history == (history::reflect_specular | history::no_hit)) {
      ++reflect;
      ASSERT_NEAR(p.direction.z, -std::cos(theta), 1e-6);
    }
  }
  EXPECT_EQ(straight + absorb + refract + reflect, n);
  expect_binomial(straight, n, 0.4, "straight through");
  expect_binomial(absorb, n, 0.1, "absorbed");
  expect_binomial(refract, n, 0.2, "refracted");
  expect_binomial(reflect, n, 0.3, "reflected");
}

// A polished unified dielectric_dielectric surface (R = 1) is the Fresnel
// boundary: photons polarized at 45 degrees reflect with (R_s + R_p)/2 and
// refract by Snell's law. 1e5 photons, 5 binomial sigma.
TEST(UnifiedSurface, PolishedDielectricEqualsFresnel) {
  UnifiedPlane plane(unified(kDielectric, kPolished, 0.0), 1.0, 1.5, 422);
  const double theta = 0.8;
  const Vec3 d = UnifiedPlane::direction(theta);
  const Vec3 e45 = normalize(Vec3{0, 1, 0} + normalize(cross(d, Vec3{0, 1, 0})));
  const int n = 100000;
  int reflected = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = plane.shoot(theta, i, e45);
    if (p.direction.z < 0) {
      ++reflected;
      ASSERT_EQ(p.history, history::reflect_specular | history::no_hit);
    } else {
      ASSERT_EQ(p.history, history::no_hit);
      ASSERT_NEAR(p.direction.x, std::sin(theta) / 1.5, 2e-6);
    }
  }
  expect_binomial(reflected, n, 0.5 * (rs2(theta, 1, 1.5) + rp2(theta, 1, 1.5)), "reflected");
}

// A ground dielectric_dielectric surface (sigma_alpha = 0.3, spike
// reflections) at normal incidence: each photon meets one facet of slope
// alpha and refracts through it with the Fresnel probability of incidence
// angle alpha, 1 - (R_s + R_p)/2 for random polarizations; so the
// transmitted fraction is that averaged over the facet density (numerical
// integration), and every reflected photon leaves along the specular
// direction. 1e5 photons, 5 binomial sigma.
TEST(UnifiedSurface, GroundDielectricAveragesFresnelOverFacets) {
  const double sigma = 0.3;
  SurfaceInput s = unified(kDielectric, kGround, sigma);
  s.specular_spike = Property::constant(1.0);
  UnifiedPlane plane(s, 1.0, 1.5, 423);
  const auto density = [&](double a) { return facet_density(a, sigma); };
  const double transmitted_expected =
      integrate(
          [&](double a) { return (1 - 0.5 * (rs2(a, 1, 1.5) + rp2(a, 1, 1.5))) * density(a); },
          1e-9, M_PI / 2) /
      integrate(density, 0, M_PI / 2);
  Random pol(424, 0, 0);
  const int n = 100000;
  int transmitted = 0;
  double spread = 0;
  for (int i = 0; i < n; ++i) {
    const Photon p = plane.shoot(0.0, i, pol.perpendicular({0, 0, 1}));
    ASSERT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-5f);
    if (p.direction.z > 0) {
      ++transmitted;
      ASSERT_EQ(p.history, history::no_hit);
      spread += 1 - p.direction.z;
    } else {
      ASSERT_EQ(p.history, history::reflect_specular | history::no_hit);
      ASSERT_EQ(p.direction.z, -1.0f);
    }
  }
  expect_binomial(transmitted, n, transmitted_expected, "transmitted through facets");
  EXPECT_GT(spread / transmitted, 1e-3);  // refraction through tilted facets spreads the beam
}

// Light trapped by total internal reflection behind a polished surface
// (glass -> air at 0.9 rad, beyond the critical angle 0.73 rad) escapes
// through a ground one, whose facets bring some photons below the critical
// angle; with a mix of reflection kinds every photon still ends on one side
// of the surface with a unit transverse polarization.
TEST(UnifiedSurface, GroundSurfaceLetsTrappedLightOut) {
  UnifiedPlane polished(unified(kDielectric, kPolished, 0.0), 1.5, 1.0, 425);
  for (int i = 0; i < 2000; ++i) ASSERT_LT(polished.shoot(0.9, i).direction.z, 0.0f);
  SurfaceInput s = unified(kDielectric, kGround, 0.3);
  s.specular_spike = Property::constant(0.2);
  s.specular_lobe = Property::constant(0.3);
  s.backscatter = Property::constant(0.1);
  UnifiedPlane ground(s, 1.5, 1.0, 426);
  int out = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const Photon p = ground.shoot(0.9, i);
    ASSERT_TRUE(isfinite(p.direction) && isfinite(p.polarization));
    ASSERT_NEAR(norm(p.polarization), 1.0f, 1e-5f);
    ASSERT_NEAR(dot(p.polarization, p.direction), 0.0f, 1e-5f);
    // The last interaction sets the bit: a photon may pass out and back in
    // through two facets (no bit) or out, back and off a facet on the far
    // side (a reflection bit, yet outside).
    ASSERT_EQ(p.history & ~(history::reflect_specular | history::reflect_diffuse), history::no_hit);
    out += p.direction.z > 0 ? 1 : 0;
  }
  EXPECT_GT(out, n / 20);
  EXPECT_LT(out, n);
}

// ---------------------------------------------------- dichroic transmission

// A dichroic surface's transmit table is the whole transmission
// probability: between indices 1.0 and 1.5 (where the Fresnel step would
// reflect R_s = 0.08 of the s-polarized light at 0.6 rad) the transmitted
// fraction is T = 0.7, refracted by Snell's law with SURFACE_TRANSMIT, and
// reflected R = 0.2. chroma_compat restores Chroma's extra Fresnel step:
// transmitted T (1 - R_s), reflected R + T R_s. 1e5 photons, 5 sigma.
TEST(DichroicSurface, TransmitTableIsTheWholeTransmission) {
  SurfaceInput s;
  s.name = "dichroic";
  s.model = SurfaceModel::dichroic;
  s.angles = {0.0, 1.0};
  s.reflect = {Property::constant(0.2), Property::constant(0.2)};
  s.transmit = {Property::constant(0.7), Property::constant(0.7)};
  const double theta = 0.6;
  const double sin_t = std::sin(theta) / 1.5;
  const double r_s = rs2(theta, 1.0, 1.5);
  for (const bool compat : {false, true}) {
    UnifiedPlane plane(s, 1.0, 1.5, compat ? 431 : 430, compat);
    const int n = 100000;
    int transmitted = 0, reflected = 0, absorbed = 0;
    for (int i = 0; i < n; ++i) {
      const Photon p = plane.shoot(theta, i);
      if (p.direction.z > 0 && p.history == (history::surface_transmit | history::no_hit)) {
        ++transmitted;
        ASSERT_NEAR(p.direction.x, sin_t, 2e-6);
        ASSERT_NEAR(std::fabs(p.polarization.y), 1.0f, 1e-6f);
      } else if (p.direction.z < 0 && (p.history & history::reflect_specular)) {
        ++reflected;
      } else if (p.history == history::surface_absorb) {
        ++absorbed;
      }
    }
    const std::string what = compat ? " (chroma_compat)" : "";
    EXPECT_EQ(transmitted + reflected + absorbed, n) << what;
    expect_binomial(transmitted, n, compat ? 0.7 * (1 - r_s) : 0.7, "transmitted" + what);
    expect_binomial(reflected, n, compat ? 0.2 + 0.7 * r_s : 0.2, "reflected" + what);
    expect_binomial(absorbed, n, 0.1, "absorbed" + what);
  }
}

// ------------------------------------------------------- detector files

const char* kUnifiedMaterials = R"(
[[material]]
name = "water"
refractive_index = 1.33
absorption_length = 1e7
scattering_length = 1e7
)";

std::string unified_file(const std::string& surface) {
  return std::string(kUnifiedMaterials) + surface + R"(
[[solid]]
name = "box"
shape = "box"
size = [10, 10, 10]
inner = "water"
outer = "water"
surface = "s"
)";
}

std::string unified_error(const std::string& surface) {
  try {
    Detector::parse(unified_file(surface), "unified.toml");
  } catch (const SetupError& e) {
    return e.what();
  }
  return "no error";
}

TEST(UnifiedSurface, DetectorFileSpelling) {
  const Detector d = Detector::parse(unified_file(R"(
[[surface]]
name = "s"
model = "unified"
type = "dielectric_metal"
finish = "ground"
sigma_alpha = 0.12
reflectivity = [[300, 0.8], [500, 0.9]]
efficiency = 0.25
transmittance = 0.05
specular_spike = 0.1
specular_lobe = 0.6
backscatter = 0.2
)"),
                                     "unified.toml");
  const SurfaceData& s = d.tables().surfaces()[0];
  EXPECT_EQ(s.model, SurfaceModel::unified);
  EXPECT_EQ(s.type, SurfaceType::dielectric_metal);
  EXPECT_EQ(s.finish, SurfaceFinish::ground);
  EXPECT_FLOAT_EQ(s.sigma_alpha, 0.12f);
  const GridPoint at400 = wavelength_grid_point(400);
  EXPECT_NEAR(lookup(s.reflectivity, at400), 0.85f, 1e-6f);
  EXPECT_NEAR(lookup(s.efficiency, at400), 0.25f, 1e-6f);
  EXPECT_NEAR(lookup(s.transmittance, at400), 0.05f, 1e-6f);
  EXPECT_NEAR(lookup(s.specular_spike, at400), 0.1f, 1e-6f);
  EXPECT_NEAR(lookup(s.specular_lobe, at400), 0.6f, 1e-6f);
  EXPECT_NEAR(lookup(s.backscatter, at400), 0.2f, 1e-6f);
  // Defaults: dielectric_dielectric, polished, reflectivity 1.
  const Detector plain =
      Detector::parse(unified_file("[[surface]]\nname = \"s\"\nmodel = \"unified\"\n"), "u.toml");
  const SurfaceData& p = plain.tables().surfaces()[0];
  EXPECT_EQ(p.type, SurfaceType::dielectric_dielectric);
  EXPECT_EQ(p.finish, SurfaceFinish::polished);
  EXPECT_EQ(lookup(p.reflectivity, at400), 1.0f);
  EXPECT_EQ(lookup(p.transmittance, at400), 0.0f);

  const std::string head = "[[surface]]\nname = \"s\"\nmodel = \"unified\"\n";
  std::string m = unified_error(head + "type = \"dielectric_LUT\"\n");
  EXPECT_NE(m.find("use dielectric_dielectric or dielectric_metal"), std::string::npos) << m;
  EXPECT_NE(m.find("unified.toml:"), std::string::npos) << m;
  m = unified_error(head + "finish = \"etched\"\n");
  EXPECT_NE(m.find("use polished, ground, polishedfrontpainted or groundfrontpainted"),
            std::string::npos)
      << m;
  m = unified_error(head + "type = \"dielectric_metal\"\nfinish = \"groundfrontpainted\"\n");
  EXPECT_NE(m.find("painted finishes belong to dielectric_dielectric"), std::string::npos) << m;
  m = unified_error(head + "sigma_alpha = -0.1\n");
  EXPECT_NE(m.find("sigma_alpha must be finite and >= 0"), std::string::npos) << m;
  m = unified_error(head + "reflectivity = 0.7\ntransmittance = 0.4\n");
  EXPECT_NE(m.find("reflectivity + transmittance is 1.1"), std::string::npos) << m;
  m = unified_error(head + "specular_spike = 0.7\nbackscatter = 0.4\n");
  EXPECT_NE(m.find("specular_spike + specular_lobe + backscatter is 1.1"), std::string::npos) << m;
  m = unified_error(head + "efficiency = 1.5\n");
  EXPECT_NE(m.find("efficiency is 1.5"), std::string::npos) << m;
  m = unified_error("[[surface]]\nname = \"s\"\nabsorb = 0.5\nsigma_alpha = 0.1\n");
  EXPECT_NE(m.find("belongs to the unified model"), std::string::npos) << m;
}

}  // namespace
}  // namespace acheron::optics
