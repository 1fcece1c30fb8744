// The remote-object protocol on top of the native envelope (docs/remote.md).
//
// Calls: DEALER -> ROUTER, envelope REQUEST with method = call name and
// meta = {"args": [...], "kwargs": {...}, "token": u64 (write lock)}; zero or
// more PARTIAL replies (progress, meta = {"value": v}), then FINAL with
// meta = {"value": v} or ERROR with header.error. CANCEL (no reply) stops a
// running call. Built-in calls start with '$' and cannot be registered by
// applications.
//
// Two framings of the same message, answered in the framing of the request:
//   envelope  the native envelope, five frames + arrays (docs/protocol.md)
//   compact   one frame "ACHR01" | command u8 | request id u64 LE | header
//             (the envelope's F4 MessagePack map; empty for PING, PONG and
//             CANCEL), then one raw frame per array. Clients use this form.
//
// Streams: PUB frames
//   F0  topic   stream name + NUL (the terminator makes SUB prefix matching exact)
//   F1  header  MessagePack map: seq, sid (server instance id), wall_ns, mono_ns,
//               value, arrays [{dtype, shape, name?}], error {code,type,message,traceback}
//   F2… arrays  one raw frame per header.arrays entry
// The server also publishes "$hb" once a second so clients can tell a quiet
// stream from a dead server.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Result.hh"
#include "acheron/remote/Call.hh"
#include "acheron/wire/Envelope.hh"

namespace acheron::remote {

inline constexpr std::string_view kHeartbeatStream = "$hb";

// Built-in calls.
inline constexpr std::string_view kListCalls = "$calls";
inline constexpr std::string_view kListStreams = "$streams";
inline constexpr std::string_view kEnableStream = "$enable";
inline constexpr std::string_view kDisableStream = "$disable";
inline constexpr std::string_view kRemoveStream = "$remove";
inline constexpr std::string_view kInfo = "$info";
inline constexpr std::string_view kLock = "$lock";
inline constexpr std::string_view kUnlock = "$unlock";

// Throws SetupError unless name is a valid call or stream name: non-empty,
// at most 255 bytes, no NUL, not starting with '$'.
void check_name(std::string_view kind, std::string_view name);

// The topic frame of a stream: name + NUL.
std::string topic_of(std::string_view stream);

struct StreamMessage {
  std::string stream;
  std::uint64_t server_id = 0;
  std::uint64_t seq = 0;
  std::int64_t wall_ns = 0;
  std::int64_t mono_ns = 0;
  Value value;
  std::optional<wire::RemoteError> error;
};

std::vector<Buffer> encode_stream(const StreamMessage& message);
// Never throws on malformed input. Array frames are shared, not copied.
Result<StreamMessage> decode_stream(std::span<const Buffer> frames,
                                    const wire::DecodeLimits& limits = {});

inline constexpr std::string_view kCallProtocol = "ACHR01";
inline constexpr std::size_t kCallPrefix = 15;  // protocol id, command, request id

enum class Framing { envelope, compact };

// Frames of a call message in either framing (compact: service is implied).
std::vector<Buffer> encode_call(const wire::Envelope& envelope, Framing framing);
// Decodes a call message in either framing; never throws on malformed input.
Result<wire::Envelope> decode_call(std::span<const Buffer> frames, Framing* framing,
                                   const wire::DecodeLimits& limits = {});
// True if the frame starts a compact call message; its request id.
bool is_compact(const Buffer& first);
std::uint64_t compact_request_id(const Buffer& first);

// Request meta for a call.
Json call_meta(const Json& positional, const Json& keyword, std::uint64_t token);
// The arguments carried by a request envelope; throws Failure(invalid_argument).
Args args_of(const wire::Envelope& request, std::uint64_t* token);
// Reply payload for a value.
Payload reply_payload(Value value);
// The value carried by a FINAL reply.
Value value_of(const wire::Envelope& reply);

}  // namespace acheron::remote
