// The one stepping loop for one photon (photon-physics.md §5, Chroma's
// propagate.cu), shared by every launcher. Header-only; no virtual calls,
// exceptions or allocation.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "acheron/optics/Bulk.hh"
#include "acheron/optics/Fresnel.hh"
#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Step.hh"
#include "acheron/optics/Surfaces.hh"
#include "acheron/optics/Tables.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// How one call to propagate() ended. Exactly one per photon.
enum class Outcome : std::uint8_t {
  already_terminal,  // history intersected history::terminal on entry; untouched
  no_hit,            // NO_HIT: the ray left the geometry
  bulk_absorb,
  surface_detect,
  surface_absorb,
  nan_abort,  // NO_HIT | NAN_ABORT: non-finite position or direction, or outside the world
  max_steps,  // still alive after max_steps; history keeps no terminal bit
};

struct PropagateResult {
  std::uint32_t steps = 0;  // ray casts made by this call
  StepCounts counts;        // boundaries reached, scatters, reemissions
  Outcome outcome = Outcome::already_terminal;
  bool wavelength_clamped = false;  // entry wavelength outside 60..995 nm (or NaN)
};

// Counters over many photons (per event, chunk or batch); merge with +=.
// Every recorded photon is in exactly one of the outcome counters.
struct Diagnostics {
  std::uint64_t photons = 0;
  std::uint64_t steps = 0;  // ray casts, for steps/s
  std::uint64_t already_terminal = 0;
  std::uint64_t no_hit = 0;
  std::uint64_t bulk_absorb = 0;
  std::uint64_t surface_detect = 0;
  std::uint64_t surface_absorb = 0;
  std::uint64_t nan_abort = 0;
  std::uint64_t max_steps = 0;
  std::uint64_t wavelength_clamped = 0;

  ACHERON_FUNCTION void record(const PropagateResult& r) {
    ++photons;
    steps += r.steps;
    wavelength_clamped += r.wavelength_clamped ? 1u : 0u;
    switch (r.outcome) {
      case Outcome::already_terminal:
        ++already_terminal;
        break;
      case Outcome::no_hit:
        ++no_hit;
        break;
      case Outcome::bulk_absorb:
        ++bulk_absorb;
        break;
      case Outcome::surface_detect:
        ++surface_detect;
        break;
      case Outcome::surface_absorb:
        ++surface_absorb;
        break;
      case Outcome::nan_abort:
        ++nan_abort;
        break;
      case Outcome::max_steps:
        ++max_steps;
        break;
    }
  }

  ACHERON_FUNCTION Diagnostics& operator+=(const Diagnostics& o) {
    photons += o.photons;
    steps += o.steps;
    already_terminal += o.already_terminal;
    no_hit += o.no_hit;
    bulk_absorb += o.bulk_absorb;
    surface_detect += o.surface_detect;
    surface_absorb += o.surface_absorb;
    nan_abort += o.nan_abort;
    max_steps += o.max_steps;
    wavelength_clamped += o.wavelength_clamped;
    return *this;
  }
};

// Unit vector along v, scaled first so huge components cannot overflow the
// norm; NaN components if v is zero or not finite.
ACHERON_FUNCTION inline Vec3 normalize_checked(Vec3 v) {
  const float m = std::fmax(std::fabs(v.x), std::fmax(std::fabs(v.y), std::fabs(v.z)));
  if (!(m > 0.0f) || !isfinite(v)) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    return Vec3{nan, nan, nan};
  }
  return normalize(v / m);
}

// True if p lies in the box [lo, hi] (false for NaN coordinates).
ACHERON_FUNCTION inline bool inside(Vec3 p, Vec3 lo, Vec3 hi) {
  return p.x >= lo.x && p.x <= hi.x && p.y >= lo.y && p.y <= hi.y && p.z >= lo.z && p.z <= hi.z;
}

// The step code of a surface model's outcome other than Action::pass, from
// the history bits it set in that step.
ACHERON_FUNCTION inline std::uint32_t surface_step_code(std::uint32_t bits, Action action) {
  if (action == Action::stop) {
    return (bits & history::surface_detect) ? step_code::surface_detect : step_code::surface_absorb;
  }
  if (bits & history::surface_reemit) return step_code::surface_reemit;
  if (bits & history::reflect_diffuse) return step_code::diffuse_reflect;
  if (bits & history::reflect_specular) return step_code::specular_reflect;
  return step_code::surface_transmit;  // SURFACE_TRANSMIT, or a unified-model refraction
}

// Propagates one photon through the geometry until it stops or max_steps
// casts have been made. Tracer is any type with
//   ACHERON_FUNCTION bool intersect(Vec3 origin, Vec3 direction,
//                                   std::int32_t exclude_triangle, RayHit& hit) const
// returning the nearest triangle at distance > 0 other than exclude_triangle.
// Random draws are keyed by (params.seed, photon.event, photon.index), so the
// result does not depend on which thread or batch runs the photon.
//
// On entry: a photon whose history intersects history::terminal is left
// untouched; otherwise direction and polarization are normalized, and a
// polarization that is non-finite, zero or parallel to the direction is
// replaced by a random one perpendicular to it. The input history is used as
// given (masking it to the creator bits is the caller's job, §10 deviation 5).
//
// The recorder (NoStepRecorder or StepRecorder, Step.hh) is told each step's
// code; with NoStepRecorder the recording compiles away.
template <class Tracer, class Recorder>
ACHERON_FUNCTION PropagateResult propagate(Photon& photon, const ParamsView& params,
                                           const Tracer& tracer, Recorder& recorder) {
  PropagateResult result;
  if (photon.history & history::terminal) return result;
  result.wavelength_clamped = !wavelength_in_range(photon.wavelength);
  Random rng(params.seed, photon.event, photon.index);
  photon.direction = normalize_checked(photon.direction);
  if (isfinite(photon.direction)) {
    const Vec3 p = normalize_checked(photon.polarization);
    if (!isfinite(p) || norm(cross(p, photon.direction)) < 1e-6f) {
      photon.polarization = rng.perpendicular(photon.direction);
    } else {
      photon.polarization = p;
    }
  }
  const bool chroma_compat = params.chroma_compat != 0;

  for (std::uint32_t step = 0; step < params.max_steps; ++step) {
    if (!isfinite(photon.position) || !isfinite(photon.direction) ||
        !inside(photon.position, params.world_lo, params.world_hi)) {
      photon.history |= history::no_hit | history::nan_abort;
      result.outcome = Outcome::nan_abort;
      recorder.record(step_code::nan_abort);
      return result;
    }
    RayHit hit;
    ++result.steps;
    if (!tracer.intersect(photon.position, photon.direction, photon.last_hit_triangle, hit)) {
      photon.history |= history::no_hit;
      photon.last_hit_triangle = -1;
      result.outcome = Outcome::no_hit;
      recorder.record(step_code::no_hit);
      return result;
    }
    photon.last_hit_triangle = hit.triangle;
    const StepState s = make_step_state(params, photon, hit);

    [[maybe_unused]] const std::uint32_t scatters = result.counts.scatters;
    Action action = BulkStep{&params, &result.counts}(photon, s, rng);
    if (action == Action::stop) {
      result.outcome = Outcome::bulk_absorb;
      recorder.record(step_code::bulk_absorb);
      return result;
    }
    if (action == Action::next_step) {
      if constexpr (Recorder::enabled) {
        recorder.record(result.counts.scatters != scatters ? step_code::rayleigh_scatter
                                                           : step_code::bulk_reemit);
      }
      continue;
    }

    if (s.surface >= 0) {
      if constexpr (Recorder::enabled) {
        // The surface models only set history bits, so the bits this step
        // sets tell what it did: run the model on a cleared history and
        // merge it back.
        const std::uint32_t before = photon.history;
        photon.history = 0;
        action = apply_surface(photon, s, params.surfaces[s.surface], chroma_compat, rng);
        const std::uint32_t bits = photon.history;
        photon.history = before | bits;
        if (action != Action::pass) recorder.record(surface_step_code(bits, action));
      } else {
        action = apply_surface(photon, s, params.surfaces[s.surface], chroma_compat, rng);
      }
      if (action == Action::stop) {
        result.outcome = (photon.history & history::surface_detect) ? Outcome::surface_detect
                                                                    : Outcome::surface_absorb;
        return result;
      }
      if (action == Action::next_step) continue;
    }
    FresnelBoundary{s.n1, s.n2, chroma_compat}(photon, s.normal, rng);
    if constexpr (Recorder::enabled) {
      // The normal points back into the medium the photon came from.
      recorder.record(dot(photon.direction, s.normal) > 0.0f ? step_code::boundary_reflect
                                                             : step_code::boundary_transmit);
    }
  }
  result.outcome = Outcome::max_steps;
  return result;
}

// As above without a step history.
template <class Tracer>
ACHERON_FUNCTION PropagateResult propagate(Photon& photon, const ParamsView& params,
                                           const Tracer& tracer) {
  NoStepRecorder recorder;
  return propagate(photon, params, tracer, recorder);
}

// As above, also recording the result in `diagnostics`.
template <class Tracer>
ACHERON_FUNCTION PropagateResult propagate(Photon& photon, const ParamsView& params,
                                           const Tracer& tracer, Diagnostics& diagnostics) {
  const PropagateResult result = propagate(photon, params, tracer);
  diagnostics.record(result);
  return result;
}

// As above with a step history.
template <class Tracer>
ACHERON_FUNCTION PropagateResult propagate(Photon& photon, const ParamsView& params,
                                           const Tracer& tracer, Diagnostics& diagnostics,
                                           StepRecorder& recorder) {
  const PropagateResult result = propagate(photon, params, tracer, recorder);
  diagnostics.record(result);
  return result;
}

}  // namespace acheron::optics
