// net::Reactor: one I/O thread that owns ZeroMQ sockets (docs/net.md).
//
// Sockets added to a reactor are polled and used on its one thread only:
// their handlers, the tasks other threads post, and timers all run there, so
// no ZeroMQ socket is ever touched by two threads. Another thread that has
// something to send (a reply computed on a call thread) posts a task through
// the bounded inbox (core/BoundedQueue.hh) and the reactor thread sends it.
// A full inbox pushes back on the posting threads (post() waits), never on
// the reactor thread.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "acheron/core/BoundedQueue.hh"
#include "acheron/core/Clock.hh"
#include "acheron/net/Zmq.hh"

namespace acheron::net {

struct ReactorOptions {
  std::string name = "reactor";  // the I/O thread's name (top -H, gdb)
  // Tasks other threads may have posted and the reactor not yet run; a
  // poster waits while it is full.
  std::size_t inbox_capacity = 4096;
  // Set on every owned socket when the reactor closes it: a stop never waits
  // for unsent messages to reach slow or vanished peers.
  std::chrono::milliseconds linger{0};
};

class Reactor final {
 public:
  using Task = std::function<void()>;
  // Called on the reactor thread while the socket has a message to read. It
  // should read a bounded batch (say 64 messages) and return, so posted
  // tasks, timers and other sockets get their turn; it is called again while
  // messages remain.
  using SocketHandler = std::function<void(zmq::socket_t&)>;
  using TimerId = std::uint64_t;

  explicit Reactor(ReactorOptions options = {});
  ~Reactor();  // stop()
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Takes ownership of a socket (bound or connected by the caller) and polls
  // it for reading. Before start() or on the reactor thread. The reference
  // stays valid until the reactor closes the socket (stop() or remove());
  // use it on the reactor thread only once the reactor runs.
  zmq::socket_t& add(zmq::socket_t socket, SocketHandler on_readable);
  // Closes an owned socket (reactor thread, or before start()).
  void remove(zmq::socket_t& socket);

  // Starts the I/O thread. Once.
  void start();

  // Runs task on the reactor thread, after the tasks this thread posted
  // before it. Waits while the inbox is full; false (task dropped) once the
  // reactor stops. From the reactor thread itself it never waits (the task
  // runs at the next turn).
  bool post(Task task);
  // Like post() but never waits: false if the inbox is full or the reactor
  // stopped (task left untouched).
  bool try_post(Task& task);

  // Runs task on the reactor thread at or after `when`; timers due at the
  // same time run in the order they were added. Reactor thread only (or
  // before start()); other threads post a task that adds the timer.
  TimerId add_timer(TimePoint when, Task task);
  // False if the timer already ran or was cancelled.
  bool cancel_timer(TimerId id);

  bool in_reactor_thread() const noexcept;
  // Started and not yet stopped (any thread).
  bool running() const noexcept { return started_.load() && !stopped_.load(); }

  // Runs the tasks posted before it (a task posted meanwhile either runs or
  // its post() returns false), closes the sockets with the linger of the
  // options, and joins the thread. Pending timers do not run. Idempotent;
  // not from the reactor thread.
  void stop();

 private:
  struct Entry {
    zmq::socket_t socket;
    SocketHandler handler;
    bool removed = false;
  };

  void run();
  void run_task(Task& task) noexcept;
  // Runs posted tasks, at most `limit`; returns how many ran.
  std::size_t run_posted(std::size_t limit);
  void run_due_timers();
  void close_sockets();

  ReactorOptions options_;
  BoundedQueue<Task> inbox_;
  std::deque<Task> own_;  // posted by the reactor thread itself
  Waker waker_;
  std::vector<std::unique_ptr<Entry>> sockets_;
  std::map<std::pair<TimePoint, TimerId>, Task> timers_;
  std::unordered_map<TimerId, TimePoint> timer_times_;
  TimerId next_timer_ = 1;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace acheron::net
