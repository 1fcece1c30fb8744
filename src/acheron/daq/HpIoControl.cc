// InitHpIo: the quick argument checks on gRPC's thread, then one call at a
// time on the init thread (bounded queue): streams are refused meanwhile,
// forced calls end the running streams, hp_io restarts on a cleared cache and
// falls back to the last good configuration when the new one fails.
#include "acheron/daq/ServerImpl.hh"

#include <filesystem>

#include "acheron/core/Error.hh"

namespace acheron::daq {

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
    // A call without force is refused while clients stream; answering it
    // here keeps it out of the queue, where it would make every new stream
    // UNAVAILABLE until its turn came (one client calling it over and over
    // kept all others from starting a stream).
    if (!c.force && !readers_.empty()) {
      const auto r = streaming_refusal();
      reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(r.code), r.message));
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

Server::InitResult Server::Impl::streaming_refusal() const {
  std::string peers;
  for (auto* r : readers_) peers += fmt::format("{}'{}'", peers.empty() ? "" : ", ", r->peer_);
  return {grpc::StatusCode::FAILED_PRECONDITION,
          fmt::format("Cannot modify server state: {} clients are streaming: [{}]", readers_.size(),
                      peers)};
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
      if (!c.force) return streaming_refusal();
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

}  // namespace acheron::daq
