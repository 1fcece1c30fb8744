#include "acheron/optics/Sources.hh"

#include <cmath>

#include "acheron/optics/Random.hh"

namespace acheron::optics {
namespace {
// Separates generator streams from the propagation streams of the same seed.
constexpr std::uint64_t kSourceSalt = 0x5DEECE66Dull;
}  // namespace

void append_photons(PhotonBatch& batch, const IsotropicSource& s, std::uint32_t n,
                    std::uint32_t event, std::uint64_t seed) {
  batch.reserve(batch.size() + n);
  for (std::uint32_t i = 0; i < n; ++i) {
    Random rng(seed ^ kSourceSalt, event, i);
    Photon p;
    p.position = s.position;
    p.direction = rng.uniform_sphere();
    p.polarization = rng.perpendicular(p.direction);
    p.wavelength = s.wavelength_min + (s.wavelength_max - s.wavelength_min) * rng.uniform();
    p.time = s.time;
    p.event = event;
    p.index = i;
    batch.push_back(p);
  }
}

void append_photons(PhotonBatch& batch, const CherenkovTrack& s, std::uint32_t n,
                    std::uint32_t event, std::uint64_t seed) {
  batch.reserve(batch.size() + n);
  const Vec3 axis = normalize(s.direction);
  Vec3 b1, b2;
  orthonormal_basis(axis, b1, b2);
  const float sin_theta = std::sqrt(std::fmax(0.f, 1 - s.cos_theta * s.cos_theta));
  const float inv_max = 1 / s.wavelength_min, inv_min = 1 / s.wavelength_max;
  for (std::uint32_t i = 0; i < n; ++i) {
    Random rng(seed ^ kSourceSalt, event, i);
    const float along = s.length * rng.uniform();
    const float phi = 6.2831853f * rng.uniform();
    Photon p;
    p.position = s.start + along * axis;
    p.direction = s.cos_theta * axis + sin_theta * (std::cos(phi) * b1 + std::sin(phi) * b2);
    // Polarization: the component of the track direction perpendicular to the
    // photon direction (Cherenkov light is polarized in that plane).
    p.polarization = normalize(axis - dot(axis, p.direction) * p.direction);
    // dN/dlambda ~ 1/lambda^2 means 1/lambda is uniform.
    p.wavelength = 1 / (inv_min + (inv_max - inv_min) * rng.uniform());
    p.time = s.time + along / kSpeedOfLight;
    p.history = history::cherenkov;
    p.event = event;
    p.index = i;
    batch.push_back(p);
  }
}

}  // namespace acheron::optics
