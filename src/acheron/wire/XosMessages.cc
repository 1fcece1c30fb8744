// xos messages: parsing DCSS-to-DHS (stoh) messages and formatting
// DHS-to-DCSS (htos) ones.
#include "acheron/wire/Xos.hh"
#include "acheron/wire/XosInternal.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace acheron::wire::xos {
namespace {

std::optional<double> to_double(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Integers accept a decimal point ("325000.0") as Tcl senders may print one.
std::optional<long> to_long(const std::string& s) {
  auto d = to_double(s);
  if (!d || std::fabs(*d) > 9.0e15) return std::nullopt;
  return static_cast<long>(std::llround(*d));
}

class Args final {
 public:
  explicit Args(std::vector<std::string> t) : t_(std::move(t)) {}
  std::size_t size() const { return t_.size() - 1; }  // arguments after the command
  const std::string& command() const { return t_[0]; }
  const std::string& at(std::size_t i) const { return t_[i + 1]; }
  bool has(std::size_t i) const { return i + 1 < t_.size(); }
  std::vector<std::string> rest(std::size_t from) const {
    if (from + 1 >= t_.size()) return {};
    return {t_.begin() + static_cast<std::ptrdiff_t>(from + 1), t_.end()};
  }
  const std::vector<std::string>& tokens() const { return t_; }

 private:
  std::vector<std::string> t_;
};

struct ParseError {
  std::string message;
};

// Typed argument extraction; throws ParseError (caught in parse_stoh).
class Reader final {
 public:
  explicit Reader(const Args& a) : a_(a) {}
  void need(std::size_t n) const {
    if (a_.size() < n) {
      throw ParseError{a_.command() + " needs " + std::to_string(n) + " arguments, got " +
                       std::to_string(a_.size())};
    }
  }
  const std::string& str(std::size_t i) const {
    need(i + 1);
    return a_.at(i);
  }
  double num(std::size_t i) const {
    auto v = to_double(str(i));
    if (!v) bad(i, "a number");
    return *v;
  }
  long integer(std::size_t i) const {
    auto v = to_long(str(i));
    if (!v) bad(i, "an integer");
    return *v;
  }
  [[noreturn]] void bad(std::size_t i, const char* what) const {
    throw ParseError{a_.command() + " argument " + std::to_string(i + 1) + " '" + a_.at(i) +
                     "' is not " + what};
  }

 private:
  const Args& a_;
};

std::optional<DeviceType> device_type(std::string_view s) {
  if (s == "real_motor") return DeviceType::real_motor;
  if (s == "pseudo_motor") return DeviceType::pseudo_motor;
  if (s == "shutter") return DeviceType::shutter;
  if (s == "ion_chamber") return DeviceType::ion_chamber;
  if (s == "encoder") return DeviceType::encoder;
  if (s == "string") return DeviceType::string;
  if (s == "operation") return DeviceType::operation;
  if (s == "object") return DeviceType::object;
  return std::nullopt;
}

AbortMode abort_mode(const Args& a, std::size_t i) {
  return a.has(i) && a.at(i) == "soft" ? AbortMode::soft : AbortMode::hard;
}

StohMessage parse_tokens(const Args& a) {
  const std::string& cmd = a.command();
  const Reader r(a);
  constexpr std::string_view reg = "stoh_register_";
  constexpr std::string_view conf = "stoh_configure_";
  if (cmd == "stoc_send_client_type") return SendClientType{};
  if (cmd.starts_with(reg)) {
    auto type = device_type(std::string_view(cmd).substr(reg.size()));
    if (!type) return Unknown{a.tokens()};
    Register m;
    m.type = *type;
    m.name = r.str(0);
    if (*type == DeviceType::shutter) {
      m.shutter_state = r.str(1);
      m.hw_name = a.has(2) ? a.at(2) : m.name;
    } else if (*type == DeviceType::ion_chamber) {
      r.need(5);
      m.hw_name = a.at(1);
      m.counter_channel = a.at(2);
      m.timer = a.at(3);
      m.timer_type = a.at(4);
    } else {
      m.hw_name = a.has(1) ? a.at(1) : m.name;
    }
    return m;
  }
  if (cmd == "stoh_set_motor_dependency" || cmd == "stoh_set_motor_children") {
    MotorRelations m;
    m.children = cmd == "stoh_set_motor_children";
    m.motor = r.str(0);
    m.others = a.rest(1);
    return m;
  }
  if (cmd == "stoh_configure_real_motor") {
    r.need(16);
    ConfigureRealMotor m;
    m.name = a.at(0);
    m.host = a.at(1);
    m.hw_name = a.at(2);
    m.position = r.num(3);
    m.upper_limit = r.num(4);
    m.lower_limit = r.num(5);
    m.scale_factor = r.num(6);
    m.speed = r.integer(7);
    m.acceleration = r.integer(8);
    m.backlash = r.integer(9);
    m.lower_limit_on = static_cast<int>(r.integer(10));
    m.upper_limit_on = static_cast<int>(r.integer(11));
    m.lock_on = static_cast<int>(r.integer(12));
    m.backlash_on = static_cast<int>(r.integer(13));
    m.reverse_on = static_cast<int>(r.integer(14));
    m.status = static_cast<int>(r.integer(15));
    return m;
  }
  if (cmd == "stoh_configure_pseudo_motor") {
    r.need(10);
    ConfigurePseudoMotor m;
    m.name = a.at(0);
    m.host = a.at(1);
    m.hw_name = a.at(2);
    m.position = r.num(3);
    m.upper_limit = r.num(4);
    m.lower_limit = r.num(5);
    m.lower_limit_on = static_cast<int>(r.integer(6));
    m.upper_limit_on = static_cast<int>(r.integer(7));
    m.lock_on = static_cast<int>(r.integer(8));
    m.status = static_cast<int>(r.integer(9));
    return m;
  }
  if (cmd.starts_with(conf)) {
    auto type = device_type(std::string_view(cmd).substr(conf.size()));
    if (!type) return Unknown{a.tokens()};
    ConfigureOther m;
    m.type = *type;
    m.name = r.str(0);
    m.host = a.has(1) ? a.at(1) : std::string();
    m.fields = a.rest(2);
    return m;
  }
  if (cmd == "stoh_start_motor_move") return StartMotorMove{r.str(0), r.num(1)};
  if (cmd == "stoh_abort_motor_move") return AbortMotorMove{r.str(0), abort_mode(a, 1)};
  if (cmd == "stoh_set_motor_position") return SetMotorPosition{r.str(0), r.num(1)};
  if (cmd == "stoh_correct_motor_position") return CorrectMotorPosition{r.str(0), r.num(1)};
  if (cmd == "stoh_start_oscillation") {
    r.need(4);
    StartOscillation m;
    m.motor = a.at(0);
    m.shutter = a.at(1) == "NULL" ? std::string() : a.at(1);
    m.delta = r.num(2);
    m.time = r.num(3);
    m.extra = a.rest(4);
    return m;
  }
  if (cmd == "stoh_start_vector_move") {
    r.need(5);
    return StartVectorMove{a.at(0), a.at(1), r.num(2), r.num(3), r.num(4)};
  }
  if (cmd == "stoh_stop_vector_move") {
    r.need(2);
    return StopVectorMove{a.at(0), a.at(1)};
  }
  if (cmd == "stoh_change_vector_speed") {
    r.need(3);
    return ChangeVectorSpeed{a.at(0), a.at(1), r.num(2)};
  }
  if (cmd == "stoh_set_shutter_state") {
    const auto& state = r.str(1);
    if (state != "open" && state != "closed") r.bad(1, "open or closed");
    return SetShutterState{a.at(0), state == "open"};
  }
  if (cmd == "stoh_read_ion_chambers") {
    r.need(3);
    ReadIonChambers m;
    m.time = r.num(0);
    m.repeat = static_cast<int>(r.integer(1));
    if (m.time < 0) r.bad(0, "a non-negative time");
    m.channels = a.rest(2);
    return m;
  }
  if (cmd == "stoh_get_encoder") return GetEncoder{r.str(0)};
  if (cmd == "stoh_set_encoder") return SetEncoder{r.str(0), r.num(1)};
  if (cmd == "stoh_set_string") return SetString{r.str(0), join(a.rest(1))};
  if (cmd == "stoh_start_operation") {
    r.need(2);
    return StartOperation{a.at(0), a.at(1), a.rest(2)};
  }
  if (cmd == "stoh_stop_operation") {
    return StopOperation{r.str(0), a.has(1) ? a.at(1) : std::string()};
  }
  if (cmd == "stoh_abort_all") return AbortAll{abort_mode(a, 0)};
  return Unknown{a.tokens()};
}

std::string trimmed(std::string_view s) {
  return normalize(s);
}

}  // namespace

// ------------------------------------------------------- DCSS → DHS messages

Result<StohMessage> parse_stoh(std::string_view text) {
  auto tokens = tokenize(text);
  if (tokens.empty()) return fail<StohMessage>("empty xos message");
  try {
    return parse_tokens(Args(std::move(tokens)));
  } catch (const ParseError& e) {
    return fail<StohMessage>(e.message);
  }
}

// ------------------------------------------------------- DHS → DCSS messages

namespace htos {
std::string client_is_hardware(std::string_view name) {
  return trimmed(fmt::format("htos_client_is_hardware {}", name));
}
std::string send_configuration(std::string_view device) {
  return trimmed(fmt::format("htos_send_configuration {}", device));
}
std::string motor_move_started(std::string_view motor, double destination) {
  return trimmed(fmt::format("htos_motor_move_started {} {}", motor, format_motor(destination)));
}
std::string update_motor_position(std::string_view motor, double position,
                                  std::string_view status) {
  return trimmed(
      fmt::format("htos_update_motor_position {} {} {}", motor, format_motor(position), status));
}
std::string motor_move_completed(std::string_view motor, double position, std::string_view status) {
  return trimmed(
      fmt::format("htos_motor_move_completed {} {} {}", motor, format_motor(position), status));
}
std::string limit_hit(std::string_view device) {
  return trimmed(fmt::format("htos_limit_hit {}", device));
}
std::string simulating_device(std::string_view device) {
  return trimmed(fmt::format("htos_simulating_device {}", device));
}
std::string configure_real_motor(const ConfigureRealMotor& m) {
  return trimmed(fmt::format("htos_configure_device {} {} {} {} {} {} {} {} {} {} {} {} {}", m.name,
                             format_motor(m.position), format_motor(m.upper_limit),
                             format_motor(m.lower_limit), format_motor(m.scale_factor), m.speed,
                             m.acceleration, m.backlash, m.lower_limit_on, m.upper_limit_on,
                             m.lock_on, m.backlash_on, m.reverse_on));
}
std::string configure_pseudo_motor(const ConfigurePseudoMotor& m) {
  return trimmed(fmt::format("htos_configure_device {} {} {} {} {} {} {}", m.name,
                             format_motor(m.position), format_motor(m.upper_limit),
                             format_motor(m.lower_limit), m.lower_limit_on, m.upper_limit_on,
                             m.lock_on));
}
std::string report_shutter_state(std::string_view shutter, bool open, std::string_view result) {
  return trimmed(
      fmt::format("htos_report_shutter_state {} {} {}", shutter, open ? "open" : "closed", result));
}
std::string report_ion_chambers(double time,
                                const std::vector<std::pair<std::string, double>>& counts) {
  std::string out = fmt::format("htos_report_ion_chambers {}", format_motor(time));
  for (const auto& [ch, n] : counts) out += fmt::format(" {} {}", ch, format_motor(n));
  return trimmed(out);
}
std::string report_ion_chambers_failed(const std::vector<std::string>& channels,
                                       std::string_view reason) {
  std::string out = "htos_report_ion_chambers 0";
  for (const auto& ch : channels) out += " " + ch;
  out += " ";
  out += reason;
  return trimmed(out);
}
std::string get_encoder_completed(std::string_view name, double position, std::string_view status) {
  return trimmed(
      fmt::format("htos_get_encoder_completed {} {} {}", name, format_motor(position), status));
}
std::string set_encoder_completed(std::string_view name, double position, std::string_view status) {
  return trimmed(
      fmt::format("htos_set_encoder_completed {} {} {}", name, format_motor(position), status));
}
std::string set_string_completed(std::string_view name, std::string_view status,
                                 std::string_view contents) {
  return trimmed(fmt::format("htos_set_string_completed {} {} {}", name, status, contents));
}
std::string operation_update(std::string_view op, std::string_view handle, std::string_view args) {
  return trimmed(fmt::format("htos_operation_update {} {} {}", op, handle, args));
}
std::string operation_completed(std::string_view op, std::string_view handle,
                                std::string_view status, std::string_view args) {
  return trimmed(fmt::format("htos_operation_completed {} {} {} {}", op, handle, status, args));
}
std::string note(std::string_view text) {
  return trimmed(fmt::format("htos_note {}", text));
}
std::string log(std::string_view severity, std::string_view source, std::string_view text) {
  return trimmed(fmt::format("htos_log {} {} {}", severity, source, text));
}
}  // namespace htos

}  // namespace acheron::wire::xos
