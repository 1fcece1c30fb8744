// Fuzz target: regular expressions as clients send them (CaptureUblox
// patterns, topic key filters) through Pattern::compile and
// Pattern::any_prefix, then matched against a few texts.
//
// Input: a first byte choosing the memory budget, then fields separated by
// 0xFF bytes (never part of UTF-8): the first is a text to match, the others
// are patterns.
//
// Invariants: nothing crashes or stalls (libFuzzer's -timeout catches a
// compile or match that is not linear); a refusal is invalid_argument with a
// message that quotes a bounded part of the pattern; any_prefix accepts
// whatever patterns compile one by one (unless the combination exceeds the
// memory budget), and its full_match is exactly "some pattern matches at
// the start of the text" as RE2 itself computes it pattern by pattern.
#include <re2/re2.h>

#include <string>
#include <string_view>
#include <vector>

#include "FuzzInput.hh"
#include "acheron/core/Pattern.hh"

namespace {

using acheron::Pattern;
using acheron::PatternLimits;
using acheron::StatusCode;

// The independent answer: does `pattern` match a prefix of `text`?
bool prefix_match(const std::string& pattern, std::string_view text, const PatternLimits& limits) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(limits.max_memory);
  options.set_encoding(re2::RE2::Options::EncodingUTF8);
  const re2::RE2 re(pattern, options);
  FUZZ_CHECK(re.ok());
  return re.Match(re2::StringPiece(text.data(), text.size()), 0, text.size(),
                  re2::RE2::ANCHOR_START, nullptr, 0);
}

void check_refusal(const acheron::ErrorInfo& error) {
  FUZZ_CHECK(error.code == StatusCode::invalid_argument);
  FUZZ_CHECK(!error.message.empty());
  // The pattern is quoted in part (80 bytes), RE2's reason names the
  // offending piece; either way a client cannot make the reply or the log
  // line as long as its pattern.
  FUZZ_CHECK(error.message.size() < 600);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  acheron::fuzz::Input in(data, size);
  const std::uint8_t mode = in.u8();
  PatternLimits limits;
  if (mode & 1) limits.max_memory = 16 << 10;  // small budget: "too complex" refusals
  if (mode & 2) limits.max_length = 64;

  std::vector<std::string> fields;
  while (!in.empty() && fields.size() < 6) fields.emplace_back(in.until('\xff'));
  if (fields.empty()) return 0;
  const std::string text = fields[0];
  const std::vector<std::string> patterns(fields.begin() + 1, fields.end());
  const std::string_view texts[] = {text, "", "TIM-TP", "NAV-TIMEUTC", "module_224/movie"};

  bool all_compile = true;
  for (const auto& p : patterns) {
    auto compiled = Pattern::compile(p, limits);
    if (!compiled) {
      check_refusal(compiled.error());
      all_compile = false;
      continue;
    }
    FUZZ_CHECK(compiled->text() == p);
    for (auto t : texts) (void)compiled->full_match(t);
    (void)compiled->full_match(p);
  }

  // An empty list is "every message" to the services, which never combine it.
  if (patterns.empty()) return 0;
  auto any = Pattern::any_prefix(patterns, limits);
  if (!any) {
    check_refusal(any.error());
    // Patterns that compile alone combine, unless together they need more
    // than the memory budget.
    FUZZ_CHECK(!all_compile || any.error().message.find("pattern too large") != std::string::npos);
    return 0;
  }
  FUZZ_CHECK(all_compile);
  for (auto t : texts) {
    bool expected = false;
    for (const auto& p : patterns) expected = expected || prefix_match(p, t, limits);
    FUZZ_CHECK(any->full_match(t) == expected);
  }
  return 0;
}
