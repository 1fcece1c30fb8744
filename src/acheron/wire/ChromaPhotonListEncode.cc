// ChromaPhotonList encoding: photon lists and error replies written in
// ROOT's TBufferFile layout (docs/chroma.md).
#include "acheron/wire/ChromaPhotonList.hh"
#include "acheron/wire/ChromaPhotonListInternal.hh"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace acheron::wire::chroma {
namespace {

// Byte count of the object part (version onwards) for n photons.
constexpr std::uint64_t object_count(std::uint64_t n) {
  return 2 + kTObjectBytes + kMembers * (kVectorHeader + 4 * n);
}
// Byte count of the whole object (class tag onwards).
constexpr std::uint64_t outer_count(std::uint64_t n) {
  return kClassTagBytes + 4 + object_count(n);
}
// The largest list whose outer byte count ROOT can write.
constexpr std::uint64_t kMaxEncodable = (kMaxMapCount - 1 - outer_count(0)) / (kMembers * 4);

// Uninitialised memory for an encoded message (every byte gets written, so
// zeroing it first would be a whole extra pass), huge-page aligned when large.
Buffer allocate_for_writing(std::size_t size) {
  if (size < kHugePageMinimum) {
    std::shared_ptr<std::byte[]> memory(new std::byte[size]);
    return Buffer::adopt(std::shared_ptr<const void>(memory, memory.get()), memory.get(), size);
  }
  const std::size_t rounded = (size + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (!p) throw std::bad_alloc();
  advise_huge_pages(p, rounded);
  std::shared_ptr<const void> owner(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  return Buffer::adopt(std::move(owner), static_cast<const std::byte*>(p), size);
}
void store_be32(std::byte* p, std::uint32_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
void store_be16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
std::size_t first_nonfinite(const std::vector<float>& v) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint32_t w;
    std::memcpy(&w, &v[i], 4);
    if (is_nonfinite(w)) return i;
  }
  return v.size();
}
}  // namespace

std::size_t encoded_size(std::size_t n, Framing framing) noexcept {
  return (framing == Framing::message ? kMessageHeader : 0) + 4 + outer_count(n);
}

Result<Buffer> encode(const PhotonList& photons, const Header& header) {
  const std::size_t n = photons.size();
  const auto floats = photons.floats();
  for (std::size_t m = 0; m < kFloatMembers; ++m) {
    if (floats[m]->size() != n) {
      return Result<Buffer>::failure(
          StatusCode::invalid_argument,
          fmt::format("mismatched vector lengths: x has {} elements, {} has {}", n, kMemberNames[m],
                      floats[m]->size()));
    }
  }
  if (photons.pmtid.size() != n) {
    return Result<Buffer>::failure(
        StatusCode::invalid_argument,
        fmt::format("mismatched vector lengths: x has {} elements, pmtid has {}", n,
                    photons.pmtid.size()));
  }
  if (header.collection_version == 0 || header.collection_version > kMaxVersion) {
    return Result<Buffer>::failure(StatusCode::invalid_argument,
                                   fmt::format("collection version {} is outside 1..{}",
                                               header.collection_version, kMaxVersion));
  }
  if (n > kMaxEncodable) {
    return Result<Buffer>::failure(
        StatusCode::invalid_argument,
        fmt::format("{} photons do not fit one ROOT object (at most {})", n, kMaxEncodable));
  }

  Buffer out = allocate_for_writing(encoded_size(n, header.framing));
  auto* p = const_cast<std::byte*>(out.data());  // ours until returned
  if (header.framing == Framing::message) {
    store_be32(p, static_cast<std::uint32_t>(out.size() - 4));  // as TMessage::SetLength
    store_be32(p + 4, kMessObject);
    p += kMessageHeader;
  }
  store_be32(p, static_cast<std::uint32_t>(outer_count(n)) | kByteCountMask);
  store_be32(p + 4, kNewClassTag);
  std::memcpy(p + 8, kClassName.data(), kClassName.size());
  p[8 + kClassName.size()] = std::byte{0};
  p += 4 + kClassTagBytes;
  store_be32(p, static_cast<std::uint32_t>(object_count(n)) | kByteCountMask);
  store_be16(p + 4, kClassVersion);
  store_be16(p + 6, kTObjectVersion);
  store_be32(p + 8, header.unique_id);
  store_be32(p + 12, header.bits & ~kIsReferenced);
  p += 4 + 2 + kTObjectBytes;

  const auto vector_count = static_cast<std::uint32_t>(2 + 4 + 4 * n) | kByteCountMask;
  auto put_vector = [&](const void* data, bool check_finite) {
    store_be32(p, vector_count);
    store_be16(p + 4, header.collection_version);
    store_be32(p + 6, static_cast<std::uint32_t>(n));
    p += kVectorHeader;
    const bool ok = swap_words<false>(static_cast<const std::byte*>(data), p, n, check_finite);
    p += 4 * n;
    return ok;
  };
  for (std::size_t m = 0; m < kFloatMembers; ++m) {
    if (!put_vector(floats[m]->data(), true)) {
      const std::size_t i = first_nonfinite(*floats[m]);
      return Result<Buffer>::failure(StatusCode::invalid_argument,
                                     fmt::format("{}[{}] is {} (every value must be finite)",
                                                 kMemberNames[m], i, (*floats[m])[i]));
    }
  }
  put_vector(photons.pmtid.data(), false);
  ACHERON_ASSERT(p == out.data() + out.size());  // every byte written (none was zeroed)
  return out;
}

Buffer encode_error(StatusCode code, std::string_view message, Framing framing) {
  std::string text = escaped(fmt::format("{}: {}", to_string(code), message), kMaxErrorText);
  const std::size_t length = text.size();
  const std::size_t object = error_object_count(length);
  const std::size_t outer = error_class_tag_bytes() + 4 + object;
  Buffer out = Buffer::allocate((framing == Framing::message ? kMessageHeader : 0) + 4 + outer);
  std::byte* p = out.mutable_data();
  if (framing == Framing::message) {
    store_be32(p, static_cast<std::uint32_t>(out.size() - 4));  // as TMessage::SetLength
    store_be32(p + 4, kMessObject);
    p += kMessageHeader;
  }
  store_be32(p, static_cast<std::uint32_t>(outer) | kByteCountMask);
  store_be32(p + 4, kNewClassTag);
  std::memcpy(p + 8, kErrorClassName.data(), kErrorClassName.size());  // NUL from allocate()
  p += 4 + error_class_tag_bytes();
  store_be32(p, static_cast<std::uint32_t>(object) | kByteCountMask);
  store_be16(p + 4, kErrorClassVersion);
  store_be16(p + 6, kTObjectVersion);
  // fUniqueID and fBits stay 0, as ROOT 6 writes a fresh object.
  p += 4 + 2 + kTObjectBytes;
  if (length < 255) {
    *p++ = static_cast<std::byte>(length);
  } else {
    *p++ = std::byte{255};
    store_be32(p, static_cast<std::uint32_t>(length));
    p += 4;
  }
  std::memcpy(p, text.data(), length);
  return out;
}
}  // namespace acheron::wire::chroma
