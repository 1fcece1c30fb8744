// The loop-detection DHS (dcss-xos.md §9): collectLoopImages,
// stopCollectLoopImages, getLoopTip, getLoopInfo and reboxLoopImage on top of
// the framework, with JPEGs from an Axis video server (pushed by POST, or read
// from its MJPEG stream) classified by the AutoML container.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/ThreadPool.hh"
#include "acheron/dcss/Automl.hh"
#include "acheron/dcss/Camera.hh"
#include "acheron/dcss/Config.hh"
#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/JpegReceiver.hh"

namespace acheron::dcss {

class LoopDhs final {
 public:
  // Registers the five operations on `dhs`.
  LoopDhs(LoopConfig config, Dhs& dhs);
  ~LoopDhs();
  LoopDhs(const LoopDhs&) = delete;
  LoopDhs& operator=(const LoopDhs&) = delete;

  // Starts the classifier health checks and the JPEG receiver (push source).
  void start();
  void shutdown();

  const LoopConfig& config() const noexcept { return config_; }
  std::uint16_t receiver_port() const;
  bool collecting() const;
  // Results of the last finished collectLoopImages, by frame index.
  std::vector<std::optional<LoopResult>> last_results() const;
  std::uint64_t dropped_frames() const;
  const AutomlClient& classifier() const noexcept { return automl_; }

 private:
  struct Collect;

  void collect(const OperationPtr& op);
  void stop_collect(const OperationPtr& op);
  void loop_tip(const OperationPtr& op);
  void loop_info(const OperationPtr& op);
  void rebox(const OperationPtr& op);

  void on_image(std::string jpeg);
  // One frame of collect `c`'s MJPEG stream; false when it wants no more.
  bool on_stream_frame(const std::shared_ptr<Collect>& c, std::string jpeg);
  // The stream of `c` ended or failed (`why`) while the collect still wanted frames.
  void on_stream_end(const std::shared_ptr<Collect>& c, const std::string& why);
  // Starts the MJPEG reader of `c` (frame_source = mjpeg); joins finished readers.
  void start_stream_locked(const std::shared_ptr<Collect>& c);
  bool take_frame_locked(const std::shared_ptr<Collect>& c, int* index);
  void classify(const std::shared_ptr<Collect>& c, int index, const std::string& jpeg);
  void maybe_finish_locked(const std::shared_ptr<Collect>& c);
  void end_locked(const std::shared_ptr<Collect>& c);
  void watchdog();
  void ensure_receiver();
  // Snapshot + classification for getLoopTip / getLoopInfo; nullopt after completing `op`.
  std::optional<LoopResult> snapshot_result(const OperationPtr& op);
  std::filesystem::path debug_dir_for(const OperationPtr& op) const;
  enum class SaveMode : std::uint8_t { replace, append };
  void save(const std::filesystem::path& file, const std::string& bytes, SaveMode mode) const;

  LoopConfig config_;
  Dhs& dhs_;
  AutomlClient automl_;
  AxisClient axis_;
  std::unique_ptr<JpegReceiver> receiver_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::shared_ptr<Collect> active_;
  std::vector<std::optional<LoopResult>> last_results_;
  std::uint64_t dropped_ = 0;
  std::unique_ptr<ThreadPool> classifiers_;
  std::thread watchdog_;
  struct Stream {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<Stream> streams_;
};

}  // namespace acheron::dcss
