// Reads typed values from a fuzz input, front to back; past the end every
// read gives zeros (an empty string), so a target never needs to check sizes.
// Also the invariant check the targets share: a failed check aborts, which
// both libFuzzer and the standalone driver report as a fault.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace acheron::fuzz {

class Input final {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const noexcept { return pos_ >= size_; }
  std::size_t remaining() const noexcept { return pos_ < size_ ? size_ - pos_ : 0; }

  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16() | (std::uint32_t{u16()} << 16)); }
  float f32() {
    const std::uint32_t bits = u32();
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  double f64() {
    const std::uint64_t bits = u32() | (std::uint64_t{u32()} << 32);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  // Up to n bytes.
  std::string_view bytes(std::size_t n) {
    const std::size_t k = n < remaining() ? n : remaining();
    std::string_view out(reinterpret_cast<const char*>(data_) + pos_, k);
    pos_ += k;
    return out;
  }
  // A string of u8() bytes' length.
  std::string_view short_string() { return bytes(u8()); }
  // Up to the next `delimiter` (consumed, not returned) or the end.
  std::string_view until(char delimiter) {
    std::string_view rest = bytes(remaining());
    const auto at = rest.find(delimiter);
    if (at == std::string_view::npos) return rest;
    pos_ -= rest.size() - at - 1;
    return rest.substr(0, at);
  }
  std::string_view rest() { return bytes(remaining()); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

[[noreturn]] inline void violated(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", file, line, what);
  std::abort();
}

}  // namespace acheron::fuzz

// An invariant of the code under test: aborts with the condition's text.
#define FUZZ_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::acheron::fuzz::violated(#cond, __FILE__, __LINE__))
