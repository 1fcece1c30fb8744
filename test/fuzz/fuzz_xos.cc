// Fuzz target: the xos stream decoder and message parser must never crash or
// loop, must consume the input in bounded steps, and every decoded text must
// re-encode (v2 always; v1 when short enough) and decode to the same tokens;
// fit_v1 always gives a frame-sized prefix of whole tokens.
#include <cstdlib>
#include <string>

#include "acheron/wire/Xos.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron::wire::xos;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  StreamDecoder d(Limits{.max_text = 1 << 16, .max_binary = 1 << 16});
  // Feed in uneven pieces to exercise split reads.
  std::size_t pos = 0, step = 1;
  while (pos < bytes.size()) {
    const std::size_t n = std::min(step, bytes.size() - pos);
    d.feed(bytes.substr(pos, n));
    pos += n;
    step = step * 3 % 97 + 1;
    for (int guard = 0; guard < 100000; ++guard) {
      auto r = d.next();
      if (!r.ok() || !r->has_value()) break;
      const Frame& f = **r;
      (void)parse_stoh(f.text);
      const auto tokens = tokenize(f.text);
      auto again = decode_one(encode_v2(f.text));
      if (!again.ok() || tokenize(again->text) != tokens) std::abort();
      // What an xos1 peer receives of the text: whole tokens, within a frame.
      const auto fit = fit_v1(f.text);
      const auto normalized = normalize(f.text);
      if (fit.text.size() > kV1MaxText || fit.truncated != (normalized.size() > kV1MaxText) ||
          !normalized.starts_with(fit.text) || !encode_v1(fit.text).ok()) {
        std::abort();
      }
      auto one = encode_v1(f.text);
      if (one.ok() && !looks_like_v2_header(*one)) {  // a text starting with a digit reads as xos2
        auto back = decode_one(*one);
        if (!back.ok() || tokenize(back->text) != tokens) std::abort();
      }
    }
  }
  (void)parse_v2_header(bytes.substr(0, kV2HeaderSize));
  (void)parse_stoh(bytes);
  return 0;
}
