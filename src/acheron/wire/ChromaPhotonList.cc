// ChromaPhotonList decoding (ROOT TBufferFile layout, docs/chroma.md), the
// photon list itself and the framing; encoding is in ChromaPhotonListEncode.cc.
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

std::uint32_t load_be32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  return v;
}
std::uint16_t load_be16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) << 8 |
                                    std::to_integer<unsigned>(p[1]));
}

// Reads ROOT's big-endian stream with bounds checks; every failure becomes
// an error message naming the offset.
class Reader final {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}

  std::size_t pos() const noexcept { return pos_; }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  const std::byte* here() const noexcept { return in_.data() + pos_; }

  // False (and the error set) if fewer than n bytes remain.
  bool need(std::size_t n, std::string_view what) {
    if (n <= remaining()) return true;
    error = fmt::format("truncated: {} needs {} bytes at offset {}, {} remain", what, n, pos_,
                        remaining());
    code = StatusCode::invalid_argument;
    return false;
  }
  std::uint32_t u32() noexcept {
    auto v = load_be32(here());
    pos_ += 4;
    return v;
  }
  std::uint16_t u16() noexcept {
    auto v = load_be16(here());
    pos_ += 2;
    return v;
  }
  void skip(std::size_t n) noexcept { pos_ += n; }

  bool fail(StatusCode c, std::string message) {
    code = c;
    error = std::move(message);
    return false;
  }

  std::string error;
  StatusCode code = StatusCode::invalid_argument;

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

// An optional byte count (kByteCountMask set in the first word) followed by
// a 16-bit version, as TBufferFile::ReadVersion reads it.
struct VersionHeader {
  bool has_count = false;
  std::uint32_t count = 0;    // bytes after the count word
  std::size_t count_end = 0;  // offset the count says the part ends at
  std::uint16_t version = 0;
};

bool read_version(Reader& r, std::string_view what, VersionHeader& h) {
  if (!r.need(2, what)) return false;
  if (r.remaining() >= 4 && (load_be32(r.here()) & kByteCountMask)) {
    h.has_count = true;
    h.count = r.u32() & ~kByteCountMask;
    if (h.count > r.remaining()) {
      return r.fail(StatusCode::invalid_argument,
                    fmt::format("truncated: {} byte count {} at offset {} exceeds the {} bytes "
                                "that remain",
                                what, h.count, r.pos() - 4, r.remaining()));
    }
    h.count_end = r.pos() + h.count;
    if (!r.need(2, what)) return false;
  }
  h.version = r.u16();
  return true;
}

bool check_count(Reader& r, std::string_view what, const VersionHeader& h) {
  if (!h.has_count || r.pos() == h.count_end) return true;
  return r.fail(StatusCode::invalid_argument,
                fmt::format("byte count mismatch: {} declares {} bytes, its content has {}", what,
                            h.count, h.count + r.pos() - h.count_end));
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7F) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

bool read_header(Reader& r, Framing framing, std::size_t size) {
  if (framing != Framing::message) return true;
  if (!r.need(kMessageHeader, "TMessage header")) return false;
  const std::uint32_t length = r.u32();
  const std::uint32_t what = r.u32();
  if (length != 0 && length != size - 4) {
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("TMessage length word {} does not match the {} bytes received "
                              "(expected {} or 0)",
                              length, size, size - 4));
  }
  if (what & kMessZip) {
    return r.fail(StatusCode::unimplemented,
                  "compressed TMessage (kMESS_ZIP) is not supported: send it uncompressed");
  }
  if (what != kMessObject) {
    return r.fail(
        StatusCode::invalid_argument,
        fmt::format("TMessage what-word {:#x} is not kMESS_OBJECT ({})", what, kMessObject));
  }
  return true;
}

bool read_class_tag(Reader& r, VersionHeader& outer, std::string_view expected = kClassName) {
  if (!r.need(4, "object tag")) return false;
  std::uint32_t word = r.u32();
  if (word == kNullTag)
    return r.fail(StatusCode::invalid_argument, "the message holds a null object");
  if ((word & kByteCountMask) && word != kNewClassTag) {
    outer.has_count = true;
    outer.count = word & ~kByteCountMask;
    if (outer.count > r.remaining()) {
      return r.fail(StatusCode::invalid_argument,
                    fmt::format("truncated: object byte count {} exceeds the {} bytes that remain",
                                outer.count, r.remaining()));
    }
    outer.count_end = r.pos() + outer.count;
    if (!r.need(4, "class tag")) return false;
    word = r.u32();
  }
  if (word == kNullTag)
    return r.fail(StatusCode::invalid_argument, "the message holds a null object");
  if (word != kNewClassTag) {
    if (word & kClassMask) {
      return r.fail(StatusCode::unimplemented,
                    fmt::format("class tag {:#x} refers to a class stored earlier in the buffer; "
                                "send one ChromaPhotonList per message from a fresh buffer",
                                word));
    }
    return r.fail(StatusCode::unimplemented,
                  fmt::format("object tag {:#x} refers to an object stored earlier in the buffer; "
                              "send one ChromaPhotonList per message from a fresh buffer",
                              word));
  }
  const std::size_t limit = std::min(r.remaining(), kMaxClassName);
  const auto* begin = reinterpret_cast<const char*>(r.here());
  const auto* nul = static_cast<const char*>(std::memchr(begin, 0, limit));
  if (!nul) {
    if (limit < kMaxClassName) return r.need(limit + 1, "class name");
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("class name at offset {} is not NUL-terminated within {} bytes",
                              r.pos(), kMaxClassName));
  }
  const std::string_view name(begin, static_cast<std::size_t>(nul - begin));
  if (name != expected) {
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("wrong class '{}' (expected {})", printable(name), expected));
  }
  r.skip(name.size() + 1);
  return true;
}

bool read_tobject(Reader& r, Header& header) {
  if (!r.need(2, "TObject version")) return false;
  std::uint16_t version = r.u16();
  // TObject::Streamer reads its version with SkipVersion: a leading byte count
  // (kByteCountMask in the first 16 bits) is skipped.
  if (version & kStreamedMemberWise) {
    if (!r.need(4, "TObject version")) return false;
    r.skip(2);
    version = r.u16();
  }
  if (version != kTObjectVersion) {
    return r.fail(
        StatusCode::invalid_argument,
        fmt::format("unknown TObject version {} (expected {})", version, kTObjectVersion));
  }
  if (!r.need(8, "TObject fUniqueID and fBits")) return false;
  header.unique_id = r.u32();
  const std::uint32_t bits = r.u32();
  header.bits = bits & ~kIsReferenced;
  if (bits & kIsReferenced) {
    // A referenced object is followed by the 16-bit index of its process id.
    if (!r.need(2, "TObject process id")) return false;
    r.skip(2);
  }
  return true;
}

// True if none of n big-endian float32 words at src is inf or NaN: a
// read-only pass (the exponent bits sit in the first two bytes of each).
bool all_finite_wire(const std::byte* src, std::size_t n) noexcept {
  constexpr std::uint32_t kMask =
      std::endian::native == std::endian::little ? __builtin_bswap32(kExponentMask) : kExponentMask;
  constexpr std::size_t kBlock = 16;
  std::uint32_t nonfinite = 0;
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    std::uint32_t w[kBlock];
    std::memcpy(w, src + 4 * i, sizeof w);
    for (std::size_t k = 0; k < kBlock; ++k) nonfinite |= (w[k] & kMask) == kMask;
  }
  for (; i < n; ++i) {
    std::uint32_t w;
    std::memcpy(&w, src + 4 * i, 4);
    nonfinite |= (w & kMask) == kMask;
  }
  return nonfinite == 0;
}

// One std::vector<T> member (T = float or int32): version header, length,
// big-endian elements. `expected` is the first member's length. With `out`
// the elements are converted into it; without, they are only checked (and
// `offset` tells where they lie in the message).
template <class T>
bool read_vector(Reader& r, std::size_t member, std::vector<T>* out, std::size_t& offset,
                 std::size_t& expected, const Limits& limits, Header& header) {
  const std::string_view name = kMemberNames[member];
  VersionHeader h;
  if (!read_version(r, name, h)) return false;
  if (h.version & kStreamedMemberWise) {
    return r.fail(StatusCode::unimplemented,
                  fmt::format("member {} is streamed member-wise (version {:#x}); ROOT streams "
                              "vectors of numbers object-wise",
                              name, h.version));
  }
  if (h.version == 0 || h.version > kMaxVersion) {
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("unknown collection version {} for member {}", h.version, name));
  }
  if (member == 0) header.collection_version = h.version;
  if (!r.need(4, name)) return false;
  const auto length = static_cast<std::int32_t>(r.u32());
  if (length < 0) {
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("member {} has a negative length {}", name, length));
  }
  const auto n = static_cast<std::size_t>(length);
  if (member == 0) {
    if (n > limits.max_photons) {
      return r.fail(
          StatusCode::resource_exhausted,
          fmt::format("{} photons exceed the limit of {} per list", n, limits.max_photons));
    }
    expected = n;
  } else if (n != expected) {
    return r.fail(
        StatusCode::invalid_argument,
        fmt::format("mismatched vector lengths: x has {} elements, {} has {}", expected, name, n));
  }
  // Checked against the bytes present before anything is allocated.
  if (n > r.remaining() / 4) return r.need(4 * n, name);
  offset = r.pos();
  constexpr bool kFloat = std::is_same_v<T, float>;
  bool finite = true;
  if (out) {
    // Converted through a small block that stays in L1 and appended from
    // it, so each element of the vector is written once (resize() would
    // first zero them all: a whole extra pass over the output).
    constexpr std::size_t kChunk = 1024;
    T block[kChunk];
    out->clear();
    out->reserve(n);
    advise_huge_pages(out->data(), n * sizeof(T));
    for (std::size_t i = 0; i < n; i += kChunk) {
      const std::size_t k = std::min(kChunk, n - i);
      finite &= swap_words<true>(r.here() + 4 * i, reinterpret_cast<std::byte*>(block), k, kFloat);
      out->insert(out->end(), block, block + k);
    }
  } else if (kFloat) {
    finite = all_finite_wire(r.here(), n);
  }
  if (!finite) {
    std::size_t i = 0;
    float v = 0;
    for (; i < n; ++i) {
      std::uint32_t w = load_be32(r.here() + 4 * i);
      if (is_nonfinite(w)) {
        std::memcpy(&v, &w, 4);
        break;
      }
    }
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("{}[{}] is {} (every value must be finite)", name, i, v));
  }
  r.skip(4 * n);
  return check_count(r, name, h);
}

// The whole object: into `photons` (converted), or only checked with the
// arrays' offsets in `offsets`.
bool read_list(Reader& r, std::size_t size, const Limits& limits, Header& header,
               PhotonList* photons, std::array<std::size_t, kMembers>& offsets, std::size_t& n) {
  if (!read_header(r, header.framing, size)) return false;
  VersionHeader outer;
  if (!read_class_tag(r, outer)) return false;
  VersionHeader object;
  if (!read_version(r, kClassName, object)) return false;
  if (object.version != kClassVersion) {
    return r.fail(
        StatusCode::invalid_argument,
        fmt::format("unknown ChromaPhotonList class version {} (this codec reads version {})",
                    object.version, kClassVersion));
  }
  if (!read_tobject(r, header)) return false;
  n = 0;
  for (std::size_t m = 0; m < kFloatMembers; ++m) {
    std::vector<float>* out = photons ? photons->floats()[m] : nullptr;
    if (!read_vector(r, m, out, offsets[m], n, limits, header)) return false;
  }
  std::vector<std::int32_t>* ids = photons ? &photons->pmtid : nullptr;
  if (!read_vector(r, kMembers - 1, ids, offsets[kMembers - 1], n, limits, header)) return false;
  if (!check_count(r, kClassName, object)) return false;
  if (!check_count(r, "object", outer)) return false;
  if (r.remaining() != 0) {
    return r.fail(StatusCode::invalid_argument,
                  fmt::format("{} bytes follow the object at offset {}", r.remaining(), r.pos()));
  }
  return true;
}

}  // namespace

void PhotonList::resize(std::size_t n) {
  for (auto* v : floats()) v->resize(n);
  pmtid.resize(n);
}

std::array<std::vector<float>*, kFloatMembers> PhotonList::floats() noexcept {
  return {&x, &y, &z, &px, &py, &pz, &polx, &poly, &polz, &t, &wavelength};
}

std::array<const std::vector<float>*, kFloatMembers> PhotonList::floats() const noexcept {
  return {&x, &y, &z, &px, &py, &pz, &polx, &poly, &polz, &t, &wavelength};
}

bool bitwise_equal(const PhotonList& a, const PhotonList& b) noexcept {
  const auto fa = a.floats();
  const auto fb = b.floats();
  for (std::size_t m = 0; m < kFloatMembers; ++m) {
    if (fa[m]->size() != fb[m]->size()) return false;
    if (!fa[m]->empty() && std::memcmp(fa[m]->data(), fb[m]->data(), 4 * fa[m]->size()) != 0)
      return false;
  }
  return a.pmtid == b.pmtid;
}

std::string_view to_string(Framing f) {
  return f == Framing::message ? "message" : "buffer";
}

Framing detect_framing(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < kMessageHeader) return Framing::buffer;
  const std::uint32_t first = load_be32(bytes.data());
  if (first == kNewClassTag || (first & kByteCountMask)) return Framing::buffer;
  return Framing::message;
}

Result<Decoded> decode(std::span<const std::byte> bytes, const Limits& limits) {
  if (bytes.empty()) return Result<Decoded>::failure(StatusCode::invalid_argument, "empty message");
  Decoded d;
  d.header.framing = detect_framing(bytes);
  Reader r(bytes);
  std::array<std::size_t, kMembers> offsets{};
  std::size_t n = 0;
  if (!read_list(r, bytes.size(), limits, d.header, &d.photons, offsets, n)) {
    return Result<Decoded>::failure(r.code, r.error);
  }
  return d;
}

Result<View> decode_view(std::span<const std::byte> bytes, const Limits& limits) {
  if (bytes.empty()) return Result<View>::failure(StatusCode::invalid_argument, "empty message");
  View v;
  v.header.framing = detect_framing(bytes);
  Reader r(bytes);
  if (!read_list(r, bytes.size(), limits, v.header, nullptr, v.offsets, v.size)) {
    return Result<View>::failure(r.code, r.error);
  }
  return v;
}

float View::value(std::span<const std::byte> bytes, std::size_t member, std::size_t i) const {
  const std::uint32_t w = load_be32(bytes.data() + offsets[member] + 4 * i);
  float v;
  std::memcpy(&v, &w, 4);
  return v;
}

std::int32_t View::pmtid(std::span<const std::byte> bytes, std::size_t i) const {
  return static_cast<std::int32_t>(load_be32(bytes.data() + offsets[kMembers - 1] + 4 * i));
}
Result<ErrorReply> decode_error(std::span<const std::byte> bytes) {
  Reader r(bytes);
  auto failed = [&r]() { return Result<ErrorReply>::failure(r.code, r.error); };
  if (bytes.empty())
    return Result<ErrorReply>::failure(StatusCode::invalid_argument, "empty message");
  if (!read_header(r, detect_framing(bytes), bytes.size())) return failed();
  VersionHeader outer;
  if (!read_class_tag(r, outer, kErrorClassName)) return failed();
  VersionHeader object;
  if (!read_version(r, kErrorClassName, object)) return failed();
  if (object.version != kErrorClassVersion) {
    return Result<ErrorReply>::failure(
        StatusCode::invalid_argument,
        fmt::format("unknown TObjString class version {} (expected {})", object.version,
                    kErrorClassVersion));
  }
  Header ignored;
  if (!read_tobject(r, ignored)) return failed();
  if (!r.need(1, "TString length")) return failed();
  std::size_t length = std::to_integer<std::size_t>(*r.here());
  r.skip(1);
  if (length == 255) {
    if (!r.need(4, "TString length")) return failed();
    length = r.u32();
  }
  if (!r.need(length, "TString")) return failed();
  const std::string text(reinterpret_cast<const char*>(r.here()), length);
  r.skip(length);
  if (!check_count(r, kErrorClassName, object) || !check_count(r, "object", outer)) {
    return failed();
  }
  if (r.remaining() != 0) {
    return Result<ErrorReply>::failure(
        StatusCode::invalid_argument,
        fmt::format("{} bytes follow the object at offset {}", r.remaining(), r.pos()));
  }
  ErrorReply e;
  const auto colon = text.find(": ");
  e.code = colon == std::string::npos
               ? StatusCode::unknown
               : status_code_from_string(std::string_view(text).substr(0, colon));
  const bool named = colon != std::string::npos &&
                     (e.code != StatusCode::unknown || text.compare(0, colon, "unknown") == 0);
  e.message = named ? text.substr(colon + 2) : text;
  return e;
}

}  // namespace acheron::wire::chroma
