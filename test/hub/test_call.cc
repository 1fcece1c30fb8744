#include "acheron/hub/Call.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace acheron::hub {
namespace {

using namespace std::chrono_literals;

Payload with_meta(const std::string& key, int value) {
  Payload p;
  p.meta[key] = value;
  return p;
}

// Records everything a Call hands to its sinks.
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> events;  // "progress:N" and "complete:<status>"
  std::vector<Reply> replies;
  int progress_count = 0;

  Call::ProgressSink progress_sink() {
    return [this](Payload p) {
      std::lock_guard lock(mutex);
      events.push_back("progress:" + std::to_string(p.meta.value("n", -1)));
      ++progress_count;
    };
  }
  Call::CompletionSink completion_sink() {
    return [this](Reply r) {
      std::lock_guard lock(mutex);
      events.push_back("complete:" + std::string(to_string(r.status)));
      replies.push_back(std::move(r));
    };
  }
  std::shared_ptr<Call> make_call(TimePoint deadline = TimePoint::max()) {
    return std::make_shared<Call>(deadline, progress_sink(), completion_sink());
  }
  std::size_t completions() {
    std::lock_guard lock(mutex);
    return replies.size();
  }
  Reply only_reply() {
    std::lock_guard lock(mutex);
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? Reply{} : replies.front();
  }
};

TEST(Reply, failure_sets_every_field) {
  Reply r = Reply::failure(StatusCode::unavailable, "down", "IOError");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status, StatusCode::unavailable);
  EXPECT_EQ(r.message, "down");
  EXPECT_EQ(r.error_type, "IOError");
  EXPECT_TRUE(Reply{}.ok());
}

TEST(Call, run_delivers_the_reply_payload) {
  Recorder rec;
  auto call = rec.make_call();
  Payload request = with_meta("x", 20);
  call->run(
      [](const Payload& req, CallContext& ctx) {
        EXPECT_FALSE(ctx.stop_requested());
        EXPECT_EQ(ctx.deadline(), TimePoint::max());
        Payload out;
        out.meta["y"] = req.meta["x"].get<int>() + 1;
        out.arrays.push_back(Array::from_vector(std::vector<float>{1, 2, 3}, {}, "v"));
        return out;
      },
      request);
  EXPECT_TRUE(call->finished());
  Reply r = rec.only_reply();
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.payload.meta["y"], 21);
  EXPECT_EQ(r.payload.at("v").to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE(r.error_type.empty());
}

TEST(Call, progress_arrives_before_the_reply_and_never_after) {
  Recorder rec;
  auto call = rec.make_call();
  call->run(
      [](const Payload&, CallContext& ctx) {
        for (int i = 0; i < 3; ++i) ctx.progress(with_meta("n", i));
        return with_meta("n", 99);
      },
      {});
  // After completion, progress is ignored whoever sends it.
  call->progress(with_meta("n", 100));
  CallContext late(*call);
  late.progress(with_meta("n", 101));
  EXPECT_EQ(rec.events,
            (std::vector<std::string>{"progress:0", "progress:1", "progress:2", "complete:ok"}));
}

TEST(Call, progress_without_a_sink_is_ignored) {
  Reply got;
  auto call = std::make_shared<Call>(TimePoint::max(), nullptr, [&](Reply r) { got = r; });
  call->run(
      [](const Payload&, CallContext& ctx) {
        ctx.progress(with_meta("n", 1));
        return with_meta("done", 1);
      },
      {});
  EXPECT_TRUE(got.ok());
  EXPECT_EQ(got.payload.meta["done"], 1);
}

TEST(Call, completion_without_a_sink_is_still_one_completion) {
  Call call(TimePoint::max(), nullptr, nullptr);
  EXPECT_TRUE(call.complete(Reply{}));
  EXPECT_FALSE(call.complete(Reply{}));
  EXPECT_TRUE(call.finished());
}

TEST(Call, handler_failure_keeps_its_code) {
  for (StatusCode code :
       {StatusCode::not_found, StatusCode::permission_denied, StatusCode::resource_exhausted,
        StatusCode::unavailable, StatusCode::aborted}) {
    Recorder rec;
    auto call = rec.make_call();
    call->run([code](const Payload&, CallContext&) -> Payload { throw Failure(code, "nope"); }, {});
    Reply r = rec.only_reply();
    EXPECT_EQ(r.status, code);
    EXPECT_EQ(r.message, "nope");
    EXPECT_FALSE(r.error_type.empty());
  }
}

TEST(Call, std_exception_becomes_internal) {
  Recorder rec;
  auto call = rec.make_call();
  call->run([](const Payload&, CallContext&) -> Payload { throw std::runtime_error("kaput"); }, {});
  Reply r = rec.only_reply();
  EXPECT_EQ(r.status, StatusCode::internal);
  EXPECT_EQ(r.message, "kaput");
}

TEST(Call, other_std_exceptions_become_internal) {
  Recorder rec;
  auto call = rec.make_call();
  call->run([](const Payload&, CallContext&) -> Payload { throw std::logic_error("bug"); }, {});
  EXPECT_EQ(rec.only_reply().status, StatusCode::internal);
}

TEST(Call, non_std_exception_becomes_internal) {
  Recorder rec;
  auto call = rec.make_call();
  call->run([](const Payload&, CallContext&) -> Payload { throw 42; }, {});
  Reply r = rec.only_reply();
  EXPECT_EQ(r.status, StatusCode::internal);
  EXPECT_FALSE(r.message.empty());
}

TEST(Call, cancel_gives_cancelled_once) {
  Recorder rec;
  auto call = rec.make_call();
  EXPECT_FALSE(call->stop_requested());
  EXPECT_TRUE(call->cancel("operator pressed abort"));
  EXPECT_FALSE(call->cancel());
  EXPECT_FALSE(call->complete(Reply{}));
  EXPECT_FALSE(call->expire_if_due(TimePoint::max()));
  EXPECT_TRUE(call->finished());
  EXPECT_TRUE(call->stop_requested());
  EXPECT_TRUE(call->stop_token().stop_requested());
  Reply r = rec.only_reply();
  EXPECT_EQ(r.status, StatusCode::cancelled);
  EXPECT_EQ(r.message, "operator pressed abort");
}

TEST(Call, cancel_before_run_skips_the_handler) {
  Recorder rec;
  auto call = rec.make_call();
  call->cancel();
  bool ran = false;
  call->run(
      [&](const Payload&, CallContext&) {
        ran = true;
        return Payload{};
      },
      {});
  EXPECT_FALSE(ran);
  EXPECT_EQ(rec.only_reply().status, StatusCode::cancelled);
}

TEST(Call, cancel_during_the_handler_stops_it_and_drops_its_result) {
  Recorder rec;
  auto call = rec.make_call();
  std::promise<void> started;
  bool saw_stop = false;
  bool saw_token = false;
  std::thread runner([&] {
    call->run(
        [&](const Payload&, CallContext& ctx) {
          std::stop_callback on_stop(ctx.stop_token(), [&] { saw_token = true; });
          started.set_value();
          const auto give_up = Clock::now() + 20s;
          while (!ctx.stop_requested() && Clock::now() < give_up) std::this_thread::yield();
          saw_stop = ctx.stop_requested();
          EXPECT_THROW(ctx.throw_if_stopped(), Failure);
          ctx.progress(with_meta("n", 1));  // dropped: the call already completed
          return with_meta("late", 1);
        },
        {});
  });
  started.get_future().wait();
  EXPECT_TRUE(call->cancel());
  runner.join();
  EXPECT_TRUE(saw_stop);
  EXPECT_TRUE(saw_token);
  EXPECT_EQ(rec.progress_count, 0);
  EXPECT_EQ(rec.only_reply().status, StatusCode::cancelled);
}

TEST(Call, throw_if_stopped_reports_cancellation) {
  Recorder rec;
  auto call = rec.make_call();
  call->run(
      [&](const Payload&, CallContext& ctx) {
        EXPECT_NO_THROW(ctx.throw_if_stopped());
        call->cancel();
        ctx.throw_if_stopped();
        ADD_FAILURE() << "throw_if_stopped did not throw";
        return Payload{};
      },
      {});
  EXPECT_EQ(rec.only_reply().status, StatusCode::cancelled);
}

TEST(Call, exactly_one_completion_when_cancel_races_the_handler) {
  constexpr int kIterations = 500;
  int cancel_won = 0, handler_won = 0;
  for (int i = 0; i < kIterations; ++i) {
    std::atomic<int> completions{0};
    std::atomic<int> status{-1};
    auto call = std::make_shared<Call>(TimePoint::max(), nullptr, [&](Reply r) {
      ++completions;
      status = static_cast<int>(r.status);
    });
    std::atomic<bool> go{false};
    std::atomic<bool> cancelled{false};
    std::thread canceller([&] {
      while (!go.load()) std::this_thread::yield();
      cancelled = call->cancel();
    });
    // Vary how long the handler runs so both sides win some of the time.
    const int spin = i % 7 * 50;
    call->run(
        [&](const Payload&, CallContext&) {
          go = true;
          std::atomic<int> sink{0};
          for (int k = 0; k < spin; ++k) sink.store(k, std::memory_order_relaxed);
          return with_meta("i", i);
        },
        {});
    canceller.join();
    ASSERT_EQ(completions.load(), 1) << "iteration " << i;
    if (cancelled.load()) {
      ++cancel_won;
      EXPECT_EQ(status.load(), static_cast<int>(StatusCode::cancelled));
    } else {
      ++handler_won;
      EXPECT_EQ(status.load(), static_cast<int>(StatusCode::ok));
    }
  }
  EXPECT_EQ(cancel_won + handler_won, kIterations);
}

TEST(Call, exactly_one_completion_when_many_threads_race) {
  constexpr int kIterations = 200;
  for (int i = 0; i < kIterations; ++i) {
    std::atomic<int> completions{0};
    auto call = std::make_shared<Call>(
        TimePoint::max(), [](Payload) {}, [&](Reply) { ++completions; });
    std::atomic<int> winners{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      if (call->cancel()) ++winners;
    });
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      if (call->expire_if_due(call->deadline())) ++winners;
    });
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      if (call->complete(Reply::failure(StatusCode::aborted, "x"))) ++winners;
    });
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      for (int k = 0; k < 10; ++k) call->progress(with_meta("n", k));
    });
    go = true;
    for (auto& t : threads) t.join();
    ASSERT_EQ(completions.load(), 1) << "iteration " << i;
    ASSERT_EQ(winners.load(), 1) << "iteration " << i;
  }
}

TEST(Call, progress_is_never_delivered_after_completion_under_races) {
  for (int i = 0; i < 100; ++i) {
    std::mutex mutex;
    bool completed = false;
    int progress_after = 0;
    auto call = std::make_shared<Call>(
        TimePoint::max(),
        [&](Payload) {
          std::lock_guard lock(mutex);
          if (completed) ++progress_after;
        },
        [&](Reply) {
          std::lock_guard lock(mutex);
          completed = true;
        });
    std::thread sender([&] {
      for (int k = 0; k < 200; ++k) call->progress(with_meta("n", k));
    });
    std::this_thread::yield();
    call->cancel();
    sender.join();
    EXPECT_EQ(progress_after, 0) << "iteration " << i;
  }
}

TEST(Call, handler_polling_stop_requested_sees_the_deadline) {
  Recorder rec;
  const TimePoint deadline = deadline_after(30ms);
  auto call = rec.make_call(deadline);
  TimePoint saw_stop_at{};
  bool saw_stop = false;
  call->run(
      [&](const Payload&, CallContext& ctx) {
        EXPECT_EQ(ctx.deadline(), deadline);
        const auto give_up = Clock::now() + 20s;
        while (!ctx.stop_requested() && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
        saw_stop = ctx.stop_requested();
        saw_stop_at = Clock::now();
        return with_meta("partial", 1);
      },
      {});
  EXPECT_TRUE(saw_stop) << "stop_requested never became true after the deadline";
  EXPECT_GE(saw_stop_at, deadline) << "stop_requested became true before the deadline";
  Reply r = rec.only_reply();
  EXPECT_EQ(r.status, StatusCode::deadline_exceeded);
  EXPECT_TRUE(r.payload.meta.empty()) << "a late result must not be delivered";
}

TEST(Call, throw_if_stopped_reports_the_deadline) {
  Recorder rec;
  auto call = rec.make_call(deadline_after(10ms));
  call->run(
      [&](const Payload&, CallContext& ctx) {
        const auto give_up = Clock::now() + 20s;
        while (Clock::now() < give_up) {
          ctx.throw_if_stopped();
          std::this_thread::sleep_for(1ms);
        }
        return Payload{};
      },
      {});
  EXPECT_EQ(rec.only_reply().status, StatusCode::deadline_exceeded);
}

TEST(Call, past_deadline_skips_the_handler) {
  Recorder rec;
  auto call = rec.make_call(Clock::now() - 1ms);
  EXPECT_TRUE(call->stop_requested());
  bool ran = false;
  call->run(
      [&](const Payload&, CallContext&) {
        ran = true;
        return Payload{};
      },
      {});
  EXPECT_FALSE(ran);
  EXPECT_EQ(rec.only_reply().status, StatusCode::deadline_exceeded);
}

TEST(Call, error_results_after_the_deadline_keep_their_code) {
  Recorder rec;
  auto call = rec.make_call(deadline_after(5ms));
  call->run(
      [](const Payload&, CallContext& ctx) -> Payload {
        while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
        throw Failure(StatusCode::aborted, "gave up");
      },
      {});
  EXPECT_EQ(rec.only_reply().status, StatusCode::aborted);
}

TEST(Call, expire_if_due_only_at_or_after_the_deadline) {
  Recorder rec;
  const TimePoint deadline = Clock::now() + 1h;
  auto call = rec.make_call(deadline);
  EXPECT_FALSE(call->expire_if_due());
  EXPECT_FALSE(call->expire_if_due(deadline - 1ns));
  EXPECT_FALSE(call->finished());
  EXPECT_EQ(rec.completions(), 0u);
  EXPECT_TRUE(call->expire_if_due(deadline));
  EXPECT_FALSE(call->expire_if_due(deadline + 1s));
  EXPECT_EQ(rec.only_reply().status, StatusCode::deadline_exceeded);
}

TEST(Call, expire_from_another_thread_completes_while_the_handler_runs) {
  Recorder rec;
  const TimePoint deadline = Clock::now() + 1h;
  auto call = rec.make_call(deadline);

  std::mutex mutex;
  std::condition_variable cv;
  bool handler_started = false;
  bool release_handler = false;
  bool handler_saw_stop = false;

  std::thread runner([&] {
    call->run(
        [&](const Payload&, CallContext& ctx) {
          std::unique_lock lock(mutex);
          handler_started = true;
          cv.notify_all();
          cv.wait(lock, [&] { return release_handler; });
          handler_saw_stop = ctx.stop_requested();
          ctx.progress(with_meta("n", 7));  // dropped: already completed
          return with_meta("result", 1);
        },
        {});
  });
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return handler_started; });
  }
  // A deadline timer fires (simulated by passing the deadline as "now").
  EXPECT_TRUE(call->expire_if_due(deadline));
  EXPECT_TRUE(call->finished());
  ASSERT_EQ(rec.completions(), 1u) << "the caller must hear of the expiry without waiting";
  EXPECT_EQ(rec.only_reply().status, StatusCode::deadline_exceeded);
  {
    std::lock_guard lock(mutex);
    release_handler = true;
  }
  cv.notify_all();
  runner.join();
  EXPECT_TRUE(handler_saw_stop);
  EXPECT_EQ(rec.completions(), 1u) << "the handler's late result must be dropped";
  EXPECT_EQ(rec.progress_count, 0);
  EXPECT_EQ(rec.only_reply().status, StatusCode::deadline_exceeded);
}

TEST(Call, expire_racing_a_finishing_handler_completes_once) {
  for (int i = 0; i < 300; ++i) {
    std::atomic<int> completions{0};
    const TimePoint deadline = Clock::now() + 1h;
    auto call = std::make_shared<Call>(deadline, nullptr, [&](Reply) { ++completions; });
    std::atomic<bool> go{false};
    std::thread timer([&] {
      while (!go) std::this_thread::yield();
      call->expire_if_due(deadline);
    });
    call->run(
        [&](const Payload&, CallContext&) {
          go = true;
          return Payload{};
        },
        {});
    timer.join();
    ASSERT_EQ(completions.load(), 1) << "iteration " << i;
  }
}

}  // namespace
}  // namespace acheron::hub
