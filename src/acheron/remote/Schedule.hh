// Periodic scheduling against absolute deadlines t0 + k*T, so the mean rate
// does not drift with the time the work takes. A tick that is more than one
// period late skips the missed deadlines (counted as overruns) instead of
// running a burst to catch up. Policy only: the caller sleeps.
#pragma once

#include <cstdint>

#include "acheron/core/Clock.hh"

namespace acheron::remote {

class PeriodicSchedule final {
 public:
  PeriodicSchedule(Duration period, TimePoint start) : period_(period), t0_(start) {}

  // The deadline of the next tick.
  TimePoint next() const { return t0_ + period_ * static_cast<std::int64_t>(k_); }
  // Called after a tick ran at `now`: advances to the next deadline that is
  // not more than one period in the past.
  void advance(TimePoint now) {
    ++k_;
    ++ticks_;
    const TimePoint due = next();
    if (now - due >= period_) {
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
  std::uint64_t k_ = 0;
  std::uint64_t ticks_ = 0;
  std::uint64_t overruns_ = 0;
};

}  // namespace acheron::remote
