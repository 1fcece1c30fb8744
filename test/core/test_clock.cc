#include "acheron/core/Clock.hh"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>

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
  EXPECT_EQ(deadline_after(std::chrono::milliseconds(huge)), TimePoint::max());
  EXPECT_EQ(deadline_after(std::chrono::milliseconds(huge / 1000)), TimePoint::max());
  EXPECT_EQ(deadline_after(std::chrono::hours(huge)), TimePoint::max());
  EXPECT_EQ(deadline_after(std::chrono::duration<double>(1e300)), TimePoint::max());
  EXPECT_EQ(saturating_duration(std::chrono::milliseconds(-huge)), Duration::min());
  EXPECT_LT(deadline_after(std::chrono::milliseconds(-huge)), Clock::now());
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
  const auto a = mono_time_ns();
  const auto b = mono_time_ns();
  EXPECT_LE(a, b);
  EXPECT_GT(a, 0);
}

}  // namespace
}  // namespace acheron
