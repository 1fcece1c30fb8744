#include "acheron/wire/Msgpack.hh"

#include <string>

#include "acheron/wire/MsgpackStream.hh"
#include "acheron/wire/MsgpackTag.hh"

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
    const mp::Tag tag = mp::msgpack_tag(t);
    if (tag.kind == mp::Tag::Kind::reserved) return fail("reserved type byte 0xc1");
    std::uint64_t n = tag.size;  // payload bytes, or element count
    if (tag.length_bytes > 0) {
      if (size - pos < tag.length_bytes) return fail("truncated length");
      n = be(p + pos, tag.length_bytes);
      pos += tag.length_bytes;
      if (tag.kind == mp::Tag::Kind::bytes) {
        n += tag.size;
      }
    }
    std::uint64_t skip = 0;      // payload bytes to skip
    std::uint64_t children = 0;  // nested values that follow
    if (tag.kind == mp::Tag::Kind::array) {
      children = n;
    } else if (tag.kind == mp::Tag::Kind::map) {
      children = 2 * n;
    } else {
      skip = n;
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
  mp::Reader r(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  auto j = r.json();
  if (!j) {
    return Result<nlohmann::json>::failure(StatusCode::invalid_argument,
                                           "malformed msgpack: not decodable");
  }
  return std::move(*j);
}

std::vector<std::uint8_t> encode_msgpack(const nlohmann::json& value) {
  return nlohmann::json::to_msgpack(value);
}

}  // namespace acheron::wire
