// StreamImages on the stream completion queue: calls are accepted and
// checked, idle streams are given batches of the cache's new images (on the
// publishing thread, the stream thread or the dispatcher thread), and the
// dispatcher also ends uploads that stay idle too long.
#include "acheron/daq/ServerImpl.hh"

#include <grpc/slice.h>

namespace acheron::daq {

namespace {

bool parse_request(const grpc::ByteBuffer* buffer, google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer || !buffer->Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return message->ParseFromString(bytes);
}

// A response of the cache as one gRPC slice over the same bytes: the slice
// holds a reference to the sample (and so to its bytes) until gRPC is done
// with it; nothing is copied.
grpc::Slice response_slice(const hub::SamplePtr& sample) {
  const Buffer& bytes = ImageStore::image(*sample).bytes;
  auto* keep = new hub::SamplePtr(sample);
  grpc_slice slice = grpc_slice_new_with_user_data(
      const_cast<std::byte*>(bytes.data()), bytes.size(),
      [](void* p) { delete static_cast<hub::SamplePtr*>(p); }, keep);
  return grpc::Slice(slice, grpc::Slice::STEAL_REF);
}

}  // namespace

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
      ++streams_accepted_;
      dirty_ = true;
      cv_.notify_one();
      log::debug("daq: stream from {} (movie {}, ph {}, interval {} s, {} modules)", r->peer_,
                 r->movie_, r->ph_, req.update_interval_seconds(), r->modules_.size());
    }
  }
  if (refusal) {
    ++streams_refused_;
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
  stream_view_.newest_id = 0;
  if (!shutting_down_ && fill_batch(r, Clock::now(), stream_view_)) {
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

bool Server::Impl::fill_batch(Reader* r, TimePoint now, CacheView& view) {
  if (r->state_ != Reader::State::idle) return false;
  if (r->last_tick_ != TimePoint{} && now < r->last_tick_ + r->interval_) return false;
  const auto epoch = store_.epoch();
  if (r->epoch_ != epoch) {
    r->epoch_ = epoch;
    r->seen_id_ = 0;
  }
  if (r->seen_id_ != 0 && store_.newest_id() == r->seen_id_) return false;  // nothing new
  if (view.newest_id == 0) {
    // A new look; slices of images still cached at the same place are kept.
    view.newest_id = store_.snapshot(&view.scratch);
    view.slices.resize(view.scratch.size());
    for (std::size_t i = 0; i < view.scratch.size(); ++i)
      if (i >= view.samples.size() || view.samples[i] != view.scratch[i])
        view.slices[i] = grpc::Slice();
    view.samples.swap(view.scratch);
  }
  for (std::size_t i = 0; i < view.samples.size(); ++i) {
    const auto& e = ImageStore::image(*view.samples[i]);
    if (e.frame_id <= r->seen_id_ || !r->wants(e)) continue;
    if (view.slices[i].size() == 0) view.slices[i] = response_slice(view.samples[i]);
    r->batch_.emplace_back(&view.slices[i], 1);
  }
  r->seen_id_ = view.newest_id;
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
    publish_view_.newest_id = 0;  // a new look per publication, taken when needed
    for (auto* r : readers_)
      if (fill_batch(r, now, publish_view_)) publish_start_.push_back(r);
  }
  // A stream in `writing` state stays alive until its write completes, so
  // starting the writes after unlocking is safe (as in the dispatcher).
  for (auto* r : publish_start_) r->write_next();
  publish_start_.clear();
}

void Server::Impl::dispatch_loop() {
  std::unique_lock lock(mutex_);
  CacheView view;
  std::vector<Reader*> start;
  std::vector<Uploader*> expired;
  while (!stop_dispatch_) {
    dirty_ = false;
    const auto now = Clock::now();
    auto next = TimePoint::max();
    view.newest_id = 0;  // one look at the cache per pass, taken when needed
    for (auto* r : readers_) {
      if (r->state_ != Reader::State::idle) continue;
      if (fill_batch(r, now, view)) {
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

}  // namespace acheron::daq
