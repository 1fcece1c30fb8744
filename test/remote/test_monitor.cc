// RemoteServer's figures (stats()) and the status snapshot and metrics built
// from them (remote/Monitor.hh), over inproc sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <stdexcept>

#include "acheron/net/HttpFront.hh"
#include "acheron/remote/Client.hh"
#include "acheron/remote/Monitor.hh"
#include "acheron/remote/Server.hh"

namespace acheron::remote {
namespace {

ServerOptions monitor_inproc_options() {
  static std::atomic<int> n{0};
  const std::string id = std::to_string(++n);
  return {.rpc_bind = "inproc://monitor-rpc" + id, .stream_bind = "inproc://monitor-streams" + id};
}

TEST(RemoteStats, CountsCallsErrorsRefusalsAndClients) {
  RemoteServer server(monitor_inproc_options());
  server.add_call("add", [](double a, double b) { return a + b; }, {.params = {{"a"}, {"b"}}});
  server.add_call("fail", [](const std::string& m) -> bool { throw std::runtime_error(m); },
                  {.params = {{"m"}}, .mutating = true});
  server.start();
  {
    RemoteClient a({.endpoint = server.rpc_endpoint(), .context = server.context()});
    RemoteClient b({.endpoint = server.rpc_endpoint(), .context = server.context()});
    for (int i = 0; i < 5; ++i) a.call("add", CallArgs().arg(i).arg(1));
    EXPECT_THROW(b.call("fail", CallArgs().arg("boom")), RemoteException);
    EXPECT_THROW(b.call("add", CallArgs().arg("not a number").arg(1)), RemoteException);
    EXPECT_THROW(b.call("nope"), RemoteException);
  }
  const ServerStats s = server.stats();
  std::map<std::string, CallStats> calls;
  for (const auto& c : s.calls) calls[c.name] = c;
  EXPECT_EQ(calls["add"].calls, 6u);  // the bad arguments count, as an error
  EXPECT_EQ(calls["add"].errors, 1u);
  EXPECT_EQ(calls["fail"].calls, 1u);
  EXPECT_EQ(calls["fail"].errors, 1u);
  EXPECT_TRUE(calls["fail"].mutating);
  EXPECT_GE(calls["add"].busy_s, 0.0);
  EXPECT_EQ(s.not_found, 1u);
  EXPECT_EQ(s.refused_busy, 0u);
  EXPECT_GE(s.requests, 8u);
  EXPECT_EQ(s.clients.size(), 2u);
  std::uint64_t requests = 0;
  for (const auto& c : s.clients) requests += c.requests;
  EXPECT_EQ(requests, s.requests);
  std::uint64_t timed = 0;
  for (auto n : s.duration_counts) timed += n;
  EXPECT_EQ(timed, 7u);  // every call that ran, not the unknown one
  EXPECT_EQ(s.duration_counts.size(), s.duration_bounds_s.size() + 1);
  server.stop();
}

TEST(RemoteMonitor, SnapshotTablesAndMetrics) {
  RemoteServer server(monitor_inproc_options());
  server.add_call("add", [](double a, double b) { return a + b; }, {.params = {{"a"}, {"b"}}});
  server.add_manual_stream("ticks", {.doc = "manual"});
  server.add_stream("off", 1, [] { return Value(Json(1)); }, {.enabled = false});
  server.start();
  auto monitor = RemoteMonitor::create(server, "remote", {{"role", "test"}});
  RemoteClient client({.endpoint = server.rpc_endpoint(), .context = server.context()});
  client.call("add", CallArgs().arg(1).arg(2));
  client.call("add", CallArgs().arg(1).arg(2));

  const auto j = monitor->snapshot();
  EXPECT_EQ(j["kind"], "remote");
  EXPECT_EQ(j["counters"]["calls"], 2);
  EXPECT_EQ(j["counters"]["call_errors"], 0);
  EXPECT_EQ(j["gauges"]["clients"], 1);
  EXPECT_EQ(j["info"]["role"], "test");
  EXPECT_EQ(j["info"]["calls endpoint"], server.rpc_endpoint());
  ASSERT_EQ(j["tables"].size(), 3u);
  const auto& calls = j["tables"][0];
  EXPECT_EQ(calls["id"], "calls");
  ASSERT_EQ(calls["rows"].size(), 1u);
  EXPECT_EQ(calls["rows"][0][0], "add");
  EXPECT_EQ(calls["rows"][0][1], 2);
  const auto& streams = j["tables"][1]["rows"];
  ASSERT_EQ(streams.size(), 2u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& r : streams) by_name[r[0].get<std::string>()] = r;
  EXPECT_EQ(by_name["off"][2], "disabled");
  EXPECT_EQ(by_name["ticks"][1], "manual");

  monitor->service()->refresh_metrics();
  auto text = net::metrics_text({{"remote", "", {}, monitor->service()->metrics()}});
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_calls_total{call=\"add\"} 2"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_call_errors_total{call=\"add\"} 0"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_call_duration_seconds_count 2"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_stream_subscribed{stream=\"off\"} 0"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_clients 1"));
  // A second scrape adds only what is new to the histogram.
  client.call("add", CallArgs().arg(1).arg(2));
  monitor->service()->refresh_metrics();
  monitor->service()->refresh_metrics();
  text = net::metrics_text({{"remote", "", {}, monitor->service()->metrics()}});
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_call_duration_seconds_count 3"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_remote_calls_total{call=\"add\"} 3"));
  server.stop();
}

}  // namespace
}  // namespace acheron::remote
