// Clean shutdown on SIGINT / SIGTERM for long-running subcommands: create the
// watcher before any thread starts (threads inherit the blocked signal mask),
// then set_target() the stop function. Signals go to a watcher thread, which
// calls the target (no work in an async signal handler). A signal before
// set_target() is remembered and the target is called at once when set.
#pragma once

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace acheron::app {

class SignalWatcher final {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    thread_ = std::thread([this] {
      const timespec slice{0, 100'000'000};  // check for shutdown every 100 ms
      while (!done_) {
        if (sigtimedwait(&set_, nullptr, &slice) > 0) fire();
      }
    });
  }
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  void set_target(std::function<void()> target) {
    std::lock_guard lock(mutex_);
    target_ = std::move(target);
    if (signalled_ && target_) target_();
  }
  bool signalled() const noexcept { return signalled_; }

 private:
  void fire() {
    std::lock_guard lock(mutex_);
    signalled_ = true;
    if (target_) target_();
  }
  std::mutex mutex_;
  std::function<void()> target_;
  sigset_t set_{}, previous_{};
  std::atomic<bool> done_{false};
  std::atomic<bool> signalled_{false};
  std::thread thread_;
};

// Blocks a subcommand's main thread until SIGINT/SIGTERM or fire() (from
// any thread); the watcher's target while it lives.
class SignalWaiter final {
 public:
  explicit SignalWaiter(SignalWatcher& signals) : signals_(signals) {
    signals_.set_target([this] { fire(); });
  }
  ~SignalWaiter() { signals_.set_target({}); }
  SignalWaiter(const SignalWaiter&) = delete;
  SignalWaiter& operator=(const SignalWaiter&) = delete;

  void fire() {
    std::lock_guard lock(m_);
    done_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  SignalWatcher& signals_;
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace acheron::app
