#include "acheron/core/Log.hh"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "acheron/core/Error.hh"

namespace acheron {
namespace {

// Restores the logger level after each test so tests do not leak state.
class LogLevel : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = log::logger().level(); }
  void TearDown() override {
    log::logger().set_level(saved_);
    ::unsetenv("ACHERON_LOG");
  }
  spdlog::level::level_enum saved_ = spdlog::level::info;
};

TEST_F(LogLevel, logger_is_named_acheron) {
  EXPECT_EQ(log::logger().name(), "acheron");
}

TEST_F(LogLevel, logger_is_a_single_instance) {
  EXPECT_EQ(&log::logger(), &log::logger());
}

TEST_F(LogLevel, set_level_accepts_every_documented_name) {
  const std::pair<const char*, spdlog::level::level_enum> names[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  };
  for (const auto& [name, level] : names) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(log::set_level(name));
    EXPECT_EQ(log::logger().level(), level);
  }
}

TEST_F(LogLevel, set_level_rejects_unknown_names) {
  log::set_level("warn");
  for (const char* bad : {"loud", "", "INFO", "verbose", "offf"}) {
    SCOPED_TRACE(bad);
    try {
      log::set_level(bad);
      FAIL() << "no exception";
    } catch (const SetupError& e) {
      EXPECT_NE(std::string(e.what()).find("unknown log level"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(log::logger().level(), spdlog::level::warn) << "a bad name must not change the level";
  }
}

TEST_F(LogLevel, apply_environment_uses_acheron_log) {
  log::set_level("info");
  ::setenv("ACHERON_LOG", "error", 1);
  log::apply_environment();
  EXPECT_EQ(log::logger().level(), spdlog::level::err);

  ::setenv("ACHERON_LOG", "loud", 1);
  EXPECT_THROW(log::apply_environment(), SetupError);
  EXPECT_EQ(log::logger().level(), spdlog::level::err);

  ::unsetenv("ACHERON_LOG");
  EXPECT_NO_THROW(log::apply_environment());
  EXPECT_EQ(log::logger().level(), spdlog::level::err) << "no variable leaves the level alone";
}

TEST_F(LogLevel, filtered_messages_are_not_logged) {
  log::set_level("error");
  EXPECT_FALSE(log::logger().should_log(spdlog::level::info));
  EXPECT_TRUE(log::logger().should_log(spdlog::level::err));
  // The helpers format and pass through without throwing.
  EXPECT_NO_THROW(log::info("hidden {}", 1));
  EXPECT_NO_THROW(log::error("test message from test_log {} {}", 2, "x"));
}

}  // namespace
}  // namespace acheron
