// Single-consumer policy tests of Topic and Subscription: caching, filtering,
// delivery modes, rate limits, snapshots, blocking and notification.
#include "TopicTestUtil.hh"
#include "acheron/hub/Topic.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Error.hh"

namespace acheron::hub {
namespace {

using namespace std::chrono_literals;
using testutil::queue_opts;

Payload value(int v) {
  Payload p;
  p.meta["v"] = v;
  return p;
}

int value_of(const SamplePtr& s) {
  return s->payload.meta.at("v").get<int>();
}

// Drains everything deliverable now as "key=value" strings.
std::vector<std::string> drain(Subscription& sub) {
  std::vector<std::string> out;
  while (auto s = sub.try_next()) out.push_back((*s)->key + "=" + std::to_string(value_of(*s)));
  return out;
}

std::vector<std::string> strings(std::initializer_list<const char*> l) {
  return std::vector<std::string>(l.begin(), l.end());
}

// ---------------------------------------------------------------- publish and cache

TEST(Topic, publish_assigns_strictly_increasing_seq_from_one) {
  Topic t("readings");
  EXPECT_EQ(t.name(), "readings");
  EXPECT_EQ(t.last_seq(), 0u);
  EXPECT_EQ(t.publish("a", value(1)), 1u);
  EXPECT_EQ(t.publish("b", value(2)), 2u);
  EXPECT_EQ(t.publish("a", value(3)), 3u);
  EXPECT_EQ(t.last_seq(), 3u);
}

TEST(Topic, latest_value_cache_per_key) {
  Topic t("readings");
  EXPECT_EQ(t.latest("a"), std::nullopt);
  EXPECT_TRUE(t.keys().empty());
  t.publish("a", value(1));
  t.publish("b", value(2));
  t.publish("a", value(3));
  auto a = t.latest("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(value_of(*a), 3);
  EXPECT_EQ((*a)->seq, 3u);
  EXPECT_EQ((*a)->key, "a");
  EXPECT_EQ((*a)->topic, "readings");
  EXPECT_GT((*a)->wall_ns, 0);
  EXPECT_LE((*a)->time, Clock::now());
  EXPECT_EQ(value_of(*t.latest("b")), 2);
  EXPECT_EQ(t.latest("c"), std::nullopt);
  EXPECT_EQ(t.keys(), strings({"a", "b"}));
}

TEST(Topic, snapshot_reads_every_key_and_the_newest_seq_together) {
  Topic t("readings");
  std::vector<SamplePtr> out{nullptr};
  EXPECT_EQ(t.snapshot(&out), 0u);
  EXPECT_TRUE(out.empty());  // reused: cleared first
  t.publish("b", value(1));
  t.publish("a", value(2));
  t.publish("b", value(3));
  EXPECT_EQ(t.snapshot(&out), 3u);
  ASSERT_EQ(out.size(), 2u);  // key order, newest per key
  EXPECT_EQ(out[0]->key, "a");
  EXPECT_EQ(value_of(out[0]), 2);
  EXPECT_EQ(out[1]->key, "b");
  EXPECT_EQ(out[1]->seq, 3u);
}

TEST(Topic, cache_latest_off_keeps_nothing) {
  Topic t("events", {.cache_latest = false});
  t.publish("a", value(1));
  EXPECT_EQ(t.latest("a"), std::nullopt);
  EXPECT_TRUE(t.keys().empty());
  auto sub = t.subscribe();
  EXPECT_EQ(sub->try_next(), std::nullopt) << "no snapshot without a cache";
  t.publish("a", value(2));
  EXPECT_EQ(drain(*sub), strings({"a=2"}));
}

TEST(Topic, publish_without_subscribers) {
  Topic t("t");
  for (int i = 0; i < 100; ++i) t.publish("k", value(i));
  EXPECT_EQ(t.subscriber_count(), 0u);
  EXPECT_EQ(t.last_seq(), 100u);
}

TEST(Topic, samples_are_shared_between_subscribers) {
  Topic t("t");
  auto s1 = t.subscribe(queue_opts());
  auto s2 = t.subscribe();
  t.publish("k", value(1));
  auto a = s1->try_next();
  auto b = s2->try_next();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get()) << "every subscriber sees the same Sample object";
  EXPECT_EQ(a->get(), t.latest("k")->get());
}

// ---------------------------------------------------------------- cache mode

TEST(Subscription, cache_mode_keeps_only_the_newest_per_key) {
  Topic t("t");
  auto sub = t.subscribe();  // cache mode by default
  EXPECT_EQ(sub->options().mode, DeliveryMode::cache);
  EXPECT_EQ(sub->topic(), "t");
  for (int i = 1; i <= 5; ++i) t.publish("a", value(i));
  t.publish("b", value(10));
  t.publish("b", value(11));
  EXPECT_EQ(sub->pending(), 2u) << "one held sample per key";
  EXPECT_EQ(sub->stats().replaced, 5u);
  EXPECT_EQ(drain(*sub), strings({"a=5", "b=11"}));
  auto st = sub->stats();
  EXPECT_EQ(st.delivered, 2u);
  EXPECT_EQ(st.replaced, 5u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.skipped, 0u);
  EXPECT_EQ(sub->pending(), 0u);
  EXPECT_EQ(sub->next_due(), std::nullopt);
}

TEST(Subscription, cache_mode_delivers_the_oldest_held_sample_first) {
  Topic t("t");
  auto sub = t.subscribe();
  t.publish("z", value(1));  // seq 1
  t.publish("a", value(1));  // seq 2
  t.publish("m", value(1));  // seq 3
  t.publish("z", value(2));  // seq 4 replaces z's held seq 1
  EXPECT_EQ(drain(*sub), strings({"a=1", "m=1", "z=2"}));
  // A busy key cannot push a quiet one back: the quiet key's older sample wins.
  for (int i = 0; i < 5; ++i) t.publish("busy", value(i));
  t.publish("quiet", value(1));
  for (int i = 5; i < 10; ++i) t.publish("busy", value(i));
  EXPECT_EQ(drain(*sub), strings({"quiet=1", "busy=9"}));
}

TEST(Subscription, cache_mode_sequence_numbers_increase_across_keys) {
  Topic t("t");
  auto sub = t.subscribe();
  std::uint64_t last = 0;
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 1 + round % 4; ++k)
      t.publish("k" + std::to_string((round * 7 + k) % 5), {});
    if (round % 3 == 0) continue;  // sometimes let samples pile up
    while (auto s = sub->try_next()) {
      EXPECT_GT((*s)->seq, last);
      last = (*s)->seq;
    }
  }
}

// ---------------------------------------------------------------- queue mode

TEST(Subscription, queue_mode_is_a_fifo) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts());
  t.publish("a", value(1));
  t.publish("b", value(2));
  t.publish("a", value(3));
  EXPECT_EQ(sub->pending(), 3u);
  EXPECT_EQ(sub->next_due(), TimePoint::min()) << "queued samples are due now";
  EXPECT_EQ(drain(*sub), strings({"a=1", "b=2", "a=3"}));
  EXPECT_EQ(sub->stats().delivered, 3u);
  EXPECT_EQ(sub->next_due(), std::nullopt);
}

TEST(Subscription, full_queue_drops_the_oldest_and_counts) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts(3));
  for (int i = 1; i <= 10; ++i) t.publish("k", value(i));
  EXPECT_EQ(sub->pending(), 3u);
  auto st = sub->stats();
  EXPECT_EQ(st.dropped, 7u);
  EXPECT_EQ(st.replaced, 0u);
  EXPECT_EQ(drain(*sub), strings({"k=8", "k=9", "k=10"}));
  // Consuming frees room: nothing more is dropped.
  t.publish("k", value(11));
  t.publish("k", value(12));
  EXPECT_EQ(drain(*sub), strings({"k=11", "k=12"}));
  st = sub->stats();
  EXPECT_EQ(st.dropped, 7u);
  EXPECT_EQ(st.delivered, 5u);
}

TEST(Subscription, full_queue_can_refuse_the_newest_instead) {
  Topic t("t");
  auto o = queue_opts(3);
  o.when_full = QueueFull::drop_newest;
  auto sub = t.subscribe(o);
  for (int i = 1; i <= 10; ++i) t.publish("k", value(i));
  EXPECT_EQ(sub->stats().dropped, 7u);
  EXPECT_EQ(drain(*sub), strings({"k=1", "k=2", "k=3"}));
  t.publish("k", value(11));
  EXPECT_EQ(drain(*sub), strings({"k=11"}));
  EXPECT_EQ(sub->stats().dropped, 7u);
}

TEST(Subscription, queue_capacity_one) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts(1));
  t.publish("a", value(1));
  t.publish("b", value(2));
  EXPECT_EQ(drain(*sub), strings({"b=2"}));
  EXPECT_EQ(sub->stats().dropped, 1u);
}

TEST(Subscription, queue_capacity_zero_is_a_setup_error) {
  Topic t("t");
  EXPECT_THROW(t.subscribe(queue_opts(0)), SetupError);
  EXPECT_EQ(t.subscriber_count(), 0u);
  // Cache mode ignores the capacity.
  SubscriptionOptions o;
  o.queue_capacity = 0;
  EXPECT_NO_THROW(t.subscribe(o));
}

// ---------------------------------------------------------------- key filters

TEST(Subscription, key_whitelist) {
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.keys = {"a", "c"};
  auto sub = t.subscribe(o);
  for (const char* k : {"a", "b", "c", "d", "aa", "", "A"}) t.publish(k, value(1));
  EXPECT_EQ(drain(*sub), strings({"a=1", "c=1"}));
  EXPECT_TRUE(sub->wants("a"));
  EXPECT_FALSE(sub->wants("b"));
}

TEST(Subscription, regex_is_anchored) {
  Topic t("t");
  SubscriptionOptions exact = queue_opts();
  exact.key_regex = "ch1";
  auto sub_exact = t.subscribe(exact);
  SubscriptionOptions any = queue_opts();
  any.key_regex = "ch[0-9]+";
  auto sub_any = t.subscribe(any);
  for (const char* k : {"ch1", "ch10", "xch1", "ch1x", "ch", "ch2", "CH1", "ch12b"}) {
    t.publish(k, value(1));
  }
  EXPECT_EQ(drain(*sub_exact), strings({"ch1=1"})) << "'ch1' must not match 'ch10' or 'xch1'";
  EXPECT_EQ(drain(*sub_any), strings({"ch1=1", "ch10=1", "ch2=1"}));
  EXPECT_FALSE(sub_exact->wants("ch10"));
  EXPECT_TRUE(sub_any->wants("ch10"));
  EXPECT_FALSE(sub_any->wants("ch"));
}

TEST(Subscription, regex_alternation_is_anchored_as_a_whole) {
  // A naive "^" + re + "$" would turn "a|b" into "^a|b$" and match "ax".
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.key_regex = "a|b";
  auto sub = t.subscribe(o);
  for (const char* k : {"a", "b", "ax", "xb", "ab"}) t.publish(k, value(1));
  EXPECT_EQ(drain(*sub), strings({"a=1", "b=1"}));
}

TEST(Subscription, whitelist_and_regex_must_both_match) {
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.keys = {"ch1", "ch2", "temp"};
  o.key_regex = "ch[0-9]";
  auto sub = t.subscribe(o);
  for (const char* k : {"ch1", "ch2", "ch3", "temp"}) t.publish(k, value(1));
  EXPECT_EQ(drain(*sub), strings({"ch1=1", "ch2=1"}));
}

TEST(Subscription, invalid_regex_is_a_setup_error) {
  Topic t("t");
  for (const char* bad : {"ch[", "(", "a{2,1}", "*x"}) {
    SCOPED_TRACE(bad);
    SubscriptionOptions o;
    o.key_regex = bad;
    try {
      (void)t.subscribe(o);
      FAIL() << "no exception";
    } catch (const SetupError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(t.subscriber_count(), 0u);
}

// ---------------------------------------------------------------- snapshots

TEST(Subscription, snapshot_first_gives_cached_values_in_publication_order) {
  Topic t("t");
  t.publish("b", value(1));  // seq 1
  t.publish("a", value(1));  // seq 2
  t.publish("c", value(1));  // seq 3
  t.publish("b", value(2));  // seq 4: b's cached value is now newer than a and c
  for (DeliveryMode mode : {DeliveryMode::queue, DeliveryMode::cache}) {
    SubscriptionOptions o;
    o.mode = mode;
    auto sub = t.subscribe(o);
    std::vector<std::uint64_t> seqs;
    std::vector<std::string> got;
    while (auto s = sub->try_next()) {
      seqs.push_back((*s)->seq);
      got.push_back((*s)->key + "=" + std::to_string(value_of(*s)));
    }
    EXPECT_EQ(got, strings({"a=1", "c=1", "b=2"}));
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{2, 3, 4}));
    EXPECT_EQ(sub->stats().replaced, 0u);
    EXPECT_EQ(sub->stats().dropped, 0u);
  }
}

TEST(Subscription, snapshot_then_live_samples) {
  Topic t("t");
  t.publish("a", value(1));
  auto sub = t.subscribe(queue_opts());
  t.publish("a", value(2));
  t.publish("b", value(3));
  EXPECT_EQ(drain(*sub), strings({"a=1", "a=2", "b=3"}));
}

TEST(Subscription, snapshot_respects_the_key_filter) {
  Topic t("t");
  for (const char* k : {"ch1", "ch10", "temp"}) t.publish(k, value(1));
  SubscriptionOptions o;
  o.key_regex = "ch[0-9]+";
  auto sub = t.subscribe(o);
  EXPECT_EQ(drain(*sub), strings({"ch1=1", "ch10=1"}));
  o = {};
  o.keys = {"temp"};
  EXPECT_EQ(drain(*t.subscribe(o)), strings({"temp=1"}));
}

TEST(Subscription, snapshot_larger_than_the_queue_keeps_the_newest) {
  Topic t("t");
  for (int i = 0; i < 5; ++i) t.publish("k" + std::to_string(i), value(i));
  auto sub = t.subscribe(queue_opts(2));
  EXPECT_EQ(drain(*sub), strings({"k3=3", "k4=4"}));
  EXPECT_EQ(sub->stats().dropped, 3u);
}

TEST(Subscription, snapshot_first_false_gives_only_new_samples) {
  Topic t("t");
  t.publish("a", value(1));
  t.publish("b", value(2));
  for (DeliveryMode mode : {DeliveryMode::queue, DeliveryMode::cache}) {
    SubscriptionOptions o;
    o.mode = mode;
    o.snapshot_first = false;
    auto sub = t.subscribe(o);
    EXPECT_EQ(sub->pending(), 0u);
    EXPECT_EQ(sub->try_next(), std::nullopt);
    EXPECT_EQ(sub->next(1ms), std::nullopt);
  }
  SubscriptionOptions o;
  o.snapshot_first = false;
  auto sub = t.subscribe(o);
  t.publish("a", value(3));
  EXPECT_EQ(drain(*sub), strings({"a=3"}));
}

// ---------------------------------------------------------------- min_interval

TEST(Subscription, min_interval_cache_mode_holds_a_key_back_without_blocking_others) {
  Topic t("t");
  SubscriptionOptions o;
  o.min_interval = 200ms;  // long enough that the checks below run inside it
  auto sub = t.subscribe(o);
  t.publish("a", value(1));
  const TimePoint before_first = Clock::now();
  EXPECT_EQ(drain(*sub), strings({"a=1"})) << "the first sample of a key is due at once";

  t.publish("a", value(2));
  t.publish("a", value(3));
  EXPECT_EQ(sub->try_next(), std::nullopt) << "a is inside its interval";
  EXPECT_EQ(sub->pending(), 1u);
  auto due = sub->next_due();
  ASSERT_TRUE(due.has_value());
  EXPECT_GE(*due, before_first + 200ms);

  t.publish("b", value(1));
  EXPECT_EQ(drain(*sub), strings({"b=1"})) << "another key is not held back by a";

  // next() waits for a's interval to pass, then gives its newest value.
  auto s = sub->next(10s);
  const TimePoint got_at = Clock::now();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ((*s)->key, "a");
  EXPECT_EQ(value_of(*s), 3);
  EXPECT_GE(got_at - before_first, 200ms);
  EXPECT_EQ(sub->stats().replaced, 1u);
  EXPECT_EQ(sub->stats().skipped, 0u) << "cache mode replaces, it does not skip";
}

TEST(Subscription, min_interval_queue_mode_skips_and_counts) {
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.min_interval = 1h;  // nothing after the first sample of a key is accepted
  auto sub = t.subscribe(o);
  t.publish("a", value(1));
  t.publish("a", value(2));
  t.publish("b", value(1));
  t.publish("a", value(3));
  t.publish("b", value(2));
  EXPECT_EQ(drain(*sub), strings({"a=1", "b=1"}));
  auto st = sub->stats();
  EXPECT_EQ(st.skipped, 3u);
  EXPECT_EQ(st.delivered, 2u);
  EXPECT_EQ(st.dropped, 0u);
}

TEST(Subscription, min_interval_queue_mode_accepts_after_the_interval) {
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.min_interval = 30ms;
  auto sub = t.subscribe(o);
  const auto first_seq = t.publish("a", value(1));
  const auto first_time = t.latest("a").value()->time;
  int published = 1;
  // Publish until a sample lands outside the interval (it is measured on the
  // samples' publication times).
  while (Clock::now() - first_time < 31ms) {
    t.publish("a", value(++published));
    std::this_thread::sleep_for(2ms);
  }
  t.publish("a", value(++published));
  std::vector<SamplePtr> got;
  while (auto s = sub->try_next()) got.push_back(*s);
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0]->seq, first_seq);
  for (std::size_t i = 1; i < got.size(); ++i) {
    EXPECT_GE(got[i]->time - got[i - 1]->time, 30ms);
  }
  auto st = sub->stats();
  EXPECT_EQ(st.delivered + st.skipped, static_cast<std::uint64_t>(published));
}

// ---------------------------------------------------------------- blocking and waking

TEST(Subscription, next_times_out_with_nullopt) {
  Topic t("t");
  auto sub = t.subscribe();
  const auto start = Clock::now();
  EXPECT_EQ(sub->next(50ms), std::nullopt);
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_EQ(sub->next(Duration::zero()), std::nullopt);
  EXPECT_EQ(sub->next(-1s), std::nullopt);
}

TEST(Subscription, next_returns_at_once_when_something_is_pending) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts());
  t.publish("k", value(1));
  auto s = sub->next(Duration::zero());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s), 1);
}

TEST(Subscription, blocked_next_wakes_on_publish) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts());
  std::optional<SamplePtr> got;
  const auto start = Clock::now();
  std::thread consumer([&] { got = sub->next(30s); });
  std::this_thread::sleep_for(20ms);  // likely blocked by now; correct either way
  t.publish("k", value(5));
  consumer.join();
  // Far below the 30 s timeout: the publish woke the consumer.
  EXPECT_LT(Clock::now() - start, 10s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(value_of(*got), 5);
}

TEST(Subscription, close_wakes_a_blocked_next) {
  Topic t("t");
  auto sub = t.subscribe();
  std::atomic<bool> returned{false};
  std::optional<SamplePtr> got = SamplePtr{};
  const auto start = Clock::now();
  std::thread consumer([&] {
    got = sub->next(Duration::max());
    returned = true;
  });
  std::this_thread::sleep_for(20ms);  // likely blocked by now; correct either way
  EXPECT_FALSE(returned.load());
  sub->close();
  consumer.join();
  EXPECT_EQ(got, std::nullopt);
  EXPECT_LT(Clock::now() - start, 10s);
  EXPECT_TRUE(sub->closed());
}

TEST(Subscription, closed_subscription_receives_nothing) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts());
  t.publish("k", value(1));
  EXPECT_EQ(t.subscriber_count(), 1u);
  sub->close();
  EXPECT_EQ(sub->pending(), 0u) << "close discards what was pending";
  EXPECT_EQ(t.subscriber_count(), 0u);
  t.publish("k", value(2));
  EXPECT_EQ(sub->try_next(), std::nullopt);
  EXPECT_EQ(sub->next(1ms), std::nullopt);
  EXPECT_EQ(sub->pending(), 0u);
}

TEST(Subscription, set_notify_is_called_on_publish_without_locks_held) {
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.keys = {"a"};
  auto sub = t.subscribe(o);
  int calls = 0;
  std::size_t pending_seen = 0;
  std::uint64_t seq_seen = 0;
  sub->set_notify([&] {
    ++calls;
    // Would deadlock if the topic or subscription lock were held.
    pending_seen = sub->pending();
    seq_seen = t.last_seq();
  });
  t.publish("a", value(1));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pending_seen, 1u);
  EXPECT_EQ(seq_seen, 1u);
  t.publish("b", value(1));
  EXPECT_EQ(calls, 1) << "no notification for a key the subscriber does not want";
  t.publish("a", value(2));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pending_seen, 2u);
  sub->set_notify(nullptr);
  t.publish("a", value(3));
  EXPECT_EQ(calls, 2);
}

TEST(Subscription, notify_is_not_called_for_skipped_samples) {
  Topic t("t");
  SubscriptionOptions o = queue_opts();
  o.min_interval = 1h;
  auto sub = t.subscribe(o);
  int calls = 0;
  sub->set_notify([&] { ++calls; });
  t.publish("a", value(1));
  t.publish("a", value(2));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(sub->stats().skipped, 1u);
}

TEST(Subscription, notify_can_consume_from_the_callback) {
  Topic t("t");
  auto sub = t.subscribe(queue_opts());
  std::vector<int> got;
  sub->set_notify([&] {
    while (auto s = sub->try_next()) got.push_back(value_of(*s));
  });
  for (int i = 0; i < 5; ++i) t.publish("k", value(i));
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Topic, subscriber_count_drops_when_a_subscription_is_destroyed) {
  Topic t("t");
  auto a = t.subscribe();
  auto b = t.subscribe(queue_opts());
  EXPECT_EQ(t.subscriber_count(), 2u);
  b.reset();
  EXPECT_EQ(t.subscriber_count(), 1u);
  t.publish("k", value(1));  // prunes the expired entry; must not crash
  EXPECT_EQ(t.subscriber_count(), 1u);
  EXPECT_EQ(drain(*a), strings({"k=1"}));
  a.reset();
  EXPECT_EQ(t.subscriber_count(), 0u);
  t.publish("k", value(2));
  EXPECT_EQ(t.subscriber_count(), 0u);
}

}  // namespace
}  // namespace acheron::hub
