// chroma-server codec: golden bytes written by real ROOT (test/data/chroma,
// scripts/make-chroma-golden.py), round trips in both framings, the lenient
// forms ROOT itself reads, and every error the decoder reports.
#include <gtest/gtest.h>

#include <sodium.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include "TestBytes.hh"
#include "acheron/wire/ChromaPhotonList.hh"

namespace acheron::wire::chroma {
namespace {

std::filesystem::path golden_dir() {
  return std::filesystem::path(ACHERON_SOURCE_DIR) / "test" / "data" / "chroma";
}

std::string golden(const std::string& name) {
  std::ifstream in(golden_dir() / name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing golden file " << name;
  return {std::istreambuf_iterator<char>(in), {}};
}

std::span<const std::byte> bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
using test_support::str;

std::string sha256_hex(const Buffer& b) {
  EXPECT_GE(sodium_init(), 0);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  std::string hex;
  for (unsigned char c : digest) hex += fmt::format("{:02x}", c);
  return hex;
}

// The photons of field_values(n) in scripts/make-chroma-golden.py: integers
// times powers of two (exact in float32), axis directions, perpendicular
// polarisations.
PhotonList field_values(std::size_t n) {
  PhotonList p;
  p.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    const auto i = static_cast<std::int64_t>(k);
    p.x[k] = static_cast<float>(((i * 7919) % 20001 - 10000) * 0.125);
    p.y[k] = static_cast<float>(((i * 104729) % 16001 - 8000) * 0.25);
    p.z[k] = static_cast<float>(((i * 1299709) % 12001 - 6000) * 0.5);
    const auto axis = i % 6;
    float dir[3] = {0, 0, 0}, pol[3] = {0, 0, 0};
    dir[axis / 2] = axis % 2 == 0 ? 1.0f : -1.0f;
    pol[(axis / 2 + 1) % 3] = 1.0f;
    p.px[k] = dir[0], p.py[k] = dir[1], p.pz[k] = dir[2];
    p.polx[k] = pol[0], p.poly[k] = pol[1], p.polz[k] = pol[2];
    p.t[k] = static_cast<float>((i % 8192) * 0.0078125);
    p.wavelength[k] = static_cast<float>(200.0 + (i % 501) + 0.5 * (i % 2));
    p.pmtid[k] = static_cast<std::int32_t>((i * 37) % 20000 - 1);
  }
  return p;
}

// edge_values() of the script: -0.0, the smallest subnormal, FLT_MAX and
// -FLT_MIN rotated one place per member; the int32 extremes.
PhotonList edge_values() {
  const std::uint32_t specials[4] = {0x80000000u, 0x00000001u, 0x7F7FFFFFu, 0x80800000u};
  PhotonList p;
  p.resize(4);
  const auto floats = p.floats();
  for (std::size_t m = 0; m < kFloatMembers; ++m)
    for (std::size_t i = 0; i < 4; ++i)
      (*floats[m])[i] = std::bit_cast<float>(specials[(i + 4 - m % 4) % 4]);
  p.pmtid = {std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max(), -1,
             0};
  return p;
}

// Random finite floats drawn from all bit patterns (every exponent, both
// signs, subnormals).
PhotonList random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  PhotonList p;
  p.resize(n);
  for (auto* v : p.floats()) {
    for (auto& f : *v) {
      std::uint32_t w;
      do w = static_cast<std::uint32_t>(gen());
      while ((w & 0x7F800000u) == 0x7F800000u);
      f = std::bit_cast<float>(w);
    }
  }
  for (auto& id : p.pmtid) id = static_cast<std::int32_t>(gen());
  return p;
}

// decode_view must accept exactly what decode accepts and see the same
// values where they lie in the message.
void expect_view_agrees(const std::string& in, const Decoded& d, const Limits& limits) {
  auto v = decode_view(bytes(in), limits);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->header, d.header);
  ASSERT_EQ(v->size, d.photons.size());
  const auto floats = d.photons.floats();
  for (std::size_t i = 0; i < v->size; ++i) {
    for (std::size_t m = 0; m < kFloatMembers; ++m) {
      const float a = v->value(bytes(in), m, i), b = (*floats[m])[i];
      ASSERT_EQ(std::memcmp(&a, &b, 4), 0) << kMemberNames[m] << "[" << i << "]";
    }
    ASSERT_EQ(v->pmtid(bytes(in), i), d.photons.pmtid[i]);
  }
}

Decoded decode_ok(const std::string& in, const Limits& limits = {}) {
  auto r = decode(bytes(in), limits);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return {};
  expect_view_agrees(in, *r, limits);
  return std::move(r).value();
}

// Expects decode to fail with `code` and a message containing `text`.
void expect_error(const std::string& in, StatusCode code, std::string_view text,
                  const Limits& limits = {}) {
  auto r = decode(bytes(in), limits);
  ASSERT_FALSE(r.ok()) << "decoded although it should fail with: " << text;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(text), std::string::npos)
      << "message '" << r.error().message << "' lacks '" << text << "'";
  auto v = decode_view(bytes(in), limits);
  ASSERT_FALSE(v.ok()) << "decode_view accepted what decode refuses: " << text;
  EXPECT_EQ(v.error().code, r.error().code);
  EXPECT_EQ(v.error().message, r.error().message);
}

// An independent writer of the layout (docs/chroma.md) with knobs for every
// variant ROOT reads and every corruption the decoder must catch.
struct Layout {
  Framing framing = Framing::buffer;
  std::optional<std::uint32_t> length_word;  // default: size - 4
  std::uint32_t what = kMessObject;
  bool outer_count = true;
  int outer_delta = 0;  // added to the outer byte count
  std::uint32_t tag = kNewClassTag;
  std::string class_name{kClassName};
  bool class_nul = true;
  bool object_count = true;
  int object_delta = 0;
  std::uint16_t class_version = kClassVersion;
  bool tobject_count = false;  // a byte count before TObject's version
  std::uint16_t tobject_version = kTObjectVersion;
  std::uint32_t unique_id = 0;
  std::uint32_t bits = 0;  // kIsReferenced adds a 16-bit process id
  bool vector_counts = true;
  std::size_t delta_member = 0;
  int vector_delta = 0;  // added to member delta_member's byte count
  std::uint16_t collection_version = kCollectionVersion;
  std::optional<std::int32_t> declared_length;  // written for member length_member
  std::size_t length_member = 0;
  std::string trailing;
};

class Writer {
 public:
  void u32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>(v >> s);
  }
  void u16(std::uint16_t v) {
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v);
  }
  std::size_t reserve() {
    out.append(4, '\0');
    return out.size();
  }
  void patch_count(std::size_t end_of_word, int delta) {
    const auto count = static_cast<std::uint32_t>(out.size() - end_of_word + delta);
    Writer w;
    w.u32(count | kByteCountMask);
    out.replace(end_of_word - 4, 4, w.out);
  }
  std::string out;
};

std::string build(const PhotonList& p, const Layout& l) {
  Writer w;
  if (l.framing == Framing::message) {
    w.u32(0);
    w.u32(l.what);
  }
  std::size_t outer = 0;
  if (l.outer_count) outer = w.reserve();
  w.u32(l.tag);
  w.out += l.class_name;
  if (l.class_nul) w.out += '\0';
  std::size_t object = 0;
  if (l.object_count) object = w.reserve();
  w.u16(l.class_version);
  if (l.tobject_count) w.u32(kByteCountMask | 10);
  w.u16(l.tobject_version);
  w.u32(l.unique_id);
  w.u32(l.bits);
  if (l.bits & kIsReferenced) w.u16(0);
  auto member = [&](std::size_t m, auto&& put_all, std::size_t n) {
    std::size_t count = 0;
    if (l.vector_counts) count = w.reserve();
    w.u16(l.collection_version);
    w.u32(l.declared_length && l.length_member == m ? static_cast<std::uint32_t>(*l.declared_length)
                                                    : static_cast<std::uint32_t>(n));
    put_all();
    if (l.vector_counts) w.patch_count(count, m == l.delta_member ? l.vector_delta : 0);
  };
  const auto floats = p.floats();
  for (std::size_t m = 0; m < kFloatMembers; ++m) {
    const auto& v = *floats[m];
    member(
        m,
        [&] {
          for (float f : v) w.u32(std::bit_cast<std::uint32_t>(f));
        },
        v.size());
  }
  member(
      kMembers - 1,
      [&] {
        for (auto id : p.pmtid) w.u32(static_cast<std::uint32_t>(id));
      },
      p.pmtid.size());
  if (l.object_count) w.patch_count(object, l.object_delta);
  if (l.outer_count) w.patch_count(outer, l.outer_delta);
  w.out += l.trailing;
  if (l.framing == Framing::message) {
    Writer len;
    len.u32(l.length_word.value_or(static_cast<std::uint32_t>(w.out.size() - 4)));
    w.out.replace(0, 4, len.out);
  }
  return w.out;
}

std::string encode_str(const PhotonList& p, const Header& h = {}) {
  auto r = encode(p, h);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? str(*r) : std::string();
}

Header header_for(Framing f) {
  Header h;
  h.framing = f;
  return h;
}

// ------------------------------------------------------------ golden bytes

TEST(ChromaPhotonList, RootGoldenBytesDecodeBitExactly) {
  for (std::size_t n : {0u, 1u, 3u}) {
    for (auto framing : {Framing::buffer, Framing::message}) {
      const std::string name = fmt::format("{}_{}.bin", to_string(framing), n);
      SCOPED_TRACE(name);
      const std::string in = golden(name);
      EXPECT_EQ(detect_framing(bytes(in)), framing);
      const Decoded d = decode_ok(in);
      EXPECT_EQ(d.header, header_for(framing));
      EXPECT_EQ(d.photons.size(), n);
      EXPECT_TRUE(bitwise_equal(d.photons, field_values(n)));
    }
  }
}

TEST(ChromaPhotonList, EncodeWritesRootsBytes) {
  for (std::size_t n : {0u, 1u, 3u}) {
    for (auto framing : {Framing::buffer, Framing::message}) {
      const std::string name = fmt::format("{}_{}.bin", to_string(framing), n);
      SCOPED_TRACE(name);
      const std::string out = encode_str(field_values(n), header_for(framing));
      EXPECT_EQ(out, golden(name));
      EXPECT_EQ(out.size(), encoded_size(n, framing));
    }
  }
  EXPECT_EQ(encode_str(edge_values()), golden("buffer_edge.bin"));
}

TEST(ChromaPhotonList, EdgeValuesKeepEveryBit) {
  const Decoded d = decode_ok(golden("buffer_edge.bin"));
  EXPECT_TRUE(bitwise_equal(d.photons, edge_values()));
  EXPECT_TRUE(std::signbit(d.photons.x[0]));  // -0.0 stays negative
  EXPECT_EQ(d.photons.pmtid[0], std::numeric_limits<std::int32_t>::min());
}

TEST(ChromaPhotonList, MessageWithoutLengthWord) {
  // Clients that hand TMessage::Buffer() to ZeroMQ never call SetLength.
  const std::string in = golden("message_nolength_1.bin");
  const Decoded d = decode_ok(in);
  EXPECT_EQ(d.header.framing, Framing::message);
  EXPECT_TRUE(bitwise_equal(d.photons, field_values(1)));
  const std::string out = encode_str(d.photons, d.header);
  EXPECT_EQ(out.substr(4), in.substr(4));
  EXPECT_EQ(out, golden("message_1.bin"));
}

TEST(ChromaPhotonList, TObjectIdAndBitsTravel) {
  const std::string in = golden("buffer_flags_1.bin");
  const Decoded d = decode_ok(in);
  EXPECT_EQ(d.header.unique_id, 0x1234u);
  EXPECT_EQ(d.header.bits, 0x8u);  // kMustCleanup
  EXPECT_EQ(encode_str(d.photons, d.header), in);
}

TEST(ChromaPhotonList, ReferencedObjectsProcessIdIsDropped) {
  const Decoded d = decode_ok(golden("buffer_referenced_1.bin"));
  EXPECT_EQ(d.header.bits, 0u);
  EXPECT_TRUE(bitwise_equal(d.photons, field_values(1)));
  EXPECT_EQ(encode_str(d.photons, d.header), golden("buffer_1.bin"));
}

TEST(ChromaPhotonList, HundredThousandPhotonsMatchRootsDigest) {
  // large.sha256 holds the SHA-256 of ROOT's bytes for field_values(100000).
  std::ifstream in(golden_dir() / "large.sha256");
  std::map<std::string, std::string> digest;
  for (std::string hex, name; in >> hex >> name;) digest[name] = hex;
  ASSERT_EQ(digest.size(), 2u);
  const PhotonList p = field_values(100'000);
  for (auto framing : {Framing::buffer, Framing::message}) {
    SCOPED_TRACE(to_string(framing));
    auto out = encode(p, header_for(framing));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(sha256_hex(*out), digest[fmt::format("{}_100000", to_string(framing))]);
    auto back = decode({out->data(), out->size()});
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(bitwise_equal(back->photons, p));
    EXPECT_EQ(back->header.framing, framing);
  }
}

// -------------------------------------------------------------- round trips

TEST(ChromaPhotonList, RoundTripsZeroOneAndManyInBothFramings) {
  for (std::size_t n : {0u, 1u, 2u, 15u, 16u, 17u, 10'007u}) {
    for (auto framing : {Framing::buffer, Framing::message}) {
      SCOPED_TRACE(fmt::format("{} photons, {}", n, to_string(framing)));
      const PhotonList p = random_values(n, static_cast<std::uint32_t>(n) + 1);
      Header h;
      h.framing = framing;
      h.collection_version = 9;  // as ROOT 5 writes
      h.unique_id = 77;
      h.bits = 0x03000000;  // kNotDeleted | kIsOnHeap, as ROOT before 6.30 writes
      const std::string out = encode_str(p, h);
      EXPECT_EQ(out.size(), encoded_size(n, framing));
      const Decoded d = decode_ok(out);
      EXPECT_TRUE(bitwise_equal(d.photons, p));
      EXPECT_EQ(d.header, h);
    }
  }
}

TEST(ChromaPhotonList, IndependentWriterAgreesWithEncode) {
  const PhotonList p = random_values(33, 5);
  for (auto framing : {Framing::buffer, Framing::message}) {
    Layout l;
    l.framing = framing;
    EXPECT_EQ(build(p, l), encode_str(p, header_for(framing)));
  }
}

// ROOT's ReadVersion / ReadClass take byte counts as optional; so does decode.
TEST(ChromaPhotonList, ReadsTheFormsRootReads) {
  const PhotonList p = field_values(5);
  std::vector<Layout> forms(5);
  forms[0].outer_count = false;   // starts with kNewClassTag
  forms[1].object_count = false;  // version without byte count
  forms[2].vector_counts = false;
  forms[3].tobject_count = true;  // TObject version behind a byte count
  forms[4].framing = Framing::message;
  forms[4].length_word = 0;
  for (std::size_t i = 0; i < forms.size(); ++i) {
    SCOPED_TRACE(i);
    const Decoded d = decode_ok(build(p, forms[i]));
    EXPECT_TRUE(bitwise_equal(d.photons, p));
  }
  Layout all_bare;
  all_bare.outer_count = all_bare.object_count = all_bare.vector_counts = false;
  EXPECT_TRUE(bitwise_equal(decode_ok(build(p, all_bare)).photons, p));
}

TEST(ChromaPhotonList, DetectsFraming) {
  EXPECT_EQ(detect_framing({}), Framing::buffer);
  EXPECT_EQ(detect_framing(bytes(golden("buffer_1.bin"))), Framing::buffer);
  EXPECT_EQ(detect_framing(bytes(golden("message_1.bin"))), Framing::message);
  EXPECT_EQ(detect_framing(bytes(golden("message_nolength_1.bin"))), Framing::message);
  Layout bare;
  bare.outer_count = false;
  EXPECT_EQ(detect_framing(bytes(build(field_values(1), bare))), Framing::buffer);
}

// ------------------------------------------------------------------- errors

TEST(ChromaPhotonList, TruncatedInputIsAnErrorAtEveryLength) {
  for (const char* name : {"buffer_3.bin", "message_3.bin", "buffer_referenced_1.bin"}) {
    const std::string in = golden(name);
    for (std::size_t len = 0; len < in.size(); ++len) {
      auto r = decode(bytes(in.substr(0, len)));
      EXPECT_FALSE(r.ok()) << name << " cut at " << len;
      EXPECT_FALSE(decode_view(bytes(in.substr(0, len))).ok()) << name << " cut at " << len;
    }
  }
  expect_error("", StatusCode::invalid_argument, "empty");
  const std::string in = golden("buffer_3.bin");
  expect_error(in.substr(0, in.size() - 2), StatusCode::invalid_argument, "truncated");
  // A message cut short: its length word no longer matches.
  const std::string msg = golden("message_3.bin");
  expect_error(msg.substr(0, msg.size() - 1), StatusCode::invalid_argument, "length word");
  Layout no_counts;
  no_counts.outer_count = no_counts.object_count = no_counts.vector_counts = false;
  const std::string bare = build(field_values(3), no_counts);
  expect_error(bare.substr(0, bare.size() - 5), StatusCode::invalid_argument, "truncated");
}

TEST(ChromaPhotonList, WrongClassName) {
  Layout l;
  l.class_name = "ChromaPhotonLisT";
  expect_error(build(field_values(1), l), StatusCode::invalid_argument,
               "wrong class 'ChromaPhotonLisT'");
  l.class_name = "TH1F";
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "wrong class 'TH1F'");
  l.class_name = std::string(100, 'A');
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "not NUL-terminated");
  l.class_name = "Chroma";
  l.class_nul = false;  // runs into the following bytes
  EXPECT_FALSE(decode(bytes(build(field_values(1), l))).ok());
}

TEST(ChromaPhotonList, UnknownVersions) {
  Layout l;
  l.class_version = 2;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "class version 2");
  l = {};
  l.tobject_version = 3;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "TObject version 3");
  l = {};
  l.collection_version = 0;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "collection version 0");
  l = {};
  l.collection_version = kStreamedMemberWise | kCollectionVersion;
  expect_error(build(field_values(1), l), StatusCode::unimplemented, "member-wise");
}

TEST(ChromaPhotonList, MismatchedVectorLengths) {
  PhotonList p = field_values(3);
  p.polz.push_back(1.0f);
  Layout l;
  expect_error(build(p, l), StatusCode::invalid_argument,
               "mismatched vector lengths: x has 3 elements, polz has 4");
  p = field_values(3);
  p.pmtid.pop_back();
  expect_error(build(p, l), StatusCode::invalid_argument, "pmtid has 2");
}

TEST(ChromaPhotonList, NonFiniteValues) {
  PhotonList p = field_values(40);
  p.y[37] = std::numeric_limits<float>::quiet_NaN();
  expect_error(build(p, {}), StatusCode::invalid_argument, "y[37] is nan");
  p = field_values(40);
  p.wavelength[3] = -std::numeric_limits<float>::infinity();
  expect_error(build(p, {}), StatusCode::invalid_argument, "wavelength[3] is -inf");
  p = field_values(2);
  p.t[1] = std::numeric_limits<float>::infinity();
  expect_error(build(p, {}), StatusCode::invalid_argument, "t[1] is inf");
}

TEST(ChromaPhotonList, PhotonLimit) {
  const std::string in = golden("buffer_3.bin");
  EXPECT_TRUE(decode(bytes(in), Limits{3}).ok());
  expect_error(in, StatusCode::resource_exhausted, "3 photons exceed the limit of 2", Limits{2});
  // A length field far beyond the limit is refused before anything is allocated.
  Layout l;
  l.vector_counts = false;
  l.declared_length = 20'000'000;
  expect_error(build(field_values(1), l), StatusCode::resource_exhausted,
               "20000000 photons exceed the limit of 10000000");
  // Within the limit but beyond the bytes present: truncated, not allocated.
  l.declared_length = 9'000'000;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "truncated");
  l.declared_length = -1;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "negative length -1");
}

TEST(ChromaPhotonList, ByteCountsThatDoNotMatch) {
  const PhotonList p = field_values(3);
  for (int delta : {-1, 1, -4, 8}) {
    SCOPED_TRACE(delta);
    Layout l;
    l.vector_delta = delta;
    l.delta_member = 4;
    // A count larger than the rest of the message is truncation; others mismatch.
    auto r = decode(bytes(build(p, l)));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().message.find("byte count") != std::string::npos) << r.error().message;
    l = {};
    l.object_delta = delta;
    r = decode(bytes(build(p, l)));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().message.find("byte count") != std::string::npos) << r.error().message;
    l = {};
    l.outer_delta = delta;
    r = decode(bytes(build(p, l)));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().message.find("byte count") != std::string::npos) << r.error().message;
  }
  Layout l;
  l.delta_member = 11;
  l.vector_delta = -2;
  expect_error(build(p, l), StatusCode::invalid_argument,
               "byte count mismatch: pmtid declares 16 bytes, its content has 18");
  l = {};
  l.outer_delta = 1000;
  expect_error(build(p, l), StatusCode::invalid_argument, "object byte count");
}

TEST(ChromaPhotonList, TagsOtherThanANewClass) {
  // WriteObjectAny(nullptr) writes the four bytes of kNullTag.
  expect_error(std::string(4, '\0'), StatusCode::invalid_argument, "null object");
  Layout l;
  l.tag = kNullTag;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "null object");
  l.tag = kClassMask | 2;
  expect_error(build(field_values(1), l), StatusCode::unimplemented, "class tag 0x80000002");
  l.tag = 6;
  expect_error(build(field_values(1), l), StatusCode::unimplemented, "object tag 0x6");
}

TEST(ChromaPhotonList, MessageHeaderErrors) {
  Layout l;
  l.framing = Framing::message;
  l.what = 3;  // kMESS_STRING
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "not kMESS_OBJECT");
  l.what = kMessObject | kMessZip;
  expect_error(build(field_values(1), l), StatusCode::unimplemented, "compressed");
  l.what = kMessObject;
  l.length_word = 12;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument,
               "length word 12 does not match the 217 bytes");
}

TEST(ChromaPhotonList, TrailingBytes) {
  Layout l;
  l.outer_count = false;
  l.trailing = "xyz";
  expect_error(build(field_values(1), l), StatusCode::invalid_argument,
               "3 bytes follow the object");
  // With an outer byte count the extra bytes are outside the count: the
  // message is still refused.
  l.outer_count = true;
  expect_error(build(field_values(1), l), StatusCode::invalid_argument, "follow the object");
}

TEST(ChromaPhotonList, EncodeErrors) {
  PhotonList p = field_values(2);
  p.polx.pop_back();
  auto r = encode(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("polx has 1"), std::string::npos);
  p = field_values(2);
  p.pmtid.push_back(1);
  EXPECT_FALSE(encode(p).ok());
  p = field_values(20);
  p.z[19] = std::numeric_limits<float>::quiet_NaN();
  r = encode(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("z[19] is nan"), std::string::npos);
  Header h;
  h.collection_version = 0;
  EXPECT_FALSE(encode(field_values(1), h).ok());
  h.collection_version = kStreamedMemberWise;
  EXPECT_FALSE(encode(field_values(1), h).ok());
}

TEST(ChromaPhotonList, EncodeClearsTheReferencedBit) {
  Header h;
  h.bits = kIsReferenced | 0x8;
  const Decoded d = decode_ok(encode_str(field_values(1), h));
  EXPECT_EQ(d.header.bits, 0x8u);
}

// -------------------------------------------------------------- error reply

// The texts of the golden error replies (ERROR_TEXT, LONG_ERROR_TEXT in
// scripts/make-chroma-golden.py), written by ROOT as TObjString.
constexpr std::string_view kErrorMessage = "wrong class 'TH1F' (expected ChromaPhotonList)";
std::string long_error_message() {
  std::string m;
  for (int i = 0; i < 30; ++i) m += "0123456789";
  return m;
}

TEST(ChromaErrorReply, EncodeWritesRootsBytes) {
  EXPECT_EQ(str(encode_error(StatusCode::invalid_argument, kErrorMessage, Framing::buffer)),
            golden("error_buffer.bin"));
  EXPECT_EQ(str(encode_error(StatusCode::invalid_argument, kErrorMessage, Framing::message)),
            golden("error_message.bin"));
  // Over 254 bytes: TString's long length form.
  EXPECT_EQ(str(encode_error(StatusCode::resource_exhausted, long_error_message())),
            golden("error_long_buffer.bin"));
}

TEST(ChromaErrorReply, DecodesRootsBytes) {
  for (const char* name : {"error_buffer.bin", "error_message.bin"}) {
    auto e = decode_error(bytes(golden(name)));
    ASSERT_TRUE(e.ok()) << name << ": " << e.error().message;
    EXPECT_EQ(e->code, StatusCode::invalid_argument);
    EXPECT_EQ(e->message, kErrorMessage);
  }
  auto e = decode_error(bytes(golden("error_long_buffer.bin")));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, StatusCode::resource_exhausted);
  EXPECT_EQ(e->message, long_error_message());
}

TEST(ChromaErrorReply, IsNeverAPhotonListAndAListIsNeverAnError) {
  for (const char* name : {"error_buffer.bin", "error_message.bin", "error_long_buffer.bin"}) {
    expect_error(golden(name), StatusCode::invalid_argument, "wrong class 'TObjString'");
    EXPECT_EQ(detect_framing(bytes(golden(name))),
              std::string(name).find("message") != std::string::npos ? Framing::message
                                                                     : Framing::buffer);
  }
  for (const char* name : {"buffer_0.bin", "buffer_1.bin", "message_0.bin"}) {
    auto e = decode_error(bytes(golden(name)));
    ASSERT_FALSE(e.ok()) << name;
    EXPECT_NE(e.error().message.find("wrong class 'ChromaPhotonList'"), std::string::npos);
  }
}

TEST(ChromaErrorReply, TruncatedOrExtendedIsNotAnErrorReply) {
  for (const char* name : {"error_buffer.bin", "error_message.bin", "error_long_buffer.bin"}) {
    const std::string in = golden(name);
    for (std::size_t len = 0; len < in.size(); ++len) {
      EXPECT_FALSE(decode_error(bytes(in.substr(0, len))).ok()) << name << " cut at " << len;
    }
    EXPECT_FALSE(decode_error(bytes(in + "x")).ok());
  }
}

TEST(ChromaErrorReply, TextIsEscapedAndCut) {
  const std::string nasty = std::string("line\nbreak\0nul\\", 15);
  auto e = decode_error(bytes(str(encode_error(StatusCode::aborted, nasty))));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, StatusCode::aborted);
  EXPECT_EQ(e->message, "line\\x0abreak\\x00nul\\x5c");
  const std::string huge(5000, 'a');
  const Buffer b = encode_error(StatusCode::internal, huge, Framing::message);
  e = decode_error(bytes(str(b)));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, StatusCode::internal);
  // "internal: " counts against the limit, then "..." marks the cut.
  std::string cut(kMaxErrorText - 10, 'a');
  cut.append("...");
  EXPECT_EQ(e->message, cut);
}

TEST(ChromaErrorReply, TextWithoutAStatusIsUnknown) {
  // "ok: " and "abcd" have the same length: the same bytes, another text.
  std::string in = str(encode_error(StatusCode::ok, ""));
  ASSERT_EQ(in.substr(in.size() - 4), "ok: ");
  in.replace(in.size() - 4, 4, "abcd");
  auto e = decode_error(bytes(in));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, StatusCode::unknown);
  EXPECT_EQ(e->message, "abcd");
}

}  // namespace
}  // namespace acheron::wire::chroma
