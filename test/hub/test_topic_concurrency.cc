// Topic behaviour with concurrent publishers and consumers. Assertions are on
// counts and ordering only: this runs on shared, noisy machines.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "TopicTestUtil.hh"
#include "acheron/hub/Topic.hh"

namespace acheron::hub {
namespace {

using namespace std::chrono_literals;
using testutil::queue_opts;

// Generous: a consumer that sees nothing for this long has lost samples.
constexpr Duration kStallTimeout = 20s;

Payload indexed(int i) {
  Payload p;
  p.meta["i"] = i;
  return p;
}

int index_of(const SamplePtr& s) {
  return s->payload.meta.at("i").get<int>();
}

// Receives exactly `expected` samples (or stops after a stall).
std::vector<SamplePtr> receive_n(Subscription& sub, std::size_t expected) {
  std::vector<SamplePtr> got;
  got.reserve(expected);
  while (got.size() < expected) {
    auto s = sub.next(kStallTimeout);
    if (!s) break;
    got.push_back(*s);
  }
  return got;
}

// Receives until `done` is set and nothing more is deliverable, calling
// per_sample after each one.
template <class F>
std::vector<SamplePtr> receive_until_done(Subscription& sub, const std::atomic<bool>& done,
                                          F&& per_sample) {
  std::vector<SamplePtr> got;
  for (;;) {
    const bool was_done = done.load();
    if (auto s = sub.next(10ms)) {
      got.push_back(*s);
      per_sample();
      continue;
    }
    // Nothing was pending after publishing had finished: we have it all.
    if (was_done) break;
  }
  return got;
}

bool strictly_increasing(const std::vector<SamplePtr>& v) {
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i]->seq <= v[i - 1]->seq) return false;
  }
  return true;
}

TEST(TopicConcurrency, subscribers_at_different_rates_do_not_affect_each_other) {
  constexpr int kSamples = 4000;
  constexpr int kKeys = 4;
  constexpr std::size_t kSlowCapacity = 16;
  Topic topic("stream");

  std::vector<std::shared_ptr<Subscription>> fast;
  for (int i = 0; i < 4; ++i) fast.push_back(topic.subscribe(queue_opts(kSamples)));
  auto slow = topic.subscribe(queue_opts(kSlowCapacity));
  auto cache = topic.subscribe();
  SubscriptionOptions even_opts = queue_opts(kSamples);
  even_opts.key_regex = "k[02]";
  auto even = topic.subscribe(even_opts);
  SubscriptionOptions limited_opts = queue_opts(kSamples);
  limited_opts.keys = {"k3"};
  limited_opts.min_interval = 2ms;
  auto limited = topic.subscribe(limited_opts);
  ASSERT_EQ(topic.subscriber_count(), 8u);

  std::atomic<bool> published_all{false};
  std::vector<std::vector<SamplePtr>> fast_got(fast.size());
  std::vector<SamplePtr> slow_got, cache_got, even_got, limited_got;

  std::vector<std::thread> threads;
  for (std::size_t f = 0; f < fast.size(); ++f) {
    threads.emplace_back([&, f] { fast_got[f] = receive_n(*fast[f], kSamples); });
  }
  threads.emplace_back([&] {
    slow_got = receive_until_done(*slow, published_all, [] { std::this_thread::sleep_for(2ms); });
  });
  threads.emplace_back([&] { cache_got = receive_until_done(*cache, published_all, [] {}); });
  threads.emplace_back([&] { even_got = receive_n(*even, kSamples / 2); });
  threads.emplace_back([&] { limited_got = receive_until_done(*limited, published_all, [] {}); });

  std::thread publisher([&] {
    for (int i = 1; i <= kSamples; ++i) {
      topic.publish("k" + std::to_string(i % kKeys), indexed(i));
      if (i % 64 == 0) std::this_thread::yield();
    }
    published_all = true;
  });
  publisher.join();
  for (auto& t : threads) t.join();
  ASSERT_EQ(topic.last_seq(), static_cast<std::uint64_t>(kSamples));

  // Fast queue subscribers with room for everything receive everything, in order.
  for (std::size_t f = 0; f < fast.size(); ++f) {
    SCOPED_TRACE("fast subscriber " + std::to_string(f));
    ASSERT_EQ(fast_got[f].size(), static_cast<std::size_t>(kSamples));
    for (int i = 0; i < kSamples; ++i) {
      ASSERT_EQ(fast_got[f][i]->seq, static_cast<std::uint64_t>(i + 1));
      ASSERT_EQ(index_of(fast_got[f][i]), i + 1);
    }
    EXPECT_EQ(fast[f]->stats().dropped, 0u);
    EXPECT_EQ(fast[f]->stats().delivered, static_cast<std::uint64_t>(kSamples));
  }

  // The slow subscriber only loses its own samples: oldest dropped, order kept.
  {
    auto st = slow->stats();
    EXPECT_TRUE(strictly_increasing(slow_got));
    EXPECT_EQ(st.delivered, slow_got.size());
    EXPECT_EQ(st.delivered + st.dropped, static_cast<std::uint64_t>(kSamples));
    EXPECT_GT(st.dropped, 0u) << "a subscriber sleeping 2 ms per sample kept up with " << kSamples
                              << " samples: the publisher must have waited for it";
    ASSERT_FALSE(slow_got.empty());
    EXPECT_EQ(slow_got.back()->seq, static_cast<std::uint64_t>(kSamples))
        << "drop-oldest keeps the newest sample";
  }

  // The cache subscriber sees increasing seqs and ends with the newest per key.
  {
    auto st = cache->stats();
    EXPECT_TRUE(strictly_increasing(cache_got));
    EXPECT_EQ(st.delivered, cache_got.size());
    EXPECT_EQ(st.delivered + st.replaced, static_cast<std::uint64_t>(kSamples));
    std::map<std::string, int> last;
    for (const auto& s : cache_got) last[s->key] = index_of(s);
    ASSERT_EQ(last.size(), static_cast<std::size_t>(kKeys));
    for (int k = 0; k < kKeys; ++k) {
      EXPECT_EQ(last["k" + std::to_string(k)], kSamples - ((kSamples - k) % kKeys)) << "key k" << k;
    }
  }

  // The regex subscriber gets exactly its keys, in order.
  {
    ASSERT_EQ(even_got.size(), static_cast<std::size_t>(kSamples / 2));
    int expected = 0;
    for (const auto& s : even_got) {
      do {
        ++expected;
      } while (expected % kKeys != 0 && expected % kKeys != 2);
      ASSERT_EQ(index_of(s), expected);
    }
  }

  // The rate-limited subscriber: only k3, accepted samples spaced by the interval.
  {
    auto st = limited->stats();
    ASSERT_FALSE(limited_got.empty());
    EXPECT_TRUE(strictly_increasing(limited_got));
    EXPECT_EQ(st.delivered + st.skipped, static_cast<std::uint64_t>(kSamples / kKeys));
    for (std::size_t i = 0; i < limited_got.size(); ++i) {
      EXPECT_EQ(limited_got[i]->key, "k3");
      if (i > 0) {
        EXPECT_GE(limited_got[i]->time - limited_got[i - 1]->time, 2ms);
      }
    }
  }
}

TEST(TopicConcurrency, cache_mode_min_interval_spaces_deliveries_and_does_not_starve) {
  constexpr Duration kInterval = 20ms;
  Topic topic("rates");
  SubscriptionOptions opts;
  opts.min_interval = kInterval;
  auto sub = topic.subscribe(opts);

  std::atomic<bool> done{false};
  int quiet_published = 0;
  std::thread publisher([&] {
    const auto end = Clock::now() + 400ms;
    int i = 0;
    auto next_quiet = Clock::now();
    while (Clock::now() < end) {
      topic.publish("busy", indexed(++i));
      if (Clock::now() >= next_quiet) {
        topic.publish("quiet", indexed(++quiet_published));
        next_quiet = Clock::now() + 50ms;
      }
      std::this_thread::sleep_for(200us);
    }
    done = true;
  });

  struct Delivery {
    TimePoint asked;     // before the next() call that returned it
    TimePoint received;  // after it returned
    SamplePtr sample;
  };
  std::vector<Delivery> got;
  for (;;) {
    const bool was_done = done.load();
    const TimePoint asked = Clock::now();
    auto s = sub->next(50ms);
    if (s) {
      got.push_back({asked, Clock::now(), *s});
      continue;
    }
    if (was_done) break;
  }
  publisher.join();
  // Anything still held becomes due within one interval.
  for (;;) {
    const TimePoint asked = Clock::now();
    auto s = sub->next(kInterval * 5);
    if (!s) break;
    got.push_back({asked, Clock::now(), *s});
  }

  std::map<std::string, std::vector<const Delivery*>> by_key;
  for (const auto& d : got) by_key[d.sample->key].push_back(&d);
  ASSERT_EQ(by_key.size(), 2u);
  const auto& busy = by_key["busy"];
  const auto& quiet = by_key["quiet"];
  EXPECT_GE(busy.size(), 3u);
  // The quiet key is not starved by the busy one: its samples get through.
  EXPECT_GE(quiet.size(), 2u);
  EXPECT_EQ(quiet.back()->sample->payload.meta["i"], quiet_published)
      << "the newest quiet value must be delivered";

  // Deliveries of one key are spaced by at least the interval. The library
  // stamps a delivery between `asked` and `received`, so the interval is
  // measured from the earlier call's start to the later call's return.
  for (const auto* key : {&busy, &quiet}) {
    for (std::size_t i = 1; i < key->size(); ++i) {
      EXPECT_GE((*key)[i]->received - (*key)[i - 1]->asked, kInterval) << "delivery " << i;
    }
  }
  auto st = sub->stats();
  EXPECT_GT(st.replaced, 0u) << "the busy key publishes faster than the interval";
  EXPECT_EQ(st.delivered, got.size());
  EXPECT_TRUE(std::is_sorted(busy.begin(), busy.end(),
                             [](auto* a, auto* b) { return a->sample->seq < b->sample->seq; }));
}

TEST(TopicConcurrency, concurrent_publishers_give_each_subscriber_increasing_seq) {
  constexpr int kPublishers = 4;
  constexpr int kPerPublisher = 1500;
  constexpr int kTotal = kPublishers * kPerPublisher;
  Topic topic("multi");
  auto all = topic.subscribe(queue_opts(kTotal));
  auto small = topic.subscribe(queue_opts(8));
  auto cache = topic.subscribe();

  std::atomic<int> publishers_left{kPublishers};
  std::atomic<bool> done{false};
  std::vector<SamplePtr> all_got, small_got, cache_got;
  std::thread t_all([&] { all_got = receive_n(*all, kTotal); });
  std::thread t_small([&] { small_got = receive_until_done(*small, done, [] {}); });
  std::thread t_cache([&] { cache_got = receive_until_done(*cache, done, [] {}); });

  std::vector<std::vector<std::uint64_t>> returned(kPublishers);
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kPerPublisher; ++i) {
        returned[p].push_back(topic.publish("p" + std::to_string(p), indexed(i)));
      }
      if (--publishers_left == 0) done = true;
    });
  }
  for (auto& t : publishers) t.join();
  t_all.join();
  t_small.join();
  t_cache.join();

  // publish() hands out every seq exactly once, increasing within a thread.
  std::vector<std::uint64_t> seqs;
  for (const auto& r : returned) {
    EXPECT_TRUE(std::is_sorted(r.begin(), r.end()));
    seqs.insert(seqs.end(), r.begin(), r.end());
  }
  std::sort(seqs.begin(), seqs.end());
  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kTotal));
  for (int i = 0; i < kTotal; ++i) ASSERT_EQ(seqs[i], static_cast<std::uint64_t>(i + 1));

  // The full queue sees every sample once, in seq order, and each publisher's
  // samples in the order it published them.
  ASSERT_EQ(all_got.size(), static_cast<std::size_t>(kTotal));
  EXPECT_TRUE(strictly_increasing(all_got));
  std::map<std::string, int> next_index;
  for (const auto& s : all_got) {
    ASSERT_EQ(index_of(s), next_index[s->key]++) << s->key;
  }
  for (int p = 0; p < kPublishers; ++p)
    EXPECT_EQ(next_index["p" + std::to_string(p)], kPerPublisher);

  EXPECT_TRUE(strictly_increasing(small_got));
  auto small_st = small->stats();
  EXPECT_EQ(small_st.delivered + small_st.dropped, static_cast<std::uint64_t>(kTotal));

  EXPECT_TRUE(strictly_increasing(cache_got));
  auto cache_st = cache->stats();
  EXPECT_EQ(cache_st.delivered + cache_st.replaced, static_cast<std::uint64_t>(kTotal));
  std::map<std::string, int> cache_last;
  for (const auto& s : cache_got) cache_last[s->key] = index_of(s);
  for (int p = 0; p < kPublishers; ++p) {
    EXPECT_EQ(cache_last["p" + std::to_string(p)], kPerPublisher - 1);
  }
}

TEST(TopicConcurrency, subscribing_and_unsubscribing_while_publishing) {
  Topic topic("churn");
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    int i = 0;
    while (!stop) {
      topic.publish("k" + std::to_string(i % 5), indexed(i));
      ++i;
    }
  });
  std::atomic<int> bad{0};
  std::vector<std::thread> churners;
  for (int c = 0; c < 2; ++c) {
    churners.emplace_back([&, c] {
      for (int round = 0; round < 150; ++round) {
        SubscriptionOptions o;
        o.mode = (round + c) % 2 ? DeliveryMode::queue : DeliveryMode::cache;
        o.queue_capacity = 4;
        if (round % 3 == 0) o.key_regex = "k[0-2]";
        auto sub = topic.subscribe(o);
        std::uint64_t last = 0;
        for (int k = 0; k < 10; ++k) {
          auto s = sub->next(5s);
          if (!s) {
            ++bad;
            break;
          }
          if ((*s)->seq <= last) ++bad;
          if (round % 3 == 0 && (*s)->key > "k2") ++bad;
          last = (*s)->seq;
        }
        if (round % 2) sub->close();
      }
    });
  }
  for (auto& t : churners) t.join();
  stop = true;
  publisher.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(topic.subscriber_count(), 0u);
}

TEST(TopicConcurrency, notify_runs_on_the_publishing_thread_for_every_accepted_sample) {
  Topic topic("notify");
  auto sub = topic.subscribe(queue_opts(100000));
  std::atomic<int> notified{0};
  sub->set_notify([&] { ++notified; });
  std::vector<std::thread> publishers;
  for (int p = 0; p < 3; ++p) {
    publishers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) topic.publish("k", indexed(i));
    });
  }
  for (auto& t : publishers) t.join();
  EXPECT_EQ(notified.load(), 1500);
  EXPECT_EQ(sub->pending(), 1500u);
}

}  // namespace
}  // namespace acheron::hub
