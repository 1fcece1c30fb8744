// A fake DCSS for tests and the command line (dcss-xos.md §10): listens like
// DCSS's hardware port, runs the handshake with its rules (200-byte prompt,
// 200-byte answer within the deadline, name = second token, rejections for
// unknown names, wrong hosts and duplicates), sends the registration burst in
// each row's protocol level and sender variant, answers
// htos_send_configuration from its database, hands out client.counter
// operation handles, and records every inbound message with checks of the
// operation rules (one completion per handle, no updates after it, silence for
// handles of a dropped connection).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/dcss/Socket.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {

// One device row of the fake database.
struct FakeDevice {
  wire::xos::DeviceType type = wire::xos::DeviceType::operation;
  std::string name;
  std::string dhs;      // the hardware host (DHS name) that owns it
  std::string hw_name;  // defaults to name
  // Registration arguments after "name hwName" (shutter: state first; ion
  // chamber: counterChannel timer timerType).
  std::vector<std::string> register_args;
  // stoh_configure_<type> fields after "name host" (real motor: hwName and 13 values).
  std::vector<std::string> config;
  std::vector<std::string> dependencies, children;

  static FakeDevice operation(std::string name, std::string dhs);
  // position upper lower scale speed(steps/s) ... like stoh_configure_real_motor.
  static FakeDevice real_motor(std::string name, std::string dhs, double position = 0,
                               double upper = 1000, double lower = -1000, double scale = 1000,
                               long speed = 100000, long backlash = 0, int lower_on = 0,
                               int upper_on = 0, int lock_on = 0, int backlash_on = 0);
  static FakeDevice pseudo_motor(std::string name, std::string dhs, double position = 0,
                                 double upper = 1000, double lower = -1000);
  static FakeDevice shutter(std::string name, std::string dhs, bool open = false);
  static FakeDevice ion_chamber(std::string name, std::string dhs, std::string channel = "0");
  static FakeDevice encoder(std::string name, std::string dhs, double position = 0);
  static FakeDevice string(std::string name, std::string dhs, std::string contents = {});
  static FakeDevice object(std::string name, std::string dhs);
};

struct FakeDcssOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: ephemeral
  struct Row {
    std::string name;                // DHS name (type-3 row)
    std::string host = "127.0.0.1";  // allowed peer address; "*" any
    wire::xos::Protocol level = wire::xos::Protocol::v2;
  };
  std::vector<Row> rows;
  std::vector<FakeDevice> devices;
  wire::xos::SenderVariant variant = wire::xos::SenderVariant::xos_c;  // how xos2 is framed
  bool v2_prompt = false;  // frame stoc_send_client_type as xos2 (MX's manager)
  Duration handshake_timeout = std::chrono::milliseconds(1000);
  Duration host_reject_delay = std::chrono::seconds(1);
  Duration duplicate_reject_delay = std::chrono::seconds(3);
  std::string client_id = "1";  // handles are client.counter
};

class FakeDcss final {
 public:
  struct Record {
    TimePoint time;
    std::string dhs;
    std::uint64_t connection = 0;  // 1-based, per accepted DHS connection
    wire::xos::Protocol protocol = wire::xos::Protocol::v2;
    std::string text;
    std::vector<std::string> tokens;
  };
  struct OpRecord {
    std::string operation, handle, dhs;
    std::uint64_t connection = 0;
    std::vector<std::string> updates;  // argument text of each update
    int completions = 0;
    std::string status;  // first completion's status (or no_hw_host_NAME)
    std::string result;  // first completion's arguments after the status
    bool completed() const { return completions > 0 || !status.empty(); }
  };

  explicit FakeDcss(FakeDcssOptions options);
  ~FakeDcss();
  FakeDcss(const FakeDcss&) = delete;
  FakeDcss& operator=(const FakeDcss&) = delete;

  void start();  // listen (again, on the same port after a stop)
  void stop();   // close the listener and every connection
  void restart() {
    stop();
    start();
  }
  std::uint16_t port() const noexcept { return port_; }

  // -------------------------------------------------------------- driving
  bool online(const std::string& dhs) const;
  bool wait_online(const std::string& dhs, Duration timeout, std::uint64_t min_connection = 1);
  // Sends text framed in the DHS's row level (and the configured variant).
  bool send(const std::string& dhs, const std::string& text);
  bool send_raw(const std::string& dhs, const std::string& bytes);
  // stoh_start_operation OP client.counter args...; returns the handle.
  std::string start_operation(const std::string& dhs, const std::string& op,
                              const std::vector<std::string>& args = {});
  void stop_operation(const std::string& dhs, const std::string& op,
                      const std::string& handle = {});
  // stoh_abort_all to every DHS: "hard", "soft" or "" (bare).
  void abort_all(const std::string& mode = "hard");
  void drop(const std::string& dhs);                  // close the connection
  void set_reading(const std::string& dhs, bool on);  // stop reading (fault)
  void refuse_connections(bool on);                   // accept and close at once
  // Called for every inbound message, on the connection's reader thread.
  void on_message(std::function<void(const Record&)> hook);

  // ------------------------------------------------------------ recording
  std::vector<Record> records() const;
  std::vector<Record> records_of(const std::string& command) const;
  std::optional<OpRecord> operation(const std::string& handle) const;
  // Waits for the first completion of `handle`.
  std::optional<OpRecord> wait_completion(const std::string& handle, Duration timeout);
  // Waits until pred(records) holds. pred runs under the fake's lock: it must
  // only look at the records it is given.
  bool wait_for(const std::function<bool(const std::vector<Record>&)>& pred, Duration timeout);
  // Rule violations seen so far (empty = the DHS behaved).
  std::vector<std::string> violations() const;
  // The fake database's view after DHS reports.
  std::optional<double> motor_position(const std::string& motor) const;
  std::optional<bool> shutter_open(const std::string& shutter) const;
  std::optional<std::string> string_value(const std::string& name) const;
  void clear_records();

 private:
  struct Conn;
  void accept_loop();
  void handshake(std::shared_ptr<Conn> c);
  void read_loop(std::shared_ptr<Conn> c);
  void on_inbound(Conn& c, const wire::xos::Frame& f);
  std::string frame(wire::xos::Protocol level, const std::string& text) const;
  bool send_on(Conn& c, const std::string& text);
  std::shared_ptr<Conn> conn(const std::string& dhs) const;
  const FakeDcssOptions::Row* row(const std::string& dhs) const;
  void burst(Conn& c);

  FakeDcssOptions options_;
  std::uint16_t port_ = 0;
  Listener listener_;
  std::thread accept_thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> refuse_{false};

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Conn>> online_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::thread> threads_;
  std::uint64_t connection_counter_ = 0;
  std::uint64_t handle_counter_ = 0;
  std::vector<Record> records_;
  std::map<std::string, OpRecord> ops_;
  std::vector<std::string> violations_;
  std::map<std::string, double> motor_positions_;
  std::map<std::string, bool> shutters_;
  std::map<std::string, std::string> strings_;
  std::function<void(const Record&)> hook_;
};

}  // namespace acheron::dcss
