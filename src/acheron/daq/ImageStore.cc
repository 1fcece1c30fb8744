#include "acheron/daq/ImageStore.hh"

#include <google/protobuf/util/json_util.h>
#include <grpc/slice.h>

#include <fmt/format.h>


#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/daq/FrameEncoder.hh"

namespace acheron::daq {

namespace pff = wire::pff;

ImageStore::ImageStore(std::size_t queue_capacity)
    : capacity_(queue_capacity == 0 ? 1 : queue_capacity),
      topic_(std::make_shared<hub::Topic>("daq.images")) {
  consumer_ = std::thread([this] {
    set_thread_name("daq-ingest");
    run();
  });
}

ImageStore::~ImageStore() {
  stop();
}

void ImageStore::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (consumer_.joinable()) consumer_.join();
}

PushResult ImageStore::enqueue(Item item) {
  std::unique_lock lock(queue_mutex_);
  if (queue_.size() >= capacity_) {
    std::lock_guard c(cache_mutex_);
    ++stats_.dropped_full;
    return PushResult::full;
  }
  const auto* raw = std::get_if<RawFrame>(&item.body);
  if (!publishing_ && queue_.empty() && !stopping_ && !(raw && raw->burst)) {
    // Nothing is waiting and nobody publishes: publish on this thread, one
    // thread hop less between the source and the clients. Only this image:
    // whatever arrives meanwhile is queued for the consumer thread, so a
    // source is held up by at most one publication.
    publishing_ = true;
    lock.unlock();
    process(std::move(item));
    lock.lock();
    publishing_ = false;
    const bool more = !queue_.empty();
    lock.unlock();
    if (more) queue_cv_.notify_one();
    return PushResult::queued;
  }
  queue_.push_back(std::move(item));
  lock.unlock();
  queue_cv_.notify_one();
  return PushResult::queued;
}

PushResult ImageStore::push(RawFrame frame) {
  if (frame.pixels.size() != pff::info(frame.product).image_bytes()) {
    std::lock_guard c(cache_mutex_);
    ++stats_.rejected;
    return PushResult::rejected;
  }
  return enqueue(Item{std::move(frame), wall_time_ns()});
}

PushResult ImageStore::push(daqdata::PanoImage&& image) {
  std::vector<std::uint32_t> shape(image.shape().begin(), image.shape().end());
  // The wire's type is any int32: checked before the cast to the 8-bit
  // ImageType, which would turn 258 into MOVIE.
  auto product = daqdata::PanoImage::Type_IsValid(image.type())
                     ? pff::product_from_props(static_cast<pff::ImageType>(image.type()), shape,
                                               image.bytes_per_pixel())
                     : std::nullopt;
  if (!product ||
      static_cast<std::size_t>(image.image_array_size()) != pff::info(*product).pixels()) {
    std::lock_guard c(cache_mutex_);
    ++stats_.rejected;
    return PushResult::rejected;
  }
  return enqueue(Item{std::move(image), wall_time_ns()});
}

void ImageStore::set_listener(std::function<void()> listener) {
  std::lock_guard lock(cache_mutex_);
  listener_ = std::move(listener);
}

std::vector<CacheKey> ImageStore::keys() const {
  std::lock_guard lock(cache_mutex_);
  return keys_;
}

EncodedPtr ImageStore::latest(std::size_t index) const {
  std::lock_guard lock(cache_mutex_);
  return index < slots_.size() ? slots_[index] : nullptr;
}

std::uint64_t ImageStore::snapshot(std::vector<EncodedPtr>* out) const {
  std::lock_guard lock(cache_mutex_);
  out->assign(slots_.begin(), slots_.end());
  return id_base_ + topic_->last_seq();
}

void ImageStore::clear() {
  std::lock_guard lock(cache_mutex_);
  id_base_ += topic_->last_seq();
  topic_ = std::make_shared<hub::Topic>("daq.images");
  keys_.clear();
  slots_.clear();
  ++keys_version_;
  ++epoch_;
}

std::uint64_t ImageStore::last_frame_id() const {
  std::lock_guard lock(cache_mutex_);
  return id_base_ + topic_->last_seq();
}

StoreStats ImageStore::stats() const {
  std::lock_guard lock(cache_mutex_);
  return stats_;
}

std::size_t ImageStore::queue_depth() const {
  std::lock_guard lock(queue_mutex_);
  return queue_.size();
}

bool ImageStore::frame_to_image(const RawFrame& frame, daqdata::PanoImage* out) {
  const auto& info = pff::info(frame.product);
  if (frame.pixels.size() != info.image_bytes()) return false;
  std::string_view header = frame.header;
  while (!header.empty() && (header.back() == '\n' || header.back() == ' '))
    header.remove_suffix(1);
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(header.data(), header.size()), out->mutable_header(),
           options)
           .ok())
    return false;
  out->set_type(info.is_pulse_height() ? daqdata::PanoImage::PULSE_HEIGHT
                                       : daqdata::PanoImage::MOVIE);
  out->add_shape(info.side);
  out->add_shape(info.side);
  out->set_bytes_per_pixel(static_cast<int>(info.bytes_per_pixel));
  auto* array = out->mutable_image_array();
  array->Resize(static_cast<int>(info.pixels()), 0);
  pff::pixels_to_u32({reinterpret_cast<const std::byte*>(frame.pixels.data()), frame.pixels.size()},
                     info.bytes_per_pixel, array->mutable_data());
  out->set_file(frame.file);
  out->set_frame_number(frame.frame_number);
  out->set_module_id(frame.module_id);
  return true;
}

grpc::Slice ImageStore::encode(const daqdata::PanoImage& image) {
  // StreamImagesResponse{pano_image = 4}: the tag, the length, the image.
  const std::size_t body = image.ByteSizeLong();
  grpc_slice slice = grpc_slice_malloc(1 + varint_size(body) + body);
  auto* p = GRPC_SLICE_START_PTR(slice);
  *p++ = kResponsePanoImage;
  p = put_varint(p, body);
  image.SerializeWithCachedSizesToArray(p);
  return grpc::Slice(slice, grpc::Slice::STEAL_REF);
}

void ImageStore::publish(grpc::Slice bytes, std::uint32_t module_id, bool ph,
                         std::int64_t ingest_ns) {
  std::string key = fmt::format("module_{}/{}", module_id, ph ? "ph" : "movie");
  std::function<void()> listener;
  // Only this thread publishes, so the id is known before the lock readers take.
  std::uint64_t id = 0;
  {
    std::lock_guard lock(cache_mutex_);
    id = id_base_ + topic_->last_seq() + 1;
  }
  auto encoded = std::make_shared<EncodedImage>();
  encoded->bytes = std::move(bytes);
  encoded->frame_id = id;
  encoded->module_id = module_id;
  encoded->pulse_height = ph;
  encoded->ingest_ns = ingest_ns;
  const auto* data = reinterpret_cast<const std::byte*>(encoded->bytes.begin());
  const std::size_t size = encoded->bytes.size();
  Payload payload;
  payload.meta = {{"module_id", module_id}, {"kind", ph ? "ph" : "movie"}, {"frame_id", id}};
  payload.arrays.emplace_back(DType::uint8, std::vector<std::int64_t>{std::int64_t(size)},
                              Buffer::adopt(encoded, data, size), "response");
  {
    std::lock_guard lock(cache_mutex_);
    std::size_t index = 0;
    while (index < keys_.size() &&
           (keys_[index].module_id != module_id || keys_[index].pulse_height != ph))
      ++index;
    if (index == keys_.size()) {
      keys_.push_back(CacheKey{key, module_id, ph});
      slots_.emplace_back();
      ++keys_version_;
    }
    slots_[index] = encoded;
    topic_->publish(std::move(key), std::move(payload));
    newest_id_.store(id, std::memory_order_release);
    ++stats_.ingested;
    listener = listener_;
  }
  if (listener) listener();
}

void ImageStore::publish(const daqdata::PanoImage& image, std::int64_t ingest_ns) {
  publish(encode(image), image.module_id(), image.type() == daqdata::PanoImage::PULSE_HEIGHT,
          ingest_ns);
}

void ImageStore::process(Item item) {
  if (auto* raw = std::get_if<RawFrame>(&item.body)) {
    // The DAQ's own headers are written straight to the wire form; any other
    // JSON goes through protobuf's parser and messages.
    grpc::Slice bytes;
    if (encode_frame_response(*raw, &bytes)) {
      publish(std::move(bytes), raw->module_id, pff::info(raw->product).is_pulse_height(),
              item.ingest_ns);
      return;
    }
    daqdata::PanoImage image;
    if (!frame_to_image(*raw, &image)) {
      std::lock_guard c(cache_mutex_);
      ++stats_.rejected;
      log::debug("daq: dropped a frame of module {} from {} (header is not a JSON object)",
                 raw->module_id, raw->file);
      return;
    }
    publish(image, item.ingest_ns);
  } else {
    publish(std::get<daqdata::PanoImage>(item.body), item.ingest_ns);
  }
}

void ImageStore::run() {
  std::unique_lock lock(queue_mutex_);
  for (;;) {
    queue_cv_.wait(lock, [&] { return stopping_ || (!queue_.empty() && !publishing_); });
    if (stopping_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    publishing_ = true;
    lock.unlock();
    process(std::move(item));
    lock.lock();
    publishing_ = false;
  }
}

}  // namespace acheron::daq
