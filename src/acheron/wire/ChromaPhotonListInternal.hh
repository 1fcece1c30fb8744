// Internal to the ChromaPhotonList codec (ChromaPhotonList.cc,
// ChromaPhotonListEncode.cc): the fixed layout sizes, big-endian word swaps
// and huge-page advice both directions use. Not for clients.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "acheron/wire/ChromaPhotonList.hh"

namespace acheron::wire::chroma {

static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);

// Fixed parts of the layout (docs/chroma.md).
constexpr std::size_t kMessageHeader = 8;                          // length word + what-word
constexpr std::size_t kClassTagBytes = 4 + kClassName.size() + 1;  // kNewClassTag + name + NUL
constexpr std::size_t kTObjectBytes = 2 + 4 + 4;                   // version, fUniqueID, fBits
constexpr std::size_t kVectorHeader = 4 + 2 + 4;                   // byte count, version, length
// TClass::Load reads a class name of at most 80 bytes including its NUL.
constexpr std::size_t kMaxClassName = 80;
// Highest version number ROOT writes (kMaxVersion in TBufferFile.cxx).
constexpr std::uint16_t kMaxVersion = 0x3FFF;
constexpr std::uint32_t kExponentMask = 0x7F800000u;  // all ones: inf or NaN

// Large outputs go to fresh memory, where the first write to each 4 KiB page
// faults and costs more than the byte swap itself (measured: copying into
// fresh memory ran at a quarter of the speed with 4 KiB pages). Transparent
// huge pages (Linux, THP "madvise" or "always") make that 512 times fewer
// faults; only 2 MiB-aligned runs of untouched memory can use them.
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kHugePageMinimum = 2 * kHugePage;  // smaller blocks gain little
inline void advise_huge_pages(void* p, std::size_t bytes) noexcept {
#if defined(MADV_HUGEPAGE)
  if (bytes < kHugePageMinimum) return;
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  const auto begin = (start + kHugePage - 1) & ~(kHugePage - 1);
  const auto end = (start + bytes) & ~(kHugePage - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

constexpr bool is_nonfinite(std::uint32_t native_word) noexcept {
  return (native_word & kExponentMask) == kExponentMask;
}

// Byte-swaps n 32-bit words from src to dst (big-endian wire <-> native;
// either may be unaligned, they must not overlap). With check_finite, returns
// false if any word, read as a native float, is inf or NaN. Blocks of a fixed
// width let the compiler turn the swap and the check into vector code at
// -O2; the tail runs scalar.
template <bool kFromWire>
bool swap_words(const std::byte* src, std::byte* dst, std::size_t n, bool check_finite) noexcept {
  constexpr std::size_t kBlock = 16;
  std::uint32_t nonfinite = 0;
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    std::uint32_t w[kBlock];
    std::memcpy(w, src + 4 * i, sizeof w);
    for (std::size_t k = 0; k < kBlock; ++k) {
      if constexpr (!kFromWire) nonfinite |= is_nonfinite(w[k]);
      if constexpr (std::endian::native == std::endian::little) w[k] = __builtin_bswap32(w[k]);
      if constexpr (kFromWire) nonfinite |= is_nonfinite(w[k]);
    }
    std::memcpy(dst + 4 * i, w, sizeof w);
  }
  for (; i < n; ++i) {
    std::uint32_t w;
    std::memcpy(&w, src + 4 * i, 4);
    if constexpr (!kFromWire) nonfinite |= is_nonfinite(w);
    if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap32(w);
    if constexpr (kFromWire) nonfinite |= is_nonfinite(w);
    std::memcpy(dst + 4 * i, &w, 4);
  }
  return !check_finite || nonfinite == 0;
}

// The TString length prefix (TBufferFile::WriteTString): one byte below 255,
// else the byte 255 and a 32-bit length.
constexpr std::size_t tstring_prefix(std::size_t length) {
  return length < 255 ? 1 : 5;
}
// Byte counts of a TObjString holding `length` bytes: the object part
// (version onwards) and the whole object (class tag onwards).
constexpr std::size_t error_object_count(std::size_t length) {
  return 2 + kTObjectBytes + tstring_prefix(length) + length;
}
constexpr std::size_t error_class_tag_bytes() {
  return 4 + kErrorClassName.size() + 1;
}

}  // namespace acheron::wire::chroma
