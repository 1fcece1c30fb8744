// The DaqData codec: every image as the serialized
// StreamImagesResponse{pano_image} the streams send, kept in a ref-counted
// Buffer (the gRPC front hands it to gRPC without copying). The only place
// of the daq module, besides the gRPC front, that knows the protobuf types.
//
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

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "acheron/core/Payload.hh"
#include "acheron/daq/ImageStore.hh"
#include "acheron/daqdata.pb.h"

namespace acheron::daq {

// Protobuf wire format pieces shared by both encoders (this one and
// encode_response): StreamImagesResponse's pano_image field tag
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
bool encode_frame_response(const RawFrame& frame, Buffer* out);

// A frame as a PanoImage through protobuf's messages and JSON parser (the
// general path; frames with the DAQ's own header form are encoded directly
// by encode_frame_response, to the same message). False if the pixel bytes
// do not match the product or the header is not a JSON object.
bool frame_to_image(const RawFrame& frame, daqdata::PanoImage* out);

// The serialized StreamImagesResponse{pano_image} of an image.
Buffer encode_response(const daqdata::PanoImage& image);

// A frame's response: the direct encoder, else the general path; nullopt if
// neither takes it.
std::optional<EncodedFrame> encode_frame(const RawFrame& frame);

// An uploaded image's response; nullopt for an unknown (type, shape, bpp) or
// a pixel count that does not match the shape (such images break every
// client's parser).
std::optional<EncodedFrame> encode_upload(const daqdata::PanoImage& image);

// encode_upload, then the store: rejected (and counted in the store's
// stats) if the checks fail; otherwise the store's answer.
PushResult push_upload(ImageStore& store, const daqdata::PanoImage& image);

}  // namespace acheron::daq
