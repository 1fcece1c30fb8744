// MJPEG over HTTP (multipart/x-mixed-replace, shared/specs/dcss-xos.md §9.3):
// an incremental parser of the response body of an Axis video.cgi stream.
// Robust to what cameras and proxies send: boundary from the Content-Type
// (quoted or not), delimiters with or without "--", CRLF or LF, headers in any
// case, preamble and blank lines, parts with or without Content-Length, garbage
// between parts (resynchronises on the next boundary), the closing
// "--boundary--". Pure: bytes in, JPEG parts out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace acheron::wire::mjpeg {

struct Limits {
  std::size_t max_part = 16u << 20;  // bytes of one JPEG
  std::size_t max_headers = 8192;    // bytes of one part's header block
};

// The boundary parameter of a multipart Content-Type ("multipart/x-mixed-replace;
// boundary=myboundary"), without quotes or a leading "--"; nullopt if absent.
std::optional<std::string> boundary_of(std::string_view content_type);

class Parser final {
 public:
  explicit Parser(std::string boundary, Limits limits = {});

  void feed(const char* data, std::size_t size);
  void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

  // The next complete JPEG (starts with FF D8), or nullopt when more bytes are needed.
  std::optional<std::string> next();

  bool ended() const noexcept { return ended_; }  // "--boundary--" seen
  std::size_t skipped_parts() const noexcept {
    return skipped_;
  }  // not JPEG, oversize, bad headers
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }

 private:
  enum class State { boundary, headers, body };
  // Position of the next delimiter line at or after `from`: sets `line_start` to
  // where the delimiter line begins ("--" or the boundary) and returns the
  // position after the boundary text; npos if none is buffered.
  std::size_t find_delimiter(std::size_t from, std::size_t* line_start) const;
  void compact();

  std::string boundary_;
  Limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;
  State state_ = State::boundary;
  std::optional<std::size_t> length_;
  bool ended_ = false;
  std::size_t skipped_ = 0;
};

}  // namespace acheron::wire::mjpeg
