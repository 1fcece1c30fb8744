// Plain data shared by the photon engine: vectors, photon state, history
// flags, and the read-only views of materials, surfaces and triangles that
// per-photon code sees (Params). Units: mm, ns, nm, rad.
#pragma once

#include <cmath>
#include <cstdint>

#include "acheron/optics/Macros.hh"

namespace acheron::optics {

// Speed of light in vacuum, mm/ns.
inline constexpr float kSpeedOfLight = 299.792458f;

struct Vec3 {
  float x = 0, y = 0, z = 0;
};
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 operator+(Vec3 a, Vec3 b) {
  return {a.x + b.x, a.y + b.y, a.z + b.z};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 operator-(Vec3 a, Vec3 b) {
  return {a.x - b.x, a.y - b.y, a.z - b.z};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 operator-(Vec3 a) {
  return {-a.x, -a.y, -a.z};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 operator*(float s, Vec3 a) {
  return {s * a.x, s * a.y, s * a.z};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 operator*(Vec3 a, float s) {
  return {s * a.x, s * a.y, s * a.z};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 operator/(Vec3 a, float s) {
  return {a.x / s, a.y / s, a.z / s};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE float dot(Vec3 a, Vec3 b) {
  return a.x * b.x + a.y * b.y + a.z * b.z;
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 cross(Vec3 a, Vec3 b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE float norm(Vec3 a) {
  return std::sqrt(dot(a, a));
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Vec3 normalize(Vec3 a) {
  return a / norm(a);
}
ACHERON_FUNCTION ACHERON_FORCEINLINE bool isfinite(Vec3 a) {
  return std::isfinite(a.x) && std::isfinite(a.y) && std::isfinite(a.z);
}

// History bits (Chroma's photon.h / event.py values; also the ChAR0N wire).
namespace history {
inline constexpr std::uint32_t no_hit = 1u << 0;
inline constexpr std::uint32_t bulk_absorb = 1u << 1;
inline constexpr std::uint32_t surface_detect = 1u << 2;
inline constexpr std::uint32_t surface_absorb = 1u << 3;
inline constexpr std::uint32_t rayleigh_scatter = 1u << 4;
inline constexpr std::uint32_t reflect_diffuse = 1u << 5;
inline constexpr std::uint32_t reflect_specular = 1u << 6;
inline constexpr std::uint32_t surface_reemit = 1u << 7;
inline constexpr std::uint32_t surface_transmit = 1u << 8;
inline constexpr std::uint32_t bulk_reemit = 1u << 9;
inline constexpr std::uint32_t cherenkov = 1u << 10;
inline constexpr std::uint32_t scintillation = 1u << 11;
inline constexpr std::uint32_t nan_abort = 1u << 31;
// A photon whose history intersects this set has stopped.
inline constexpr std::uint32_t terminal =
    no_hit | bulk_absorb | surface_detect | surface_absorb | nan_abort;
// Bits a client may set on input (creator labels).
inline constexpr std::uint32_t creator = cherenkov | scintillation;
}  // namespace history

// One photon as per-photon code sees it.
struct Photon {
  Vec3 position;         // mm
  Vec3 direction;        // unit
  Vec3 polarization;     // unit, perpendicular to direction
  float wavelength = 0;  // nm
  float time = 0;        // ns
  float weight = 1;
  std::uint32_t history = 0;
  std::int32_t last_hit_triangle = -1;
  std::uint32_t event = 0;  // event index within the batch
  std::uint32_t index = 0;  // photon index within its event (RNG key)
};

// Wavelength grid of every per-wavelength table: 60, 65, ..., 995 nm.
inline constexpr float kWavelengthMin = 60.f;
inline constexpr float kWavelengthStep = 5.f;
inline constexpr int kWavelengthPoints = 188;

enum class SurfaceModel : std::uint32_t {
  standard = 0,
  complex = 1,
  wls = 2,
  dichroic = 3,
  unified = 4,  // Geant4's unified model (G4OpBoundaryProcess)
};
// UNIFIED: Geant4's surface type and finish (G4SurfaceType, G4OpticalSurfaceFinish).
enum class SurfaceType : std::uint32_t { dielectric_dielectric = 0, dielectric_metal = 1 };
enum class SurfaceFinish : std::uint32_t {
  polished = 0,
  ground = 1,
  polishedfrontpainted = 2,
  groundfrontpainted = 3,
};
enum class TimingMode : std::uint32_t { phase = 0, group = 1 };

// Read-only views; every `const float*` table has kWavelengthPoints values
// unless noted. Built and owned by host-side classes (OpticsTables).

// A reemission delay (ns): `delay` plus one draw from a mixture of
// exponentials (n_exponentials > 0) or from a tabulated CDF (n_points > 0),
// or the delay alone. No time grid: any range is represented exactly.
struct TimeProfileData {
  float delay = 0;
  std::uint32_t n_exponentials = 0;
  // Per term: cumulative weight (the last is 1), decay time, and the second
  // time constant of a rise (0: no rise), ns.
  const float* exponentials = nullptr;
  std::uint32_t n_points = 0;
  const float* times = nullptr;  // ns, ascending, n_points values
  const float* cdf = nullptr;    // 0 .. 1, non-decreasing, n_points values
};

struct ReemissionComponentData {
  const float* absorption_length;  // mm
  const float* reemission_prob;
  const float* wavelength_cdf;  // CDF over the wavelength grid
  TimeProfileData time;
};

struct MaterialData {
  const float* refractive_index;
  const float* absorption_length;  // mm
  const float* scattering_length;  // mm
  const float* group_velocity;     // mm/ns, precomputed for TimingMode::group
  std::uint32_t component_begin;   // index into ParamsView::components
  std::uint32_t component_count;
};

struct SurfaceData {
  SurfaceModel model;
  const float* detect;
  const float* absorb;
  const float* reemit;
  const float* reflect_diffuse;
  const float* reflect_specular;
  const float* eta;
  const float* k;
  const float* reemission_cdf;
  // WLS: the reemission delay.
  TimeProfileData reemission_time;
  float thickness;  // nm (COMPLEX)
  std::uint32_t transmissive;
  std::uint32_t n_angles;  // DICHROIC
  const float* angles;     // rad, ascending, n_angles values
  const float* reflect;    // [n_angles][kWavelengthPoints]
  const float* transmit;   // [n_angles][kWavelengthPoints]
  // UNIFIED: type, finish, facet slope spread and Geant4's surface
  // properties REFLECTIVITY, EFFICIENCY, TRANSMITTANCE and the reflection
  // type constants SPECULARSPIKECONSTANT, SPECULARLOBECONSTANT,
  // BACKSCATTERCONSTANT (Lambertian: the remainder).
  SurfaceType type;
  SurfaceFinish finish;
  float sigma_alpha;  // rad, standard deviation of the facet slope angle
  const float* reflectivity;
  const float* efficiency;
  const float* transmittance;
  const float* specular_spike;
  const float* specular_lobe;
  const float* backscatter;
};

// Per triangle: unit normal (inner -> outer), materials on each side,
// surfaces, solid. One 32-byte record so that a step touches a single cache
// line for its triangle (the first access after a ray cast is a cache miss
// on large detectors). A surface can depend on the direction of travel, as
// a Geant4 border surface does: `surface` is the one a photon meets going
// from the inner side to the outer, `surface_in` the one going from the
// outer side to the inner; most triangles have the same in both.
struct alignas(32) TriangleData {
  Vec3 normal;
  std::uint32_t inner_material = 0;
  std::uint32_t outer_material = 0;
  std::int32_t surface = -1;  // inner -> outer; -1: none
  std::uint32_t solid = 0;
  std::int32_t surface_in = -1;  // outer -> inner; -1: none
};
static_assert(sizeof(TriangleData) == 32, "a triangle's record is one half cache line");

// ---- Instancing --------------------------------------------------------
// A prototype mesh placed many times (PMTs). An instance's triangles take the
// "virtual" triangle ids first_triangle .. first_triangle + triangle_count - 1,
// after the flattened triangles, so last_hit_triangle and the
// self-intersection rule work the same for both. Its per-triangle records are
// the prototype's (normal in the prototype's frame, rotated on use); its solid
// id replaces theirs. Placements are rigid (rotation and translation only).
struct InstanceData {
  float rotation[9];              // row-major: world = R * local + translation
  std::uint32_t first_triangle;   // virtual id of the prototype's triangle 0
  std::uint32_t triangle_count;   // the prototype's
  std::uint32_t prototype_first;  // its triangle 0 in ParamsView::prototype_triangles
  std::uint32_t solid;
};
// ------------------------------------------------------------------------

// Everything immutable that the stepping loop reads. Trivially copyable so a
// CUDA launcher can pass it by value.
struct ParamsView {
  const MaterialData* materials = nullptr;
  std::uint32_t n_materials = 0;
  const SurfaceData* surfaces = nullptr;
  std::uint32_t n_surfaces = 0;
  const ReemissionComponentData* components = nullptr;
  const TriangleData* triangles = nullptr;
  std::uint32_t n_triangles = 0;  // flattened triangles: ids 0 .. n_triangles - 1
  // Instances, ordered by first_triangle (the first starts at n_triangles).
  const InstanceData* instances = nullptr;
  std::uint32_t n_instances = 0;
  const TriangleData* prototype_triangles = nullptr;
  const std::int32_t* solid_channel = nullptr;  // solid -> channel index, -1 = not a sensor
  std::uint32_t n_solids = 0;
  std::uint32_t max_steps = 1000;
  // The world: photons are tracked only inside this box (mm). Outside it a
  // photon can meet nothing, and coordinates near float's limits break ray
  // casting (Embree refuses ray origins beyond ~1.8e18); such a photon ends
  // NO_HIT | NAN_ABORT like a non-finite one.
  Vec3 world_lo{-1e12f, -1e12f, -1e12f};
  Vec3 world_hi{1e12f, 1e12f, 1e12f};
  TimingMode timing = TimingMode::group;
  // Restores Chroma's deviations 1-3 (photon-physics.md §10) and reemission
  // without the energy-conservation restriction (docs/optics.md deviation 9).
  std::uint32_t chroma_compat = 0;
  std::uint64_t seed = 0;
};

// Result of a ray cast: nearest triangle with distance > 0.
struct RayHit {
  float distance = 0;          // mm
  std::int32_t triangle = -1;  // virtual id (flattened or instanced)
  std::int32_t instance = -1;  // the instance hit; -1 for a flattened triangle
};

}  // namespace acheron::optics
