#include "acheron/wire/Mjpeg.hh"

#include <algorithm>
#include <cctype>

namespace acheron::wire::mjpeg {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool is_jpeg(std::string_view part) {
  return part.size() >= 2 && static_cast<unsigned char>(part[0]) == 0xFF &&
         static_cast<unsigned char>(part[1]) == 0xD8;
}

}  // namespace

std::optional<std::string> boundary_of(std::string_view content_type) {
  const std::string l = lower(content_type);
  const auto at = l.find("boundary=");
  if (at == std::string::npos) return std::nullopt;
  std::string_view v = content_type.substr(at + 9);
  if (!v.empty() && v.front() == '"') {
    v.remove_prefix(1);
    v = v.substr(0, v.find('"'));
  } else {
    v = v.substr(0, std::min(v.find(';'), v.size()));
    v = trim(v);
  }
  if (v.starts_with("--")) v.remove_prefix(2);
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

Parser::Parser(std::string boundary, Limits limits)
    : boundary_(std::move(boundary)), limits_(limits) {
  if (std::string_view(boundary_).starts_with("--")) boundary_.erase(0, 2);
  if (boundary_.empty()) boundary_ = "myboundary";
}

void Parser::feed(const char* data, std::size_t size) {
  if (ended_) return;
  buf_.append(data, size);
}

void Parser::compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

std::size_t Parser::find_delimiter(std::size_t from, std::size_t* line_start) const {
  std::size_t search = from;
  while (true) {
    const std::size_t p = buf_.find(boundary_, search);
    if (p == std::string::npos) return std::string::npos;
    std::size_t s = p;
    if (s >= from + 2 && buf_[s - 2] == '-' && buf_[s - 1] == '-') s -= 2;
    if (s == from || (s > from && buf_[s - 1] == '\n')) {
      *line_start = s;
      return p + boundary_.size();
    }
    search = p + 1;
  }
}

std::optional<std::string> Parser::next() {
  std::size_t header_bytes = 0;
  while (!ended_) {
    switch (state_) {
      case State::boundary: {
        std::size_t ls = 0;
        const std::size_t after = find_delimiter(pos_, &ls);
        if (after == std::string::npos) {
          // Keep a tail that may hold the start of a split delimiter.
          const std::size_t keep = boundary_.size() + 3;
          if (buffered() > keep) pos_ = buf_.size() - keep;
          compact();
          return std::nullopt;
        }
        if (buf_.size() - after >= 2 && buf_.compare(after, 2, "--") == 0) {
          ended_ = true;  // closing delimiter
          pos_ = buf_.size();
          compact();
          return std::nullopt;
        }
        const std::size_t nl = buf_.find('\n', after);
        if (nl == std::string::npos) {
          if (buf_.size() - after > 256) {
            pos_ = after;  // boundary text inside garbage
            continue;
          }
          return std::nullopt;
        }
        if (!trim(std::string_view(buf_).substr(after, nl - after)).empty()) {
          pos_ = after;  // the boundary string followed by something else: not a delimiter
          continue;
        }
        pos_ = nl + 1;
        state_ = State::headers;
        length_.reset();
        header_bytes = 0;
        break;
      }
      case State::headers: {
        const std::size_t nl = buf_.find('\n', pos_);
        if (nl == std::string::npos) {
          if (buffered() > limits_.max_headers) {
            ++skipped_;
            state_ = State::boundary;
            continue;
          }
          return std::nullopt;
        }
        const std::string_view line = trim(std::string_view(buf_).substr(pos_, nl - pos_));
        header_bytes += nl + 1 - pos_;
        pos_ = nl + 1;
        if (line.empty()) {
          state_ = State::body;
          break;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || header_bytes > limits_.max_headers) {
          ++skipped_;  // not a header: garbage after a delimiter
          state_ = State::boundary;
          continue;
        }
        if (lower(trim(line.substr(0, colon))) == "content-length") {
          const auto v = trim(line.substr(colon + 1));
          std::size_t n = 0;
          bool ok = !v.empty() && v.size() <= 15;
          for (char c : v) {
            if (c < '0' || c > '9') ok = false;
            n = n * 10 + static_cast<std::size_t>(c - '0');
          }
          if (!ok || n > limits_.max_part) {
            ++skipped_;
            state_ = State::boundary;
            continue;
          }
          length_ = n;
        }
        break;
      }
      case State::body: {
        std::string part;
        if (length_) {
          if (buffered() < *length_) return std::nullopt;
          part = buf_.substr(pos_, *length_);
          pos_ += *length_;
        } else {
          std::size_t ls = 0;
          const std::size_t after = find_delimiter(pos_, &ls);
          if (after == std::string::npos) {
            if (buffered() > limits_.max_part) {
              ++skipped_;
              pos_ = buf_.size() - std::min(buffered(), boundary_.size() + 3);
              state_ = State::boundary;
              compact();
            }
            return std::nullopt;
          }
          std::size_t end = ls;
          if (end > pos_ && buf_[end - 1] == '\n') --end;
          if (end > pos_ && buf_[end - 1] == '\r') --end;
          part = buf_.substr(pos_, end - pos_);
          pos_ = ls;
          // Without a length the JPEG ends at its EOI marker; anything after it is garbage.
          if (const auto eoi = part.rfind("\xFF\xD9"); eoi != std::string::npos)
            part.resize(eoi + 2);
          // The delimiter may arrive in the feed that takes the part past the limit.
          if (part.size() > limits_.max_part) part.clear();
        }
        state_ = State::boundary;
        compact();
        if (is_jpeg(part)) return part;
        ++skipped_;
        break;
      }
    }
  }
  return std::nullopt;
}

}  // namespace acheron::wire::mjpeg
