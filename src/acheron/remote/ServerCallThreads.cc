// RemoteServer: the call threads (leader/followers over the ROUTER, hand-over of the lead).
#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote::detail {

void ServerImpl::lead() {
  const int fd = static_cast<int>(router.get(zmq::sockopt::fd));
  std::vector<Buffer> frames;
  while (!stopping) {
    bool got = false;
    {
      // A non-blocking receive processes the socket's pending commands
      // first, so after EAGAIN the ZMQ_FD is safe to wait on.
      std::lock_guard lock(socket_mutex);
      got = net::recv_frames(router, frames, zmq::recv_flags::dontwait);
    }
    if (!got) {
      // ZMQ_FD only signals a change: the socket is read again before each wait.
      pollfd fds[2] = {{fd, POLLIN, 0}, {rpc_waker.fd(), POLLIN, 0}};
      if (::poll(fds, 2, 1000) > 0 && (fds[1].revents & POLLIN)) rpc_waker.drain();
      continue;
    }
    std::optional<Job> job;
    try {
      job = handle_request(frames);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      log::error("remote server: request not handled: {}", e.what());
    } catch (const std::exception& e) {
      log::error("remote server: request not handled: {}", e.what());
    }
    if (!job) continue;
    std::vector<Buffer> evicted_route = std::move(job->evicted_route);
    std::vector<Buffer> evicted_reply = std::move(job->evicted_reply);
    auto refuse_evicted = [&] {
      if (!evicted_reply.empty()) send_reply(evicted_route, std::move(evicted_reply), true);
    };
    std::unique_lock lk(lf_mutex);
    if (idle == 0) {
      // Every call thread is busy: a free one runs it in its client's turn.
      std::string client = job->client;  // before the job is moved
      backlog.push(client, std::move(*job));
      lk.unlock();
      refuse_evicted();
      continue;
    }
    lk.unlock();
    refuse_evicted();
    lk.lock();
    if (handoff_timer < 0) {  // hand over at once
      has_leader = false;
      lk.unlock();
      lf_cv.notify_one();
      run_job(*job);
      return;
    }
    // The hand-over clock covers the call only, not the reply: a thread
    // preempted while sending (its caller woke up) has nothing to hand
    // over. The timer is armed by the first of a run of calls and never
    // cancelled: back-to-back quick calls make no timer system calls, and
    // the hand-over thread re-arms it while calls keep coming.
    leader_running_call = true;
    leader_call_since = Clock::now();
    const std::uint64_t term = lead_term;
    const bool arm = !handoff_armed;
    handoff_armed = true;
    lk.unlock();
    if (arm) arm_handoff(options.handoff_after);
    auto frames = run_call(*job->call, job->request, job->framing, *job->context);
    lk.lock();
    // After a hand-over, leader_running_call belongs to the new leader.
    const bool still_leading = lead_term == term;
    if (still_leading) leader_running_call = false;
    lk.unlock();
    finish_job(*job, std::move(frames), still_leading);
    if (!still_leading) return;  // the lead went to another thread meanwhile
  }
  std::lock_guard lk(lf_mutex);
  has_leader = false;
}

void ServerImpl::arm_handoff(std::chrono::microseconds after) {
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(after.count() / 1'000'000);
  spec.it_value.tv_nsec = static_cast<long>(after.count() % 1'000'000) * 1000;
  ::timerfd_settime(handoff_timer, 0, &spec, nullptr);
}

void ServerImpl::watch_handoffs() {
  pollfd fds[2] = {{handoff_timer, POLLIN, 0}, {handoff_waker.fd(), POLLIN, 0}};
  while (!stopping) {
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents & POLLIN) handoff_waker.drain();
    if (!(fds[0].revents & POLLIN)) continue;
    std::uint64_t expirations = 0;
    (void)!::read(handoff_timer, &expirations, sizeof expirations);  // EAGAIN if re-armed
    std::lock_guard lk(lf_mutex);
    if (!leader_running_call) {  // no call runs: the timer stops until the next one
      handoff_armed = false;
      continue;
    }
    const auto ran =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - leader_call_since);
    if (ran < options.handoff_after) {  // a younger call than the one the timer was for
      arm_handoff(std::max(options.handoff_after - ran, std::chrono::microseconds(1)));
      continue;
    }
    handoff_armed = false;
    leader_running_call = false;
    ++lead_term;
    has_leader = false;
    lf_cv.notify_one();
  }
}

void ServerImpl::call_thread() {
  std::unique_lock lk(lf_mutex);
  while (!stopping) {
    if (!backlog.empty()) {
      Job job = backlog.pop();
      lk.unlock();
      run_job(job);
      lk.lock();
      continue;
    }
    if (!has_leader) {
      has_leader = true;
      lk.unlock();
      lead();
      lk.lock();
      continue;
    }
    ++idle;
    lf_cv.wait(lk, [&] { return stopping.load() || !has_leader || !backlog.empty(); });
    --idle;
  }
}

}  // namespace acheron::remote::detail
