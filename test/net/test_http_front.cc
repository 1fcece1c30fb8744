// The HTTP status front: routes, errors, limits, metrics and event streams,
// over real loopback connections.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "acheron/core/Error.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::net {
namespace {

using ::testing::HasSubstr;

struct Reply {
  int status = 0;
  std::string head;
  std::string body;
};

// A connected socket to 127.0.0.1:port; -1 on failure.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};  // a hung server fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

Reply split(const std::string& raw) {
  Reply r;
  const auto end = raw.find("\r\n\r\n");
  r.head = raw.substr(0, end);
  r.body = end == std::string::npos ? "" : raw.substr(end + 4);
  if (raw.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(raw.substr(9, 3));
  return r;
}

// One request on its own connection (Connection: close), read to the end.
Reply request(int port, const std::string& method, const std::string& path,
              const std::string& extra = {}) {
  const int fd = connect_to(port);
  if (fd < 0) return {};
  send_all(fd, method + " " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + extra +
                   "\r\n");
  std::string raw;
  char buf[4096];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return split(raw);
}

Reply get(int port, const std::string& path) {
  return request(port, "GET", path);
}

// Opens an event stream and reads until `events` complete events arrived.
struct Stream {
  int fd = -1;
  std::string raw;
  ~Stream() {
    if (fd >= 0) ::close(fd);
  }
  int events() const {
    int n = 0;
    for (auto p = raw.find("data: "); p != std::string::npos; p = raw.find("data: ", p + 1)) {
      if (raw.find("\n\n", p) != std::string::npos) ++n;
    }
    return n;
  }
  bool read_until(int want) {
    char buf[4096];
    while (events() < want) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      raw.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
};

std::unique_ptr<Stream> open_stream(int port, const std::string& path) {
  auto s = std::make_unique<Stream>();
  s->fd = connect_to(port);
  send_all(s->fd, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
  return s;
}

struct Fixture {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::atomic<int> calls{0};
  std::vector<HttpSource> sources() {
    HttpSource a{"alpha", "the first service",
                 [this] {
                   ++calls;
                   return nlohmann::json{{"counters", {{"requests", 7}}}};
                 },
                 registry};
    HttpSource b{"broken", "a provider that throws",
                 []() -> nlohmann::json { throw std::runtime_error("no state yet"); }, nullptr};
    return {a, b};
  }
  HttpSources list() {
    return [this] { return sources(); };
  }
};

HttpOptions fast_options() {
  HttpOptions o;
  o.event_interval = std::chrono::milliseconds(20);
  return o;
}

TEST(HttpFront, ServesPagesStatusAndServiceList) {
  Fixture f;
  HttpFront front(fast_options(), f.list());
  ASSERT_GT(front.port(), 0);
  EXPECT_EQ(front.url(), "http://127.0.0.1:" + std::to_string(front.port()) + "/");

  auto index = get(front.port(), "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_THAT(index.head, HasSubstr("text/html"));
  EXPECT_THAT(index.body, HasSubstr("/static/dashboard.js"));

  auto list = get(front.port(), "/api/services");
  ASSERT_EQ(list.status, 200);
  auto j = nlohmann::json::parse(list.body);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "alpha");
  EXPECT_EQ(j[0]["doc"], "the first service");

  auto status = get(front.port(), "/api/status/alpha");
  ASSERT_EQ(status.status, 200);
  EXPECT_THAT(status.head, HasSubstr("application/json"));
  auto s = nlohmann::json::parse(status.body);
  EXPECT_EQ(s["service"], "alpha");
  EXPECT_EQ(s["counters"]["requests"], 7);

  auto page = get(front.port(), "/service/alpha");
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("acheronService()"));

  auto js = get(front.port(), "/static/dashboard.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(js.head, HasSubstr("text/javascript"));
  EXPECT_THAT(js.body, HasSubstr("EventSource"));
  auto css = get(front.port(), "/static/dashboard.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_THAT(css.head, HasSubstr("text/css"));
}

TEST(HttpFront, AThrowingProviderGivesAnErrorMemberNotAFailure) {
  Fixture f;
  HttpFront front(fast_options(), f.list());
  auto r = get(front.port(), "/api/status/broken");
  ASSERT_EQ(r.status, 200);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("no state yet"));
  EXPECT_EQ(j["service"], "broken");
}

TEST(HttpFront, UnknownPathsAndServicesAre404) {
  Fixture f;
  HttpFront front(fast_options(), f.list());
  EXPECT_EQ(get(front.port(), "/nope").status, 404);
  EXPECT_EQ(get(front.port(), "/static/missing.js").status, 404);
  EXPECT_EQ(get(front.port(), "/static/index.html").status, 404);  // pages have their own routes
  EXPECT_EQ(get(front.port(), "/service/missing").status, 404);
  EXPECT_EQ(get(front.port(), "/events/missing").status, 404);
  auto r = get(front.port(), "/api/status/missing");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(nlohmann::json::parse(r.body)["error"].get<std::string>(),
              HasSubstr("no service named missing"));
  // The server keeps serving after errors.
  EXPECT_EQ(get(front.port(), "/api/status/alpha").status, 200);
}

TEST(HttpFront, ChartJsIs404WhenNotInstalled) {
  Fixture f;
  auto o = fast_options();
  o.chart_js = "/nonexistent/chart.min.js";
  HttpFront front(o, f.list());
  auto r = get(front.port(), "/static/chart.js");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("libjs-chart.js"));
}

TEST(HttpFront, MetricsConcatenateEveryRegistryInTextFormat) {
  Fixture f;
  auto& things = prometheus::BuildCounter()
                     .Name("acheron_test_things_total")
                     .Help("things")
                     .Register(*f.registry)
                     .Add({});
  things.Increment(3);
  HttpFront front(fast_options(), f.list());
  auto r = get(front.port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.head, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(r.body, HasSubstr("# TYPE acheron_test_things_total counter"));
  EXPECT_THAT(r.body, HasSubstr("acheron_test_things_total 3"));
  things.Increment(2);
  EXPECT_THAT(get(front.port(), "/metrics").body, HasSubstr("acheron_test_things_total 5"));
}

TEST(HttpFront, OversizedRequestsAreRefused) {
  Fixture f;
  auto o = fast_options();
  o.max_request_bytes = 1024;
  o.read_timeout = std::chrono::seconds(1);  // the refused body is skipped until then
  HttpFront front(o, f.list());
  auto r = request(front.port(), "POST", "/api/services",
                   "Content-Length: 5000\r\n");  // body never sent: refused on the header
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(get(front.port(), "/api/services").status, 200);
}

TEST(HttpFront, EventStreamsPushSnapshotsRepeatedly) {
  Fixture f;
  HttpFront front(fast_options(), f.list());
  auto s = open_stream(front.port(), "/events/alpha");
  ASSERT_TRUE(s->read_until(3));
  EXPECT_THAT(s->raw, HasSubstr("text/event-stream"));
  const auto p = s->raw.find("data: ");
  const auto e = s->raw.find("\n\n", p);
  auto j = nlohmann::json::parse(s->raw.substr(p + 6, e - p - 6));
  EXPECT_EQ(j["service"], "alpha");
  EXPECT_GE(f.calls.load(), 3);
}

TEST(HttpFront, EventStreamsAreBoundedAndStopEndsThem) {
  Fixture f;
  auto o = fast_options();
  o.threads = 3;
  o.max_event_streams = 1;
  HttpFront front(o, f.list());
  auto first = open_stream(front.port(), "/events/alpha");
  ASSERT_TRUE(first->read_until(1));
  auto second = get(front.port(), "/events/alpha");
  EXPECT_EQ(second.status, 503);
  EXPECT_THAT(second.body, HasSubstr("too many event streams"));
  EXPECT_EQ(get(front.port(), "/api/status/alpha").status, 200);  // pages still served
  front.stop();  // returns although a stream is open
  char buf[4096];
  while (::recv(first->fd, buf, sizeof buf, 0) > 0) {
  }
  EXPECT_EQ(connect_to(front.port()), -1);  // no longer listening
}

TEST(HttpFront, ConnectionsBeyondTheQueueAre503) {
  // A provider that holds its thread until released, so the test controls
  // when every thread is busy.
  std::mutex mutex;
  std::condition_variable cv;
  int entered = 0;
  bool released = false;
  HttpSource slow{"slow", "",
                  [&] {
                    std::unique_lock lock(mutex);
                    ++entered;
                    cv.notify_all();
                    cv.wait(lock, [&] { return released; });
                    return nlohmann::json::object();
                  },
                  nullptr};
  HttpSource quick{"quick", "", [] { return nlohmann::json::object(); }, nullptr};
  HttpOptions o;
  o.threads = 2;
  o.max_event_streams = 1;
  o.max_queued_connections = 1;
  HttpFront front(o, [&] { return std::vector<HttpSource>{slow, quick}; });
  // One at a time: a second connection arriving before a thread has taken
  // the first from the queue (of 1) would itself be refused.
  auto hold = [&](int n) {
    auto f = std::async(std::launch::async, [&] { return get(front.port(), "/api/status/slow"); });
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return entered == n; });
    return f;
  };
  auto busy1 = hold(1);
  auto busy2 = hold(2);  // both threads held now
  // The next connection waits in the queue; the one after finds it full.
  const int queued = connect_to(front.port());
  send_all(queued, "GET /api/status/quick HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto refused = get(front.port(), "/api/status/quick");
  EXPECT_EQ(refused.status, 503);
  EXPECT_THAT(refused.body, HasSubstr("busy"));
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  cv.notify_all();
  EXPECT_EQ(busy1.get().status, 200);
  EXPECT_EQ(busy2.get().status, 200);
  std::string raw;
  char buf[4096];
  for (;;) {
    const auto n = ::recv(queued, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(queued);
  EXPECT_EQ(split(raw).status, 200);  // the queued one was served once a thread was free
}

TEST(HttpFront, RefusesBadAddressesAndOptions) {
  Fixture f;
  for (const char* bad : {"", "localhost", "127.0.0.1:", ":8080", "127.0.0.1:http",
                          "127.0.0.1:70000", "::1:8080", "127.0.0.1:-1"}) {
    HttpOptions o;
    o.bind = bad;
    try {
      HttpFront front(o, f.list());
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const SetupError& e) {
      EXPECT_THAT(e.what(), HasSubstr("HOST:PORT")) << bad;
    }
  }
  EXPECT_EQ(parse_host_port("[::1]:8080").host, "::1");
  EXPECT_EQ(parse_host_port("[::1]:8080").port, 8080);

  HttpOptions o;
  o.threads = 1;
  EXPECT_THROW(HttpFront(o, f.list()), SetupError);
  o = HttpOptions{};
  o.max_event_streams = o.threads;
  EXPECT_THROW(HttpFront(o, f.list()), SetupError);
  o = HttpOptions{};
  o.read_timeout = std::chrono::seconds(0);
  EXPECT_THROW(HttpFront(o, f.list()), SetupError);
}

TEST(HttpFront, RefusesAnAddressInUseOrNotLocal) {
  Fixture f;
  HttpFront first(fast_options(), f.list());
  HttpOptions o;
  o.bind = "127.0.0.1:" + std::to_string(first.port());
  try {
    HttpFront second(o, f.list());
    ADD_FAILURE() << "bound a port in use";
  } catch (const SetupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot listen for HTTP on 127.0.0.1:"));
    EXPECT_THAT(e.what(), HasSubstr("--http"));
  }
  o.bind = "192.0.2.1:0";  // TEST-NET-1: never a local address
  EXPECT_THROW(HttpFront(o, f.list()), SetupError);
}

TEST(HttpFront, MetricsTextSkipsSourcesWithoutRegistries) {
  Fixture f;
  prometheus::BuildCounter().Name("acheron_test_a_total").Register(*f.registry).Add({});
  const auto text = metrics_text(f.sources());
  EXPECT_THAT(text, HasSubstr("acheron_test_a_total 0"));
}

}  // namespace
}  // namespace acheron::net
