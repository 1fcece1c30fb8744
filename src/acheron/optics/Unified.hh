// Geant4's unified surface model (G4OpBoundaryProcess with a
// G4OpticalSurface of model `unified`; A. Levin and C. Moisan, "A more
// physical approach to model the surface treatment of scintillation
// counters and its implementation into DETECT", IEEE NSS 1996): a surface
// of micro-facets whose normals scatter about the average normal with a
// slope angle alpha of standard deviation sigma_alpha, and four kinds of
// reflection (specular spike, specular lobe, backscatter, Lambertian)
// chosen with the surface's constants. Header-only per-photon code.
#pragma once

#include <cmath>
#include <cstdint>

#include "acheron/optics/Fresnel.hh"
#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Reflectors.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Tables.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Bounds on the rejection loops, which Geant4 leaves unbounded. Neither is
// reached in practice: a facet draw is accepted with probability about 0.1
// or more for any sigma_alpha, and a photon meets a few facets at most.
inline constexpr int kMaxFacetDraws = 10000;
inline constexpr int kMaxFacetInteractions = 1000;

// A standard normal deviate (Box-Muller); two draws.
ACHERON_FUNCTION inline float gaussian(Random& rng) {
  const float radius = std::sqrt(-2.0f * std::log(rng.uniform()));
  return radius * std::cos(kTwoPi * rng.uniform());
}

// A micro-facet normal about the unit average normal n (pointing back into
// the current medium) for a photon along d, with Geant4's weighting: the
// slope angle alpha is drawn from a Gaussian of mean 0 and standard
// deviation sigma_alpha and accepted with probability sin(alpha) / f_max,
// f_max = min(1, 4 sigma_alpha), and only in (0, pi/2): density
// g(alpha; sigma_alpha) sin(alpha) (the sin is the solid angle of a ring of
// facets). The azimuth is uniform. A facet the photon cannot hit
// (d.facet >= 0) is drawn again. sigma_alpha = 0 gives n itself.
ACHERON_FUNCTION inline Vec3 sample_facet_normal(Vec3 d, Vec3 normal, float sigma_alpha,
                                                 Random& rng) {
  if (!(sigma_alpha > 0.0f)) return normal;
  const float f_max = std::fmin(1.0f, 4.0f * sigma_alpha);
  Vec3 b1, b2;
  orthonormal_basis(normal, b1, b2);
  for (int draw = 0; draw < kMaxFacetDraws; ++draw) {
    const float alpha = sigma_alpha * gaussian(rng);
    const float sin_alpha = std::sin(alpha);
    if (rng.uniform() * f_max > sin_alpha || alpha >= 0.5f * kPi) continue;
    const float phi = kTwoPi * rng.uniform();
    const Vec3 facet =
        std::cos(alpha) * normal + sin_alpha * (std::cos(phi) * b1 + std::sin(phi) * b2);
    if (dot(d, facet) < 0.0f) return facet;
  }
  return normal;
}

// The reflection kinds of the unified model.
enum class ReflectionKind : std::uint8_t { spike, lobe, backscatter, lambertian };

// One draw u against the constants at the photon's wavelength: u < spike:
// specular spike (mirror about the average normal); < spike + lobe:
// specular lobe (mirror about the micro-facet); < spike + lobe +
// backscatter: backscatter (back along the incoming direction); otherwise
// Lambertian about the average normal. Polished finishes always reflect
// about the average normal (the spike) and draw nothing.
ACHERON_FUNCTION inline ReflectionKind choose_reflection(const SurfaceData& surface, GridPoint wl,
                                                         Random& rng) {
  if (surface.finish != SurfaceFinish::ground) return ReflectionKind::spike;
  const float u = rng.uniform();
  float edge = lookup(surface.specular_spike, wl);
  if (u < edge) return ReflectionKind::spike;
  edge += lookup(surface.specular_lobe, wl);
  if (u < edge) return ReflectionKind::lobe;
  edge += lookup(surface.backscatter, wl);
  if (u < edge) return ReflectionKind::backscatter;
  return ReflectionKind::lambertian;
}

// UNIFIED. R = reflectivity, T = transmittance, E = efficiency at the
// photon's wavelength; one draw u decides as Geant4 does:
// - u >= R + T: absorbed, and detected with probability E (SURFACE_DETECT,
//   else SURFACE_ABSORB; stop).
// - R <= u < R + T: transmitted straight through, direction and
//   polarization unchanged (SURFACE_TRANSMIT).
// - u < R, by type and finish:
//   dielectric_metal: reflected (reflect_metal below).
//   dielectric_dielectric, polishedfrontpainted: specular reflection about
//   the average normal; groundfrontpainted: Lambertian.
//   dielectric_dielectric, polished or ground: the Fresnel boundary between
//   the two media on micro-facets (cross_facets below).
// Reflections set REFLECT_DIFFUSE if Lambertian, else REFLECT_SPECULAR; a
// refraction sets no bit. Never passes to the Fresnel step.
struct UnifiedSurface {
  const SurfaceData* surface = nullptr;

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const float reflectivity = lookup(surface->reflectivity, s.wavelength);
    const float transmittance = lookup(surface->transmittance, s.wavelength);
    const float u = rng.uniform();
    if (u >= reflectivity) {
      if (u < reflectivity + transmittance) {
        photon.history |= history::surface_transmit;
        return Action::next_step;
      }
      photon.history |= rng.uniform() < lookup(surface->efficiency, s.wavelength)
                            ? history::surface_detect
                            : history::surface_absorb;
      return Action::stop;
    }
    if (surface->type == SurfaceType::dielectric_metal) {
      reflect_metal(photon, s, rng);
    } else if (surface->finish == SurfaceFinish::polishedfrontpainted) {
      reflect(photon, s.normal, s.normal, ReflectionKind::spike, rng);
    } else if (surface->finish == SurfaceFinish::groundfrontpainted) {
      reflect(photon, s.normal, s.normal, ReflectionKind::lambertian, rng);
    } else {
      cross_facets(photon, s, transmittance, rng);
    }
    return Action::next_step;
  }

  // Reflects the photon by `kind` about the average normal n or the facet
  // normal, with Geant4's polarizations: mirrored about the normal used
  // (spike, lobe), reversed (backscatter), or mirrored about the bisector
  // of the old and new directions (Lambertian).
  ACHERON_FUNCTION static void reflect(Photon& photon, Vec3 normal, Vec3 facet, ReflectionKind kind,
                                       Random& rng) {
    const Vec3 d = photon.direction;
    switch (kind) {
      case ReflectionKind::spike:
        facet = normal;
        [[fallthrough]];
      case ReflectionKind::lobe:
        photon.direction = normalize(mirror(d, facet));
        photon.polarization = mirror_polarization(photon.polarization, facet);
        photon.history |= history::reflect_specular;
        return;
      case ReflectionKind::backscatter:
        photon.direction = -d;
        photon.polarization = -photon.polarization;
        photon.history |= history::reflect_specular;
        return;
      case ReflectionKind::lambertian: {
        photon.direction = lambertian_direction(normal, rng);
        const Vec3 bisector = normalize(photon.direction - d);
        photon.polarization = mirror_polarization(photon.polarization, bisector);
        photon.history |= history::reflect_diffuse;
        return;
      }
    }
  }

  // dielectric_metal, reflected: the kind is chosen once; a lobe reflection
  // that leaves the photon heading into the metal reflects again off a new
  // facet until it heads out (Geant4's repeated reflection; spike,
  // backscatter and Lambertian always head out).
  ACHERON_FUNCTION void reflect_metal(Photon& photon, const StepState& s, Random& rng) const {
    const ReflectionKind kind = choose_reflection(*surface, s.wavelength, rng);
    if (kind != ReflectionKind::lobe) {
      reflect(photon, s.normal, s.normal, kind, rng);
      return;
    }
    const Photon before = photon;
    for (int i = 0; i < kMaxFacetInteractions; ++i) {
      const Vec3 facet = sample_facet_normal(photon.direction, s.normal, surface->sigma_alpha, rng);
      reflect(photon, s.normal, facet, kind, rng);
      if (dot(photon.direction, s.normal) >= 0.0f) return;
    }
    photon = before;  // not reached in practice: fall back to the spike
    reflect(photon, s.normal, s.normal, ReflectionKind::spike, rng);
  }

  // dielectric_dielectric, polished or ground: Geant4's DielectricDielectric.
  // On a facet (the average normal if polished) the polarization is split
  // into s and p parts and the photon refracts with the Fresnel probability
  // 1 - R (R = e_s^2 r_s^2 + e_p^2 r_p^2), or with probability T when the
  // surface has a TRANSMITTANCE T > 0 (Geant4 uses that value there too),
  // and never under total internal reflection. A refraction goes through
  // the facet (Snell's law, t_s/t_p polarization). A reflection is of the
  // chosen kind: spike (about the average normal) or lobe (about the facet),
  // both with the r_s/r_p polarization of the facet (a spike under total
  // internal reflection mirrors it about the average normal), or
  // backscatter or Lambertian. A photon that ends up heading back across the surface meets
  // another facet: after a refraction it is on the far side (the indices and
  // the normal swap), after a reflection still on the near side.
  ACHERON_FUNCTION void cross_facets(Photon& photon, const StepState& s, float transmittance,
                                     Random& rng) const {
    const bool ground = surface->finish == SurfaceFinish::ground;
    Vec3 normal = s.normal;
    float n1 = s.n1, n2 = s.n2;
    const Photon before = photon;
    for (int i = 0; i < kMaxFacetInteractions; ++i) {
      const Vec3 d = photon.direction;
      const Vec3 facet =
          ground ? sample_facet_normal(d, normal, surface->sigma_alpha, rng) : normal;
      const float cos_i = std::fmin(1.0f, std::fmax(0.0f, -dot(d, facet)));
      const FresnelCoefficients f = fresnel_coefficients(cos_i, n1, n2);
      const PolarizationSplit e = split_polarization(d, facet, photon.polarization);
      bool reflected = f.total_internal_reflection;
      if (!reflected) {
        const float transmit = transmittance > 0.0f ? transmittance : 1.0f - reflectance(e, f);
        reflected = !(rng.uniform() < transmit);
      }
      photon.history = before.history;  // the last interaction sets the bit
      if (reflected) {
        const ReflectionKind kind = choose_reflection(*surface, s.wavelength, rng);
        if (kind == ReflectionKind::spike && f.total_internal_reflection) {
          reflect(photon, normal, facet, kind, rng);
        } else if (kind == ReflectionKind::spike || kind == ReflectionKind::lobe) {
          photon.direction = normalize(mirror(d, kind == ReflectionKind::spike ? normal : facet));
          photon.polarization = reflected_polarization(e, f, photon.direction);
          photon.history |= history::reflect_specular;
        } else {
          reflect(photon, normal, facet, kind, rng);
        }
        if (dot(photon.direction, normal) >= 0.0f) return;
      } else {
        photon.direction = refract(d, facet, n1 / n2, cos_i, f.cos_t);
        photon.polarization = refracted_polarization(e, f, photon.direction);
        if (dot(photon.direction, normal) <= 0.0f) return;
        // Through the facet but heading back: on the far side now.
        normal = -normal;
        const float n = n1;
        n1 = n2;
        n2 = n;
      }
    }
    photon = before;  // not reached in practice: fall back to the spike
    reflect(photon, s.normal, s.normal, ReflectionKind::spike, rng);
  }
};

}  // namespace acheron::optics
