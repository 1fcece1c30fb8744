#include "acheron/wire/ChromaCharon.hh"

#include <cstring>
#include <string>

namespace acheron::wire::chroma {

charon::PhotonData to_photon_data(PhotonList&& p, std::uint32_t event_id) {
  charon::PhotonData d;
  d.event_id = event_id;
  d.num_photons = static_cast<std::uint32_t>(p.size());
  d.version = charon::Version::current;
  // ChAR0N's order: position, direction, polarisation, wavelength, time.
  std::vector<float>* order[charon::kComponents] = {
      &p.x, &p.y, &p.z, &p.px, &p.py, &p.pz, &p.polx, &p.poly, &p.polz, &p.wavelength, &p.t};
  for (int c = 0; c < charon::kComponents; ++c)
    d.f32[c] = Buffer::from_vector(std::move(*order[c]));
  d.flags = Buffer::allocate(4 * std::size_t{d.num_photons});  // zero: no creator bits
  p.pmtid.clear();
  return d;
}

std::vector<Buffer> to_photon_data_frames(PhotonList&& photons, std::uint32_t event_id) {
  charon::PhotonData d = to_photon_data(std::move(photons), event_id);
  std::vector<Buffer> f;
  f.reserve(14);
  f.push_back(Buffer::copy_of(charon::kPhotonData));
  Buffer meta = Buffer::allocate(8);
  std::memcpy(meta.mutable_data(), &d.event_id, 4);
  std::memcpy(meta.mutable_data() + 4, &d.num_photons, 4);
  f.push_back(std::move(meta));
  for (auto& a : d.f32) f.push_back(std::move(a));
  f.push_back(std::move(d.flags));
  return f;
}

Result<PhotonList> from_hits(const charon::Hits& h, const charon::DetectorInfo& channels) {
  const std::size_t n = h.size();
  for (const auto* v :
       {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z, &h.wavelength, &h.time}) {
    if (v->size() != n) {
      return Result<PhotonList>::failure(
          StatusCode::invalid_argument,
          "SIM_COMPLETE without directions and polarisations (a v1 reply) cannot fill a list");
    }
  }
  PhotonList out;
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t c = h.channel[i];
    if (c >= channels.size()) {
      return Result<PhotonList>::failure(StatusCode::invalid_argument,
                                         "hit on channel " + std::to_string(c) +
                                             " of a detector with " +
                                             std::to_string(channels.size()) + " channels");
    }
    out.x[i] = channels.x[c];
    out.y[i] = channels.y[c];
    out.z[i] = channels.z[c];
    out.pmtid[i] = static_cast<std::int32_t>(c);
  }
  out.px = h.dir_x;
  out.py = h.dir_y;
  out.pz = h.dir_z;
  out.polx = h.pol_x;
  out.poly = h.pol_y;
  out.polz = h.pol_z;
  out.t = h.time;
  out.wavelength = h.wavelength;
  return out;
}

}  // namespace acheron::wire::chroma
