#include "acheron/core/Pattern.hh"

#include <re2/re2.h>

namespace acheron {
namespace {

std::string shown(std::string_view text) {
  // Error messages quote at most this much of a client's pattern.
  constexpr std::size_t kShown = 80;
  if (text.size() <= kShown) return std::string(text);
  return std::string(text.substr(0, kShown)) + "... (" + std::to_string(text.size()) +
         " bytes)";
}

std::string hint(re2::RE2::ErrorCode code, const std::string& arg) {
  switch (code) {
    case re2::RE2::ErrorBadEscape:
      // \1..\9: a backreference in Perl and Python syntax.
      if (arg.size() == 2 && arg[1] >= '1' && arg[1] <= '9') {
        return "; backreferences are not supported (no linear-time form)";
      }
      return "";
    case re2::RE2::ErrorBadPerlOp:
    case re2::RE2::ErrorBadNamedCapture:
      return "; backreferences and look-around are not supported, use plain groups";
    case re2::RE2::ErrorPatternTooLarge:
      return "; simplify the pattern";
    case re2::RE2::ErrorRepeatSize:
      return "; counted repetition is limited to 1000";
    default:
      return "";
  }
}

}  // namespace

Result<Pattern> Pattern::compile(std::string_view text, PatternLimits limits) {
  if (text.size() > limits.max_length) {
    return Result<Pattern>::failure(
        StatusCode::invalid_argument,
        "pattern '" + shown(text) + "' is too long (" + std::to_string(text.size()) +
            " bytes, the limit is " + std::to_string(limits.max_length) +
            ") use a shorter pattern");
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(limits.max_memory);
  options.set_encoding(re2::RE2::Options::EncodingUTF8);
  auto re = std::make_shared<const re2::RE2>(re2::StringPiece(text.data(), text.size()), options);
  if (!re->ok()) {
    return Result<Pattern>::failure(StatusCode::invalid_argument,
                                    "invalid pattern '" + shown(text) + "' (" + re->error() + ")" +
                                        hint(re->error_code(), re->error_arg()));
  }
  return Pattern(std::string(text), std::move(re));
}

Result<Pattern> Pattern::any_prefix(const std::vector<std::string>& patterns,
                                    PatternLimits limits) {
  std::string combined;
  for (const auto& p : patterns) {
    // Each alone first, so an error names the pattern the client wrote.
    if (auto one = compile(p, limits); !one) return one.error();
    if (!combined.empty()) combined += '|';
    combined += "(?:" + p + ")";
  }
  combined = "(?:" + combined + ")(?s:.*)";
  limits.max_length = std::max(limits.max_length, combined.size());
  return compile(combined, limits);
}

bool Pattern::full_match(std::string_view text) const {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

}  // namespace acheron
