#include "acheron/wire/Xos.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace acheron::wire::xos {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}
bool is_blank(char c) {
  return c == ' ' || c == '\0';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

template <class T>
Result<T> fail(std::string message) {
  return Result<T>::failure(StatusCode::invalid_argument, std::move(message));
}

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

std::string_view to_string(Protocol p) {
  return p == Protocol::v1 ? "xos1" : "xos2";
}

std::string_view to_string(DeviceType t) {
  switch (t) {
    case DeviceType::real_motor:
      return "real_motor";
    case DeviceType::pseudo_motor:
      return "pseudo_motor";
    case DeviceType::shutter:
      return "shutter";
    case DeviceType::ion_chamber:
      return "ion_chamber";
    case DeviceType::encoder:
      return "encoder";
    case DeviceType::string:
      return "string";
    case DeviceType::operation:
      return "operation";
    case DeviceType::object:
      return "object";
  }
  return "unknown";
}

// ---------------------------------------------------------------- decoding

bool looks_like_v2_header(std::string_view head) {
  for (char c : head) {
    if (is_blank(c)) continue;
    return is_digit(c);
  }
  return false;
}

Result<V2Header> parse_v2_header(std::string_view header, const Limits& limits) {
  std::vector<std::string_view> numbers;
  std::size_t i = 0;
  while (i < header.size()) {
    const char c = header[i];
    if (is_blank(c) || c == '\t') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < header.size() && !is_blank(header[j]) && header[j] != '\t') ++j;
    numbers.push_back(header.substr(i, j - i));
    i = j;
  }
  if (numbers.empty() || numbers.size() > 2) {
    return fail<V2Header>("xos2 header needs one or two sizes, found " +
                          std::to_string(numbers.size()) + " fields");
  }
  std::size_t values[2] = {0, 0};
  for (std::size_t k = 0; k < numbers.size(); ++k) {
    const auto n = numbers[k];
    if (n.size() > 15 || !std::all_of(n.begin(), n.end(), is_digit)) {
      return fail<V2Header>("xos2 header field '" + std::string(n.substr(0, 20)) +
                            "' is not a non-negative decimal size");
    }
    std::size_t v = 0;
    for (char c : n) v = v * 10 + static_cast<std::size_t>(c - '0');
    values[k] = v;
  }
  if (values[0] > limits.max_text) {
    return fail<V2Header>("xos2 text size " + std::to_string(values[0]) + " exceeds the limit " +
                          std::to_string(limits.max_text));
  }
  if (values[1] > limits.max_binary) {
    return fail<V2Header>("xos2 binary size " + std::to_string(values[1]) + " exceeds the limit " +
                          std::to_string(limits.max_binary));
  }
  return V2Header{values[0], values[1]};
}

std::string_view clean_text(std::string_view raw) {
  if (auto nul = raw.find('\0'); nul != std::string_view::npos) raw = raw.substr(0, nul);
  while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
  return raw;
}

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    std::size_t j = i;
    while (j < text.size() && !is_space(text[j])) ++j;
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

void StreamDecoder::feed(const char* data, std::size_t size) {
  if (failed_ || size == 0) return;
  buf_.append(data, size);
}

void StreamDecoder::reset() {
  buf_.clear();
  pos_ = 0;
  skip_binary_ = 0;
  pending_.reset();
  failed_ = false;
  error_.clear();
}

void StreamDecoder::compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

Result<std::optional<Frame>> StreamDecoder::next() {
  using R = Result<std::optional<Frame>>;
  if (failed_) return R::failure(StatusCode::invalid_argument, error_);
  if (skip_binary_ > 0) {
    const std::size_t n = std::min(skip_binary_, buf_.size() - pos_);
    pos_ += n;
    skip_binary_ -= n;
    compact();
    if (skip_binary_ > 0) return std::optional<Frame>();
    auto f = std::move(pending_);
    pending_.reset();
    return f;
  }
  const std::size_t avail = buf_.size() - pos_;
  if (avail < kV2HeaderSize) return std::optional<Frame>();
  const std::string_view head(buf_.data() + pos_, kV2HeaderSize);
  if (looks_like_v2_header(head)) {
    auto hdr = parse_v2_header(head, limits_);
    if (!hdr) {
      failed_ = true;
      error_ = hdr.error().message;
      return R::failure(StatusCode::invalid_argument, error_);
    }
    if (avail < kV2HeaderSize + hdr->text_size) return std::optional<Frame>();
    Frame f;
    f.protocol = Protocol::v2;
    f.text = std::string(
        clean_text(std::string_view(buf_.data() + pos_ + kV2HeaderSize, hdr->text_size)));
    f.binary_size = hdr->binary_size;
    pos_ += kV2HeaderSize + hdr->text_size;
    if (hdr->binary_size > 0) {
      skip_binary_ = hdr->binary_size;
      pending_ = std::move(f);
      return next();
    }
    compact();
    return std::optional<Frame>(std::move(f));
  }
  if (avail < kV1FrameSize) return std::optional<Frame>();
  Frame f;
  f.protocol = Protocol::v1;
  f.text = std::string(clean_text(std::string_view(buf_.data() + pos_, kV1FrameSize)));
  pos_ += kV1FrameSize;
  compact();
  return std::optional<Frame>(std::move(f));
}

Result<Frame> decode_one(std::string_view bytes, const Limits& limits) {
  StreamDecoder d(limits);
  d.feed(bytes);
  auto r = d.next();
  if (!r) return r.error();
  if (!*r) return fail<Frame>("incomplete xos frame (" + std::to_string(bytes.size()) + " bytes)");
  if (d.buffered() != 0) {
    return fail<Frame>(std::to_string(d.buffered()) + " bytes follow the xos frame");
  }
  return std::move(**r);
}

// ---------------------------------------------------------------- encoding

std::string join(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) {
    for (const auto& piece : tokenize(t)) {
      if (!out.empty()) out += ' ';
      out += piece;
    }
  }
  return out;
}

std::string normalize(std::string_view text) {
  // NUL would end the message early on the receiving side: treat it as a space.
  std::string copy(text);
  std::replace(copy.begin(), copy.end(), '\0', ' ');
  return join(tokenize(copy));
}

Result<std::string> encode_v1(std::string_view text) {
  std::string t = normalize(text);
  if (t.size() > kV1MaxText) {
    return fail<std::string>("xos1 message of " + std::to_string(t.size()) +
                             " bytes exceeds 199 (" + t.substr(0, 40) + "...)");
  }
  t.resize(kV1FrameSize, '\0');
  return t;
}

V1Fit fit_v1(std::string_view text) {
  V1Fit fit;
  fit.text = normalize(text);
  fit.original_size = fit.text.size();
  if (fit.text.size() <= kV1MaxText) return fit;
  fit.truncated = true;
  // normalize() leaves single spaces between tokens: cut at the last one that
  // keeps the text within 199 bytes.
  const auto space = fit.text.rfind(' ', kV1MaxText);
  fit.text.resize(space == std::string::npos || space == 0 ? kV1MaxText : space);
  return fit;
}

std::string encode_v2(std::string_view text) {
  const std::string t = normalize(text);
  std::string out = fmt::format("{:12d} {:12d} ", t.size() + 1, 0);
  out += t;
  out += '\0';
  return out;
}

Result<std::string> encode(Protocol protocol, std::string_view text) {
  if (protocol == Protocol::v1) return encode_v1(text);
  return encode_v2(text);
}

std::string encode_v2_as(SenderVariant variant, std::string_view text) {
  const std::string t(text);  // as given: other senders do not normalise
  std::string out;
  switch (variant) {
    case SenderVariant::xos_c:
      out = fmt::format("{:12d} {:12d} ", t.size() + 1, 0);
      out += t;
      out += '\0';
      return out;
    case SenderVariant::mx:
      out = fmt::format("{:12d}{:13d}", t.size() + 1, 0);
      out += '\0';
      out += t;
      out += '\0';
      return out;
    case SenderVariant::pydhsfw:
      out = fmt::format("{:12d}{:13d} ", t.size() + 2, 0);
      out += t;
      out += " ";
      out += '\0';
      return out;
    case SenderVariant::tcl:
      out = fmt::format("{:12d} {:12d} ", t.size(), 0);
      out += t;
      return out;
    case SenderVariant::java:
      out = fmt::format("{} 0", t.size());
      out.resize(kV2HeaderSize, '\0');
      out += t;
      return out;
  }
  return encode_v2(t);
}

std::string format_motor(double v) {
  return fmt::format("{:.6f}", v);
}
std::string format_loop(double v) {
  return fmt::format("{:.5f}", v);
}

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
