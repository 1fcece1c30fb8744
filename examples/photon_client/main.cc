// Usage: photon_client ENDPOINT [EVENTS]
//
// The structure of a Geant4 user action that hands optical photons to the
// photon service: at begin of run connect and fetch the channel map; during
// an event collect every optical photon instead of tracking it; at end of
// event send them and turn the hits into detector hits.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "acheron/photon/Client.hh"

namespace charon = acheron::wire::charon;

class OpticalPhotonHandoff {
 public:
  explicit OpticalPhotonHandoff(const std::string& endpoint)
      : client_({.endpoint = endpoint, .timeout = std::chrono::milliseconds(10000)}) {}

  // BeginOfRunAction
  void begin_of_run() {
    if (!client_.ping()) throw std::runtime_error("photon service not answering");
    channels_ = client_.detector_info();
    std::printf("connected: %zu channels\n", channels_.size());
  }

  // PreUserTrackingAction for an optical photon: record it (and kill the
  // track in Geant4). Units: mm, ns, nm; flags: CHERENKOV or SCINTILLATION.
  void collect(const float pos[3], const float dir[3], const float pol[3], float wavelength_nm,
               float time_ns, std::uint32_t creator_flag) {
    const float v[charon::kComponents] = {pos[0], pos[1], pos[2], dir[0],        dir[1], dir[2],
                                          pol[0], pol[1], pol[2], wavelength_nm, time_ns};
    for (int c = 0; c < charon::kComponents; ++c) event_.f32[c].push_back(v[c]);
    event_.flags.push_back(creator_flag);
  }

  // EndOfEventAction: one request per event, even with no photons.
  void end_of_event(std::uint32_t event_id) {
    event_.event_id = event_id;
    const auto hits = client_.simulate(event_);
    std::printf("event %u: %zu photons -> %zu hits", event_id, event_.size(), hits.size());
    if (hits.size()) {
      const auto c = hits.channel[0];
      std::printf(", first on channel %u at (%.0f, %.0f, %.0f) mm, t = %.2f ns", c, channels_.x[c],
                  channels_.y[c], channels_.z[c], hits.time[0]);
    }
    std::printf("\n");
    event_ = {};
  }

 private:
  acheron::photon::Client client_;
  charon::DetectorInfo channels_;
  acheron::photon::EventPhotons event_;
};

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ENDPOINT [EVENTS]\n", argv[0]);
    return 2;
  }
  const int events = argc > 2 ? std::atoi(argv[2]) : 3;
  OpticalPhotonHandoff handoff(argv[1]);
  handoff.begin_of_run();
  // Stand-in for Geant4: an isotropic burst of Cherenkov-labelled photons.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int e = 0; e < events; ++e) {
    for (int i = 0; i < 2000; ++i) {
      float d[3] = {u(rng), u(rng), u(rng)};
      const float n = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      if (n < 1e-3f) continue;
      for (float& x : d) x /= n;
      // Any vector perpendicular to d.
      float p[3] = {d[1], -d[0], 0};
      const float pn = std::sqrt(p[0] * p[0] + p[1] * p[1]);
      if (pn < 1e-3f)
        p[0] = 1, p[1] = 0;
      else
        p[0] /= pn, p[1] /= pn;
      const float origin[3] = {0, 0, 0};
      handoff.collect(origin, d, p, 420.f, 0.f, 1u << 10);
    }
    handoff.end_of_event(static_cast<std::uint32_t>(e));
  }
  return 0;
}
