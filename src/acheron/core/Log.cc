#include "acheron/core/Log.hh"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "acheron/core/Error.hh"

namespace acheron::log {
namespace {
std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto lg = std::make_shared<spdlog::logger>("acheron", sink);
  lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  lg->set_level(spdlog::level::info);
  return lg;
}

spdlog::logger& instance() {
  static std::shared_ptr<spdlog::logger> lg = [] {
    auto l = make_logger();
    if (const char* env = std::getenv("ACHERON_LOG"); env && *env) {
      auto level = spdlog::level::from_str(env);
      // from_str maps unknown names to "off"; only accept real names.
      if (level != spdlog::level::off || std::string_view(env) == "off") l->set_level(level);
    }
    return l;
  }();
  return *lg;
}
}  // namespace

spdlog::logger& logger() {
  return instance();
}

void set_level(std::string_view name) {
  std::string s(name);
  auto level = spdlog::level::from_str(s);
  if (level == spdlog::level::off && s != "off") {
    throw SetupError("unknown log level '" + s +
                     "' (expected trace, debug, info, warn, error, critical or off)"
                     " use one of those names");
  }
  instance().set_level(level);
}

void apply_environment() {
  if (const char* env = std::getenv("ACHERON_LOG"); env && *env) set_level(env);
}

}  // namespace acheron::log
