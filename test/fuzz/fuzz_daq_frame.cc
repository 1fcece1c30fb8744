// Fuzz target: a frame header from a file, a socket or an upload becomes the
// cached StreamImagesResponse, either written directly (the DAQ's header
// form) or through protobuf's JSON parser and messages; a received image goes
// back to a PFF frame. Nothing may crash; what is accepted must round-trip,
// and whatever the direct encoder accepts must parse to exactly the message
// the protobuf path builds.
#include <google/protobuf/util/message_differencer.h>

#include <cstdlib>

#include "acheron/daq/Client.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/ImageStore.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pff = acheron::wire::pff;
  if (size < 2) return 0;
  const auto product = pff::kProducts[data[0] % 4];
  const auto& info = pff::info(product);
  acheron::daq::RawFrame f;
  f.product = product;
  f.module_id = data[1] % 3 == 0 ? 0 : data[1] * 977u;
  f.frame_number = data[1] % 5 == 0 ? 0 : data[1] * 65537u;
  f.file = data[1] % 2 == 0 ? "" : "uds_img16";
  f.header.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  f.pixels.resize(info.image_bytes());
  for (std::size_t i = 0; i < f.pixels.size(); ++i)
    f.pixels[i] = static_cast<char>(data[(i * 7) % size] ^ (i * 31));

  acheron::Buffer direct;
  const bool direct_ok = acheron::daq::encode_frame_response(f, &direct);
  daqdata::PanoImage image;
  const bool general_ok = acheron::daq::frame_to_image(f, &image);
  if (direct_ok) {
    daqdata::StreamImagesResponse from_direct;
    if (!from_direct.ParseFromArray(direct.data(), static_cast<int>(direct.size()))) std::abort();
    // The general parser rejects a few numbers the direct one reads (leading
    // zeros); where both accept, the messages are identical.
    if (general_ok &&
        !google::protobuf::util::MessageDifferencer::Equals(from_direct.pano_image(), image))
      std::abort();
  }
  if (!general_ok) return 0;
  if (static_cast<std::size_t>(image.image_array_size()) != info.pixels()) std::abort();
  auto encoded = acheron::daq::encode_response(image);
  daqdata::StreamImagesResponse r;
  if (!r.ParseFromArray(encoded.data(), static_cast<int>(encoded.size()))) std::abort();
  std::string frame;
  pff::Product back;
  if (!acheron::daq::image_to_pff(r.pano_image(), &frame, &back) || back != product) std::abort();
  auto frames = pff::split_frames({reinterpret_cast<const std::byte*>(frame.data()), frame.size()},
                                  info.image_bytes());
  if (!frames || frames->size() != 1) std::abort();
  return 0;
}
