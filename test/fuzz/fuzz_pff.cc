// Fuzz target: PFF parsing (frames of every product, JSON-only files, file
// names, White-Rabbit time) must never crash; every accepted frame lies
// inside the input and starts/ends where the layout says.
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "acheron/wire/Pff.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pff = acheron::wire::pff;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  for (auto product : pff::kProducts) {
    const auto& info = pff::info(product);
    auto frames = pff::split_frames(in, info.image_bytes());
    if (!frames) continue;
    std::vector<std::uint32_t> px(info.pixels());
    for (const auto& f : *frames) {
      if (f.header.empty() || f.header.front() != '{' || f.pixels.size() != info.image_bytes())
        std::abort();
      if (f.pixels.data() < in.data() || f.pixels.data() + f.pixels.size() > in.data() + size)
        std::abort();
      pff::pixels_to_u32(f.pixels, info.bytes_per_pixel, px.data());
    }
  }
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto block : pff::split_json_blocks(text))
    if (block.empty() || block.front() != '{') std::abort();
  (void)pff::parse_file_name(text);
  if (size >= 24) {
    std::int64_t v[3];
    std::memcpy(v, data, 24);
    if (auto t = pff::wr_to_unix(v[0], v[1], v[2]); t && t->nanoseconds > 999999999u) std::abort();
  }
  return 0;
}
