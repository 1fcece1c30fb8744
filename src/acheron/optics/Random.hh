// Counter-based random numbers for per-photon code: Philox4x32-10 keyed by
// (seed, event, photon index), so a photon's stream depends only on its key
// and never on thread count, scheduling or how events are split into batches
// (photon-physics.md §10 deviation 6). Header-only; no allocation, exceptions
// or virtual calls, so host and device code share it.
#pragma once

#include <cmath>
#include <cstdint>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

inline constexpr float kPi = 3.14159265358979323846f;
inline constexpr float kTwoPi = 6.28318530717958647692f;

// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
// as 1, 2, 3", SC11). Constants are the published ones: multipliers M0, M1
// and the Weyl key increments W0 (golden ratio) and W1 (sqrt(3) - 1).
// Verified against the Random123 known-answer vectors in RandomTest.
struct Philox4x32 {
  struct Counter {
    std::uint32_t v[4];
  };
  struct Key {
    std::uint32_t v[2];
  };

  static constexpr std::uint32_t kM0 = 0xD2511F53u;
  static constexpr std::uint32_t kM1 = 0xCD9E8D57u;
  static constexpr std::uint32_t kW0 = 0x9E3779B9u;
  static constexpr std::uint32_t kW1 = 0xBB67AE85u;
  static constexpr int kRounds = 10;

  ACHERON_FUNCTION ACHERON_FORCEINLINE static Counter round(Counter c, Key k) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c.v[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c.v[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
    const auto lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
    const auto lo1 = static_cast<std::uint32_t>(p1);
    return Counter{{hi1 ^ c.v[1] ^ k.v[0], lo1, hi0 ^ c.v[3] ^ k.v[1], lo0}};
  }

  // The 10-round bijection of the counter under the key.
  ACHERON_FUNCTION inline static Counter apply(Counter c, Key k) {
    for (int r = 0; r < kRounds; ++r) {
      if (r > 0) {
        k.v[0] += kW0;
        k.v[1] += kW1;
      }
      c = round(c, k);
    }
    return c;
  }
};

// Maps 32 random bits to a float in the open interval (0, 1): the top 23 bits
// select one of 2^23 equal cells and the value is the cell's midpoint, so the
// range is [2^-24, 1 - 2^-24], every value is exact in float, -log(u) is
// finite and > 0, and `u < p` is never true for p = 0 and always true for p = 1.
ACHERON_FUNCTION ACHERON_FORCEINLINE float u32_to_uniform(std::uint32_t bits) {
  return (static_cast<float>(bits >> 9) + 0.5f) * 0x1p-23f;
}

// Orthonormal vectors b1, b2 completing the unit vector n to a right-handed
// frame (b1 x b2 = n). Branchless construction of Duff et al., "Building an
// Orthonormal Basis, Revisited", JCGT 6(1) 2017; exact for n = ±z.
ACHERON_FUNCTION inline void orthonormal_basis(Vec3 n, Vec3& b1, Vec3& b2) {
  const float sign = std::copysign(1.0f, n.z);
  const float a = -1.0f / (sign + n.z);
  const float b = n.x * n.y * a;
  b1 = Vec3{1.0f + sign * n.x * n.x * a, sign * b, -sign * n.x};
  b2 = Vec3{b, sign + n.y * n.y * a, -n.y};
}

// One photon's random stream. The Philox counter is (block, photon index,
// event, 0) and the key is the 64-bit seed; each block yields four 32-bit
// words, so a stream holds 2^34 draws before the block counter wraps.
class Random {
 public:
  ACHERON_FUNCTION Random(std::uint64_t seed, std::uint32_t event, std::uint32_t photon)
      : key_{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}},
        photon_(photon),
        event_(event) {}

  // Next 32 random bits.
  ACHERON_FUNCTION std::uint32_t next_u32() {
    if (used_ == 4) refill();
    ++draws_;
    return buffer_.v[used_++];
  }

  // Uniform float in the open interval (0, 1); see u32_to_uniform.
  ACHERON_FUNCTION float uniform() { return u32_to_uniform(next_u32()); }

  // Number of 32-bit words drawn so far.
  ACHERON_FUNCTION std::uint64_t draws() const { return draws_; }

  // Isotropic unit vector: cos(theta) uniform in (-1, 1), azimuth uniform.
  ACHERON_FUNCTION Vec3 uniform_sphere() {
    const float cos_theta = 2.0f * uniform() - 1.0f;
    const float sin_theta = std::sqrt(std::fmax(0.0f, 1.0f - cos_theta * cos_theta));
    const float phi = kTwoPi * uniform();
    return Vec3{sin_theta * std::cos(phi), sin_theta * std::sin(phi), cos_theta};
  }

  // Unit vector perpendicular to the unit vector d with uniform azimuth; the
  // same law as normalize(uniform_sphere() x d) without its degenerate case.
  ACHERON_FUNCTION Vec3 perpendicular(Vec3 d) {
    Vec3 b1, b2;
    orthonormal_basis(d, b1, b2);
    const float phi = kTwoPi * uniform();
    return std::cos(phi) * b1 + std::sin(phi) * b2;
  }

 private:
  ACHERON_FUNCTION void refill() {
    buffer_ = Philox4x32::apply(Philox4x32::Counter{{block_, photon_, event_, 0u}}, key_);
    ++block_;
    used_ = 0;
  }

  Philox4x32::Key key_;
  std::uint32_t photon_;
  std::uint32_t event_;
  std::uint32_t block_ = 0;
  std::uint32_t used_ = 4;  // words of buffer_ already consumed; 4 = empty
  std::uint64_t draws_ = 0;
  Philox4x32::Counter buffer_{};
};

}  // namespace acheron::optics
