// The shape of a MessagePack value as told by its first (tag) byte: one table
// for the validator (Msgpack.cc) and the header reader (MsgpackStream.hh).
#pragma once

#include <cstdint>

namespace acheron::wire::mp {

struct Tag final {
  enum class Kind : std::uint8_t {
    scalar,    // fixed-size payload of `size` bytes (integers, floats, fixext)
    bytes,     // str/bin/ext: a length, then that many bytes (+ `size` extra)
    array,     // a count of values that follow
    map,       // a count of key/value pairs that follow
    reserved,  // 0xc1, never valid
  };
  Kind kind;
  // Big-endian length/count bytes after the tag; 0 when the tag holds it.
  std::uint8_t length_bytes;
  // The inline length/count when length_bytes == 0; for bytes with a length
  // field, the extra payload bytes beyond the length (ext's type byte).
  std::uint8_t size;
};

constexpr Tag msgpack_tag(std::uint8_t t) noexcept {
  using K = Tag::Kind;
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return {K::scalar, 0, 0};
  if ((t & 0xf0) == 0x80) return {K::map, 0, static_cast<std::uint8_t>(t & 0x0f)};
  if ((t & 0xf0) == 0x90) return {K::array, 0, static_cast<std::uint8_t>(t & 0x0f)};
  if ((t & 0xe0) == 0xa0) return {K::bytes, 0, static_cast<std::uint8_t>(t & 0x1f)};
  switch (t) {
    case 0xc4:
      return {K::bytes, 1, 0};  // bin 8/16/32
    case 0xc5:
      return {K::bytes, 2, 0};
    case 0xc6:
      return {K::bytes, 4, 0};
    case 0xc7:
      return {K::bytes, 1, 1};  // ext 8/16/32 (+ type byte)
    case 0xc8:
      return {K::bytes, 2, 1};
    case 0xc9:
      return {K::bytes, 4, 1};
    case 0xca:
      return {K::scalar, 0, 4};  // float 32/64
    case 0xcb:
      return {K::scalar, 0, 8};
    case 0xcc:
    case 0xd0:
      return {K::scalar, 0, 1};  // (u)int 8/16/32/64
    case 0xcd:
    case 0xd1:
      return {K::scalar, 0, 2};
    case 0xce:
    case 0xd2:
      return {K::scalar, 0, 4};
    case 0xcf:
    case 0xd3:
      return {K::scalar, 0, 8};
    case 0xd4:
      return {K::scalar, 0, 2};  // fixext 1/2/4/8/16 (+ type byte)
    case 0xd5:
      return {K::scalar, 0, 3};
    case 0xd6:
      return {K::scalar, 0, 5};
    case 0xd7:
      return {K::scalar, 0, 9};
    case 0xd8:
      return {K::scalar, 0, 17};
    case 0xd9:
      return {K::bytes, 1, 0};  // str 8/16/32
    case 0xda:
      return {K::bytes, 2, 0};
    case 0xdb:
      return {K::bytes, 4, 0};
    case 0xdc:
      return {K::array, 2, 0};
    case 0xdd:
      return {K::array, 4, 0};
    case 0xde:
      return {K::map, 2, 0};
    case 0xdf:
      return {K::map, 4, 0};
    default:
      return {K::reserved, 0, 0};
  }
}

}  // namespace acheron::wire::mp
