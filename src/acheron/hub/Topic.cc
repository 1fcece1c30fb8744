#include "acheron/hub/Topic.hh"

#include <algorithm>

#include "acheron/core/Error.hh"

namespace acheron::hub {

Subscription::Subscription(std::string topic, SubscriptionOptions options)
    : topic_(std::move(topic)), options_(std::move(options)) {
  if (options_.key_pattern) {
    pattern_ = options_.key_pattern;
  } else if (!options_.key_regex.empty()) {
    auto p = Pattern::compile(options_.key_regex);
    if (!p) throw SetupError("invalid key pattern: " + p.error().message);
    pattern_ = std::move(*p);
  }
  if (options_.mode == DeliveryMode::queue && options_.queue_capacity == 0) {
    throw SetupError(
        "queue_capacity is 0 (a queue must hold at least one sample) set it to 1 or more");
  }
}

bool Subscription::wants(const std::string& key) {
  // Called under the topic lock, so the memo needs no lock of its own.
  if (auto it = wanted_.find(key); it != wanted_.end()) return it->second;
  bool ok = true;
  if (!options_.keys.empty()) {
    ok = std::find(options_.keys.begin(), options_.keys.end(), key) != options_.keys.end();
  }
  if (ok && pattern_) ok = pattern_->full_match(key);
  if (wanted_.size() < 100000) wanted_.emplace(key, ok);
  return ok;
}

std::function<void()> Subscription::offer(const SamplePtr& sample) {
  std::lock_guard lock(mutex_);
  if (closed_) return {};
  if (options_.mode == DeliveryMode::cache) {
    KeyState& ks = keys_[sample->key];
    if (ks.held) {
      ++stats_.replaced;
    } else {
      ++held_count_;
    }
    ks.held = sample;
  } else {
    KeyState& ks = keys_[sample->key];
    if (options_.min_interval.count() > 0 && ks.last &&
        sample->time - *ks.last < options_.min_interval) {
      ++stats_.skipped;
      return {};
    }
    const bool full = queue_.size() >= options_.queue_capacity;
    if (full && options_.when_full == QueueFull::drop_newest) {
      ++stats_.dropped;  // refused: it does not count as the key's last delivery
      return {};
    }
    ks.last = sample->time;
    if (full) {
      queue_.pop_front();
      ++stats_.dropped;
    }
    queue_.push_back(sample);
  }
  cv_.notify_one();
  return notify_;
}

std::optional<SamplePtr> Subscription::pop_locked(TimePoint now,
                                                  std::optional<TimePoint>* wait_until) {
  if (wait_until) wait_until->reset();
  if (options_.mode == DeliveryMode::queue) {
    if (queue_.empty()) return std::nullopt;
    SamplePtr s = std::move(queue_.front());
    queue_.pop_front();
    ++stats_.delivered;
    return s;
  }
  if (held_count_ == 0) return std::nullopt;
  // Deliver the due key whose held sample is oldest, so a busy key cannot
  // starve a quiet one; remember when the next held key becomes due.
  KeyState* best = nullptr;
  std::optional<TimePoint> earliest;
  for (auto& [key, ks] : keys_) {
    if (!ks.held) continue;
    TimePoint due = ks.last ? *ks.last + options_.min_interval : TimePoint::min();
    if (due <= now) {
      if (!best || ks.held->seq < best->held->seq) best = &ks;
    } else if (!earliest || due < *earliest) {
      earliest = due;
    }
  }
  if (!best) {
    if (wait_until) *wait_until = earliest;
    return std::nullopt;
  }
  SamplePtr s = std::move(best->held);
  best->held.reset();
  best->last = now;
  --held_count_;
  ++stats_.delivered;
  return s;
}

std::optional<SamplePtr> Subscription::next(Duration timeout) {
  const TimePoint deadline = deadline_after(timeout);
  std::unique_lock lock(mutex_);
  for (;;) {
    if (closed_) return std::nullopt;
    std::optional<TimePoint> due;
    auto now = Clock::now();
    if (auto s = pop_locked(now, &due)) return s;
    if (now >= deadline) return std::nullopt;
    TimePoint until = due ? std::min(*due, deadline) : deadline;
    cv_.wait_until(lock, until);
  }
}

std::optional<SamplePtr> Subscription::try_next() {
  std::lock_guard lock(mutex_);
  if (closed_) return std::nullopt;
  return pop_locked(Clock::now(), nullptr);
}

std::optional<TimePoint> Subscription::next_due() const {
  std::lock_guard lock(mutex_);
  if (options_.mode == DeliveryMode::queue) {
    if (queue_.empty()) return std::nullopt;
    return TimePoint::min();
  }
  std::optional<TimePoint> earliest;
  for (const auto& [key, ks] : keys_) {
    if (!ks.held) continue;
    TimePoint due = ks.last ? *ks.last + options_.min_interval : TimePoint::min();
    if (!earliest || due < *earliest) earliest = due;
  }
  return earliest;
}

std::size_t Subscription::pending() const {
  std::lock_guard lock(mutex_);
  return options_.mode == DeliveryMode::queue ? queue_.size() : held_count_;
}

SubscriptionStats Subscription::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Subscription::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mutex_);
  notify_ = std::move(notify);
}

void Subscription::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    queue_.clear();
    keys_.clear();
    held_count_ = 0;
  }
  cv_.notify_all();
}

bool Subscription::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

Topic::Topic(std::string name, TopicOptions options)
    : name_(std::move(name)), options_(std::move(options)) {}

std::uint64_t Topic::publish(std::string key, Payload payload) {
  std::vector<std::function<void()>> notifies;
  std::uint64_t seq;
  {
    std::lock_guard lock(mutex_);
    seq = ++seq_;
    auto sample = std::make_shared<Sample>();
    sample->topic = name_;
    sample->key = std::move(key);
    sample->seq = seq;
    sample->wall_ns = wall_time_ns();
    sample->time = Clock::now();
    sample->payload = std::move(payload);
    SamplePtr shared = std::move(sample);
    if (options_.cache_latest) cache_[shared->key] = shared;
    // Offer under the topic lock so every subscriber sees publication order.
    auto out = subscribers_.begin();
    for (auto it = subscribers_.begin(); it != subscribers_.end(); ++it) {
      auto sub = it->lock();
      if (!sub || sub->closed()) continue;
      *out++ = *it;
      if (!sub->wants(shared->key)) continue;
      if (auto n = sub->offer(shared)) notifies.push_back(std::move(n));
    }
    subscribers_.erase(out, subscribers_.end());
  }
  for (auto& n : notifies) n();
  return seq;
}

std::shared_ptr<Subscription> Topic::subscribe(SubscriptionOptions options) {
  auto sub = std::make_shared<Subscription>(name_, std::move(options));
  std::lock_guard lock(mutex_);
  if (sub->options().snapshot_first) {
    std::vector<SamplePtr> snapshot;
    for (const auto& [key, s] : cache_) {
      if (sub->wants(key)) snapshot.push_back(s);
    }
    std::sort(snapshot.begin(), snapshot.end(),
              [](const SamplePtr& a, const SamplePtr& b) { return a->seq < b->seq; });
    for (const auto& s : snapshot) (void)sub->offer(s);
  }
  subscribers_.push_back(sub);
  return sub;
}

std::uint64_t Topic::snapshot(std::vector<SamplePtr>* out) const {
  out->clear();
  std::lock_guard lock(mutex_);
  out->reserve(cache_.size());
  for (const auto& [key, sample] : cache_) out->push_back(sample);
  return seq_;
}

std::optional<SamplePtr> Topic::latest(const std::string& key) const {
  std::lock_guard lock(mutex_);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  return std::nullopt;
}

std::vector<std::string> Topic::keys() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [k, v] : cache_) out.push_back(k);
  return out;
}

std::size_t Topic::subscriber_count() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& w : subscribers_) {
    if (auto s = w.lock(); s && !s->closed()) ++n;
  }
  return n;
}

std::uint64_t Topic::last_seq() const {
  std::lock_guard lock(mutex_);
  return seq_;
}

}  // namespace acheron::hub
