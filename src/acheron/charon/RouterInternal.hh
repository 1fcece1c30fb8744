// Internal to the CharonRouter source files (not part of the API): the
// job slot frames workers echo, control bytes and identities for logs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "acheron/core/Clock.hh"
#include "acheron/core/Payload.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::charon::router_detail {

// The client_id slot the router sends a worker: a tag byte and a 64-bit
// little-endian number. Original workers echo it untouched (§6).
constexpr char kJobTag = 'J';
constexpr char kProbeTag = 'P';
constexpr std::size_t kSlotSize = 9;

inline Buffer slot_frame(char tag, std::uint64_t n) {
  Buffer b = Buffer::allocate(kSlotSize);
  std::byte* p = b.mutable_data();
  p[0] = static_cast<std::byte>(tag);
  for (int i = 0; i < 8; ++i) p[1 + i] = static_cast<std::byte>(n >> (8 * i));
  return b;
}

struct Slot {
  char tag = 0;
  std::uint64_t number = 0;
};

// The slot of an asynchronous-mode job: tag 'S', the job number and "STEP"
// (13 bytes) asks `acheron photon worker` for the STEPS frame after its
// SIM_COMPLETE (docs/broker.md); original workers echo it like any slot.
inline Buffer steps_slot_frame(std::uint64_t n) {
  Buffer b = Buffer::allocate(wire::charon::kStepsSlotSize);
  std::byte* p = b.mutable_data();
  p[0] = static_cast<std::byte>(wire::charon::kStepsSlotTag);
  for (int i = 0; i < 8; ++i) p[1 + i] = static_cast<std::byte>(n >> (8 * i));
  std::memcpy(p + 9, wire::charon::kStepsSlotMark.data(), wire::charon::kStepsSlotMark.size());
  return b;
}

inline std::optional<Slot> parse_slot(const Buffer& b) {
  if (wire::charon::slot_wants_steps(b)) {
    Slot s{kJobTag, 0};
    for (int i = 0; i < 8; ++i) s.number |= static_cast<std::uint64_t>(b.data()[1 + i]) << (8 * i);
    return s;
  }
  if (b.size() != kSlotSize) return std::nullopt;
  const auto tag = static_cast<char>(b.data()[0]);
  if (tag != kJobTag && tag != kProbeTag) return std::nullopt;
  Slot s{tag, 0};
  for (int i = 0; i < 8; ++i) s.number |= static_cast<std::uint64_t>(b.data()[1 + i]) << (8 * i);
  return s;
}

inline Buffer byte_frame(std::uint8_t v) {
  return Buffer::copy_of(&v, 1);
}

inline bool is_control(const Buffer& b, std::uint8_t v) {
  return b.size() == 1 && static_cast<std::uint8_t>(b.data()[0]) == v;
}

inline std::string_view text_of(const Buffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A worker or client identity for logs: text if printable, else hex.
inline std::string printable(std::string_view id) {
  const bool text = !id.empty() &&
                    std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (text) return std::string(id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "0x";
  for (unsigned char c : id) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

inline std::uint32_t read_u32(const Buffer& b) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b.data()[i]) << (8 * i);
  return v;
}

inline double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace acheron::charon::router_detail
