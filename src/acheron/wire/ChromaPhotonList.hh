// chroma-server wire codec: a ROOT-serialised ChromaPhotonList (a TObject
// holding eleven std::vector<float> and one std::vector<int>, ClassDef
// version 1), as Geant4 clients send it over ZeroMQ and expect it back.
// Two framings: the bare TBufferFile bytes of WriteObjectAny, and a TMessage
// (length word, kMESS_OBJECT what-word, then the same object). The byte
// layout and where each fact comes from: docs/chroma.md. Pure: bytes in,
// arrays out; no sockets and no ROOT dependency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Payload.hh"
#include "acheron/core/Result.hh"

namespace acheron::wire::chroma {

// ROOT's tags and masks (io/io/src/TBufferFile.cxx, net/net/inc/MessageTypes.h).
inline constexpr std::uint32_t kNullTag = 0;
inline constexpr std::uint32_t kNewClassTag = 0xFFFFFFFFu;
inline constexpr std::uint32_t kClassMask = 0x80000000u;
inline constexpr std::uint32_t kByteCountMask = 0x40000000u;
// Largest byte count ROOT writes (SetByteCount refuses counts >= this).
inline constexpr std::uint32_t kMaxMapCount = 0x3FFFFFFEu;
inline constexpr std::uint16_t kStreamedMemberWise = 0x4000;  // TBufferFile.h, BIT(14)
inline constexpr std::uint32_t kMessObject = 4;               // kMESS_OBJECT
inline constexpr std::uint32_t kMessZip = 0x20000000u;        // kMESS_ZIP (compressed)
inline constexpr std::uint32_t kIsReferenced = 0x10;          // TObject::kIsReferenced, BIT(4)

inline constexpr std::string_view kClassName = "ChromaPhotonList";
inline constexpr std::uint16_t kClassVersion = 1;    // ClassDef(ChromaPhotonList, 1)
inline constexpr std::uint16_t kTObjectVersion = 1;  // ClassDef(TObject, 1)
// Version word ROOT writes before each std::vector member: the class version
// of TStreamerInfo, 10 in ROOT 6.40 (9 in ROOT 5 and early ROOT 6). Readers
// accept any value; a reply can echo the one its client sent.
inline constexpr std::uint16_t kCollectionVersion = 10;

inline constexpr std::size_t kMembers = 12;       // vectors in the class
inline constexpr std::size_t kFloatMembers = 11;  // x .. wavelength
// Member names in declaration (= wire) order.
inline constexpr std::array<std::string_view, kMembers> kMemberNames{
    "x", "y", "z", "px", "py", "pz", "polx", "poly", "polz", "t", "wavelength", "pmtid"};

// Photons as a structure of arrays, every vector the same length.
struct PhotonList {
  std::vector<float> x, y, z;           // position, mm
  std::vector<float> px, py, pz;        // unit direction
  std::vector<float> polx, poly, polz;  // polarisation
  std::vector<float> t;                 // time, ns
  std::vector<float> wavelength;        // nm
  std::vector<std::int32_t> pmtid;      // channel id (-1: none)

  std::size_t size() const noexcept { return x.size(); }
  void resize(std::size_t n);
  // The float members in wire order (x, y, z, px, ..., t, wavelength).
  std::array<std::vector<float>*, kFloatMembers> floats() noexcept;
  std::array<const std::vector<float>*, kFloatMembers> floats() const noexcept;
  // Value equality (0.0 == -0.0); see bitwise_equal for bit-exact.
  bool operator==(const PhotonList&) const = default;
};

// Same lengths and the same bits in every element.
bool bitwise_equal(const PhotonList& a, const PhotonList& b) noexcept;

enum class Framing : std::uint8_t {
  buffer,   // bare TBufferFile bytes (WriteObjectAny), as chroma-server's own client sends
  message,  // TMessage: u32 length, u32 kMESS_OBJECT, then the object
};
std::string_view to_string(Framing f);

// What a sender's ROOT wrote besides the arrays. A reply that reuses the
// request's header goes back in the client's framing and looks as its own
// ROOT would have written it.
struct Header {
  Framing framing = Framing::buffer;
  std::uint16_t collection_version = kCollectionVersion;  // of the first vector
  std::uint32_t unique_id = 0;                            // TObject::fUniqueID
  // TObject::fBits with kIsReferenced cleared (the process-id word that
  // follows a referenced object is read and dropped, and never written).
  std::uint32_t bits = 0;
  bool operator==(const Header&) const = default;
};

struct Decoded {
  PhotonList photons;
  Header header;
};

struct Limits {
  std::size_t max_photons = 10'000'000;  // per list; above: resource_exhausted
};

// The framing a message appears to use, from its first eight bytes: a
// TMessage starts with its length word (0 when the sender never set it, as
// TMessage users outside TSocket do, or size - 4), which never carries
// kByteCountMask; a bare buffer starts with a byte count (kByteCountMask set)
// or kNewClassTag. For an error reply when decode fails.
Framing detect_framing(std::span<const std::byte> bytes) noexcept;

// Decodes one ChromaPhotonList (framing detected). Never throws on input:
// truncation, a wrong class or version, byte counts that disagree with the
// data, vectors of different lengths, non-finite floats, unsupported
// encodings (compressed TMessage, member-wise collections, object
// references) are invalid_argument / unimplemented; more than
// limits.max_photons is resource_exhausted. Allocates only what the input's
// size can back.
Result<Decoded> decode(std::span<const std::byte> bytes, const Limits& limits = {});

// Where a valid list's arrays lie in its message, for reading them without
// a copy: element i of member m (wire order, kMemberNames) is the
// big-endian 32-bit word at offsets[m] + 4 i. Valid as long as the bytes are.
struct View {
  Header header;
  std::size_t size = 0;                         // photons
  std::array<std::size_t, kMembers> offsets{};  // of each member's first element
  // Member m (< kFloatMembers) of photon i, and photon i's pmtid.
  float value(std::span<const std::byte> bytes, std::size_t member, std::size_t i) const;
  std::int32_t pmtid(std::span<const std::byte> bytes, std::size_t i) const;
};

// Checks a message exactly as decode does (the same errors) without copying
// its arrays: one read-only pass over them (finiteness).
Result<View> decode_view(std::span<const std::byte> bytes, const Limits& limits = {});

// Bytes encode() writes for n photons in the given framing.
std::size_t encoded_size(std::size_t n, Framing framing) noexcept;

// Encodes as ROOT 6 writes the object (byte counts everywhere; a TMessage's
// length word set as TMessage::SetLength does). Errors (invalid_argument):
// vectors of different lengths, a non-finite float, more photons than one
// ROOT byte count can describe.
Result<Buffer> encode(const PhotonList& photons, const Header& header = {});

// The error reply of the chroma front (docs/chroma.md, "The error reply"):
// a ROOT TObjString (ClassDef version 1) holding "<status>: <message>", in
// the request's framing. A client that reads the reply with
// ReadObjectAny(ChromaPhotonList::Class()) gets nullptr (ROOT reports the
// wrong class); one that reads any object gets a TObjString with the text.
// No ChromaPhotonList, not even an empty one, is ever an error.
inline constexpr std::string_view kErrorClassName = "TObjString";
inline constexpr std::uint16_t kErrorClassVersion = 1;  // ClassDef(TObjString, 1)
// Longest text an error reply carries (longer messages are cut with "...").
inline constexpr std::size_t kMaxErrorText = 1024;

struct ErrorReply {
  StatusCode code = StatusCode::unknown;
  std::string message;  // without the "<status>: " prefix
};

// The bytes ROOT writes for a TObjString of "<to_string(code)>: <message>"
// (bytes outside printable ASCII written as \xNN; text past kMaxErrorText
// bytes cut with "...").
Buffer encode_error(StatusCode code, std::string_view message, Framing framing = Framing::buffer);
// Reads an error reply in either framing: the status from the text's prefix
// (StatusCode::unknown, and the whole text as message, if it names none).
// invalid_argument if the bytes are not a TObjString as ROOT writes one.
Result<ErrorReply> decode_error(std::span<const std::byte> bytes);

}  // namespace acheron::wire::chroma
