#include "acheron/core/Error.hh"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace acheron {
namespace {
constexpr std::array<std::pair<StatusCode, std::string_view>, 15> kNames{{
    {StatusCode::ok, "ok"},
    {StatusCode::cancelled, "cancelled"},
    {StatusCode::unknown, "unknown"},
    {StatusCode::invalid_argument, "invalid_argument"},
    {StatusCode::deadline_exceeded, "deadline_exceeded"},
    {StatusCode::not_found, "not_found"},
    {StatusCode::already_exists, "already_exists"},
    {StatusCode::permission_denied, "permission_denied"},
    {StatusCode::resource_exhausted, "resource_exhausted"},
    {StatusCode::failed_precondition, "failed_precondition"},
    {StatusCode::aborted, "aborted"},
    {StatusCode::out_of_range, "out_of_range"},
    {StatusCode::unimplemented, "unimplemented"},
    {StatusCode::internal, "internal"},
    {StatusCode::unavailable, "unavailable"},
}};
}  // namespace

std::string escaped(std::string_view text, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = std::min(text.size(), max_bytes);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

std::string_view to_string(StatusCode code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "unknown";
}

StatusCode status_code_from_string(std::string_view name) {
  for (const auto& [c, n] : kNames) {
    if (n == name) return c;
  }
  return StatusCode::unknown;
}

namespace detail {
void throw_setup_error(const char* condition, const std::string& message) {
  (void)condition;
  throw SetupError(message);
}

void assertion_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "acheron: internal invariant violated: %s (%s:%d)\n", condition, file, line);
  std::abort();
}
}  // namespace detail
}  // namespace acheron
