// A simulated u-blox ZED-F9T behind a real pseudo-terminal, so InitF9t and
// CaptureUblox run without hardware (shared/specs/ublox.md section 8). It
// answers MON-VER and SEC-UNIQID polls, CFG-VALSET (per-layer storage,
// transactions) and CFG-VALGET with ACK/NAK, and emits TIM-TP then
// NAV-TIMEUTC once per period while their output rate is non-zero.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/wire/Ubx.hh"

namespace acheron::gnss {

// Faults on demand, changeable while running.
struct SimFaults {
  bool wrong_model = false;               // MON-VER says MOD=ZED-F9P
  bool nak_all = false;                   // every CFG-VALSET is NAKed
  std::set<std::uint32_t> nak_keys;       // a CFG-VALSET holding one of these is NAKed
  std::set<std::uint32_t> mismatch_keys;  // CFG-VALGET reports these with the low bit flipped
  bool silent = false;                    // answers nothing, emits nothing
  bool corrupt_checksums = false;         // every periodic frame has a bad checksum
  bool nmea = false;                      // an NMEA sentence before each periodic group
};

struct SimOptions {
  std::string unique_id = "DF03A241BC";  // as printed (SEC-UNIQID sends it byte-reversed)
  std::string model = "ZED-F9T";
  Duration period = std::chrono::seconds(1);  // one simulated second of output
  bool strict_keys = true;                    // NAK keys outside the key table
  std::string link;                           // if set, a symlink to the pty slave at this path
  std::uint64_t seed = 1;
  // Frames to emit instead of generated timing messages: per period, the
  // frames up to and including the next NAV-TIMEUTC.
  std::vector<wire::ubx::Bytes> replay;
  SimFaults faults;
};

struct SimStats {
  std::uint64_t valset = 0, valget = 0, acks = 0, naks = 0, polls = 0, periodic = 0;
};

// Frames of a capture file in PANOSETI's save format: one JSON object per
// line, {"identity": NAME, "payload_b64": base64 of the complete frame}.
// Throws SetupError naming the line for anything malformed.
std::vector<wire::ubx::Bytes> load_capture_jsonl(const std::string& path);

class SimulatedF9t final {
 public:
  // Creates the pseudo-terminal and starts answering. Throws SetupError.
  explicit SimulatedF9t(SimOptions options = {});
  ~SimulatedF9t();
  SimulatedF9t(const SimulatedF9t&) = delete;
  SimulatedF9t& operator=(const SimulatedF9t&) = delete;

  // What a client opens: the link if one was asked for, else /dev/pts/N.
  const std::string& device_path() const noexcept { return device_path_; }
  const std::string& pty_path() const noexcept { return pty_path_; }

  void set_faults(const SimFaults& faults);
  // Closes the pseudo-terminal as if the USB cable were pulled: a reader of
  // the slave sees a hang-up. The simulator stays stopped.
  void unplug();
  void stop();
  bool running() const noexcept { return running_; }

  // The value stored for key on a CFG-VALSET layer bit (RAM 1, BBR 2,
  // FLASH 4), nullopt if never written there.
  std::optional<wire::ubx::Bytes> stored(std::uint8_t layer_bit, std::uint32_t key) const;
  SimStats stats() const;

 private:
  void run();
  void handle(const wire::ubx::Frame& frame);
  void handle_valset(const wire::ubx::Frame& frame);
  void handle_valget(const wire::ubx::Frame& frame);
  void emit_periodic();
  bool output_enabled(const char* usb_key, const char* uart_key) const;
  std::optional<wire::ubx::Bytes> lookup(std::uint8_t poll_layer, std::uint32_t key) const;
  void send(const wire::ubx::Bytes& frame);
  void close_fds();

  SimOptions options_;
  std::string pty_path_, device_path_;
  int master_ = -1, slave_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable std::mutex mutex_;
  SimFaults faults_;
  std::map<std::uint32_t, wire::ubx::Bytes> ram_, bbr_, flash_;
  std::vector<wire::ubx::CfgItem> txn_items_;  // buffered by a transaction
  std::uint8_t txn_layers_ = 0;
  bool txn_open_ = false;
  SimStats stats_;

  // Simulated time: whole UTC seconds of the current epoch.
  std::int64_t utc_sec_ = 0;
  std::int32_t nano_ = 0;
  std::uint64_t rng_ = 0;
  std::size_t replay_pos_ = 0;
};

}  // namespace acheron::gnss
