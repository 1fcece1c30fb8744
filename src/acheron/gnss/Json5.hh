// JSON5-shaped configuration text (PANOSETI's f9t_config.json5) to JSON.
//
// Accepted on top of JSON: // and /* */ comments; trailing commas in objects
// and arrays; unquoted object keys that are identifiers ([A-Za-z_$][A-Za-z0-9_$]*);
// single-quoted strings; hexadecimal integers (0x1F); a leading '+' and a
// leading or trailing decimal point on numbers (+1, .5, 5.). Not accepted:
// Infinity and NaN (JSON cannot carry them), multi-line strings, Unicode
// identifiers. Debian packages no C++ JSON5 parser, hence this normaliser in
// front of nlohmann::json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace acheron::gnss {

// Rewrites JSON5 text as JSON. Throws SetupError naming line and column.
std::string json5_to_json(std::string_view text);
// json5_to_json + nlohmann parse; throws SetupError.
nlohmann::json parse_json5(std::string_view text);
// Reads a file; throws SetupError naming the file.
nlohmann::json load_json5_file(const std::string& path);

}  // namespace acheron::gnss
