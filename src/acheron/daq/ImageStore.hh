// Ingest and latest-value cache of the DaqData server (spec 5.1). Every
// source and UploadImages feed one bounded queue; each image is turned into
// its serialized StreamImagesResponse once, given a server-wide increasing
// frame id, and published on a hub topic keyed by (module, kind)
// ("module_<N>/movie" or "module_<N>/ph"), one image at a time in arrival
// order. An image that finds the queue empty and no publication running is
// published by the pushing thread itself (no thread hop), unless its source
// marks it part of a burst; the others wait in the queue for the consumer
// thread. Readers read the topic's latest-value cache (snapshot()): the
// serialized bytes are shared by every stream (no per-client copy). Policy
// only: no gRPC or protobuf types here; the encoders are in FrameEncoder.hh
// and the gRPC front hands the bytes to gRPC without copying them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "acheron/core/Payload.hh"
#include "acheron/hub/Topic.hh"
#include "acheron/wire/Pff.hh"

namespace acheron::daq {

// A PFF frame from a file, a socket or the simulator.
struct RawFrame {
  std::uint32_t module_id = 0;
  wire::pff::Product product = wire::pff::Product::img16;
  std::string header;  // JSON block (trailing blank line allowed)
  std::string pixels;  // raw little-endian pixel bytes
  std::string file;
  std::uint32_t frame_number = 0;
  // The source has more frames ready right behind this one (it is working
  // through a backlog): the frame is queued for the consumer thread, so that
  // reading the source and publishing proceed in parallel. Otherwise an idle
  // store publishes it on the pushing thread (lowest latency).
  bool burst = false;
};

// An image already encoded as its StreamImagesResponse (an upload, encoded
// on the uploader's thread by encode_upload in FrameEncoder.hh).
struct EncodedFrame {
  Buffer bytes;
  std::uint32_t module_id = 0;
  bool pulse_height = false;
};

// One cached image: the serialized StreamImagesResponse. It owns the bytes
// of the array its topic sample carries (ImageStore::image()).
struct EncodedImage {
  Buffer bytes;
  std::uint64_t frame_id = 0;
  std::uint32_t module_id = 0;
  bool pulse_height = false;
  std::int64_t ingest_ns = 0;  // wall clock when it entered the queue
};
using EncodedPtr = std::shared_ptr<const EncodedImage>;

// A (module, kind) slot of the cache.
struct CacheKey {
  std::string key;
  std::uint32_t module_id = 0;
  bool pulse_height = false;
};

enum class PushResult : std::uint8_t { queued, full, rejected };

struct StoreStats {
  std::uint64_t ingested = 0;  // published to the cache
  std::uint64_t dropped_full = 0;
  std::uint64_t rejected = 0;  // unknown (type, shape, bpp) or bad header
};

class ImageStore final {
 public:
  explicit ImageStore(std::size_t queue_capacity = 500);
  ~ImageStore();  // stop()
  // Stops the consumer thread (queued images are dropped). Idempotent.
  void stop();
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Never waits for the queue; full → PushResult::full (the frame is
  // dropped). May publish the image (and run the listener) on the calling
  // thread before returning.
  PushResult push(RawFrame frame);
  // An encoded image (an upload that passed its checks: push_upload in
  // FrameEncoder.hh); empty bytes → rejected.
  PushResult push(EncodedFrame frame);
  // Counts an image refused before it reached the store (an upload with an
  // unknown (type, shape, bpp)); it shows in stats().rejected.
  void count_rejected();

  // Called after every publication, on the thread that published (the
  // consumer thread or a pushing thread); never concurrently.
  void set_listener(std::function<void()> listener);
  // Also called after every publication with the image (the status pages'
  // figures, daq/Monitor.hh), on the same thread and never concurrently. Null: none.
  void set_observer(std::function<void(const EncodedImage&)> observer);

  // The cache keys in discovery order; the list only grows until clear().
  // epoch() changes on clear(); keys_version() whenever the list changes.
  std::vector<CacheKey> keys() const;
  std::uint64_t keys_version() const noexcept { return keys_version_.load(); }
  std::uint64_t epoch() const noexcept { return epoch_.load(); }
  // The newest image of key index i (nullptr if none).
  EncodedPtr latest(std::size_t index) const;
  // The topic's newest sample of every key (in key order) in one short
  // critical section; returns the newest frame id published so far, which
  // is the frame id of the newest sample in `out`. `out` is reused.
  std::uint64_t snapshot(std::vector<hub::SamplePtr>* out) const;
  // The image a sample of this store's topic carries.
  static const EncodedImage& image(const hub::Sample& sample);
  // Forgets every cached image (hp_io re-initialisation). Frame ids keep
  // increasing across clear().
  void clear();
  std::uint64_t last_frame_id() const;
  // The same without a lock (may lag a publication by an instant; a reader
  // that sees it unchanged has nothing new, as the listener follows).
  std::uint64_t newest_id() const noexcept { return newest_id_.load(std::memory_order_acquire); }
  StoreStats stats() const;
  std::size_t queue_depth() const;

 private:
  struct Item {
    std::variant<RawFrame, EncodedFrame> body;
    std::int64_t ingest_ns = 0;
  };
  PushResult enqueue(Item item);
  void process(Item item);
  void run();
  void publish(Buffer bytes, std::uint32_t module_id, bool pulse_height, std::int64_t ingest_ns);

  const std::size_t capacity_;
  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  bool publishing_ = false;  // one publication at a time, in queue order

  mutable std::mutex cache_mutex_;
  std::shared_ptr<hub::Topic> topic_;
  std::uint64_t id_base_ = 0;   // frame id = id_base_ + topic seq
  std::vector<CacheKey> keys_;  // discovery order (the topic's cache is in key order)
  std::atomic<std::uint64_t> keys_version_{0};
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<std::uint64_t> newest_id_{0};
  std::function<void()> listener_;
  std::shared_ptr<const std::function<void(const EncodedImage&)>> observer_;
  StoreStats stats_;

  std::thread consumer_;
};

}  // namespace acheron::daq
