// Services carry a status provider and a metrics registry, and the HTTP
// front's source list follows the registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "acheron/hub/HttpStatus.hh"

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

}  // namespace
}  // namespace acheron::hub
