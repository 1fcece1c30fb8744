// Rayleigh scattering of a polarized photon (photon-physics.md §6, Chroma's
// rayleigh_scatter): dipole emission about the old polarization.
#pragma once

#include <cmath>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// x = cos(psi) between the new direction and the old polarization, drawn
// from the dipole density 3/4 (1 - x^2) on [-1, 1] by inverting its CDF
// F(x) = (2 + 3x - x^3)/4: the cubic's trigonometric root
// x = 2 cos((acos(1 - 2u) - 2 pi)/3), increasing from -1 at u = 0 to 1 at u = 1.
ACHERON_FUNCTION inline float rayleigh_cos_psi(float u) {
  const float x = 2.0f * std::cos((std::acos(1.0f - 2.0f * u) - kTwoPi) / 3.0f);
  return std::fmin(1.0f, std::fmax(-1.0f, x));
}

// New direction d' at cos(psi) = x to the old polarization p with uniform
// azimuth around p; new polarization p' = normalize(p - x d'), the part of p
// perpendicular to d' (the radiating dipole's field). When d' is within
// 1 - |x| < 1e-6 of +-p that projection vanishes and p' is the unit vector
// 90 degrees from p at the same azimuth.
struct RayleighScatter {
  ACHERON_FUNCTION void operator()(Photon& photon, Random& rng) const {
    const Vec3 p = photon.polarization;
    const float x = rayleigh_cos_psi(rng.uniform());
    const float sin_psi = std::sqrt(std::fmax(0.0f, 1.0f - x * x));
    const float phi = kTwoPi * rng.uniform();
    Vec3 b1, b2;
    orthonormal_basis(p, b1, b2);
    const Vec3 around = std::cos(phi) * b1 + std::sin(phi) * b2;
    const Vec3 d = normalize(x * p + sin_psi * around);
    photon.direction = d;
    if (1.0f - std::fabs(x) < 1e-6f) {
      photon.polarization = around;
    } else {
      photon.polarization = normalize(p - x * d);
    }
  }
};

}  // namespace acheron::optics
