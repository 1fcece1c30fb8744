#include "acheron/gnss/Json5.hh"

#include <cctype>
#include <fstream>
#include <sstream>

#include "acheron/core/Error.hh"

namespace acheron::gnss {
namespace {

class Normaliser {
 public:
  explicit Normaliser(std::string_view s) : s_(s) {}

  std::string run() {
    while (pos_ < s_.size()) step();
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw SetupError("JSON5 text is invalid at line " + std::to_string(line) + ", column " +
                     std::to_string(col) + " (" + what +
                     ") fix the configuration (comments, trailing commas, unquoted keys, "
                     "single quotes and hex numbers are accepted)");
  }

  char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0';
  }

  // Skips whitespace and comments, copying whitespace.
  void skip_space() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        out_.push_back(c);
        ++pos_;
      } else if (c == '/' && peek(1) == '/') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == '/' && peek(1) == '*') {
        const auto end = s_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) fail("unterminated /* comment");
        for (std::size_t i = pos_; i < end + 2; ++i) {
          if (s_[i] == '\n') out_.push_back('\n');  // keep line numbers for the JSON parser
        }
        pos_ = end + 2;
      } else {
        return;
      }
    }
  }

  void step() {
    skip_space();
    if (pos_ >= s_.size()) return;
    const char c = s_[pos_];
    if (c == ',') {
      // Drop a trailing comma: the next significant character closes. The
      // look-ahead writes its whitespace aside, so out_ needs no copy (a
      // copy per comma made long lists quadratic).
      std::size_t save_pos = pos_;
      ++pos_;
      std::string ws_out;
      std::swap(out_, ws_out);
      skip_space();
      std::swap(out_, ws_out);
      if (peek() == '}' || peek() == ']') {
        out_ += ws_out;
        return;
      }
      pos_ = save_pos + 1;
      out_.push_back(',');
      return;
    }
    if (c == '"' || c == '\'') return string(c);
    if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':') {
      out_.push_back(c);
      ++pos_;
      return;
    }
    if (c == '+' || c == '-' || c == '.' || std::isdigit(static_cast<unsigned char>(c)))
      return number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$') return word();
    fail(std::string("unexpected character '") + c + "'");
  }

  void string(char quote) {
    ++pos_;
    out_.push_back('"');
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == quote) break;
      if (c == '\n') fail("line break inside a string");
      if (c == '\\') {
        if (pos_ >= s_.size()) fail("unterminated string");
        const char e = s_[pos_++];
        if (e == '\'') {
          out_.push_back('\'');  // \' is JSON5 only
        } else {
          out_.push_back('\\');
          out_.push_back(e);
        }
        continue;
      }
      if (c == '"') {
        out_ += "\\\"";  // a double quote inside a single-quoted string
        continue;
      }
      out_.push_back(c);
    }
    out_.push_back('"');
  }

  void number() {
    std::string sign;
    if (peek() == '+' || peek() == '-') {
      if (peek() == '-') sign = "-";
      ++pos_;
    }
    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'X')) {
      pos_ += 2;
      const std::size_t start = pos_;
      while (std::isxdigit(static_cast<unsigned char>(peek()))) ++pos_;
      if (pos_ == start || pos_ - start > 15)
        fail("hexadecimal number empty or longer than 15 digits");
      const unsigned long long v =
          std::stoull(std::string(s_.substr(start, pos_ - start)), nullptr, 16);
      out_ += sign + std::to_string(v);
      return;
    }
    std::string digits;
    while (std::isdigit(static_cast<unsigned char>(peek())) || peek() == '.' || peek() == 'e' ||
           peek() == 'E' ||
           ((peek() == '+' || peek() == '-') && (digits.ends_with("e") || digits.ends_with("E")))) {
      digits.push_back(s_[pos_++]);
    }
    if (digits.empty()) {
      if (std::isalpha(static_cast<unsigned char>(peek())))
        fail("Infinity and NaN are not accepted");
      fail("a sign without a number");
    }
    if (digits.front() == '.') digits.insert(digits.begin(), '0');
    const auto dot = digits.find('.');
    if (dot != std::string::npos &&
        (dot + 1 == digits.size() || !std::isdigit(static_cast<unsigned char>(digits[dot + 1])))) {
      digits.insert(dot + 1, "0");
    }
    out_ += sign + digits;
  }

  void word() {
    const std::size_t start = pos_;
    while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '$')
      ++pos_;
    const std::string_view w = s_.substr(start, pos_ - start);
    // An identifier followed by ':' is an unquoted key.
    std::size_t look = pos_;
    while (look < s_.size() && std::isspace(static_cast<unsigned char>(s_[look]))) ++look;
    if (look < s_.size() && s_[look] == ':') {
      out_ += '"';
      out_ += w;
      out_ += '"';
      return;
    }
    if (w == "true" || w == "false" || w == "null") {
      out_ += w;
      return;
    }
    if (w == "Infinity" || w == "NaN") fail("Infinity and NaN are not accepted");
    fail("unquoted word '" + std::string(w) + "' (quote strings)");
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string out_;
};

}  // namespace

std::string json5_to_json(std::string_view text) {
  return Normaliser(text).run();
}

nlohmann::json parse_json5(std::string_view text) {
  const std::string json = json5_to_json(text);
  try {
    return nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e400
    throw SetupError(std::string("configuration is not valid JSON5 (") + e.what() +
                     ") fix the text");
  }
}

nlohmann::json load_json5_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw SetupError("cannot read " + path +
                     " (missing or unreadable) give an existing JSON5 file");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_json5(ss.str());
  } catch (const SetupError& e) {
    throw SetupError(path + ": " + e.what());
  }
}

}  // namespace acheron::gnss
