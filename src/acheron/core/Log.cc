#include "acheron/core/Log.hh"
#include "acheron/core/LogFormat.hh"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <spdlog/pattern_formatter.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "acheron/core/Error.hh"

namespace acheron::log {
namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v";
std::atomic<Format> g_format{Format::text};

// Appends `text` as the inside of a JSON string (RFC 8259 escapes; bytes
// >= 0x80 pass through, so UTF-8 stays UTF-8).
void append_json_escaped(spdlog::memory_buf_t& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
          out.append(std::string_view(esc, sizeof esc));
        } else {
          out.push_back(ch);
        }
    }
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto t = msg.time;
    const auto secs = time_point_cast<seconds>(t);
    const auto ms = duration_cast<milliseconds>(t - secs).count();
    const std::time_t tt = system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    dest.append(std::string_view("{\"time\":\""));
    dest.append(std::string_view(stamp));
    dest.append(std::string_view("\",\"level\":\""));
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(std::string_view(level.data(), level.size()));
    dest.append(std::string_view("\",\"logger\":\""));
    append_json_escaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    dest.append(std::string_view("\",\"message\":\""));
    append_json_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("\"}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto lg = std::make_shared<spdlog::logger>("acheron", sink);
  lg->set_pattern(kTextPattern);
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

void set_format(std::string_view name) {
  if (name == "text") {
    instance().set_pattern(kTextPattern);
    g_format = Format::text;
  } else if (name == "json") {
    instance().set_formatter(make_json_formatter());
    g_format = Format::json;
  } else {
    throw SetupError("unknown log format '" + std::string(name) +
                     "' (expected text or json) use one of those names");
  }
}

Format format() {
  return g_format;
}

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<JsonFormatter>();
}

void apply_environment() {
  if (const char* env = std::getenv("ACHERON_LOG"); env && *env) set_level(env);
}

}  // namespace acheron::log
