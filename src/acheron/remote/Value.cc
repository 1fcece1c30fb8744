#include "acheron/remote/Value.hh"

namespace acheron::remote {

Json array_ref(std::size_t index) {
  const auto i = static_cast<std::uint32_t>(index);
  std::vector<std::uint8_t> bytes{static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(i >> 8),
                                  static_cast<std::uint8_t>(i >> 16),
                                  static_cast<std::uint8_t>(i >> 24)};
  return Json::binary(std::move(bytes), kArrayExt);
}

std::optional<std::size_t> array_ref_index(const Json& j) {
  if (!j.is_binary()) return std::nullopt;
  const auto& b = j.get_binary();
  if (!b.has_subtype() || b.subtype() != kArrayExt || b.size() != 4) return std::nullopt;
  return static_cast<std::size_t>(b[0]) | (static_cast<std::size_t>(b[1]) << 8) |
         (static_cast<std::size_t>(b[2]) << 16) | (static_cast<std::size_t>(b[3]) << 24);
}

Json Value::add(Array a) {
  arrays.push_back(std::move(a));
  return array_ref(arrays.size() - 1);
}

const Array& Value::array(const Json& ref) const {
  auto i = array_ref_index(ref);
  if (!i || *i >= arrays.size()) throw_bad_argument("value is not an array reference");
  return arrays[*i];
}

void throw_bad_argument(const std::string& what) {
  throw Failure(StatusCode::invalid_argument, what);
}

}  // namespace acheron::remote
