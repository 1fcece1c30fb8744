// Regular expressions that arrive from clients (CaptureUblox patterns, topic
// key filters), compiled by RE2: matching is linear in the input, compiling
// does not recurse on the pattern's nesting, and the compiled program's
// memory is bounded, so no pattern can crash, stall or exhaust a server.
//
// The syntax is RE2's, which covers what Python clients send to PANOSETI
// services: (?P<name>...) groups, \d \w \s, anchors, classes, repetition.
// Backreferences and look-around have no linear-time form and are refused
// with a message that says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Result.hh"

namespace re2 {
class RE2;
}

namespace acheron {

struct PatternLimits {
  // Longest pattern text accepted (bytes).
  std::size_t max_length = 4096;
  // RE2's budget for the compiled program (bytes); a pattern that needs more
  // is refused as too complex.
  std::int64_t max_memory = std::int64_t{1} << 20;
};

class Pattern final {
 public:
  // Compiles `text`; an invalid, too long or too complex pattern is an
  // invalid_argument error naming the pattern and the reason.
  static Result<Pattern> compile(std::string_view text, PatternLimits limits = {});

  // Combines patterns into one whose full_match() is true where any of them
  // matches at the start of the text, as Python's re.match does (free at the
  // end).
  static Result<Pattern> any_prefix(const std::vector<std::string>& patterns,
                                    PatternLimits limits = {});

  // The whole text matches.
  bool full_match(std::string_view text) const;

  const std::string& text() const noexcept { return text_; }

 private:
  Pattern(std::string text, std::shared_ptr<const re2::RE2> re)
      : text_(std::move(text)), re_(std::move(re)) {}
  std::string text_;
  std::shared_ptr<const re2::RE2> re_;  // immutable and thread-safe once built
};

}  // namespace acheron
