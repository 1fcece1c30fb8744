// Events shared by the photon-service benchmarks: Cherenkov tracks stepped
// along z, one per event, with the event index as id and random stream.
#pragma once

#include <cstdint>
#include <vector>

#include "acheron/optics/Sources.hh"
#include "acheron/photon/Client.hh"

namespace acheron::bench {

inline std::vector<photon::EventPhotons> make_events(int n, std::uint32_t photons) {
  std::vector<photon::EventPhotons> events;
  for (int e = 0; e < n; ++e) {
    optics::PhotonBatch b;
    optics::CherenkovTrack t;
    t.start = {0, 0, -500.f + 100.f * e};
    optics::append_photons(b, t, photons, static_cast<std::uint32_t>(e), 3);
    events.push_back(photon::EventPhotons::from_batch(b, e, e));
  }
  return events;
}

}  // namespace acheron::bench
