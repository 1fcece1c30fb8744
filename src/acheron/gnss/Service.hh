// The UbloxControl service without its gRPC front: InitF9t's sequence
// (shared/specs/ublox.md section 3) and capture of the receiver's messages
// into a topic keyed by message identity, whose latest-value cache gives
// every new CaptureUblox client the latest message of each type first.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/core/Error.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Device.hh"
#include "acheron/hub/Topic.hh"

namespace acheron::gnss {

struct ServiceOptions {
  std::size_t max_read_queue_size = 200;  // per capture client; when full the oldest is dropped
  Duration mon_ver_timeout = std::chrono::milliseconds(2500);
  Duration uniqid_timeout = std::chrono::seconds(3);
  Duration ack_timeout = std::chrono::milliseconds(2500);
  Duration valget_timeout = std::chrono::seconds(3);
  Duration valget_quiet = std::chrono::milliseconds(300);
  Duration signal_pause = std::chrono::milliseconds(300);  // after the signal group: GNSS restarts
  std::string expected_model_prefix = "ZED-F9T";
  // The device paths an InitF9t may name (shell globs, fnmatch(3) without
  // FNM_PATHNAME). A client names the receiver's serial port; it must not be
  // able to make the server open, or probe for, any other file. Checked on the
  // lexically normal absolute path and again after symlinks are resolved.
  std::vector<std::string> allowed_devices = {"/dev/tty*", "/dev/pts/*", "/dev/serial/*"};
};

// True if `path` (lexically normalised, and once more with its symlinks
// resolved when it exists) matches one of the globs.
bool device_allowed(const std::string& path, const std::vector<std::string>& globs);

// How a capture stream ended.
struct StreamEnd {
  StatusCode code = StatusCode::ok;
  std::string message;
};

// One period of reading the receiver, from a successful InitF9t until the
// next InitF9t, shutdown or the loss of the device.
class IoSession final {
 public:
  bool running() const noexcept { return running_; }
  StreamEnd end() const;

 private:
  friend class UbloxService;
  std::atomic<bool> running_{true};
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  StreamEnd end_;
  std::vector<std::weak_ptr<hub::Subscription>> subscriptions_;
  std::thread reader_;
};

struct Capture {
  std::shared_ptr<hub::Subscription> subscription;
  std::shared_ptr<IoSession> session;
};

// An open capture stream, as the status page lists it.
struct CaptureInfo {
  std::string peer;
  std::vector<std::string> patterns;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;  // its queue was full (ublox.md section 5)
  std::size_t queued = 0;
};

struct ServiceStats {
  bool io_running = false;
  // Of the last successful InitF9t.
  std::string device, uid, model;
  std::uint64_t inits_ok = 0, inits_failed = 0;
  std::string last_failure;           // the last failed InitF9t's message
  std::vector<CaptureInfo> captures;  // open capture streams
  // Over every capture stream so far, open ones included.
  std::uint64_t capture_delivered = 0, capture_dropped = 0;
};

// Called for every message read from the receiver, on the reading thread:
// its identity ("TIM-TP"), its parsed fields and the wall clock (ns).
using MessageObserver = std::function<void(const std::string& identity,
                                           const nlohmann::json& parsed, std::int64_t wall_ns)>;

// What a captured sample holds: meta "parsed" (pyubx2-named fields) and one
// uint8 array "frame" (the complete UBX frame); Sample::wall_ns is the time
// the frame was read.
inline constexpr const char* kFrameArray = "frame";

class UbloxService final {
 public:
  explicit UbloxService(ServiceOptions options = {});
  ~UbloxService();
  UbloxService(const UbloxService&) = delete;
  UbloxService& operator=(const UbloxService&) = delete;

  // InitF9t. Returns the success message; throws Failure with the status
  // and message a client gets.
  std::string init(const nlohmann::json& config, bool force);
  // CaptureUblox: patterns are Python regular expressions matched at the
  // start of the identity (re.match); empty means all. Throws
  // Failure(failed_precondition) when no I/O runs, Failure(invalid_argument)
  // for a pattern that does not compile.
  // `peer` names the client on the status page.
  Capture capture(const std::vector<std::string>& patterns, std::string peer = {});
  // Stops reading and closes the port; open captures end with OK.
  void stop(const std::string& why = "F9T I/O stopped");

  bool io_running() const;
  std::size_t active_captures() const;
  ServiceStats stats() const;
  // Replaces the observer (null: none); thread-safe.
  void set_observer(MessageObserver observer);
  hub::Topic& topic() noexcept { return topic_; }
  const ServiceOptions& options() const noexcept { return options_; }

  // One pattern equivalent to Python's re.match against any of patterns
  // (nullopt: no patterns, every identity). Client patterns are compiled by
  // RE2 with a size limit (core/Pattern.hh). Throws Failure(invalid_argument)
  // naming a pattern that does not compile or is too complex.
  static std::optional<Pattern> anchored_pattern(const std::vector<std::string>& patterns);

 private:
  struct CaptureRecord {
    std::shared_ptr<hub::Subscription> subscription;
    std::string peer;
    std::vector<std::string> patterns;
  };
  std::string run_init(const nlohmann::json& config, bool force);
  // Forgets closed captures, adding their figures to the totals (stats_mutex_ held).
  void prune_captures_locked() const;
  void publish(ReceivedFrame&& f);
  void stop_session_locked(StatusCode code, const std::string& why);
  void configure(UbxDevice& device, const F9tConfig& config);
  void reader_loop(std::shared_ptr<IoSession> session, std::unique_ptr<UbxDevice> device);

  ServiceOptions options_;
  hub::Topic topic_;
  std::mutex init_mutex_;  // one InitF9t at a time
  mutable std::mutex session_mutex_;
  std::shared_ptr<IoSession> session_;

  mutable std::mutex stats_mutex_;  // below
  mutable ServiceStats stats_;      // without io_running and captures
  mutable std::vector<CaptureRecord> captures_;
  std::shared_ptr<const MessageObserver> observer_;
};

}  // namespace acheron::gnss
