// Per-photon lookups in the property tables (photon-physics.md §4): linear
// interpolation on the wavelength grid, CDF sampling, phase and group
// velocity. Header-only, callable from host and device code.
#pragma once

#include <cstdint>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Largest grid wavelength, 995 nm.
inline constexpr float kWavelengthMax =
    kWavelengthMin + kWavelengthStep * static_cast<float>(kWavelengthPoints - 1);

// A wavelength's place on the grid: the lower grid point and the fraction
// towards the next one, in [0, 1]. Computed once per step and shared by all
// lookups at the same wavelength.
struct GridPoint {
  int index = 0;  // 0 .. kWavelengthPoints - 2
  float fraction = 0;
};

// Clamps below 60 nm and above 995 nm (a NaN wavelength reads the 60 nm end).
ACHERON_FUNCTION inline GridPoint wavelength_grid_point(float wavelength) {
  float x = (wavelength - kWavelengthMin) / kWavelengthStep;
  if (!(x > 0.0f)) x = 0.0f;  // also catches NaN before the int conversion
  constexpr float kLast = static_cast<float>(kWavelengthPoints - 1);
  if (x >= kLast) return GridPoint{kWavelengthPoints - 2, 1.0f};
  const int i = static_cast<int>(x);
  return GridPoint{i, x - static_cast<float>(i)};
}

// True if the wavelength lies on the grid's range, so lookups do not clamp.
ACHERON_FUNCTION ACHERON_FORCEINLINE bool wavelength_in_range(float wavelength) {
  return wavelength >= kWavelengthMin && wavelength <= kWavelengthMax;
}

// Linear interpolation of a kWavelengthPoints table. a + f (b - a) returns a
// exactly when neighbouring values are equal, and interpolating each table
// separately preserves sums of probabilities.
ACHERON_FUNCTION ACHERON_FORCEINLINE float lookup(const float* table, GridPoint g) {
  const float a = table[g.index];
  return a + g.fraction * (table[g.index + 1] - a);
}

ACHERON_FUNCTION ACHERON_FORCEINLINE float interpolate_wavelength(const float* table,
                                                                  float wavelength) {
  return lookup(table, wavelength_grid_point(wavelength));
}

// Inverse-CDF sampling on a uniform grid x_i = x0 + dx i, i < n (random.h's
// sample_cdf): bisect to neighbours lo < hi = lo + 1 with cdf[lo] <= u <
// cdf[hi] and interpolate linearly inside that cell, so the density is
// piecewise constant. u below cdf[0] gives x0; u at or above cdf[n-1] (only
// possible when the last value is below 1 within the load-time tolerance)
// gives the last grid point.
ACHERON_FUNCTION inline float sample_cdf(const float* cdf, int n, float x0, float dx, float u) {
  if (!(u >= cdf[0])) return x0;
  if (u >= cdf[n - 1]) return x0 + dx * static_cast<float>(n - 1);
  int lo = 0;
  int hi = n - 1;  // invariant: cdf[lo] <= u < cdf[hi]
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (cdf[mid] <= u) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return x0 + dx * static_cast<float>(lo) + dx * (u - cdf[lo]) / (cdf[hi] - cdf[lo]);
}

// A wavelength (nm) from a CDF over the wavelength grid.
ACHERON_FUNCTION ACHERON_FORCEINLINE float sample_wavelength_cdf(const float* cdf, float u) {
  return sample_cdf(cdf, kWavelengthPoints, kWavelengthMin, kWavelengthStep, u);
}

// Speed (mm/ns) at which a photon of this wavelength crosses the material:
// phase velocity c/n as in Chroma, or the precomputed group velocity
// c/(n - lambda dn/dlambda) (photon-physics.md §6).
ACHERON_FUNCTION inline float photon_speed(const MaterialData& material, GridPoint g,
                                           TimingMode timing) {
  if (timing == TimingMode::group) return lookup(material.group_velocity, g);
  return kSpeedOfLight / lookup(material.refractive_index, g);
}

}  // namespace acheron::optics
