#include "acheron/core/Payload.hh"

#include <gtest/gtest.h>

#include <array>
#include <complex>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace acheron {
namespace {

template <class F>
StatusCode failure_code(F&& f) {
  try {
    f();
  } catch (const Failure& e) {
    return e.code();
  }
  return StatusCode::ok;
}

// ---------------------------------------------------------------- Buffer

TEST(Buffer, default_is_empty) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.owner(), nullptr);
  EXPECT_FALSE(b.writable());
}

TEST(Buffer, allocate_zeroed_aligned_writable) {
  for (std::size_t size : {1u, 3u, 63u, 64u, 65u, 1000u, 4096u, 100001u}) {
    SCOPED_TRACE(size);
    Buffer b = Buffer::allocate(size);
    ASSERT_EQ(b.size(), size);
    EXPECT_FALSE(b.empty());
    EXPECT_TRUE(b.writable());
    EXPECT_NE(b.owner(), nullptr);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 64, 0u);
    for (std::size_t i = 0; i < size; ++i) {
      ASSERT_EQ(b.data()[i], std::byte{0}) << "byte " << i;
    }
    std::byte* w = b.mutable_data();
    EXPECT_EQ(w, b.data());
    std::memset(w, 0xab, size);  // the whole range is writable (ASan checks it)
    EXPECT_EQ(b.data()[size - 1], std::byte{0xab});
  }
}

TEST(Buffer, allocate_zero_gives_an_empty_writable_buffer) {
  Buffer b = Buffer::allocate(0);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.writable()) << "allocate() promises writable memory, even when empty";
  EXPECT_NO_THROW((void)b.mutable_data());
  EXPECT_TRUE(Buffer::copy_of(nullptr, 0).writable());
}

TEST(Buffer, copy_of_copies_bytes_into_a_fresh_writable_block) {
  std::array<std::uint8_t, 5> src{1, 2, 3, 4, 5};
  Buffer b = Buffer::copy_of(src.data(), src.size());
  ASSERT_EQ(b.size(), 5u);
  EXPECT_TRUE(b.writable());
  EXPECT_NE(static_cast<const void*>(b.data()), static_cast<const void*>(src.data()));
  EXPECT_EQ(std::memcmp(b.data(), src.data(), 5), 0);
  src[0] = 99;  // the copy is independent of the source
  EXPECT_EQ(b.data()[0], std::byte{1});
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 64, 0u);
}

TEST(Buffer, copy_of_nothing) {
  Buffer b = Buffer::copy_of(nullptr, 0);
  EXPECT_TRUE(b.empty());
}

TEST(Buffer, copies_share_the_same_memory) {
  Buffer a = Buffer::allocate(16);
  Buffer b = a;
  EXPECT_EQ(a.data(), b.data());
  EXPECT_EQ(a.owner(), b.owner());
  b.mutable_data()[3] = std::byte{7};
  EXPECT_EQ(a.data()[3], std::byte{7});
}

TEST(Buffer, adopt_is_zero_copy_and_not_writable) {
  auto storage = std::make_shared<std::vector<std::byte>>(32, std::byte{5});
  const std::byte* p = storage->data();
  Buffer b = Buffer::adopt(storage, p + 4, 8);
  EXPECT_EQ(b.data(), p + 4);
  EXPECT_EQ(b.size(), 8u);
  EXPECT_FALSE(b.writable());
  try {
    (void)b.mutable_data();
    FAIL() << "mutable_data on an adopted buffer did not throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.code(), StatusCode::failed_precondition);
    EXPECT_NE(std::string(f.what()).find("not writable"), std::string::npos) << f.what();
  }
}

TEST(Buffer, sharing_keeps_the_owner_alive) {
  bool freed = false;
  auto deleter = [&freed](std::vector<std::byte>* v) {
    freed = true;
    delete v;
  };
  Buffer slice;
  {
    std::shared_ptr<std::vector<std::byte>> storage(new std::vector<std::byte>(10, std::byte{9}),
                                                    deleter);
    Buffer b = Buffer::adopt(storage, storage->data(), storage->size());
    storage.reset();
    EXPECT_FALSE(freed) << "the buffer must keep the owner alive";
    EXPECT_EQ(b.owner().use_count(), 1);
    Buffer copy = b;
    EXPECT_EQ(b.owner().use_count(), 2);
    slice = copy.slice(2, 3);
    EXPECT_EQ(b.owner().use_count(), 3);
  }
  EXPECT_FALSE(freed) << "a slice must keep the owner alive";
  EXPECT_EQ(slice.data()[0], std::byte{9});
  EXPECT_EQ(slice.size(), 3u);
  slice = Buffer();
  EXPECT_TRUE(freed) << "dropping the last reference frees the memory";
}

TEST(Buffer, from_vector_takes_the_storage) {
  std::vector<std::int32_t> v{10, 20, 30};
  const void* original = v.data();
  Buffer b = Buffer::from_vector(std::move(v));
  EXPECT_EQ(static_cast<const void*>(b.data()), original) << "from_vector must not copy";
  EXPECT_EQ(b.size(), 3 * sizeof(std::int32_t));
  EXPECT_TRUE(b.writable());
  std::int32_t second = 0;
  std::memcpy(&second, b.data() + sizeof(std::int32_t), sizeof second);
  EXPECT_EQ(second, 20);
}

TEST(Buffer, slice_in_bounds) {
  Buffer b = Buffer::allocate(10);
  for (std::size_t i = 0; i < 10; ++i) b.mutable_data()[i] = std::byte(i);
  Buffer s = b.slice(3, 4);
  EXPECT_EQ(s.size(), 4u);
  EXPECT_EQ(s.data(), b.data() + 3);
  EXPECT_EQ(s.data()[0], std::byte{3});
  EXPECT_EQ(s.owner(), b.owner());
  EXPECT_TRUE(s.writable()) << "a slice keeps the writability of its parent";

  EXPECT_EQ(b.slice(0, 10).size(), 10u);
  EXPECT_EQ(b.slice(10, 0).size(), 0u);
  EXPECT_EQ(b.slice(0, 0).size(), 0u);
  EXPECT_EQ(s.slice(1, 3).data()[2], std::byte{6});

  auto storage = std::make_shared<std::array<std::byte, 4>>();
  Buffer adopted = Buffer::adopt(storage, storage->data(), 4);
  EXPECT_FALSE(adopted.slice(1, 2).writable());
}

TEST(Buffer, slice_out_of_bounds_throws_out_of_range) {
  Buffer b = Buffer::allocate(10);
  constexpr auto kMax = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(failure_code([&] { (void)b.slice(11, 0); }), StatusCode::out_of_range);
  EXPECT_EQ(failure_code([&] { (void)b.slice(0, 11); }), StatusCode::out_of_range);
  EXPECT_EQ(failure_code([&] { (void)b.slice(5, 6); }), StatusCode::out_of_range);
  EXPECT_EQ(failure_code([&] { (void)b.slice(10, 1); }), StatusCode::out_of_range);
  // offset + size wraps around: must not be accepted.
  EXPECT_EQ(failure_code([&] { (void)b.slice(2, kMax); }), StatusCode::out_of_range);
  EXPECT_EQ(failure_code([&] { (void)b.slice(kMax, 2); }), StatusCode::out_of_range);
  EXPECT_EQ(failure_code([&] { (void)Buffer().slice(0, 1); }), StatusCode::out_of_range);
  EXPECT_EQ(failure_code([&] { (void)Buffer().slice(0, 0); }), StatusCode::ok);
}

// ---------------------------------------------------------------- Array

TEST(Array, default_is_an_empty_one_dimensional_array) {
  Array a;
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.nbytes(), 0u);
  EXPECT_EQ(a.ndim(), 1u);
  EXPECT_EQ(a.shape(), std::vector<std::int64_t>{0});
}

TEST(Array, constructor_checks_the_buffer_size) {
  Buffer b = Buffer::allocate(24);
  Array a(DType::float32, {2, 3}, b, "grid");
  EXPECT_EQ(a.dtype(), DType::float32);
  EXPECT_EQ(a.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.ndim(), 2u);
  EXPECT_EQ(a.size(), 6u);
  EXPECT_EQ(a.nbytes(), 24u);
  EXPECT_EQ(a.name(), "grid");
  EXPECT_EQ(a.buffer().data(), b.data()) << "the array shares the buffer";

  EXPECT_EQ(failure_code([&] { Array(DType::float32, {2, 2}, b); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { Array(DType::float64, {2, 3}, b); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { Array(DType::uint8, {25}, b); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { Array(DType::uint8, {24}, b); }), StatusCode::ok);
  EXPECT_EQ(failure_code([&] { Array(DType::complex128, {1}, Buffer::allocate(16)); }),
            StatusCode::ok);
}

TEST(Array, size_mismatch_message_gives_the_numbers) {
  try {
    Array(DType::int16, {3}, Buffer::allocate(7));
    FAIL();
  } catch (const Failure& f) {
    std::string msg = f.what();
    EXPECT_NE(msg.find("3 x 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("7"), std::string::npos) << msg;
  }
}

TEST(Array, scalar_and_empty_shapes) {
  // A zero-dimensional array holds one element.
  Array scalar(DType::float64, {}, Buffer::allocate(8));
  EXPECT_EQ(scalar.ndim(), 0u);
  EXPECT_EQ(scalar.size(), 1u);
  EXPECT_EQ(failure_code([] { Array(DType::float64, {}, Buffer()); }),
            StatusCode::invalid_argument);
  // Any zero dimension means no elements, whatever the others are.
  Array empty(DType::int32, {0, 5}, Buffer());
  EXPECT_EQ(empty.size(), 0u);
  Array huge_empty(DType::int32, {std::numeric_limits<std::int64_t>::max(), 0}, Buffer());
  EXPECT_EQ(huge_empty.size(), 0u);
  Array huge_empty2(DType::int32, {0, std::numeric_limits<std::int64_t>::max()}, Buffer());
  EXPECT_EQ(huge_empty2.size(), 0u);
}

TEST(Array, negative_dimensions_are_rejected) {
  EXPECT_EQ(failure_code([] { Array(DType::uint8, {-1}, Buffer()); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([] {
              Array(DType::uint8, {-2, -3}, Buffer::allocate(6));
            }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([] {
              Array(DType::uint8, {0, -1}, Buffer());
            }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code(
                [] { Array(DType::uint8, {std::numeric_limits<std::int64_t>::min()}, Buffer()); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([] {
              (void)Array::zeros(DType::float32, {3, -1});
            }),
            StatusCode::invalid_argument);
}

TEST(Array, overflowing_shapes_are_rejected) {
  constexpr std::int64_t kBig = std::int64_t{1} << 32;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  // Element count overflows size_t: 2^32 * 2^32 = 2^64 wraps to 0, which would
  // "match" an empty buffer if the product were not checked.
  EXPECT_EQ(failure_code([] {
              Array(DType::uint8, {kBig, kBig}, Buffer());
            }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([] {
              Array(DType::uint8, {kMax, kMax, kMax}, Buffer());
            }),
            StatusCode::invalid_argument);
  // Element count fits but count * itemsize wraps: 2^61 * 8 = 2^64 -> 0.
  EXPECT_EQ(failure_code([] { Array(DType::float64, {std::int64_t{1} << 61}, Buffer()); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([] {
              Array(DType::complex128, {std::int64_t{1} << 30, std::int64_t{1} << 30},
                    Buffer::allocate(16));
            }),
            StatusCode::invalid_argument);
}

TEST(Array, zeros_rejects_overflowing_shapes_before_allocating) {
  constexpr std::int64_t k32 = std::int64_t{1} << 32;
  // (2^32 + 1) * 2^32 wraps to 2^32: an unchecked count would allocate and
  // clear 4 GiB before the shape is rejected.
  EXPECT_EQ(failure_code([] {
              (void)Array::zeros(DType::uint8, {k32 + 1, k32});
            }),
            StatusCode::invalid_argument);
  // 2^61 elements of 8 bytes wrap to 0 bytes.
  EXPECT_EQ(failure_code([] { (void)Array::zeros(DType::float64, {std::int64_t{1} << 61}); }),
            StatusCode::invalid_argument);
  // (2^61 + 1) * 8 wraps to 8 bytes.
  EXPECT_EQ(failure_code([] { (void)Array::zeros(DType::float64, {(std::int64_t{1} << 61) + 1}); }),
            StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([] { (void)Array::zeros(DType::uint8, {0, k32, k32}); }), StatusCode::ok);
}

TEST(Array, from_vector_one_dimensional_and_shaped) {
  Array a = Array::from_vector(std::vector<double>{1.5, 2.5, 3.5}, {}, "x");
  EXPECT_EQ(a.dtype(), DType::float64);
  EXPECT_EQ(a.shape(), std::vector<std::int64_t>{3});
  EXPECT_EQ(a.name(), "x");
  EXPECT_TRUE(a.buffer().writable());
  auto v = a.view<double>();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1], 2.5);

  std::vector<std::uint16_t> values(12);
  std::iota(values.begin(), values.end(), std::uint16_t{0});
  Array m = Array::from_vector(values, {3, 4});
  EXPECT_EQ(m.dtype(), DType::uint16);
  EXPECT_EQ(m.shape(), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(m.size(), 12u);
  EXPECT_EQ(m.to_vector<std::uint16_t>(), values);

  EXPECT_EQ(failure_code([] {
              (void)Array::from_vector(std::vector<float>(5), {2, 3});
            }),
            StatusCode::invalid_argument);

  Array e = Array::from_vector(std::vector<std::int64_t>{});
  EXPECT_EQ(e.shape(), std::vector<std::int64_t>{0});
  EXPECT_EQ(e.size(), 0u);
  EXPECT_TRUE(e.view<std::int64_t>().empty());
  EXPECT_TRUE(e.to_vector<std::int64_t>().empty());
}

TEST(Array, from_vector_complex) {
  using C = std::complex<float>;
  Array a = Array::from_vector(std::vector<C>{{1, 2}, {3, 4}});
  EXPECT_EQ(a.dtype(), DType::complex64);
  EXPECT_EQ(a.nbytes(), 16u);
  EXPECT_EQ(a.view<C>()[1], C(3, 4));
}

TEST(Array, zeros_is_writable_and_zero_filled) {
  Array z = Array::zeros(DType::int32, {4, 5}, "z");
  EXPECT_EQ(z.size(), 20u);
  EXPECT_EQ(z.nbytes(), 80u);
  EXPECT_EQ(z.name(), "z");
  for (auto x : z.view<std::int32_t>()) EXPECT_EQ(x, 0);
  auto w = z.mutable_view<std::int32_t>();
  ASSERT_EQ(w.size(), 20u);
  w[19] = -7;
  EXPECT_EQ(z.view<std::int32_t>()[19], -7);
  EXPECT_EQ(z.to_vector<std::int32_t>().back(), -7);

  Array none = Array::zeros(DType::float32, {0});
  EXPECT_EQ(none.size(), 0u);
  EXPECT_TRUE(none.mutable_view<float>().empty());
}

TEST(Array, view_with_the_wrong_type_throws_invalid_argument) {
  Array a = Array::from_vector(std::vector<float>{1, 2}, {}, "temps");
  EXPECT_EQ(failure_code([&] { (void)a.view<double>(); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { (void)a.view<std::int32_t>(); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { (void)a.view<std::uint32_t>(); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { (void)a.mutable_view<double>(); }), StatusCode::invalid_argument);
  EXPECT_EQ(failure_code([&] { (void)a.to_vector<double>(); }), StatusCode::invalid_argument);
  try {
    (void)a.view<double>();
  } catch (const Failure& f) {
    std::string msg = f.what();
    EXPECT_NE(msg.find("temps"), std::string::npos) << msg;
    EXPECT_NE(msg.find("<f4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("<f8"), std::string::npos) << msg;
  }
}

TEST(Array, misaligned_view_throws_internal_but_to_vector_works) {
  // Four floats starting one byte into a 64-byte-aligned block.
  Buffer block = Buffer::allocate(1 + 4 * sizeof(float));
  const float src[4] = {1.0f, -2.0f, 3.25f, 1e30f};
  std::memcpy(block.mutable_data() + 1, src, sizeof src);
  Array a(DType::float32, {4}, block.slice(1, sizeof src), "odd");
  EXPECT_EQ(failure_code([&] { (void)a.view<float>(); }), StatusCode::internal);
  EXPECT_EQ(failure_code([&] { (void)a.mutable_view<float>(); }), StatusCode::internal);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, -2.0f, 3.25f, 1e30f}));
  // One-byte types are never misaligned.
  Array bytes(DType::uint8, {16}, block.slice(1, 16));
  EXPECT_EQ(bytes.view<std::uint8_t>().size(), 16u);
}

TEST(Array, mutable_view_of_adopted_memory_throws_failed_precondition) {
  auto storage = std::make_shared<std::vector<std::int32_t>>(std::vector<std::int32_t>{1, 2, 3});
  Buffer b = Buffer::adopt(storage, reinterpret_cast<const std::byte*>(storage->data()),
                           storage->size() * sizeof(std::int32_t));
  Array a(DType::int32, {3}, b);
  EXPECT_EQ(a.view<std::int32_t>()[2], 3);
  EXPECT_EQ(failure_code([&] { (void)a.mutable_view<std::int32_t>(); }),
            StatusCode::failed_precondition);
}

TEST(Array, set_name) {
  Array a = Array::zeros(DType::uint8, {1});
  EXPECT_EQ(a.name(), "");
  a.set_name("pixels");
  EXPECT_EQ(a.name(), "pixels");
}

// ---------------------------------------------------------------- Payload

TEST(Payload, default_meta_is_an_empty_object) {
  Payload p;
  EXPECT_TRUE(p.meta.is_object());
  EXPECT_TRUE(p.meta.empty());
  EXPECT_TRUE(p.arrays.empty());
  EXPECT_EQ(p.array_bytes(), 0u);
  EXPECT_EQ(p.find("x"), nullptr);
}

TEST(Payload, find_at_and_array_bytes) {
  Payload p;
  p.meta["run"] = 7;
  p.arrays.push_back(Array::zeros(DType::float32, {10}, "a"));
  p.arrays.push_back(Array::zeros(DType::uint8, {3}, "b"));
  p.arrays.push_back(Array::zeros(DType::float64, {2}, "a"));  // duplicate name
  p.arrays.push_back(Array::zeros(DType::int16, {0}, ""));

  EXPECT_EQ(p.array_bytes(), 40u + 3u + 16u + 0u);
  const Array* a = p.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, &p.arrays[0]) << "find returns the first array with the name";
  EXPECT_EQ(a->dtype(), DType::float32);
  EXPECT_EQ(p.find("b"), &p.arrays[1]);
  EXPECT_EQ(p.find("c"), nullptr);
  EXPECT_EQ(p.find(""), &p.arrays[3]);

  EXPECT_EQ(&p.at("b"), &p.arrays[1]);
  try {
    (void)p.at("missing_array");
    FAIL() << "at() did not throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(f.what()).find("missing_array"), std::string::npos) << f.what();
  }
}

TEST(Payload, copies_share_array_memory) {
  Payload p;
  p.arrays.push_back(Array::zeros(DType::uint8, {8}, "x"));
  Payload q = p;
  EXPECT_EQ(q.arrays[0].buffer().data(), p.arrays[0].buffer().data());
  q.arrays[0].mutable_view<std::uint8_t>()[0] = 42;
  EXPECT_EQ(p.at("x").view<std::uint8_t>()[0], 42);
}

}  // namespace
}  // namespace acheron
