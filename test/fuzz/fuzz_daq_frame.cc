// Fuzz target: a frame header from a file, a socket or an upload becomes a
// PanoImage (fast numeric parser, protobuf JSON fallback), is encoded as the
// cached StreamImagesResponse, and a received image goes back to a PFF frame.
// Nothing may crash; what is accepted must round-trip.
#include <cstdlib>

#include "acheron/daq/Client.hh"
#include "acheron/daq/ImageStore.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pff = acheron::wire::pff;
  using acheron::daq::ImageStore;
  if (size < 1) return 0;
  const auto product = pff::kProducts[data[0] % 4];
  const auto& info = pff::info(product);
  acheron::daq::RawFrame f;
  f.product = product;
  f.header.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  f.pixels.assign(info.image_bytes(), static_cast<char>(size));
  daqdata::PanoImage image;
  if (!ImageStore::frame_to_image(f, &image)) return 0;
  if (static_cast<std::size_t>(image.image_array_size()) != info.pixels()) std::abort();
  auto encoded = ImageStore::encode(image, 1, 0);
  daqdata::StreamImagesResponse r;
  if (!r.ParseFromArray(encoded->bytes.begin(), static_cast<int>(encoded->bytes.size())))
    std::abort();
  std::string frame;
  pff::Product back;
  if (!acheron::daq::image_to_pff(r.pano_image(), &frame, &back) || back != product) std::abort();
  auto frames = pff::split_frames({reinterpret_cast<const std::byte*>(frame.data()), frame.size()},
                                  info.image_bytes());
  if (!frames || frames->size() != 1) std::abort();
  return 0;
}
