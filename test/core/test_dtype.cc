#include "acheron/core/DType.hh"

#include <gtest/gtest.h>

#include <complex>
#include <cstdint>
#include <set>
#include <string>

namespace acheron {
namespace {

struct Expected {
  DType dtype;
  std::size_t size;
  const char* numpy;
};

constexpr Expected kAll[] = {
    {DType::bool_, 1, "|b1"},        {DType::int8, 1, "|i1"},    {DType::uint8, 1, "|u1"},
    {DType::int16, 2, "<i2"},        {DType::uint16, 2, "<u2"},  {DType::int32, 4, "<i4"},
    {DType::uint32, 4, "<u4"},       {DType::int64, 8, "<i8"},   {DType::uint64, 8, "<u8"},
    {DType::float32, 4, "<f4"},      {DType::float64, 8, "<f8"}, {DType::complex64, 8, "<c8"},
    {DType::complex128, 16, "<c16"},
};

TEST(DType, itemsize_and_numpy_name_of_all_13_types) {
  std::set<std::string> names;
  for (const auto& e : kAll) {
    SCOPED_TRACE(e.numpy);
    EXPECT_EQ(itemsize(e.dtype), e.size);
    EXPECT_EQ(to_numpy(e.dtype), e.numpy);
    names.insert(std::string(to_numpy(e.dtype)));
  }
  EXPECT_EQ(names.size(), 13u);
}

TEST(DType, round_trip_through_numpy_strings) {
  for (const auto& e : kAll) {
    SCOPED_TRACE(e.numpy);
    auto parsed = dtype_from_numpy(to_numpy(e.dtype));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, e.dtype);
  }
}

TEST(DType, itemsize_matches_the_cxx_type) {
  EXPECT_EQ(itemsize(dtype_of<bool>), sizeof(bool));
  EXPECT_EQ(itemsize(dtype_of<std::int8_t>), sizeof(std::int8_t));
  EXPECT_EQ(itemsize(dtype_of<std::uint8_t>), sizeof(std::uint8_t));
  EXPECT_EQ(itemsize(dtype_of<std::int16_t>), sizeof(std::int16_t));
  EXPECT_EQ(itemsize(dtype_of<std::uint16_t>), sizeof(std::uint16_t));
  EXPECT_EQ(itemsize(dtype_of<std::int32_t>), sizeof(std::int32_t));
  EXPECT_EQ(itemsize(dtype_of<std::uint32_t>), sizeof(std::uint32_t));
  EXPECT_EQ(itemsize(dtype_of<std::int64_t>), sizeof(std::int64_t));
  EXPECT_EQ(itemsize(dtype_of<std::uint64_t>), sizeof(std::uint64_t));
  EXPECT_EQ(itemsize(dtype_of<float>), sizeof(float));
  EXPECT_EQ(itemsize(dtype_of<double>), sizeof(double));
  EXPECT_EQ(itemsize(dtype_of<std::complex<float>>), sizeof(std::complex<float>));
  EXPECT_EQ(itemsize(dtype_of<std::complex<double>>), sizeof(std::complex<double>));
  static_assert(dtype_of<float> == DType::float32);
  static_assert(dtype_of<std::complex<double>> == DType::complex128);
}

TEST(DType, accepts_little_and_native_byte_orders) {
  EXPECT_EQ(dtype_from_numpy("<f4"), DType::float32);
  EXPECT_EQ(dtype_from_numpy("=f4"), DType::float32);
  EXPECT_EQ(dtype_from_numpy("|f8"), DType::float64);
  EXPECT_EQ(dtype_from_numpy("<i2"), DType::int16);
  EXPECT_EQ(dtype_from_numpy("=u8"), DType::uint64);
  EXPECT_EQ(dtype_from_numpy("<c16"), DType::complex128);
  EXPECT_EQ(dtype_from_numpy("<b1"), DType::bool_);
  EXPECT_EQ(dtype_from_numpy("=i1"), DType::int8);
}

TEST(DType, big_endian_only_for_one_byte_types) {
  EXPECT_EQ(dtype_from_numpy(">u1"), DType::uint8);
  EXPECT_EQ(dtype_from_numpy(">i1"), DType::int8);
  EXPECT_EQ(dtype_from_numpy(">b1"), DType::bool_);
  EXPECT_EQ(dtype_from_numpy(">f4"), std::nullopt);
  EXPECT_EQ(dtype_from_numpy(">i2"), std::nullopt);
  EXPECT_EQ(dtype_from_numpy(">u8"), std::nullopt);
  EXPECT_EQ(dtype_from_numpy(">c16"), std::nullopt);
}

TEST(DType, rejects_unknown_and_malformed_strings) {
  for (const char* bad : {"<f3",
                          ">f4",
                          "xyz",
                          "<f99999999999",
                          "<f18446744073709551617",
                          "",
                          "<",
                          "<f",
                          "f4",
                          "<x4",
                          "!f4",
                          "<f4 ",
                          " <f4",
                          "<f-4",
                          "<i16",
                          "<c4",
                          "<b2",
                          "<u3",
                          "<f0",
                          "<F4",
                          "float32"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(dtype_from_numpy(bad), std::nullopt);
  }
}

TEST(DType, rejects_embedded_nul) {
  using namespace std::string_view_literals;
  EXPECT_EQ(dtype_from_numpy("<f\0"sv), std::nullopt);
  EXPECT_EQ(dtype_from_numpy("<f4\0"sv), std::nullopt);
}

}  // namespace
}  // namespace acheron
