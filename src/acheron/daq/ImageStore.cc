#include "acheron/daq/ImageStore.hh"

#include <google/protobuf/util/json_util.h>
#include <grpc/slice.h>

#include <fmt/format.h>

#include <charconv>
#include <cstring>

#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"

namespace acheron::daq {

namespace pff = wire::pff;

namespace {

// Fast path for the headers the DAQ writes: objects of string keys and
// number values, nested at most a few levels ({"quabo_0": {...}, ...}).
// Anything else (strings, arrays, escapes, booleans) makes it return false
// and the caller falls back to protobuf's JSON parser.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view s) : s_(s) {}
  bool parse(google::protobuf::Struct* out) {
    if (!object(out, 0)) return false;
    skip();
    return pos_ == s_.size();
  }

 private:
  void skip() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip();
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool key(std::string* k) {
    if (!eat('"')) return false;
    const auto end = s_.find('"', pos_);
    if (end == std::string_view::npos) return false;
    auto raw = s_.substr(pos_, end - pos_);
    for (char ch : raw)  // plain printable ASCII only (no escapes, valid UTF-8 by construction)
      if (ch < 0x20 || ch > 0x7E || ch == '\\') return false;
    k->assign(raw);
    pos_ = end + 1;
    return true;
  }
  bool number(double* v) {
    skip();
    const char* begin = s_.data() + pos_;
    const char* end = s_.data() + s_.size();
    auto r = std::from_chars(begin, end, *v);
    if (r.ec != std::errc{} || r.ptr == begin) return false;
    pos_ += static_cast<std::size_t>(r.ptr - begin);
    return true;
  }
  bool object(google::protobuf::Struct* out, int depth) {
    if (depth > 8 || !eat('{')) return false;
    auto* fields = out->mutable_fields();
    skip();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    std::string k;
    for (;;) {
      if (!key(&k) || !eat(':')) return false;
      skip();
      if (pos_ >= s_.size()) return false;
      auto& value = (*fields)[k];
      if (s_[pos_] == '{') {
        if (!object(value.mutable_struct_value(), depth + 1)) return false;
      } else {
        double v = 0;
        if (!number(&v)) return false;
        value.set_number_value(v);
      }
      if (eat(',')) continue;
      return eat('}');
    }
  }
  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

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
  auto product = pff::product_from_props(static_cast<pff::ImageType>(image.type()), shape,
                                         image.bytes_per_pixel());
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
  auto* fields = out->mutable_header();
  if (!HeaderParser(header).parse(fields)) {  // not the DAQ's numeric form: the general parser
    fields->Clear();
    if (!google::protobuf::util::JsonStringToMessage(
             google::protobuf::StringPiece(header.data(), header.size()), fields, options)
             .ok())
      return false;
  }
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

EncodedPtr ImageStore::encode(const daqdata::PanoImage& image, std::uint64_t frame_id,
                              std::int64_t ingest_ns) {
  // StreamImagesResponse{pano_image = 4}: the tag, the length, the image.
  const std::size_t body = image.ByteSizeLong();
  std::uint8_t prefix[16];
  std::size_t n = 0;
  prefix[n++] = (4 << 3) | 2;
  for (std::size_t v = body;; v >>= 7) {
    if (v < 0x80) {
      prefix[n++] = static_cast<std::uint8_t>(v);
      break;
    }
    prefix[n++] = static_cast<std::uint8_t>(v | 0x80);
  }
  grpc_slice slice = grpc_slice_malloc(n + body);
  auto* p = GRPC_SLICE_START_PTR(slice);
  std::memcpy(p, prefix, n);
  image.SerializeWithCachedSizesToArray(p + n);
  auto e = std::make_shared<EncodedImage>();
  e->bytes = grpc::Slice(slice, grpc::Slice::STEAL_REF);
  e->frame_id = frame_id;
  e->module_id = image.module_id();
  e->pulse_height = image.type() == daqdata::PanoImage::PULSE_HEIGHT;
  e->ingest_ns = ingest_ns;
  return e;
}

void ImageStore::publish(const daqdata::PanoImage& image, std::int64_t ingest_ns) {
  const bool ph = image.type() == daqdata::PanoImage::PULSE_HEIGHT;
  std::string key = fmt::format("module_{}/{}", image.module_id(), ph ? "ph" : "movie");
  std::function<void()> listener;
  // Only this thread publishes, so the id is known before the (slower)
  // serialization, which then runs outside the lock readers take.
  std::uint64_t id = 0;
  {
    std::lock_guard lock(cache_mutex_);
    id = id_base_ + topic_->last_seq() + 1;
  }
  auto encoded = encode(image, id, ingest_ns);
  const auto* data = reinterpret_cast<const std::byte*>(encoded->bytes.begin());
  const std::size_t size = encoded->bytes.size();
  Payload payload;
  payload.meta = {
      {"module_id", image.module_id()}, {"kind", ph ? "ph" : "movie"}, {"frame_id", id}};
  payload.arrays.emplace_back(DType::uint8, std::vector<std::int64_t>{std::int64_t(size)},
                              Buffer::adopt(encoded, data, size), "response");
  {
    std::lock_guard lock(cache_mutex_);
    std::size_t index = 0;
    while (index < keys_.size() &&
           (keys_[index].module_id != image.module_id() || keys_[index].pulse_height != ph))
      ++index;
    if (index == keys_.size()) {
      keys_.push_back(CacheKey{key, image.module_id(), ph});
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

void ImageStore::process(Item item) {
  if (auto* raw = std::get_if<RawFrame>(&item.body)) {
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
