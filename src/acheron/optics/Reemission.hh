// What bulk reemission components and WLS surfaces share: the reemitted
// wavelength, drawn from the emission spectrum above the absorbed
// wavelength (energy conservation, as Geant4's G4OpWLS), and the reemission
// delay, drawn from a time profile (a fixed delay plus a mixture of
// exponentials with optional rise times, or a tabulated CDF kept at its own
// points). Header-only, callable from host and device code.
#pragma once

#include <cmath>
#include <cstdint>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"
#include "acheron/optics/Tables.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Inverse-CDF sampling on n ascending points (x_i, cdf_i), linear between
// them: bisect to neighbours lo < hi = lo + 1 with cdf[lo] <= u < cdf[hi]
// and interpolate inside that interval. u below cdf[0] gives x[0]; u at or
// above cdf[n-1] gives x[n-1].
ACHERON_FUNCTION inline float sample_points(const float* x, const float* cdf, std::uint32_t n,
                                            float u) {
  if (!(u >= cdf[0])) return x[0];
  if (u >= cdf[n - 1]) return x[n - 1];
  std::uint32_t lo = 0;
  std::uint32_t hi = n - 1;  // invariant: cdf[lo] <= u < cdf[hi]
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] <= u) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return x[lo] + (x[hi] - x[lo]) * ((u - cdf[lo]) / (cdf[hi] - cdf[lo]));
}

// The wavelength (nm) of a reemitted photon from a CDF over the wavelength
// grid, given the absorbed photon's wavelength. With `conserve_energy` the
// draw is restricted to wavelengths at or above the absorbed one: u is
// mapped onto [F(absorbed), F_max) of the continuous (piecewise-linear) CDF
// F, so the restricted density is the spectrum's own shape renormalised
// above the absorbed wavelength; a result rounded below the absorbed
// wavelength by float arithmetic is raised to it. Returns false when
// nothing of the spectrum lies above the absorbed wavelength (the photon is
// absorbed, as Geant4 then emits no secondary). Without it (Chroma) the
// whole spectrum is drawn from. With the absorbed wavelength below the
// spectrum both draw the same wavelength from the same u.
ACHERON_FUNCTION inline bool sample_reemission_wavelength(const float* cdf, float absorbed,
                                                          bool conserve_energy, float u,
                                                          float& wavelength) {
  if (!conserve_energy) {
    wavelength = sample_wavelength_cdf(cdf, u);
    return true;
  }
  const float total = cdf[kWavelengthPoints - 1];
  const float below = interpolate_wavelength(cdf, absorbed);
  if (!(below < total)) return false;
  // below + u (total - below) < total for u < 1 except by rounding.
  const float v = std::fmin(below + u * (total - below), std::nextafter(total, 0.0f));
  wavelength = std::fmax(sample_wavelength_cdf(cdf, v), absorbed);
  return true;
}

// A reemission delay (ns) from a time profile: the fixed delay plus, if the
// profile has them, one exponential term chosen by its weight (one draw,
// skipped for a single term) and its decay -tau ln u, plus -tau' ln u' for a
// rise (Geant4's scintillation shape exp(-t/tau)(1 - exp(-t/tau_r)), which
// is the sum of two independent exponentials of means tau and tau' = tau
// tau_r / (tau + tau_r)); or one draw from the tabulated CDF.
ACHERON_FUNCTION inline float sample_delay(const TimeProfileData& profile, Random& rng) {
  float t = profile.delay;
  if (profile.n_exponentials > 0) {
    const float* term = profile.exponentials;
    if (profile.n_exponentials > 1) {
      const float u = rng.uniform();
      for (std::uint32_t k = 0; k + 1 < profile.n_exponentials && !(u < term[0]); ++k) term += 3;
    }
    t += -term[1] * std::log(rng.uniform());
    if (term[2] > 0.0f) t += -term[2] * std::log(rng.uniform());
  } else if (profile.n_points > 0) {
    t += sample_points(profile.times, profile.cdf, profile.n_points, rng.uniform());
  }
  return t;
}

}  // namespace acheron::optics
