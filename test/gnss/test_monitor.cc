// The UbloxControl status snapshot and metrics (gnss/Monitor.hh): timing
// from the latest TIM-TP and NAV-TIMEUTC, the qErr histogram, counts by
// identity and their limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "acheron/gnss/Monitor.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::gnss {
namespace {

nlohmann::json tim_tp(double q_err, double invalid = 0) {
  return {{"towMS", 5000.0}, {"week", 2300.0}, {"qErr", q_err},     {"qErrInvalid", invalid},
          {"timeBase", 1.0}, {"raim", 2.0},    {"TpNotLocked", 0.0}};
}

nlohmann::json rows_of(const nlohmann::json& snapshot, const std::string& id) {
  for (const auto& t : snapshot["tables"]) {
    if (t["id"] == id) return t["rows"];
  }
  return nullptr;
}

TEST(GnssMonitor, TimingAndQuantisationErrorFromTheLatestMessages) {
  UbloxService service;
  auto monitor = GnssMonitor::create(service, "gnss", {{"listening", "test"}});
  auto s = monitor->snapshot();
  EXPECT_EQ(s["kind"], "gnss");
  EXPECT_EQ(s["counters"]["messages"], 0);
  EXPECT_TRUE(rows_of(s, "timing").empty());
  EXPECT_EQ(s["plot_gauges"], nlohmann::json::array());
  EXPECT_EQ(rows_of(s, "receiver")[0], nlohmann::json({"state", "stopped"}));

  monitor->observe("TIM-TP", tim_tp(-2500), 1'000'000'000);
  monitor->observe("TIM-TP", tim_tp(300), 2'000'000'000);
  monitor->observe("TIM-TP", tim_tp(9999, 1), 3'000'000'000);  // invalid: not in the histogram
  monitor->observe("NAV-TIMEUTC",
                   {{"year", 2026.0},
                    {"month", 12.0},
                    {"day", 7.0},
                    {"hour", 3.0},
                    {"min", 4.0},
                    {"sec", 5.0},
                    {"validUTC", 1.0},
                    {"tAcc", 55.0},
                    {"nano", -12.0}},
                   3'000'000'000);
  s = monitor->snapshot();
  EXPECT_EQ(s["counters"]["messages"], 4);
  EXPECT_EQ(s["counters"]["TIM-TP"], 3);
  EXPECT_EQ(s["rates"]["TIM-TP"], "TIM-TP messages/s");
  EXPECT_EQ(s["gauges"]["qerr_ps"], 9999);  // the latest, as the receiver sent it
  EXPECT_EQ(s["gauges"]["t_acc_ns"], 55);
  EXPECT_EQ(s["plot_gauges"], nlohmann::json::array({"qerr_ps"}));
  std::map<std::string, nlohmann::json> timing;
  for (const auto& r : rows_of(s, "timing")) timing[r[0].get<std::string>()] = r[1];
  EXPECT_EQ(timing["UTC (NAV-TIMEUTC)"], "2026-12-07 03:04:05");
  EXPECT_EQ(timing["qErr valid"], "no");
  EXPECT_EQ(timing["time base"], "UTC");
  const auto& hist = s["histograms"][0];
  EXPECT_EQ(hist["id"], "qerr");
  // Bounds -4000 ... 4000 ps in steps of 1000: -2500 in (-3000, -2000], 300 in (0, 1000].
  nlohmann::json expected = nlohmann::json::array();
  for (int i = 0; i < 10; ++i) expected.push_back(i == 2 || i == 5 ? 1 : 0);
  EXPECT_EQ(hist["counts"], expected);
  EXPECT_EQ(hist["labels"][0], "≤-4000 ps");

  monitor->service()->refresh_metrics();
  const auto text = net::metrics_text({{"gnss", "", {}, monitor->service()->metrics()}});
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_gnss_messages_total{identity=\"TIM-TP\"} 3"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_gnss_tim_tp_qerr_seconds_count 2"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_gnss_io_running 0"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_gnss_init_requests_total{result=\"failed\"} 0"));
}

TEST(GnssMonitor, IdentitiesBeyondTheLimitCountAsOther) {
  UbloxService service;
  auto monitor = GnssMonitor::create(service);
  for (std::size_t i = 0; i < GnssMonitor::kMaxIdentities + 2; ++i) {
    monitor->observe("X-" + std::to_string(i), nlohmann::json::object(), 0);
  }
  const auto s = monitor->snapshot();
  EXPECT_EQ(s["counters"]["other"], 2);
  EXPECT_EQ(s["counters"]["messages"], GnssMonitor::kMaxIdentities + 2);
}

TEST(GnssMonitor, FailedInitIsCountedWithItsMessage) {
  UbloxService service;
  auto monitor = GnssMonitor::create(service);
  EXPECT_THROW(service.init({{"device", "/etc/passwd"}}, true), std::exception);
  const auto rows = rows_of(monitor->snapshot(), "receiver");
  std::map<std::string, nlohmann::json> receiver;
  for (const auto& r : rows) receiver[r[0].get<std::string>()] = r[1];
  EXPECT_EQ(receiver["InitF9t ok / failed"], "0 / 1");
  EXPECT_FALSE(receiver["last InitF9t failure"].get<std::string>().empty());
}

}  // namespace
}  // namespace acheron::gnss
