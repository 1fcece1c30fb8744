// Fuzz target: the msgpack validator and decoder must never crash or recurse
// unboundedly, a decoded value must survive an encode/decode round trip, and
// the direct decoder must agree with nlohmann's from_msgpack on every input
// the validator accepts (same acceptance, same value).
#include <cstdlib>

#include "acheron/wire/Msgpack.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron;
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  auto decoded = wire::decode_msgpack(input);
  if (wire::validate_msgpack(input)) {
    auto reference = nlohmann::json::from_msgpack(data, data + size, true, false);
    if (reference.is_discarded() != !decoded) std::abort();
    if (decoded && *decoded != reference) {
      // NaN never equals itself: compare the encodings instead.
      if (nlohmann::json::to_msgpack(*decoded) != nlohmann::json::to_msgpack(reference))
        std::abort();
    }
  }
  if (!decoded) return 0;
  auto bytes = wire::encode_msgpack(*decoded);
  auto again =
      wire::decode_msgpack({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
  if (!again) std::abort();
  return 0;
}
