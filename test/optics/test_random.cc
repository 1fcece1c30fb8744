#include "acheron/optics/Random.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "OpticsTestSupport.hh"

namespace acheron::optics {
namespace {

using testing::expect_mean;
using testing::expect_shape;
using testing::Histogram;

// Known-answer vectors of Random123's tests/kat_vectors, "philox4x32 10" lines
// (counter words, key words, expected output words).
TEST(Philox, KnownAnswers) {
  struct Vector {
    Philox4x32::Counter counter;
    Philox4x32::Key key;
    std::uint32_t expected[4];
  };
  const Vector vectors[] = {
      {{{0u, 0u, 0u, 0u}}, {{0u, 0u}}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       {{0xffffffffu, 0xffffffffu}},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       {{0xa4093822u, 0x299f31d0u}},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Vector& v : vectors) {
    const Philox4x32::Counter out = Philox4x32::apply(v.counter, v.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], v.expected[i]) << "word " << i;
  }
}

TEST(Random, UniformIsStrictlyInsideTheUnitInterval) {
  EXPECT_GT(u32_to_uniform(0u), 0.0f);
  EXPECT_LT(u32_to_uniform(0xffffffffu), 1.0f);
  EXPECT_EQ(u32_to_uniform(0u), 0x1p-24f);
  EXPECT_EQ(u32_to_uniform(0xffffffffu), 1.0f - 0x1p-24f);
  EXPECT_TRUE(std::isfinite(-std::log(u32_to_uniform(0u))));
  EXPECT_GT(-std::log(u32_to_uniform(0xffffffffu)), 0.0f);
}

TEST(Random, SameKeyGivesSameStream) {
  Random a(42, 7, 9), b(42, 7, 9);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.next_u32(), b.next_u32());
  EXPECT_EQ(a.draws(), 1000u);
}

TEST(Random, DifferentKeysGiveDifferentStreams) {
  auto first_words = [](Random r) {
    std::vector<std::uint32_t> w;
    for (int i = 0; i < 8; ++i) w.push_back(r.next_u32());
    return w;
  };
  const auto base = first_words(Random(42, 7, 9));
  EXPECT_NE(base, first_words(Random(42, 7, 10)));                // photon index
  EXPECT_NE(base, first_words(Random(42, 8, 9)));                 // event
  EXPECT_NE(base, first_words(Random(43, 7, 9)));                 // seed, low word
  EXPECT_NE(base, first_words(Random(42 + (1ull << 32), 7, 9)));  // seed, high word
  // Swapping event and photon index must not alias.
  EXPECT_NE(first_words(Random(42, 7, 9)), first_words(Random(42, 9, 7)));
}

// 1e5 draws; mean within 5 standard errors (sd of U(0,1) is 1/sqrt(12)) and
// a flat 100-bin histogram (chi-square p > 1e-3).
TEST(Random, UniformIsFlat) {
  Random rng(1, 2, 3);
  Histogram h(0, 1, 100);
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = rng.uniform();
    ASSERT_GT(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    h.fill(u);
  }
  expect_mean(sum, n, 0.5, 1 / std::sqrt(12.0), "uniform mean");
  expect_shape(
      h, [](double x) { return x; }, "uniform");
}

// Isotropy: cos(theta) uniform on [-1, 1] and azimuth uniform (chi-square),
// unit length to float precision.
TEST(Random, UniformSphereIsIsotropic) {
  Random rng(5, 0, 0);
  Histogram cos_theta(-1, 1, 50), phi(-M_PI, M_PI, 50);
  for (int i = 0; i < 100000; ++i) {
    const Vec3 v = rng.uniform_sphere();
    ASSERT_NEAR(norm(v), 1.0f, 1e-6f);
    cos_theta.fill(v.z);
    phi.fill(std::atan2(v.y, v.x));
  }
  expect_shape(
      cos_theta, [](double x) { return (x + 1) / 2; }, "cos theta");
  expect_shape(
      phi, [](double x) { return (x + M_PI) / (2 * M_PI); }, "phi");
}

// Perpendicular vectors: unit, orthogonal to d (float precision), azimuth
// uniform about d (chi-square), including d = +-z where bases often fail.
TEST(Random, PerpendicularIsUnitOrthogonalAndUniform) {
  Random rng(6, 0, 0);
  const Vec3 dirs[] = {{0, 0, 1}, {0, 0, -1}, {1, 0, 0}, normalize(Vec3{0.3f, -0.5f, 0.8f})};
  for (const Vec3 d : dirs) {
    Vec3 b1, b2;
    orthonormal_basis(d, b1, b2);
    EXPECT_NEAR(dot(b1, d), 0.0f, 1e-6f);
    EXPECT_NEAR(dot(b2, d), 0.0f, 1e-6f);
    EXPECT_NEAR(dot(b1, b2), 0.0f, 1e-6f);
    Histogram azimuth(-M_PI, M_PI, 40);
    for (int i = 0; i < 20000; ++i) {
      const Vec3 p = rng.perpendicular(d);
      ASSERT_NEAR(norm(p), 1.0f, 1e-6f);
      ASSERT_NEAR(dot(p, d), 0.0f, 1e-6f);
      azimuth.fill(std::atan2(dot(p, b2), dot(p, b1)));
    }
    expect_shape(
        azimuth, [](double x) { return (x + M_PI) / (2 * M_PI); }, "azimuth");
  }
}

}  // namespace
}  // namespace acheron::optics
