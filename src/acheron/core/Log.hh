// Logging facade over spdlog. One process-wide logger named "acheron" that
// writes to stderr. The level comes from set_log_level() (the CLI's
// --log-level) or, when that is not called, from the ACHERON_LOG environment
// variable; the default is "info".
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace acheron::log {

// The shared logger; created on first use.
spdlog::logger& logger();

// Sets the level by name: trace, debug, info, warn, error, critical, off.
// Throws SetupError for any other name.
void set_level(std::string_view name);

// Applies ACHERON_LOG if it is set (called by logger() on creation).
void apply_environment();

template <class... Args>
void trace(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  logger().trace(fmt, std::forward<Args>(args)...);
}
template <class... Args>
void debug(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  logger().debug(fmt, std::forward<Args>(args)...);
}
template <class... Args>
void info(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  logger().info(fmt, std::forward<Args>(args)...);
}
template <class... Args>
void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  logger().warn(fmt, std::forward<Args>(args)...);
}
template <class... Args>
void error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  logger().error(fmt, std::forward<Args>(args)...);
}

}  // namespace acheron::log
