#include "acheron/core/Clock.hh"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <thread>

namespace acheron {
namespace {

using namespace std::chrono_literals;

TEST(Clock, deadline_after_saturates_for_duration_max) {
  EXPECT_EQ(deadline_after(Duration::max()), TimePoint::max());
  EXPECT_EQ(deadline_after(Duration::max() - 1ns), TimePoint::max());
  // Just short of the limit also saturates rather than overflowing.
  const auto remaining = TimePoint::max() - Clock::now();
  EXPECT_EQ(deadline_after(remaining), TimePoint::max());
}

TEST(Clock, deadline_after_is_now_plus_duration) {
  const auto before = Clock::now();
  const auto d = deadline_after(10s);
  const auto after = Clock::now();
  EXPECT_GE(d, before + 10s);
  EXPECT_LE(d, after + 10s);

  const auto before0 = Clock::now();
  const auto d0 = deadline_after(Duration::zero());
  EXPECT_GE(d0, before0);
  EXPECT_LE(d0, Clock::now());
}

TEST(Clock, deadline_after_negative_is_in_the_past) {
  const auto d = deadline_after(-1s);
  EXPECT_LT(d, Clock::now());
}

// A client may send any 64-bit millisecond timeout; converting it to the
// clock's nanoseconds must saturate, not wrap to a time in the past.
TEST(Clock, deadline_after_saturates_for_huge_milliseconds) {
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(saturating_duration(std::chrono::milliseconds(huge)), Duration::max());
  EXPECT_EQ(deadline_after(std::chrono::milliseconds(huge)), TimePoint::max());
  EXPECT_EQ(deadline_after(std::chrono::milliseconds(huge / 1000)), TimePoint::max());
  EXPECT_EQ(deadline_after(std::chrono::hours(huge)), TimePoint::max());
  EXPECT_EQ(deadline_after(std::chrono::duration<double>(1e300)), TimePoint::max());
  EXPECT_EQ(saturating_duration(std::chrono::milliseconds(-huge)), Duration::min());
  EXPECT_LT(deadline_after(std::chrono::milliseconds(-huge)), Clock::now());
  // The boundary: the largest whole number of milliseconds below
  // Duration::max() converts exactly, one millisecond more saturates, and
  // likewise below zero (plain conversion would wrap both to the other sign).
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(Duration::max());
  EXPECT_EQ(saturating_duration(limit - 1ms), Duration(limit - 1ms));
  EXPECT_GT(saturating_duration(limit - 1ms), Duration::zero());
  EXPECT_EQ(saturating_duration(limit + 1ms), Duration::max());
  EXPECT_EQ(saturating_duration(-limit + 1ms), Duration(-limit + 1ms));
  EXPECT_EQ(saturating_duration(-limit - 1ms), Duration::min());
  // In range: exact.
  EXPECT_EQ(saturating_duration(std::chrono::milliseconds(1500)), 1500ms);
  const auto before = Clock::now();
  const auto d = deadline_after(std::chrono::milliseconds(2500));
  EXPECT_GE(d, before + 2500ms);
  EXPECT_LE(d, Clock::now() + 2500ms);
}

TEST(Clock, wall_time_is_after_2020_and_mono_time_is_monotonic) {
  constexpr std::int64_t k2020 = 1577836800LL * 1000000000LL;
  EXPECT_GT(wall_time_ns(), k2020);
  // wall_time_ns() reads the system clock, in nanoseconds since the epoch.
  const auto ns = [](auto t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  };
  const auto wall_before = ns(std::chrono::system_clock::now());
  const auto wall = wall_time_ns();
  const auto wall_after = ns(std::chrono::system_clock::now());
  EXPECT_GE(wall, wall_before);
  EXPECT_LE(wall, wall_after);

  // mono_time_ns() reads the steady clock: between two reads of Clock, never
  // decreasing over many reads, and it advances by at least the time slept
  // (sleep_for measures with the steady clock). Lower bounds only: a slow
  // machine cannot make this fail.
  const auto mono_before = ns(Clock::now());
  const auto a = mono_time_ns();
  const auto mono_after = ns(Clock::now());
  EXPECT_GT(a, 0);
  EXPECT_GE(a, mono_before);
  EXPECT_LE(a, mono_after);
  auto last = a;
  for (int i = 0; i < 10000; ++i) {
    const auto t = mono_time_ns();
    ASSERT_GE(t, last) << "read " << i;
    last = t;
  }
  std::this_thread::sleep_for(2ms);
  EXPECT_GE(mono_time_ns() - a, 2'000'000);
}

}  // namespace
}  // namespace acheron
