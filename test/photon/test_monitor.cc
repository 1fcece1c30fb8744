// The photon service's live figures: metrics, the status snapshot, the hit
// map's channel layout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "acheron/net/HttpFront.hh"
#include "acheron/photon/Monitor.hh"

namespace acheron::photon {
namespace {

using ::testing::HasSubstr;

wire::charon::DetectorInfo channels(std::vector<std::array<float, 3>> xyz) {
  wire::charon::DetectorInfo d;
  for (auto [x, y, z] : xyz) {
    d.x.push_back(x);
    d.y.push_back(y);
    d.z.push_back(z);
    d.type.push_back(0);
  }
  return d;
}

optics::HitRecord hit(std::uint32_t channel, float time) {
  optics::HitRecord h{};
  h.channel = channel;
  h.time = time;
  return h;
}

std::string metrics_of(const PhotonMonitor& m) {
  return net::metrics_text({{"photon", "", {}, m.service()->metrics()}});
}

TEST(HitMapLayout, FlatArraysAreDrawnFromAbove) {
  auto l = hit_map_layout(channels({{0, 0, 5}, {100, 0, 5}, {0, 100, 5.5f}}));
  EXPECT_EQ(l.projection, "x-y top view");
  EXPECT_EQ(l.u, (std::vector<float>{0, 100, 0}));
  EXPECT_EQ(l.v, (std::vector<float>{0, 0, 100}));
}

TEST(HitMapLayout, CylindersUnrollTheBarrelAndDrawCapsApart) {
  // Barrel at R = 1000 around z, caps at z = +-500 inside R.
  auto l = hit_map_layout(
      channels({{1000, 0, 0}, {0, 1000, 200}, {-1000, 0, -200}, {0, 0, 500}, {100, 0, -500}}));
  EXPECT_THAT(l.projection, HasSubstr("barrel unrolled"));
  EXPECT_NEAR(l.u[0], 0, 1e-3);
  EXPECT_NEAR(l.u[1], 1000 * std::numbers::pi / 2, 1e-2);
  EXPECT_FLOAT_EQ(l.v[1], 200);
  // The caps lie beyond the barrel's z range, top above and bottom below.
  EXPECT_GT(l.v[3], 500);
  EXPECT_LT(l.v[4], -500);
  EXPECT_FLOAT_EQ(l.u[4], 100);
}

TEST(HitMapLayout, SpheresUseRPhiAgainstZ) {
  // A channel at mid latitude is neither barrel nor cap.
  auto s = hit_map_layout(
      channels({{1000, 0, 0}, {0, 0, 1000}, {0, 0, -1000}, {700, 0, 700}, {0, 1000, 0}}));
  EXPECT_EQ(s.projection, "R phi against z");
  ASSERT_EQ(s.u.size(), 5u);
  EXPECT_FLOAT_EQ(s.v[3], 700);
}

TEST(PhotonMonitor, CountsEventsHitsAndErrorsInMetricsAndSnapshot) {
  auto m = PhotonMonitor::create("photon", "test", channels({{0, 0, 0}, {1, 0, 0}, {2, 0, 0}}),
                                 {{"seed", 5}});
  EXPECT_FALSE(m->snapshot().contains("gauges"));  // no queue until set_queue()
  std::vector<optics::HitRecord> hits = {hit(0, 1.2f), hit(0, 1.3f), hit(2, 30), hit(7, 1e9f)};
  m->record({.events = 1, .photons = 1000, .hits = hits, .seconds = 0.003});
  m->record({.events = 2, .photons = 500, .hits = {}, .seconds = 0.5, .failed = false});
  m->record({.events = 1, .photons = 10, .hits = {}, .seconds = 0.001, .failed = true});
  m->set_queue(5, 3, 2);  // busy is capped at the slots
  m->count_error("busy", 2);
  m->count_error("rejected");

  const auto text = metrics_of(*m);
  EXPECT_THAT(text, HasSubstr("acheron_photon_requests_total 4"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_photons_total 1510"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_hits_total 4"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_request_duration_seconds_count 3"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_request_duration_seconds_bucket{le=\"0.005\"} 2"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_queue_depth 5"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_workers{state=\"busy\"} 2"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_workers{state=\"idle\"} 0"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_errors_total{kind=\"busy\"} 2"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_errors_total{kind=\"rejected\"} 1"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_errors_total{kind=\"failed\"} 1"));
  EXPECT_THAT(text, HasSubstr("acheron_photon_channels 3"));

  const auto s = m->service()->status();
  EXPECT_EQ(s["kind"], "photon");
  EXPECT_EQ(s["counters"]["requests"], 4);
  EXPECT_EQ(s["counters"]["photons"], 1510);
  EXPECT_EQ(s["counters"]["hits"], 4);
  EXPECT_EQ(s["counters"]["errors"], 4);
  EXPECT_EQ(s["gauges"]["queue_depth"], 5);
  EXPECT_EQ(s["info"]["seed"], 5);
  // Latency buckets: 3 ms, 0.5 s, 1 ms.
  EXPECT_EQ(s["latency"]["counts"][0], 1);
  EXPECT_EQ(s["latency"]["counts"][2], 1);
  EXPECT_EQ(s["latency"]["counts"][8], 1);
  // The hit map: channel 0 had 2 hits, decayed by the 3 later events; the
  // hit on channel 7 (not in the table) is not drawn.
  const auto& map = s["hitmap"];
  ASSERT_EQ(map["values"].size(), 3u);
  ASSERT_EQ(map["u"].size(), 3u);
  const double decay3 = std::pow(PhotonMonitor::kDecay, 3);
  EXPECT_NEAR(map["values"][0].get<double>(), 2 * decay3, 0.01);
  EXPECT_NEAR(map["values"][1].get<double>(), 0, 1e-9);
  EXPECT_NEAR(map["values"][2].get<double>(), decay3, 0.01);
  // Hit times: bins of 0.5 ns; 1.2 and 1.3 ns in bin 2, 30 ns in bin 60,
  // the absurd time in the last bin.
  const auto& times = s["hit_times"]["counts"];
  ASSERT_EQ(times.size(), PhotonMonitor::kHitTimeBins);
  EXPECT_NEAR(times[2].get<double>(), 2 * decay3, 0.01);
  EXPECT_NEAR(times[60].get<double>(), decay3, 0.01);
  EXPECT_NEAR(times[PhotonMonitor::kHitTimeBins - 1].get<double>(), decay3, 0.01);
}

TEST(PhotonMonitor, StatusAfterTheMonitorIsGoneSaysSo) {
  std::shared_ptr<hub::Service> service;
  {
    auto m = PhotonMonitor::create("photon", "test", channels({{0, 0, 0}}));
    service = m->service();
  }
  EXPECT_THAT(service->status()["error"].get<std::string>(), HasSubstr("stopped"));
}

}  // namespace
}  // namespace acheron::photon
