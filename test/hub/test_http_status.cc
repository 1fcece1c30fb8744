// Services carry a status provider and a metrics registry, and the HTTP
// front's source list follows the registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <stdexcept>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "acheron/hub/HttpStatus.hh"
#include "acheron/hub/Metrics.hh"

namespace acheron::hub {
namespace {

TEST(ServiceStatus, DefaultsToAnEmptyObjectAndFollowsTheProvider) {
  Service s("svc");
  EXPECT_EQ(s.status(), nlohmann::json::object());
  int n = 0;
  s.set_status([&n] { return nlohmann::json{{"n", ++n}}; });
  EXPECT_EQ(s.status()["n"], 1);
  EXPECT_EQ(s.status()["n"], 2);
  s.set_status({});
  EXPECT_EQ(s.status(), nlohmann::json::object());
  ASSERT_NE(s.metrics(), nullptr);
}

TEST(ServiceStatus, HttpSourcesListTheRegistryAsItIsNow) {
  auto registry = std::make_shared<Registry>();
  auto a = registry->add("a", "first");
  a->set_status([] { return nlohmann::json{{"x", 1}}; });
  prometheus::BuildCounter().Name("acheron_a_total").Register(*a->metrics()).Add({}).Increment();
  const auto sources = http_sources(registry);
  auto list = sources();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "a");
  EXPECT_EQ(list[0].doc, "first");
  EXPECT_EQ(list[0].status()["x"], 1);
  EXPECT_THAT(net::metrics_text(list), ::testing::HasSubstr("acheron_a_total 1"));
  registry->add("b");
  EXPECT_EQ(sources().size(), 2u);
  registry->remove("a");
  list = sources();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "b");
}

TEST(ServiceStatus, MetricsAreRefreshedBeforeEachScrape) {
  auto registry = std::make_shared<Registry>();
  auto a = registry->add("a");
  auto& counter = add_counter(*a->metrics(), "acheron_a_things_total", "things");
  double total = 3;  // a count the service keeps itself
  int refreshes = 0;
  a->set_metrics_refresh([&] {
    ++refreshes;
    raise_to(counter, total);
  });
  const auto sources = http_sources(registry);
  EXPECT_THAT(net::metrics_text(sources()), ::testing::HasSubstr("acheron_a_things_total 3"));
  total = 5;
  EXPECT_THAT(net::metrics_text(sources()), ::testing::HasSubstr("acheron_a_things_total 5"));
  total = 4;  // a counter never goes down
  EXPECT_THAT(net::metrics_text(sources()), ::testing::HasSubstr("acheron_a_things_total 5"));
  EXPECT_EQ(refreshes, 3);
  // A refresh that throws still leaves the scrape with the last values.
  a->set_metrics_refresh([] { throw std::runtime_error("gone"); });
  EXPECT_THAT(net::metrics_text(sources()), ::testing::HasSubstr("acheron_a_things_total 5"));
}

TEST(BucketHistogram, CountsPerBucketForThePageAndCumulativeForPrometheus) {
  Service s("h");
  const std::array<double, 3> bounds{0.001, 0.01, 0.1};
  BucketHistogram h(*s.metrics(), "acheron_h_seconds", "test", bounds);
  for (double v : {0.0005, 0.001, 0.005, 0.05, 0.05, 2.0}) h.observe(v);
  const auto j = h.json();
  EXPECT_EQ(j["bounds_s"], nlohmann::json({0.001, 0.01, 0.1}));
  // 0.001 is in the first bucket (le = 0.001), as Prometheus counts it.
  EXPECT_EQ(j["counts"], nlohmann::json({2, 1, 2, 1}));
  EXPECT_EQ(h.count(), 6u);
  const auto text = net::metrics_text({{"h", "", {}, s.metrics()}});
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_h_seconds_bucket{le=\"0.01\"} 3"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_h_seconds_count 6"));
}

}  // namespace
}  // namespace acheron::hub
