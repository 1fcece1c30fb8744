// The DaqData gRPC server's insides, shared by the files that implement it:
// Server::Impl (the service: state, limits, threads), Reader (one
// StreamImages call on the stream completion queue) and Uploader (one
// UploadImages call). Private to the daq module: installed with the other
// headers (the install takes every .hh) but not part of the API.
//
//   ServerLifecycle.cc  start, shutdown, the Server facade, Status
//   ImageStreams.cc     StreamImages: accepting calls, batches, the dispatcher
//   HpIoControl.cc      InitHpIo: argument checks, the init queue, hp_io restart
//   Uploads.cc          UploadImages: limits, idle deadlines, finishing
#pragma once

#include <grpcpp/grpcpp.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/HpIo.hh"
#include "acheron/daq/Server.hh"
#include "acheron/daqdata.grpc.pb.h"

namespace acheron::daq {

// StreamImages is served on gRPC's asynchronous API with one completion-queue
// thread: a write that completes at once is picked up by the same thread
// without a wake-up, where the callback API hands every completion to one of
// its two executor threads (a thread switch per image). The other methods are
// callback methods.
using ServiceBase =
    daqdata::DaqData::WithRawMethod_StreamImages<daqdata::DaqData::WithCallbackMethod_InitHpIo<
        daqdata::DaqData::WithCallbackMethod_Ping<daqdata::DaqData::WithCallbackMethod_UploadImages<
            daqdata::DaqData::WithCallbackMethod_Status<daqdata::DaqData::Service>>>>>;

constexpr const char* kShutdownMessage = "Server is shutting down.";
constexpr const char* kReaderShutdown = "server shutdown_event set: the server is shutting down.";
constexpr const char* kReaderForced =
    "cancel_reader_event set: A writer has likely forced a reconfiguration of hp_io.";

// A duration of s seconds; zero for s <= 0 or NaN, capped at 1e9 s.
inline Duration seconds(double s) {
  if (!(s > 0)) return Duration::zero();
  if (s > 1e9) s = 1e9;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

class Reader;
class Uploader;

// One look at the store's cache, shared by the streams served in one pass
// (after a publication, a dispatcher round, a finished batch). Each thread
// that serves streams keeps its own view: an image becomes a gRPC slice once
// per view, not once per stream or pass, and every write refers to it.
struct CacheView {
  std::vector<hub::SamplePtr> samples;  // the topic's newest sample per key
  std::vector<grpc::Slice> slices;      // parallel to samples; empty until needed
  std::vector<hub::SamplePtr> scratch;
  std::uint64_t newest_id = 0;  // 0: not taken in this pass yet
};

class Server::Impl final : public ServiceBase {
 public:
  explicit Impl(ServerConfig config)
      : config_(std::move(config)), store_(config_.ingest_queue_size) {
    store_.set_listener([this] { on_publish(); });
  }
  ~Impl() override {
    shutdown();
    store_.stop();  // its listener uses members destroyed before it
  }

  // --- gRPC handlers
  grpc::ServerUnaryReactor* InitHpIo(grpc::CallbackServerContext* ctx,
                                     const daqdata::InitHpIoRequest* request,
                                     daqdata::InitHpIoResponse* response) override;
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const google::protobuf::Empty*,
                                 google::protobuf::Empty*) override {
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const google::protobuf::Empty*,
                                   daqdata::StatusResponse* response) override {
    {
      std::lock_guard lock(mutex_);
      response->set_hp_io_initialized(hp_io_valid_);
      std::string state = shutting_down_         ? "shutting down"
                          : writers_pending_ > 0 ? "being configured"
                          : hp_io_valid_         ? "hp_io initialised"
                                                 : "hp_io not initialised";
      response->set_message(fmt::format("{}; {} of {} streams; {} images sent; {} of {} uploads",
                                        state, readers_.size(), config_.max_concurrent_rpcs,
                                        images_sent_.load(), uploaders_.size(),
                                        config_.max_concurrent_uploads));
    }
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerReadReactor<daqdata::UploadImageRequest>* UploadImages(
      grpc::CallbackServerContext* ctx, google::protobuf::Empty* response) override;

  void start();
  void shutdown();
  void wait() {
    std::unique_lock lock(done_mutex_);
    done_cv_.wait(lock, [&] { return done_; });
  }
  Server::InitResult init_hp_io(HpIoConfig config);
  // The quick checks of an InitHpIo request; replaces a real data_dir by its
  // canonical form.
  std::optional<Server::InitResult> check_init_arguments(HpIoConfig& config) const;
  // The refusal of an InitHpIo without force while clients stream (mutex_ held).
  Server::InitResult streaming_refusal() const;
  // InitHpIo after the checks, with writers_pending_ already counted for it.
  Server::InitResult run_init(const HpIoConfig& config);
  // The InitHpIo thread: runs queued calls one at a time.
  void init_loop();

  // --- StreamImages on the stream completion queue
  // Offers a new Reader for the next StreamImages call (not when shutting down).
  void accept_stream();
  // The stream thread: every completion of every StreamImages call.
  void stream_loop();
  // A call has arrived: refuses it or registers its Reader.
  void stream_started(Reader* r);

  // --- used by the reactors
  // Under mutex_: if r (idle) is due and the cache holds images it has not
  // had, fills its batch, marks it writing and returns true. `view` is the
  // pass's look at the cache; taken here if the pass has none yet.
  bool fill_batch(Reader* r, TimePoint now, CacheView& view);
  void reader_batch_done(Reader* r, bool ok);
  // After each publication (on the publishing thread, never concurrently): idle streams that are
  // due start their batch right there (no hop through the dispatcher thread).
  void on_publish();
  void reader_cancelled(Reader* r);
  void reader_done(Reader* r);
  // Uploads: a message arrived (false: the call is being finished, do not
  // read on); finish once with `status`; the call is over (may delete u).
  bool uploader_message(Uploader* u);
  void uploader_finish(Uploader* u, const grpc::Status& status);
  void uploader_done(Uploader* u);
  void uploader_unref(Uploader* u);
  bool shutting_down() const {
    std::lock_guard lock(mutex_);
    return shutting_down_;
  }

  ServerConfig config_;
  ImageStore store_;
  std::unique_ptr<grpc::ServerCompletionQueue> stream_cq_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  int tcp_port_ = 0;
  std::atomic<std::uint64_t> images_sent_{0};
  std::atomic<std::uint64_t> streams_accepted_{0}, streams_refused_{0};

  mutable std::mutex mutex_;  // everything below
  std::condition_variable cv_;
  bool dirty_ = false;
  bool stop_dispatch_ = false;
  std::vector<Reader*> readers_;
  int stream_objects_ = 0;  // Readers alive, including the one waiting for a call
  int writers_pending_ = 0;
  bool shutting_down_ = false;
  bool hp_io_valid_ = false;
  double hp_io_interval_ = 0;
  std::vector<Uploader*> uploaders_;  // UploadImages calls being served
  struct InitCall {
    HpIoConfig config;
    grpc::ServerUnaryReactor* reactor;
    daqdata::InitHpIoResponse* response;
  };
  std::deque<InitCall> init_queue_;  // InitHpIo calls waiting for init_thread_
  int init_calls_ = 0;               // queued + running on init_thread_
  bool stop_init_ = false;
  std::condition_variable init_cv_;
  std::thread init_thread_;

  std::mutex writer_mutex_;  // serialises InitHpIo; guards hp_io_ and last_good_
  std::unique_ptr<HpIo> hp_io_;
  std::optional<HpIoConfig> last_good_;

  std::thread dispatcher_;
  std::thread stream_thread_;
  CacheView publish_view_;  // on_publish's look at the cache (publishing thread only)
  CacheView stream_view_;   // reader_batch_done's (stream thread only)
  std::vector<Reader*> publish_start_;
  std::once_flag shutdown_once_;
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;

 private:
  void dispatch_loop();
};

// ------------------------------------------------------------------ Reader

class Reader final {
 public:
  enum class State { accepting, idle, writing, finishing };
  enum class Event { accepted, written, finished, done };
  struct Tag {
    Reader* reader;
    Event event;
  };

  explicit Reader(Server::Impl* impl) : impl_(impl), writer_(&ctx_) {}

  // The request of an accepted call (on the stream thread, before anything
  // else touches the Reader).
  void configure(const daqdata::StreamImagesRequest& request, double hp_io_interval) {
    peer_ = ctx_.peer();
    movie_ = request.stream_movie_data();
    ph_ = request.stream_pulse_height_data();
    modules_.assign(request.module_ids().begin(), request.module_ids().end());
    interval_ = seconds(std::max(request.update_interval_seconds(), hp_io_interval));
  }

  bool wants(const EncodedImage& image) const {
    if (image.pulse_height ? !ph_ : !movie_) return false;
    return modules_.empty() ||
           std::find(modules_.begin(), modules_.end(), image.module_id) != modules_.end();
  }

  // Starts write `pos_` of the batch (without the lock, state == writing).
  // Within a batch every write but the last carries the buffer hint: the
  // transport completes a hinted write at once (while the stream's unsent
  // bytes stay under its 64 KiB write buffer) without sending it, and the
  // batch's last, unhinted write sends them all in one system call instead
  // of one per image. The stream's first write is never hinted: it carries
  // the response headers, and a hinted first write waits for a flush that
  // nothing else would start. `wrote_` is set by a write's completion,
  // which happens before the next batch is filled under the mutex.
  void write_next() {
    if (pos_ + 1 < batch_.size() && wrote_)
      writer_.Write(batch_[pos_], grpc::WriteOptions().set_buffer_hint(), &write_tag_);
    else
      writer_.Write(batch_[pos_], &write_tag_);
  }
  // Ends the call; once per call, with no write outstanding.
  void Finish(const grpc::Status& status) { writer_.Finish(status, &finish_tag_); }

  Server::Impl* impl_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
  Tag accept_tag_{this, Event::accepted}, write_tag_{this, Event::written},
      finish_tag_{this, Event::finished}, done_tag_{this, Event::done};
  bool finished_ = false, done_ = false;  // stream thread only: the two last events
  std::string peer_;
  bool movie_ = false, ph_ = false;
  std::vector<std::uint32_t> modules_;
  Duration interval_{};
  // Guarded by impl_->mutex_:
  State state_ = State::accepting;
  TimePoint last_tick_{};  // last tick that sent something
  std::uint64_t epoch_ = 0;
  // The store's newest frame id at the last look at the cache: every image
  // up to it was sent or not wanted, so only newer ones are sent.
  std::uint64_t seen_id_ = 0;
  std::vector<grpc::ByteBuffer> batch_;
  std::size_t pos_ = 0;
  bool wrote_ = false;
  std::optional<grpc::Status> pending_finish_;
};

// ------------------------------------------------------------------ Uploader

// One UploadImages call. Uploads run side by side (up to
// max_concurrent_uploads); none holds a lock while it waits for its next
// message, and one that goes upload_idle_timeout without a message is ended
// by the dispatcher thread.
class Uploader final : public grpc::ServerReadReactor<daqdata::UploadImageRequest> {
 public:
  explicit Uploader(Server::Impl* impl) : impl_(impl) {}
  void begin() { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) {  // half-close, a broken or cancelled stream, or the call was finished
      impl_->uploader_finish(this, grpc::Status::OK);
      return;
    }
    if (!impl_->uploader_message(this)) return;
    if (request_.has_pano_image()) {
      auto r = push_upload(impl_->store_, request_.pano_image());
      if (r == PushResult::full) {
        impl_->uploader_finish(this, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                                  "Server upload queue is full."));
        return;
      }
      if (r == PushResult::rejected && !warned_) {
        warned_ = true;
        log::warn("daq: UploadImages: dropping images of unknown (type, shape, bytes_per_pixel)");
      }
    }
    request_.Clear();
    // Safe even if another thread has finished the call meanwhile: this
    // callback still holds the call, and the read then fails at once.
    StartRead(&request_);
  }
  void OnDone() override { impl_->uploader_done(this); }

  // Guarded by impl_->mutex_:
  TimePoint deadline_ = TimePoint::max();  // no message by then: ended
  bool finishing_ = false;                 // Finish has been (or is being) called
  int refs_ = 1;                           // gRPC's, plus one per thread about to finish it

 private:
  Server::Impl* impl_;
  daqdata::UploadImageRequest request_;
  bool warned_ = false;
};

}  // namespace acheron::daq
