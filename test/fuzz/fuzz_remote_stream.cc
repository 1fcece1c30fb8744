// Fuzz target: the remote stream-message decoder must never crash, and
// whatever it accepts must re-encode and decode to the same message.
#include <cstdlib>

#include "FuzzFrames.hh"
#include "acheron/remote/Protocol.hh"
#include "acheron/wire/Msgpack.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron;
  auto frames = fuzz::split_frames(data, size);
  auto decoded = remote::decode_stream(frames);
  if (!decoded) return 0;
  auto again = remote::decode_stream(remote::encode_stream(*decoded));
  if (!again || again->seq != decoded->seq || again->stream != decoded->stream ||
      again->wall_ns != decoded->wall_ns || again->mono_ns != decoded->mono_ns ||
      again->value.arrays.size() != decoded->value.arrays.size() ||
      again->error.has_value() != decoded->error.has_value() ||
      wire::encode_msgpack(again->value.data) != wire::encode_msgpack(decoded->value.data)) {
    std::abort();
  }
  return 0;
}
