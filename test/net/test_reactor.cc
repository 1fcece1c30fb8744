// net::Reactor: handlers, posted tasks and timers run on the one reactor
// thread; posts keep each poster's order; a full inbox pushes back; stop()
// runs what was posted and closes the sockets without hanging. Every wait
// is on an event (futures, joins), none on the clock.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "acheron/core/Error.hh"
#include "acheron/net/Reactor.hh"

namespace acheron::net {
namespace {

std::string text(const Buffer& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
Buffer bytes(std::string_view s) {
  Buffer b = Buffer::allocate(s.size());
  std::memcpy(b.mutable_data(), s.data(), s.size());
  return b;
}

// A PAIR owned by the reactor and its peer used by the test thread.
struct Pair {
  zmq::context_t context{1};
  zmq::socket_t peer{context, zmq::socket_type::pair};
  zmq::socket_t owned{context, zmq::socket_type::pair};
  Pair() {
    static std::atomic<int> n{0};
    const std::string ep = "inproc://reactor-test-" + std::to_string(n++);
    owned.bind(ep);
    peer.connect(ep);
    set_linger(peer, std::chrono::milliseconds(0));
  }
};

TEST(Reactor, HandlersRunOnTheReactorThreadAndRepliesGoOutThere) {
  Pair p;
  Reactor reactor({.name = "test-reactor"});
  std::promise<std::thread::id> handler_thread;
  std::thread::id reactor_thread;
  zmq::socket_t* owned = nullptr;
  owned = &reactor.add(std::move(p.owned), [&](zmq::socket_t& s) {
    std::vector<Buffer> frames;
    while (recv_frames(s, frames, zmq::recv_flags::dontwait)) {
      EXPECT_TRUE(reactor.in_reactor_thread());
      // Answered by another thread, sent by the reactor.
      std::thread worker([&reactor, owned, msg = text(frames.at(0))] {
        EXPECT_FALSE(reactor.in_reactor_thread());
        EXPECT_TRUE(reactor.post([owned, msg] { send_frames(*owned, {bytes("re:" + msg)}); }));
      });
      worker.join();
    }
  });
  reactor.start();
  ASSERT_TRUE(reactor.post([&] { handler_thread.set_value(std::this_thread::get_id()); }));
  reactor_thread = handler_thread.get_future().get();
  EXPECT_NE(reactor_thread, std::this_thread::get_id());
  EXPECT_FALSE(reactor.in_reactor_thread());
  for (std::string m : {"a", "b", "c"}) {
    ASSERT_TRUE(send_frames(p.peer, {bytes(m)}));
    std::vector<Buffer> reply;
    ASSERT_TRUE(recv_frames(p.peer, reply));
    EXPECT_EQ(text(reply.at(0)), "re:" + m);
  }
  reactor.stop();
}

TEST(Reactor, PostsFromManyThreadsArriveInOrderPerPoster) {
  constexpr int kPosters = 6, kTasks = 3000;
  Reactor reactor({.inbox_capacity = 16});  // small: posters wait for room
  reactor.start();
  std::vector<int> next(kPosters, 0);  // reactor thread only
  std::atomic<int> out_of_order{0}, wrong_thread{0};
  std::vector<std::thread> posters;
  for (int p = 0; p < kPosters; ++p) {
    posters.emplace_back([&, p] {
      for (int i = 0; i < kTasks; ++i) {
        ASSERT_TRUE(reactor.post([&, p, i] {
          if (!reactor.in_reactor_thread()) ++wrong_thread;
          if (next[p] != i) ++out_of_order;
          next[p] = i + 1;
        }));
      }
    });
  }
  for (auto& t : posters) t.join();
  std::promise<std::vector<int>> seen;
  ASSERT_TRUE(reactor.post([&] { seen.set_value(next); }));
  EXPECT_EQ(seen.get_future().get(), std::vector<int>(kPosters, kTasks));
  EXPECT_EQ(out_of_order.load(), 0);
  EXPECT_EQ(wrong_thread.load(), 0);
  reactor.stop();
}

TEST(Reactor, AFullInboxPushesBackOnPosters) {
  Reactor reactor({.inbox_capacity = 2});
  reactor.start();
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  ASSERT_TRUE(reactor.post([&, released] {
    entered.set_value();
    released.wait();  // keeps the reactor busy: nothing is taken from the inbox
  }));
  entered.get_future().wait();
  std::atomic<int> ran{0};
  Reactor::Task t1 = [&] { ++ran; }, t2 = [&] { ++ran; }, t3 = [&] { ++ran; };
  EXPECT_TRUE(reactor.try_post(t1));
  EXPECT_TRUE(reactor.try_post(t2));
  EXPECT_FALSE(reactor.try_post(t3));  // full: refused, not queued
  EXPECT_TRUE(t3);                     // and left with the caller
  std::promise<void> blocked_done;
  std::thread blocked([&] {
    EXPECT_TRUE(reactor.post([&] { ++ran; }));  // waits for room
    blocked_done.set_value();
  });
  release.set_value();
  blocked_done.get_future().wait();
  blocked.join();
  std::promise<int> count;
  ASSERT_TRUE(reactor.post([&] { count.set_value(ran.load()); }));
  EXPECT_EQ(count.get_future().get(), 3);
  reactor.stop();
}

TEST(Reactor, TimersRunInDeadlineOrderAndCancelledOnesNever) {
  Reactor reactor;
  reactor.start();
  std::vector<std::string> order;  // reactor thread only
  std::promise<std::vector<std::string>> done;
  ASSERT_TRUE(reactor.post([&] {
    const auto t0 = Clock::now();
    using std::chrono::milliseconds;
    reactor.add_timer(t0 + milliseconds(30), [&] {
      order.push_back("30");
      done.set_value(order);
    });
    reactor.add_timer(t0 + milliseconds(10), [&] { order.push_back("10a"); });
    const auto cancelled = reactor.add_timer(t0 + milliseconds(5), [&] { order.push_back("x"); });
    reactor.add_timer(t0 + milliseconds(20), [&] {
      EXPECT_TRUE(reactor.in_reactor_thread());
      order.push_back("20");
    });
    reactor.add_timer(t0 + milliseconds(10),
                      [&] { order.push_back("10b"); });  // same time: after 10a
    reactor.add_timer(t0, [&] { order.push_back("0"); });
    EXPECT_TRUE(reactor.cancel_timer(cancelled));
    EXPECT_FALSE(reactor.cancel_timer(cancelled));
  }));
  EXPECT_EQ(done.get_future().get(), (std::vector<std::string>{"0", "10a", "10b", "20", "30"}));
  reactor.stop();
}

TEST(Reactor, StopRunsPendingWorkSendsItAndRefusesLaterPosts) {
  Pair p;
  Reactor reactor({.inbox_capacity = 256});
  zmq::socket_t& owned = reactor.add(std::move(p.owned), [](zmq::socket_t&) {});
  reactor.start();
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  ASSERT_TRUE(reactor.post([&, released] {
    entered.set_value();
    released.wait();
  }));
  entered.get_future().wait();
  std::atomic<int> ran{0};
  constexpr int kPending = 100;
  for (int i = 0; i < kPending; ++i) {
    ASSERT_TRUE(reactor.post([&, i] {
      ++ran;
      send_frames(owned, {bytes(std::to_string(i))}, zmq::send_flags::dontwait);
    }));
  }
  EXPECT_TRUE(reactor.running());
  std::thread stopper([&] { reactor.stop(); });  // waits for the blocked task
  release.set_value();
  stopper.join();
  EXPECT_EQ(ran.load(), kPending);
  EXPECT_FALSE(reactor.running());
  EXPECT_FALSE(reactor.post([&] { ++ran; }));
  EXPECT_EQ(ran.load(), kPending);
  for (int i = 0; i < kPending; ++i) {  // every pending reply went out, in order
    std::vector<Buffer> frames;
    ASSERT_TRUE(recv_frames(p.peer, frames));
    EXPECT_EQ(text(frames.at(0)), std::to_string(i));
  }
  reactor.stop();  // idempotent
}

TEST(Reactor, StopReleasesAPosterWaitingForRoom) {
  Reactor reactor({.inbox_capacity = 1});
  reactor.start();
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  ASSERT_TRUE(reactor.post([&, released] {
    entered.set_value();
    released.wait();
  }));
  entered.get_future().wait();
  ASSERT_TRUE(reactor.post([] {}));  // fills the inbox
  std::atomic<int> outcome{-1};
  std::thread poster([&] { outcome = reactor.post([] {}) ? 1 : 0; });
  std::thread stopper([&] { reactor.stop(); });
  release.set_value();
  poster.join();  // returns: either its task ran before the stop or it was refused
  stopper.join();
  EXPECT_NE(outcome.load(), -1);
}

TEST(Reactor, ATaskThatThrowsDoesNotStopTheReactor) {
  Reactor reactor;
  reactor.start();
  ASSERT_TRUE(reactor.post([] { throw std::runtime_error("boom"); }));
  std::promise<bool> after;
  ASSERT_TRUE(reactor.post([&] { after.set_value(true); }));
  EXPECT_TRUE(after.get_future().get());
  reactor.stop();
}

TEST(Reactor, SocketsAreAddedBeforeStartOrOnTheReactorThread) {
  Pair p;
  Reactor reactor;
  reactor.start();
  EXPECT_THROW(reactor.add(zmq::socket_t(p.context, zmq::socket_type::pair), [](zmq::socket_t&) {}),
               SetupError);
  EXPECT_THROW(reactor.add_timer(Clock::now(), [] {}), SetupError);
  // On the reactor thread it works, and the socket is then polled.
  std::promise<std::string> got;
  ASSERT_TRUE(reactor.post([&] {
    reactor.add(std::move(p.owned), [&](zmq::socket_t& s) {
      std::vector<Buffer> frames;
      if (recv_frames(s, frames, zmq::recv_flags::dontwait)) got.set_value(text(frames.at(0)));
    });
  }));
  ASSERT_TRUE(send_frames(p.peer, {bytes("late")}));
  EXPECT_EQ(got.get_future().get(), "late");
  reactor.stop();
}

TEST(Reactor, AReactorNeverStartedClosesItsSockets) {
  Pair p;
  {
    Reactor reactor;
    reactor.add(std::move(p.owned), [](zmq::socket_t&) {});
    EXPECT_FALSE(reactor.running());
  }  // no hang: closed with linger 0
  SUCCEED();
}

}  // namespace
}  // namespace acheron::net
