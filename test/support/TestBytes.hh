// Test support: text frames as Buffers and back.
#pragma once

#include <string>
#include <string_view>

#include "acheron/core/Payload.hh"

namespace acheron::test_support {

// A Buffer holding a copy of the characters of s (a text frame).
inline Buffer text(std::string_view s) {
  return Buffer::copy_of(s);
}

// The bytes of b as a string (to compare a frame with text).
inline std::string str(const Buffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace acheron::test_support
