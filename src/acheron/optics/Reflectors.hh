// Surface reflectors (photon-physics.md §7): specular mirror and Lambertian
// diffuse reflection. The normal passed in points back into the current
// medium (StepState::normal).
#pragma once

#include <cmath>
#include <limits>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Mirror direction d - 2 (d.n) n; well defined at every incidence angle.
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 mirror(Vec3 d, Vec3 n) {
  return d - (2.0f * dot(d, n)) * n;
}

// Polarization mirrored in the plane perpendicular to n: 2 (p.n) n - p. It
// maps a polarization perpendicular to d onto one perpendicular to
// mirror(d, n), with the same s fraction.
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 mirror_polarization(Vec3 p, Vec3 n) {
  return (2.0f * dot(p, n)) * n - p;
}

// A direction drawn from Lambert's cosine law about the unit normal n: mu =
// d.n = sqrt(u) has density 2 mu on [0, 1]; the azimuth is uniform. Two draws.
ACHERON_FUNCTION inline Vec3 lambertian_direction(Vec3 normal, Random& rng) {
  const float mu = std::sqrt(rng.uniform());
  const float sin_theta = std::sqrt(std::fmax(0.0f, 1.0f - mu * mu));
  const float phi = kTwoPi * rng.uniform();
  Vec3 b1, b2;
  orthonormal_basis(normal, b1, b2);
  return normalize(mu * normal + (sin_theta * std::cos(phi)) * b1 +
                   (sin_theta * std::sin(phi)) * b2);
}

// Specular reflection at a surface. Direction d' = d - 2 (d.n) n and
// polarization p' = 2 (p.n) n - p, which stays perpendicular to d' with the
// same s fraction (§10 deviations 2 and 3). With chroma_compat the
// polarization is left unchanged and exact normal incidence (d x n = 0)
// gives a NaN direction, as Chroma's plane-of-incidence construction does;
// the next step then ends the photon with NAN_ABORT.
struct SpecularReflector {
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, Vec3 normal) const {
    const Vec3 d = photon.direction;
    if (chroma_compat) {
      const Vec3 plane = cross(d, normal);
      if (dot(plane, plane) == 0.0f) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        photon.direction = Vec3{nan, nan, nan};
      } else {
        photon.direction = normalize(mirror(d, normal));
      }
    } else {
      photon.direction = normalize(mirror(d, normal));
      photon.polarization = mirror_polarization(photon.polarization, normal);
    }
    photon.history |= history::reflect_specular;
    return Action::next_step;
  }
};

// Lambertian reflection into the current medium's hemisphere: mu = d'.n has
// density 2 mu on [0, 1] and the azimuth is uniform. Chroma reaches this law
// by drawing isotropic directions, flipping them into the hemisphere and
// accepting with probability mu; here mu = sqrt(u) is drawn directly (same
// law, a fixed number of draws and no loop that a NaN normal could stall).
// The new polarization is random and perpendicular to d'.
struct DiffuseReflector {
  ACHERON_FUNCTION Action operator()(Photon& photon, Vec3 normal, Random& rng) const {
    photon.direction = lambertian_direction(normal, rng);
    photon.polarization = rng.perpendicular(photon.direction);
    photon.history |= history::reflect_diffuse;
    return Action::next_step;
  }
};

}  // namespace acheron::optics
