#include "acheron/core/OpaqueId.hh"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <type_traits>
#include <unordered_set>

namespace acheron {
namespace {

using SolidId = OpaqueId<struct SolidTag>;
using ChannelId = OpaqueId<struct ChannelTag>;
using SmallId = OpaqueId<struct SmallTag, std::uint8_t>;

static_assert(!std::is_same_v<SolidId, ChannelId>);
static_assert(!std::is_convertible_v<SolidId, ChannelId>);
static_assert(!std::is_convertible_v<std::uint32_t, SolidId>, "construction must be explicit");
static_assert(!std::is_convertible_v<SolidId, std::uint32_t>);
static_assert(!std::is_convertible_v<SolidId, bool>, "bool conversion must be explicit");
static_assert(std::is_trivially_copyable_v<SolidId>);
static_assert(sizeof(SolidId) == sizeof(std::uint32_t));
static_assert(sizeof(SmallId) == 1);
static_assert(!SolidId{}.valid());
static_assert(SolidId{3}.get() == 3);
static_assert(SolidId{1} < SolidId{2});

TEST(OpaqueId, default_is_invalid) {
  SolidId id;
  EXPECT_FALSE(id.valid());
  EXPECT_FALSE(static_cast<bool>(id));
  EXPECT_EQ(id.unchecked_get(), SolidId::invalid_value);
  EXPECT_EQ(SolidId::invalid_value, std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(SmallId::invalid_value, 255);
  EXPECT_EQ(SolidId{}, SolidId{SolidId::invalid_value});
}

TEST(OpaqueId, holds_its_value) {
  SolidId zero{0};
  EXPECT_TRUE(zero.valid()) << "zero is a valid index";
  EXPECT_TRUE(static_cast<bool>(zero));
  EXPECT_EQ(zero.get(), 0u);
  SolidId big{std::numeric_limits<std::uint32_t>::max() - 1};
  EXPECT_TRUE(big.valid());
  EXPECT_EQ(big.get(), std::numeric_limits<std::uint32_t>::max() - 1);
  SmallId s{254};
  EXPECT_TRUE(s.valid());
  EXPECT_FALSE(SmallId{255}.valid());
}

TEST(OpaqueId, comparisons) {
  SolidId a{1}, b{2}, a2{1};
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_LE(a, a2);
  EXPECT_GT(b, a);
  EXPECT_GE(b, a);
  EXPECT_TRUE((a <=> b) < 0);
  EXPECT_TRUE((b <=> a) > 0);
  EXPECT_TRUE((a <=> a2) == 0);
  // The invalid id sorts after every valid one.
  EXPECT_LT(b, SolidId{});
}

TEST(OpaqueId, usable_as_ordered_and_hashed_keys) {
  std::unordered_set<SolidId> hashed;
  std::set<SolidId> ordered;
  for (std::uint32_t i = 0; i < 100; ++i) {
    hashed.insert(SolidId{i % 50});
    ordered.insert(SolidId{99 - i});
  }
  EXPECT_EQ(hashed.size(), 50u);
  EXPECT_TRUE(hashed.count(SolidId{49}));
  EXPECT_FALSE(hashed.count(SolidId{50}));
  EXPECT_EQ(ordered.size(), 100u);
  EXPECT_EQ(ordered.begin()->get(), 0u);
  EXPECT_EQ(ordered.rbegin()->get(), 99u);

  std::hash<SolidId> h;
  EXPECT_EQ(h(SolidId{7}), h(SolidId{7}));
  EXPECT_EQ(h(SolidId{7}), std::hash<std::uint32_t>{}(7));
  EXPECT_NE(h(SolidId{7}), h(SolidId{8}));
}

}  // namespace
}  // namespace acheron
