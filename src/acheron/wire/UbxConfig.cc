// UBX configuration keys (CFG-VALSET/VALGET): key sizes and types, lookup
// by name or id, and value encoding and decoding.
#include "acheron/wire/Ubx.hh"
#include "acheron/wire/UbxInternal.hh"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace acheron::wire::ubx {

std::size_t key_value_size(std::uint32_t key_id) {
  switch ((key_id >> 28) & 0x7) {
    case 1:
    case 2:
      return 1;
    case 3:
      return 2;
    case 4:
      return 4;
    case 5:
      return 8;
    default:
      return 0;
  }
}

std::size_t type_size(KeyType type) {
  switch (type) {
    case KeyType::L:
    case KeyType::U1:
    case KeyType::I1:
    case KeyType::E1:
    case KeyType::X1:
      return 1;
    case KeyType::U2:
    case KeyType::I2:
    case KeyType::E2:
    case KeyType::X2:
      return 2;
    case KeyType::U4:
    case KeyType::I4:
    case KeyType::E4:
    case KeyType::X4:
    case KeyType::R4:
      return 4;
    case KeyType::U8:
    case KeyType::I8:
    case KeyType::X8:
    case KeyType::R8:
      return 8;
  }
  return 0;
}

std::string_view type_name(KeyType type) {
  static constexpr std::string_view names[] = {"L",  "U1", "U2", "U4", "U8", "I1",
                                               "I2", "I4", "I8", "E1", "E2", "E4",
                                               "X1", "X2", "X4", "X8", "R4", "R8"};
  return names[static_cast<int>(type)];
}

std::string normalise_key_name(std::string_view name) {
  std::string s(name);
  for (auto& c : s)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

const CfgKey* find_key(std::string_view name) {
  const std::string n = normalise_key_name(name);
  const auto* begin = detail::kCfgKeys;
  const auto* end = begin + detail::kCfgKeyCount;
  const auto it = std::lower_bound(begin, end, std::string_view(n),
                                   [](const CfgKey& k, std::string_view v) { return k.name < v; });
  return it != end && it->name == n ? it : nullptr;
}

const CfgKey* find_key(std::uint32_t id) {
  for (std::size_t i = 0; i < detail::kCfgKeyCount; ++i) {
    if (detail::kCfgKeys[i].id == id) return &detail::kCfgKeys[i];
  }
  return nullptr;
}

std::span<const CfgKey> all_keys() {
  return {detail::kCfgKeys, detail::kCfgKeyCount};
}

namespace {
template <class T>
bool fits(double v) {
  // Truncated value must lie in T's range. Bounds as doubles: the maximum of
  // a 64-bit type rounds up, so compare with < for the upper bound.
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);  // max + 1
  return v >= lo && v < hi;
}
}  // namespace

Result<Bytes> encode_key_value(KeyType type, double value) {
  auto fail = [&](std::string why) {
    return Result<Bytes>::failure(StatusCode::invalid_argument, std::move(why));
  };
  if (!std::isfinite(value)) return fail("value is not a finite number");
  Bytes out;
  if (type == KeyType::R4) {
    write_le<std::uint32_t>(out, std::bit_cast<std::uint32_t>(static_cast<float>(value)));
    return out;
  }
  if (type == KeyType::R8) {
    write_le<std::uint64_t>(out, std::bit_cast<std::uint64_t>(value));
    return out;
  }
  const double t = std::trunc(value);
  auto range = [&](std::string_view r) {
    return fail("value " + nlohmann::json(value).dump() + " is out of range for type " +
                std::string(type_name(type)) + " (" + std::string(r) + ")");
  };
  switch (type) {
    case KeyType::L:
      if (t != 0 && t != 1) return range("0 or 1");
      out.push_back(static_cast<std::uint8_t>(t));
      break;
    case KeyType::U1:
    case KeyType::E1:
    case KeyType::X1:
      if (!fits<std::uint8_t>(t)) return range("0..255");
      write_le<std::uint8_t>(out, static_cast<std::uint8_t>(t));
      break;
    case KeyType::U2:
    case KeyType::E2:
    case KeyType::X2:
      if (!fits<std::uint16_t>(t)) return range("0..65535");
      write_le<std::uint16_t>(out, static_cast<std::uint16_t>(t));
      break;
    case KeyType::U4:
    case KeyType::E4:
    case KeyType::X4:
      if (!fits<std::uint32_t>(t)) return range("0..4294967295");
      write_le<std::uint32_t>(out, static_cast<std::uint32_t>(t));
      break;
    case KeyType::U8:
    case KeyType::X8:
      if (!fits<std::uint64_t>(t)) return range("0..2^64-1");
      write_le<std::uint64_t>(out, static_cast<std::uint64_t>(t));
      break;
    case KeyType::I1:
      if (!fits<std::int8_t>(t)) return range("-128..127");
      write_le<std::int8_t>(out, static_cast<std::int8_t>(t));
      break;
    case KeyType::I2:
      if (!fits<std::int16_t>(t)) return range("-32768..32767");
      write_le<std::int16_t>(out, static_cast<std::int16_t>(t));
      break;
    case KeyType::I4:
      if (!fits<std::int32_t>(t)) return range("-2^31..2^31-1");
      write_le<std::int32_t>(out, static_cast<std::int32_t>(t));
      break;
    case KeyType::I8:
      if (!fits<std::int64_t>(t)) return range("-2^63..2^63-1");
      write_le<std::int64_t>(out, static_cast<std::int64_t>(t));
      break;
    case KeyType::R4:
    case KeyType::R8:
      break;  // handled above
  }
  return out;
}

std::optional<double> decode_key_value_number(KeyType type, ByteSpan v) {
  if (v.size() != type_size(type)) return std::nullopt;
  switch (type) {
    case KeyType::R4:
      return static_cast<double>(std::bit_cast<float>(read_le<std::uint32_t>(v, 0)));
    case KeyType::R8:
      return std::bit_cast<double>(read_le<std::uint64_t>(v, 0));
    case KeyType::I1:
      return read_le<std::int8_t>(v, 0);
    case KeyType::I2:
      return read_le<std::int16_t>(v, 0);
    case KeyType::I4:
      return read_le<std::int32_t>(v, 0);
    case KeyType::I8:
      return static_cast<double>(read_le<std::int64_t>(v, 0));
    default: {
      std::uint64_t u = 0;
      for (std::size_t i = 0; i < v.size(); ++i) u |= std::uint64_t(v[i]) << (8 * i);
      return static_cast<double>(u);
    }
  }
}

Result<std::vector<CfgItem>> decode_cfg_items(ByteSpan data) {
  std::vector<CfgItem> items;
  std::size_t off = 0;
  while (off < data.size()) {
    if (data.size() - off < 4) {
      return Result<std::vector<CfgItem>>::failure(StatusCode::invalid_argument,
                                                   "configuration data ends inside a key id");
    }
    const auto key = read_le<std::uint32_t>(data, off);
    const std::size_t size = key_value_size(key);
    if (size == 0) {
      return Result<std::vector<CfgItem>>::failure(StatusCode::invalid_argument,
                                                   "configuration key has an invalid size code");
    }
    off += 4;
    if (data.size() - off < size) {
      return Result<std::vector<CfgItem>>::failure(StatusCode::invalid_argument,
                                                   "configuration data ends inside a value");
    }
    items.push_back({key, Bytes(data.begin() + static_cast<std::ptrdiff_t>(off),
                                data.begin() + static_cast<std::ptrdiff_t>(off + size))});
    off += size;
  }
  return items;
}

void append_cfg_items(Bytes& out, std::span<const CfgItem> items) {
  for (const auto& item : items) {
    write_le<std::uint32_t>(out, item.key);
    out.insert(out.end(), item.value.begin(), item.value.end());
  }
}

}  // namespace acheron::wire::ubx
