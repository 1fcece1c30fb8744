#include "acheron/hub/Call.hh"

#include <exception>

namespace acheron::hub {

Reply Reply::failure(StatusCode code, std::string message, std::string type) {
  Reply r;
  r.status = code;
  r.message = std::move(message);
  r.error_type = std::move(type);
  return r;
}

bool CallContext::stop_requested() const {
  return call_.stop_requested();
}

void CallContext::throw_if_stopped() const {
  if (call_.stop_token().stop_requested()) {
    throw Failure(StatusCode::cancelled, "call was cancelled");
  }
  if (Clock::now() >= call_.deadline()) {
    throw Failure(StatusCode::deadline_exceeded, "call passed its deadline");
  }
}

TimePoint CallContext::deadline() const {
  return call_.deadline();
}
std::stop_token CallContext::stop_token() const {
  return call_.stop_token();
}
void CallContext::progress(Payload payload) {
  call_.progress(std::move(payload));
}

Call::Call(TimePoint deadline, ProgressSink on_progress, CompletionSink on_complete)
    : deadline_(deadline),
      on_progress_(std::move(on_progress)),
      on_complete_(std::move(on_complete)) {}

bool Call::stop_requested() const {
  return stop_.stop_requested() || finished_.load() || Clock::now() >= deadline_;
}

void Call::run(const MethodHandler& handler, const Payload& request) {
  if (stop_requested()) {
    expire_if_due();
    return;
  }
  CallContext ctx(*this);
  Reply reply;
  try {
    reply.payload = handler(request, ctx);
  } catch (const Failure& f) {
    reply = Reply::failure(f.code(), f.what(), "Failure");
  } catch (const std::invalid_argument& e) {
    reply = Reply::failure(StatusCode::invalid_argument, e.what(), "invalid_argument");
  } catch (const std::exception& e) {
    reply = Reply::failure(StatusCode::internal, e.what(), "exception");
  } catch (...) {
    reply = Reply::failure(StatusCode::internal, "unknown exception", "unknown");
  }
  // A result produced after the deadline is not delivered: the caller has
  // already been told the call expired, or is about to be.
  if (reply.ok() && Clock::now() >= deadline_) {
    reply = Reply::failure(StatusCode::deadline_exceeded, "call passed its deadline");
  }
  complete(std::move(reply));
}

bool Call::complete(Reply reply) {
  std::lock_guard lock(sink_mutex_);
  if (finished_.exchange(true)) return false;
  stop_.request_stop();
  if (on_complete_) on_complete_(std::move(reply));
  return true;
}

bool Call::cancel(std::string reason) {
  stop_.request_stop();
  return complete(Reply::failure(StatusCode::cancelled, std::move(reason)));
}

bool Call::expire_if_due(TimePoint now) {
  if (now < deadline_ || finished_.load()) return false;
  return complete(Reply::failure(StatusCode::deadline_exceeded, "call passed its deadline"));
}

void Call::progress(Payload payload) {
  std::lock_guard lock(sink_mutex_);
  if (finished_.load() || !on_progress_) return;
  on_progress_(std::move(payload));
}

}  // namespace acheron::hub
