// One DCSS operation instance (dcss-xos.md §5): `stoh_start_operation OP
// HANDLE args…` gives updates, then exactly one completion. Handlers hold a
// std::shared_ptr<Operation> and may finish on any thread; complete() after
// the first completion (or after an abort completed it) does nothing. An
// operation dropped without a completion completes `error abandoned`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Clock.hh"

namespace acheron::dcss {

class Outbox;

class Operation final {
 public:
  Operation(std::string name, std::string handle, std::vector<std::string> args,
            std::uint64_t epoch, std::shared_ptr<Outbox> outbox);
  ~Operation();
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& handle() const noexcept { return handle_; }
  const std::vector<std::string>& args() const noexcept { return args_; }
  std::uint64_t epoch() const noexcept { return epoch_; }

  // htos_operation_update OP HANDLE text; false once completed.
  bool update(std::string_view text);
  // htos_operation_completed OP HANDLE status text; true only for the first call.
  bool complete(std::string_view status, std::string_view text = {});
  bool completed() const;

  // stoh_stop_operation was received (cooperative: the handler still completes).
  bool stop_requested() const noexcept { return stop_.load(); }
  // stoh_abort_all (already completed `aborted`) or the connection dropped.
  bool aborted() const noexcept { return aborted_.load(); }
  bool cancelled() const noexcept { return stop_requested() || aborted(); }
  // Waits until stop or abort, at most `timeout`; true if cancelled.
  bool wait_cancelled(Duration timeout);
  // Runs `f` once when stop or abort is requested (at once if already). It
  // runs on the connection's reader thread: keep it short.
  void on_cancel(std::function<void()> f);

  // Framework side.
  // Called once, after the completion is queued (or when the operation is
  // abandoned: status "abandoned"), on the completing thread without locks
  // held. Set before the handler runs.
  using CompletionObserver =
      std::function<void(const Operation&, std::string_view status, std::string_view text)>;
  void set_completion_observer(CompletionObserver observer) { observer_ = std::move(observer); }
  void request_stop();
  // Completes `aborted` (if not already completed) and flags the handler.
  void abort();
  // The connection is gone: never report again (DCSS already failed it).
  void abandon();

 private:
  void fire_cancel();

  const std::string name_, handle_;
  const std::vector<std::string> args_;
  const std::uint64_t epoch_;
  std::shared_ptr<Outbox> outbox_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool completed_ = false;
  std::atomic<bool> stop_{false}, aborted_{false};
  std::vector<std::function<void()>> on_cancel_;
  CompletionObserver observer_;
};

using OperationPtr = std::shared_ptr<Operation>;

}  // namespace acheron::dcss
