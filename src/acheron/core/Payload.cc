#include "acheron/core/Payload.hh"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace acheron {
namespace {
// Overflow-safe element count; throws for negative or overflowing shapes.
std::size_t element_count(const std::vector<std::int64_t>& shape) {
  std::size_t count = 1;
  for (auto d : shape) {
    if (d < 0) {
      throw Failure(StatusCode::invalid_argument, "array dimension is negative");
    }
    auto ud = static_cast<std::size_t>(d);
    if (ud != 0 && count > std::numeric_limits<std::size_t>::max() / ud) {
      throw Failure(StatusCode::invalid_argument, "array shape overflows");
    }
    count *= ud;
  }
  return count;
}
}  // namespace

Buffer Buffer::allocate(std::size_t size) {
  Buffer b;
  b.writable_ = true;  // also when empty, so zero-sized arrays stay writable
  if (size == 0) return b;
  constexpr std::size_t kAlign = 64;
  std::size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  b.owner_ = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  b.data_ = static_cast<const std::byte*>(p);
  b.size_ = size;
  b.writable_ = true;
  return b;
}

Buffer Buffer::copy_of(const void* data, std::size_t size) {
  Buffer b = allocate(size);
  if (size) std::memcpy(b.mutable_data(), data, size);
  return b;
}

Buffer Buffer::adopt(std::shared_ptr<const void> owner, const std::byte* data, std::size_t size) {
  Buffer b;
  b.owner_ = std::move(owner);
  b.data_ = data;
  b.size_ = size;
  b.writable_ = false;
  return b;
}

std::byte* Buffer::mutable_data() {
  if (!writable_) {
    throw Failure(StatusCode::failed_precondition,
                  "buffer is not writable (it views memory owned elsewhere) copy it first");
  }
  return const_cast<std::byte*>(data_);
}

Buffer Buffer::slice(std::size_t offset, std::size_t size) const {
  if (offset > size_ || size > size_ - offset) {
    throw Failure(StatusCode::out_of_range, "buffer slice out of range");
  }
  Buffer b = *this;
  b.data_ = data_ + offset;
  b.size_ = size;
  return b;
}

Array::Array(DType dtype, std::vector<std::int64_t> shape, Buffer buffer, std::string name)
    : dtype_(dtype), shape_(std::move(shape)), buffer_(std::move(buffer)), name_(std::move(name)) {
  const std::size_t count = element_count(shape_);
  if (count > std::numeric_limits<std::size_t>::max() / itemsize(dtype_) ||
      count * itemsize(dtype_) != buffer_.size()) {
    throw Failure(StatusCode::invalid_argument,
                  "array shape and dtype need " + std::to_string(count) + " x " +
                      std::to_string(itemsize(dtype_)) + " bytes but the buffer has " +
                      std::to_string(buffer_.size()));
  }
}

Array Array::zeros(DType dtype, std::vector<std::int64_t> shape, std::string name) {
  // Check the shape before allocating: a wrapped-around count could ask for
  // gigabytes before the constructor rejects the shape.
  const std::size_t count = element_count(shape);
  if (count > std::numeric_limits<std::size_t>::max() / itemsize(dtype)) {
    throw Failure(StatusCode::invalid_argument, "array shape overflows");
  }
  return Array(dtype, std::move(shape), Buffer::allocate(count * itemsize(dtype)), std::move(name));
}

std::size_t Array::size() const noexcept {
  return buffer_.size() / itemsize(dtype_);
}

void Array::check_type(DType wanted, std::size_t alignment) const {
  if (wanted != dtype_) {
    throw Failure(StatusCode::invalid_argument,
                  "array '" + name_ + "' has dtype " + std::string(to_numpy(dtype_)) +
                      ", not the requested " + std::string(to_numpy(wanted)));
  }
  if (alignment > 1 && reinterpret_cast<std::uintptr_t>(buffer_.data()) % alignment != 0) {
    throw Failure(StatusCode::internal,
                  "array '" + name_ + "' memory is misaligned for its dtype (use to_vector)");
  }
}

const Array* Payload::find(std::string_view name) const {
  for (const auto& a : arrays) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

const Array& Payload::at(std::string_view name) const {
  if (const Array* a = find(name)) return *a;
  throw Failure(StatusCode::invalid_argument,
                "payload has no array named '" + std::string(name) + "'");
}

std::size_t Payload::array_bytes() const {
  std::size_t n = 0;
  for (const auto& a : arrays) n += a.nbytes();
  return n;
}

}  // namespace acheron
