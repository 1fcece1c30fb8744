// Fresnel boundary (photon-physics.md §8 and §11 item 3).
#include "acheron/optics/Fresnel.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "OpticsTestSupport.hh"

namespace acheron::optics {
namespace {

using testing::expect_binomial;

// Analytic reflectances in Chroma's sine/tangent form (independent of the
// cos form under test); normal incidence uses ((n1 - n2)/(n1 + n2))^2.
double analytic_rs(double i, double n1, double n2) {
  const double s = n1 / n2 * std::sin(i);
  if (s >= 1) return 1;
  if (i == 0) return std::pow((n1 - n2) / (n1 + n2), 2);
  const double t = std::asin(s);
  return std::pow(std::sin(i - t) / std::sin(i + t), 2);
}
double analytic_rp(double i, double n1, double n2) {
  const double s = n1 / n2 * std::sin(i);
  if (s >= 1) return 1;
  if (i == 0) return std::pow((n1 - n2) / (n1 + n2), 2);
  const double t = std::asin(s);
  return std::pow(std::tan(i - t) / std::tan(i + t), 2);
}

// The boundary is the plane z = 0 with the normal +z pointing back into the
// current medium, so the photon travels down at incidence angle i in the xz
// plane; the plane of incidence normal is -y.
struct Incidence {
  Vec3 d, s_pol, p_pol;
};
Incidence incidence(double i) {
  Incidence in;
  in.d = Vec3{static_cast<float>(std::sin(i)), 0, static_cast<float>(-std::cos(i))};
  in.s_pol = Vec3{0, 1, 0};
  in.p_pol = normalize(cross(in.s_pol, in.d));
  return in;
}
constexpr Vec3 kNormal{0, 0, 1};

enum class Pol { s, p, unpolarized };

// Reflected count of n photons; checks every outcome's geometry on the way:
// R + T = 1, mirror or Snell direction in the plane of incidence, unit
// polarization perpendicular to the new direction.
int count_reflections(double i, float n1, float n2, Pol pol, int n, std::uint64_t seed,
                      bool chroma_compat = false) {
  const Incidence in = incidence(i);
  Random rng(seed, 0, 0);
  const FresnelBoundary boundary{n1, n2, chroma_compat};
  const double sin_t = n1 / n2 * std::sin(i);
  int reflected = 0;
  for (int k = 0; k < n; ++k) {
    Photon photon;
    photon.direction = in.d;
    photon.polarization = pol == Pol::s   ? in.s_pol
                          : pol == Pol::p ? in.p_pol
                                          : rng.perpendicular(in.d);
    EXPECT_EQ(boundary(photon, kNormal, rng), Action::next_step);
    const Vec3 d = photon.direction;
    EXPECT_NEAR(d.y, 0.0f, 1e-6f);  // stays in the plane of incidence
    EXPECT_NEAR(norm(photon.polarization), 1.0f, 1e-5f);
    EXPECT_NEAR(dot(photon.polarization, d), 0.0f, 1e-5f);
    if (d.z > 0) {  // reflected: equal angles
      ++reflected;
      EXPECT_TRUE(photon.history & history::reflect_specular);
      EXPECT_NEAR(d.x, std::sin(i), 1e-6);
      EXPECT_NEAR(d.z, std::cos(i), 1e-6);
    } else {  // refracted: Snell
      EXPECT_EQ(photon.history, 0u);
      EXPECT_NEAR(d.x, sin_t, 2e-6);
      EXPECT_NEAR(d.z, -std::sqrt(1 - sin_t * sin_t), 2e-6);
    }
    if (::testing::Test::HasFailure()) break;
  }
  return reflected;
}

// R(i) for s, p and unpolarized light, air -> glass and glass -> air, over a
// set of angles; 20,000 photons per point, each count within 5 binomial sigma.
TEST(Fresnel, ReflectanceMatchesAnalyticCurves) {
  const double degrees[] = {0, 10, 30, 45, 56.3, 60, 75, 85, 89};
  const float pairs[][2] = {{1.0f, 1.5f}, {1.5f, 1.0f}, {1.33f, 1.7f}};
  const int n = 20000;
  std::uint64_t seed = 100;
  for (const auto& np : pairs) {
    for (const double deg : degrees) {
      const double i = deg * M_PI / 180;
      const double rs = analytic_rs(i, np[0], np[1]);
      const double rp = analytic_rp(i, np[0], np[1]);
      const std::string what = "n1 " + std::to_string(np[0]) + " n2 " + std::to_string(np[1]) +
                               " i " + std::to_string(deg);
      expect_binomial(count_reflections(i, np[0], np[1], Pol::s, n, ++seed), n, rs, what + " s");
      expect_binomial(count_reflections(i, np[0], np[1], Pol::p, n, ++seed), n, rp, what + " p");
      expect_binomial(count_reflections(i, np[0], np[1], Pol::unpolarized, n, ++seed), n,
                      0.5 * (rs + rp), what + " unpolarized");
    }
  }
}

TEST(Fresnel, CoefficientsAtSpecialAngles) {
  // Normal incidence: both equal ((n1 - n2)/(n1 + n2))^2 = 0.04 for 1 -> 1.5.
  const FresnelCoefficients f0 = fresnel_coefficients(1.0f, 1.0f, 1.5f);
  EXPECT_NEAR(f0.r_s * f0.r_s, 0.04, 1e-7);
  EXPECT_NEAR(f0.r_p * f0.r_p, 0.04, 1e-7);
  // Brewster's angle atan(n2/n1): R_p = 0 (float rounding only).
  const float brewster = std::atan(1.5f);
  const FresnelCoefficients fb = fresnel_coefficients(std::cos(brewster), 1.0f, 1.5f);
  EXPECT_NEAR(fb.r_p, 0.0f, 1e-6f);
  EXPECT_GT(fb.r_s * fb.r_s, 0.1f);
  // Critical angle asin(n2/n1) for 1.5 -> 1: just below transmits, beyond is TIR.
  const double critical = std::asin(1.0 / 1.5);
  EXPECT_FALSE(fresnel_coefficients(static_cast<float>(std::cos(critical - 1e-3)), 1.5f, 1.0f)
                   .total_internal_reflection);
  EXPECT_TRUE(fresnel_coefficients(static_cast<float>(std::cos(critical + 1e-3)), 1.5f, 1.0f)
                  .total_internal_reflection);
  // Grazing incidence from the denser side of an index-matched boundary stays finite.
  const FresnelCoefficients fg = fresnel_coefficients(0.0f, 1.0f, 1.0f);
  EXPECT_TRUE(std::isfinite(fg.r_s) && std::isfinite(fg.r_p));
}

// Brewster: p-polarized light is never reflected (R_p is zero up to float
// rounding, far below the 2^-24 resolution of a uniform draw).
TEST(Fresnel, BrewsterAngleReflectsNoPPolarizedLight) {
  const double brewster = std::atan(1.5);
  EXPECT_EQ(count_reflections(brewster, 1.0f, 1.5f, Pol::p, 20000, 7), 0);
  const double rs = analytic_rs(brewster, 1.0, 1.5);
  expect_binomial(count_reflections(brewster, 1.0f, 1.5f, Pol::s, 20000, 8), 20000, rs,
                  "s at Brewster");
}

// Beyond the critical angle every photon reflects, for any polarization.
TEST(Fresnel, TotalInternalReflectionBeyondCriticalAngle) {
  const double critical = std::asin(1.0 / 1.5);
  for (const double extra : {0.01, 0.2, 0.6}) {
    for (const Pol pol : {Pol::s, Pol::p, Pol::unpolarized}) {
      EXPECT_EQ(count_reflections(critical + extra, 1.5f, 1.0f, pol, 5000, 9), 5000);
    }
  }
}

// Exact normal incidence: 4 % reflection at air -> glass with no NaN (the
// plane of incidence falls back to the polarization); chroma_compat
// reproduces Chroma's 0/0 coefficients, where every photon transmits.
TEST(Fresnel, NormalIncidence) {
  const int n = 100000;
  expect_binomial(count_reflections(0.0, 1.0f, 1.5f, Pol::unpolarized, n, 11), n, 0.04,
                  "normal incidence");
  EXPECT_EQ(count_reflections(0.0, 1.0f, 1.5f, Pol::unpolarized, 10000, 12, true), 0);
  // Off normal, chroma_compat changes nothing.
  const double i = 0.5;
  expect_binomial(count_reflections(i, 1.0f, 1.5f, Pol::s, n, 13, true), n,
                  analytic_rs(i, 1.0, 1.5), "compat off normal");
}

// Polarization after the step: s_hat on the s branch; in the plane of
// incidence (perpendicular to s_hat) on the p branch.
TEST(Fresnel, NewPolarization) {
  const Incidence in = incidence(0.7);
  Random rng(21, 0, 0);
  const FresnelBoundary boundary{1.0f, 1.5f, false};
  for (int k = 0; k < 1000; ++k) {
    Photon s_photon;
    s_photon.direction = in.d;
    s_photon.polarization = in.s_pol;
    boundary(s_photon, kNormal, rng);
    EXPECT_NEAR(std::fabs(s_photon.polarization.y), 1.0f, 1e-6f);
    Photon p_photon;
    p_photon.direction = in.d;
    p_photon.polarization = in.p_pol;
    boundary(p_photon, kNormal, rng);
    EXPECT_NEAR(p_photon.polarization.y, 0.0f, 1e-6f);
  }
}

}  // namespace
}  // namespace acheron::optics
