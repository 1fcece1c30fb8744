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
  // json() refuses values nested deeper (validated input is far shallower:
  // kMaxMsgpackDepth; this only bounds the recursion).
  static constexpr int kMaxJsonDepth = 512;

  // The next value as JSON: the same value nlohmann::json::from_msgpack
  // gives (unsigned and signed integer types kept apart, float32 widened,
  // bin as binary, the last of duplicate keys wins), built directly, which
  // costs a tenth of going through nlohmann's parser for small values.
  // Values holding an ext are left to nlohmann. nullopt, with the position
  // past the value, for what nlohmann rejects (a map key that is not a
  // string) and for nesting deeper than kMaxJsonDepth.
  std::optional<nlohmann::json> json() {
    const std::size_t start = pos_;
    nlohmann::json out;
    const Built built = build(out, 0);
    if (built == Built::ok) return out;
    pos_ = start;
    skip();
    if (built == Built::bad) return std::nullopt;
    auto j = nlohmann::json::from_msgpack(p_ + start, p_ + pos_, true, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

 private:
  enum class Built { ok, bad, ext };

  Built build(nlohmann::json& out, int depth) {
    if (depth > kMaxJsonDepth) return Built::bad;
    const std::uint8_t t = p_[pos_];
    if (t <= 0x7f) {
      out = static_cast<std::uint64_t>(t);
      ++pos_;
      return Built::ok;
    }
    if (t >= 0xe0) {
      out = static_cast<std::int64_t>(static_cast<std::int8_t>(t));
      ++pos_;
      return Built::ok;
    }
    if ((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf) {
      const std::size_t n = *map();
      out = nlohmann::json::object();
      auto& object = out.get_ref<nlohmann::json::object_t&>();
      for (std::size_t i = 0; i < n; ++i) {
        auto key = str();
        if (!key) return Built::bad;
        nlohmann::json value;
        if (const Built b = build(value, depth + 1); b != Built::ok) return b;
        object[std::string(*key)] = std::move(value);
      }
      return Built::ok;
    }
    if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
      const std::size_t n = *array();
      out = nlohmann::json::array();
      auto& items = out.get_ref<nlohmann::json::array_t&>();
      items.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        items.emplace_back();
        if (const Built b = build(items.back(), depth + 1); b != Built::ok) return b;
      }
      return Built::ok;
    }
    if ((t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb) {
      out = std::string(*str());
      return Built::ok;
    }
    switch (t) {
      case 0xc0:
        out = nullptr;
        ++pos_;
        return Built::ok;
      case 0xc2:
      case 0xc3:
        out = t == 0xc3;
        ++pos_;
        return Built::ok;
      case 0xc4:
      case 0xc5:
      case 0xc6: {
        const std::size_t len_bytes = t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4;
        const std::size_t len = rd(pos_ + 1, len_bytes);
        const std::uint8_t* b = p_ + pos_ + 1 + len_bytes;
        out = nlohmann::json::binary(std::vector<std::uint8_t>(b, b + len));
        pos_ += 1 + len_bytes + len;
        return Built::ok;
      }
      case 0xca: {
        const auto bits = static_cast<std::uint32_t>(rd(pos_ + 1, 4));
        float f;
        std::memcpy(&f, &bits, 4);
        out = static_cast<double>(f);
        pos_ += 5;
        return Built::ok;
      }
      case 0xcb: {
        const std::uint64_t bits = rd(pos_ + 1, 8);
        double d;
        std::memcpy(&d, &bits, 8);
        out = d;
        pos_ += 9;
        return Built::ok;
      }
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf: {
        const std::size_t len = std::size_t{1} << (t - 0xcc);
        out = static_cast<std::uint64_t>(rd(pos_ + 1, len));
        pos_ += 1 + len;
        return Built::ok;
      }
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        out = *integer();
        return Built::ok;
      default:  // ext (0xc7-0xc9, 0xd4-0xd8)
        return Built::ext;
    }
  }

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
