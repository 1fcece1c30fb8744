// Bulk processes between boundaries (photon-physics.md §6, Chroma's
// propagate_to_boundary): absorption with optional reemission components,
// Rayleigh scattering, and transport to the boundary with phase or group
// timing.
#pragma once

#include <cmath>
#include <cstdint>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Rayleigh.hh"
#include "acheron/optics/Reemission.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Tables.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Moves the photon by a distance (mm) in the current medium at the step's
// speed (phase c/n1 or group velocity).
ACHERON_FUNCTION ACHERON_FORCEINLINE void advance(Photon& photon, const StepState& s,
                                                  float distance) {
  photon.position = photon.position + distance * photon.direction;
  photon.time += distance / s.speed;
}

// Absorption in a material with reemission components: component k takes
// the absorption with probability L_abs / L_k(lambda) (its share of the
// absorption coefficient), walked cumulatively against one draw, with the
// last component taking any remainder. It reemits with probability
// reemission_prob_k(lambda): new wavelength from its wavelength CDF at or
// above the absorbed wavelength (energy conservation, as Geant4's G4OpWLS;
// the whole CDF with chroma_compat), time += a draw from its time profile,
// isotropic direction, random perpendicular polarization, BULK_REEMIT.
// Otherwise, or when the spectrum has nothing at or above the absorbed
// wavelength, BULK_ABSORB.
struct BulkReemission {
  const ReemissionComponentData* components = nullptr;  // the material's first component
  std::uint32_t count = 0;
  StepCounts* counts = nullptr;  // optional
  bool chroma_compat = false;    // draw from the whole spectrum (Chroma)

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const float u = rng.uniform();
    std::uint32_t k = 0;
    float cumulative = 0.0f;
    for (; k + 1 < count; ++k) {
      cumulative += s.absorption_length / lookup(components[k].absorption_length, s.wavelength);
      if (u < cumulative) break;
    }
    const ReemissionComponentData& c = components[k];
    float wavelength = 0.0f;
    if (rng.uniform() < lookup(c.reemission_prob, s.wavelength) &&
        sample_reemission_wavelength(c.wavelength_cdf, photon.wavelength, !chroma_compat,
                                     rng.uniform(), wavelength)) {
      photon.wavelength = wavelength;
      photon.time += sample_delay(c.time, rng);
      photon.direction = rng.uniform_sphere();
      photon.polarization = rng.perpendicular(photon.direction);
      photon.history |= history::bulk_reemit;
      if (counts) ++counts->reemissions;
      return Action::next_step;
    }
    photon.history |= history::bulk_absorb;
    return Action::stop;
  }
};

// One bulk step up to the boundary at s.distance: sample d_abs = -L_abs ln u1
// and d_sca = -L_sca ln u2. Absorption if d_abs <= d_sca and d_abs <= D;
// scattering if d_sca < d_abs and d_sca <= D; both reset last_hit_triangle
// and are followed by a new ray cast. Otherwise the photon moves to the
// boundary and the result is Action::pass.
struct BulkStep {
  const ParamsView* params = nullptr;
  StepCounts* counts = nullptr;  // optional: counts scatters, reemissions and boundaries

  ACHERON_FUNCTION Action operator()(Photon& photon, const StepState& s, Random& rng) const {
    const float absorption_distance = -s.absorption_length * std::log(rng.uniform());
    const float scattering_distance = -s.scattering_length * std::log(rng.uniform());
    if (absorption_distance <= scattering_distance) {
      if (absorption_distance <= s.distance) {
        advance(photon, s, absorption_distance);
        photon.last_hit_triangle = -1;
        const MaterialData& m = params->materials[s.material1];
        if (m.component_count == 0) {
          photon.history |= history::bulk_absorb;
          return Action::stop;
        }
        return BulkReemission{params->components + m.component_begin, m.component_count, counts,
                              params->chroma_compat != 0}(photon, s, rng);
      }
    } else if (scattering_distance <= s.distance) {
      advance(photon, s, scattering_distance);
      photon.last_hit_triangle = -1;
      RayleighScatter{}(photon, rng);
      photon.history |= history::rayleigh_scatter;
      if (counts) ++counts->scatters;
      return Action::next_step;
    }
    advance(photon, s, s.distance);
    if (counts) ++counts->boundaries;
    return Action::pass;
  }
};

}  // namespace acheron::optics
