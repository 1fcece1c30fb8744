#include "acheron/core/Ready.hh"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "acheron/core/Error.hh"
#include "acheron/core/Version.hh"

namespace acheron {
namespace {

const std::string kVersion(version());

TEST(ReadyLine, text_names_program_version_service_and_every_endpoint_in_order) {
  const auto line = ready_line("photon serve",
                               {{"charon", "tcp://127.0.0.1:41234"},
                                {"chroma", "tcp://127.0.0.1:5024"},
                                {"http", "http://127.0.0.1:8080/"}},
                               log::Format::text);
  EXPECT_EQ(line, "acheron " + kVersion +
                      " photon serve ready: charon tcp://127.0.0.1:41234, chroma "
                      "tcp://127.0.0.1:5024, http http://127.0.0.1:8080/");
}

TEST(ReadyLine, json_is_one_object_with_the_same_facts) {
  const auto line =
      ready_line("broker", {{"client", "tcp://0.0.0.0:5555"}, {"worker", "tcp://0.0.0.0:6667"}},
                 log::Format::json);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ready"], true);
  EXPECT_EQ(j["service"], "broker");
  EXPECT_EQ(j["version"], kVersion);
  EXPECT_EQ(j["endpoints"],
            (nlohmann::json{{"client", "tcp://0.0.0.0:5555"}, {"worker", "tcp://0.0.0.0:6667"}}));
}

TEST(ReadyLine, a_repeated_name_gets_a_numbered_suffix) {
  const auto line = ready_line(
      "photon serve", {{"chroma", "tcp://a:1"}, {"chroma", "tcp://b:2"}, {"chroma", "tcp://c:3"}},
      log::Format::text);
  EXPECT_NE(line.find("ready: chroma tcp://a:1, chroma-2 tcp://b:2, chroma-3 tcp://c:3"),
            std::string::npos)
      << line;
  const auto j =
      nlohmann::json::parse(ready_line("x", {{"a", "1"}, {"a", "2"}}, log::Format::json));
  EXPECT_EQ(j["endpoints"], (nlohmann::json{{"a", "1"}, {"a-2", "2"}}));
}

TEST(ReadyLine, refuses_what_could_not_be_read_back) {
  EXPECT_THROW(ready_line("", {{"a", "b"}}, log::Format::text), SetupError);
  EXPECT_THROW(ready_line("svc", {}, log::Format::text), SetupError);
  EXPECT_THROW(ready_line("svc", {{"a b", "x"}}, log::Format::text), SetupError);
  EXPECT_THROW(ready_line("svc", {{"a", "x, y"}}, log::Format::text), SetupError);
  EXPECT_THROW(ready_line("svc", {{"a", ""}}, log::Format::text), SetupError);
}

TEST(ReadyLine, both_formats_parse_back_to_what_was_printed) {
  const std::vector<ReadyEndpoint> eps = {{"tcp", "[::]:50051"},
                                          {"unix", "unix:///tmp/daq_data.sock"},
                                          {"http", "http://127.0.0.1:9/"}};
  for (const auto format : {log::Format::text, log::Format::json}) {
    const auto info = parse_ready_line(ready_line("daq serve", eps, format) + "\n");
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->service, "daq serve");
    EXPECT_EQ(info->version, kVersion);
    ASSERT_EQ(info->endpoints.size(), 3u);
    EXPECT_EQ((*info)["unix"], "unix:///tmp/daq_data.sock");
    EXPECT_EQ(info->endpoints[0].name, "tcp");
    EXPECT_EQ((*info)["nosuch"], "");
  }
}

TEST(ReadyLine, other_lines_are_not_ready_lines) {
  for (const char* line : {"", "serving on tcp://127.0.0.1:5555", "acheron 0.1.0 broker ready: ",
                           "acheron 0.1.0 broker ready: client", "{\"ready\": false}",
                           "{\"level\": \"info\", \"message\": \"ready\"}", "{not json"}) {
    SCOPED_TRACE(line);
    EXPECT_FALSE(parse_ready_line(line).has_value());
  }
}

}  // namespace
}  // namespace acheron
