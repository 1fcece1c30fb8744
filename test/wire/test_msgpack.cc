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
