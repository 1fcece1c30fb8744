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

// Step history (Opticks' "seqhis"): the first N steps of a photon as a
// 64-bit word, 4 bits per step, the first step in the lowest 4 bits; 0 ends
// the sequence. A step is one pass of the stepping loop: a bulk interaction
// before the next boundary, or what happened at the boundary reached. The
// table is documented in docs/optics.md.
inline constexpr std::uint32_t kMaxStepHistory = 16;  // 16 x 4 bits = 64 bits
namespace step_code {
inline constexpr std::uint32_t boundary_transmit = 1;  // Fresnel step: refracted
inline constexpr std::uint32_t boundary_reflect = 2;   // Fresnel step: reflected (or TIR)
inline constexpr std::uint32_t rayleigh_scatter = 3;
inline constexpr std::uint32_t bulk_absorb = 4;
inline constexpr std::uint32_t bulk_reemit = 5;
inline constexpr std::uint32_t surface_detect = 6;
inline constexpr std::uint32_t surface_absorb = 7;
inline constexpr std::uint32_t diffuse_reflect = 8;    // at a surface
inline constexpr std::uint32_t specular_reflect = 9;   // at a surface (surface model, not Fresnel)
inline constexpr std::uint32_t surface_transmit = 10;  // through a surface by its model alone
inline constexpr std::uint32_t surface_reemit = 11;    // WLS surface
inline constexpr std::uint32_t no_hit = 12;            // the ray left the geometry
inline constexpr std::uint32_t nan_abort = 13;         // non-finite, or outside the world
}  // namespace step_code

// The step of history code k in a sequence word (k = 0 for the first).
ACHERON_FUNCTION ACHERON_FORCEINLINE std::uint32_t step_at(std::uint64_t sequence,
                                                           std::uint32_t k) {
  return k < kMaxStepHistory ? static_cast<std::uint32_t>((sequence >> (4 * k)) & 0xFu) : 0u;
}

// Records nothing: propagate() without a step history compiles it away.
struct NoStepRecorder {
  static constexpr bool enabled = false;
  ACHERON_FUNCTION ACHERON_FORCEINLINE void record(std::uint32_t) {}
};

// Records the first `limit` (<= kMaxStepHistory) steps into `sequence` and
// counts every step in `steps`.
struct StepRecorder {
  static constexpr bool enabled = true;
  std::uint32_t limit = 0;
  std::uint32_t steps = 0;
  std::uint64_t sequence = 0;
  ACHERON_FUNCTION ACHERON_FORCEINLINE void record(std::uint32_t code) {
    if (steps < limit) sequence |= std::uint64_t{code & 0xFu} << (4 * steps);
    ++steps;
  }
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

// The record of a triangle of instance `instance` (virtual id `id`): the
// prototype's, with the normal rotated into the world and the instance's solid.
ACHERON_FUNCTION inline TriangleData instance_triangle(const ParamsView& params,
                                                       std::uint32_t instance, std::uint32_t id) {
  const InstanceData& in = params.instances[instance];
  TriangleData t = params.prototype_triangles[in.prototype_first + (id - in.first_triangle)];
  const float* r = in.rotation;
  const Vec3 n = t.normal;
  t.normal = {r[0] * n.x + r[1] * n.y + r[2] * n.z, r[3] * n.x + r[4] * n.y + r[5] * n.z,
              r[6] * n.x + r[7] * n.y + r[8] * n.z};
  t.solid = in.solid;
  return t;
}

// The instance owning virtual triangle id (>= n_triangles), by bisection over
// the instances' first_triangle; -1 if the id is beyond every instance.
ACHERON_FUNCTION inline std::int32_t find_instance(const ParamsView& params, std::uint32_t id) {
  std::uint32_t lo = 0, hi = params.n_instances;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (params.instances[mid].first_triangle <= id) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  if (lo >= params.n_instances) return -1;
  const InstanceData& in = params.instances[lo];
  if (id < in.first_triangle || id - in.first_triangle >= in.triangle_count) return -1;
  return static_cast<std::int32_t>(lo);
}

// The record of any virtual triangle id; false if the id names no triangle.
ACHERON_FUNCTION inline bool triangle_record(const ParamsView& params, std::int32_t id,
                                             TriangleData& out) {
  if (id < 0) return false;
  const auto u = static_cast<std::uint32_t>(id);
  if (u < params.n_triangles) {
    out = params.triangles[u];
    return true;
  }
  const std::int32_t instance = find_instance(params, u);
  if (instance < 0) return false;
  out = instance_triangle(params, static_cast<std::uint32_t>(instance), u);
  return true;
}

// Orients the triangle normal n (inner -> outer) against the direction d
// (photon-physics.md §3) and looks up both media at the photon's wavelength.
ACHERON_FUNCTION inline StepState make_step_state(const ParamsView& params, const Photon& photon,
                                                  const RayHit& hit) {
  StepState s;
  // Flattened triangles read their record in place; an instanced hit builds
  // its record from the prototype's (one branch on the fast path).
  TriangleData instanced;
  const TriangleData* tri_ptr;
  if (hit.instance < 0) [[likely]] {
    tri_ptr = &params.triangles[hit.triangle];
  } else {
    instanced = instance_triangle(params, static_cast<std::uint32_t>(hit.instance),
                                  static_cast<std::uint32_t>(hit.triangle));
    tri_ptr = &instanced;
  }
  const TriangleData& tri = *tri_ptr;
  const Vec3 n = tri.normal;
  if (dot(photon.direction, n) < 0.0f) {
    s.material1 = tri.outer_material;
    s.material2 = tri.inner_material;
    s.normal = n;
    s.surface = tri.surface_in;
  } else {
    s.material1 = tri.inner_material;
    s.material2 = tri.outer_material;
    s.normal = -n;
    s.surface = tri.surface;
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
  return s;
}

}  // namespace acheron::optics
