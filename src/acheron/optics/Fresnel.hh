// Fresnel reflection and refraction at a dielectric boundary
// (photon-physics.md §8, Chroma's propagate_at_boundary).
#pragma once

#include <cmath>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Reflectors.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Amplitude coefficients at one incidence, in the cos form that is finite at
// normal incidence: r_s = (n1 ci - n2 ct)/(n1 ci + n2 ct) and
// r_p = (n2 ci - n1 ct)/(n2 ci + n1 ct). Under total internal reflection
// (sin t >= 1) both reflectances are 1 and cos_t is 0.
struct FresnelCoefficients {
  float r_s = 0;
  float r_p = 0;
  float cos_t = 1;
  bool total_internal_reflection = false;
};

// cos_i = cos of the incidence angle, in [0, 1].
ACHERON_FUNCTION inline FresnelCoefficients fresnel_coefficients(float cos_i, float n1, float n2) {
  FresnelCoefficients f;
  const float eta = n1 / n2;
  const float sin2_t = eta * eta * std::fmax(0.0f, 1.0f - cos_i * cos_i);
  if (sin2_t >= 1.0f) {
    f.r_s = 1.0f;
    f.r_p = 1.0f;
    f.cos_t = 0.0f;
    f.total_internal_reflection = true;
    return f;
  }
  f.cos_t = std::sqrt(1.0f - sin2_t);
  f.r_s = (n1 * cos_i - n2 * f.cos_t) / (n1 * cos_i + n2 * f.cos_t);
  f.r_p = (n2 * cos_i - n1 * f.cos_t) / (n2 * cos_i + n1 * f.cos_t);
  return f;
}

// Unit normal of the plane of incidence, s_hat = normalize(d x n); when d is
// within 1e-6 of the normal the plane is undefined and the polarization is
// used instead (so the whole photon takes the s branch).
ACHERON_FUNCTION inline Vec3 incidence_plane_normal(Vec3 d, Vec3 normal, Vec3 polarization) {
  const Vec3 s = cross(d, normal);
  const float length = norm(s);
  if (length < 1e-6f) return polarization;
  return s / length;
}

// Vector Snell's law for unit d and a normal pointing back into the incident
// medium: t = eta d + (eta cos_i - cos_t) n, eta = n1/n2.
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 refract(Vec3 d, Vec3 normal, float eta, float cos_i,
                                                  float cos_t) {
  return normalize(eta * d + (eta * cos_i - cos_t) * normal);
}

// The Fresnel step. With probability (p.s_hat)^2 the photon takes the s
// branch (R = r_s^2, new polarization s_hat), otherwise the p branch
// (R = r_p^2, new polarization normalize(s_hat x d')). It reflects
// specularly with probability R, always under total internal reflection
// (REFLECT_SPECULAR), and otherwise refracts (no history bit).
// chroma_compat restores Chroma's 0/0 coefficients at exact normal incidence
// (cos_i rounds to 1), where every photon is transmitted.
struct FresnelBoundary {
  float n1 = 1;
  float n2 = 1;
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, Vec3 normal, Random& rng) const {
    const Vec3 d = photon.direction;
    const float cos_i = std::fmin(1.0f, std::fmax(0.0f, -dot(d, normal)));
    const Vec3 s_hat = incidence_plane_normal(d, normal, photon.polarization);
    const FresnelCoefficients f = fresnel_coefficients(cos_i, n1, n2);
    const float s_coefficient = dot(photon.polarization, s_hat);
    const bool s_branch = rng.uniform() < s_coefficient * s_coefficient;
    const float r = s_branch ? f.r_s : f.r_p;
    float reflectance = r * r;
    if (chroma_compat && cos_i >= 1.0f) reflectance = 0.0f;
    const bool reflect = rng.uniform() < reflectance || f.total_internal_reflection;
    if (reflect) {
      photon.direction = normalize(mirror(d, normal));
      photon.history |= history::reflect_specular;
    } else {
      photon.direction = refract(d, normal, n1 / n2, cos_i, f.cos_t);
    }
    photon.polarization = s_branch ? s_hat : normalize(cross(s_hat, photon.direction));
    return Action::next_step;
  }
};

}  // namespace acheron::optics
