// Method calls: the handler signature, the context a handler sees, and the
// Call object that guarantees exactly one completion per request whether it
// finishes, fails, is cancelled or passes its deadline.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "acheron/core/Clock.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Payload.hh"

namespace acheron::hub {

// The outcome of a call: a payload, or a status with the error's type name
// and message (as the remote side reported it).
struct Reply {
  StatusCode status = StatusCode::ok;
  Payload payload;
  std::string error_type;
  std::string message;

  bool ok() const noexcept { return status == StatusCode::ok; }
  static Reply failure(StatusCode code, std::string message, std::string type = {});
};

class Call;

// What a method handler sees of its call.
class CallContext final {
 public:
  explicit CallContext(Call& call) : call_(call) {}
  // True once the call was cancelled or its deadline passed; long handlers
  // poll this (or throw_if_stopped) and return early.
  bool stop_requested() const;
  // Throws Failure(cancelled) or Failure(deadline_exceeded) when stopped.
  void throw_if_stopped() const;
  TimePoint deadline() const;
  std::stop_token stop_token() const;
  // Sends a progress payload to the caller before the final reply. Ignored
  // once the call has completed.
  void progress(Payload payload);

 private:
  Call& call_;
};

using MethodHandler = std::function<Payload(const Payload& request, CallContext& context)>;

// One in-flight call. Thread-safe: the handler thread, a canceller and a
// deadline timer may race; exactly one completion reaches on_complete.
class Call final : public std::enable_shared_from_this<Call> {
 public:
  using ProgressSink = std::function<void(Payload)>;
  using CompletionSink = std::function<void(Reply)>;

  Call(TimePoint deadline, ProgressSink on_progress, CompletionSink on_complete);

  // Runs handler in the calling thread and completes the call with its
  // result; exceptions become error replies (Failure keeps its code,
  // std::invalid_argument becomes invalid_argument, any other exception is
  // internal).
  void run(const MethodHandler& handler, const Payload& request);

  // Completes with `reply` unless already completed; returns true if this
  // completion won.
  bool complete(Reply reply);
  bool cancel(std::string reason = "cancelled by the caller");
  // Completes with deadline_exceeded if the deadline is at or before now.
  bool expire_if_due(TimePoint now = Clock::now());

  bool finished() const noexcept { return finished_.load(); }
  TimePoint deadline() const noexcept { return deadline_; }
  bool stop_requested() const;
  std::stop_token stop_token() const { return stop_.get_token(); }
  void progress(Payload payload);

 private:
  TimePoint deadline_;
  ProgressSink on_progress_;
  CompletionSink on_complete_;
  std::stop_source stop_;
  std::atomic<bool> finished_{false};
  std::mutex sink_mutex_;  // orders progress before completion
};

}  // namespace acheron::hub
