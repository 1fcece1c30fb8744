// UploadImages: admission (hp_io valid, at most max_concurrent_uploads),
// idle deadlines kept by the dispatcher, and finishing each call exactly once
// from whichever thread gets there first.
#include "acheron/daq/ServerImpl.hh"

namespace acheron::daq {

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

}  // namespace acheron::daq
