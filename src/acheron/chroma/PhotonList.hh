// The photons a Geant4 program hands to a chroma server, with the interface
// of chroma-server's ChromaPhotonList (AddPhoton, ClearAll, FromArrays, the
// public vectors x ... pmtid), so code written for that class works
// unchanged, but without ROOT or Geant4: the list is written as ROOT would
// write the ChromaPhotonList (wire/ChromaPhotonList.hh, docs/chroma.md).
// Units: position mm, time ns, wavelength nm; (px, py, pz) is the direction.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "acheron/wire/ChromaPhotonList.hh"

namespace acheron::chroma {

// Any three-vector with x(), y(), z(): G4ThreeVector, CLHEP's Hep3Vector,
// ROOT's TVector3.
template <class V>
concept ThreeVector = requires(const V& v) {
  { v.x() } -> std::convertible_to<double>;
  { v.y() } -> std::convertible_to<double>;
  { v.z() } -> std::convertible_to<double>;
};

class PhotonList final : public wire::chroma::PhotonList {
 public:
  PhotonList() = default;
  explicit PhotonList(wire::chroma::PhotonList photons)
      : wire::chroma::PhotonList(std::move(photons)) {}

  // Appends one photon: position, direction (any length; the server
  // normalises it), polarisation, time, wavelength and a channel id (-1:
  // none; servers ignore it on input).
  template <ThreeVector V>
  void AddPhoton(const V& pos, const V& mom, const V& pol, float t, float wavelength,
                 int pmtid = -1) {
    const float p[3] = {float(pos.x()), float(pos.y()), float(pos.z())};
    const float d[3] = {float(mom.x()), float(mom.y()), float(mom.z())};
    const float q[3] = {float(pol.x()), float(pol.y()), float(pol.z())};
    AddPhoton(p, d, q, t, wavelength, pmtid);
  }
  void AddPhoton(const float pos[3], const float mom[3], const float pol[3], float t,
                 float wavelength, int pmtid = -1);

  // Empties every vector.
  void ClearAll();

  // Appends nphotons photons from C arrays, one per member (pmtid may be
  // null: -1 for every photon).
  void FromArrays(const float* x, const float* y, const float* z, const float* px, const float* py,
                  const float* pz, const float* polx, const float* poly, const float* polz,
                  const float* t, const float* wavelength, const int* pmtid, int nphotons);
  // Copies the size() values of each member into C arrays (any of them may
  // be null to skip that member).
  void GetArrays(float* x, float* y, float* z, float* px, float* py, float* pz, float* polx,
                 float* poly, float* polz, float* t, float* wavelength, int* pmtid) const;
};

}  // namespace acheron::chroma
