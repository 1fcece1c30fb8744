#include "acheron/wire/Msgpack.hh"

#include <string>

namespace acheron::wire {
namespace {
// Reads a big-endian unsigned integer of n bytes at p.
std::uint64_t be(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

Result<bool> validate_msgpack(std::span<const std::byte> bytes) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const std::size_t size = bytes.size();
  std::size_t pos = 0;
  // pending[d] = values still to read at nesting depth d.
  std::vector<std::uint64_t> pending{1};
  auto fail = [](const std::string& why) {
    return Result<bool>::failure(StatusCode::invalid_argument, "malformed msgpack: " + why);
  };
  while (!pending.empty()) {
    if (pending.back() == 0) {
      pending.pop_back();
      continue;
    }
    --pending.back();
    if (pos >= size) return fail("truncated");
    const std::uint8_t t = p[pos++];
    std::uint64_t skip = 0;      // payload bytes to skip
    std::uint64_t children = 0;  // nested values that follow
    auto need = [&](std::size_t n) { return size - pos >= n; };
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
      // positive/negative fixint, nil, false, true
    } else if ((t & 0xf0) == 0x80) {
      children = 2ull * (t & 0x0f);
    } else if ((t & 0xf0) == 0x90) {
      children = t & 0x0f;
    } else if ((t & 0xe0) == 0xa0) {
      skip = t & 0x1f;
    } else {
      switch (t) {
        case 0xc4:
        case 0xc5:
        case 0xc6: {  // bin 8/16/32
          std::size_t n = t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4;
          if (!need(n)) return fail("truncated length");
          skip = be(p + pos, n);
          pos += n;
          break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9: {  // ext 8/16/32
          std::size_t n = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
          if (!need(n + 1)) return fail("truncated length");
          skip = be(p + pos, n) + 1;  // + type byte
          pos += n;
          break;
        }
        case 0xca:
          skip = 4;
          break;
        case 0xcb:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xd4:
          skip = 2;
          break;  // fixext 1 (+type)
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xd9:
        case 0xda:
        case 0xdb: {  // str 8/16/32
          std::size_t n = t == 0xd9 ? 1 : t == 0xda ? 2 : 4;
          if (!need(n)) return fail("truncated length");
          skip = be(p + pos, n);
          pos += n;
          break;
        }
        case 0xdc:
        case 0xdd: {  // array 16/32
          std::size_t n = t == 0xdc ? 2 : 4;
          if (!need(n)) return fail("truncated length");
          children = be(p + pos, n);
          pos += n;
          break;
        }
        case 0xde:
        case 0xdf: {  // map 16/32
          std::size_t n = t == 0xde ? 2 : 4;
          if (!need(n)) return fail("truncated length");
          children = 2 * be(p + pos, n);
          pos += n;
          break;
        }
        default:
          return fail("reserved type byte 0xc1");
      }
    }
    if (skip > size - pos) return fail("declared length exceeds the message");
    pos += skip;
    if (children > 0) {
      // Each child needs at least one byte: reject impossible counts early.
      if (children > size - pos) return fail("declared element count exceeds the message");
      if (pending.size() >= kMaxMsgpackDepth) return fail("nested too deeply");
      pending.push_back(children);
    }
  }
  if (pos != size) return fail("trailing bytes after the value");
  return true;
}

Result<nlohmann::json> decode_msgpack(std::span<const std::byte> bytes) {
  if (auto v = validate_msgpack(bytes); !v) return v.error();
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  auto j = nlohmann::json::from_msgpack(p, p + bytes.size(), /*strict=*/true,
                                        /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Result<nlohmann::json>::failure(StatusCode::invalid_argument,
                                           "malformed msgpack: not decodable");
  }
  return j;
}

std::vector<std::uint8_t> encode_msgpack(const nlohmann::json& value) {
  return nlohmann::json::to_msgpack(value);
}

}  // namespace acheron::wire
