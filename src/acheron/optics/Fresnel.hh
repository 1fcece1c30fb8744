// Fresnel reflection and refraction at a dielectric boundary
// (photon-physics.md §8). The photon's whole polarization vector is carried
// through reflection and refraction, as Geant4's G4OpBoundaryProcess does;
// chroma_compat restores Chroma's propagate_at_boundary, which collapses it
// to pure s or p.
#pragma once

#include <cmath>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Reflectors.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Amplitude coefficients at one incidence, in the cos form that is finite at
// normal incidence:
//   r_s = (n1 ci - n2 ct)/(n1 ci + n2 ct),  t_s = 2 n1 ci/(n1 ci + n2 ct),
//   r_p = (n2 ci - n1 ct)/(n2 ci + n1 ct),  t_p = 2 n1 ci/(n2 ci + n1 ct).
// The signs belong to the basis of split_polarization: s_hat = d x n for
// every wave and p_hat = k x s_hat for each wave vector k. At normal
// incidence r_p = -r_s and the reflected p_hat is minus the incident one,
// so every polarization is multiplied by the same (n1 - n2)/(n1 + n2), as
// it must be. Under total internal reflection (sin t >= 1) both
// reflectances are 1, cos_t and the t are 0, and r_s = -1, r_p = +1: in
// this basis the geometric mirror of the polarization, E' = 2 (E.n) n - E
// (Geant4's choice; the phase shifts of total internal
// reflection, which make linear light elliptical, are not representable by
// a real polarization vector).
struct FresnelCoefficients {
  float r_s = 0;
  float r_p = 0;
  float t_s = 1;
  float t_p = 1;
  float cos_t = 1;
  bool total_internal_reflection = false;
};

// cos_i = cos of the incidence angle, in [0, 1].
ACHERON_FUNCTION inline FresnelCoefficients fresnel_coefficients(float cos_i, float n1, float n2) {
  FresnelCoefficients f;
  const float eta = n1 / n2;
  const float sin2_t = eta * eta * std::fmax(0.0f, 1.0f - cos_i * cos_i);
  if (sin2_t >= 1.0f) {
    f.r_s = -1.0f;
    f.r_p = 1.0f;
    f.t_s = 0.0f;
    f.t_p = 0.0f;
    f.cos_t = 0.0f;
    f.total_internal_reflection = true;
    return f;
  }
  f.cos_t = std::sqrt(1.0f - sin2_t);
  const float inv_s = 1.0f / (n1 * cos_i + n2 * f.cos_t);
  const float inv_p = 1.0f / (n2 * cos_i + n1 * f.cos_t);
  f.r_s = (n1 * cos_i - n2 * f.cos_t) * inv_s;
  f.r_p = (n2 * cos_i - n1 * f.cos_t) * inv_p;
  f.t_s = 2.0f * n1 * cos_i * inv_s;
  f.t_p = 2.0f * n1 * cos_i * inv_p;
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

// A photon's polarization E split at one incidence (normal n pointing back
// into the incident medium): E = e_s s_hat + e_p p_hat with s_hat =
// normalize(d x n) perpendicular to the plane of incidence and p_hat =
// d x s_hat, e_s^2 + e_p^2 = 1 for a unit polarization perpendicular to d
// (as every functor leaves it). Within 1e-4 rad of normal incidence the
// plane is undefined (and s and p reflect alike to 1e-8): s_hat = E, e_p = 0.
struct PolarizationSplit {
  Vec3 s_hat;
  float e_s = 1;
  float e_p = 0;
};

ACHERON_FUNCTION inline PolarizationSplit split_polarization(Vec3 d, Vec3 normal,
                                                             Vec3 polarization) {
  PolarizationSplit e;
  const Vec3 c = cross(d, normal);
  const float length2 = dot(c, c);
  if (length2 < 1e-8f) {
    e.s_hat = polarization;
    return e;
  }
  e.s_hat = c / std::sqrt(length2);
  // The polarization is a unit vector perpendicular to d, so e_s^2 + e_p^2
  // = 1 up to rounding (and the outgoing polarizations are normalized).
  e.e_s = dot(polarization, e.s_hat);
  e.e_p = dot(polarization, cross(d, e.s_hat));
  return e;
}

// Polarization-weighted reflectance R = e_s^2 r_s^2 + e_p^2 r_p^2 (1 under
// total internal reflection); the transmittance is 1 - R.
ACHERON_FUNCTION ACHERON_FORCEINLINE float reflectance(const PolarizationSplit& e,
                                                       const FresnelCoefficients& f) {
  const float a = e.e_s * f.r_s, b = e.e_p * f.r_p;
  return a * a + b * b;
}

// Unit vector along v with its component along the unit d removed; the unit
// `fallback` (perpendicular to d) if nothing is left.
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 transverse_unit(Vec3 v, Vec3 d, Vec3 fallback) {
  const Vec3 w = v - dot(v, d) * d;
  const float length2 = dot(w, w);
  return length2 > 1e-12f ? w / std::sqrt(length2) : fallback;
}

// New polarization of the wave leaving along d_new with amplitudes a_s, a_p
// of the incident s and p parts: normalize(a_s e_s s_hat + a_p e_p (d_new x s_hat)).
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 outgoing_polarization(const PolarizationSplit& e,
                                                                float a_s, float a_p, Vec3 d_new) {
  const Vec3 v = (a_s * e.e_s) * e.s_hat + (a_p * e.e_p) * cross(d_new, e.s_hat);
  return transverse_unit(v, d_new, e.s_hat);
}

// Reflected (r_s, r_p) and refracted (t_s, t_p) polarizations.
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 reflected_polarization(const PolarizationSplit& e,
                                                                 const FresnelCoefficients& f,
                                                                 Vec3 d_new) {
  return outgoing_polarization(e, f.r_s, f.r_p, d_new);
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 refracted_polarization(const PolarizationSplit& e,
                                                                 const FresnelCoefficients& f,
                                                                 Vec3 d_new) {
  return outgoing_polarization(e, f.t_s, f.t_p, d_new);
}

// Refracts the photon from n1 into n2 without a draw (direction by Snell's
// law, polarization from t_s and t_p) and returns true; under total
// internal reflection it reflects specularly instead (REFLECT_SPECULAR,
// polarization mirrored) and returns false.
ACHERON_FUNCTION inline bool refract_or_reflect(Photon& photon, Vec3 normal, float n1, float n2) {
  const Vec3 d = photon.direction;
  const float cos_i = std::fmin(1.0f, std::fmax(0.0f, -dot(d, normal)));
  const FresnelCoefficients f = fresnel_coefficients(cos_i, n1, n2);
  const PolarizationSplit e = split_polarization(d, normal, photon.polarization);
  if (f.total_internal_reflection) {
    photon.direction = normalize(mirror(d, normal));
    photon.polarization = reflected_polarization(e, f, photon.direction);
    photon.history |= history::reflect_specular;
    return false;
  }
  photon.direction = refract(d, normal, n1 / n2, cos_i, f.cos_t);
  photon.polarization = refracted_polarization(e, f, photon.direction);
  return true;
}

// The Fresnel step. The polarization E is split into its s and p parts
// (split_polarization); the photon reflects specularly (REFLECT_SPECULAR)
// with the polarization-weighted probability R = e_s^2 r_s^2 + e_p^2 r_p^2,
// always under total internal reflection, and otherwise refracts (no
// history bit). The new polarization is the normalized sum of the new s and
// p unit vectors weighted by r_s e_s, r_p e_p (reflected) or t_s e_s, t_p e_p
// (refracted), as in Geant4's G4OpBoundaryProcess (which keeps the signed s
// part but only the magnitude of the p part; here both keep their signs).
//
// chroma_compat restores Chroma's propagate_at_boundary: with probability
// (p.s_hat)^2 the photon takes the s branch (R = r_s^2, new polarization
// s_hat), otherwise the p branch (R = r_p^2, new polarization
// normalize(s_hat x d')), and at exact normal incidence (cos_i rounds to 1)
// the 0/0 coefficients transmit every photon.
struct FresnelBoundary {
  float n1 = 1;
  float n2 = 1;
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, Vec3 normal, Random& rng) const {
    const Vec3 d = photon.direction;
    const float cos_i = std::fmin(1.0f, std::fmax(0.0f, -dot(d, normal)));
    const FresnelCoefficients f = fresnel_coefficients(cos_i, n1, n2);
    if (chroma_compat) return chroma_step(photon, normal, rng, cos_i, f);
    const PolarizationSplit e = split_polarization(d, normal, photon.polarization);
    if (f.total_internal_reflection || rng.uniform() < reflectance(e, f)) {
      photon.direction = normalize(mirror(d, normal));
      photon.polarization = reflected_polarization(e, f, photon.direction);
      photon.history |= history::reflect_specular;
    } else {
      photon.direction = refract(d, normal, n1 / n2, cos_i, f.cos_t);
      photon.polarization = refracted_polarization(e, f, photon.direction);
    }
    return Action::next_step;
  }

  ACHERON_FUNCTION Action chroma_step(Photon& photon, Vec3 normal, Random& rng, float cos_i,
                                      const FresnelCoefficients& f) const {
    const Vec3 d = photon.direction;
    const Vec3 s_hat = incidence_plane_normal(d, normal, photon.polarization);
    const float s_coefficient = dot(photon.polarization, s_hat);
    const bool s_branch = rng.uniform() < s_coefficient * s_coefficient;
    const float r = s_branch ? f.r_s : f.r_p;
    float reflectance = r * r;
    if (cos_i >= 1.0f) reflectance = 0.0f;
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
