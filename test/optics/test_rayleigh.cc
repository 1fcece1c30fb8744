// Rayleigh scattering (photon-physics.md §6 and §11 item 4).
#include "acheron/optics/Rayleigh.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "OpticsTestSupport.hh"

namespace acheron::optics {
namespace {

using testing::expect_binomial;
using testing::expect_mean;
using testing::expect_shape;
using testing::Histogram;

// CDFs of the two angular laws: x = cos(psi) to the old polarization with
// density 3/4 (1 - x^2), and c = cos(theta) to the old direction with
// density 3/8 (1 + c^2).
double dipole_cdf(double x) {
  return (2 + 3 * x - x * x * x) / 4;
}
double rayleigh_cdf(double c) {
  return (4 + 3 * c + c * c * c) / 8;
}

TEST(Rayleigh, InverseCdfIsExact) {
  EXPECT_NEAR(rayleigh_cos_psi(0x1p-24f), -1.0f, 1e-3f);
  EXPECT_NEAR(rayleigh_cos_psi(1.0f - 0x1p-24f), 1.0f, 1e-3f);
  float previous = -2;
  for (int i = 1; i < 1000; ++i) {
    const float u = i / 1000.0f;
    const float x = rayleigh_cos_psi(u);
    EXPECT_NEAR(dipole_cdf(x), u, 2e-6) << "u " << u;
    EXPECT_GT(x, previous);
    previous = x;
  }
}

// 1e5 scatters of a photon along +z polarized along +x: both angular laws
// (chi-square p > 1e-3), <(p.d')^2> = 1/5 within 5 standard errors (the
// population sd of x^2 under the dipole law is sqrt(3/35 - 1/25)), the
// azimuth about p uniform, and p' a unit vector perpendicular to d' in the
// plane of p and d'.
TEST(Rayleigh, AngularLaws) {
  const Vec3 d{0, 0, 1}, p{1, 0, 0};
  Random rng(31, 0, 0);
  Histogram cos_psi(-1, 1, 40), cos_theta(-1, 1, 40), azimuth(-M_PI, M_PI, 40);
  double sum_x2 = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    Photon photon;
    photon.direction = d;
    photon.polarization = p;
    RayleighScatter{}(photon, rng);
    const Vec3 d2 = photon.direction, p2 = photon.polarization;
    ASSERT_NEAR(norm(d2), 1.0f, 1e-5f);
    ASSERT_NEAR(norm(p2), 1.0f, 1e-5f);
    ASSERT_NEAR(dot(p2, d2), 0.0f, 1e-5f);
    ASSERT_NEAR(dot(cross(p, d2), p2), 0.0f, 1e-5f);  // p' in the plane of p and d'
    const double x = dot(p, d2);
    cos_psi.fill(x);
    cos_theta.fill(dot(d, d2));
    azimuth.fill(std::atan2(d2.z, d2.y));  // azimuth about p = x
    sum_x2 += x * x;
  }
  expect_shape(cos_psi, dipole_cdf, "cos psi to the old polarization");
  expect_shape(cos_theta, rayleigh_cdf, "cos theta to the old direction");
  expect_shape(
      azimuth, [](double a) { return (a + M_PI) / (2 * M_PI); }, "azimuth about p");
  expect_mean(sum_x2, n, 0.2, std::sqrt(3.0 / 35 - 1.0 / 25), "<(p.d')^2>");
}

// Chroma's test_rayleigh.py through the real stepping loop: 1e5 photons at
// 400 nm along +z polarized along x from the centre of a 100 mm water box,
// max_steps = 1. Scattered photons follow (1 + cos^2 theta), the scatter
// points are exponential in L_sca (truncated at the wall, 50 mm), and the
// scattered fraction is 1 - exp(-50/L_sca); absorption (L_abs = 1e9 mm)
// changes it by < 1e-7, far inside the tolerance.
TEST(Rayleigh, ChromaWaterBoxThroughPropagate) {
  const double l_sca = 20;
  OpticsInput in;
  in.materials.push_back(MaterialInput::vacuum());
  in.materials.push_back(testing::constant_material("water", 1.33, 1e9, l_sca));
  const OpticsTables tables(in);
  testing::Scene scene;
  scene.add_box({-50, -50, -50}, {50, 50, 50}, 1, 0);
  ParamsView params = scene.view(tables, 2024);
  params.max_steps = 1;

  const int n = 100000;
  Histogram cos_theta(-1, 1, 40), depth(0, 50, 50);
  int scattered = 0;
  Diagnostics diag;
  for (int i = 0; i < n; ++i) {
    Photon photon = testing::make_photon({0, 0, 0}, {0, 0, 1}, {1, 0, 0}, 400, i);
    propagate(photon, params, scene.tracer, diag);
    if (photon.history & history::rayleigh_scatter) {
      ++scattered;
      cos_theta.fill(photon.direction.z);
      depth.fill(photon.position.z);
    }
  }
  EXPECT_EQ(diag.max_steps, static_cast<std::uint64_t>(n));
  expect_binomial(scattered, n, 1 - std::exp(-50 / l_sca), "scattered fraction");
  expect_shape(cos_theta, rayleigh_cdf, "scattering angle");
  expect_shape(
      depth, [&](double z) { return 1 - std::exp(-z / l_sca); }, "scatter depth");
}

}  // namespace
}  // namespace acheron::optics
