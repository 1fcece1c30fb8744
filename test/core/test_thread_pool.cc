#include "acheron/core/ThreadPool.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace acheron {
namespace {

using namespace std::chrono_literals;

TEST(ThreadPool, size_defaults_to_hardware_concurrency) {
  ThreadPool pool;
  EXPECT_GE(pool.size(), 1u);
  ThreadPool three(3);
  EXPECT_EQ(three.size(), 3u);
}

TEST(ThreadPool, submit_returns_values) {
  ThreadPool pool(2);
  auto a = pool.submit([] { return 6 * 7; });
  auto b = pool.submit([] { return std::string("hello"); });
  auto c = pool.submit([] {});
  EXPECT_EQ(a.get(), 42);
  EXPECT_EQ(b.get(), "hello");
  c.get();
}

TEST(ThreadPool, submit_runs_on_a_pool_thread) {
  ThreadPool pool(1);
  auto id = pool.submit([] { return std::this_thread::get_id(); }).get();
  EXPECT_NE(id, std::this_thread::get_id());
}

TEST(ThreadPool, submit_propagates_exceptions) {
  ThreadPool pool(2);
  auto f = pool.submit([]() -> int { throw std::runtime_error("boom"); });
  try {
    f.get();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  // The pool keeps working after a task threw.
  EXPECT_EQ(pool.submit([] { return 1; }).get(), 1);
}

TEST(ThreadPool, submit_move_only_callable_and_result) {
  ThreadPool pool(2);
  auto p = std::make_unique<int>(5);
  auto f = pool.submit([p = std::move(p)]() { return std::make_unique<int>(*p + 1); });
  EXPECT_EQ(*f.get(), 6);
}

TEST(ThreadPool, many_tasks_all_run) {
  ThreadPool pool(3);
  std::atomic<int> count{0};
  std::vector<std::future<void>> futures;
  for (int i = 0; i < 1000; ++i) futures.push_back(pool.submit([&count] { ++count; }));
  for (auto& f : futures) f.get();
  EXPECT_EQ(count.load(), 1000);
}

TEST(ThreadPool, destructor_drains_queued_tasks) {
  std::atomic<int> count{0};
  {
    ThreadPool pool(1);
    for (int i = 0; i < 100; ++i) (void)pool.submit([&count] { ++count; });
  }
  EXPECT_EQ(count.load(), 100);
}

// Checks that parallel_for covers [0, n) exactly once in chunks of <= grain.
void check_coverage(ThreadPool& pool, std::size_t n, std::size_t grain) {
  SCOPED_TRACE("n=" + std::to_string(n) + " grain=" + std::to_string(grain));
  std::vector<std::atomic<int>> hits(n);
  std::atomic<std::size_t> calls{0};
  std::atomic<bool> bad_chunk{false};
  const std::size_t g = grain == 0 ? 1 : grain;
  pool.parallel_for(n, grain, [&](std::size_t begin, std::size_t end) {
    ++calls;
    if (begin >= end || end > n || end - begin > g || begin % g != 0) bad_chunk = true;
    for (std::size_t i = begin; i < end && i < n; ++i) hits[i].fetch_add(1);
  });
  EXPECT_FALSE(bad_chunk.load());
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(hits[i].load(), 1) << "index " << i;
  }
  EXPECT_EQ(calls.load(), n == 0 ? 0 : (n + g - 1) / g);
}

TEST(ThreadPool, parallel_for_covers_every_index_exactly_once) {
  ThreadPool pool(3);
  for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 64u, 100u, 1000u, 4097u}) {
    for (std::size_t grain : {0u, 1u, 2u, 3u, 10u, 64u, 999u, 5000u}) {
      check_coverage(pool, n, grain);
    }
  }
}

TEST(ThreadPool, parallel_for_n_zero_never_calls_body) {
  ThreadPool pool(2);
  bool called = false;
  pool.parallel_for(0, 4, [&](std::size_t, std::size_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ThreadPool, parallel_for_grain_larger_than_n_is_one_chunk_on_the_caller) {
  ThreadPool pool(2);
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
  std::thread::id ran_on;
  pool.parallel_for(5, 100, [&](std::size_t b, std::size_t e) {
    chunks.emplace_back(b, e);
    ran_on = std::this_thread::get_id();
  });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], (std::pair<std::size_t, std::size_t>{0, 5}));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(ThreadPool, parallel_for_with_a_one_thread_pool) {
  ThreadPool pool(1);
  check_coverage(pool, 1000, 7);
  check_coverage(pool, 1, 1);
  check_coverage(pool, 10, 1);
}

TEST(ThreadPool, parallel_for_uses_pool_threads) {
  ThreadPool pool(2);
  std::mutex mutex;
  std::set<std::thread::id> threads;
  // Each chunk waits briefly so the helpers get a chance to claim some.
  pool.parallel_for(100, 1, [&](std::size_t, std::size_t) {
    {
      std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    std::this_thread::sleep_for(1ms);
  });
  EXPECT_GE(threads.size(), 2u) << "parallel_for ran everything on one thread";
}

TEST(ThreadPool, parallel_for_rethrows_the_first_exception) {
  // A one-thread pool runs the chunks in order on the caller, so "first" is
  // well defined: chunk 3 throws first; chunk 7 would throw another exception
  // but is skipped, and so is every chunk after 3.
  ThreadPool pool(1);
  std::vector<std::size_t> ran;
  try {
    pool.parallel_for(100, 1, [&](std::size_t b, std::size_t) {
      ran.push_back(b);
      if (b == 3) throw std::runtime_error("chunk 3 failed");
      if (b == 7) throw std::logic_error("chunk 7 failed");
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "chunk 3 failed");
  }
  EXPECT_EQ(ran, (std::vector<std::size_t>{0, 1, 2, 3}));
  check_coverage(pool, 50, 3);  // the pool is still usable afterwards
}

TEST(ThreadPool, parallel_for_rethrows_a_chunk_exception_from_helper_threads) {
  // Several threads: the one failing chunk's exception reaches the caller
  // whichever thread ran it, no chunk runs twice, and the pool still works.
  ThreadPool pool(3);
  std::vector<std::atomic<int>> runs(100);
  try {
    pool.parallel_for(100, 1, [&](std::size_t b, std::size_t) {
      ++runs[b];
      if (b == 0) throw std::runtime_error("chunk 0 failed");
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "chunk 0 failed");
  }
  EXPECT_EQ(runs[0].load(), 1);
  for (std::size_t b = 0; b < runs.size(); ++b) EXPECT_LE(runs[b].load(), 1) << "chunk " << b;
  check_coverage(pool, 50, 3);
}

TEST(ThreadPool, parallel_for_with_every_chunk_throwing_rethrows_one) {
  ThreadPool pool(3);
  std::atomic<int> thrown{0};
  EXPECT_THROW(pool.parallel_for(200, 1,
                                 [&](std::size_t b, std::size_t) {
                                   ++thrown;
                                   throw std::out_of_range("chunk " + std::to_string(b));
                                 }),
               std::out_of_range);
  EXPECT_GE(thrown.load(), 1);
  EXPECT_LT(thrown.load(), 200) << "chunks after a failure should be skipped";
}

TEST(ThreadPool, parallel_for_skips_remaining_chunks_after_a_failure) {
  // A one-thread pool has no helpers: the caller runs the chunks in order, so
  // after the first chunk throws, none of the other 999 may run.
  ThreadPool pool(1);
  std::atomic<int> ran{0};
  EXPECT_THROW(pool.parallel_for(1000, 1,
                                 [&](std::size_t, std::size_t) {
                                   ++ran;
                                   throw std::logic_error("stop");
                                 }),
               std::logic_error);
  EXPECT_EQ(ran.load(), 1) << "chunks after a failure should be skipped";
}

TEST(ThreadPool, nested_parallel_for_inside_pool_tasks_does_not_deadlock) {
  ThreadPool pool(2);
  constexpr int kTasks = 8;
  std::vector<std::future<std::size_t>> futures;
  for (int t = 0; t < kTasks; ++t) {
    futures.push_back(pool.submit([&pool] {
      std::atomic<std::size_t> sum{0};
      pool.parallel_for(1000, 10, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) sum += i;
      });
      return sum.load();
    }));
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(30s), std::future_status::ready) << "deadlock";
    EXPECT_EQ(f.get(), 999u * 1000u / 2u);
  }
}

TEST(ThreadPool, nested_parallel_for_in_a_one_thread_pool) {
  ThreadPool pool(1);
  auto f = pool.submit([&pool] {
    std::atomic<int> count{0};
    pool.parallel_for(100, 1, [&](std::size_t, std::size_t) { ++count; });
    return count.load();
  });
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready) << "deadlock";
  EXPECT_EQ(f.get(), 100);
}

TEST(ThreadPool, parallel_for_nested_in_parallel_for) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(20 * 30);
  pool.parallel_for(20, 1, [&](std::size_t ob, std::size_t oe) {
    for (std::size_t o = ob; o < oe; ++o) {
      pool.parallel_for(30, 4, [&](std::size_t ib, std::size_t ie) {
        for (std::size_t i = ib; i < ie; ++i) hits[o * 30 + i].fetch_add(1);
      });
    }
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(ThreadPool, concurrent_parallel_for_from_outside_threads) {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&pool, &failures] {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::atomic<int>> hits(257);
        pool.parallel_for(hits.size(), 5, [&](std::size_t b, std::size_t e) {
          for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (auto& h : hits) {
          if (h.load() != 1) ++failures;
        }
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace acheron
