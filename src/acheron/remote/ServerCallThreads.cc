// RemoteServer: the reactor thread's ROUTER handler and the call threads.
#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote::detail {

namespace {
// Requests read per turn of the reactor: replies posted by the call threads
// and the other sockets wait for at most this many.
constexpr int kRequestBatch = 64;
}  // namespace

void ServerImpl::read_requests(zmq::socket_t& socket) {
  std::vector<Buffer> frames;
  for (int i = 0; i < kRequestBatch && !stopping; ++i) {
    if (!net::recv_frames(socket, frames, zmq::recv_flags::dontwait)) return;
    std::optional<Job> job;
    try {
      job = handle_request(frames);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) throw;
      log::error("remote server: request not handled: {}", e.what());
    } catch (const std::exception& e) {
      log::error("remote server: request not handled: {}", e.what());
    }
    if (job) dispatch(std::move(*job));
  }
}

void ServerImpl::dispatch(Job job) {
  std::vector<Buffer> evicted_route = std::move(job.evicted_route);
  std::vector<Buffer> evicted_reply = std::move(job.evicted_reply);
  {
    std::lock_guard lk(backlog_mutex);
    std::string client = job.client;  // before the job is moved
    backlog.push(client, std::move(job));
  }
  backlog_cv.notify_one();
  // The call whose place this one took is refused once this one is queued.
  if (!evicted_reply.empty()) send_reply(evicted_route, std::move(evicted_reply));
}

void ServerImpl::call_thread() {
  std::unique_lock lk(backlog_mutex);
  for (;;) {
    backlog_cv.wait(lk, [&] { return stopping.load() || !backlog.empty(); });
    if (stopping) return;  // running calls finish; waiting ones are dropped
    Job job = backlog.pop();
    lk.unlock();
    run_job(job);
    lk.lock();
  }
}

}  // namespace acheron::remote::detail
