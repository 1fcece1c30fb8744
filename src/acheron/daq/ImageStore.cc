#include "acheron/daq/ImageStore.hh"

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

PushResult ImageStore::push(EncodedFrame frame) {
  if (frame.bytes.empty()) {
    count_rejected();
    return PushResult::rejected;
  }
  return enqueue(Item{std::move(frame), wall_time_ns()});
}

void ImageStore::count_rejected() {
  std::lock_guard c(cache_mutex_);
  ++stats_.rejected;
}

void ImageStore::set_listener(std::function<void()> listener) {
  std::lock_guard lock(cache_mutex_);
  listener_ = std::move(listener);
}

std::vector<CacheKey> ImageStore::keys() const {
  std::lock_guard lock(cache_mutex_);
  return keys_;
}

const EncodedImage& ImageStore::image(const hub::Sample& sample) {
  // publish() makes the image the owner of the sample's one array.
  return *static_cast<const EncodedImage*>(sample.payload.arrays.front().buffer().owner().get());
}

EncodedPtr ImageStore::latest(std::size_t index) const {
  std::lock_guard lock(cache_mutex_);
  if (index >= keys_.size()) return nullptr;
  auto sample = topic_->latest(keys_[index].key);
  if (!sample) return nullptr;
  return EncodedPtr(*sample, &image(**sample));  // keeps the sample alive
}

std::uint64_t ImageStore::snapshot(std::vector<hub::SamplePtr>* out) const {
  std::lock_guard lock(cache_mutex_);
  return id_base_ + topic_->snapshot(out);
}

void ImageStore::clear() {
  std::lock_guard lock(cache_mutex_);
  id_base_ += topic_->last_seq();
  topic_ = std::make_shared<hub::Topic>("daq.images");
  keys_.clear();
  ++keys_version_;
  ++epoch_;
}

std::uint64_t ImageStore::last_frame_id() const {
  std::lock_guard lock(cache_mutex_);
  return id_base_ + topic_->last_seq();
}

void ImageStore::set_observer(std::function<void(const EncodedImage&)> observer) {
  auto p =
      observer
          ? std::make_shared<const std::function<void(const EncodedImage&)>>(std::move(observer))
          : nullptr;
  std::lock_guard lock(cache_mutex_);
  observer_ = std::move(p);
}

StoreStats ImageStore::stats() const {
  std::lock_guard lock(cache_mutex_);
  return stats_;
}

std::size_t ImageStore::queue_depth() const {
  std::lock_guard lock(queue_mutex_);
  return queue_.size();
}

void ImageStore::publish(Buffer bytes, std::uint32_t module_id, bool ph, std::int64_t ingest_ns) {
  std::string key = fmt::format("module_{}/{}", module_id, ph ? "ph" : "movie");
  std::function<void()> listener;
  std::shared_ptr<const std::function<void(const EncodedImage&)>> observer;
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
  const auto* data = encoded->bytes.data();
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
      ++keys_version_;
    }
    topic_->publish(std::move(key), std::move(payload));
    newest_id_.store(id, std::memory_order_release);
    ++stats_.ingested;
    listener = listener_;
    observer = observer_;
  }
  if (listener) listener();
  if (observer) (*observer)(*encoded);
}

void ImageStore::process(Item item) {
  if (auto* raw = std::get_if<RawFrame>(&item.body)) {
    auto encoded = encode_frame(*raw);
    if (!encoded) {
      count_rejected();
      log::debug("daq: dropped a frame of module {} from {} (header is not a JSON object)",
                 raw->module_id, raw->file);
      return;
    }
    publish(std::move(encoded->bytes), encoded->module_id, encoded->pulse_height, item.ingest_ns);
  } else {
    auto& e = std::get<EncodedFrame>(item.body);
    publish(std::move(e.bytes), e.module_id, e.pulse_height, item.ingest_ns);
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
