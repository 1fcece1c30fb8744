// RemoteServer and RemoteClient over real ZeroMQ sockets (inproc for speed,
// TCP loopback where reconnection matters). Each test is bounded to seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "TestWait.hh"
#include "acheron/remote/Client.hh"
#include "acheron/remote/FairQueue.hh"
#include "acheron/remote/Protocol.hh"
#include "acheron/remote/Server.hh"

namespace acheron::remote {
namespace {

using namespace std::chrono_literals;

int unique_id() {
  static std::atomic<int> n{0};
  return ++n;
}

ServerOptions inproc_options() {
  const std::string id = std::to_string(unique_id());
  return {.rpc_bind = "inproc://rpc" + id, .stream_bind = "inproc://streams" + id};
}

ServerOptions tcp_options(const std::string& rpc = "tcp://127.0.0.1:0") {
  return {.rpc_bind = rpc, .stream_bind = "tcp://127.0.0.1:0"};
}

ClientOptions client_of(const RemoteServer& s, std::chrono::milliseconds timeout = 2000ms) {
  return {.endpoint = s.rpc_endpoint(), .timeout = timeout, .context = s.context()};
}

using test_support::eventually;

// A gate for handlers: calls entering it count themselves and wait until
// the test opens it (or 10 s pass), so a test knows which calls run.
class Gate final {
 public:
  // Waits in a handler; true if the gate was opened.
  bool pass() {
    std::unique_lock lock(m_);
    ++entered_;
    cv_.notify_all();
    return cv_.wait_for(lock, 10s, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(m_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until at least n calls have entered.
  bool wait_entered(int n, std::chrono::milliseconds limit = 3000ms) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, limit, [&] { return entered_ >= n; });
  }
  int entered() {
    std::lock_guard lock(m_);
    return entered_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

void add_demo_calls(RemoteServer& s) {
  s.add_call("add", [](double a, double b) { return a + b; },
             {.doc = "a + b", .params = {{"a"}, {"b", "any", Json(1.0)}}});
  s.add_call("scale",
             [](const Array& a, double k) {
               auto v = a.to_vector<double>();
               for (auto& x : v) x *= k;
               return Array::from_vector(std::move(v), a.shape());
             },
             {.doc = "multiply an array", .params = {{"values"}, {"k"}}});
  s.add_call("fail", [](const std::string& why) -> int { throw std::invalid_argument(why); },
             {.params = {{"why"}}});
  s.add_call("echo",
             [](const Args& a) {
               return Value(Json{{"args", a.positional()}, {"kwargs", a.keyword()}});
             },
             {.doc = "returns its arguments"});
  s.add_call("sleep",
             [](double seconds) {
               std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
               return true;
             },
             {.params = {{"seconds"}}});
}

TEST(RemoteCalls, PositionalKeywordArraysAndErrors) {
  RemoteServer server(inproc_options());
  add_demo_calls(server);
  server.start();
  RemoteClient client(client_of(server));

  EXPECT_DOUBLE_EQ(client.call_with("add", 2.0, 3.5).as<double>(), 5.5);
  EXPECT_DOUBLE_EQ(client.call("add", CallArgs().arg(2.0)).as<double>(), 3.0);  // default b
  EXPECT_DOUBLE_EQ(client.call("add", CallArgs().kw("b", 4).kw("a", 1)).as<double>(), 5.0);

  Value r = client.call(
      "scale",
      CallArgs().arg(Array::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2})).kw("k", 10));
  const Array& a = r.as_array();
  EXPECT_EQ(a.shape(), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{10, 20, 30, 40}));

  Json echoed =
      client.call("echo", CallArgs().arg(1).arg("two").kw("x", Json{{"y", nullptr}})).data;
  EXPECT_EQ(echoed["args"], Json::array({1, "two"}));
  EXPECT_TRUE(echoed["kwargs"]["x"]["y"].is_null());

  try {
    client.call_with("fail", std::string("no good"));
    FAIL() << "expected a RemoteException";
  } catch (const RemoteException& e) {
    EXPECT_EQ(e.type(), "std::invalid_argument");
    EXPECT_EQ(e.remote_message(), "no good");
    EXPECT_EQ(e.code(), StatusCode::unknown);
  }
  try {
    client.call_with("add", std::string("x"), 1);
    FAIL();
  } catch (const RemoteException& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(e.remote_message().find("argument 'a'"), std::string::npos);
  }
  try {
    client.call("nope");
    FAIL();
  } catch (const RemoteException& e) {
    EXPECT_EQ(e.code(), StatusCode::not_found);
  }
  // D6: internals are not addressable; only '$' built-ins and registered calls exist.
  EXPECT_THROW(client.call("$close"), RemoteException);
  EXPECT_THROW(server.add_call("$calls", [] { return 1; }), SetupError);
  EXPECT_THROW(server.add_call("add", [] { return 1; }), SetupError);
}

TEST(RemoteCalls, IntrospectionListsSignaturesAndDocs) {
  RemoteServer server(inproc_options());
  add_demo_calls(server);
  server.add_call("move", [](double) {}, {.doc = "moves", .params = {{"mm"}}, .mutating = true});
  server.start();
  RemoteClient client(client_of(server));
  Json calls = client.list_calls();
  ASSERT_EQ(calls.size(), 6u);
  const Json* add = nullptr;
  for (const Json& c : calls) {
    if (c["name"] == "add") add = &c;
  }
  ASSERT_NE(add, nullptr);
  EXPECT_EQ((*add)["doc"], "a + b");
  EXPECT_EQ((*add)["returns"], "float");
  EXPECT_EQ((*add)["params"][0], (Json{{"name", "a"}, {"type", "float"}}));
  EXPECT_EQ((*add)["params"][1]["default"], 1.0);
  EXPECT_EQ(calls[1]["name"], "echo");
  EXPECT_TRUE(calls[1]["variadic"].get<bool>());
}

TEST(RemoteCalls, MalformedMessagesGetErrorRepliesAndTheServerKeepsServing) {
  RemoteServer server(inproc_options());
  add_demo_calls(server);
  server.start();
  zmq::socket_t raw(*server.context(), zmq::socket_type::dealer);
  raw.connect(server.rpc_endpoint());
  auto send = [&](std::vector<std::string> parts) {
    std::vector<Buffer> frames;
    for (auto& p : parts) frames.push_back(Buffer::copy_of(p.data(), p.size()));
    ASSERT_TRUE(net::send_frames(raw, frames));
  };
  auto expect_error = [&](StatusCode code) {
    raw.set(zmq::sockopt::rcvtimeo, 2000);
    std::vector<Buffer> reply;
    ASSERT_TRUE(net::recv_frames(raw, reply));
    auto d = wire::decode(reply);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->client_command(), wire::Command::error);
    ASSERT_TRUE(d->error);
    EXPECT_EQ(d->error->code, code);
  };
  const std::string id("\x01\0\0\0\0\0\0\0", 8);
  send({"garbage"});
  expect_error(StatusCode::invalid_argument);
  send({"ACHC01", "\x01", "remote", id, "\xc1"});  // reserved msgpack byte
  expect_error(StatusCode::invalid_argument);
  send({"ACHC01", "\x01", "remote", id,
        "\x82\xa4"
        "meta"
        "\x81\xa4"
        "args"
        "\x05"
        "\xa6"
        "method"
        "\xa4"
        "echo"});
  expect_error(StatusCode::invalid_argument);  // args is not a list
  const std::string good =
      "\x82\xa4"
      "meta"
      "\x81\xa4"
      "args"
      "\x91\x01"
      "\xa6"
      "method"
      "\xa4"
      "echo";
  send({"ACHC01", "\x01", "remote", id, good, "extra"});
  expect_error(StatusCode::invalid_argument);    // an array frame the header does not list
  send({"ACHC01", "\x01", "remote", id, good});  // the same request, well-formed
  {
    std::vector<Buffer> reply;
    ASSERT_TRUE(net::recv_frames(raw, reply));
    auto d = wire::decode(reply);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->client_command(), wire::Command::final);
    EXPECT_EQ(d->payload.meta["value"]["args"], Json::array({1}));
  }
  RemoteClient client(client_of(server));
  EXPECT_DOUBLE_EQ(client.call_with("add", 1.0, 1.0).as<double>(), 2.0);
}

// D4 + D7: a call to a server that does not answer times out, and the next
// call on the same client works (fresh socket, stale reply discarded).
TEST(RemoteCalls, TimeoutThenTheNextCallWorks) {
  RemoteServer server(inproc_options());
  add_demo_calls(server);
  server.start();
  RemoteClient client(client_of(server));
  const auto t0 = Clock::now();
  EXPECT_THROW(client.call("sleep", CallArgs().arg(0.5), 100ms), TimeoutError);
  EXPECT_LT(Clock::now() - t0, 400ms);
  EXPECT_EQ(client.reconnects(), 1u);
  EXPECT_DOUBLE_EQ(client.call_with("add", 2.0, 2.0).as<double>(), 4.0);
}

TEST(RemoteCalls, DeadServerGivesAnErrorThenTheClientReconnectsByItself) {
  std::string endpoint;
  {
    RemoteServer probe(tcp_options());
    endpoint = probe.rpc_endpoint();
  }  // the port is free again (bound with linger 0)
  RemoteClient client(ClientOptions{.endpoint = endpoint, .timeout = 300ms});
  const auto t0 = Clock::now();
  EXPECT_THROW(client.call_with("add", 1.0, 1.0), DisconnectedError);
  EXPECT_LT(Clock::now() - t0, 1500ms);
  EXPECT_FALSE(client.ping(100ms));
  {
    RemoteServer server(tcp_options(endpoint));
    add_demo_calls(server);
    server.start();
    EXPECT_TRUE(eventually([&] {
      try {
        return client.call_with("add", 1.0, 1.0).as<double>() == 2.0;
      } catch (const Failure&) {
        return false;
      }
    }));
  }
  // Killed server: the call fails within its deadline instead of blocking forever.
  EXPECT_THROW(client.call_with("add", 1.0, 1.0), Failure);
  RemoteServer restarted(tcp_options(endpoint));
  add_demo_calls(restarted);
  restarted.start();
  EXPECT_TRUE(eventually([&] {
    try {
      return client.call_with("add", 2.0, 1.0).as<double>() == 3.0;
    } catch (const Failure&) {
      return false;
    }
  }));
}

// A slow call on the pool does not delay other calls (serial RPC avoided):
// stream control and another call complete while the slow call is still
// running.
TEST(RemoteCalls, SlowCallsDoNotBlockOthers) {
  RemoteServer server(inproc_options());
  add_demo_calls(server);
  Gate gate;
  server.add_call("slow", [&] { return gate.pass(); });
  server.add_manual_stream("s");
  server.start();
  std::atomic<bool> slow_done{false};
  std::thread slow([&] {
    RemoteClient c(client_of(server, 10000ms));
    slow_done = c.call("slow").as<bool>();
  });
  ASSERT_TRUE(gate.wait_entered(1));
  RemoteClient client(client_of(server));
  client.disable_stream("s");
  EXPECT_DOUBLE_EQ(client.call_with("add", 1.0, 2.0).as<double>(), 3.0);
  EXPECT_EQ(client.list_streams()[0]["enabled"], false);
  EXPECT_FALSE(slow_done.load());  // the slow call is still held at the gate
  gate.open();
  slow.join();
  EXPECT_TRUE(slow_done.load());
}

TEST(RemoteStreams, PeriodicValuesArriveWithSequenceAndTimestamps) {
  RemoteServer server(inproc_options());
  std::atomic<int> calls{0};
  server.add_stream("counter", 200, [&] { return Value(Json(calls.fetch_add(1))); });
  server.start();
  RemoteClient client(client_of(server));
  auto sub = client.subscribe("counter", {.mode = ReceiveMode::queue});
  std::vector<StreamValue> got;
  while (got.size() < 20) {
    auto v = sub->next(2000ms);
    ASSERT_TRUE(v) << "no value within 2 s";
    got.push_back(std::move(*v));
  }
  for (std::size_t i = 1; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, got[i - 1].seq + 1);
    EXPECT_EQ(got[i].value.as<int>(), got[i - 1].value.as<int>() + 1);
    EXPECT_GT(got[i].mono_ns, got[i - 1].mono_ns);
    EXPECT_GE(got[i].wall_ns, got[i - 1].wall_ns);
  }
  EXPECT_GT(got[0].wall_ns, 1'600'000'000'000'000'000);
}

// D5: each periodic stream keeps its own absolute schedule, so a stream with
// work does not slow another of the same rate, and neither drifts (one-liner:
// two 50 Hz streams, one with 4 ms of work, both ran at 41 Hz). Counted by
// the values' server timestamps over one second.
TEST(RemoteStreams, StreamsWithWorkKeepTheirRateAndDoNotSlowOthers) {
  RemoteServer server(inproc_options());
  server.add_stream("busy", 50, [] {
    std::this_thread::sleep_for(4ms);
    return Value(Json(1));
  });
  server.add_stream("idle", 50, [] { return Value(Json(2)); });
  server.start();
  RemoteClient client(client_of(server));
  auto busy = client.subscribe("busy", {.mode = ReceiveMode::queue, .capacity = 1000});
  auto idle = client.subscribe("idle", {.mode = ReceiveMode::queue, .capacity = 1000});
  auto per_second = [](Subscription& sub) {
    std::vector<std::int64_t> t;
    std::optional<std::int64_t> from;
    while (!from || t.empty() || t.back() < *from + 1'000'000'000) {
      auto v = sub.next(2000ms);
      if (!v) return -1;
      if (!from) from = v->mono_ns + 200'000'000;  // past subscription start-up
      if (v->mono_ns >= *from) t.push_back(v->mono_ns);
    }
    return static_cast<int>(t.size()) - 1;  // values within [from, from + 1 s)
  };
  const int busy_hz = per_second(*busy);
  const int idle_hz = per_second(*idle);
  EXPECT_GE(busy_hz, 48);
  EXPECT_LE(busy_hz, 52);
  EXPECT_GE(idle_hz, 48);
  EXPECT_LE(idle_hz, 52);
}

// D1 + D2: a stream created disabled never runs its producer; enable and
// disable are idempotent and the listing keeps disabled streams. A second
// stream of the same rate ("clock", always running) measures the time in
// which the disabled one would have run: its producer's calls are the events
// the test waits for.
TEST(RemoteStreams, CreatedDisabledNeverRunsAndEnableDisableAreIdempotent) {
  RemoteServer server(inproc_options());
  std::atomic<int> calls{0}, ticks{0};
  server.add_stream("slow", 50, [&] { return Value(Json(++calls)); },
                    {.enabled = false, .only_with_subscribers = false});
  server.add_stream("clock", 50, [&] { return Value(Json(++ticks)); },
                    {.only_with_subscribers = false});
  server.start();
  auto clock_ticks = [&](int n) {
    const int until = ticks.load() + n;
    return eventually([&] { return ticks.load() >= until; });
  };
  RemoteClient client(client_of(server));
  auto sub = client.subscribe("slow");
  ASSERT_TRUE(clock_ticks(15));  // 15 periods: the disabled producer never ran
  EXPECT_EQ(calls.load(), 0);
  EXPECT_FALSE(sub->try_next());
  Json listed = client.list_streams();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1]["name"], "slow");
  EXPECT_EQ(listed[1]["enabled"], false);
  EXPECT_EQ(listed[1]["kind"], "periodic");
  EXPECT_EQ(listed[1]["rate_hz"], 50.0);
  EXPECT_EQ(listed[1]["published"], 0);

  client.enable_stream("slow");
  client.enable_stream("slow");
  auto first = sub->next(2000ms);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->value.as<int>(), 1);  // the producer's first run was after enable
  client.disable_stream("slow");
  client.disable_stream("slow");  // D2: no KeyError on a second disable
  // A tick that had begun when the disable arrived has ended one period later.
  ASSERT_TRUE(clock_ticks(1));
  const int frozen = calls.load();
  ASSERT_TRUE(clock_ticks(10));
  EXPECT_EQ(calls.load(), frozen);
  listed = client.list_streams();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1]["enabled"], false);
  EXPECT_GT(listed[1]["published"].get<int>(), 0);

  client.remove_stream("slow");
  ASSERT_EQ(client.list_streams().size(), 1u);
  EXPECT_THROW(client.enable_stream("slow"), RemoteException);
  EXPECT_THROW(client.disable_stream("unknown"), RemoteException);
}

// D3: exact topic matching: "new_frame" does not receive "new_frame_2".
TEST(RemoteStreams, PrefixNamesDoNotCollide) {
  RemoteServer server(inproc_options());
  auto a = server.add_manual_stream("new_frame");
  auto b = server.add_manual_stream("new_frame_2");
  server.start();
  RemoteClient client(client_of(server));
  auto sub = client.subscribe("new_frame", {.mode = ReceiveMode::queue});
  ASSERT_TRUE(eventually([&] {
    b.publish(Value(Json("wrong")));
    a.publish(Value(Json("right")));
    return sub->stats().received > 0;
  }));
  // One socket delivers in order: once the marker published last is in,
  // every "wrong" value published before it would be too.
  b.publish(Value(Json("wrong")));
  a.publish(Value(Json("end")));
  bool ended = false;
  while (!ended) {
    auto v = sub->next(2000ms);
    ASSERT_TRUE(v) << "the end marker did not arrive";
    EXPECT_EQ(v->stream, "new_frame");
    const auto text = v->value.as<std::string>();
    ended = text == "end";
    if (!ended) {
      EXPECT_EQ(text, "right");
    }
  }
}

TEST(RemoteStreams, QueueCountsDropsAndCacheKeepsTheLatest) {
  RemoteServer server(inproc_options());
  auto w = server.add_manual_stream("data");
  server.start();
  RemoteClient client(client_of(server));
  auto queue = client.subscribe("data", {.mode = ReceiveMode::queue, .capacity = 10});
  auto cache = client.subscribe("data", {.mode = ReceiveMode::cache});
  ASSERT_TRUE(eventually([&] {
    w.publish(Value(Json(-1)));
    return queue->stats().received > 0 && cache->stats().received > 0;
  }));
  // A marker after the warm-up values: once the queue has given it out, no
  // older value is still in flight (one stream arrives in order).
  w.publish(Value(Json(-2)));
  ASSERT_TRUE(eventually([&] {
    while (auto v = queue->try_next()) {
      if (v->value.as<int>() == -2) return true;
    }
    return false;
  }));
  ASSERT_TRUE(eventually([&] {
    auto v = cache->try_next();
    return v && v->value.as<int>() == -2;
  }));
  const auto before = queue->stats();
  for (int i = 0; i < 50; ++i) w.publish(Value(Json(i)));
  ASSERT_TRUE(eventually([&] { return queue->stats().received >= before.received + 50; }));
  const auto after = queue->stats();
  EXPECT_EQ(after.dropped - before.dropped, 40u);
  int n = 0, last = -1;
  while (auto v = queue->try_next()) {
    ++n;
    last = v->value.as<int>();
  }
  EXPECT_EQ(n, 10);
  EXPECT_EQ(last, 49);
  auto latest = cache->try_next();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->value.as<int>(), 49);
  EXPECT_FALSE(cache->try_next());  // the cache is consumed: no stale repeat
  EXPECT_EQ(queue->stats().gaps, 0u);
}

TEST(RemoteStreams, ProducerErrorsAndOwnTimestamps) {
  RemoteServer server(inproc_options());
  server.add_stream("broken", 100, []() -> Value { throw std::runtime_error("sensor offline"); });
  auto cam = server.add_manual_stream("camera");
  server.start();
  RemoteClient client(client_of(server));
  auto broken = client.subscribe("broken");
  auto v = broken->next(2000ms);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->error);
  EXPECT_EQ(v->error->type, "std::runtime_error");
  EXPECT_EQ(v->error->message, "sensor offline");

  auto frames = client.subscribe("camera");
  ASSERT_TRUE(eventually([&] {
    cam.publish(Value(Array::from_vector(std::vector<std::uint16_t>(64, 7), {8, 8})), 1234);
    return frames->stats().received > 0;
  }));
  auto f = frames->next(100ms);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->wall_ns, 1234);
  EXPECT_EQ(f->value.as_array().shape(), (std::vector<std::int64_t>{8, 8}));
}

// A late subscriber gets the last value at once (server last-value cache).
TEST(RemoteStreams, LateSubscriberGetsTheLastValue) {
  RemoteServer server(inproc_options());
  auto w = server.add_manual_stream("status");
  server.start();
  RemoteClient first(client_of(server));
  auto s1 = first.subscribe("status");
  ASSERT_TRUE(eventually([&] {
    w.publish(Value(Json("ready")));
    return s1->stats().received > 0;
  }));
  RemoteClient late(client_of(server));
  auto s2 = late.subscribe("status");
  auto v = s2->next(2000ms);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->value.as<std::string>(), "ready");
}

TEST(RemoteCascade, RelayedStreamsAndCalls) {
  RemoteServer upstream(tcp_options());
  add_demo_calls(upstream);
  std::atomic<int> n{0};
  // Runs without subscribers too, so it keeps producing after the relay unsubscribes.
  upstream.add_stream("temperature", 200, [&] { return Value(Json(20.0 + (n++ % 5))); },
                      {.only_with_subscribers = false});
  upstream.start();
  RemoteServer relay(tcp_options());
  relay.add_relay("upstream_temperature", upstream.stream_endpoint(), {.upstream = "temperature"});
  relay.add_call_relay("up", upstream.rpc_endpoint());
  StreamWriter marker = relay.add_manual_stream("marker");
  relay.start();
  RemoteClient client(ClientOptions{.endpoint = relay.rpc_endpoint(), .timeout = 2000ms});
  EXPECT_DOUBLE_EQ(client.call_with("up.add", 20.0, 22.0).as<double>(), 42.0);
  EXPECT_THROW(client.call_with("up.fail", std::string("x")), RemoteException);
  auto sub = client.subscribe("upstream_temperature", {.mode = ReceiveMode::queue});
  for (int i = 0; i < 5; ++i) {
    auto v = sub->next(3000ms);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->stream, "upstream_temperature");
    EXPECT_GE(v->value.as<double>(), 20.0);
  }
  // The relay's stream socket delivers in order: a marker published on the
  // relay comes after every relayed value sent before it.
  auto markers = client.subscribe("marker", {.mode = ReceiveMode::queue});
  ASSERT_TRUE(eventually([&] {
    marker.publish(Value(Json(0)));
    return markers->stats().received > 0;
  }));
  auto marker_arrives = [&](int id) {
    marker.publish(Value(Json(id)));
    for (auto v = markers->next(2000ms); v; v = markers->next(2000ms)) {
      if (v->value.as<int>() == id) return true;
    }
    return false;
  };
  client.disable_stream("upstream_temperature");
  ASSERT_TRUE(marker_arrives(1));
  while (sub->try_next()) {  // relayed before the disable
  }
  // The upstream publishes 20 more values; none of them is relayed.
  const int produced = n.load();
  ASSERT_TRUE(eventually([&] { return n.load() >= produced + 20; }));
  ASSERT_TRUE(marker_arrives(2));
  EXPECT_FALSE(sub->try_next());
  Json streams = client.list_streams();
  EXPECT_EQ(streams[1]["name"], "upstream_temperature");
  EXPECT_EQ(streams[1]["kind"], "relay");
  EXPECT_EQ(streams[1]["enabled"], false);
}

TEST(RemoteLock, SingleWriter) {
  RemoteServer server(inproc_options());
  int position = 0;
  server.add_call("move", [&](int to) { position = to; }, {.params = {{"to"}}, .mutating = true});
  server.add_call("where", [&] { return position; }, {});
  server.start();
  RemoteClient a(client_of(server)), b(client_of(server));
  b.call_with("move", 1);  // nobody holds the lock: advisory mode allows it
  ASSERT_TRUE(a.lock());
  EXPECT_FALSE(b.lock());
  try {
    b.call_with("move", 2);
    FAIL();
  } catch (const RemoteException& e) {
    EXPECT_EQ(e.code(), StatusCode::permission_denied);
  }
  EXPECT_EQ(b.call("where").as<int>(), 1);  // reading is always allowed
  a.call_with("move", 3);
  EXPECT_TRUE(b.lock(true));  // forced takeover
  EXPECT_THROW(a.call_with("move", 4), RemoteException);
  b.unlock();
  a.call_with("move", 5);
  EXPECT_EQ(a.call("where").as<int>(), 5);
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

TEST(RemoteCurve, OnlyClientsWithTheServerKeyGetIn) {
  const auto server_keys = net::generate_curve_keys();
  auto opts = tcp_options();
  opts.curve = server_keys;
  RemoteServer server(opts);
  server.add_call("hello", [] { return std::string("hi"); });
  auto w = server.add_manual_stream("secret");
  server.start();
  RemoteClient good(ClientOptions{.endpoint = server.rpc_endpoint(),
                                  .timeout = 2000ms,
                                  .curve = net::generate_curve_keys(),
                                  .curve_server_key = server_keys.public_key});
  EXPECT_EQ(good.call("hello").as<std::string>(), "hi");
  auto sub = good.subscribe("secret");
  ASSERT_TRUE(eventually([&] {
    w.publish(Value(Json(1)));
    return sub->stats().received > 0;
  }));
  RemoteClient plain(ClientOptions{.endpoint = server.rpc_endpoint(), .timeout = 300ms});
  EXPECT_THROW(plain.call("hello"), Failure);  // the handshake never completes
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

// Cascading from any ZeroMQ PUB socket: its messages arrive as uint8 arrays.
TEST(RemoteCascade, RelayOfAPlainPubSocket) {
  zmq::context_t ctx(1);
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind("tcp://127.0.0.1:0");
  const std::string pub_endpoint = pub.get(zmq::sockopt::last_endpoint);
  RemoteServer relay(tcp_options());
  relay.add_relay("weather", pub_endpoint, {.upstream = "wx ", .format = RelayFormat::raw});
  relay.start();
  RemoteClient client(ClientOptions{.endpoint = relay.rpc_endpoint(), .timeout = 2000ms});
  auto sub = client.subscribe("weather", {.mode = ReceiveMode::queue});
  ASSERT_TRUE(eventually([&] {
    pub.send(zmq::str_buffer("other topic"), zmq::send_flags::none);
    pub.send(zmq::str_buffer("wx 21.5C"), zmq::send_flags::none);
    return sub->stats().received > 0;
  }));
  auto v = sub->next(1000ms);
  ASSERT_TRUE(v);
  const Array& a = v->value.as_array();
  EXPECT_EQ(a.dtype(), DType::uint8);
  const auto bytes = a.to_vector<std::uint8_t>();
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "wx 21.5C");
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

// A quiet stream is told apart from a dead server by the heartbeat.
TEST(RemoteStreams, HeartbeatTellsAQuietStreamFromADeadServer) {
  auto opts = tcp_options();
  opts.heartbeat = 50ms;
  auto server = std::make_unique<RemoteServer>(opts);
  server->add_manual_stream("quiet");
  server->start();
  RemoteClient client(ClientOptions{.endpoint = server->rpc_endpoint(), .timeout = 2000ms});
  EXPECT_FALSE(client.since_heartbeat());
  auto sub = client.subscribe("quiet");
  ASSERT_TRUE(eventually([&] {
    auto t = client.since_heartbeat();
    return t && *t < 200ms;
  }));
  EXPECT_FALSE(sub->try_next());  // nothing published, yet the server is alive
  server.reset();
  // Heartbeats (every 50 ms) stop with the server: the time since the last one grows.
  EXPECT_TRUE(eventually([&] {
    auto t = client.since_heartbeat();
    return t && *t >= 300ms;
  }));
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

// The one-frame form: malformed ones get an error in the same form; both
// forms reach the same call.
TEST(RemoteCalls, CompactAndEnvelopeFramingsBothWork) {
  RemoteServer server(inproc_options());
  add_demo_calls(server);
  server.start();
  zmq::socket_t raw(*server.context(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::rcvtimeo, 2000);
  raw.connect(server.rpc_endpoint());
  wire::Envelope req;
  req.command = static_cast<std::uint8_t>(wire::Command::request);
  req.service = "remote";
  req.request_id = 77;
  req.method = "add";
  req.payload.meta = call_meta(Json::array({2.0, 3.0}), Json::object(), 0);
  for (Framing f : {Framing::compact, Framing::envelope}) {
    ASSERT_TRUE(net::send_frames(raw, encode_call(req, f)));
    std::vector<Buffer> reply;
    ASSERT_TRUE(net::recv_frames(raw, reply));
    EXPECT_EQ(reply.size(), f == Framing::compact ? 1u : 5u);
    Framing got = Framing::envelope;
    auto d = decode_call(reply, &got);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(got, f);
    EXPECT_EQ(d->request_id, 77u);
    EXPECT_EQ(d->client_command(), wire::Command::final);
    EXPECT_DOUBLE_EQ(value_of(*d).as<double>(), 5.0);
  }
  // A compact request whose header is not MessagePack: an ERROR with its id.
  std::string bad(kCallProtocol);
  bad.push_back('\x01');
  bad.append("\x09\0\0\0\0\0\0\0", 8);
  bad.push_back('\xc1');
  ASSERT_TRUE(net::send_frames(raw, {Buffer::copy_of(bad)}));
  std::vector<Buffer> reply;
  ASSERT_TRUE(net::recv_frames(raw, reply));
  auto d = decode_call(reply, nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->client_command(), wire::Command::error);
  EXPECT_EQ(d->request_id, 9u);
  EXPECT_EQ(d->error->code, StatusCode::invalid_argument);
  // A control command (PING) that carries a header is malformed too.
  std::string ping(kCallProtocol);
  ping.push_back('\x06');
  ping.append("\x0a\0\0\0\0\0\0\0", 8);
  ping.push_back('\x80');  // an empty map
  ASSERT_TRUE(net::send_frames(raw, {Buffer::copy_of(ping)}));
  ASSERT_TRUE(net::recv_frames(raw, reply));
  d = decode_call(reply, nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->client_command(), wire::Command::error);
  EXPECT_EQ(d->request_id, 10u);
  // A compact request with an array frame its header does not list.
  auto frames = encode_call(req, Framing::compact);
  frames.push_back(Buffer::copy_of("extra"));
  ASSERT_TRUE(net::send_frames(raw, frames));
  ASSERT_TRUE(net::recv_frames(raw, reply));
  d = decode_call(reply, nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->client_command(), wire::Command::error);
}

// A client may ask for any 64-bit timeout: 2**63-1 ms means "no deadline to
// speak of", not a deadline already past (the ms -> ns conversion saturates).
TEST(RemoteCalls, HugeTimeoutsAreHonouredNotExpired) {
  RemoteServer server(tcp_options());
  add_demo_calls(server);
  server.start();
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::rcvtimeo, 3000);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(server.rpc_endpoint());
  wire::Envelope req;
  req.command = static_cast<std::uint8_t>(wire::Command::request);
  req.service = "remote";
  req.method = "add";
  req.payload.meta = call_meta(Json::array({2.0, 3.0}), Json::object(), 0);
  std::uint64_t id = 1;
  for (std::int64_t timeout :
       {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max() / 1000,
        std::int64_t{1} << 53}) {
    for (Framing f : {Framing::compact, Framing::envelope}) {
      req.request_id = id++;
      req.timeout_ms = timeout;
      ASSERT_TRUE(net::send_frames(raw, encode_call(req, f)));
      std::vector<Buffer> reply;
      ASSERT_TRUE(net::recv_frames(raw, reply));
      auto d = decode_call(reply, nullptr);
      ASSERT_TRUE(d) << d.error().message;
      EXPECT_EQ(d->request_id, req.request_id);
      ASSERT_EQ(d->client_command(), wire::Command::final)
          << "timeout_ms=" << timeout << ": " << (d->error ? d->error->message : "");
      EXPECT_DOUBLE_EQ(value_of(*d).as<double>(), 5.0);
    }
  }
}

TEST(RemoteCalls, ProgressRepliesReachTheCaller) {
  RemoteServer server(inproc_options());
  server.add_call("count",
                  [](int n) {
                    for (int i = 1; i <= n; ++i) current_call()->progress(Value(Json(i)));
                    return std::string("done");
                  },
                  {.params = {{"n"}}});
  server.start();
  RemoteClient client(client_of(server));
  std::vector<int> seen;
  Value v = client.call("count", CallArgs().arg(4), CallOptions{.on_progress = [&](const Value& p) {
                          seen.push_back(p.as<int>());
                          return true;
                        }});
  EXPECT_EQ(v.as<std::string>(), "done");
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
  // Without a callback progress is skipped and the result still arrives.
  EXPECT_EQ(client.call_with("count", 3).as<std::string>(), "done");
}

TEST(RemoteCalls, CancelStopsARunningCall) {
  RemoteServer server(inproc_options());
  std::atomic<int> steps{0};
  std::atomic<bool> saw_cancel{false};
  server.add_call("long", [&] {
    CallContext* c = current_call();
    // Steps of work (2 ms each) for up to 10 s, unless cancelled.
    for (const auto end = Clock::now() + 10s; Clock::now() < end;) {
      if (c->cancelled()) {
        saw_cancel = true;
        c->check_cancelled();  // throws
      }
      c->progress(Value(Json(steps++)));
      std::this_thread::sleep_for(2ms);
    }
    return 0;
  });
  server.add_call("quick", [] { return 1; });
  server.start();
  RemoteClient client(client_of(server, 5000ms));
  int progress = 0;
  EXPECT_THROW(client.call("long", {},
                           CallOptions{.on_progress =
                                           [&](const Value&) {
                                             return ++progress < 3;  // cancel at the third
                                           }}),
               CancelledError);
  ASSERT_TRUE(eventually([&] { return saw_cancel.load(); }));  // stopped by the cancel
  EXPECT_GE(steps.load(), 3);
  // The cancelled call sends nothing more; the client goes on as usual.
  EXPECT_EQ(client.call("quick").as<int>(), 1);
}

// A call keeps the lead while it runs; one still running after
// handoff_after passes the lead on, so a call that waits for another call
// (here: for a flag the second call sets) completes, with the lead handed
// over late (default) or before every call (zero).
TEST(RemoteCalls, ACallWaitingForAnotherCallCompletes) {
  for (auto handoff : {std::chrono::microseconds(5000), std::chrono::microseconds(0)}) {
    auto opts = inproc_options();
    opts.threads = 2;
    opts.handoff_after = handoff;
    RemoteServer server(opts);
    std::mutex m;
    std::condition_variable cv;
    bool flag = false;
    bool waiting = false;
    server.add_call("wait_for_flag", [&] {
      std::unique_lock lock(m);
      waiting = true;
      cv.notify_all();
      return cv.wait_for(lock, 3s, [&] { return flag; });
    });
    server.add_call("set_flag", [&] {
      {
        std::lock_guard lock(m);
        flag = true;
      }
      cv.notify_all();
      return true;
    });
    server.start();
    std::atomic<bool> waited{false};
    std::thread waiter([&] {
      RemoteClient c(client_of(server, 5000ms));
      waited = c.call("wait_for_flag").as<bool>();
    });
    {
      std::unique_lock lock(m);  // the first call is running
      ASSERT_TRUE(cv.wait_for(lock, 3s, [&] { return waiting; }));
    }
    RemoteClient client(client_of(server, 5000ms));
    const auto t0 = Clock::now();
    EXPECT_TRUE(client.call("set_flag").as<bool>()) << "handoff_after " << handoff.count();
    waiter.join();
    EXPECT_TRUE(waited.load()) << "handoff_after " << handoff.count();
    EXPECT_LT(Clock::now() - t0, 1s) << "handoff_after " << handoff.count();
  }
}

// Hand-overs under load: clients mixing calls slower and quicker than
// handoff_after, from several threads at once, all get their own answers.
TEST(RemoteCalls, MixedSlowAndQuickCallsFromManyClientsAllComplete) {
  auto opts = inproc_options();
  opts.threads = 2;
  opts.handoff_after = std::chrono::microseconds(1000);
  RemoteServer server(opts);
  server.add_call("work",
                  [](int id, int us) {
                    std::this_thread::sleep_for(std::chrono::microseconds(us));
                    return id;
                  },
                  {.params = {{"id"}, {"us"}}});
  server.start();
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      RemoteClient client(client_of(server, 5000ms));
      for (int i = 0; i < 40; ++i) {
        const int id = c * 1000 + i;
        const int us = (i + c) % 3 == 0 ? 3000 : 50;  // every third call outlasts handoff_after
        (client.call_with("work", id, us).as<int>() == id ? right : wrong)++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(right.load(), 160);
  EXPECT_EQ(wrong.load(), 0);
  RemoteClient after(client_of(server));
  EXPECT_TRUE(after.ping());
  EXPECT_EQ(after.call_with("work", 7, 0).as<int>(), 7);
}

TEST(RemoteCalls, PoolCallsBeyondTheThreadCountWaitAndAllComplete) {
  auto opts = inproc_options();
  opts.threads = 1;
  RemoteServer server(opts);
  server.add_call("nap",
                  [](int ms) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
                    return ms;
                  },
                  {.params = {{"ms"}}});
  server.start();
  std::vector<std::thread> callers;
  std::atomic<int> done{0};
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      RemoteClient c(client_of(server, 3000ms));
      if (c.call_with("nap", 50).as<int>() == 50) ++done;
    });
  }
  RemoteClient control(client_of(server));
  EXPECT_TRUE(control.ping());  // built-ins answer while calls are busy
  EXPECT_TRUE(control.list_streams().is_array());
  for (auto& t : callers) t.join();
  EXPECT_EQ(done.load(), 4);
}

// A holder that goes away loses the lock after its lease; every request of
// the holder renews it.
TEST(RemoteLock, LeaseLapsesWhenTheHolderFallsSilent) {
  auto opts = inproc_options();
  opts.lock_lease = 300ms;
  opts.write_lock = WriteLock::advisory;
  RemoteServer server(opts);
  int position = 0;
  server.add_call("move", [&](int to) { position = to; }, {.params = {{"to"}}, .mutating = true});
  server.add_call("where", [&] { return position; });
  server.start();
  RemoteClient b(client_of(server));
  {
    RemoteClient a(client_of(server));
    ASSERT_TRUE(a.lock());
    EXPECT_TRUE(a.lock_status()["mine"].get<bool>());
    for (int i = 0; i < 4; ++i) {  // calls keep the lease alive past its length
      std::this_thread::sleep_for(150ms);
      a.call("where");
    }
    EXPECT_THROW(b.call_with("move", 1), RemoteException);
    EXPECT_FALSE(b.lock());
    const Json st = b.lock_status();
    EXPECT_TRUE(st["held"].get<bool>());
    EXPECT_FALSE(st["mine"].get<bool>());
    EXPECT_EQ(st["lease_ms"].get<int>(), 300);
  }  // a is gone without unlocking
  ASSERT_TRUE(eventually([&] { return b.lock(); }, 2000ms));
  b.call_with("move", 7);
  EXPECT_EQ(b.call("where").as<int>(), 7);
}

// What a user sees when a subscriber cannot keep up: with the default
// (SlowSubscribers::hold, ZMQ_XPUB_NODROP) the server holds messages back
// while the subscriber's queue is full, then drops the oldest and counts
// them in the stream's status; the subscriber sees the gap in sequence
// numbers. Nothing is lost without being counted.
TEST(RemoteStreams, SlowSubscriberLossIsCountedNotSilent) {
  auto opts = tcp_options();
  opts.send_hwm = 4;
  RemoteServer server(opts);
  StreamWriter w = server.add_manual_stream("frames");
  server.start();
  // A subscriber that stops reading: a raw SUB with a small queue.
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 4);
  sub.set(zmq::sockopt::rcvbuf, 4096);
  sub.set(zmq::sockopt::linger, 0);
  sub.connect(server.stream_endpoint());
  sub.set(zmq::sockopt::subscribe, topic_of("frames"));
  ASSERT_TRUE(eventually([&] { return server.streams().at(0).subscribed; }));
  const std::vector<std::uint8_t> big(256 * 1024, 1);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(w.publish(Value(Array::from_vector(big))));
  ASSERT_TRUE(eventually([&] { return server.streams().at(0).dropped > 0; }));
  const StreamStatus st = server.streams().at(0);
  EXPECT_EQ(st.published, 200u);
  EXPECT_LE(st.held, 4u);
  RemoteClient client(client_of(server));
  const Json listed = client.list_streams();
  EXPECT_GT(listed[0]["dropped"].get<std::uint64_t>(), 0u);
  // The slow subscriber reads at last: sequence numbers show what it
  // missed. The newest message is never the one dropped, so reading ends
  // with seq 200.
  std::uint64_t last = 0, gaps = 0, got = 0;
  sub.set(zmq::sockopt::rcvtimeo, 3000);
  std::vector<Buffer> frames;
  while (last < 200) {
    ASSERT_TRUE(net::recv_frames(sub, frames)) << "no message after seq " << last;
    auto m = decode_stream(frames);
    ASSERT_TRUE(m);
    if (last != 0) gaps += m->seq - last - 1;
    last = m->seq;
    ++got;
  }
  EXPECT_EQ(last, 200u);
  EXPECT_GT(gaps, 0u);
  // Every message either arrived or was counted as dropped.
  ASSERT_TRUE(eventually([&] { return server.streams().at(0).held == 0; }));
  const StreamStatus after = server.streams().at(0);
  EXPECT_EQ(got + after.dropped, 200u);
  sub.set(zmq::sockopt::rcvtimeo, 0);
  EXPECT_FALSE(net::recv_frames(sub, frames));  // nothing beyond seq 200
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

// A compact REQUEST as the client library sends it.
std::vector<Buffer> request_frames(std::uint64_t id, const std::string& method, Json args) {
  wire::Envelope req;
  req.command = static_cast<std::uint8_t>(wire::Command::request);
  req.service = "remote";
  req.request_id = id;
  req.method = method;
  req.timeout_ms = 10000;
  req.payload.meta = call_meta(args, Json::object(), 0);
  return encode_call(req, Framing::compact);
}

// The next reply on a raw socket within `limit`, decoded; none on timeout.
std::optional<wire::Envelope> next_reply(zmq::socket_t& s, std::chrono::milliseconds limit) {
  s.set(zmq::sockopt::rcvtimeo, static_cast<int>(limit.count()));
  std::vector<Buffer> frames;
  if (!net::recv_frames(s, frames)) return std::nullopt;
  auto d = decode_call(frames, nullptr);
  if (!d) ADD_FAILURE() << "undecodable reply: " << d.error().message;
  return d ? std::optional<wire::Envelope>(std::move(*d)) : std::nullopt;
}

// At most `threads` calls run and max_queued wait; a call beyond that is
// refused at once (resource_exhausted, ServerBusy) and never runs, as the
// Python server does. Built-ins are answered meanwhile, and the accepted
// calls complete once the running one is released.
TEST(RemoteLimits, CallsBeyondTheQueueBoundGetServerBusyAtOnce) {
  auto opts = inproc_options();
  opts.threads = 1;
  opts.max_queued = 2;
  RemoteServer server(opts);
  Gate gate;
  server.add_call("block", [&](int id) { return gate.pass() ? id : -1; }, {.params = {{"id"}}});
  server.add_call("add", [](int a, int b) { return a + b; }, {.params = {{"a"}, {"b"}}});
  server.start();
  // Six callers, each on its own socket, all at once.
  constexpr int kCallers = 6;
  std::vector<zmq::socket_t> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back(*server.context(), zmq::socket_type::dealer);
    callers.back().set(zmq::sockopt::linger, 0);
    callers.back().connect(server.rpc_endpoint());
  }
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(net::send_frames(callers[i], request_frames(i + 1, "block", Json::array({i + 1}))));
  }
  ASSERT_TRUE(gate.wait_entered(1));
  // Three refusals arrive while the accepted calls are held.
  std::vector<std::optional<wire::Envelope>> replies(kCallers);
  auto answered = [&] {
    return std::count_if(replies.begin(), replies.end(),
                         [](const auto& r) { return r.has_value(); });
  };
  for (const auto end = Clock::now() + 3s; answered() < 3 && Clock::now() < end;) {
    std::vector<zmq::pollitem_t> items;
    for (auto& c : callers) items.push_back({c.handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), 100ms);
    for (int i = 0; i < kCallers; ++i) {
      if (items[i].revents & ZMQ_POLLIN) replies[i] = next_reply(callers[i], 0ms);
    }
  }
  ASSERT_EQ(answered(), 3);
  for (const auto& r : replies) {
    if (!r) continue;
    EXPECT_EQ(r->client_command(), wire::Command::error);
    ASSERT_TRUE(r->error);
    EXPECT_EQ(r->error->code, StatusCode::resource_exhausted);
    EXPECT_EQ(r->error->type, "ServerBusy");
    EXPECT_NE(r->error->message.find("max_queued"), std::string::npos) << r->error->message;
  }
  EXPECT_EQ(gate.entered(), 1);  // one runs, two wait
  // Built-ins never wait; a further call is refused too.
  RemoteClient control(client_of(server));
  EXPECT_TRUE(control.ping());
  EXPECT_EQ(control.list_calls().size(), 2u);
  try {
    control.call_with("add", 1, 2);
    FAIL() << "expected ServerBusy";
  } catch (const RemoteException& e) {
    EXPECT_EQ(e.code(), StatusCode::resource_exhausted);
    EXPECT_EQ(e.type(), "ServerBusy");
  }
  for (int i = 0; i < kCallers; ++i) {
    if (!replies[i]) {
      EXPECT_FALSE(next_reply(callers[i], 0ms)) << "caller " << i + 1;  // held at the gate
    }
  }
  gate.open();
  for (int i = 0; i < kCallers; ++i) {
    if (replies[i]) continue;
    auto r = next_reply(callers[i], 3000ms);
    ASSERT_TRUE(r) << "accepted call " << i + 1 << " never completed";
    EXPECT_EQ(r->request_id, static_cast<std::uint64_t>(i + 1));
    ASSERT_EQ(r->client_command(), wire::Command::final);
    EXPECT_EQ(value_of(*r).as<int>(), i + 1);
  }
  EXPECT_EQ(gate.entered(), 3);  // the refused calls never ran
  // Every accepted call has finished: the slots are free again.
  EXPECT_EQ(control.call_with("add", 2, 3).as<int>(), 5);
  ASSERT_TRUE(net::send_frames(callers[0], request_frames(7, "block", Json::array({7}))));
  auto r = next_reply(callers[0], 3000ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client_command(), wire::Command::final);
}

// The next event of a socket monitor (ZMQ_EVENT_*), 0 if none within its timeout.
int next_monitor_event(zmq::socket_t& monitor) {
  std::vector<Buffer> frames;
  if (!net::recv_frames(monitor, frames) || frames.empty() || frames[0].size() < 2) return 0;
  std::uint16_t event = 0;
  std::memcpy(&event, frames[0].data(), sizeof event);
  return event;
}

// ServerOptions::max_message_size is ZMQ_MAXMSGSIZE: libzmq drops the
// connection of a client that sends a larger frame (that request gets no
// reply); other clients are served on, and the client may reconnect.
// Checked over TCP: inproc messages are not decoded, so no limit applies.
TEST(RemoteLimits, AFrameBeyondTheSizeLimitDisconnectsThatClientOnly) {
  auto opts = tcp_options();
  opts.max_message_size = 4096;
  RemoteServer server(opts);
  add_demo_calls(server);
  server.start();
  RemoteClient other(ClientOptions{.endpoint = server.rpc_endpoint(), .timeout = 2000ms});
  EXPECT_DOUBLE_EQ(other.call_with("add", 1.0, 2.0).as<double>(), 3.0);  // connected before

  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  ASSERT_EQ(zmq_socket_monitor(raw.handle(), "inproc://size-limit-monitor",
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED),
            0);
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::linger, 0);
  monitor.set(zmq::sockopt::rcvtimeo, 3000);
  monitor.connect("inproc://size-limit-monitor");
  raw.connect(server.rpc_endpoint());
  ASSERT_EQ(next_monitor_event(monitor), ZMQ_EVENT_CONNECTED);

  // 8 KiB of text in the one request frame: over the 4 KiB limit.
  ASSERT_TRUE(
      net::send_frames(raw, request_frames(1, "echo", Json::array({std::string(8192, 'x')}))));
  ASSERT_EQ(next_monitor_event(monitor), ZMQ_EVENT_DISCONNECTED);  // the server dropped us
  EXPECT_FALSE(next_reply(raw, 0ms));                              // and did not answer
  EXPECT_DOUBLE_EQ(other.call_with("add", 2.0, 2.0).as<double>(), 4.0);

  // Reconnected, the same socket may send what fits.
  ASSERT_EQ(next_monitor_event(monitor), ZMQ_EVENT_CONNECTED);
  ASSERT_TRUE(
      net::send_frames(raw, request_frames(2, "echo", Json::array({std::string(1000, 'y')}))));
  auto r = next_reply(raw, 3000ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id, 2u);
  ASSERT_EQ(r->client_command(), wire::Command::final);
  EXPECT_EQ(value_of(*r).data["args"][0].get<std::string>().size(), 1000u);
  zmq_socket_monitor(raw.handle(), nullptr, 0);
}

// Stream management ($enable, $disable, $remove) changes the server for
// every client, so it obeys the write lock as mutating calls do, with the
// error the Python server gives (permission_denied, PermissionError).
TEST(RemoteLock, StreamManagementObeysTheWriteLock) {
  RemoteServer server(inproc_options());
  server.add_manual_stream("frames");
  server.add_call("move", [](int) {}, {.params = {{"to"}}, .mutating = true});
  server.start();
  RemoteClient a(client_of(server)), b(client_of(server));
  auto state = [&]() -> std::optional<bool> {
    const Json listed = b.list_streams();  // reading is never locked
    if (listed.empty()) return std::nullopt;
    return listed[0]["enabled"].get<bool>();
  };
  auto refused = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const RemoteException& e) {
      EXPECT_EQ(e.code(), StatusCode::permission_denied);
      EXPECT_EQ(e.type(), "PermissionError");
      EXPECT_NE(e.remote_message().find("write lock"), std::string::npos) << e.remote_message();
      return true;
    }
    return false;
  };
  ASSERT_TRUE(a.lock());
  EXPECT_TRUE(refused([&] { b.disable_stream("frames"); }));
  EXPECT_EQ(state(), true);  // untouched
  EXPECT_TRUE(refused([&] { b.call_with("move", 1); }));
  a.disable_stream("frames");  // the holder may
  EXPECT_EQ(state(), false);
  EXPECT_TRUE(refused([&] { b.enable_stream("frames"); }));
  EXPECT_EQ(state(), false);
  a.enable_stream("frames");
  EXPECT_EQ(state(), true);
  EXPECT_TRUE(refused([&] { b.remove_stream("frames"); }));
  EXPECT_EQ(state(), true);
  a.unlock();
  b.disable_stream("frames");  // anyone once the lock is free
  EXPECT_EQ(state(), false);
  b.remove_stream("frames");
  EXPECT_EQ(state(), std::nullopt);
}

TEST(RemoteLock, StreamManagementNeedsTheLockWhenRequired) {
  auto opts = inproc_options();
  opts.write_lock = WriteLock::required;
  RemoteServer server(opts);
  server.add_manual_stream("frames");
  server.start();
  RemoteClient c(client_of(server));
  try {
    c.disable_stream("frames");
    FAIL() << "expected a refusal";
  } catch (const RemoteException& e) {
    EXPECT_EQ(e.code(), StatusCode::permission_denied);
    EXPECT_EQ(e.type(), "PermissionError");
  }
  EXPECT_EQ(c.list_streams()[0]["enabled"], true);
  ASSERT_TRUE(c.lock());
  c.disable_stream("frames");
  EXPECT_EQ(c.list_streams()[0]["enabled"], false);
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

using namespace std::chrono_literals;

// The waiting room's policy: each waiting client in turn; when full, the
// client with the most waiting calls gives way.
TEST(RemoteFairQueue, ServesClientsInTurnAndMakesTheLongestGiveWay) {
  FairQueue<int> q;
  for (int i = 0; i < 4; ++i) q.push("a", i);
  EXPECT_FALSE(q.make_way_for("a"));  // the longest queue is its own
  auto out = q.make_way_for("b");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, 3);  // a's newest
  q.push("b", 10);
  out = q.make_way_for("b");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, 2);
  q.push("b", 11);
  EXPECT_FALSE(q.make_way_for("b"));  // b would have more than a
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.waiting("a"), 2u);
  std::vector<int> order;
  while (!q.empty()) order.push_back(q.pop());
  EXPECT_EQ(order, (std::vector<int>{0, 10, 1, 11}));
}

// One client filling the waiting room (a flood of calls) does not get
// another client's call refused, and the other's call runs at its turn,
// not after the flood's waiting calls.
TEST(RemoteLimits, AFloodingClientGivesWayToAnotherClient) {
  auto opts = inproc_options();
  opts.threads = 1;
  opts.max_queued = 4;
  RemoteServer server(opts);
  Gate gate;
  std::mutex order_mutex;
  std::vector<int> order;
  server.add_call("block",
                  [&](int id) {
                    const bool passed = gate.pass();
                    std::lock_guard lock(order_mutex);
                    order.push_back(id);
                    return passed ? id : -1;
                  },
                  {.params = {{"id"}}});
  server.start();
  zmq::socket_t flood(*server.context(), zmq::socket_type::dealer);
  zmq::socket_t polite(*server.context(), zmq::socket_type::dealer);
  for (auto* s : {&flood, &polite}) {
    s->set(zmq::sockopt::linger, 0);
    s->connect(server.rpc_endpoint());
  }
  ASSERT_TRUE(net::send_frames(flood, request_frames(1, "block", Json::array({1}))));
  ASSERT_TRUE(gate.wait_entered(1));
  for (int id = 2; id <= 20; ++id) {
    ASSERT_TRUE(net::send_frames(flood, request_frames(id, "block", Json::array({id}))));
  }
  // 1 runs, 2..5 wait, 6..20 are refused.
  std::vector<std::uint64_t> refused;
  for (int i = 0; i < 15; ++i) {
    auto r = next_reply(flood, 3000ms);
    ASSERT_TRUE(r) << "refusal " << i;
    EXPECT_EQ(r->client_command(), wire::Command::error);
    refused.push_back(r->request_id);
  }
  std::sort(refused.begin(), refused.end());
  EXPECT_EQ(refused.front(), 6u);
  EXPECT_EQ(refused.back(), 20u);
  ASSERT_TRUE(net::send_frames(polite, request_frames(100, "block", Json::array({100}))));
  auto r = next_reply(flood, 3000ms);  // the flood's newest waiting call made way
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id, 5u);
  ASSERT_TRUE(r->error);
  EXPECT_EQ(r->error->type, "ServerBusy");
  gate.open();
  r = next_reply(polite, 3000ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client_command(), wire::Command::final);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(next_reply(flood, 3000ms));
  std::lock_guard lock(order_mutex);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 100, 3, 4}));
}

// Calls of a client that does not read its replies (its queue is full) are
// refused unread, not run for replies that would be dropped; once it reads
// again, its calls run again.
TEST(RemoteLimits, AClientThatDoesNotReadItsRepliesHasItsCallsRefusedNotRun) {
  auto opts = inproc_options();
  opts.threads = 1;
  RemoteServer server(opts);
  std::atomic<int> runs{0};
  server.add_call("work", [&] {
    ++runs;
    return std::string(1024, 'x');
  });
  server.start();
  zmq::socket_t sock(*server.context(), zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::rcvhwm, 1);
  sock.connect(server.rpc_endpoint());
  constexpr int kSent = 4000;
  for (int id = 1; id <= kSent; ++id) {
    ASSERT_TRUE(net::send_frames(sock, request_frames(id, "work", Json::array())));
  }
  // Until the server has read them all: the run count stops growing.
  for (int last = -1; runs.load() != last;) {
    last = runs.load();
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_LT(runs.load(), kSent / 2);  // a reply queue of about 1000, then refusals
  // Reading again: the queued replies arrive, then calls run again.
  while (next_reply(sock, 500ms)) {
  }
  const int before = runs.load();
  ASSERT_TRUE(net::send_frames(sock, request_frames(kSent + 1, "work", Json::array())));
  auto r = next_reply(sock, 3000ms);  // may be the refusal that clears the mark
  ASSERT_TRUE(r);
  ASSERT_TRUE(net::send_frames(sock, request_frames(kSent + 2, "work", Json::array())));
  r = next_reply(sock, 3000ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id, std::uint64_t{kSent + 2});
  EXPECT_EQ(r->client_command(), wire::Command::final);
  EXPECT_GT(runs.load(), before);
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::remote {
namespace {

// Stopping while a call runs: the call finishes, its reply (posted by the
// call thread to the reactor thread) still reaches the caller, and the
// stop returns.
TEST(RemoteCalls, StopSendsTheReplyOfACallStillRunning) {
  auto opts = inproc_options();
  opts.threads = 2;
  RemoteServer server(opts);
  Gate gate;
  server.add_call("gated", [&] {
    gate.pass();
    return 42;
  });
  server.start();
  std::atomic<int> got{0};
  std::thread caller([&] {
    RemoteClient c(client_of(server, 5000ms));
    got = c.call("gated").as<int>();
  });
  ASSERT_TRUE(gate.wait_entered(1));
  std::thread stopper([&] { server.stop(); });  // waits for the running call
  gate.open();
  caller.join();
  stopper.join();
  EXPECT_EQ(got.load(), 42);
}

}  // namespace
}  // namespace acheron::remote
