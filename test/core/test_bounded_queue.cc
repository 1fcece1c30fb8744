// BoundedQueue: FIFO order, the bound (try_push fails, push waits for room),
// close() releasing waiters, and order per producer under contention.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "acheron/core/BoundedQueue.hh"
#include "acheron/core/Error.hh"

namespace acheron {
namespace {

TEST(BoundedQueue, HandsItemsOutInOrder) {
  BoundedQueue<int> q(4);
  EXPECT_TRUE(q.push(1));
  EXPECT_TRUE(q.push(2));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.try_pop(), 2);
  EXPECT_EQ(q.try_pop(), std::nullopt);
}

TEST(BoundedQueue, AFullQueueRefusesTryPushAndKeepsTheItem) {
  BoundedQueue<std::string> q(2);
  EXPECT_TRUE(q.try_push(std::string("a")));
  EXPECT_TRUE(q.try_push(std::string("b")));
  std::string c = "c";
  EXPECT_FALSE(q.try_push(c));
  EXPECT_EQ(c, "c");  // not moved from
  EXPECT_EQ(q.size(), 2u);
}

TEST(BoundedQueue, PushWaitsForRoomUntilAnItemIsTaken) {
  BoundedQueue<int> q(1);
  ASSERT_TRUE(q.push(1));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    pushed = q.push(2);  // waits: the queue is full
  });
  // The producer cannot finish before the pop below makes room.
  EXPECT_EQ(q.pop(), 1);
  producer.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(q.pop(), 2);
}

TEST(BoundedQueue, CloseReleasesWaitersAndKeepsQueuedItems) {
  BoundedQueue<int> q(1);
  ASSERT_TRUE(q.push(7));
  std::thread blocked_producer([&] { EXPECT_FALSE(q.push(8)); });
  q.close();
  blocked_producer.join();
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.try_push(9));
  EXPECT_EQ(q.pop(), 7);             // queued before close
  EXPECT_EQ(q.pop(), std::nullopt);  // closed and empty: no wait
}

TEST(BoundedQueue, ManyProducersKeepTheirOwnOrder) {
  constexpr int kProducers = 4, kItems = 5000;
  BoundedQueue<std::pair<int, int>> q(8);  // small: producers wait often
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kItems; ++i) ASSERT_TRUE(q.push({p, i}));
    });
  }
  std::vector<int> next(kProducers, 0);
  for (int n = 0; n < kProducers * kItems; ++n) {
    auto item = q.pop();
    ASSERT_TRUE(item);
    EXPECT_EQ(item->second, next[item->first]) << "producer " << item->first;
    next[item->first] = item->second + 1;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(q.try_pop(), std::nullopt);
}

TEST(BoundedQueue, ZeroCapacityIsASetupError) {
  EXPECT_THROW(BoundedQueue<int>(0), SetupError);
}

}  // namespace
}  // namespace acheron
