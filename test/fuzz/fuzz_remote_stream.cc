// Fuzz target: the remote protocol's decoders (stream messages and calls in
// either framing) must never crash, and whatever they accept must re-encode
// and decode to the same message.
#include <cstdlib>

#include "FuzzFrames.hh"
#include "acheron/remote/Protocol.hh"
#include "acheron/wire/Msgpack.hh"

namespace {

using namespace acheron;

void check_stream(std::span<const Buffer> frames) {
  auto decoded = remote::decode_stream(frames);
  if (!decoded) return;
  auto again = remote::decode_stream(remote::encode_stream(*decoded));
  if (!again || again->seq != decoded->seq || again->stream != decoded->stream ||
      again->wall_ns != decoded->wall_ns || again->mono_ns != decoded->mono_ns ||
      again->value.arrays.size() != decoded->value.arrays.size() ||
      again->error.has_value() != decoded->error.has_value() ||
      wire::encode_msgpack(again->value.data) != wire::encode_msgpack(decoded->value.data)) {
    std::abort();
  }
}

void check_call(std::span<const Buffer> frames) {
  remote::Framing framing = remote::Framing::envelope;
  auto decoded = remote::decode_call(frames, &framing);
  if (!decoded) return;
  remote::Framing again_framing = remote::Framing::envelope;
  auto again = remote::decode_call(remote::encode_call(*decoded, framing), &again_framing);
  if (!again || again_framing != framing || again->command != decoded->command ||
      again->request_id != decoded->request_id || again->method != decoded->method ||
      again->timeout_ms != decoded->timeout_ms ||
      again->payload.arrays.size() != decoded->payload.arrays.size() ||
      again->error.has_value() != decoded->error.has_value() ||
      wire::encode_msgpack(again->payload.meta) != wire::encode_msgpack(decoded->payload.meta)) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto frames = fuzz::split_frames(data, size);
  check_stream(frames);
  check_call(frames);
  return 0;
}
