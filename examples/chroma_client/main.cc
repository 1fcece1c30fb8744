// Usage: chroma_client ENDPOINT [EVENTS]
//
// The structure of a Geant4 user action that hands optical photons to a
// chroma server, as chroma-server's clients do: during an event every
// optical photon is added to a ChromaPhotonList instead of being tracked
// (a stacking or tracking action kills the track); at the end of the event
// the list goes to the server and the detected photons come back, pmtid
// holding the channel each one hit.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "acheron/chroma/Client.hh"

// Stand-in for G4ThreeVector (AddPhoton takes any type with x(), y(), z()).
struct ThreeVector {
  double px, py, pz;
  double x() const { return px; }
  double y() const { return py; }
  double z() const { return pz; }
};

class ChromaHandoff {
 public:
  explicit ChromaHandoff(const std::string& endpoint)
      : client_({.endpoint = endpoint, .timeout = std::chrono::milliseconds(30000)}) {}

  // ClassifyNewTrack / PreUserTrackingAction for an optical photon: record
  // it (and kill the track). Units: mm, ns, nm.
  void collect(const ThreeVector& pos, const ThreeVector& dir, const ThreeVector& pol,
               double time_ns, double wavelength_nm) {
    photons_.AddPhoton(pos, dir, pol, float(time_ns), float(wavelength_nm));
  }

  // EndOfEventAction: one list per event. The event id goes out as the
  // list's fUniqueID and keys the server's random numbers.
  void end_of_event(int event_id) {
    const auto detected = client_.simulate(photons_, static_cast<std::uint32_t>(event_id));
    std::printf("event %d: %zu photons -> %zu detected", event_id, photons_.size(),
                detected.size());
    if (detected.size()) {
      std::printf(", first on PMT %d at (%.0f, %.0f, %.0f) mm, t = %.2f ns", detected.pmtid[0],
                  detected.x[0], detected.y[0], detected.z[0], detected.t[0]);
    }
    std::printf("\n");
    photons_.ClearAll();
  }

 private:
  acheron::chroma::Client client_;
  acheron::chroma::PhotonList photons_;
};

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ENDPOINT [EVENTS]\n", argv[0]);
    return 2;
  }
  const int events = argc > 2 ? std::atoi(argv[2]) : 3;
  try {
    ChromaHandoff handoff(argv[1]);
    // Stand-in for Geant4: an isotropic burst of 420 nm photons per event.
    std::mt19937 rng(1);
    std::normal_distribution<double> g;
    for (int e = 0; e < events; ++e) {
      for (int i = 0; i < 2000; ++i) {
        ThreeVector d{g(rng), g(rng), g(rng)};
        const double n = std::sqrt(d.px * d.px + d.py * d.py + d.pz * d.pz);
        if (n < 1e-3) continue;
        d = {d.px / n, d.py / n, d.pz / n};
        // A polarisation perpendicular to the direction.
        ThreeVector p{d.py, -d.px, 0};
        const double pn = std::hypot(p.px, p.py);
        p = pn < 1e-3 ? ThreeVector{1, 0, 0} : ThreeVector{p.px / pn, p.py / pn, 0};
        handoff.collect({0, 0, 0}, d, p, 0.0, 420.0);
      }
      handoff.end_of_event(e);
    }
  } catch (const std::exception& e) {
    // A server's error reply or no reply at all: say so, never hang.
    std::fprintf(stderr, "chroma_client: %s\n", e.what());
    return 1;
  }
  return 0;
}
