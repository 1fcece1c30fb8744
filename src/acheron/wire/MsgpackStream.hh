// Direct MessagePack writing and reading for fixed-layout headers, without
// building a JSON tree: a Writer appends to a byte vector in the same
// encodings nlohmann::json::to_msgpack chooses (smallest integer and string
// forms), and a Reader walks input that validate_msgpack() accepted.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/wire/MsgpackTag.hh"

namespace acheron::wire::mp {

class Writer final {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}

  void nil() { out_.push_back(0xc0); }
  void boolean(bool b) { out_.push_back(b ? 0xc3 : 0xc2); }
  void map(std::size_t n) { header(n, 0x80, 0xde, 0xdf); }
  void array(std::size_t n) { header(n, 0x90, 0xdc, 0xdd); }
  void str(std::string_view s) {
    const std::size_t n = s.size();
    if (n < 32) {
      out_.push_back(static_cast<std::uint8_t>(0xa0 | n));
    } else if (n <= 0xff) {
      out_.push_back(0xd9);
      out_.push_back(static_cast<std::uint8_t>(n));
    } else if (n <= 0xffff) {
      out_.push_back(0xda);
      be(n, 2);
    } else {
      out_.push_back(0xdb);
      be(n, 4);
    }
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void uint(std::uint64_t v) {
    if (v < 128) {
      out_.push_back(static_cast<std::uint8_t>(v));
    } else if (v <= 0xff) {
      out_.push_back(0xcc);
      be(v, 1);
    } else if (v <= 0xffff) {
      out_.push_back(0xcd);
      be(v, 2);
    } else if (v <= 0xffffffffu) {
      out_.push_back(0xce);
      be(v, 4);
    } else {
      out_.push_back(0xcf);
      be(v, 8);
    }
  }
  void sint(std::int64_t v) {
    if (v >= 0) return uint(static_cast<std::uint64_t>(v));
    if (v >= -32) {
      out_.push_back(static_cast<std::uint8_t>(v));
    } else if (v >= INT8_MIN) {
      out_.push_back(0xd0);
      be(static_cast<std::uint64_t>(v), 1);
    } else if (v >= INT16_MIN) {
      out_.push_back(0xd1);
      be(static_cast<std::uint64_t>(v), 2);
    } else if (v >= INT32_MIN) {
      out_.push_back(0xd2);
      be(static_cast<std::uint64_t>(v), 4);
    } else {
      out_.push_back(0xd3);
      be(static_cast<std::uint64_t>(v), 8);
    }
  }
  // Any JSON value, byte for byte as nlohmann::json::to_msgpack writes it.
  void json(const nlohmann::json& j) { nlohmann::json::to_msgpack(j, out_); }
  void raw(const std::uint8_t* p, std::size_t n) { out_.insert(out_.end(), p, p + n); }

 private:
  void header(std::size_t n, std::uint8_t fix, std::uint8_t b16, std::uint8_t b32) {
    if (n < 16) {
      out_.push_back(static_cast<std::uint8_t>(fix | n));
    } else if (n <= 0xffff) {
      out_.push_back(b16);
      be(n, 2);
    } else {
      out_.push_back(b32);
      be(n, 4);
    }
  }
  void be(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t>& out_;
};

// Reads values from bytes that validate_msgpack() accepted (so declared
// lengths fit); every accessor returns nullopt (and leaves the position
// unchanged) when the next value has another type.
class Reader final {
 public:
  Reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}

  std::size_t pos() const noexcept { return pos_; }
  bool at_end() const noexcept { return pos_ >= n_; }
  const std::uint8_t* data() const noexcept { return p_; }

  std::optional<std::size_t> map() { return container(0x80, 0xde, 0xdf); }
  std::optional<std::size_t> array() { return container(0x90, 0xdc, 0xdd); }
  std::optional<std::string_view> str() {
    if (at_end()) return std::nullopt;
    const std::uint8_t t = p_[pos_];
    std::size_t len = 0, hdr = 1;
    if ((t & 0xe0) == 0xa0) {
      len = t & 0x1f;
    } else if (t == 0xd9) {
      len = rd(pos_ + 1, 1), hdr = 2;
    } else if (t == 0xda) {
      len = rd(pos_ + 1, 2), hdr = 3;
    } else if (t == 0xdb) {
      len = rd(pos_ + 1, 4), hdr = 5;
    } else {
      return std::nullopt;
    }
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_ + hdr), len);
    pos_ += hdr + len;
    return s;
  }
  // Any integer that fits in int64 (uint64 above INT64_MAX gives nullopt).
  std::optional<std::int64_t> integer() {
    if (at_end()) return std::nullopt;
    const std::uint8_t t = p_[pos_];
    std::int64_t v = 0;
    std::size_t len = 1;
    if (t <= 0x7f) {
      v = t;
    } else if (t >= 0xe0) {
      v = static_cast<std::int8_t>(t);
    } else {
      switch (t) {
        case 0xcc:
          v = static_cast<std::int64_t>(rd(pos_ + 1, 1)), len = 2;
          break;
        case 0xcd:
          v = static_cast<std::int64_t>(rd(pos_ + 1, 2)), len = 3;
          break;
        case 0xce:
          v = static_cast<std::int64_t>(rd(pos_ + 1, 4)), len = 5;
          break;
        case 0xcf: {
          const std::uint64_t u = rd(pos_ + 1, 8);
          if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
          v = static_cast<std::int64_t>(u), len = 9;
          break;
        }
        case 0xd0:
          v = static_cast<std::int8_t>(rd(pos_ + 1, 1)), len = 2;
          break;
        case 0xd1:
          v = static_cast<std::int16_t>(rd(pos_ + 1, 2)), len = 3;
          break;
        case 0xd2:
          v = static_cast<std::int32_t>(rd(pos_ + 1, 4)), len = 5;
          break;
        case 0xd3:
          v = static_cast<std::int64_t>(rd(pos_ + 1, 8)), len = 9;
          break;
        default:
          return std::nullopt;
      }
    }
    pos_ += len;
    return v;
  }
  // Skips one value of any type (input is validated, so this stays in bounds).
  void skip() {
    std::uint64_t pending = 1;
    while (pending > 0) {
      --pending;
      const Tag tag = msgpack_tag(p_[pos_++]);
      std::uint64_t n = tag.size;
      if (tag.length_bytes > 0) {
        n = rd(pos_, tag.length_bytes) + (tag.kind == Tag::Kind::bytes ? tag.size : 0);
        pos_ += tag.length_bytes;
      }
      if (tag.kind == Tag::Kind::array) {
        pending += n;
      } else if (tag.kind == Tag::Kind::map) {
        pending += 2 * n;
      } else {
        pos_ += n;
      }
    }
  }
  // The next value as JSON (decoded by nlohmann from its byte range).
  std::optional<nlohmann::json> json() {
    const std::size_t start = pos_;
    skip();
    auto j = nlohmann::json::from_msgpack(p_ + start, p_ + pos_, true, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

 private:
  std::optional<std::size_t> container(std::uint8_t fix, std::uint8_t b16, std::uint8_t b32) {
    if (at_end()) return std::nullopt;
    const std::uint8_t t = p_[pos_];
    if ((t & 0xf0) == fix) {
      ++pos_;
      return t & 0x0f;
    }
    if (t == b16) {
      const auto n = rd(pos_ + 1, 2);
      pos_ += 3;
      return n;
    }
    if (t == b32) {
      const auto n = rd(pos_ + 1, 4);
      pos_ += 5;
      return n;
    }
    return std::nullopt;
  }
  std::uint64_t rd(std::size_t at, std::size_t bytes) const {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | p_[at + i];
    return v;
  }
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

}  // namespace acheron::wire::mp
