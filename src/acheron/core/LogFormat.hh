// The format of the process logger's records (core/Log.hh): text for people,
// json for collectors, one JSON object per line. The CLI's --log-format.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string_view>

namespace acheron::log {

// How log records (and the ready line, see core/Ready.hh) are written.
enum class Format { text, json };

// Sets the format by name: text or json. Throws SetupError for any other
// name (and leaves the format as it was).
void set_format(std::string_view name);
Format format();

// The json format's record formatter: one JSON object per line with the keys
// time (ISO 8601 UTC, milliseconds), level, logger and message; the message is
// escaped so quotes, backslashes, newlines and control bytes stay valid JSON.
std::unique_ptr<spdlog::formatter> make_json_formatter();

}  // namespace acheron::log
