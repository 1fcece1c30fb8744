#include "acheron/core/Log.hh"
#include "acheron/core/LogFormat.hh"

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>
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

// One record through the json formatter, as the process logger writes it.
std::string json_record(spdlog::level::level_enum level, const std::string& message) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  spdlog::logger lg("acheron", sink);
  lg.set_formatter(log::make_json_formatter());
  lg.set_level(spdlog::level::trace);
  lg.log(level, "{}", message);
  return out.str();
}

TEST(JsonLog, a_record_is_one_json_object_on_one_line) {
  const auto line = json_record(spdlog::level::warn, "broker stopped");
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["logger"], "acheron");
  EXPECT_EQ(j["message"], "broker stopped");
  // ISO 8601 in UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z.
  const auto t = j["time"].get<std::string>();
  ASSERT_EQ(t.size(), 24u) << t;
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t[19], '.');
  EXPECT_EQ(t.back(), 'Z');
}

TEST(JsonLog, quotes_backslashes_newlines_and_control_bytes_stay_valid_json) {
  const std::string nasty =
      "say \"hi\"\\path\nsecond line\r\ttab \x01\x1f\x7f {\"k\": [1]} \xc3\xa9";
  const auto line = json_record(spdlog::level::err, nasty);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a newline in the message must be escaped";
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["message"].get<std::string>(), nasty) << "the message reads back byte for byte";
  EXPECT_EQ(j["level"], "error");
}

TEST(JsonLog, set_format_switches_the_process_logger_and_rejects_unknown_names) {
  EXPECT_EQ(log::format(), log::Format::text);
  log::set_format("json");
  EXPECT_EQ(log::format(), log::Format::json);
  try {
    log::set_format("xml");
    FAIL() << "xml accepted";
  } catch (const SetupError& e) {
    EXPECT_NE(std::string(e.what()).find("expected text or json"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log::format(), log::Format::json) << "a bad name must not change the format";
  log::set_format("text");
  EXPECT_EQ(log::format(), log::Format::text);
}

}  // namespace
}  // namespace acheron
