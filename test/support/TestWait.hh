// Test support: waiting for something another thread or process does.
#pragma once

#include <chrono>
#include <thread>

namespace acheron::test_support {

// Checks pred() every few milliseconds until it holds (true) or `timeout` has
// passed (false). pred() is always called at least once, and once more after
// the deadline, so a condition that became true while sleeping is seen. The
// timeout bounds how long a failing test hangs; it is not a measurement.
template <class Pred>
bool eventually(Pred&& pred,
                std::chrono::steady_clock::duration timeout = std::chrono::seconds(3)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool past = std::chrono::steady_clock::now() >= deadline;
    if (pred()) return true;
    if (past) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace acheron::test_support
