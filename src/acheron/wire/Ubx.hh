// UBX protocol codec (u-blox receivers; shared/specs/ublox.md section 6):
// framing and Fletcher checksum, a streaming parser that resynchronises after
// garbage and split reads, typed payloads of the messages a timing receiver
// needs, the configuration key table, and pyubx2-named field dictionaries.
// Pure: bytes in, bytes out; never throws on device or client input.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Result.hh"
#include "acheron/wire/UbxTables.hh"

namespace acheron::wire::ubx {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

inline constexpr std::uint8_t kSync1 = 0xB5;
inline constexpr std::uint8_t kSync2 = 0x62;
inline constexpr std::size_t kHeaderSize = 6;  // sync (2), class, id, length (2)
inline constexpr std::size_t kOverhead = 8;    // header + checksum
// Largest payload the parser accepts by default. The biggest periodic
// messages of a generation 9 receiver (NAV-SAT, RXM-RAWX with every signal)
// stay below 4 KiB; a bound keeps a false sync in garbage from stalling the
// stream for long.
inline constexpr std::size_t kDefaultMaxPayload = 4096;

struct MessageId {
  std::uint8_t cls = 0;
  std::uint8_t id = 0;
  friend bool operator==(MessageId, MessageId) = default;
};

inline constexpr MessageId kNavTimeUtc{0x01, 0x21};
inline constexpr MessageId kAckNak{0x05, 0x00};
inline constexpr MessageId kAckAck{0x05, 0x01};
inline constexpr MessageId kCfgValset{0x06, 0x8A};
inline constexpr MessageId kCfgValget{0x06, 0x8B};
inline constexpr MessageId kMonVer{0x0A, 0x04};
inline constexpr MessageId kTimTp{0x0D, 0x01};
inline constexpr MessageId kSecUniqid{0x27, 0x03};

// 8-bit Fletcher checksum over class, id, length and payload (CK_A, CK_B).
std::array<std::uint8_t, 2> checksum(ByteSpan content);

// A complete frame: B5 62, class, id, length, payload, CK_A, CK_B.
Bytes encode_frame(MessageId msg, ByteSpan payload);
// An empty-payload frame: a poll request for that message.
inline Bytes encode_poll(MessageId msg) {
  return encode_frame(msg, {});
}

// One validated frame (sync, length and checksum checked).
class Frame final {
 public:
  Frame() = default;
  // Validates bytes holding exactly one frame.
  static Result<Frame> from_bytes(ByteSpan bytes);

  MessageId message_id() const noexcept { return {bytes_[2], bytes_[3]}; }
  ByteSpan payload() const noexcept {
    return ByteSpan(bytes_).subspan(kHeaderSize, size() - kOverhead);
  }
  const Bytes& bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return bytes_.size(); }
  bool empty() const noexcept { return bytes_.empty(); }

 private:
  friend class StreamParser;
  explicit Frame(Bytes bytes) : bytes_(std::move(bytes)) {}
  Bytes bytes_;
};

struct ParserStats {
  std::uint64_t frames = 0;         // valid frames returned
  std::uint64_t bad_checksum = 0;   // candidates dropped for their checksum
  std::uint64_t oversize = 0;       // candidates dropped for a length above the bound
  std::uint64_t skipped_bytes = 0;  // bytes that were not part of a valid frame
};

// Turns a byte stream (serial reads of any size, NMEA/RTCM or line noise in
// between) into frames. Resynchronises on B5 62 after anything invalid.
class StreamParser final {
 public:
  explicit StreamParser(std::size_t max_payload = kDefaultMaxPayload);

  void feed(ByteSpan bytes);
  // The next complete valid frame, or nullopt until more bytes arrive.
  std::optional<Frame> next();
  // Bytes held back (an incomplete frame or an unmatched sync byte).
  std::size_t buffered() const noexcept { return buffer_.size() - pos_; }
  const ParserStats& stats() const noexcept { return stats_; }
  void reset();

 private:
  std::size_t max_payload_;
  Bytes buffer_;
  std::size_t pos_ = 0;
  ParserStats stats_;
};

// pyubx2's identity of a message: "TIM-TP", or for an unknown one
// "<class name or UNKNOWN>-<cc><ii>-NOMINAL" (hex).
std::string identity(MessageId msg);

// ---------------------------------------------------------------------------
// Configuration keys.

// Value size in bytes from the key id (bits 28-30); 0 for an invalid size code.
std::size_t key_value_size(std::uint32_t key_id);
std::size_t type_size(KeyType type);
std::string_view type_name(KeyType type);  // "U4", "L", ...
// Looks a key up by name. Accepts u-blox spelling with '-' and any case
// ("CFG-TP-ANT_CABLEDELAY" finds CFG_TP_ANT_CABLEDELAY).
const CfgKey* find_key(std::string_view name);
const CfgKey* find_key(std::uint32_t id);
std::span<const CfgKey> all_keys();
// Upper case, '-' replaced by '_'.
std::string normalise_key_name(std::string_view name);

// A configuration value from a number (what a JSON config carries): integer
// types truncate towards zero like Python int(); out-of-range values and
// non-finite numbers are errors.
Result<Bytes> encode_key_value(KeyType type, double value);
// The value as a number: integers (L as 0/1, X as an unsigned integer) or a
// double for R. nullopt if the size does not match the type.
std::optional<double> decode_key_value_number(KeyType type, ByteSpan value);

struct CfgItem {
  std::uint32_t key = 0;
  Bytes value;  // little-endian raw value, key_value_size(key) bytes
  friend bool operator==(const CfgItem&, const CfgItem&) = default;
};

// ---------------------------------------------------------------------------
// Typed payloads. decode_* take the payload (not the frame) and fail with
// invalid_argument on a wrong length; encode_* return a complete frame.

struct Ack {
  bool acknowledged = true;  // ACK-ACK (true) or ACK-NAK
  std::uint8_t cls_id = 0;   // class of the message acknowledged
  std::uint8_t msg_id = 0;
};
Result<Ack> decode_ack(MessageId msg, ByteSpan payload);
Bytes encode_ack(const Ack& ack);

struct TimTp {
  std::uint32_t tow_ms = 0;      // ms, time of week of the next pulse in the time base
  std::uint32_t tow_sub_ms = 0;  // 2^-32 ms
  std::int32_t q_err = 0;        // ps, quantisation error of the pulse
  std::uint16_t week = 0;
  std::uint8_t flags =
      0;  // bit0 timeBase, bit1 utc, bits2-3 raim, bit4 qErrInvalid, bit5 TpNotLocked
  std::uint8_t ref_info = 0;  // bits0-3 timeRefGnss, bits4-7 utcStandard
};
Result<TimTp> decode_tim_tp(ByteSpan payload);
Bytes encode_tim_tp(const TimTp& m);

struct NavTimeUtc {
  std::uint32_t itow = 0;   // ms, GPS time of week
  std::uint32_t t_acc = 0;  // ns
  std::int32_t nano = 0;    // ns, -1e9 .. 1e9
  std::uint16_t year = 0;
  std::uint8_t month = 0, day = 0, hour = 0, min = 0, sec = 0;
  std::uint8_t valid =
      0;  // bit0 validTOW, bit1 validWKN, bit2 validUTC, bit3 authStatus, bits4-7 utcStandard
};
Result<NavTimeUtc> decode_nav_timeutc(ByteSpan payload);
Bytes encode_nav_timeutc(const NavTimeUtc& m);

struct MonVer {
  std::string sw_version;               // CH[30], NULs stripped
  std::string hw_version;               // CH[10]
  std::vector<std::string> extensions;  // CH[30] each
  // Text after "MOD=" in the first extension starting with it, else "UNKNOWN".
  std::string model() const;
};
Result<MonVer> decode_mon_ver(ByteSpan payload);
Bytes encode_mon_ver(const MonVer& m);  // fields longer than their slot are cut

struct SecUniqid {
  std::uint8_t version = 1;
  std::array<std::uint8_t, 3> reserved{};
  std::array<std::uint8_t, 5> unique_id{};  // as sent
  // pyubx2 reads the five bytes as a little-endian integer.
  std::uint64_t unique_id_value() const;
  // That integer as 10 upper-case hex digits (what PANOSETI configs hold).
  std::string unique_id_hex() const;
  // The reply a chip with that printed id sends (inverse of unique_id_hex()).
  static Result<SecUniqid> from_hex(std::string_view hex);
};
Result<SecUniqid> decode_sec_uniqid(ByteSpan payload);
Bytes encode_sec_uniqid(const SecUniqid& m);

// CFG-VALSET layers bits and CFG-VALGET layer numbers.
inline constexpr std::uint8_t kLayerRam = 0x01;
inline constexpr std::uint8_t kLayerBbr = 0x02;
inline constexpr std::uint8_t kLayerFlash = 0x04;
inline constexpr std::uint8_t kPollRam = 0;
inline constexpr std::uint8_t kPollBbr = 1;
inline constexpr std::uint8_t kPollFlash = 2;
inline constexpr std::uint8_t kPollDefault = 7;
inline constexpr std::size_t kMaxCfgItems = 64;  // per CFG-VALSET / CFG-VALGET

// Splits (key U4, value) pairs using the size bits of each key.
Result<std::vector<CfgItem>> decode_cfg_items(ByteSpan data);
void append_cfg_items(Bytes& out, std::span<const CfgItem> items);

struct CfgValset {
  std::uint8_t version = 0;  // 0, or 1 with transactions
  std::uint8_t layers = kLayerRam;
  std::uint8_t transaction = 0;  // version 1: 0 none, 1 begin, 2 continue, 3 apply and end
  std::vector<CfgItem> items;
};
Result<CfgValset> decode_cfg_valset(ByteSpan payload);
Bytes encode_cfg_valset(const CfgValset& m);

struct CfgValgetPoll {
  std::uint8_t version = 0;
  std::uint8_t layer = kPollRam;
  std::uint16_t position = 0;
  std::vector<std::uint32_t> keys;
};
struct CfgValgetReply {
  std::uint8_t version = 1;
  std::uint8_t layer = kPollRam;
  std::uint16_t position = 0;
  std::vector<CfgItem> items;
};
Result<CfgValgetPoll> decode_cfg_valget_poll(ByteSpan payload);
Result<CfgValgetReply> decode_cfg_valget_reply(ByteSpan payload);
Bytes encode_cfg_valget_poll(const CfgValgetPoll& m);
Bytes encode_cfg_valget_reply(const CfgValgetReply& m);

// ---------------------------------------------------------------------------
// Field dictionaries as pyubx2 names them, with the meta keys PANOSETI's
// UbloxControl adds (identity, length, msgmode, msg_cls, msg_id, payload).
// Numbers are doubles (as in a protobuf Struct); byte strings become text if
// valid UTF-8 (NULs at both ends stripped) else lower-case hex. Messages
// without a typed decoder, or whose payload does not decode, carry the meta
// keys only.
nlohmann::json parsed_fields(const Frame& frame);
// The byte-string rule above.
std::string bytes_to_text(ByteSpan bytes);
// Strict UTF-8 validation as Python's decoder applies it.
bool valid_utf8(ByteSpan bytes);

}  // namespace acheron::wire::ubx
