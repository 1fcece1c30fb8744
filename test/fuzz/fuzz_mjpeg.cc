// Fuzz target: the MJPEG multipart parser must never crash, must keep its
// buffer bounded, and every part it returns must be a JPEG within the limit.
#include <cstdlib>
#include <string>

#include "acheron/wire/Mjpeg.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron::wire::mjpeg;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)boundary_of(bytes.substr(0, 64));
  const Limits limits{.max_part = 4096, .max_headers = 512};
  Parser p("myboundary", limits);
  std::size_t pos = 0, step = 7;
  while (pos < bytes.size()) {
    const std::size_t n = std::min(step, bytes.size() - pos);
    p.feed(bytes.substr(pos, n));
    pos += n;
    step = step * 5 % 61 + 1;
    while (auto part = p.next()) {
      if (part->size() < 2 || part->size() > limits.max_part ||
          static_cast<unsigned char>((*part)[0]) != 0xFF) {
        std::abort();
      }
    }
    if (p.buffered() > limits.max_part + limits.max_headers + 4096) std::abort();
  }
  return 0;
}
