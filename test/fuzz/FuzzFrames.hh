// Splits a fuzz input into ZeroMQ-like frames: each frame is a 2-byte
// little-endian length then that many bytes; a short tail becomes the last
// frame. Lets one byte string describe a whole multipart message.
#pragma once

#include <cstdint>
#include <vector>

#include "acheron/core/Payload.hh"

namespace acheron::fuzz {

inline std::vector<Buffer> split_frames(const std::uint8_t* data, std::size_t size) {
  std::vector<Buffer> frames;
  std::size_t pos = 0;
  while (pos < size && frames.size() < 4096) {
    if (size - pos < 2) {
      frames.push_back(Buffer::copy_of(data + pos, size - pos));
      break;
    }
    std::size_t n = data[pos] | (static_cast<std::size_t>(data[pos + 1]) << 8);
    pos += 2;
    if (n > size - pos) n = size - pos;
    frames.push_back(Buffer::copy_of(data + pos, n));
    pos += n;
  }
  return frames;
}

}  // namespace acheron::fuzz
