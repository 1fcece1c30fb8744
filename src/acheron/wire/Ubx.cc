// UBX frames: checksum, framing, the stream parser and message identities;
// configuration keys are in UbxConfig.cc, message payloads in
// UbxMessages.cc, pyubx2-style field dictionaries in UbxJson.cc.
#include "acheron/wire/Ubx.hh"
#include "acheron/wire/UbxInternal.hh"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace acheron::wire::ubx {

std::array<std::uint8_t, 2> checksum(ByteSpan content) {
  std::uint32_t a = 0, b = 0;
  for (auto byte : content) {
    a += byte;
    b += a;
  }
  return {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b)};
}

Bytes encode_frame(MessageId msg, ByteSpan payload) {
  Bytes out;
  out.reserve(payload.size() + kOverhead);
  out.push_back(kSync1);
  out.push_back(kSync2);
  out.push_back(msg.cls);
  out.push_back(msg.id);
  write_le<std::uint16_t>(out, static_cast<std::uint16_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  const auto ck = checksum(ByteSpan(out).subspan(2));
  out.push_back(ck[0]);
  out.push_back(ck[1]);
  return out;
}

Result<Frame> Frame::from_bytes(ByteSpan bytes) {
  auto fail = [](std::string m) {
    return Result<Frame>::failure(StatusCode::invalid_argument, std::move(m));
  };
  if (bytes.size() < kOverhead) return fail("UBX frame shorter than 8 bytes");
  if (bytes[0] != kSync1 || bytes[1] != kSync2) return fail("UBX frame does not start with B5 62");
  const std::size_t len = read_le<std::uint16_t>(bytes, 4);
  if (bytes.size() != len + kOverhead) {
    return fail("UBX frame length field says " + std::to_string(len) +
                " payload bytes but the frame has " + std::to_string(bytes.size() - kOverhead));
  }
  const auto ck = checksum(bytes.subspan(2, len + 4));
  if (ck[0] != bytes[len + 6] || ck[1] != bytes[len + 7])
    return fail("UBX frame checksum mismatch");
  return Frame(Bytes(bytes.begin(), bytes.end()));
}

StreamParser::StreamParser(std::size_t max_payload)
    : max_payload_(std::min<std::size_t>(max_payload, 0xFFFF)) {}

void StreamParser::feed(ByteSpan bytes) {
  // Drop what was consumed before growing the buffer.
  if (pos_ > 0 &&
      (pos_ >= buffer_.size() / 2 || buffer_.size() + bytes.size() > buffer_.capacity())) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<Frame> StreamParser::next() {
  for (;;) {
    const std::size_t avail = buffer_.size() - pos_;
    if (avail == 0) return std::nullopt;
    const std::uint8_t* base = buffer_.data() + pos_;
    // Find the next sync pair.
    const auto* sync = static_cast<const std::uint8_t*>(std::memchr(base, kSync1, avail));
    if (!sync) {
      stats_.skipped_bytes += avail;
      pos_ = buffer_.size();
      return std::nullopt;
    }
    const std::size_t skip = static_cast<std::size_t>(sync - base);
    stats_.skipped_bytes += skip;
    pos_ += skip;
    const std::size_t left = avail - skip;
    if (left < 2) return std::nullopt;  // a lone B5 at the end: wait
    if (buffer_[pos_ + 1] != kSync2) {
      ++stats_.skipped_bytes;
      ++pos_;
      continue;
    }
    if (left < kHeaderSize) return std::nullopt;
    const std::size_t len = read_le<std::uint16_t>(ByteSpan(buffer_), pos_ + 4);
    if (len > max_payload_) {
      ++stats_.oversize;
      ++stats_.skipped_bytes;
      ++pos_;
      continue;
    }
    if (left < len + kOverhead) return std::nullopt;  // incomplete: wait for more
    const ByteSpan frame(buffer_.data() + pos_, len + kOverhead);
    const auto ck = checksum(frame.subspan(2, len + 4));
    if (ck[0] != frame[len + 6] || ck[1] != frame[len + 7]) {
      ++stats_.bad_checksum;
      ++stats_.skipped_bytes;
      ++pos_;
      continue;
    }
    pos_ += frame.size();
    ++stats_.frames;
    return Frame(Bytes(frame.begin(), frame.end()));
  }
}

void StreamParser::reset() {
  buffer_.clear();
  pos_ = 0;
}

std::string identity(MessageId msg) {
  const auto* names = detail::kMessageNames;
  const auto* end = names + detail::kMessageNameCount;
  const auto it = std::lower_bound(names, end, msg, [](const MessageName& m, MessageId k) {
    return m.cls != k.cls ? m.cls < k.cls : m.id < k.id;
  });
  if (it != end && it->cls == msg.cls && it->id == msg.id) return std::string(it->name);
  std::string cls = "UNKNOWN";
  for (std::size_t i = 0; i < detail::kClassNameCount; ++i) {
    if (detail::kClassNames[i].cls == msg.cls) cls = std::string(detail::kClassNames[i].name);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = cls + "-";
  for (std::uint8_t b : {msg.cls, msg.id}) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out + "-NOMINAL";
}

}  // namespace acheron::wire::ubx
