#include "acheron/dcss/Outbox.hh"

#include "acheron/core/Log.hh"

namespace acheron::dcss {

bool Outbox::send(std::uint64_t epoch, std::string text) {
  {
    std::lock_guard lock(mutex_);
    if (!open_ || epoch != epoch_) {
      ++dropped_;
      log::debug("dcss: dropped for a closed connection: {}", text);
      return false;
    }
    if (queue_.size() >= capacity_) {
      ++dropped_;
      log::error("dcss: writer queue full ({} messages; DCSS is not reading): dropped {}",
                 capacity_, text);
      return false;
    }
    queue_.push_back(std::move(text));
  }
  cv_.notify_one();
  return true;
}

void Outbox::open(std::uint64_t epoch) {
  std::lock_guard lock(mutex_);
  queue_.clear();
  epoch_ = epoch;
  open_ = true;
}

void Outbox::close() {
  {
    std::lock_guard lock(mutex_);
    dropped_ += queue_.size();
    queue_.clear();
    open_ = false;
  }
  cv_.notify_all();
}

std::uint64_t Outbox::epoch() const {
  std::lock_guard lock(mutex_);
  return epoch_;
}

bool Outbox::is_open() const {
  std::lock_guard lock(mutex_);
  return open_;
}

std::optional<std::string> Outbox::pop(Duration timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || !open_; });
  if (queue_.empty() || !open_) return std::nullopt;
  auto text = std::move(queue_.front());
  queue_.pop_front();
  return text;
}

std::uint64_t Outbox::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

}  // namespace acheron::dcss
