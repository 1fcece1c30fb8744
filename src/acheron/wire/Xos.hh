// DCSS "xos" framing and messages (shared/specs/dcss-xos.md §2, §4): 200-byte
// xos1 frames, xos2 frames with a 26-byte ASCII header, per-message
// auto-detection, typed DCSS → DHS messages and exact DHS → DCSS encoding.
// Lenient on input (every sender variant of the spec), strict on output.
// Pure: bytes in, messages out, no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "acheron/core/Result.hh"

namespace acheron::wire::xos {

inline constexpr std::size_t kV1FrameSize = 200;  // xos1: every message, text + NUL + padding
inline constexpr std::size_t kV2HeaderSize = 26;  // xos2: "%12d %12d " (xos/src/xos.h)
inline constexpr std::size_t kV1MaxText = kV1FrameSize - 1;
// Outbound messages longer than this are split by the callers (§2 size guards).
inline constexpr std::size_t kRecommendedMaxText = 1000;

enum class Protocol : std::uint8_t { v1, v2 };

std::string_view to_string(Protocol p);

struct Limits {
  std::size_t max_text = 1u << 20;     // inbound text bytes per message
  std::size_t max_binary = 16u << 20;  // inbound binary bytes per message
};

// ---------------------------------------------------------------- decoding

struct V2Header {
  std::size_t text_size = 0;
  std::size_t binary_size = 0;
};

// True if the first non-blank (space or NUL) byte of `head` is a decimal digit:
// the 26 bytes start an xos2 header rather than xos1 text (pydhsfw's method;
// commands never start with a digit).
bool looks_like_v2_header(std::string_view head);

// Parses a 26-byte xos2 header from any sender of §2: NUL and space are
// separators, one or two non-negative decimal integers (missing binary ⇒ 0).
// Sizes above the limits are errors (a bad header cannot be resynchronised).
Result<V2Header> parse_v2_header(std::string_view header, const Limits& limits = {});

// The message text of a frame's text bytes: cut at the first NUL, trailing
// whitespace (\n \r \t space) stripped.
std::string_view clean_text(std::string_view raw);

// Splits on runs of whitespace; no empty tokens.
std::vector<std::string> tokenize(std::string_view text);

// One decoded message.
struct Frame {
  Protocol protocol = Protocol::v2;
  std::string text;             // cleaned (clean_text)
  std::size_t binary_size = 0;  // xos2 binary bytes that followed (skipped)
};

// Incremental decoder over a byte stream with split reads: feed() what the
// socket returned, then call next() until it has no frame. After an error the
// stream cannot be resynchronised; the decoder stays failed (close and
// reconnect).
class StreamDecoder final {
 public:
  explicit StreamDecoder(Limits limits = {}) : limits_(limits) {}

  void feed(const char* data, std::size_t size);
  void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

  // A frame, nothing yet (std::nullopt), or an error (sticky).
  Result<std::optional<Frame>> next();

  bool failed() const noexcept { return failed_; }
  // Bytes held but not yet decoded.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }
  void reset();

 private:
  void compact();

  Limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::size_t skip_binary_ = 0;   // binary bytes of the current frame still to discard
  std::optional<Frame> pending_;  // frame whose binary is still being skipped
  bool failed_ = false;
  std::string error_;
};

// Decodes exactly one complete message from `bytes` (auto-detected framing).
// Errors if the bytes are not exactly one frame.
Result<Frame> decode_one(std::string_view bytes, const Limits& limits = {});

// ---------------------------------------------------------------- encoding

// Joins tokens with single spaces; whitespace inside a token becomes a space
// and runs are collapsed (no leading/trailing whitespace, no newline).
std::string normalize(std::string_view text);
std::string join(const std::vector<std::string>& tokens);

// xos1: normalized text NUL-padded to 200 bytes; more than 199 bytes is an error.
Result<std::string> encode_v1(std::string_view text);
// What an xos1 peer can receive of `text`: DCSS reads 200-byte frames and
// keeps the text up to the first NUL, so more than 199 bytes cannot arrive.
// The longest prefix of normalize(text) that fits, cut after a whole token
// (a first token longer than 199 bytes is cut at 199), so no number arrives
// shortened into another value. `truncated` says whether anything was lost.
struct V1Fit {
  std::string text;
  bool truncated = false;
  std::size_t original_size = 0;  // of the normalized text
};
V1Fit fit_v1(std::string_view text);
// xos2: header "%12d %12d " (text length + 1, 0), the text, one NUL.
std::string encode_v2(std::string_view text);
Result<std::string> encode(Protocol protocol, std::string_view text);

// Numbers as DCSS expects them: motor values "%.6f", loop results "%.5f".
std::string format_motor(double v);
std::string format_loop(double v);

// Sender variants a lenient parser must accept (§2); used by the fake DCSS and
// the tests to produce each form. The text is sent as given (a registration's
// trailing newline included).
enum class SenderVariant : std::uint8_t {
  xos_c,    // "%12d %12d " header, text + NUL counted
  mx,       // "%12lu%13lu" + NUL header, NUL counted
  pydhsfw,  // "%12d%13d" + space header, message + " \0"
  tcl,      // "%12d %12d" + space header, no NUL
  java,     // "<len> 0" left-justified NUL-padded header, no NUL
};
std::string encode_v2_as(SenderVariant variant, std::string_view text);

// ------------------------------------------------------- DCSS → DHS messages

enum class DeviceType : std::uint8_t {
  real_motor,
  pseudo_motor,
  shutter,
  ion_chamber,
  encoder,
  string,
  operation,
  object,
};
std::string_view to_string(DeviceType t);

// stoc_send_client_type
struct SendClientType {};

// stoh_register_<type> name hwName [...]
struct Register {
  DeviceType type = DeviceType::operation;
  std::string name;
  std::string hw_name;
  std::string shutter_state;                       // shutter: open|closed (second token)
  std::string counter_channel, timer, timer_type;  // ion chamber
};

// stoh_set_motor_dependency motor dep... / stoh_set_motor_children pseudo child...
struct MotorRelations {
  bool children = false;  // false: dependency
  std::string motor;
  std::vector<std::string> others;
};

// stoh_configure_real_motor (16 fields; 19-ID dcss_database.c)
struct ConfigureRealMotor {
  std::string name, host, hw_name;
  double position = 0, upper_limit = 0, lower_limit = 0, scale_factor = 1;
  long speed = 0, acceleration = 0, backlash = 0;
  int lower_limit_on = 0, upper_limit_on = 0, lock_on = 0, backlash_on = 0, reverse_on = 0;
  int status = 0;
};

// stoh_configure_pseudo_motor name host hwName position upper lower lowerOn upperOn lockOn status
struct ConfigurePseudoMotor {
  std::string name, host, hw_name;
  double position = 0, upper_limit = 0, lower_limit = 0;
  int lower_limit_on = 0, upper_limit_on = 0, lock_on = 0, status = 0;
};

// stoh_configure_<other type> name host [fields...] (kept as tokens; see §4.1)
struct ConfigureOther {
  DeviceType type = DeviceType::shutter;
  std::string name, host;
  std::vector<std::string> fields;
};

struct StartMotorMove {
  std::string motor;
  double destination = 0;
};
enum class AbortMode : std::uint8_t { hard, soft };
struct AbortMotorMove {
  std::string motor;
  AbortMode mode = AbortMode::hard;
};
struct SetMotorPosition {
  std::string motor;
  double position = 0;
};
struct CorrectMotorPosition {
  std::string motor;
  double correction = 0;
};
struct StartOscillation {
  std::string motor;
  std::string shutter;  // empty for NULL
  double delta = 0;
  double time = 0;
  std::vector<std::string> extra;
};
struct StartVectorMove {
  std::string motor1, motor2;
  double destination1 = 0, destination2 = 0, speed = 0;
};
struct StopVectorMove {
  std::string motor1, motor2;
};
struct ChangeVectorSpeed {
  std::string motor1, motor2;
  double speed = 0;
};
struct SetShutterState {
  std::string shutter;
  bool open = false;
};
struct ReadIonChambers {
  double time = 0;
  int repeat = 0;
  std::vector<std::string> channels;
};
struct GetEncoder {
  std::string name;
};
struct SetEncoder {
  std::string name;
  double position = 0;
};
struct SetString {
  std::string name;
  std::string contents;  // the remaining tokens joined by single spaces
};
struct StartOperation {
  std::string operation;
  std::string handle;  // opaque ("1.2")
  std::vector<std::string> args;
};
struct StopOperation {
  std::string operation;
  std::string handle;  // may be empty
};
struct AbortAll {
  AbortMode mode = AbortMode::hard;  // hard|soft; anything else or none ⇒ hard
};
// Any other command: logged and ignored by the DHS.
struct Unknown {
  std::vector<std::string> tokens;
};

using StohMessage =
    std::variant<SendClientType, Register, MotorRelations, ConfigureRealMotor, ConfigurePseudoMotor,
                 ConfigureOther, StartMotorMove, AbortMotorMove, SetMotorPosition,
                 CorrectMotorPosition, StartOscillation, StartVectorMove, StopVectorMove,
                 ChangeVectorSpeed, SetShutterState, ReadIonChambers, GetEncoder, SetEncoder,
                 SetString, StartOperation, StopOperation, AbortAll, Unknown>;

// Parses one message's text. Unknown commands give Unknown; a known command
// with missing or malformed arguments is an error (the DHS logs and ignores it).
Result<StohMessage> parse_stoh(std::string_view text);

// ------------------------------------------------------- DHS → DCSS messages
// Text of each htos_ message (frame it with encode()).

namespace htos {
std::string client_is_hardware(std::string_view name);
std::string send_configuration(std::string_view device);
std::string motor_move_started(std::string_view motor, double destination);
std::string update_motor_position(std::string_view motor, double position, std::string_view status);
std::string motor_move_completed(std::string_view motor, double position, std::string_view status);
std::string limit_hit(std::string_view device);
std::string simulating_device(std::string_view device);
// Real motor: doubles then integers (speed, acceleration, backlash are integers).
std::string configure_real_motor(const ConfigureRealMotor& m);
std::string configure_pseudo_motor(const ConfigurePseudoMotor& m);
std::string report_shutter_state(std::string_view shutter, bool open, std::string_view result = {});
// time ch1 counts1 ch2 counts2 ...
std::string report_ion_chambers(double time,
                                const std::vector<std::pair<std::string, double>>& counts);
// failure: "0 ch1 [ch2...] reason"
std::string report_ion_chambers_failed(const std::vector<std::string>& channels,
                                       std::string_view reason);
std::string get_encoder_completed(std::string_view name, double position, std::string_view status);
std::string set_encoder_completed(std::string_view name, double position, std::string_view status);
std::string set_string_completed(std::string_view name, std::string_view status,
                                 std::string_view contents);
std::string operation_update(std::string_view op, std::string_view handle, std::string_view args);
std::string operation_completed(std::string_view op, std::string_view handle,
                                std::string_view status, std::string_view args = {});
std::string note(std::string_view text);
std::string log(std::string_view severity, std::string_view source, std::string_view text);
}  // namespace htos

}  // namespace acheron::wire::xos
