// Fuzz target: an UploadImages stream as the DaqData server reads it. The
// input is a sequence of messages (FuzzFrames.hh framing), each parsed as an
// UploadImageRequest as gRPC does; each image goes to ImageStore::push, the
// call the server's upload reactor makes, into the cache StreamImages
// clients read.
//
// Invariants: nothing crashes; an image is accepted exactly when its (type,
// shape, bytes per pixel) is one of the four PANOSETI products and it has
// one value per pixel (checked here against the product table, not through
// the server's code); an accepted image is published at once under its
// (module, kind) key with the next frame id, and its cached bytes parse as a
// StreamImagesResponse holding exactly the uploaded image, which a client
// turns back into a PFF frame of the same product; a refused one changes
// nothing but the rejected count.
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>

#include "FuzzFrames.hh"
#include "FuzzInput.hh"
#include "acheron/core/Log.hh"
#include "acheron/daq/Client.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/ImageStore.hh"

namespace {

using namespace acheron;
using daqdata::PanoImage;

// PANOSETI's image products (pff.py): type, side, bytes per pixel.
struct Kind {
  int type;
  std::uint32_t side;
  int bytes_per_pixel;
};
constexpr Kind kKinds[] = {
    {PanoImage::MOVIE, 32, 2},         // img16
    {PanoImage::MOVIE, 32, 1},         // img8
    {PanoImage::PULSE_HEIGHT, 16, 2},  // ph256
    {PanoImage::PULSE_HEIGHT, 32, 2},  // ph1024
};

bool acceptable(const PanoImage& image) {
  if (image.shape_size() != 2 || image.shape(0) != image.shape(1)) return false;
  for (const auto& k : kKinds) {
    if (image.type() == k.type && image.shape(0) == k.side &&
        image.bytes_per_pixel() == k.bytes_per_pixel) {
      return static_cast<std::size_t>(image.image_array_size()) == std::size_t{k.side} * k.side;
    }
  }
  return false;
}

bool same_image(const PanoImage& a, const PanoImage& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);  // header numbers may be NaN
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  return differencer.Compare(a, b);
}

daq::ImageStore& store() {
  static daq::ImageStore* s = [] {
    log::set_level("off");
    return new daq::ImageStore(8);
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& images = store();
  images.clear();  // as InitHpIo does: each input starts from an empty cache
  const auto frames = fuzz::split_frames(data, size);
  for (const auto& frame : frames) {
    daqdata::UploadImageRequest request;
    // gRPC ends the stream on a message that does not parse.
    if (!request.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) break;
    if (!request.has_pano_image()) continue;
    const PanoImage uploaded = request.pano_image();
    const bool expected = acceptable(uploaded);
    const auto before = images.stats();
    const auto last_id = images.last_frame_id();
    const auto result = daq::push_upload(images, request.pano_image());
    const auto after = images.stats();
    FUZZ_CHECK(result != daq::PushResult::full);  // one uploader, published at once
    FUZZ_CHECK((result == daq::PushResult::queued) == expected);
    if (!expected) {
      FUZZ_CHECK(after.rejected == before.rejected + 1 && after.ingested == before.ingested);
      FUZZ_CHECK(images.last_frame_id() == last_id);
      continue;
    }
    FUZZ_CHECK(after.ingested == before.ingested + 1 && after.rejected == before.rejected);
    FUZZ_CHECK(images.last_frame_id() == last_id + 1);
    // Read back as a StreamImages client would.
    const bool ph = uploaded.type() == PanoImage::PULSE_HEIGHT;
    const auto keys = images.keys();
    std::size_t index = 0;
    while (index < keys.size() &&
           (keys[index].module_id != uploaded.module_id() || keys[index].pulse_height != ph))
      ++index;
    FUZZ_CHECK(index < keys.size());
    FUZZ_CHECK(keys[index].key ==
               "module_" + std::to_string(uploaded.module_id()) + (ph ? "/ph" : "/movie"));
    const auto cached = images.latest(index);
    FUZZ_CHECK(cached != nullptr);
    FUZZ_CHECK(cached->frame_id == last_id + 1);
    FUZZ_CHECK(cached->module_id == uploaded.module_id() && cached->pulse_height == ph);
    daqdata::StreamImagesResponse response;
    FUZZ_CHECK(
        response.ParseFromArray(cached->bytes.data(), static_cast<int>(cached->bytes.size())));
    FUZZ_CHECK(same_image(response.pano_image(), uploaded));
    std::string pff_frame;
    wire::pff::Product product;
    FUZZ_CHECK(daq::image_to_pff(response.pano_image(), &pff_frame, &product));
    const auto& info = wire::pff::info(product);
    FUZZ_CHECK(static_cast<int>(info.type) == uploaded.type() && info.side == uploaded.shape(0) &&
               static_cast<int>(info.bytes_per_pixel) == uploaded.bytes_per_pixel());
  }
  return 0;
}
