#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "acheron/wire/Msgpack.hh"

namespace acheron::wire {
namespace {

std::span<const std::byte> bytes_of(const std::vector<std::uint8_t>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

TEST(Msgpack, RoundTripsNestedValues) {
  nlohmann::json j = {{"a", 1},           {"b", -5},        {"c", 2.5},
                      {"s", "text"},      {"l", {1, 2, 3}}, {"m", {{"x", nullptr}, {"y", true}}},
                      {"big", 1ull << 40}};
  auto bytes = encode_msgpack(j);
  ASSERT_TRUE(validate_msgpack(bytes_of(bytes)).ok());
  auto back = decode_msgpack(bytes_of(bytes));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, j);
}

TEST(Msgpack, RejectsTruncatedInput) {
  auto bytes = encode_msgpack({{"key", "a long enough string value"}, {"n", {1, 2, 3}}});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + n);
    EXPECT_FALSE(decode_msgpack(bytes_of(cut)).ok()) << "prefix of " << n << " bytes accepted";
  }
}

TEST(Msgpack, RejectsTrailingBytes) {
  auto bytes = encode_msgpack({{"k", 1}});
  bytes.push_back(0x01);
  auto r = decode_msgpack(bytes_of(bytes));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("trailing"), std::string::npos);
}

TEST(Msgpack, RejectsDeepNestingWithoutRecursing) {
  // 100k nested one-element arrays would overflow a recursive parser's stack.
  std::vector<std::uint8_t> deep(100000, 0x91);
  deep.push_back(0x01);
  auto r = decode_msgpack(bytes_of(deep));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("deeply"), std::string::npos);

  std::vector<std::uint8_t> ok(kMaxMsgpackDepth - 1, 0x91);
  ok.push_back(0x01);
  EXPECT_TRUE(decode_msgpack(bytes_of(ok)).ok());
}

TEST(Msgpack, RejectsImpossibleLengths) {
  // array32 claiming 4 billion elements in a 5-byte message.
  std::vector<std::uint8_t> a{0xdd, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(decode_msgpack(bytes_of(a)).ok());
  // str32 claiming 4 GiB.
  std::vector<std::uint8_t> s{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
  EXPECT_FALSE(decode_msgpack(bytes_of(s)).ok());
  // the reserved type byte
  std::vector<std::uint8_t> r{0xc1};
  EXPECT_FALSE(decode_msgpack(bytes_of(r)).ok());
}

TEST(Msgpack, RejectsNonStringMapKeysAsError) {
  // {1: 2} is valid msgpack but not representable as a JSON object.
  std::vector<std::uint8_t> m{0x81, 0x01, 0x02};
  EXPECT_TRUE(validate_msgpack(bytes_of(m)).ok());
  EXPECT_FALSE(decode_msgpack(bytes_of(m)).ok());
}

}  // namespace
}  // namespace acheron::wire

// The direct decoder gives what nlohmann::json::from_msgpack gives, type for
// type: every MessagePack form, including the ones nlohmann never writes
// (float32, int8 holding a positive value, str8 for a short string).
TEST(Msgpack, DirectDecoderMatchesNlohmannForEveryForm) {
  using Bytes = std::vector<std::uint8_t>;
  const std::vector<Bytes> inputs = {
      {0xc0},                                                  // nil
      {0xc2},                                                  // false
      {0xc3},                                                  // true
      {0x05},                                                  // positive fixint
      {0xfb},                                                  // negative fixint
      {0xcc, 0xff},                                            // uint8
      {0xcd, 0x12, 0x34},                                      // uint16
      {0xce, 0xde, 0xad, 0xbe, 0xef},                          // uint32
      {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},  // uint64 max
      {0xd0, 0x05},                                            // int8, positive
      {0xd1, 0xff, 0x00},                                      // int16
      {0xd2, 0x80, 0x00, 0x00, 0x00},                          // int32 min
      {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0},                       // int64 min
      {0xca, 0x3f, 0xc0, 0x00, 0x00},                          // float32 1.5
      {0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18},  // float64 pi
      {0xa3, 'a', 'b', 'c'},                                   // fixstr
      {0xd9, 0x02, 'h', 'i'},                                  // str8
      {0xc4, 0x03, 1, 2, 3},                                   // bin8
      {0xd4, 0x01, 0x2a},                                      // fixext1 (left to nlohmann)
      {0x92, 0x01, 0x91, 0xc0},                                // nested arrays
      {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02},                // duplicate key: last wins
      {0x81, 0xa1, 'k', 0x92, 0xc7, 0x01, 0x05, 0x09, 0x81, 0xa0, 0xc3},  // ext8 inside
      {0xde, 0x00, 0x01, 0xa1, 'x', 0xdc, 0x00, 0x00},                    // map16, array16
  };
  for (const auto& in : inputs) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(in.data()),
                                           in.size());
    auto ours = acheron::wire::decode_msgpack(bytes);
    ASSERT_TRUE(ours) << "input starting 0x" << std::hex << int(in[0]);
    auto reference = nlohmann::json::from_msgpack(in, true, false);
    ASSERT_FALSE(reference.is_discarded());
    EXPECT_EQ(*ours, reference) << reference.dump();
    EXPECT_EQ(ours->type(), reference.type()) << reference.dump();
    EXPECT_EQ(nlohmann::json::to_msgpack(*ours), nlohmann::json::to_msgpack(reference));
  }
  // A map with an integer key is rejected by both.
  const Bytes int_key = {0x81, 0x01, 0x02};
  EXPECT_FALSE(acheron::wire::decode_msgpack(
      {reinterpret_cast<const std::byte*>(int_key.data()), int_key.size()}));
  EXPECT_TRUE(nlohmann::json::from_msgpack(int_key, true, false).is_discarded());
}
