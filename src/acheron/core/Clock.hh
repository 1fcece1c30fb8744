// Clocks: steady time for deadlines and intervals, wall time for timestamps.
#pragma once

#include <chrono>
#include <cstdint>

namespace acheron {

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;
using TimePoint = Clock::time_point;

// Nanoseconds since the Unix epoch (wall clock).
inline std::int64_t wall_time_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Nanoseconds of the steady clock (process-independent epoch on Linux: boot).
inline std::int64_t mono_time_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// A deadline `d` from now that saturates instead of overflowing.
inline TimePoint deadline_after(Duration d) {
  const auto now = Clock::now();
  if (d >= TimePoint::max() - now) return TimePoint::max();
  return now + d;
}

}  // namespace acheron
