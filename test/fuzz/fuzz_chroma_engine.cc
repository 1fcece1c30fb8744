// Fuzz target: a chroma request carried through the whole photon service
// path (the check in place, input checks, the engine, the reply): no input
// may crash the engine, every hit is on a real channel and comes from a real
// input photon, and every reply encodes (no NaN or inf in a hit). Inputs
// that do not decode are read as raw float32 photons instead (11 per photon,
// any bits), so the engine also sees what the ChAR0N front lets through:
// extreme coordinates (up to FLT_MAX), subnormals, zero and non-finite
// directions, absurd wavelengths and times.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "acheron/optics/Detector.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/photon/Convert.hh"
#include "acheron/wire/ChromaCharon.hh"

namespace {
using namespace acheron;
namespace chroma = wire::chroma;

constexpr std::size_t kMaxPhotons = 64;  // per input: keeps each run short

const optics::Engine& engine() {
  static const auto detector = std::make_shared<const optics::Detector>(
      optics::Detector::default_detector({.pmts = 24, .pmt_segments = 8, .wall_segments = 24}));
  static const optics::Engine e(detector, {.threads = 1, .chunk = 16});
  return e;
}

chroma::PhotonList raw_photons(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kBytes = 4 * chroma::kFloatMembers;
  chroma::PhotonList p;
  p.resize(std::min(size / kBytes, kMaxPhotons));
  const auto floats = p.floats();
  for (std::size_t i = 0; i < p.size(); ++i) {
    for (std::size_t m = 0; m < chroma::kFloatMembers; ++m) {
      std::memcpy(&(*floats[m])[i], data + i * kBytes + 4 * m, 4);
    }
    p.pmtid[i] = -1;
  }
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  // A list is read where it lies, as `photon serve` does; anything else
  // becomes raw photons through the PHOTONDATA conversion (the broker's way).
  auto view = chroma::decode_view(in, chroma::Limits{.max_photons = kMaxPhotons});
  chroma::Header header;
  optics::PhotonBatch batch;
  std::size_t n = 0;
  std::uint32_t event_id = 0;
  if (view) {
    header = view->header;
    n = view->size;
    event_id = header.unique_id;
    photon::append_event(batch, in, *view, event_id);
  } else {
    chroma::PhotonList photons = raw_photons(data, size);
    n = photons.size();
    header.unique_id = event_id = size > 0 ? data[0] : 0;
    const auto request = chroma::to_photon_data(std::move(photons), event_id);
    photon::append_event(batch, request, event_id);
  }
  if (batch.size() != n) std::abort();
  const auto result = engine().simulate(batch, /*seed=*/1);

  const std::size_t channels = engine().detector().geometry().channels().size();
  std::uint32_t previous = 0;
  for (std::size_t i = 0; i < result.hits.size(); ++i) {
    const auto& h = result.hits[i];
    if (h.channel >= channels || h.photon >= n || h.event != event_id) std::abort();
    if (i > 0 && h.photon <= previous) std::abort();  // input order, one hit per photon
    previous = h.photon;
  }
  const auto reply =
      photon::to_chroma_list(result.hits.data(), result.hits.data() + result.hits.size());
  auto bytes = chroma::encode(reply, header);
  if (!bytes) std::abort();  // a hit with a non-finite value
  auto back = chroma::decode({bytes->data(), bytes->size()});
  if (!back || back->photons.size() != result.hits.size()) std::abort();
  return 0;
}
