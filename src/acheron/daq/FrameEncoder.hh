// Direct protobuf encoding of an ingested PFF frame: the serialized
// StreamImagesResponse{pano_image} every stream sends, written straight from
// the frame's JSON header text and raw pixels, without building PanoImage and
// Struct messages first (about a third of the CPU of a hand-parsed header
// through protobuf's messages, a twentieth of protobuf's JSON parser; every
// ingested frame pays it). Only the DAQ's own header form is taken: an object
// of objects and numbers with plain ASCII keys, no duplicates. Anything else
// is left to the caller's general path (protobuf's JSON parser), so both
// paths give the same message for every header this one accepts.
#pragma once

#include <grpcpp/support/slice.h>

#include <bit>
#include <cstddef>
#include <cstdint>

#include "acheron/daq/ImageStore.hh"

namespace acheron::daq {

// Protobuf wire format pieces shared by both encoders (this one and
// ImageStore::encode): StreamImagesResponse's pano_image field tag
// (field 4, length-delimited) and base-128 varints.
inline constexpr std::uint8_t kResponsePanoImage = (4 << 3) | 2;

inline std::size_t varint_size(std::uint64_t v) {
  return static_cast<std::size_t>((std::bit_width(v | 1) + 6) / 7);
}

inline std::uint8_t* put_varint(std::uint8_t* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

// Writes the response for `frame` into `out` and returns true, or returns
// false (out untouched) if the header is not the DAQ's numeric form or the
// pixel bytes do not match the product.
bool encode_frame_response(const RawFrame& frame, grpc::Slice* out);

}  // namespace acheron::daq
