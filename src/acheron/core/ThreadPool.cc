#include "acheron/core/ThreadPool.hh"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>

namespace acheron {

void set_thread_name(const char* name) noexcept {
  char shortened[16];
  std::strncpy(shortened, name, sizeof shortened - 1);
  shortened[sizeof shortened - 1] = '\0';
  ::pthread_setname_np(::pthread_self(), shortened);
}

ThreadPool::ThreadPool(std::size_t num_threads) {
  if (num_threads == 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(num_threads);
  for (std::size_t i = 0; i < num_threads; ++i)
    workers_.emplace_back([this] {
      set_thread_name("acheron-pool");
      run();
    });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

void ThreadPool::parallel_for(std::size_t n, std::size_t grain,
                              const std::function<void(std::size_t, std::size_t)>& body) {
  if (n == 0) return;
  grain = std::max<std::size_t>(grain, 1);
  const std::size_t chunks = (n + grain - 1) / grain;

  struct State {
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex mutex;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();

  // Claims chunks until none are left; returns when this caller ran out.
  auto work = [state, n, grain, chunks, &body] {
    for (;;) {
      std::size_t c = state->next.fetch_add(1);
      if (c >= chunks) return;
      if (!state->failed.load(std::memory_order_relaxed)) {
        try {
          body(c * grain, std::min(n, (c + 1) * grain));
        } catch (...) {
          std::lock_guard lock(state->mutex);
          if (!state->error) state->error = std::current_exception();
          state->failed = true;
        }
      }
      if (state->done.fetch_add(1) + 1 == chunks) {
        std::lock_guard lock(state->mutex);
        state->cv.notify_all();
      }
    }
  };

  // The caller works too, so size() - 1 helpers make size() threads in all:
  // a pool of 1 runs the loop in the calling thread alone. Helpers only
  // touch `body` while holding an unfinished chunk, and the caller waits for
  // every chunk, so the reference stays valid.
  const std::size_t helpers = std::min(chunks - 1, workers_.size() - 1);
  for (std::size_t i = 0; i < helpers; ++i) post(work);
  work();
  {
    std::unique_lock lock(state->mutex);
    state->cv.wait(lock, [&] { return state->done.load() == chunks; });
  }
  if (state->error) std::rethrow_exception(state->error);
}

}  // namespace acheron
