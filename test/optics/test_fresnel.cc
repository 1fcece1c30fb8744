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

// Analytic amplitude coefficients in the sine/tangent form (independent of
// the cos form under test), in the basis s_hat, p_hat = k x s_hat of each
// wave: r_s = -sin(i - t)/sin(i + t), r_p = tan(i - t)/tan(i + t),
// t_s = 2 sin t cos i / sin(i + t), t_p = t_s / cos(i - t). Oblique
// incidence below the critical angle.
struct Amplitudes {
  double r_s, r_p, t_s, t_p, sin_t;
};
Amplitudes analytic_amplitudes(double i, double n1, double n2) {
  Amplitudes a;
  a.sin_t = n1 / n2 * std::sin(i);
  const double t = std::asin(a.sin_t);
  a.r_s = -std::sin(i - t) / std::sin(i + t);
  a.r_p = std::tan(i - t) / std::tan(i + t);
  a.t_s = 2 * std::sin(t) * std::cos(i) / std::sin(i + t);
  a.t_p = a.t_s / std::cos(i - t);
  return a;
}

// Expected unit polarization a_s s_hat + a_p (k x s_hat), normalized.
Vec3 expected_polarization(double a_s, double a_p, Vec3 s_hat, Vec3 k) {
  return normalize(static_cast<float>(a_s) * s_hat +
                   static_cast<float>(a_p) * normalize(cross(k, s_hat)));
}

// A beam polarized at 45 degrees to the plane of incidence keeps both
// parts: the reflected fraction is (R_s + R_p)/2 (5 binomial sigma) and
// every reflected (refracted) photon's polarization is the unit vector
// r_s s_hat + r_p p_hat (t_s s_hat + t_p p_hat) of the analytic amplitudes
// (float precision, 2e-5), not pure s or p. Air -> glass and glass -> air
// below the critical angle; 40,000 photons each.
TEST(Fresnel, FortyFiveDegreePolarizationKeepsBothParts) {
  struct Case {
    float n1, n2;
    double i;
  };
  const Case cases[] = {{1.0f, 1.5f, 0.6}, {1.0f, 1.5f, 1.2}, {1.5f, 1.0f, 0.5}};
  std::uint64_t seed = 300;
  for (const Case& c : cases) {
    const std::string what = "n1 " + std::to_string(c.n1) + " i " + std::to_string(c.i);
    const Incidence in = incidence(c.i);
    const Vec3 e45 = normalize(in.s_pol + normalize(cross(in.d, in.s_pol)));
    const Amplitudes a = analytic_amplitudes(c.i, c.n1, c.n2);
    const Vec3 d_reflected{in.d.x, 0, -in.d.z};
    const Vec3 d_refracted{static_cast<float>(a.sin_t), 0,
                           static_cast<float>(-std::sqrt(1 - a.sin_t * a.sin_t))};
    const Vec3 want_r = expected_polarization(a.r_s, a.r_p, in.s_pol, d_reflected);
    const Vec3 want_t = expected_polarization(a.t_s, a.t_p, in.s_pol, d_refracted);
    Random rng(++seed, 0, 0);
    const FresnelBoundary boundary{c.n1, c.n2, false};
    const int n = 40000;
    int reflected = 0;
    for (int k = 0; k < n; ++k) {
      Photon photon;
      photon.direction = in.d;
      photon.polarization = e45;
      boundary(photon, kNormal, rng);
      const Vec3 want = photon.direction.z > 0 ? want_r : want_t;
      reflected += photon.direction.z > 0 ? 1 : 0;
      ASSERT_NEAR(photon.polarization.x, want.x, 2e-5) << what;
      ASSERT_NEAR(photon.polarization.y, want.y, 2e-5) << what;
      ASSERT_NEAR(photon.polarization.z, want.z, 2e-5) << what;
    }
    expect_binomial(reflected, n, 0.5 * (a.r_s * a.r_s + a.r_p * a.r_p), what);
    // Both parts survive: neither pure s nor pure p.
    EXPECT_GT(std::fabs(want_r.y), 0.05f) << what;
    EXPECT_LT(std::fabs(want_r.y), 0.9999f) << what;
    EXPECT_GT(std::fabs(want_t.y), 0.05f) << what;
    EXPECT_LT(std::fabs(want_t.y), 0.9999f) << what;
  }
}

// At Brewster's angle r_p = 0: whatever the incoming polarization, the
// reflected light is linearly polarized along s (degree of s polarization
// |p'.s_hat| = 1 to float precision) and its fraction is R_s (p.s_hat)^2
// averaged, R_s / 2 for random polarizations (5 binomial sigma).
TEST(Fresnel, ReflectionAtBrewsterIsPureS) {
  const double brewster = std::atan(1.5);
  const Incidence in = incidence(brewster);
  Random rng(310, 0, 0);
  const FresnelBoundary boundary{1.0f, 1.5f, false};
  const int n = 40000;
  int reflected = 0;
  for (int k = 0; k < n; ++k) {
    Photon photon;
    photon.direction = in.d;
    photon.polarization = rng.perpendicular(in.d);
    boundary(photon, kNormal, rng);
    if (photon.direction.z > 0) {
      ++reflected;
      ASSERT_NEAR(std::fabs(photon.polarization.y), 1.0f, 1e-5f);
    }
  }
  expect_binomial(reflected, n, 0.5 * analytic_rs(brewster, 1.0, 1.5), "Brewster");
}

// Energy conservation for any polarization: R + T = 1 with
// R = cos^2(psi) R_s + sin^2(psi) R_p and T = (n2 cos t)/(n1 cos i)
// (cos^2(psi) t_s^2 + sin^2(psi) t_p^2) from the engine's coefficients
// (1e-5), and photons polarized at +45 and -45 degrees (the two halves of a
// circular or unpolarized beam) reflect with (R_s + R_p)/2 (5 binomial
// sigma), every photon either reflected or refracted.
TEST(Fresnel, PowerIsConservedForAnyPolarization) {
  for (const auto& np : {std::pair{1.0f, 1.5f}, std::pair{1.5f, 1.0f}, std::pair{1.33f, 1.7f}}) {
    for (int deg = 0; deg < 90; deg += 5) {
      const double i = deg * M_PI / 180;
      const FresnelCoefficients f =
          fresnel_coefficients(static_cast<float>(std::cos(i)), np.first, np.second);
      if (f.total_internal_reflection) {
        EXPECT_EQ(f.r_s * f.r_s, 1.0f);
        EXPECT_EQ(f.r_p * f.r_p, 1.0f);
        continue;
      }
      const double factor = np.second * f.cos_t / (np.first * std::cos(i));
      for (int psi_deg = 0; psi_deg <= 90; psi_deg += 15) {
        const double c2 = std::pow(std::cos(psi_deg * M_PI / 180), 2), s2 = 1 - c2;
        const double r = c2 * f.r_s * f.r_s + s2 * f.r_p * f.r_p;
        const double t = factor * (c2 * f.t_s * f.t_s + s2 * f.t_p * f.t_p);
        EXPECT_NEAR(r + t, 1.0, 1e-5) << "angle " << deg << " psi " << psi_deg;
      }
    }
  }
  const double i = 0.9;
  const Incidence in = incidence(i);
  const Vec3 p_pol = normalize(cross(in.d, in.s_pol));
  Random rng(320, 0, 0);
  const FresnelBoundary boundary{1.0f, 1.5f, false};
  const int n = 40000;
  int reflected = 0, refracted = 0;
  for (int k = 0; k < n; ++k) {
    Photon photon;
    photon.direction = in.d;
    photon.polarization = normalize(in.s_pol + (k % 2 ? 1.0f : -1.0f) * p_pol);
    boundary(photon, kNormal, rng);
    if (photon.direction.z > 0) ++reflected;
    if (photon.direction.z < 0) ++refracted;
  }
  EXPECT_EQ(reflected + refracted, n);
  expect_binomial(reflected, n, 0.5 * (analytic_rs(i, 1.0, 1.5) + analytic_rp(i, 1.0, 1.5)),
                  "+-45 degrees");
}

// Total internal reflection mirrors the polarization geometrically,
// p' = 2 (p.n) n - p, for any incoming polarization (1e-5).
TEST(Fresnel, TotalInternalReflectionMirrorsThePolarization) {
  const Incidence in = incidence(1.0);  // beyond asin(1/1.5) = 0.73
  Random rng(330, 0, 0);
  const FresnelBoundary boundary{1.5f, 1.0f, false};
  for (int k = 0; k < 1000; ++k) {
    Photon photon;
    photon.direction = in.d;
    photon.polarization = rng.perpendicular(in.d);
    const Vec3 p = photon.polarization;
    const Vec3 want = (2.0f * dot(p, kNormal)) * kNormal - p;
    boundary(photon, kNormal, rng);
    ASSERT_GT(photon.direction.z, 0.0f);
    ASSERT_NEAR(photon.polarization.x, want.x, 1e-5f);
    ASSERT_NEAR(photon.polarization.y, want.y, 1e-5f);
    ASSERT_NEAR(photon.polarization.z, want.z, 1e-5f);
  }
}

// At and within 1e-6 rad of normal incidence, where s and p are
// degenerate: no NaN; a reflected photon's polarization is -p (n2 > n1, the
// sign of r) or +p (n2 < n1), a refracted one keeps p (1e-5).
TEST(Fresnel, NormalIncidenceKeepsThePolarizationLine) {
  for (const double i : {0.0, 1e-6, 1e-3}) {
    for (const auto& np : {std::pair{1.0f, 1.5f}, std::pair{1.5f, 1.0f}}) {
      const Incidence in = incidence(i);
      Random rng(340, 0, 0);
      const FresnelBoundary boundary{np.first, np.second, false};
      int reflected = 0;
      for (int k = 0; k < 20000; ++k) {
        Photon photon;
        photon.direction = in.d;
        photon.polarization = rng.perpendicular(in.d);
        const Vec3 p = photon.polarization;
        boundary(photon, kNormal, rng);
        ASSERT_TRUE(isfinite(photon.direction) && isfinite(photon.polarization));
        ASSERT_NEAR(dot(photon.polarization, photon.direction), 0.0f, 1e-5f);
        const float along = dot(photon.polarization, p);
        if (photon.direction.z > 0) {
          ++reflected;
          ASSERT_NEAR(along, np.second > np.first ? -1.0f : 1.0f, 1e-5f) << i;
        } else {
          ASSERT_NEAR(along, 1.0f, 1e-5f) << i;
        }
      }
      expect_binomial(reflected, 20000, 0.04, "normal incidence " + std::to_string(i));
    }
  }
}

// chroma_compat restores Chroma's collapse to pure s or pure p: a photon
// polarized at 45 degrees leaves polarized along s_hat or in the plane of
// incidence, about half of each.
TEST(Fresnel, ChromaCompatCollapsesThePolarization) {
  const Incidence in = incidence(0.7);
  const Vec3 e45 = normalize(in.s_pol + normalize(cross(in.d, in.s_pol)));
  Random rng(350, 0, 0);
  const FresnelBoundary boundary{1.0f, 1.5f, true};
  const int n = 20000;
  int pure_s = 0;
  for (int k = 0; k < n; ++k) {
    Photon photon;
    photon.direction = in.d;
    photon.polarization = e45;
    boundary(photon, kNormal, rng);
    const float y = std::fabs(photon.polarization.y);
    ASSERT_TRUE(std::fabs(y - 1.0f) < 1e-6f || y < 1e-6f);
    pure_s += y > 0.5f ? 1 : 0;
  }
  expect_binomial(pure_s, n, 0.5, "compat s branch");
}

}  // namespace
}  // namespace acheron::optics
