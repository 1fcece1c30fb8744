#include "acheron/core/Pattern.hh"

#include <re2/re2.h>

namespace acheron {
namespace {

// Error messages quote at most this much of a client's pattern.
constexpr std::size_t kShown = 80;

std::string shown(std::string_view text) {
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

// RE2's reason ends with the offending text, which for a missing
// parenthesis is the whole pattern: quoted in part like the pattern.
std::string reason(const re2::RE2& re) {
  std::string why = re.error();
  const std::string& arg = re.error_arg();
  if (arg.size() > kShown && why.ends_with(arg)) {
    why.resize(why.size() - arg.size());
    why += shown(arg);
  }
  return why;
}

// True if `pattern` (valid on its own) ends inside a \Q...\E quotation: RE2
// quotes to the end of the text when \E is missing, so anything appended to
// the pattern would be quoted too. \Q cannot appear inside a character class.
bool ends_quoted(std::string_view pattern) {
  bool quoted = false;
  for (std::size_t i = 0; i < pattern.size();) {
    if (quoted) {
      if (pattern.substr(i, 2) == "\\E") {
        quoted = false;
        i += 2;
      } else {
        ++i;
      }
    } else if (pattern[i] == '\\') {
      quoted = i + 1 < pattern.size() && pattern[i + 1] == 'Q';
      i += 2;
    } else {
      ++i;
    }
  }
  return quoted;
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
                                    "invalid pattern '" + shown(text) + "' (" + reason(*re) + ")" +
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
    combined += "(?:" + p + (ends_quoted(p) ? "\\E)" : ")");
  }
  // \C: any byte, so that the rest of the text may be anything, not only
  // valid UTF-8 (which is all `.` matches).
  combined = "(?:" + combined + ")\\C*";
  limits.max_length = std::max(limits.max_length, combined.size());
  return compile(combined, limits);
}

bool Pattern::full_match(std::string_view text) const {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

}  // namespace acheron
