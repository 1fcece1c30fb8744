#include "acheron/daq/Server.hh"

#include <grpc/slice.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "acheron/core/Clock.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/HpIo.hh"
#include "acheron/daqdata.grpc.pb.h"

namespace acheron::daq {

namespace {

// StreamImages is served on gRPC's asynchronous API with one completion-queue
// thread: a write that completes at once is picked up by the same thread
// without a wake-up, where the callback API hands every completion to one of
// its two executor threads (a thread switch per image). The other methods are
// callback methods.
using Base =
    daqdata::DaqData::WithRawMethod_StreamImages<daqdata::DaqData::WithCallbackMethod_InitHpIo<
        daqdata::DaqData::WithCallbackMethod_Ping<daqdata::DaqData::WithCallbackMethod_UploadImages<
            daqdata::DaqData::WithCallbackMethod_Status<daqdata::DaqData::Service>>>>>;

constexpr const char* kShutdownMessage = "Server is shutting down.";
constexpr const char* kReaderShutdown = "server shutdown_event set: the server is shutting down.";
constexpr const char* kReaderForced =
    "cancel_reader_event set: A writer has likely forced a reconfiguration of hp_io.";

bool parse_request(const grpc::ByteBuffer* buffer, google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer || !buffer->Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return message->ParseFromString(bytes);
}

Duration seconds(double s) {
  if (!(s > 0)) return Duration::zero();
  if (s > 1e9) s = 1e9;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

// A response of the cache as one gRPC slice over the same bytes: the slice
// holds a reference to the sample (and so to its bytes) until gRPC is done
// with it; nothing is copied.
grpc::ByteBuffer response_buffer(const hub::SamplePtr& sample) {
  const Buffer& bytes = ImageStore::image(*sample).bytes;
  auto* keep = new hub::SamplePtr(sample);
  grpc_slice slice = grpc_slice_new_with_user_data(
      const_cast<std::byte*>(bytes.data()), bytes.size(),
      [](void* p) { delete static_cast<hub::SamplePtr*>(p); }, keep);
  grpc::Slice owned(slice, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&owned, 1);
}

// Credentials of the TCP listener: TLS from PEM files, or plaintext.
std::shared_ptr<grpc::ServerCredentials> tcp_credentials(const ServerConfig& c) {
  if (c.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      c.tls_client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back({read_pem_file(c.tls_key_file, "private key"),
                                        read_pem_file(c.tls_cert_file, "certificate")});
  if (!c.tls_client_ca_file.empty())
    options.pem_root_certs = read_pem_file(c.tls_client_ca_file, "client CA");
  return grpc::SslServerCredentials(options);
}

}  // namespace

class Reader;
class Uploader;

class Server::Impl final : public Base {
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
  // had, fills its batch, marks it writing and returns true. `latest` is a
  // snapshot of the store taken by the caller, or empty to take one here.
  bool fill_batch(Reader* r, TimePoint now, std::vector<hub::SamplePtr>& latest,
                  std::uint64_t& latest_id);
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
  std::vector<hub::SamplePtr> publish_latest_;  // on_publish's snapshot (publishing thread only)
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

// ------------------------------------------------------------------ handlers

void Server::Impl::accept_stream() {
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) return;
    ++stream_objects_;
  }
  auto* r = new Reader(this);
  r->ctx_.AsyncNotifyWhenDone(&r->done_tag_);
  RequestStreamImages(&r->ctx_, &r->request_, &r->writer_, stream_cq_.get(), stream_cq_.get(),
                      &r->accept_tag_);
}

void Server::Impl::stream_loop() {
  void* tag = nullptr;
  bool ok = false;
  while (stream_cq_->Next(&tag, &ok)) {
    auto* t = static_cast<Reader::Tag*>(tag);
    Reader* r = t->reader;
    switch (t->event) {
      case Reader::Event::accepted:
        if (!ok) {  // the server shut down before a call came: no other event follows
          r->finished_ = r->done_ = true;
          break;
        }
        accept_stream();
        stream_started(r);
        break;
      case Reader::Event::written:
        reader_batch_done(r, ok);
        break;
      case Reader::Event::finished:
        r->finished_ = true;
        break;
      case Reader::Event::done:
        r->done_ = true;
        if (r->ctx_.IsCancelled()) reader_cancelled(r);
        break;
    }
    if (r->finished_ && r->done_) {
      reader_done(r);
      delete r;
    }
  }
}

void Server::Impl::stream_started(Reader* r) {
  daqdata::StreamImagesRequest req;
  std::optional<grpc::Status> refusal;
  if (!parse_request(&r->request_, &req)) {
    refusal.emplace(grpc::StatusCode::INVALID_ARGUMENT, "StreamImagesRequest could not be parsed.");
  } else if (!req.stream_movie_data() && !req.stream_pulse_height_data()) {
    refusal.emplace(grpc::StatusCode::INVALID_ARGUMENT, "At least one stream flag must be True.");
  } else {
    std::lock_guard lock(mutex_);
    if (writers_pending_ > 0) {
      refusal.emplace(grpc::StatusCode::UNAVAILABLE,
                      "Server is being configured, please try again soon.");
    } else if (shutting_down_) {
      refusal.emplace(grpc::StatusCode::CANCELLED, kShutdownMessage);
    } else if (!hp_io_valid_) {
      refusal.emplace(grpc::StatusCode::FAILED_PRECONDITION, "hp_io task is not valid.");
    } else if (readers_.size() >= static_cast<std::size_t>(config_.max_concurrent_rpcs)) {
      refusal.emplace(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      fmt::format("Max clients ({}) reached.", config_.max_concurrent_rpcs));
    } else {
      r->configure(req, hp_io_interval_);
      r->state_ = Reader::State::idle;
      r->epoch_ = store_.epoch();
      readers_.push_back(r);
      dirty_ = true;
      cv_.notify_one();
      log::debug("daq: stream from {} (movie {}, ph {}, interval {} s, {} modules)", r->peer_,
                 r->movie_, r->ph_, req.update_interval_seconds(), r->modules_.size());
    }
  }
  if (refusal) {
    r->state_ = Reader::State::finishing;  // never listed: no other thread sees it
    r->Finish(*refusal);
  }
}

void Server::Impl::reader_batch_done(Reader* r, bool ok) {
  r->wrote_ = true;
  std::unique_lock lock(mutex_);
  if (ok) images_sent_.fetch_add(1, std::memory_order_relaxed);
  if (!ok || r->pending_finish_) {
    r->state_ = Reader::State::finishing;
    auto status =
        r->pending_finish_.value_or(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
    r->batch_.clear();
    lock.unlock();
    r->Finish(status);
    return;
  }
  if (++r->pos_ < r->batch_.size()) {
    lock.unlock();
    r->write_next();
    return;
  }
  r->batch_.clear();
  r->pos_ = 0;
  r->state_ = Reader::State::idle;
  // A stream that is due and has news goes on at once, on this thread,
  // without a round trip through the dispatcher.
  std::vector<hub::SamplePtr> latest;
  std::uint64_t latest_id = 0;
  if (!shutting_down_ && fill_batch(r, Clock::now(), latest, latest_id)) {
    lock.unlock();
    r->write_next();
    return;
  }
  // Idle: new images wake the dispatcher; a stream waiting for its interval
  // needs the dispatcher's timer.
  if (r->interval_ > Duration::zero()) {
    dirty_ = true;
    lock.unlock();
    cv_.notify_one();
  }
}

bool Server::Impl::fill_batch(Reader* r, TimePoint now, std::vector<hub::SamplePtr>& latest,
                              std::uint64_t& latest_id) {
  if (r->state_ != Reader::State::idle) return false;
  if (r->last_tick_ != TimePoint{} && now < r->last_tick_ + r->interval_) return false;
  const auto epoch = store_.epoch();
  if (r->epoch_ != epoch) {
    r->epoch_ = epoch;
    r->seen_id_ = 0;
  }
  if (r->seen_id_ != 0 && store_.newest_id() == r->seen_id_) return false;  // nothing new
  if (latest_id == 0) latest_id = store_.snapshot(&latest);
  for (const auto& sample : latest) {
    const auto& e = ImageStore::image(*sample);
    if (e.frame_id <= r->seen_id_ || !r->wants(e)) continue;
    r->batch_.push_back(response_buffer(sample));
  }
  r->seen_id_ = latest_id;
  if (r->batch_.empty()) return false;
  r->last_tick_ = now;
  r->pos_ = 0;
  r->state_ = Reader::State::writing;
  return true;
}

void Server::Impl::reader_cancelled(Reader* r) {
  std::unique_lock lock(mutex_);
  if (r->state_ == Reader::State::idle) {
    r->state_ = Reader::State::finishing;
    lock.unlock();
    r->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled"));
  } else if (r->state_ == Reader::State::writing && !r->pending_finish_) {
    r->pending_finish_ = grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
  }
}

void Server::Impl::reader_done(Reader* r) {
  {
    std::lock_guard lock(mutex_);
    std::erase(readers_, r);
    --stream_objects_;
  }
  cv_.notify_all();  // InitHpIo may wait for readers to go
}

void Server::Impl::on_publish() {
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) return;
    const auto now = Clock::now();
    std::uint64_t latest_id = 0;
    for (auto* r : readers_)
      if (fill_batch(r, now, publish_latest_, latest_id)) publish_start_.push_back(r);
  }
  // A stream in `writing` state stays alive until its write completes, so
  // starting the writes after unlocking is safe (as in the dispatcher).
  for (auto* r : publish_start_) r->write_next();
  publish_start_.clear();
}

void Server::Impl::dispatch_loop() {
  std::unique_lock lock(mutex_);
  std::vector<hub::SamplePtr> latest;
  std::vector<Reader*> start;
  std::vector<Uploader*> expired;
  while (!stop_dispatch_) {
    dirty_ = false;
    const auto now = Clock::now();
    auto next = TimePoint::max();
    std::uint64_t latest_id = 0;  // one snapshot of the cache per pass, taken when needed
    for (auto* r : readers_) {
      if (r->state_ != Reader::State::idle) continue;
      if (fill_batch(r, now, latest, latest_id)) {
        start.push_back(r);
      } else if (r->last_tick_ != TimePoint{} && now < r->last_tick_ + r->interval_) {
        next = std::min(next, r->last_tick_ + r->interval_);
      }
    }
    for (auto* u : uploaders_) {
      if (u->finishing_) continue;
      if (now >= u->deadline_) {
        u->finishing_ = true;
        ++u->refs_;  // alive until finished below
        expired.push_back(u);
      } else {
        next = std::min(next, u->deadline_);
      }
    }
    if (!start.empty() || !expired.empty()) {
      lock.unlock();
      for (auto* r : start) r->write_next();
      start.clear();
      for (auto* u : expired) {
        u->Finish(grpc::Status(
            grpc::StatusCode::DEADLINE_EXCEEDED,
            fmt::format("UploadImages: no message for {} s (upload_idle_timeout); upload ended.",
                        config_.upload_idle_timeout)));
        uploader_unref(u);
      }
      expired.clear();
      lock.lock();
      continue;  // dirty_ may have been set meanwhile
    }
    if (dirty_ || stop_dispatch_) continue;
    if (next == TimePoint::max())
      cv_.wait(lock);
    else
      cv_.wait_until(lock, next);
  }
}

grpc::ServerUnaryReactor* Server::Impl::InitHpIo(grpc::CallbackServerContext* ctx,
                                                 const daqdata::InitHpIoRequest* request,
                                                 daqdata::InitHpIoResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  HpIoConfig c;
  c.data_dir = request->data_dir();
  c.update_interval_seconds = request->update_interval_seconds();
  c.force = request->force();
  c.simulate_daq = request->simulate_daq();
  c.module_ids.assign(request->module_ids().begin(), request->module_ids().end());
  // The argument checks are quick: answer them here.
  if (auto error = check_init_arguments(c)) {
    reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(error->code), error->message));
    return reactor;
  }
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kShutdownMessage));
      return reactor;
    }
    // Calls run one at a time on init_thread_ (they wait for each other and
    // for hp_io to start, which must not hold gRPC's threads); a bounded
    // number waits.
    if (init_calls_ > config_.max_queued_init_hp_io) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          fmt::format("InitHpIo: one call is running and {} are waiting (max_queued_init_hp_io); "
                      "try again later.",
                      init_calls_ - 1)));
      return reactor;
    }
    ++init_calls_;
    ++writers_pending_;  // new streams get UNAVAILABLE from now on
    init_queue_.push_back(InitCall{std::move(c), reactor, response});
  }
  init_cv_.notify_one();
  return reactor;
}

void Server::Impl::init_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    init_cv_.wait(lock, [&] { return stop_init_ || !init_queue_.empty(); });
    if (init_queue_.empty()) return;  // stopping, and every call answered
    InitCall call = std::move(init_queue_.front());
    init_queue_.pop_front();
    lock.unlock();
    const auto r = run_init(call.config);
    if (r.code != 0) {
      call.reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(r.code), r.message));
    } else {
      call.response->set_success(r.success);
      if (!r.success) call.response->set_error_message(r.message);
      call.reactor->Finish(grpc::Status::OK);
    }
    lock.lock();
    --init_calls_;
  }
}

std::optional<Server::InitResult> Server::Impl::check_init_arguments(HpIoConfig& c) const {
  using Code = grpc::StatusCode;
  if (!c.simulate_daq) {
    // Real data only from the configured roots. One answer for a path
    // outside them, whether or not it exists, and for one inside that does
    // not: nothing is revealed about the rest of the file system.
    auto resolved = resolve_under_roots(c.data_dir, config_.allowed_data_roots);
    if (!resolved) {
      log::info("daq: InitHpIo refused data_dir '{}' (missing or outside allowed_data_roots)",
                escaped(c.data_dir.string()));
      return Server::InitResult{
          Code::INVALID_ARGUMENT,
          fmt::format("data_dir '{}' does not exist under the allowed data roots.",
                      escaped(c.data_dir.string()))};
    }
    c.data_dir = std::move(*resolved);
    if (!process_running("hashpipe"))
      return Server::InitResult{Code::FAILED_PRECONDITION, "Real DAQ software is not active."};
  }
  // Negated so that NaN is refused too.
  if (!(c.update_interval_seconds >= config_.min_hp_io_update_interval_seconds))
    return Server::InitResult{Code::INVALID_ARGUMENT,
                              "update_interval_seconds is below server minimum."};
  return std::nullopt;
}

Server::InitResult Server::Impl::init_hp_io(HpIoConfig c) {
  using Code = grpc::StatusCode;
  if (auto error = check_init_arguments(c)) return *error;
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) return {Code::CANCELLED, kShutdownMessage};
    ++writers_pending_;
  }
  return run_init(c);
}

Server::InitResult Server::Impl::run_init(const HpIoConfig& c) {
  using Code = grpc::StatusCode;
  struct Pending {
    Impl* impl;
    ~Pending() {
      {
        std::lock_guard lock(impl->mutex_);
        --impl->writers_pending_;
        impl->dirty_ = true;
      }
      impl->cv_.notify_all();
    }
  } pending{this};
  std::lock_guard writer(writer_mutex_);
  std::vector<Reader*> to_finish;
  {
    std::unique_lock lock(mutex_);
    if (shutting_down_) return {Code::CANCELLED, kShutdownMessage};
    if (!readers_.empty()) {
      if (!c.force) {
        std::string peers;
        for (auto* r : readers_)
          peers += fmt::format("{}'{}'", peers.empty() ? "" : ", ", r->peer_);
        return {Code::FAILED_PRECONDITION,
                fmt::format("Cannot modify server state: {} clients are streaming: [{}]",
                            readers_.size(), peers)};
      }
      for (auto* r : readers_) {
        if (r->state_ == Reader::State::idle) {
          r->state_ = Reader::State::finishing;
          to_finish.push_back(r);
        } else if (r->state_ == Reader::State::writing && !r->pending_finish_) {
          r->pending_finish_ = grpc::Status(grpc::StatusCode::CANCELLED, kReaderForced);
        }
      }
    }
  }
  for (auto* r : to_finish) r->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kReaderForced));
  {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::seconds(2), [&] { return readers_.empty(); });
    hp_io_valid_ = false;
  }
  if (hp_io_) {
    hp_io_->stop();
    hp_io_.reset();
  }
  store_.clear();
  auto start = [&](const HpIoConfig& cfg) {
    hp_io_ = std::make_unique<HpIo>(config_, cfg, store_);
    std::lock_guard lock(mutex_);
    hp_io_valid_ = true;
    hp_io_interval_ = std::max(0.0, cfg.update_interval_seconds);
  };
  try {
    start(c);
    last_good_ = c;
    return {0, "", true};
  } catch (const std::exception& e) {
    log::error("daq: InitHpIo failed: {}", e.what());
    if (last_good_) {
      try {
        start(*last_good_);
      } catch (const std::exception& e2) {
        log::error("daq: restoring the previous hp_io configuration failed: {}", e2.what());
      }
    }
    return {0, e.what(), false};
  }
}

grpc::ServerReadReactor<daqdata::UploadImageRequest>* Server::Impl::UploadImages(
    grpc::CallbackServerContext*, google::protobuf::Empty*) {
  auto* u = new Uploader(this);
  std::optional<grpc::Status> refusal;
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) {
      refusal.emplace(grpc::StatusCode::CANCELLED, kShutdownMessage);
    } else if (!hp_io_valid_) {
      refusal.emplace(grpc::StatusCode::FAILED_PRECONDITION, "hp_io task is not valid.");
    } else if (uploaders_.size() >= static_cast<std::size_t>(config_.max_concurrent_uploads)) {
      refusal.emplace(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      fmt::format("Max uploaders ({}) reached.", config_.max_concurrent_uploads));
    } else {
      uploaders_.push_back(u);
      if (config_.upload_idle_timeout > 0) {
        u->deadline_ = Clock::now() + seconds(config_.upload_idle_timeout);
        dirty_ = true;  // the dispatcher keeps the deadline
      }
    }
    if (refusal) u->finishing_ = true;
  }
  if (refusal) {
    u->Finish(*refusal);
    return u;
  }
  cv_.notify_all();
  u->begin();
  return u;
}

bool Server::Impl::uploader_message(Uploader* u) {
  std::unique_lock lock(mutex_);
  if (u->finishing_) return false;
  if (shutting_down_) {
    u->finishing_ = true;
    lock.unlock();
    u->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kShutdownMessage));
    return false;
  }
  if (config_.upload_idle_timeout > 0)
    u->deadline_ = Clock::now() + seconds(config_.upload_idle_timeout);
  return true;
}

void Server::Impl::uploader_finish(Uploader* u, const grpc::Status& status) {
  {
    std::lock_guard lock(mutex_);
    if (u->finishing_) return;
    u->finishing_ = true;
  }
  u->Finish(status);
}

void Server::Impl::uploader_done(Uploader* u) {
  {
    std::lock_guard lock(mutex_);
    std::erase(uploaders_, u);
  }
  uploader_unref(u);
}

void Server::Impl::uploader_unref(Uploader* u) {
  bool last = false;
  {
    std::lock_guard lock(mutex_);
    last = --u->refs_ == 0;
  }
  if (last) delete u;
}

// ------------------------------------------------------------------ lifecycle

void Server::Impl::start() {
  ::signal(SIGPIPE, SIG_IGN);  // FIFO and socket writers get EPIPE instead
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Limits (docs/daq.md, "Limits and security"). The thread quota bounds the
  // threads of synchronous methods (server reflection); beyond it a call gets
  // RESOURCE_EXHAUSTED. Streams per connection are an HTTP/2 setting: calls
  // beyond it wait in the client, so it sits above the application's limits.
  grpc::ResourceQuota quota("daqdata");
  quota.SetMaxThreads(config_.grpc_max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config_.streams_per_connection());
  builder.SetMaxReceiveMessageSize(config_.max_receive_message_bytes);
  if (!config_.tcp_address.empty())
    builder.AddListeningPort(config_.tcp_address, tcp_credentials(config_), &tcp_port_);
  const auto unix_path = config_.unix_socket_path();
  if (!unix_path.empty()) {
    struct stat st {};
    if (::lstat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(unix_path.c_str());
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(unix_path).parent_path(), ec);
    builder.AddListeningPort(config_.unix_domain_socket, grpc::InsecureServerCredentials());
  }
  builder.RegisterService(this);
  stream_cq_ = builder.AddCompletionQueue();
  server_ = builder.BuildAndStart();
  if (!server_)
    throw SetupError(fmt::format(
        "cannot listen on {}{}{} (address in use or not permitted{}); choose other addresses",
        config_.tcp_address, config_.tcp_address.empty() ? "" : " and ", config_.unix_domain_socket,
        config_.tls_cert_file.empty() ? "" : ", or the TLS certificate and key do not match"));
  if (!config_.tcp_address.empty() && tcp_port_ == 0)
    throw SetupError(fmt::format("cannot listen on TCP {} (address in use?)", config_.tcp_address));
  if (auto* health = server_->GetHealthCheckService())
    health->SetServingStatus("daqdata.DaqData", true);
  dispatcher_ = std::thread([this] {
    set_thread_name("daq-dispatch");
    dispatch_loop();
  });
  accept_stream();
  stream_thread_ = std::thread([this] {
    set_thread_name("daq-streams");
    stream_loop();
  });
  init_thread_ = std::thread([this] {
    set_thread_name("daq-init");
    init_loop();
  });
}

void Server::Impl::shutdown() {
  std::call_once(shutdown_once_, [this] {
    std::vector<Reader*> to_finish;
    std::vector<Uploader*> uploads;
    {
      std::lock_guard lock(mutex_);
      shutting_down_ = true;
      hp_io_valid_ = false;
      for (auto* r : readers_) {
        if (r->state_ == Reader::State::idle) {
          r->state_ = Reader::State::finishing;
          to_finish.push_back(r);
        } else if (r->state_ == Reader::State::writing && !r->pending_finish_) {
          r->pending_finish_ = grpc::Status(grpc::StatusCode::CANCELLED, kReaderShutdown);
        }
      }
      // An upload waiting for its next message has nothing in progress:
      // it ends now.
      for (auto* u : uploaders_) {
        if (u->finishing_) continue;
        u->finishing_ = true;
        ++u->refs_;
        uploads.push_back(u);
      }
    }
    for (auto* r : to_finish) r->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kReaderShutdown));
    for (auto* u : uploads) {
      u->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kShutdownMessage));
      uploader_unref(u);
    }
    {
      std::lock_guard writer(writer_mutex_);
      if (hp_io_) hp_io_->stop();
      hp_io_.reset();
    }
    // The grace period is for work in progress: streams finishing their
    // current write, an InitHpIo. Once none is left, calls that
    // are finished on this side (a client may hold its channel open without
    // acknowledging) need not hold the process for the whole period.
    const auto grace_end = Clock::now() + seconds(config_.shutdown_grace_period);
    {
      std::unique_lock lock(mutex_);
      auto busy = [&] {
        if (writers_pending_ > 0) return true;
        for (auto* r : readers_)
          if (r->state_ != Reader::State::finishing) return true;
        return false;
      };
      while (busy() && Clock::now() < grace_end) cv_.wait_for(lock, std::chrono::milliseconds(10));
    }
    if (server_) {
      if (auto* health = server_->GetHealthCheckService())
        health->SetServingStatus("daqdata.DaqData", false);
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    }
    if (stream_thread_.joinable()) {
      // Shutdown cancelled every call: their last events arrive at once. The
      // queue closes when no Reader is left to start an operation on it.
      {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::seconds(5), [&] { return stream_objects_ == 0; });
        if (stream_objects_ != 0)
          log::error("daq: {} streams still open at shutdown", stream_objects_);
      }
      stream_cq_->Shutdown();
      stream_thread_.join();
    }
    {
      std::lock_guard lock(mutex_);
      stop_dispatch_ = true;
    }
    cv_.notify_all();
    if (dispatcher_.joinable()) dispatcher_.join();
    {
      std::lock_guard lock(mutex_);
      stop_init_ = true;  // calls still queued are answered CANCELLED
    }
    init_cv_.notify_all();
    if (init_thread_.joinable()) init_thread_.join();
    if (server_) server_->Wait();
    const auto unix_path = config_.unix_socket_path();
    if (!unix_path.empty()) ::unlink(unix_path.c_str());
    {
      std::lock_guard lock(done_mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
  });
}

// ------------------------------------------------------------------ Server

Server::Server(ServerConfig config) {
  validate_limits(config);
  impl_ = std::make_unique<Impl>(std::move(config));
}
Server::~Server() {
  if (impl_) impl_->shutdown();
}

void Server::start() {
  impl_->start();
  if (impl_->config_.init_from_default) {
    HpIoConfig c = parse_hp_io_config(default_hp_io_config_json());
    if (!impl_->config_.default_hp_io_config_file.empty()) {
      std::filesystem::path p = impl_->config_.default_hp_io_config_file;
      if (!std::filesystem::exists(p) && std::filesystem::exists("daq_data/config" / p))
        p = "daq_data/config" / p;
      c = load_hp_io_config(p);
    }
    auto r = impl_->init_hp_io(c);
    if (r.code != 0 || !r.success) log::error("daq: the default InitHpIo failed: {}", r.message);
  }
}

int Server::tcp_port() const {
  return impl_->tcp_port_;
}
void Server::shutdown() {
  impl_->shutdown();
}
void Server::wait() {
  impl_->wait();
}
Server::InitResult Server::init_hp_io(const HpIoConfig& config) {
  return impl_->init_hp_io(config);
}
ImageStore& Server::store() {
  return impl_->store_;
}
const ServerConfig& Server::config() const {
  return impl_->config_;
}

ServerStats Server::stats() const {
  std::lock_guard lock(impl_->mutex_);
  return {impl_->readers_.size(), impl_->images_sent_.load(), impl_->hp_io_valid_,
          impl_->uploaders_.size()};
}

}  // namespace acheron::daq
