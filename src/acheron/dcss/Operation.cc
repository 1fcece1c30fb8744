#include "acheron/dcss/Operation.hh"

#include "acheron/core/Log.hh"
#include "acheron/dcss/Outbox.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {

namespace htos = wire::xos::htos;

Operation::Operation(std::string name, std::string handle, std::vector<std::string> args,
                     std::uint64_t epoch, std::shared_ptr<Outbox> outbox)
    : name_(std::move(name)),
      handle_(std::move(handle)),
      args_(std::move(args)),
      epoch_(epoch),
      outbox_(std::move(outbox)) {}

Operation::~Operation() {
  if (!completed()) {
    log::warn("dcss: operation {} {} ended without a completion", name_, handle_);
    complete("error", "abandoned");
  }
}

bool Operation::update(std::string_view text) {
  std::lock_guard lock(mutex_);
  if (completed_) return false;
  return outbox_->send(epoch_, htos::operation_update(name_, handle_, text));
}

bool Operation::complete(std::string_view status, std::string_view text) {
  {
    std::lock_guard lock(mutex_);
    if (completed_) return false;
    completed_ = true;
    outbox_->send(epoch_, htos::operation_completed(name_, handle_, status, text));
  }
  cv_.notify_all();
  if (observer_) observer_(*this, status, text);
  return true;
}

bool Operation::completed() const {
  std::lock_guard lock(mutex_);
  return completed_;
}

bool Operation::wait_cancelled(Duration timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return cancelled(); });
}

void Operation::on_cancel(std::function<void()> f) {
  {
    std::lock_guard lock(mutex_);
    if (!cancelled()) {
      on_cancel_.push_back(std::move(f));
      return;
    }
  }
  f();
}

void Operation::fire_cancel() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    callbacks.swap(on_cancel_);
  }
  cv_.notify_all();
  for (auto& f : callbacks) f();
}

void Operation::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  fire_cancel();
}

void Operation::abort() {
  {
    std::lock_guard lock(mutex_);
    aborted_ = true;
  }
  complete("aborted");
  fire_cancel();
}

void Operation::abandon() {
  bool was_completed = false;
  {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    was_completed = completed_;
    completed_ = true;  // silently: this connection is gone
  }
  if (!was_completed && observer_) observer_(*this, "abandoned", "the connection to DCSS dropped");
  fire_cancel();
}

}  // namespace acheron::dcss
