// The native ZeroMQ envelope: Majordomo 0.2-style frames carrying a
// MessagePack header and raw array frames. See docs/protocol.md.
//
//   F0  protocol id   "ACHC01" (client <-> server)
//   F1  command       one byte
//   F2  service       UTF-8 name (may be empty for HEARTBEAT / DISCONNECT)
//   F3  request id    u64 little-endian (commands that carry a request)
//   F4  header        MessagePack map: method, meta, arrays, timeout_ms, error
//   F5… arrays        one raw frame per entry of header.arrays
//
// Frames are core Buffers so the ZeroMQ adapters hand message memory in and
// out without copying.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Payload.hh"
#include "acheron/core/Result.hh"

namespace acheron::wire {

inline constexpr std::string_view kClientProtocol = "ACHC01";

// Commands. They mirror MDP/0.2's client commands (REQUEST, PARTIAL, FINAL)
// plus ERROR, CANCEL and PING/PONG.
enum class Command : std::uint8_t {
  // client <-> server/broker
  request = 0x01,  // C->S: call service.method with a payload
  partial = 0x02,  // S->C: progress payload, zero or more before the end
  final = 0x03,    // S->C: the reply payload; ends the request
  error = 0x04,    // S->C: the request failed; header.error says why; ends the request
  cancel = 0x05,   // C->S: stop working on this request (no reply expected)
  ping = 0x06,     // C->S: liveness probe; answered with pong
  pong = 0x07,     // S->C
};

struct RemoteError {
  StatusCode code = StatusCode::unknown;
  std::string type;     // exception type name at the source ("ValueError")
  std::string message;  // human-readable text
  std::string traceback;

  // From a decoded header "error" map (code, type, message, traceback):
  // missing or non-string fields stay empty, an unknown code is `unknown`.
  static RemoteError from_map(const nlohmann::json& map);
};

// One decoded message. `command` holds the numeric value of a Command.
struct Envelope {
  std::uint8_t command = 0;
  std::string service;
  std::uint64_t request_id = 0;
  std::string method;
  std::int64_t timeout_ms = 0;  // 0: no deadline requested
  std::optional<RemoteError> error;
  Payload payload;

  Command client_command() const { return static_cast<Command>(command); }
};

// Limits applied while decoding (defaults suit a broker on a LAN).
struct DecodeLimits {
  std::size_t max_arrays = 1024;
  std::size_t max_header_bytes = 1 << 20;
  std::size_t max_ndim = 32;
};

// True if the command carries F3 onward (request id, header, arrays).
bool carries_request(std::uint8_t command);

// Encodes an envelope to frames. Throws Failure(invalid_argument) on an
// unknown command.
std::vector<Buffer> encode(const Envelope& envelope);

// Decodes frames; never throws on malformed input. Array frames are shared,
// not copied.
Result<Envelope> decode(std::span<const Buffer> frames, const DecodeLimits& limits = {});

// Convenience constructors.
Envelope make_request(std::string service, std::uint64_t id, std::string method, Payload payload,
                      std::int64_t timeout_ms = 0);
Envelope make_reply(const Envelope& request, Command command, Payload payload);
Envelope make_error(const Envelope& request, RemoteError error);

std::string_view command_name(std::uint8_t command);

// --- Pieces shared with other framings of the same header ------------------
// (the remote protocol's one-frame calls and its stream messages).

namespace mp {
class Writer;
class Reader;
}  // namespace mp

// One entry of a header's "arrays" list.
struct ArrayDesc {
  DType dtype = DType::uint8;
  std::vector<std::int64_t> shape;
  bool has_shape = false;  // absent: 1-D from the frame size
  std::string name;
};

// Writes the "arrays" list value (the key is the caller's): one map
// {dtype, name?, shape} per array, keys sorted.
void write_array_descs(mp::Writer& w, const std::vector<Array>& arrays);
// Reads an "arrays" list value from a validated header.
Result<std::vector<ArrayDesc>> read_array_descs(mp::Reader& r, const DecodeLimits& limits);
// Arrays over the frames that follow a header: exactly one frame per
// descriptor, sizes checked against dtype and shape. Frames are shared, not copied.
Result<std::vector<Array>> attach_arrays(std::vector<ArrayDesc> descs,
                                         std::span<const Buffer> frames);

// Appends the header map (F4) of e in the canonical form encode() writes.
void encode_header(const Envelope& e, std::vector<std::uint8_t>& out);
// Completes e (role, command and request id already set) from a header and
// the array frames that follow it; never throws on malformed input.
Result<Envelope> decode_header(Envelope e, std::span<const std::byte> header,
                               std::span<const Buffer> array_frames,
                               const DecodeLimits& limits = {});

}  // namespace acheron::wire
