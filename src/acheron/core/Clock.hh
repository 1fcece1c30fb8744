// Clocks: steady time for deadlines and intervals, wall time for timestamps.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

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

// `d` in the clock's units, saturating at Duration::max()/min() instead of
// overflowing: a client's "2**63-1 ms" is "for ever", not a negative time.
template <class Rep, class Period>
constexpr Duration saturating_duration(std::chrono::duration<Rep, Period> d) {
  using D = std::chrono::duration<Rep, Period>;
  if constexpr (std::is_same_v<D, Duration>) {
    return d;
  } else {
    // The limits of Duration expressed in D (rounded towards zero, so the
    // comparisons below never convert an out-of-range D).
    constexpr D hi = std::chrono::duration_cast<D>(Duration::max());
    constexpr D lo = std::chrono::duration_cast<D>(Duration::min());
    if (!(d < hi)) return Duration::max();  // also NaN for floating-point reps
    if (!(d > lo)) return Duration::min();
    return std::chrono::duration_cast<Duration>(d);
  }
}

// A deadline `d` from now that saturates instead of overflowing.
template <class Rep, class Period>
TimePoint deadline_after(std::chrono::duration<Rep, Period> duration) {
  const Duration d = saturating_duration(duration);
  const auto now = Clock::now();
  if (d >= TimePoint::max() - now) return TimePoint::max();
  // The steady clock counts from boot (now >= 0), so now + d cannot overflow
  // for negative d.
  return now + d;
}

}  // namespace acheron
