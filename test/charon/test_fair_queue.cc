// FairQueue: clients are served in turn, by host and then by connection,
// weighted by cost; no client can push another behind its backlog.
#include <gtest/gtest.h>

#include <algorithm>

#include <string>
#include <vector>

#include "acheron/charon/FairQueue.hh"

namespace acheron::charon {
namespace {

ClientId client(std::string host, std::string connection) {
  return {std::move(host), std::move(connection)};
}

std::vector<std::string> drain(FairQueue<std::string>& q) {
  std::vector<std::string> out;
  while (!q.empty()) {
    const std::string next = q.front();
    out.push_back(q.pop());
    EXPECT_EQ(out.back(), next) << "front() and pop() disagree";
  }
  return out;
}

// Position of `item` in `order` (order.size() if absent).
std::size_t position(const std::vector<std::string>& order, const std::string& item) {
  return static_cast<std::size_t>(std::find(order.begin(), order.end(), item) - order.begin());
}

TEST(FairQueue, OneClientIsServedInArrivalOrder) {
  FairQueue<std::string> q;
  for (int i = 0; i < 5; ++i)
    q.push(client("10.0.0.1", "a"), 100 + i * 1000, "a" + std::to_string(i));
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.hosts(), 0u);
  EXPECT_EQ(q.connections(), 0u);
}

// The case a FIFO gets wrong: A queues 200 requests, then B sends one. B
// goes next after A's current head, not after all 200.
TEST(FairQueue, ALateSmallClientIsNotQueuedBehindABacklog) {
  FairQueue<std::string> q;
  for (int i = 0; i < 200; ++i)
    q.push(client("10.0.0.1", "a"), request_cost(100), "a" + std::to_string(i));
  // A is being served meanwhile.
  std::vector<std::string> served;
  for (int i = 0; i < 3; ++i) served.push_back(q.pop());
  q.push(client("10.0.0.2", "b"), request_cost(100), "b");
  auto rest = drain(q);
  served.insert(served.end(), rest.begin(), rest.end());
  // At most one more of A's goes first (A is older at the same pass).
  EXPECT_LE(position(served, "b"), 4u) << "B must not wait behind A's backlog";
  // A's own order is kept.
  std::vector<std::string> a;
  for (const auto& s : served) {
    if (s != "b") a.push_back(s);
  }
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a[i], "a" + std::to_string(i));
}

// The same on one host (loopback): two sockets are two clients.
TEST(FairQueue, ConnectionsOfOneHostAreServedInTurn) {
  FairQueue<std::string> q;
  for (int i = 0; i < 200; ++i)
    q.push(client("127.0.0.1", "dealer"), request_cost(100), "a" + std::to_string(i));
  q.push(client("127.0.0.1", "req"), request_cost(100), "b");
  auto order = drain(q);
  EXPECT_LE(position(order, "b"), 1u);
}

TEST(FairQueue, BackloggedClientsOfEqualCostAlternate) {
  FairQueue<std::string> q;
  for (int i = 0; i < 4; ++i) q.push(client("h1", "a"), 10, "a" + std::to_string(i));
  for (int i = 0; i < 4; ++i) q.push(client("h2", "b"), 10, "b" + std::to_string(i));
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"}));
}

// Cost is photons: a client of 1,000,000-photon events gets one served
// while a client of small events gets as many photons' worth.
TEST(FairQueue, SharesAreWeightedByCost) {
  FairQueue<std::string> q;
  for (int i = 0; i < 3; ++i)
    q.push(client("big", "a"), request_cost(1'000'000), "A" + std::to_string(i));
  for (int i = 0; i < 2000; ++i)
    q.push(client("small", "b"), request_cost(1'000), "b" + std::to_string(i));
  auto order = drain(q);
  // Between A's first and second event, B gets 1,001,000 / 2,000 ≈ 500.
  const auto a0 = position(order, "A0"), a1 = position(order, "A1"), a2 = position(order, "A2");
  ASSERT_LT(a1, order.size());
  EXPECT_NEAR(static_cast<double>(a1 - a0 - 1), 500.0, 2.0);
  EXPECT_NEAR(static_cast<double>(a2 - a1 - 1), 500.0, 2.0);
  EXPECT_LE(a0, 1u);
}

// Many sockets from one host (RAT-PAC opens a new REQ socket per request)
// share that host's turn: another host still gets every other request.
TEST(FairQueue, ManySocketsOfOneHostShareItsTurn) {
  FairQueue<std::string> q;
  for (int i = 0; i < 100; ++i)
    q.push(client("crowd", "s" + std::to_string(i)), 10, "c" + std::to_string(i));
  for (int i = 0; i < 10; ++i) q.push(client("lone", "x"), 10, "x" + std::to_string(i));
  auto order = drain(q);
  // The lone host's 10 requests are all among the first 20 served.
  for (int i = 0; i < 10; ++i) EXPECT_LT(position(order, "x" + std::to_string(i)), 20u) << i;
  // The crowd's sockets are served in the order they became active.
  std::vector<std::string> crowd;
  for (const auto& s : order) {
    if (s[0] == 'c') crowd.push_back(s);
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(crowd[i], "c" + std::to_string(i));
}

// A client that was idle gets no credit for it: it starts at the clock, so
// it cannot then run a long burst ahead of a client that was busy.
TEST(FairQueue, IdleTimeEarnsNoCredit) {
  FairQueue<std::string> q;
  for (int i = 0; i < 100; ++i) q.push(client("h1", "a"), 10, "a" + std::to_string(i));
  for (int i = 0; i < 50; ++i) q.pop();  // only A was served for a while
  for (int i = 0; i < 10; ++i) q.push(client("h2", "b"), 10, "b" + std::to_string(i));
  auto order = drain(q);
  // Strict alternation from here: B starts level with A, behind it.
  ASSERT_GE(order.size(), 20u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(order[2 * i], "a" + std::to_string(50 + i));
    EXPECT_EQ(order[2 * i + 1], "b" + std::to_string(i));
  }
}

// RAT-PAC opens a new REQ socket for every request: five such clients on a
// host keep one request each queued all the time. A DEALER client with a
// backlog on the same host still gets one request in six.
TEST(FairQueue, OneRequestSocketsDoNotStarveABacklog) {
  FairQueue<std::string> q;
  for (int i = 0; i < 100; ++i) q.push(client("h", "dealer"), request_cost(100), "d");
  int next_socket = 0;
  for (int i = 0; i < 5; ++i) {
    q.push(client("h", "req" + std::to_string(next_socket++)), request_cost(100), "r");
  }
  int dealer = 0;
  for (int i = 0; i < 60; ++i) {
    if (q.pop() == "d") {
      ++dealer;
    } else {
      // That client's reply went out; its next request comes on a new socket.
      q.push(client("h", "req" + std::to_string(next_socket++)), request_cost(100), "r");
    }
  }
  EXPECT_EQ(dealer, 10);
}

TEST(FairQueue, CountsPerHostAndRemovesByPredicate) {
  FairQueue<std::string> q;
  for (int i = 0; i < 6; ++i) q.push(client("h1", "a"), 10, "a" + std::to_string(i));
  q.push(client("h1", "b"), 10, "b0");
  q.push(client("h2", "c"), 10, "c0");
  EXPECT_EQ(q.queued("h1"), 7u);
  EXPECT_EQ(q.queued("h2"), 1u);
  EXPECT_EQ(q.queued("h3"), 0u);
  EXPECT_EQ(q.hosts(), 2u);
  EXPECT_EQ(q.connections(), 3u);

  // Remove A's even requests and all of h2.
  const auto removed = q.remove_if(
      [](const std::string& s) { return s == "c0" || (s[0] == 'a' && (s[1] - '0') % 2 == 0); });
  EXPECT_EQ(removed, 4u);
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.queued("h1"), 4u);
  EXPECT_EQ(q.queued("h2"), 0u);
  EXPECT_EQ(q.hosts(), 1u);
  std::vector<std::string> seen;
  q.for_each([&](const std::string& s) { seen.push_back(s); });
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a1", "b0", "a3", "a5"}));

  // Removing everything leaves an empty queue that works again.
  q.push(client("h1", "a"), 1, "x");
  EXPECT_EQ(q.remove_if([](const std::string&) { return true; }), 1u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.hosts(), 0u);
  q.push(client("h9", "z"), 1, "y");
  EXPECT_EQ(q.pop(), "y");
}

TEST(FairQueue, EmptyQueueRefusesFrontAndPop) {
  FairQueue<int> q;
  EXPECT_THROW(q.front(), SetupError);
  EXPECT_THROW(q.pop(), SetupError);
}

TEST(FairQueue, ClientOfARouteIsPeerAndIdentity) {
  const std::vector<Buffer> route = {Buffer::copy_of(std::string_view("\0abcd", 5)), Buffer{}};
  const auto c = client_of("192.0.2.7", route);
  EXPECT_EQ(c.host, "192.0.2.7");
  EXPECT_EQ(c.connection, std::string("\0abcd", 5));
  EXPECT_EQ(client_of("", {}).connection, "");
  EXPECT_EQ(request_cost(0), kRequestCostPhotons);
}

}  // namespace
}  // namespace acheron::charon
