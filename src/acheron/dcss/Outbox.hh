// The one writer queue of a DHS connection (dcss-xos.md §6): any thread queues
// htos_ text tagged with the connection epoch it belongs to; the connection's
// writer thread takes it in order. Text of an older connection is dropped, so
// late results of an operation never reach a new DCSS link.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "acheron/core/Clock.hh"

namespace acheron::dcss {

class Outbox final {
 public:
  explicit Outbox(std::size_t capacity = 100'000) : capacity_(capacity) {}

  // Queues `text` for connection `epoch`; false (and dropped) if that
  // connection is not the open one or the queue is full.
  bool send(std::uint64_t epoch, std::string text);

  // A new connection: earlier text is discarded.
  void open(std::uint64_t epoch);
  // The connection is gone: queued text is discarded, sends are refused.
  void close();
  std::uint64_t epoch() const;
  bool is_open() const;

  // Writer side: the next text of the open connection, waiting at most
  // `timeout`; nullopt on timeout or when closed.
  std::optional<std::string> pop(Duration timeout);

  std::uint64_t dropped() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::size_t capacity_;
  std::uint64_t epoch_ = 0;
  bool open_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace acheron::dcss
