// Helpers for the dcss tests: reading what a Dhs queued in its Outbox.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "acheron/dcss/Outbox.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss::test {

using namespace std::chrono_literals;

// Collects messages popped from an Outbox.
class Sink final {
 public:
  explicit Sink(Outbox& outbox) : outbox_(outbox) {}

  // Pops until a message satisfies pred (returned) or timeout (empty string).
  std::string wait(const std::function<bool(const std::string&)>& pred, Duration timeout = 3s) {
    const auto deadline = Clock::now() + timeout;
    for (std::size_t i = seen_; i < all_.size(); ++i) {
      if (pred(all_[i])) {
        seen_ = i + 1;
        return all_[i];
      }
    }
    while (Clock::now() < deadline) {
      auto m = outbox_.pop(20ms);
      if (!m) continue;
      all_.push_back(*m);
      if (pred(*m)) {
        seen_ = all_.size();
        return *m;
      }
    }
    return {};
  }
  std::string wait_prefix(const std::string& prefix, Duration timeout = 3s) {
    return wait([&](const std::string& m) { return m.starts_with(prefix); }, timeout);
  }
  // Everything that arrives within `d`.
  std::vector<std::string> drain(Duration d) {
    const auto deadline = Clock::now() + d;
    while (Clock::now() < deadline) {
      if (auto m = outbox_.pop(10ms)) all_.push_back(*m);
    }
    return all_;
  }
  std::size_t count_prefix(const std::string& prefix) const {
    std::size_t n = 0;
    for (const auto& m : all_) n += m.starts_with(prefix);
    return n;
  }
  const std::vector<std::string>& all() const { return all_; }

 private:
  Outbox& outbox_;
  std::vector<std::string> all_;
  std::size_t seen_ = 0;
};

}  // namespace acheron::dcss::test
