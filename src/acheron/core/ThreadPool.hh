// A fixed-size thread pool with task submission and a blocking parallel-for.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace acheron {

// Names the calling thread as tools show it (top -H, perf, gdb); Linux keeps
// the first 15 characters. Threads otherwise inherit their creator's name.
void set_thread_name(const char* name) noexcept;

class ThreadPool final {
 public:
  // num_threads == 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(std::size_t num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  std::size_t size() const noexcept { return workers_.size(); }

  // Runs f on a pool thread; the future carries its result or exception.
  template <class F>
  auto submit(F&& f) -> std::future<std::invoke_result_t<F>>;

  // Calls body(begin, end) over [0, n) in chunks of at most `grain` indices,
  // on at most size() threads (the calling thread and size() - 1 pool
  // threads), and returns when all chunks are done. The first exception thrown by a chunk is
  // rethrown here (the remaining chunks are skipped). Safe to call from inside a pool task.
  void parallel_for(std::size_t n, std::size_t grain,
                    const std::function<void(std::size_t, std::size_t)>& body);

 private:
  void post(std::function<void()> task);
  void run();

  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> tasks_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

template <class F>
auto ThreadPool::submit(F&& f) -> std::future<std::invoke_result_t<F>> {
  using R = std::invoke_result_t<F>;
  auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
  auto fut = task->get_future();
  post([task] { (*task)(); });
  return fut;
}

}  // namespace acheron
