// Internal to the UBX codec (Ubx.cc, UbxConfig.cc, UbxMessages.cc,
// UbxJson.cc): little-endian field access. Not for clients.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "acheron/wire/Ubx.hh"

namespace acheron::wire::ubx {

template <class T>
T read_le(ByteSpan p, std::size_t offset) {
  using U = std::make_unsigned_t<T>;
  U v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<U>(U(p[offset + i]) << (8 * i));
  return static_cast<T>(v);
}

template <class T>
void write_le(Bytes& out, T value) {
  using U = std::make_unsigned_t<T>;
  const U v = static_cast<U>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace acheron::wire::ubx
