// Calls waiting for a call thread, one queue per client, taken from each
// waiting client in turn (policy only: no threads or sockets; the caller
// locks). A client that sends calls faster than they run fills only its
// own queue; when the waiting room is full, a waiting call of the client
// with the most waiting calls makes way for another client's call, so one
// client neither delays another's calls beyond their turn nor gets them
// refused. The Python server's acheron.remote.fairqueue is the same policy.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace acheron::remote {

template <class T>
class FairQueue final {
 public:
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

  std::size_t waiting(const std::string& client) const {
    auto it = queues_.find(client);
    return it == queues_.end() ? 0 : it->second.size();
  }

  void push(const std::string& client, T item) {
    auto [it, added] = queues_.try_emplace(client);
    if (added) turns_.push_back(client);
    it->second.push_back(std::move(item));
    ++size_;
  }

  // The next call to run: the oldest of the client whose turn it is.
  // Precondition: !empty().
  T pop() {
    std::string client = std::move(turns_.front());
    turns_.pop_front();
    auto it = queues_.find(client);
    T item = std::move(it->second.front());
    it->second.pop_front();
    --size_;
    if (it->second.empty()) {
      queues_.erase(it);
    } else {
      turns_.push_back(std::move(client));
    }
    return item;
  }

  // When the room is full and `client` has a call to queue: removes and
  // returns the newest waiting call of the client with the most waiting
  // calls, if that client is another one and has more than `client` would
  // have with its new call; otherwise nothing (refuse the new call).
  std::optional<T> make_way_for(const std::string& client) {
    const std::size_t mine = waiting(client);
    auto longest = queues_.end();
    for (auto it = queues_.begin(); it != queues_.end(); ++it) {
      if (longest == queues_.end() || it->second.size() > longest->second.size()) longest = it;
    }
    if (longest == queues_.end() || longest->first == client || longest->second.size() <= mine + 1)
      return std::nullopt;
    T item = std::move(longest->second.back());
    longest->second.pop_back();
    --size_;
    if (longest->second.empty()) {
      for (auto t = turns_.begin(); t != turns_.end(); ++t) {
        if (*t == longest->first) {
          turns_.erase(t);
          break;
        }
      }
      queues_.erase(longest);
    }
    return item;
  }

  void clear() {
    queues_.clear();
    turns_.clear();
    size_ = 0;
  }

 private:
  std::unordered_map<std::string, std::deque<T>> queues_;
  std::deque<std::string> turns_;  // clients with waiting calls, in turn order
  std::size_t size_ = 0;
};

}  // namespace acheron::remote
