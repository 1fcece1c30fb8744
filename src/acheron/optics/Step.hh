// Step-local state shared by the physics functors (photon-physics.md §2) and
// the outcome each functor reports to the stepping loop.
#pragma once

#include <cstdint>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Tables.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// What the stepping loop does after a physics functor (Chroma's BREAK,
// CONTINUE and PASS).
enum class Action : std::uint8_t {
  stop,       // terminal: the photon's history holds a terminal bit
  next_step,  // cast a new ray from the photon's new position and direction
  pass,       // go on to the next stage at this boundary (surface -> Fresnel)
};

// Per-photon interaction counts (a photon's step history in numbers).
struct StepCounts {
  std::uint32_t boundaries = 0;   // boundaries reached (surface or interface), the last included
  std::uint32_t scatters = 0;     // Rayleigh scatters
  std::uint32_t reemissions = 0;  // bulk reemissions
};

// What one step knows about the photon's surroundings, filled after a ray
// cast at the photon's wavelength.
struct StepState {
  std::uint32_t material1 = 0;  // current medium
  std::uint32_t material2 = 0;  // far medium, across the boundary
  float n1 = 1;
  float n2 = 1;
  float absorption_length = 0;  // mm, current medium
  float scattering_length = 0;  // mm, current medium
  float speed = 0;              // mm/ns in the current medium (phase or group)
  float distance = 0;           // mm to the boundary
  Vec3 normal;                  // unit, points back into the current medium: dot(d, normal) <= 0
  std::int32_t surface = -1;    // -1: none
  GridPoint wavelength;         // the photon's place on the wavelength grid
};

// Orients the triangle normal n (inner -> outer) against the direction d
// (photon-physics.md §3) and looks up both media at the photon's wavelength.
ACHERON_FUNCTION inline StepState make_step_state(const ParamsView& params, const Photon& photon,
                                                  const RayHit& hit) {
  StepState s;
  const TriangleData& tri = params.triangles[hit.triangle];
  const Vec3 n = tri.normal;
  if (dot(photon.direction, n) < 0.0f) {
    s.material1 = tri.outer_material;
    s.material2 = tri.inner_material;
    s.normal = n;
  } else {
    s.material1 = tri.inner_material;
    s.material2 = tri.outer_material;
    s.normal = -n;
  }
  s.wavelength = wavelength_grid_point(photon.wavelength);
  const MaterialData& m1 = params.materials[s.material1];
  const MaterialData& m2 = params.materials[s.material2];
  s.n1 = lookup(m1.refractive_index, s.wavelength);
  s.n2 = lookup(m2.refractive_index, s.wavelength);
  s.absorption_length = lookup(m1.absorption_length, s.wavelength);
  s.scattering_length = lookup(m1.scattering_length, s.wavelength);
  s.speed = params.timing == TimingMode::group ? lookup(m1.group_velocity, s.wavelength)
                                               : kSpeedOfLight / s.n1;
  s.distance = hit.distance;
  s.surface = tri.surface;
  return s;
}

}  // namespace acheron::optics
