// Topics: streams of payloads with a latest-value cache per key, and
// subscriptions that pick keys, a minimum interval per key, a delivery mode
// and whether to start from the cached snapshot. Policy only: no sockets.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/core/Pattern.hh"
#include "acheron/core/Payload.hh"

namespace acheron::hub {

// One published value. Shared, immutable: every subscriber sees the same one.
struct Sample {
  std::string topic;
  std::string key;
  std::uint64_t seq = 0;  // per topic, strictly increasing from 1
  std::int64_t wall_ns = 0;
  TimePoint time{};  // steady clock at publication
  Payload payload;
};
using SamplePtr = std::shared_ptr<const Sample>;

enum class DeliveryMode {
  cache,  // newest value per key only; older undelivered values are replaced
  queue,  // bounded FIFO; when full a sample is dropped (QueueFull) and counted
};

// Queue mode: which sample a full queue gives up.
enum class QueueFull {
  drop_oldest,  // keep the freshest data (streams of values)
  drop_newest,  // keep what is queued, refuse the arrival (per-client packet queues)
};

struct SubscriptionOptions {
  std::vector<std::string> keys;  // whitelist; empty means every key
  std::string key_regex;  // if set, keys must match it entirely (RE2 syntax, core/Pattern.hh)
  // Alternatively a compiled pattern (taken instead of key_regex when set).
  std::optional<Pattern> key_pattern;
  Duration min_interval{0};  // per key: at most one delivery per interval
  DeliveryMode mode = DeliveryMode::cache;
  std::size_t queue_capacity = 1000;             // queue mode
  QueueFull when_full = QueueFull::drop_oldest;  // queue mode
  bool snapshot_first = true;                    // start with the cached latest value of each key
};

struct SubscriptionStats {
  std::uint64_t delivered = 0;  // samples handed to the consumer
  std::uint64_t dropped = 0;    // queue mode: discarded because the queue was full
  std::uint64_t replaced = 0;   // cache mode: superseded before delivery
  std::uint64_t skipped = 0;    // queue mode: arrived inside the key's min_interval
};

class Topic;

// A consumer's view of a topic. next() and try_next() may be called from one
// consumer thread; publication happens concurrently from any thread.
class Subscription final {
 public:
  Subscription(std::string topic, SubscriptionOptions options);  // via Topic::subscribe

  // The next sample, waiting up to timeout; nullopt on timeout or close.
  std::optional<SamplePtr> next(Duration timeout);
  std::optional<SamplePtr> try_next();
  // When the next held sample becomes deliverable (cache mode with a
  // min_interval holds samples back); nullopt if nothing is held.
  std::optional<TimePoint> next_due() const;
  std::size_t pending() const;
  SubscriptionStats stats() const;
  const SubscriptionOptions& options() const noexcept { return options_; }
  const std::string& topic() const noexcept { return topic_; }

  // Called, without locks held, whenever a sample is added; lets an event
  // loop wake up instead of blocking in next().
  void set_notify(std::function<void()> notify);
  // Stops delivery; a blocked next() returns nullopt.
  void close();
  bool closed() const;

  // True if this subscription wants samples for key.
  bool wants(const std::string& key);
  // Adds a sample (called by Topic under its lock; never blocks on the
  // consumer). Returns the notify callback to run after unlocking.
  std::function<void()> offer(const SamplePtr& sample);

 private:
  struct KeyState {
    SamplePtr held;                 // cache mode: newest undelivered
    std::optional<TimePoint> last;  // last delivery (cache) or acceptance (queue)
  };
  std::optional<SamplePtr> pop_locked(TimePoint now, std::optional<TimePoint>* wait_until);

  std::string topic_;
  SubscriptionOptions options_;
  std::optional<Pattern> pattern_;
  std::unordered_map<std::string, bool> wanted_;  // memoised key filter

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, KeyState> keys_;
  std::deque<SamplePtr> queue_;
  std::size_t held_count_ = 0;
  SubscriptionStats stats_;
  std::function<void()> notify_;
  bool closed_ = false;
};

struct TopicOptions {
  std::string doc;
  bool cache_latest = true;  // keep the latest value per key for snapshots
};

class Topic final {
 public:
  explicit Topic(std::string name, TopicOptions options = {});

  // Publishes a value under key; returns its sequence number. Never blocks
  // on subscribers.
  std::uint64_t publish(std::string key, Payload payload);
  // Throws SetupError for an invalid pattern.
  std::shared_ptr<Subscription> subscribe(SubscriptionOptions options = {});

  std::optional<SamplePtr> latest(const std::string& key) const;
  // The cached latest sample of every key (in key order) and the sequence
  // number of the newest publication, read together under one lock: every
  // sample published after this call has a greater seq. `out` is reused.
  std::uint64_t snapshot(std::vector<SamplePtr>* out) const;
  std::vector<std::string> keys() const;
  std::size_t subscriber_count() const;
  std::uint64_t last_seq() const;
  const std::string& name() const noexcept { return name_; }
  const TopicOptions& options() const noexcept { return options_; }

 private:
  std::string name_;
  TopicOptions options_;
  mutable std::mutex mutex_;
  std::uint64_t seq_ = 0;
  std::map<std::string, SamplePtr> cache_;
  std::vector<std::weak_ptr<Subscription>> subscribers_;
};

}  // namespace acheron::hub
