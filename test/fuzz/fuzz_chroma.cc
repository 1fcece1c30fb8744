// Fuzz target: ChromaPhotonList decoding must never crash or allocate beyond
// what the input backs; the zero-copy decode_view agrees with it on every
// input; an accepted list re-encodes, and the re-encoded bytes decode to the
// same photons (bit for bit) and the same header.
#include <cstdlib>
#include <cstring>

#include "acheron/wire/ChromaPhotonList.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace chroma = acheron::wire::chroma;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  (void)chroma::detect_framing(in);
  auto first = chroma::decode(in, chroma::Limits{.max_photons = 1 << 20});
  // The zero-copy check accepts exactly the same inputs, with the same
  // error, and sees the same values.
  auto view = chroma::decode_view(in, chroma::Limits{.max_photons = 1 << 20});
  if (view.ok() != first.ok()) std::abort();
  if (!first) {
    if (view.error().code != first.error().code || view.error().message != first.error().message)
      std::abort();
    return 0;
  }
  const auto& photons = first->photons;
  if (view->size != photons.size() || !(view->header == first->header)) std::abort();
  for (std::size_t i = 0; i < photons.size(); ++i) {
    for (std::size_t m = 0; m < chroma::kFloatMembers; ++m) {
      const float a = view->value(in, m, i), b = (*photons.floats()[m])[i];
      if (std::memcmp(&a, &b, 4) != 0) std::abort();
    }
    if (view->pmtid(in, i) != photons.pmtid[i]) std::abort();
  }
  // Every accepted element came from the input: 48 bytes per photon.
  if (photons.size() * 4 * chroma::kMembers > size) std::abort();
  for (const auto* v : photons.floats())
    if (v->size() != photons.size()) std::abort();
  if (photons.pmtid.size() != photons.size()) std::abort();

  auto bytes = chroma::encode(photons, first->header);
  if (!bytes) std::abort();  // a decoded list is always encodable
  if (bytes->size() != chroma::encoded_size(photons.size(), first->header.framing)) std::abort();
  auto second = chroma::decode({bytes->data(), bytes->size()});
  if (!second) std::abort();
  if (!chroma::bitwise_equal(second->photons, photons)) std::abort();
  if (!(second->header == first->header)) std::abort();
  return 0;
}
