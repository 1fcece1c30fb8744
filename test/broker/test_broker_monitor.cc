// The broker's metrics and status snapshot (BrokerMonitor) fed from a
// CharonRouter driven on a fake clock.
#include "acheron/broker/Monitor.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../charon/RouterFixture.hh"
#include "../charon/RouterTestUtil.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::broker {
namespace {
using namespace std::chrono_literals;
using namespace charon::testutil;

TEST_F(RouterTest, BrokerMonitorTurnsRouterStatsIntoMetricsAndASnapshot) {
  using ::testing::HasSubstr;
  auto m = BrokerMonitor::create("broker", "test", {{"role", "broker"}});
  auto metrics = [&] { return net::metrics_text({{"broker", "", {}, m->service()->metrics()}}); };
  add_worker("w1");
  client("c1", photon_request(5, 4));
  now += 3ms;
  complete(jobs(last).at(0));
  client("bad", {text("PHOTONDATA"), text("x")});  // malformed: rejected
  const std::string id("\x00\x01\xff", 3);         // a generated (binary) identity
  ready(id);
  m->update(r(), now, {{"w1", "127.0.0.1"}});
  m->update(r(), now, {{"w1", "127.0.0.1"}});  // no change: nothing counted twice
  const auto text = metrics();
  EXPECT_THAT(text, HasSubstr("acheron_broker_photon_requests_total 1\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_photons_total 4\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_hits_total 4\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_completed_total 1\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_request_duration_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_request_duration_seconds_sum 0.003"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_request_duration_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_errors_total{kind=\"rejected\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_workers{state=\"idle\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_workers{state=\"probing\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_queue_depth 0\n"));
  EXPECT_THAT(text, HasSubstr("acheron_broker_host_limited_total 0\n"));

  const auto s = m->service()->status();
  EXPECT_EQ(s["kind"], "broker");
  EXPECT_EQ(s["counters"]["photons"], 4);
  EXPECT_EQ(s["counters"]["errors"], 1);
  EXPECT_EQ(s["info"]["role"], "broker");
  ASSERT_EQ(s["workers"].size(), 2u);
  // Identity order: the binary one first, shown in hex.
  EXPECT_EQ(s["workers"][0]["id"], "0x0001ff");
  EXPECT_EQ(s["workers"][0]["state"], "probing");
  EXPECT_EQ(s["workers"][1]["id"], "w1");
  EXPECT_EQ(s["workers"][1]["peer"], "127.0.0.1");
  EXPECT_EQ(s["workers"][1]["state"], "idle");
}

TEST_F(RouterTest, BrokerMonitorShowsEachWorkersNodeAndSlurmJob) {
  using ::testing::HasSubstr;
  using ::testing::Not;
  auto m = BrokerMonitor::create("broker", "test");
  auto metrics = [&] { return net::metrics_text({{"broker", "", {}, m->service()->metrics()}}); };
  add_worker("A");
  add_worker("B");  // a ChAR0N worker: no WORKER_INFO, no info series
  backend({text("A"), text("\x03{\"node\":\"n17\",\"slurm_job_id\":\"4242\","
                           "\"slurm_array_job_id\":\"4240\",\"slurm_array_task_id\":\"2\","
                           "\"slurm_restart_count\":\"1\"}")});
  m->update(r(), now, {});
  const auto out = metrics();
  EXPECT_THAT(out, HasSubstr("acheron_broker_worker_info{"));
  EXPECT_THAT(out, HasSubstr("node=\"n17\""));
  EXPECT_THAT(out, HasSubstr("slurm_array_job_id=\"4240\""));
  EXPECT_THAT(out, HasSubstr("slurm_array_task_id=\"2\""));
  EXPECT_THAT(out, HasSubstr("slurm_restart_count=\"1\""));
  EXPECT_THAT(out, HasSubstr("worker=\"A\""));
  EXPECT_THAT(out, Not(HasSubstr("worker=\"B\"")));
  const auto s = m->service()->status();
  ASSERT_EQ(s["workers"].size(), 2u);
  EXPECT_EQ(s["workers"][0]["node"], "n17");
  EXPECT_EQ(s["workers"][0]["slurm_array_task_id"], "2");
  EXPECT_EQ(s["workers"][1]["node"], "");
  // A worker that leaves takes its series with it.
  backend({text("A"), text("\x05")});  // DISCONNECT
  m->update(r(), now, {});
  EXPECT_THAT(metrics(), Not(HasSubstr("acheron_broker_worker_info{")));
}

}  // namespace
}  // namespace acheron::broker
