// Between the chroma-server list and the ChAR0N photon protocol: a
// ChromaPhotonList as a PHOTONDATA request, and SIM_COMPLETE hits as the
// list of detected photons a chroma-server client expects back. Lets the
// chroma front reuse everything the ChAR0N front has (validation, engine,
// broker queue, workers). Pure: no sockets.
#pragma once

#include <cstdint>
#include <vector>

#include "acheron/core/Payload.hh"
#include "acheron/core/Result.hh"
#include "acheron/wire/Charon.hh"
#include "acheron/wire/ChromaPhotonList.hh"

namespace acheron::wire::chroma {

// The photons as a current-generation PHOTONDATA request for `event_id`:
// the arrays are moved into the request's frames (no copy), creator flags
// are 0 (a ChromaPhotonList has none) and pmtid is ignored, as chroma-server
// ignores it on input. The request is as valid as the list: decode()
// refuses non-finite values, the engine's input checks do the rest.
charon::PhotonData to_photon_data(PhotonList&& photons, std::uint32_t event_id);
// The same request as frames: [PHOTONDATA, metadata, 11 arrays, flags].
std::vector<Buffer> to_photon_data_frames(PhotonList&& photons, std::uint32_t event_id);

// The detected photons of a current-generation SIM_COMPLETE: direction,
// polarisation, time and wavelength of each hit, pmtid = its channel. A
// SIM_COMPLETE carries no hit position, so x, y, z are the channel's
// position from DETECTOR_INFO (the PMT's placement, mm). invalid_argument
// for a channel outside `channels` or hits without directions (a v1 reply).
Result<PhotonList> from_hits(const charon::Hits& hits, const charon::DetectorInfo& channels);

}  // namespace acheron::wire::chroma
