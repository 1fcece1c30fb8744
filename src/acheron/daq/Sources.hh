// Data sources of hp_io (spec 4.6 and 5.5): Hashpipe's unix-socket stream,
// filesystem polling of the active run directory, and the named-pipe signal.
// Each runs one thread and hands complete frames to a sink; stop() (and the
// destructor) end it within a fraction of a second.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acheron/daq/Config.hh"
#include "acheron/daq/ImageStore.hh"

namespace acheron::daq {

using FrameSink = std::function<PushResult(RawFrame)>;

class Source {
 public:
  virtual ~Source() = default;
  virtual void stop() = 0;
  virtual std::string_view name() const = 0;
};

// Reads the newest complete frame of a PFF file, learning (and re-learning
// on mismatch) the header length. Keeps per-file state between calls.
class PffTail final {
 public:
  // The newest complete frame if the file holds one newer than the last
  // returned; nullopt otherwise (incomplete, unchanged or malformed).
  std::optional<RawFrame> newest(const std::filesystem::path& path, wire::pff::Product product,
                                 std::uint32_t module_id);
  void forget(const std::filesystem::path& path) { files_.erase(path.string()); }

 private:
  struct State {
    std::optional<wire::pff::Layout> layout;
    std::int64_t last_index = -1;
  };
  std::map<std::string, State> files_;
};

// One listening SOCK_STREAM socket per data product; records are a 2-byte
// big-endian module id followed by one PFF frame. A connection whose record
// has begun but makes no progress for `read_timeout` seconds is closed (the
// partial record is dropped, the producer reconnects); a connection idle
// between records stays open however long (Hashpipe sends nothing while no
// frames arrive).
class UdsSource final : public Source {
 public:
  // Throws SetupError when no socket could be created.
  UdsSource(const UdsConfig& config, FrameSink sink);
  ~UdsSource() override;
  void stop() override;
  std::string_view name() const override { return "uds"; }
  std::vector<std::string> socket_paths() const;

 private:
  struct Listener {
    wire::pff::Product product;
    std::string path;
    int fd = -1;
  };
  struct Connection {
    wire::pff::Product product;
    int fd = -1;
    std::string buffer;
    std::size_t header_bytes = 0;  // learned from the first record
    std::uint32_t frame_counter = 0;
    std::chrono::steady_clock::time_point last_progress{};  // last bytes received
  };
  void run();
  // Publishes the complete records of c.buffer; more_pending: the socket
  // (or another connection) has more data right away. False: close the
  // connection.
  bool drain(Connection& c, bool more_pending);

  FrameSink sink_;
  double read_timeout_;
  std::vector<Listener> listeners_;
  std::vector<Connection> connections_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Polls the newest obs_* run directory of every module_<N> under data_dir
// (or data_dir itself, recursively, when it has no module_<N> folders) and
// forwards the newest complete frame of every .pff file that grew.
//
// First sight: a file seen without a complete frame yet (the DAQ has just
// created it) is looked at every 0.25 s for up to `first_sight_wait`
// seconds, so its first frame does not wait a whole (possibly long) poll
// interval; after that it is checked at the regular interval like the rest.
class FsPollSource final : public Source {
 public:
  FsPollSource(std::filesystem::path data_dir, double interval_s, FrameSink sink,
               double first_sight_wait_s = 2.0);
  ~FsPollSource() override;
  void stop() override;
  std::string_view name() const override { return "filesystem_poll"; }

 private:
  void run();
  // Forwards the newest frame of `path` if it grew; true if a frame went out.
  bool visit(const std::filesystem::path& path, std::chrono::steady_clock::time_point now);
  std::filesystem::path data_dir_;
  double interval_s_;
  double first_sight_wait_s_;
  FrameSink sink_;
  PffTail tail_;
  std::map<std::string, std::uintmax_t> sizes_;
  std::map<std::string, std::chrono::steady_clock::time_point> first_sight_;  // path -> give up
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Watches <run_dir>/<pipe_name> FIFOs; each 10-byte message names a data
// product whose newest frame (highest seqno file) is then forwarded.
class FsPipeSource final : public Source {
 public:
  FsPipeSource(std::filesystem::path data_dir, std::string pipe_name, FrameSink sink);
  ~FsPipeSource() override;
  void stop() override;
  std::string_view name() const override { return "filesystem_pipe"; }

 private:
  void run();
  void on_signal(const std::filesystem::path& run_dir, std::string_view dp);
  std::filesystem::path data_dir_;
  std::string pipe_name_;
  FrameSink sink_;
  PffTail tail_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The active run directories under data_dir: the newest obs_* (by mtime) of
// each module_<N> folder; data_dir itself when there is none.
std::vector<std::filesystem::path> active_run_dirs(const std::filesystem::path& data_dir);

}  // namespace acheron::daq
