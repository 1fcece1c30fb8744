#include "acheron/core/DType.hh"

#include <array>
#include <string>

namespace acheron {
namespace {
struct Info {
  DType dtype;
  char kind;  // NumPy kind letter
  std::size_t size;
  std::string_view numpy;
};
constexpr std::array<Info, 13> kInfo{{
    {DType::bool_, 'b', 1, "|b1"},
    {DType::int8, 'i', 1, "|i1"},
    {DType::uint8, 'u', 1, "|u1"},
    {DType::int16, 'i', 2, "<i2"},
    {DType::uint16, 'u', 2, "<u2"},
    {DType::int32, 'i', 4, "<i4"},
    {DType::uint32, 'u', 4, "<u4"},
    {DType::int64, 'i', 8, "<i8"},
    {DType::uint64, 'u', 8, "<u8"},
    {DType::float32, 'f', 4, "<f4"},
    {DType::float64, 'f', 8, "<f8"},
    {DType::complex64, 'c', 8, "<c8"},
    {DType::complex128, 'c', 16, "<c16"},
}};

const Info& info(DType d) {
  return kInfo[static_cast<std::size_t>(d)];
}
}  // namespace

std::size_t itemsize(DType dtype) {
  return info(dtype).size;
}
std::string_view to_numpy(DType dtype) {
  return info(dtype).numpy;
}

std::optional<DType> dtype_from_numpy(std::string_view text) {
  if (text.size() < 3) return std::nullopt;
  const char order = text[0];
  const char kind = text[1];
  std::size_t size = 0;
  for (char c : text.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    size = size * 10 + static_cast<std::size_t>(c - '0');
    if (size > 64) return std::nullopt;
  }
  if (order != '<' && order != '|' && order != '=' && order != '>') return std::nullopt;
  if (order == '>' && size != 1) return std::nullopt;
  for (const auto& i : kInfo) {
    if (i.kind == kind && i.size == size) return i.dtype;
  }
  return std::nullopt;
}

}  // namespace acheron
