// The loop DHS's JPEG receiver against careless and hostile clients: slow
// requests are cut at the whole-request deadline without stalling a
// well-behaved camera, POSTs need the shared token when one is configured,
// connections over the limit are refused, headers and bodies are bounded,
// and in every case the receiver keeps serving the camera. Real sockets on
// loopback, ephemeral ports.
#include <gtest/gtest.h>

#include <httplib.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "TestWait.hh"
#include "acheron/core/Error.hh"
#include "acheron/dcss/Camera.hh"
#include "acheron/dcss/JpegReceiver.hh"
#include "acheron/dcss/Socket.hh"

namespace acheron::dcss {
namespace {

using namespace std::chrono_literals;

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

using test_support::eventually;

// What the receiver hands over.
class Images final {
 public:
  JpegReceiver::Callback callback() {
    return [this](std::string image, std::string) {
      std::lock_guard lock(mutex_);
      images_.push_back(std::move(image));
    };
  }
  std::vector<std::string> all() const {
    std::lock_guard lock(mutex_);
    return images_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> images_;
};

JpegReceiverOptions test_options() {
  JpegReceiverOptions o;
  o.port = 0;
  return o;
}

// A JPEG-looking body of exactly `size` bytes that differs with `seed`.
std::string frame(int seed, std::size_t size) {
  std::string s(size, static_cast<char>('a' + seed % 26));
  s[0] = '\xFF';
  s[1] = '\xD8';
  return s;
}

httplib::Result post(std::uint16_t port, const std::string& path, const std::string& body,
                     Duration timeout = 3s) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(timeout);
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(timeout);
  return cli.Post(path, body, "image/jpeg");
}

// Sends `request` and reads the reply until the receiver closes the
// connection (or `timeout` passes).
std::string exchange(std::uint16_t port, std::string_view request, Duration timeout = 3s) {
  auto s = Socket::connect("127.0.0.1", port, 2s);
  EXPECT_TRUE(s.ok());
  if (!s.ok()) return {};
  (void)s->write_all(request, timeout);  // a refusing receiver may close before all is sent
  const auto deadline = Clock::now() + timeout;
  std::string reply;
  char buf[4096];
  std::size_t n = 0;
  while (Clock::now() < deadline &&
         s->read_some(buf, sizeof buf, &n, deadline - Clock::now()) == IoStatus::ok) {
    reply.append(buf, n);
  }
  return reply;
}

std::string post_request(std::string_view path, std::size_t length, std::string_view extra = {}) {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: " +
         std::to_string(length) + "\r\n" + std::string(extra) + "\r\n";
}

// Connections that send a request line and then one header line every
// `period`, never finishing their headers (a slowloris). Records when the
// receiver closes each.
class Dribblers final {
 public:
  Dribblers(std::uint16_t port, int count, Duration period) {
    for (int i = 0; i < count; ++i) {
      auto s = Socket::connect("127.0.0.1", port, 2s);
      EXPECT_TRUE(s.ok()) << s.error().message;
      if (!s.ok()) continue;
      EXPECT_EQ(s->write_all("POST /jpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n", 1s), IoStatus::ok);
      sockets_.push_back(std::move(*s));
    }
    closed_.assign(sockets_.size(), false);
    thread_ = std::thread([this, period] { run(period); });
  }
  ~Dribblers() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Dribblers(const Dribblers&) = delete;
  Dribblers& operator=(const Dribblers&) = delete;

  // Waits until the receiver has closed every connection.
  bool wait_all_closed(Duration timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return closed_count_ == sockets_.size(); });
  }
  std::size_t closed() const {
    std::lock_guard lock(mutex_);
    return closed_count_;
  }

 private:
  void run(Duration period) {
    int line = 0;
    std::unique_lock lock(mutex_);
    while (!stop_) {
      for (std::size_t i = 0; i < sockets_.size(); ++i) {
        if (closed_[i]) continue;
        char buf[512];
        std::size_t n = 0;
        auto st = sockets_[i].read_some(buf, sizeof buf, &n, 0ms);
        if (st == IoStatus::timeout) {
          st = sockets_[i].write_all("X-Slow-" + std::to_string(line) + ": 1\r\n", 100ms);
        }
        if (st == IoStatus::closed || st == IoStatus::error) {
          closed_[i] = true;
          ++closed_count_;
        }
      }
      ++line;
      cv_.notify_all();
      cv_.wait_for(lock, period, [&] { return stop_; });  // the dribble's pace
    }
  }

  std::vector<Socket> sockets_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<bool> closed_;
  std::size_t closed_count_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

TEST(JpegReceiver, ListensOnLoopbackByDefault) {
  Images images;
  JpegReceiver rx(test_options(), images.callback());
  rx.start();
  EXPECT_EQ(rx.address(), "127.0.0.1");
  auto res = post(rx.port(), "/jpeg", frame(1, 100));
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  auto o = test_options();
  o.bind = "0.0.0.0";  // only when configured
  JpegReceiver any(o, images.callback());
  any.start();
  EXPECT_EQ(any.address(), "0.0.0.0");
}

// Thirty connections dribbling header lines must not delay a camera's frame:
// it is accepted at once, not after the slow ones' deadline; the slow ones
// are closed at the whole-request deadline although they never pause long
// enough for a per-read timeout.
TEST(JpegReceiver, SlowHeadersDoNotStallAWellBehavedCamera) {
  auto o = test_options();
  o.request_timeout_s = 3;
  Images images;
  JpegReceiver rx(o, images.callback());
  rx.start();
  const auto t0 = Clock::now();
  Dribblers slow(rx.port(), 30, 250ms);
  const auto jpeg = make_test_jpeg(320, 240, 7);
  const auto t1 = Clock::now();
  auto res = post(rx.port(), "/jpeg", jpeg, 3s);
  const auto took = Clock::now() - t1;
  ASSERT_TRUE(res) << httplib::to_string(res.error()) << " after " << seconds(took) << " s";
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(took, 1s) << "the frame waited for the slow connections";
  EXPECT_EQ(slow.closed(), 0u);
  ASSERT_TRUE(slow.wait_all_closed(3s + 2s))
      << slow.closed() << " of 30 slow connections closed after " << seconds(Clock::now() - t0)
      << " s";
  EXPECT_GE(Clock::now() - t0, 2.7s);  // at the deadline, not before
  // (counted just after the receiver closes the connection)
  EXPECT_TRUE(eventually([&] { return rx.counters().timed_out.load() == 30; }, 1s))
      << rx.counters().timed_out.load();
  res = post(rx.port(), "/jpeg", jpeg);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const auto got = images.all();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], jpeg);
  EXPECT_TRUE(eventually([&] { return rx.counters().connections.load() == 0; }, 2s));
}

// A body sent a byte at a time is cut at the deadline too.
TEST(JpegReceiver, SlowBodyIsCutAtTheDeadline) {
  auto o = test_options();
  o.request_timeout_s = 1;
  Images images;
  JpegReceiver rx(o, images.callback());
  rx.start();
  auto s = Socket::connect("127.0.0.1", rx.port(), 2s);
  ASSERT_TRUE(s.ok());
  const auto t0 = Clock::now();
  ASSERT_EQ(s->write_all(post_request("/jpeg", 1000) + "\xFF\xD8", 1s), IoStatus::ok);
  IoStatus st = IoStatus::ok;
  while (st == IoStatus::ok && Clock::now() - t0 < 5s) {
    char c = 0;
    std::size_t n = 0;
    st = s->read_some(&c, 1, &n, 100ms);  // the receiver closing ends this
    if (st == IoStatus::timeout) st = s->write_all("x", 100ms);
  }
  const auto took = Clock::now() - t0;
  EXPECT_TRUE(st == IoStatus::closed || st == IoStatus::error);
  EXPECT_GE(took, 0.8s);
  EXPECT_LT(took, 2.5s) << "closed after " << seconds(took) << " s";
  EXPECT_TRUE(images.all().empty());
  EXPECT_TRUE(eventually([&] { return rx.counters().timed_out.load() == 1; }, 1s));
}

TEST(JpegReceiver, PostsWithoutTheTokenAreRefused) {
  auto o = test_options();
  o.token = "s3cret-Token_1";
  Images images;
  JpegReceiver rx(o, images.callback());
  rx.start();
  const auto jpeg = frame(3, 2000);
  for (const char* path : {"/jpeg", "/jpeg?token=", "/jpeg?token=wrong", "/jpeg?token=s3cret-Token",
                           "/jpeg?token=s3cret-Token_1x", "/jpeg?tok=s3cret-Token_1"}) {
    auto res = post(rx.port(), path, jpeg);
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 401) << path;
  }
  // Refused before the body is asked for.
  const auto reply =
      exchange(rx.port(), post_request("/jpeg", jpeg.size(), "Expect: 100-continue\r\n"));
  EXPECT_NE(reply.find(" 401 "), std::string::npos) << reply;
  EXPECT_EQ(reply.find("100 Continue"), std::string::npos) << reply;
  EXPECT_TRUE(images.all().empty());
  EXPECT_EQ(rx.received(), 0u);
  EXPECT_EQ(rx.counters().unauthorized.load(), 7u);
  // With it (anywhere in the query, percent-encoded or not): accepted.
  for (const char* path : {"/jpeg?token=s3cret-Token_1", "/any/path?camera=1&token=s3cret-Token_1",
                           "/jpeg?token=%733cret-Token_1"}) {
    auto res = post(rx.port(), path, jpeg);
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << path;
  }
  const auto got = images.all();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& g : got) EXPECT_EQ(g, jpeg);
}

TEST(JpegReceiver, ConnectionsOverTheLimitAreRefused) {
  auto o = test_options();
  o.max_connections = 4;
  o.request_timeout_s = 10;  // the holders stay for the whole test
  Images images;
  JpegReceiver rx(o, images.callback());
  rx.start();
  std::vector<Socket> holders;
  for (int i = 0; i < 4; ++i) {
    auto s = Socket::connect("127.0.0.1", rx.port(), 2s);
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(s->write_all("POST /jpeg HTTP/1.1\r\n", 1s), IoStatus::ok);
    holders.push_back(std::move(*s));
  }
  ASSERT_TRUE(eventually([&] { return rx.counters().connections.load() == 4; }, 2s));
  // A fifth is answered 503 (or just closed) at once, not at any deadline.
  const auto t0 = Clock::now();
  const auto reply = exchange(rx.port(), post_request("/jpeg", 4) + "\xFF\xD8xx", 5s);
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_TRUE(reply.empty() || reply.starts_with("HTTP/1.1 503")) << reply;
  const auto again = exchange(rx.port(), post_request("/jpeg", 100) + frame(1, 100), 5s);
  EXPECT_TRUE(again.empty() || again.starts_with("HTTP/1.1 503")) << again;
  EXPECT_EQ(rx.counters().refused.load(), 2u);
  EXPECT_EQ(rx.counters().connections.load(), 4u);
  EXPECT_TRUE(images.all().empty());
  // The receiver keeps serving once connections end.
  holders.clear();
  ASSERT_TRUE(eventually([&] { return rx.counters().connections.load() == 0; }, 2s));
  for (int i = 0; i < 8; ++i) {  // more than the limit, one after the other
    auto res = post(rx.port(), "/jpeg", frame(i, 100));
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_EQ(images.all().size(), 8u);
  EXPECT_EQ(rx.counters().refused.load(), 2u);
}

// Oversize bodies (with a length, or chunked) get 413 while another client's
// frames all arrive intact; a body of exactly max_bytes is accepted.
TEST(JpegReceiver, OversizeBodiesAre413AndNothingIsLostForOthers) {
  auto o = test_options();
  o.max_bytes = 64 * 1024;
  Images images;
  JpegReceiver rx(o, images.callback());
  rx.start();
  std::thread big([&] {
    for (int i = 0; i < 5; ++i) {
      auto res = post(rx.port(), "/jpeg", frame(i, o.max_bytes + 1));
      ASSERT_TRUE(res) << httplib::to_string(res.error());
      EXPECT_EQ(res->status, 413);
    }
  });
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(frame(i, 1000 + static_cast<std::size_t>(i) * 3000));
    auto res = post(rx.port(), "/jpeg", sent.back());
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }
  big.join();
  EXPECT_EQ(images.all(), sent);
  EXPECT_EQ(rx.counters().rejected.load(), 5u);

  sent.push_back(frame(30, o.max_bytes));
  auto res = post(rx.port(), "/jpeg", sent.back());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  const std::string chunked_head =
      "POST /jpeg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  auto chunk = [](const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
  };
  const auto half = frame(31, 40000);
  auto reply = exchange(rx.port(), chunked_head + chunk(half) + chunk(half) + "0\r\n\r\n");
  EXPECT_NE(reply.find(" 413 "), std::string::npos) << reply.substr(0, 200);
  reply = exchange(rx.port(), chunked_head + chunk(half) + chunk("tail") + "0\r\n\r\n");
  EXPECT_NE(reply.find(" 200 "), std::string::npos) << reply.substr(0, 200);
  sent.push_back(half + "tail");
  EXPECT_EQ(images.all(), sent);
  EXPECT_EQ(rx.received(), 22u);
}

TEST(JpegReceiver, RequestsOutsideTheRulesAreRefused) {
  auto o = test_options();
  o.max_header_bytes = 1024;
  Images images;
  JpegReceiver rx(o, images.callback());
  rx.start();
  const auto long_header = "X-Padding: " + std::string(2000, 'p') + "\r\n";
  EXPECT_NE(exchange(rx.port(), post_request("/jpeg", 2, long_header) + "\xFF\xD8").find(" 431 "),
            std::string::npos);
  EXPECT_NE(exchange(rx.port(), "GET /jpeg HTTP/1.1\r\nHost: x\r\n\r\n").find(" 405 "),
            std::string::npos);
  EXPECT_NE(exchange(rx.port(), "NOT HTTP AT ALL\r\n\r\n").find(" 400 "), std::string::npos);
  EXPECT_NE(exchange(rx.port(),
                     "POST /jpeg HTTP/1.1\r\nContent-Type: image/jpeg\r\nContent-Length: x\r\n\r\n")
                .find(" 400 "),
            std::string::npos);
  EXPECT_TRUE(images.all().empty());
  EXPECT_EQ(rx.counters().rejected.load(), 4u);
  auto res = post(rx.port(), "/jpeg", frame(1, 500));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(JpegReceiver, InvalidOptionsAreSetupErrors) {
  Images images;
  auto bad = [&](auto change) {
    auto o = test_options();
    change(o);
    EXPECT_TRUE(o.problem());
    EXPECT_THROW(JpegReceiver(o, images.callback()), SetupError);
  };
  EXPECT_FALSE(JpegReceiverOptions{}.problem());
  bad([](JpegReceiverOptions& o) { o.max_connections = 0; });
  bad([](JpegReceiverOptions& o) { o.request_timeout_s = 0; });
  bad([](JpegReceiverOptions& o) { o.request_timeout_s = std::nan(""); });
  bad([](JpegReceiverOptions& o) { o.max_header_bytes = 10; });
  bad([](JpegReceiverOptions& o) { o.max_bytes = 0; });
  bad([](JpegReceiverOptions& o) { o.token = "two words"; });
  bad([](JpegReceiverOptions& o) { o.bind = ""; });
  // An address of no interface here, and a port already taken: errors at start.
  auto o = test_options();
  o.bind = "192.0.2.1";  // TEST-NET-1 (RFC 5737)
  JpegReceiver elsewhere(o, images.callback());
  EXPECT_THROW(elsewhere.start(), SetupError);
  JpegReceiver first(test_options(), images.callback());
  first.start();
  o = test_options();
  o.port = first.port();
  JpegReceiver second(o, images.callback());
  EXPECT_THROW(second.start(), SetupError);
}

}  // namespace
}  // namespace acheron::dcss
