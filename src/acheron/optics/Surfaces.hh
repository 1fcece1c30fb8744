// Surface models (photon-physics.md §7, Chroma's propagate_at_surface):
// DEFAULT, COMPLEX thin film, WLS and DICHROIC; and Geant4's unified model
// (Unified.hh). Each returns Action::stop
// (absorbed or detected), Action::next_step (reflected, reemitted or, for
// COMPLEX, transmitted) or Action::pass (go on to the Fresnel step).
// last_hit_triangle is left on the surface's triangle so the next cast skips it.
#pragma once

#include <cmath>
#include <cstdint>

#include "acheron/optics/Fresnel.hh"
#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Reemission.hh"
#include "acheron/optics/Reflectors.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Tables.hh"
#include "acheron/optics/ThinFilm.hh"
#include "acheron/optics/Types.hh"
#include "acheron/optics/Unified.hh"

namespace acheron::optics {

// DEFAULT: one draw u against absorb a, detect e, reflect_diffuse r_d and
// reflect_specular r_s stacked in that order; the rest passes to Fresnel
// with no history bit.
struct DefaultSurface {
  const SurfaceData* surface = nullptr;
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const float u = rng.uniform();
    float edge = lookup(surface->absorb, s.wavelength);
    if (u < edge) {
      photon.history |= history::surface_absorb;
      return Action::stop;
    }
    edge += lookup(surface->detect, s.wavelength);
    if (u < edge) {
      photon.history |= history::surface_detect;
      return Action::stop;
    }
    edge += lookup(surface->reflect_diffuse, s.wavelength);
    if (u < edge) return DiffuseReflector{}(photon, s.normal, rng);
    edge += lookup(surface->reflect_specular, s.wavelength);
    if (u < edge) return SpecularReflector{chroma_compat}(photon, s.normal);
    return Action::pass;
  }
};

// WLS: u < absorb: reemitted with probability `reemit` (new wavelength from
// reemission_cdf at or above the absorbed wavelength, the whole CDF with
// chroma_compat; time += a draw from reemission_time; isotropic direction,
// random perpendicular polarization, SURFACE_REEMIT), else, or when the
// spectrum has nothing at or above the absorbed wavelength, SURFACE_ABSORB.
// u < absorb + r_s + r_d: specular with probability r_s / (r_s + r_d), else
// diffuse. Otherwise SURFACE_TRANSMIT and pass to Fresnel.
struct WlsSurface {
  const SurfaceData* surface = nullptr;
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const float u = rng.uniform();
    const float absorb = lookup(surface->absorb, s.wavelength);
    const float specular = lookup(surface->reflect_specular, s.wavelength);
    const float diffuse = lookup(surface->reflect_diffuse, s.wavelength);
    if (u < absorb) {
      float wavelength = 0.0f;
      if (rng.uniform() < lookup(surface->reemit, s.wavelength) &&
          sample_reemission_wavelength(surface->reemission_cdf, photon.wavelength, !chroma_compat,
                                       rng.uniform(), wavelength)) {
        photon.wavelength = wavelength;
        photon.time += sample_delay(surface->reemission_time, rng);
        photon.direction = rng.uniform_sphere();
        photon.polarization = rng.perpendicular(photon.direction);
        photon.history |= history::surface_reemit;
        return Action::next_step;
      }
      photon.history |= history::surface_absorb;
      return Action::stop;
    }
    if (u < absorb + specular + diffuse) {
      if (rng.uniform() * (specular + diffuse) < specular) {
        return SpecularReflector{chroma_compat}(photon, s.normal);
      }
      return DiffuseReflector{}(photon, s.normal, rng);
    }
    photon.history |= history::surface_transmit;
    return Action::pass;
  }
};

// DICHROIC: R and T at the incidence angle theta, interpolated linearly
// between the neighbouring angle rows (each row linear in wavelength) and
// clamped to the first and last rows outside the table (§10 deviation 4).
// u < R: specular; u < R + T: transmitted; else SURFACE_ABSORB. T is the
// whole transmission probability: a transmitted photon refracts from n1
// into n2 (Snell's law, polarization from t_s and t_p) without a further
// Fresnel draw and gets SURFACE_TRANSMIT (beyond the critical angle, where
// it cannot refract, it reflects specularly instead). chroma_compat
// restores Chroma, which sets SURFACE_TRANSMIT and passes the photon on to
// the Fresnel step, so that T is reduced by a Fresnel reflection.
struct DichroicSurface {
  const SurfaceData* surface = nullptr;
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const float cos_i = std::fmin(1.0f, std::fmax(0.0f, -dot(photon.direction, s.normal)));
    const float theta = std::acos(cos_i);
    const float* angles = surface->angles;
    const std::uint32_t n = surface->n_angles;
    std::uint32_t row = 0;
    float fraction = 0.0f;
    if (n > 1) {
      if (theta >= angles[n - 1]) {
        row = n - 2;
        fraction = 1.0f;
      } else if (theta > angles[0]) {
        while (theta >= angles[row + 1]) ++row;  // angles[row] <= theta < angles[row + 1]
        fraction = (theta - angles[row]) / (angles[row + 1] - angles[row]);
      }
    }
    const std::uint32_t next = n > 1 ? row + 1 : row;
    const float* reflect = surface->reflect;
    const float* transmit = surface->transmit;
    const float r0 = lookup(reflect + row * kWavelengthPoints, s.wavelength);
    const float r1 = lookup(reflect + next * kWavelengthPoints, s.wavelength);
    const float t0 = lookup(transmit + row * kWavelengthPoints, s.wavelength);
    const float t1 = lookup(transmit + next * kWavelengthPoints, s.wavelength);
    const float r = r0 + fraction * (r1 - r0);
    const float t = t0 + fraction * (t1 - t0);
    const float u = rng.uniform();
    if (u < r) return SpecularReflector{chroma_compat}(photon, s.normal);
    if (u < r + t) {
      if (chroma_compat) {
        photon.history |= history::surface_transmit;
        return Action::pass;
      }
      if (refract_or_reflect(photon, s.normal, s.n1, s.n2)) {
        photon.history |= history::surface_transmit;
      }
      return Action::next_step;
    }
    photon.history |= history::surface_absorb;
    return Action::stop;
  }
};

// COMPLEX: thin-film R and T (ThinFilm.hh) between the current medium n1,
// the film eta + i k of `thickness` and the far medium n2, mixed with the s
// fraction f = (p.s_hat)^2; T = 0 unless transmissive; A = 1 - R - T.
// u < A: absorbed, then detected with probability `detect` (SURFACE_DETECT,
// else SURFACE_ABSORB). Else reflect if u < A + R or the surface is not
// transmissive (diffusely with probability reflect_diffuse, else
// specularly). Else refract n1 -> n2 with polarization normalize(s_hat x d')
// and SURFACE_TRANSMIT. Never passes to Fresnel; reflect_specular is unused.
struct ComplexSurface {
  const SurfaceData* surface = nullptr;
  bool chroma_compat = false;

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const Vec3 d = photon.direction;
    const float cos_i = std::fmin(1.0f, std::fmax(0.0f, -dot(d, s.normal)));
    const Vec3 s_hat = incidence_plane_normal(d, s.normal, photon.polarization);
    const float s_coefficient = dot(photon.polarization, s_hat);
    const float f = s_coefficient * s_coefficient;
    // Film phase uses the wavelength the tables were read at (clamped to the grid).
    const float wavelength =
        kWavelengthMin +
        kWavelengthStep * (static_cast<float>(s.wavelength.index) + s.wavelength.fraction);
    const Complex film{lookup(surface->eta, s.wavelength), lookup(surface->k, s.wavelength)};
    const ThinFilmResult rt = thin_film(s.n1, film, s.n2, cos_i, surface->thickness, wavelength);
    const bool transmissive = surface->transmissive != 0;
    const float reflectance = f * rt.r_s + (1.0f - f) * rt.r_p;
    const float transmittance = transmissive ? f * rt.t_s + (1.0f - f) * rt.t_p : 0.0f;
    const float absorbance = 1.0f - reflectance - transmittance;

    const float u = rng.uniform();
    if (u < absorbance) {
      if (rng.uniform() < lookup(surface->detect, s.wavelength)) {
        photon.history |= history::surface_detect;
      } else {
        photon.history |= history::surface_absorb;
      }
      return Action::stop;
    }
    const FresnelCoefficients snell = fresnel_coefficients(cos_i, s.n1, s.n2);
    if (!transmissive || u < absorbance + reflectance || snell.total_internal_reflection) {
      if (rng.uniform() < lookup(surface->reflect_diffuse, s.wavelength)) {
        return DiffuseReflector{}(photon, s.normal, rng);
      }
      return SpecularReflector{chroma_compat}(photon, s.normal);
    }
    photon.direction = refract(d, s.normal, s.n1 / s.n2, cos_i, snell.cos_t);
    photon.polarization = normalize(cross(s_hat, photon.direction));
    photon.history |= history::surface_transmit;
    return Action::next_step;
  }
};

// Applies the surface's model.
ACHERON_FUNCTION inline Action apply_surface(Photon& photon, const StepState& s,
                                             const SurfaceData& surface, bool chroma_compat,
                                             Random& rng) {
  switch (surface.model) {
    case SurfaceModel::standard:
      return DefaultSurface{&surface, chroma_compat}(photon, s, rng);
    case SurfaceModel::complex:
      return ComplexSurface{&surface, chroma_compat}(photon, s, rng);
    case SurfaceModel::wls:
      return WlsSurface{&surface, chroma_compat}(photon, s, rng);
    case SurfaceModel::dichroic:
      return DichroicSurface{&surface, chroma_compat}(photon, s, rng);
    case SurfaceModel::unified:
      return UnifiedSurface{&surface}(photon, s, rng);
  }
  return Action::pass;
}

}  // namespace acheron::optics
