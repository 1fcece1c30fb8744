// Fuzz target: ChAR0N request decoding must never crash; an accepted
// PHOTONDATA must have every array readable for num_photons entries, and
// reply decoders (the STEPS frame's too) must survive anything.
#include <cstdlib>
#include <variant>

#include "FuzzFrames.hh"
#include "acheron/wire/Charon.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron::wire::charon;
  auto frames = acheron::fuzz::split_frames(data, size);
  auto r = decode_request(frames, Limits{.max_photons = 1 << 20});
  if (auto* req = std::get_if<Request>(&r); req && req->kind == RequestKind::photon_data) {
    float sum = 0;
    for (std::size_t i = 0; i < req->photons.num_photons; ++i) {
      for (int c = 0; c < kComponents; ++c) sum += req->photons.value(static_cast<Component>(c), i);
      sum += static_cast<float>(req->photons.creator_flags(i));
    }
    if (sum == 1234.5f) std::abort();  // keeps the reads alive; practically never true
  } else if (auto* rej = std::get_if<Rejection>(&r); rej && rej->reply.empty()) {
    std::abort();
  }
  (void)decode_sim_complete(frames);
  (void)decode_detector_info(frames);
  (void)decode_event_id_reply(frames);
  (void)split_envelope(frames);
  // The STEPS frame a worker appends for an asynchronous broker: a decoded
  // one holds exactly the hits it claims.
  if (!frames.empty()) {
    (void)slot_wants_steps(frames.front());
    const std::size_t hits = frames.size() > 1 ? frames[1].size() % 64 : 3;
    if (auto steps = decode_hit_steps(frames.back(), hits)) {
      if (steps->size() != hits || steps->sequence.size() != hits || steps->steps.size() != hits ||
          steps->history_length > 16) {
        std::abort();
      }
    }
  }
  return 0;
}
