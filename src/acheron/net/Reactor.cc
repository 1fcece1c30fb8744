#include "acheron/net/Reactor.hh"

#include <algorithm>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"

namespace acheron::net {

Reactor::Reactor(ReactorOptions options)
    : options_(std::move(options)), inbox_(std::max<std::size_t>(1, options_.inbox_capacity)) {}

Reactor::~Reactor() {
  stop();
  close_sockets();  // never started: the sockets are closed here
}

zmq::socket_t& Reactor::add(zmq::socket_t socket, SocketHandler on_readable) {
  ACHERON_EXPECT(!thread_.joinable() || in_reactor_thread(),
                 "Reactor::add: sockets are added before start() or on the reactor thread");
  ACHERON_EXPECT(on_readable, "Reactor::add needs a handler");
  auto entry = std::make_unique<Entry>();
  entry->socket = std::move(socket);
  entry->handler = std::move(on_readable);
  zmq::socket_t& ref = entry->socket;
  sockets_.push_back(std::move(entry));
  return ref;
}

void Reactor::remove(zmq::socket_t& socket) {
  ACHERON_EXPECT(!thread_.joinable() || in_reactor_thread(),
                 "Reactor::remove: sockets are removed before start() or on the reactor thread");
  for (auto& e : sockets_) {
    if (&e->socket == &socket && !e->removed) {
      // Erased between turns: the poll loop may be walking the list now.
      e->removed = true;
      set_linger(e->socket, options_.linger);
      e->socket.close();
    }
  }
}

void Reactor::start() {
  ACHERON_EXPECT(!thread_.joinable() && !stopped_, "Reactor::start: the reactor runs only once");
  started_ = true;
  thread_ = std::thread([this] {
    set_thread_name(options_.name.c_str());
    thread_id_ = std::this_thread::get_id();
    run();
  });
}

bool Reactor::post(Task task) {
  if (in_reactor_thread()) {
    if (stopped_) return false;
    own_.push_back(std::move(task));
    return true;
  }
  if (!inbox_.push(std::move(task))) return false;
  waker_.wake();
  return true;
}

bool Reactor::try_post(Task& task) {
  if (in_reactor_thread()) {
    if (stopped_) return false;
    own_.push_back(std::move(task));
    return true;
  }
  if (!inbox_.try_push(task)) return false;
  waker_.wake();
  return true;
}

Reactor::TimerId Reactor::add_timer(TimePoint when, Task task) {
  ACHERON_EXPECT(!thread_.joinable() || in_reactor_thread(),
                 "Reactor::add_timer: timers are added on the reactor thread (post a task that "
                 "adds it)");
  const TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(task));
  timer_times_.emplace(id, when);
  return id;
}

bool Reactor::cancel_timer(TimerId id) {
  auto it = timer_times_.find(id);
  if (it == timer_times_.end()) return false;
  timers_.erase({it->second, id});
  timer_times_.erase(it);
  return true;
}

bool Reactor::in_reactor_thread() const noexcept {
  return thread_id_.load() == std::this_thread::get_id();
}

void Reactor::stop() {
  if (!thread_.joinable()) {  // never started, or stopped already
    stopped_ = true;
    inbox_.close();
    close_sockets();
    return;
  }
  ACHERON_EXPECT(!in_reactor_thread(), "Reactor::stop: not from the reactor thread");
  stop_requested_ = true;
  waker_.wake();
  thread_.join();
  thread_ = std::thread();
}

void Reactor::run_task(Task& task) noexcept {
  try {
    task();
  } catch (const std::exception& e) {
    log::error("{}: a posted task failed: {}", options_.name, e.what());
  } catch (...) {
    log::error("{}: a posted task failed", options_.name);
  }
}

std::size_t Reactor::run_posted(std::size_t limit) {
  std::size_t ran = 0;
  // The reactor's own tasks first: they were posted by what already ran.
  while (ran < limit && !own_.empty()) {
    Task t = std::move(own_.front());
    own_.pop_front();
    run_task(t);
    ++ran;
  }
  while (ran < limit) {
    auto t = inbox_.try_pop();
    if (!t) break;
    run_task(*t);
    ++ran;
  }
  return ran;
}

void Reactor::run_due_timers() {
  const TimePoint now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_times_.erase(node.key().second);
    run_task(node.mapped());
  }
}

void Reactor::close_sockets() {
  for (auto& e : sockets_) {
    if (e->removed) continue;
    set_linger(e->socket, options_.linger);
    e->socket.close();
  }
  sockets_.clear();
}

void Reactor::run() {
  std::vector<zmq::pollitem_t> items;
  std::vector<Entry*> polled;
  // Per turn, at most one inbox's worth of tasks: sockets are read between
  // batches even while posters keep the inbox full.
  const std::size_t batch = inbox_.capacity();
  while (!stop_requested_) {
    std::erase_if(sockets_, [](const auto& e) { return e->removed; });
    const bool more_posted = run_posted(batch) == batch || !own_.empty();
    run_due_timers();
    items.clear();
    polled.clear();
    for (auto& e : sockets_) {
      if (e->removed) continue;
      items.push_back({e->socket.handle(), 0, ZMQ_POLLIN, 0});
      polled.push_back(e.get());
    }
    items.push_back({nullptr, waker_.fd(), ZMQ_POLLIN, 0});
    long timeout_ms = -1;
    if (more_posted) {
      timeout_ms = 0;
    } else if (!timers_.empty()) {
      const auto wait = timers_.begin()->first.first - Clock::now();
      // Rounded up: a timer never fires early.
      timeout_ms = std::max<long>(
          0, static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) break;
      log::error("{}: poll failed: {}", options_.name, e.what());
      break;
    }
    if (items.back().revents & ZMQ_POLLIN) waker_.drain();
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN) || polled[i]->removed) continue;
      try {
        polled[i]->handler(polled[i]->socket);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) {
          stop_requested_ = true;
          break;
        }
        log::error("{}: socket handler failed: {}", options_.name, e.what());
      } catch (const std::exception& e) {
        log::error("{}: socket handler failed: {}", options_.name, e.what());
      }
    }
  }
  // Stop: no new posts; what was posted before runs (it may still send).
  inbox_.close();
  while (run_posted(inbox_.capacity() + own_.size()) > 0) {
  }
  stopped_ = true;
  timers_.clear();
  timer_times_.clear();
  close_sockets();
}

}  // namespace acheron::net
