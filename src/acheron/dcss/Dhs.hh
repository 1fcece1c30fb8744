// The DHS core (dcss-xos.md §3–§7): a typed device registry filled from the
// DCSS registration burst, simulated motors, shutters, ion chambers, encoders
// and strings, and operations run by handlers on worker threads. Policy only:
// it consumes message texts and queues htos_ replies in an Outbox; the
// Session connects it to a socket. handle() never blocks on a handler.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/core/ThreadPool.hh"
#include "acheron/dcss/Operation.hh"
#include "acheron/dcss/Outbox.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {

// Simulation settings of one motor (the DHS configuration file's [motors.NAME]).
struct MotorSettings {
  // Units per second; 0: from DCSS's configuration (speed / scaleFactor) for
  // real motors, one tick for pseudo motors.
  double speed = 0;
  // Simulated hardware limit switches (cw = upper, ccw = lower).
  double hw_lower = -std::numeric_limits<double>::infinity();
  double hw_upper = std::numeric_limits<double>::infinity();
};

struct DhsOptions {
  std::string name = "simDHS";                           // the type-3 row in the DCSS database
  std::size_t workers = 8;                               // threads running operation handlers
  Duration motor_tick = std::chrono::milliseconds(100);  // simdhs update period
  std::map<std::string, MotorSettings> motors;
  std::map<std::string, double> ion_chamber_rates;  // counts per second by chamber name
  double default_counts_per_s = 10000;
  // Shortest integration time of an iterative reading (repeat = 1).
  double min_repeat_time_s = 0.01;
};

// A registered device as the status page lists it.
struct DeviceView {
  std::string type;  // xos type name: real_motor, shutter, ion_chamber ...
  std::string name;
  std::string state;  // moving, idle, unconfigured, open, closed, registered, ...
  std::string value;  // position, contents, hardware name ...
};

// One operation of the recent-operations log.
struct OperationRecord {
  std::uint64_t epoch = 0;  // connection it ran on
  std::string name, handle, args;
  double started_unix_s = 0;       // wall clock
  double duration_s = 0;           // until completion (0 while running)
  std::string status = "running";  // then the completion status: normal, error, aborted, abandoned
  std::string text;                // the completion's text (truncated)
  TimePoint started{};             // steady clock
};

// Operation figures since start.
struct OperationCounts {
  std::uint64_t messages = 0;  // stoh messages handled
  std::uint64_t started = 0;
  std::map<std::string, std::uint64_t> completed;  // by status
};

class Dhs final {
 public:
  // Operations kept in the log (operation_log()), newest last.
  static constexpr std::size_t kOperationLog = 100;

  using Handler = std::function<void(const OperationPtr&)>;

  explicit Dhs(DhsOptions options, std::shared_ptr<Outbox> outbox = nullptr);
  ~Dhs();
  Dhs(const Dhs&) = delete;
  Dhs& operator=(const Dhs&) = delete;

  const DhsOptions& options() const noexcept { return options_; }
  const std::shared_ptr<Outbox>& outbox() const noexcept { return outbox_; }

  // Registers the handler of an operation. A handler runs on a worker thread;
  // it may complete the operation before returning or keep the pointer and
  // complete it later from another thread. An exception completes it
  // `error <message>`. Operations without a handler complete `error not_implemented`.
  void add_operation(const std::string& name, Handler handler);

  // Connection life cycle (called by the Session).
  void connected(std::uint64_t epoch);
  // Drops every operation (never reported again), every registration, and
  // stops motion.
  void disconnected();
  // One message text from DCSS. Quick: handlers run elsewhere.
  void handle(std::string_view text);

  // Aborts and abandons all work and joins the threads (the destructor does it).
  void shutdown();

  // Queues an htos_ message on the current connection (htos_note, htos_log ...).
  bool send(std::string text);

  // ------------------------------------------------------------ introspection
  struct MotorView {
    std::string name;
    bool pseudo = false;
    bool configured = false;
    bool moving = false;
    double position = 0, upper_limit = 0, lower_limit = 0;
  };
  std::optional<MotorView> motor(const std::string& name) const;
  std::optional<bool> shutter_open(const std::string& name) const;
  std::optional<std::string> string_contents(const std::string& name) const;
  std::optional<double> encoder_position(const std::string& name) const;
  std::vector<std::string> registered(wire::xos::DeviceType type) const;
  std::size_t active_operations() const;
  std::uint64_t epoch() const;
  bool online() const;
  // Every registered device, by type then name.
  std::vector<DeviceView> devices() const;
  std::vector<OperationRecord> operation_log() const;
  OperationCounts operation_counts() const;
  // Called with each operation's record when it completes (on the
  // completing thread). Null: none. Set before connecting.
  void set_operation_observer(std::function<void(const OperationRecord&)> observer);

 private:
  struct Motor {
    std::string name, hw_name;
    bool pseudo = false;
    bool configured = false;
    wire::xos::ConfigureRealMotor config;  // pseudo motors use the shared fields
    MotorSettings settings;
    std::vector<std::string> dependencies, children;
    // Motion.
    bool moving = false;
    double target = 0;        // of the current leg
    double final_target = 0;  // after a backlash overshoot
    double velocity = 0;      // units per second, > 0
    std::optional<wire::xos::AbortMode> abort;
    std::string oscillation_shutter;  // closed when the move ends
  };
  struct Shutter {
    bool open = false;
  };
  struct IonChamber {
    std::string hw_name, channel, timer, timer_type;
  };
  struct Timed {
    TimePoint when;
    std::function<void()> fn;
  };

  void on_message(const wire::xos::StohMessage& m);
  void on_register(const wire::xos::Register& m);
  void on_start_operation(const wire::xos::StartOperation& m);
  void on_stop_operation(const wire::xos::StopOperation& m);
  void on_abort_all(wire::xos::AbortMode mode);
  void on_start_move(const wire::xos::StartMotorMove& m);
  void on_oscillation(const wire::xos::StartOscillation& m);
  void on_vector_move(const wire::xos::StartVectorMove& m);
  void on_read_ion_chambers(const wire::xos::ReadIonChambers& m);
  // One integration of `time` s over `channels`; series > 0: repeat while it is
  // still the series of every channel (ion_series_).
  void schedule_ion_reading_locked(std::vector<std::string> channels, double time,
                                   std::uint64_t series);

  // With mutex_ held.
  void send_locked(std::string text);
  double max_speed(const Motor& m) const;
  void start_leg(Motor& m, double destination, double velocity);
  void tick_locked(double dt_s);
  void finish_locked(Motor& m, std::string_view status);
  void report_aborts_locked();
  void schedule_locked(Duration delay, std::function<void()> fn);
  void ticker();
  void reap_operations_locked();

  DhsOptions options_;
  std::shared_ptr<Outbox> outbox_;
  std::map<std::string, Handler> handlers_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t epoch_ = 0;
  bool online_ = false;
  bool stopping_ = false;
  std::map<std::string, Motor> motors_;
  std::map<std::string, Shutter> shutters_;
  std::map<std::string, IonChamber> ion_chambers_;
  // Chambers read iteratively (repeat = 1) and the series reading them.
  std::map<std::string, std::uint64_t> ion_series_;
  std::uint64_t next_ion_series_ = 0;
  std::map<std::string, double> encoders_;
  std::map<std::string, std::string> strings_;
  std::set<std::string> operations_, objects_;
  std::map<std::pair<std::string, std::string>, std::weak_ptr<Operation>> active_;
  std::vector<Timed> timers_;

  std::unique_ptr<ThreadPool> pool_;
  std::thread ticker_;

  // The operation log, shared with the operations' completion observers
  // (an operation may outlive the Dhs in a handler's hands).
  struct OperationLog {
    mutable std::mutex mutex;
    std::deque<OperationRecord> records;
    OperationCounts counts;
    std::shared_ptr<const std::function<void(const OperationRecord&)>> observer;
  };
  std::shared_ptr<OperationLog> op_log_ = std::make_shared<OperationLog>();
  std::atomic<std::uint64_t> messages_{0};
  void log_operation_start(Operation& op);
};

}  // namespace acheron::dcss
