// MessagePack metadata <-> nlohmann::json, safe on untrusted input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/core/Result.hh"

namespace acheron::wire {

// Nesting limit for decoded metadata; deeper documents are rejected before
// parsing so a hostile message cannot exhaust the stack.
inline constexpr std::size_t kMaxMsgpackDepth = 64;

// Checks that bytes hold exactly one well-formed MessagePack value no deeper
// than kMaxMsgpackDepth whose declared lengths fit in the input.
Result<bool> validate_msgpack(std::span<const std::byte> bytes);

// Decodes one MessagePack value (validated first); never throws.
Result<nlohmann::json> decode_msgpack(std::span<const std::byte> bytes);

// Encodes a JSON value as MessagePack.
std::vector<std::uint8_t> encode_msgpack(const nlohmann::json& value);

}  // namespace acheron::wire
