// The one data model every front maps onto: a metadata map plus typed arrays
// whose bytes are reference-counted and move between ZeroMQ frames, protobuf
// bytes and engines without copying.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <span>
#include <string>
#include <vector>

#include "acheron/core/DType.hh"
#include "acheron/core/Error.hh"

namespace acheron {

// A reference-counted, immutable-by-default byte range. The owner keeps the
// memory alive (a heap block, a ZeroMQ message, a protobuf string, ...); copies
// of a Buffer share it. Buffers made by allocate() or from_vector() are
// writable until shared with a consumer by convention of the producer.
class Buffer final {
 public:
  Buffer() = default;

  // size bytes of zero-initialised, 64-byte-aligned, writable memory.
  static Buffer allocate(std::size_t size);
  // A writable copy of [data, data + size).
  static Buffer copy_of(const void* data, std::size_t size);
  // A copy of a string's bytes (a text frame: header, identity, JSON).
  static Buffer copy_of(std::string_view text) { return copy_of(text.data(), text.size()); }
  // Takes over a vector's storage without copying the elements.
  template <class T>
  static Buffer from_vector(std::vector<T>&& values);
  // Views memory kept alive by owner; nothing is copied.
  static Buffer adopt(std::shared_ptr<const void> owner, const std::byte* data, std::size_t size);

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool writable() const noexcept { return writable_; }
  // Writable access; throws Failure(failed_precondition) on an adopted buffer.
  std::byte* mutable_data();
  // The shared owner of the memory (null for an empty buffer).
  const std::shared_ptr<const void>& owner() const noexcept { return owner_; }
  // A sub-range sharing the same owner.
  Buffer slice(std::size_t offset, std::size_t size) const;

 private:
  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool writable_ = false;
};

// An n-dimensional, C-ordered array of one DType over a Buffer.
class Array final {
 public:
  Array() = default;
  // Throws Failure(invalid_argument) if the buffer size does not equal
  // product(shape) * itemsize(dtype) or a dimension is negative.
  Array(DType dtype, std::vector<std::int64_t> shape, Buffer buffer, std::string name = {});

  // A one-dimensional array (or the given shape) that takes over values.
  template <class T>
  static Array from_vector(std::vector<T> values, std::vector<std::int64_t> shape = {},
                           std::string name = {});
  // A writable, zero-filled array.
  static Array zeros(DType dtype, std::vector<std::int64_t> shape, std::string name = {});

  DType dtype() const noexcept { return dtype_; }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  std::size_t ndim() const noexcept { return shape_.size(); }
  std::size_t size() const noexcept;  // number of elements
  std::size_t nbytes() const noexcept { return buffer_.size(); }
  const Buffer& buffer() const noexcept { return buffer_; }
  const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // Typed read-only view. Throws Failure(invalid_argument) if T does not match
  // the dtype, Failure(internal) if the memory is misaligned for T.
  template <class T>
  std::span<const T> view() const;
  // Typed writable view of a writable buffer.
  template <class T>
  std::span<T> mutable_view();
  // Copies the elements out (works for any alignment).
  template <class T>
  std::vector<T> to_vector() const;

 private:
  void check_type(DType wanted, std::size_t alignment) const;

  DType dtype_ = DType::uint8;
  std::vector<std::int64_t> shape_{0};
  Buffer buffer_;
  std::string name_;
};

// Metadata (any msgpack-serialisable map) plus arrays.
struct Payload {
  nlohmann::json meta = nlohmann::json::object();
  std::vector<Array> arrays;

  // The first array with this name, or nullptr.
  const Array* find(std::string_view name) const;
  // Like find(), but throws Failure(invalid_argument) naming the array.
  const Array& at(std::string_view name) const;
  // Total bytes held in arrays.
  std::size_t array_bytes() const;
};

// ---------------------------------------------------------------------------

template <class T>
Buffer Buffer::from_vector(std::vector<T>&& values) {
  auto holder = std::make_shared<std::vector<T>>(std::move(values));
  Buffer b;
  b.data_ = reinterpret_cast<const std::byte*>(holder->data());
  b.size_ = holder->size() * sizeof(T);
  b.owner_ = std::move(holder);
  b.writable_ = true;
  return b;
}

template <class T>
Array Array::from_vector(std::vector<T> values, std::vector<std::int64_t> shape, std::string name) {
  if (shape.empty()) shape.push_back(static_cast<std::int64_t>(values.size()));
  return Array(dtype_of<T>, std::move(shape), Buffer::from_vector(std::move(values)),
               std::move(name));
}

template <class T>
std::span<const T> Array::view() const {
  check_type(dtype_of<T>, alignof(T));
  return {reinterpret_cast<const T*>(buffer_.data()), buffer_.size() / sizeof(T)};
}

template <class T>
std::span<T> Array::mutable_view() {
  check_type(dtype_of<T>, alignof(T));
  return {reinterpret_cast<T*>(buffer_.mutable_data()), buffer_.size() / sizeof(T)};
}

template <class T>
std::vector<T> Array::to_vector() const {
  check_type(dtype_of<T>, 1);
  std::vector<T> out(buffer_.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), buffer_.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace acheron
