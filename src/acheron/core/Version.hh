// Build identification printed by `acheron version`.
#pragma once

#include <string_view>

namespace acheron {
std::string_view version();     // "0.1.0"
std::string_view git_commit();  // short commit hash, or "unknown"
}  // namespace acheron
