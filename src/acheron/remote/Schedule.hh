// Periodic scheduling against absolute deadlines t0 + k*T, so the mean rate
// does not drift with the time the work takes. Ticks that start late (the
// thread was not scheduled in time, or a tick ran long) run back to back
// until the schedule has caught up, so the mean rate holds; only when the
// schedule falls more than `max_behind` behind are the missed deadlines
// skipped (counted as overruns), which bounds the burst. Policy only: the
// caller sleeps.
#pragma once

#include <algorithm>
#include <cstdint>

#include "acheron/core/Clock.hh"

namespace acheron::remote {

class PeriodicSchedule final {
 public:
  // max_behind defaults to 100 ms of ticks, and at least two periods.
  PeriodicSchedule(Duration period, TimePoint start, Duration max_behind = Duration::zero())
      : period_(period),
        t0_(start),
        max_behind_(
            std::max({max_behind, 2 * period,
                      max_behind == Duration::zero() ? Duration(std::chrono::milliseconds(100))
                                                     : max_behind})) {}

  // The deadline of the next tick.
  TimePoint next() const { return t0_ + period_ * static_cast<std::int64_t>(k_); }
  // Called after a tick ran, at `now`: advances to the next deadline, and
  // skips deadlines only if it is more than max_behind in the past.
  void advance(TimePoint now) {
    ++k_;
    ++ticks_;
    const TimePoint due = next();
    if (now - due > max_behind_) {
      const auto behind = static_cast<std::uint64_t>((now - due) / period_);
      k_ += behind;
      overruns_ += behind;
    }
  }
  // Restarts the schedule at `start` (after a disable/enable).
  void restart(TimePoint start) {
    t0_ = start;
    k_ = 0;
  }

  Duration period() const noexcept { return period_; }
  std::uint64_t ticks() const noexcept { return ticks_; }
  std::uint64_t overruns() const noexcept { return overruns_; }

 private:
  Duration period_;
  TimePoint t0_;
  Duration max_behind_;
  std::uint64_t k_ = 0;
  std::uint64_t ticks_ = 0;
  std::uint64_t overruns_ = 0;
};

}  // namespace acheron::remote
