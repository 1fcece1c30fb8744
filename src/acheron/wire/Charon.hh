// ChAR0N wire protocol codec (shared/specs/charon-protocol.md): every request
// and reply of the photon service, both protocol generations, validated
// before anything reaches an engine. Pure: frames in, frames out, no sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "acheron/core/Payload.hh"
#include "acheron/core/Result.hh"

namespace acheron::wire::charon {

// Header strings (ASCII, byte-exact, no terminator).
inline constexpr std::string_view kPing = "PING";
inline constexpr std::string_view kAck = "ACK";
inline constexpr std::string_view kPong = "PONG";
inline constexpr std::string_view kRunBegin = "RUN_BEGIN";
inline constexpr std::string_view kRunEnd = "RUN_END";
inline constexpr std::string_view kPhotonData = "PHOTONDATA";
inline constexpr std::string_view kDetectorInfo = "DETECTOR_INFO";
inline constexpr std::string_view kSimComplete = "SIM_COMPLETE";
inline constexpr std::string_view kSimCompleteAsync = "SIM_COMPLETE_ASYNC";
inline constexpr std::string_view kSimFailed = "SIM_FAILED";
inline constexpr std::string_view kNoWorkers = "NO_WORKERS";
// Asynchronous mode: the reply to RUN_END when the run's file could not be
// written (disk full, directory not writable); frame 1 says why. RAT-PAC
// only warns on a RUN_END reply other than ACK.
inline constexpr std::string_view kRunFailed = "RUN_FAILED";
inline constexpr std::string_view kUnknownRequest = "UNKNOWN_REQUEST";
// Extension of this project (not ChAR0N): [STATS] is answered [STATS, json]
// by servers and brokers; ChAR0N peers answer UNKNOWN_REQUEST.
inline constexpr std::string_view kStats = "STATS";

// Backend control frames between broker and workers (one byte each).
inline constexpr std::uint8_t kReady = 0x01;
inline constexpr std::uint8_t kHeartbeat = 0x02;
// Extensions of this project (not ChAR0N), still one frame each, so that
// ChAR0N's router.py only logs them as invalid and keeps serving:
// WORKER_INFO is 0x03 followed by a JSON object (who and where the worker
// is: node, Slurm job), sent right after READY; DRAINING (0x04 alone) asks
// for no new work while the worker finishes what it holds; DISCONNECT (0x05
// alone) says it leaves, handing back whatever it has not answered.
inline constexpr std::uint8_t kWorkerInfo = 0x03;
inline constexpr std::uint8_t kDraining = 0x04;
inline constexpr std::uint8_t kDisconnect = 0x05;
inline constexpr std::size_t kMaxWorkerInfoBytes = 4096;

// Input flag bits a client may set; everything else is masked off.
inline constexpr std::uint32_t kCherenkov = 1u << 10;
inline constexpr std::uint32_t kScintillation = 1u << 11;
inline constexpr std::uint32_t kCreatorMask = kCherenkov | kScintillation;

// event_id reported when a malformed PHOTONDATA carries none.
inline constexpr std::uint32_t kNoEventId = 0xFFFFFFFFu;

enum class Version : std::uint8_t {
  v1,       // 13-frame PHOTONDATA (no flags), 5-frame SIM_COMPLETE
  current,  // 14-frame PHOTONDATA, 12-frame SIM_COMPLETE
};

enum class RequestKind : std::uint8_t { ping, detector_info, photon_data, run_begin, run_end };

// PHOTONDATA component order on the wire (frames 2..12).
enum Component : int { px, py, pz, dx, dy, dz, polx, poly, polz, wavelength, time, kComponents };

// A validated PHOTONDATA request. The arrays are the received frames (no
// copy); read them with value() which copes with any alignment.
struct PhotonData {
  std::uint32_t event_id = 0;
  std::uint32_t num_photons = 0;
  Version version = Version::current;
  std::array<Buffer, kComponents> f32;  // float32 little-endian, num_photons each
  Buffer flags;                         // u32, num_photons; empty for v1

  float value(Component c, std::size_t i) const;
  // Input flags masked to the creator bits.
  std::uint32_t creator_flags(std::size_t i) const;
};

struct Request {
  RequestKind kind = RequestKind::ping;
  PhotonData photons;               // photon_data
  std::string filename;             // run_begin (may be empty)
  bool metadata_truncated = false;  // metadata frame was longer than 8 bytes (logged)
};

struct Limits {
  std::uint32_t max_photons = 50'000'000;  // per request; above: SIM_FAILED
};

// A request that cannot be served: the reply to send and why.
struct Rejection {
  std::vector<Buffer> reply;  // SIM_FAILED or UNKNOWN_REQUEST
  std::string reason;
};

// Decodes one request's frames (after the routing envelope). Never throws on
// input; a malformed request gives the protocol's error reply.
std::variant<Request, Rejection> decode_request(std::span<const Buffer> frames,
                                                const Limits& limits = {});

// What a SIM_COMPLETE reply does not carry about its hits (an Acheron
// extension, never sent to ChAR0N clients): per hit the final position and
// the step history (optics::HitSteps). Structure of arrays, one value per hit.
struct HitSteps {
  std::uint32_t history_length = 0;        // N steps recorded in `sequence` (0: off)
  std::vector<float> pos_x, pos_y, pos_z;  // mm
  std::vector<std::uint32_t> boundaries, scatters, reemissions, steps;
  std::vector<std::uint64_t> sequence;  // 4 bits per step, first step lowest
  std::size_t size() const noexcept { return pos_x.size(); }
};

// Detected photons of one event, structure of arrays.
struct Hits {
  std::uint32_t event_id = 0;
  std::vector<std::uint32_t> channel;
  std::vector<float> dir_x, dir_y, dir_z;
  std::vector<float> pol_x, pol_y, pol_z;
  std::vector<float> wavelength, time;
  std::vector<std::uint32_t> flags;
  // Set by Acheron's engine and by a broker that received the STEPS frame;
  // never encoded into SIM_COMPLETE.
  std::optional<HitSteps> steps;
  std::size_t size() const noexcept { return channel.size(); }
};

struct DetectorInfo {
  std::vector<float> x, y, z;  // channel positions, mm
  std::vector<std::int32_t> type;
  std::size_t size() const noexcept { return x.size(); }
  bool operator==(const DetectorInfo&) const = default;
};

// Replies (server side).
std::vector<Buffer> encode_header(std::string_view header);  // ACK, PONG, NO_WORKERS, ...
std::vector<Buffer> encode_sim_failed(std::uint32_t event_id);
std::vector<Buffer> encode_sim_complete_async(std::uint32_t event_id);
// 12 frames (current) or 5 frames (v1: channel, time, wavelength). Moves the
// vectors into the frames without copying.
std::vector<Buffer> encode_sim_complete(Hits hits, Version version);
std::vector<Buffer> encode_detector_info(const DetectorInfo& info);

// Requests (client side).
std::vector<Buffer> encode_photon_data(std::uint32_t event_id,
                                       const std::array<std::vector<float>, kComponents>& f32,
                                       const std::vector<std::uint32_t>* flags);
std::vector<Buffer> encode_run_begin(std::string_view filename);

// Reply decoding (client side and the broker's geometry probe).
std::string_view header_of(std::span<const Buffer> frames);
Result<Hits> decode_sim_complete(std::span<const Buffer> frames);
Result<DetectorInfo> decode_detector_info(std::span<const Buffer> frames);
// The event id of SIM_FAILED / SIM_COMPLETE_ASYNC replies.
Result<std::uint32_t> decode_event_id_reply(std::span<const Buffer> frames);

// The STEPS frame (Acheron extension between an asynchronous-mode broker
// and `acheron photon worker`, docs/broker.md): a broker that wants it sends
// the job with a slot frame of kStepsSlotSize bytes, tag kStepsSlotTag, and
// the worker appends this frame after its SIM_COMPLETE frames. Layout
// (little-endian): the 8 ASCII bytes "ACHSTEP1", u32 hits, u32 history
// length N, then per hit a 36-byte record: f32 x, y, z; u32 boundaries,
// scatters, reemissions, steps; u64 sequence.
inline constexpr std::string_view kStepsMagic = "ACHSTEP1";
inline constexpr std::size_t kStepsHeaderSize = 16;
inline constexpr std::size_t kStepsRecordSize = 36;
inline constexpr char kStepsSlotTag = 'S';
inline constexpr std::size_t kStepsSlotSize = 13;  // tag, u64 job number, "STEP"
inline constexpr std::string_view kStepsSlotMark = "STEP";
Buffer encode_hit_steps(const HitSteps& steps);
// True if the frame starts with kStepsMagic (whether or not it decodes).
bool is_steps_frame(const Buffer& frame);
// Decodes a STEPS frame for an event of `hits` hits; an error names what is
// wrong (size, hit count, history length).
Result<HitSteps> decode_hit_steps(const Buffer& frame, std::size_t hits);
// True if a slot frame (a job's client_id as a worker sees it) asks for the
// STEPS frame.
bool slot_wants_steps(const Buffer& slot);

// The routing envelope a ROUTER socket sees: [client_id, "", ...] from a REQ
// client, [client_id, ...] from a DEALER. Headers are never empty, so the
// empty delimiter is unambiguous.
struct Routed {
  std::size_t envelope_frames = 0;  // 1 or 2 (0: malformed)
  std::span<const Buffer> body;
};
Routed split_envelope(std::span<const Buffer> frames);

}  // namespace acheron::wire::charon
