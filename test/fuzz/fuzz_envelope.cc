// Fuzz target: the native envelope decoder must never crash, and whatever it
// accepts must re-encode and decode to the same message.
#include <cstdlib>

#include "FuzzFrames.hh"
#include "acheron/wire/Envelope.hh"
#include "acheron/wire/Msgpack.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron;
  auto frames = fuzz::split_frames(data, size);
  auto decoded = wire::decode(frames);
  if (!decoded) return 0;
  auto again = wire::decode(wire::encode(*decoded));
  if (!again || again->request_id != decoded->request_id || again->method != decoded->method ||
      again->payload.arrays.size() != decoded->payload.arrays.size() ||
      wire::encode_msgpack(again->payload.meta) != wire::encode_msgpack(decoded->payload.meta)) {
    std::abort();
  }
  return 0;
}
