#include "acheron/chroma/PhotonList.hh"

#include <algorithm>

namespace acheron::chroma {

void PhotonList::AddPhoton(const float pos[3], const float mom[3], const float pol[3], float t_,
                           float wavelength_, int pmtid_) {
  x.push_back(pos[0]);
  y.push_back(pos[1]);
  z.push_back(pos[2]);
  px.push_back(mom[0]);
  py.push_back(mom[1]);
  pz.push_back(mom[2]);
  polx.push_back(pol[0]);
  poly.push_back(pol[1]);
  polz.push_back(pol[2]);
  t.push_back(t_);
  wavelength.push_back(wavelength_);
  pmtid.push_back(pmtid_);
}

void PhotonList::ClearAll() {
  for (auto* v : floats()) v->clear();
  pmtid.clear();
}

void PhotonList::FromArrays(const float* x_, const float* y_, const float* z_, const float* px_,
                            const float* py_, const float* pz_, const float* polx_,
                            const float* poly_, const float* polz_, const float* t_,
                            const float* wavelength_, const int* pmtid_, int nphotons) {
  if (nphotons <= 0) return;
  const auto n = static_cast<std::size_t>(nphotons);
  const float* from[wire::chroma::kFloatMembers] = {x_,    y_,    z_,    px_, py_,        pz_,
                                                    polx_, poly_, polz_, t_,  wavelength_};
  const auto to = floats();
  for (std::size_t m = 0; m < wire::chroma::kFloatMembers; ++m)
    to[m]->insert(to[m]->end(), from[m], from[m] + n);
  if (pmtid_) {
    pmtid.insert(pmtid.end(), pmtid_, pmtid_ + n);
  } else {
    pmtid.insert(pmtid.end(), n, -1);
  }
}

void PhotonList::GetArrays(float* x_, float* y_, float* z_, float* px_, float* py_, float* pz_,
                           float* polx_, float* poly_, float* polz_, float* t_, float* wavelength_,
                           int* pmtid_) const {
  float* to[wire::chroma::kFloatMembers] = {x_,    y_,    z_,    px_, py_,        pz_,
                                            polx_, poly_, polz_, t_,  wavelength_};
  const auto from = floats();
  for (std::size_t m = 0; m < wire::chroma::kFloatMembers; ++m) {
    if (to[m]) std::copy(from[m]->begin(), from[m]->end(), to[m]);
  }
  if (pmtid_) std::copy(pmtid.begin(), pmtid.end(), pmtid_);
}

}  // namespace acheron::chroma
