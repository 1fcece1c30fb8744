// Fuzz target: the msgpack validator and decoder must never crash or recurse
// unboundedly, and a decoded value must survive an encode/decode round trip.
#include <cstdlib>

#include "acheron/wire/Msgpack.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron;
  auto decoded = wire::decode_msgpack({reinterpret_cast<const std::byte*>(data), size});
  if (!decoded) return 0;
  auto bytes = wire::encode_msgpack(*decoded);
  auto again =
      wire::decode_msgpack({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
  if (!again) std::abort();
  return 0;
}
