// Photon generators for demos, benchmarks and tests: an isotropic point
// source and a Cherenkov-like cone along a muon-like track.
#pragma once

#include <cstdint>

#include "acheron/optics/Engine.hh"

namespace acheron::optics {

struct IsotropicSource {
  Vec3 position;
  float wavelength_min = 400.f;  // nm, uniform in [min, max]
  float wavelength_max = 800.f;
  float time = 0.f;  // ns
};

// Cherenkov light of a straight track: photons emitted uniformly along
// [start, start + length * direction] on a cone of half-angle acos(1 / (n beta))
// around the track, with the 1/lambda^2 spectrum between the wavelength
// limits, polarized in the plane of the track and the photon, flagged CHERENKOV.
struct CherenkovTrack {
  Vec3 start;
  Vec3 direction{0, 0, 1};
  float length = 1000.f;        // mm
  float cos_theta = 1 / 1.34f;  // 1 / (n beta): beta = 1 in water
  float wavelength_min = 300.f;
  float wavelength_max = 600.f;
  float time = 0.f;  // ns at start; the track moves at c
};

// n photons for one event (photon indices 0..n-1); draws are keyed by (seed,
// event, index) on a stream distinct from propagation's.
void append_photons(PhotonBatch& batch, const IsotropicSource& source, std::uint32_t n,
                    std::uint32_t event, std::uint64_t seed);
void append_photons(PhotonBatch& batch, const CherenkovTrack& source, std::uint32_t n,
                    std::uint32_t event, std::uint64_t seed);

}  // namespace acheron::optics
