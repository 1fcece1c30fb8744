#include "acheron/dcss/FakeDcss.hh"

#include <algorithm>

#include "acheron/core/Log.hh"

namespace acheron::dcss {

namespace xos = wire::xos;

namespace {
std::string num(double v) {
  return xos::format_motor(v);
}
bool is_integer_token(const std::string& s) {
  if (s.empty()) return false;
  std::size_t i = s[0] == '-' ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(),
                                     [](char c) { return c >= '0' && c <= '9'; });
}
std::optional<double> to_double(const std::string& s) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}
}  // namespace

// ------------------------------------------------------------------ devices

FakeDevice FakeDevice::operation(std::string name, std::string dhs) {
  return {xos::DeviceType::operation, std::move(name), std::move(dhs)};
}

FakeDevice FakeDevice::real_motor(std::string name, std::string dhs, double position, double upper,
                                  double lower, double scale, long speed, long backlash,
                                  int lower_on, int upper_on, int lock_on, int backlash_on) {
  FakeDevice d{xos::DeviceType::real_motor, name, std::move(dhs)};
  d.config = {name,
              num(position),
              num(upper),
              num(lower),
              num(scale),
              std::to_string(speed),
              "50",
              std::to_string(backlash),
              std::to_string(lower_on),
              std::to_string(upper_on),
              std::to_string(lock_on),
              std::to_string(backlash_on),
              "0",
              "0"};
  return d;
}

FakeDevice FakeDevice::pseudo_motor(std::string name, std::string dhs, double position,
                                    double upper, double lower) {
  FakeDevice d{xos::DeviceType::pseudo_motor, name, std::move(dhs)};
  d.config = {name, num(position), num(upper), num(lower), "0", "0", "0", "0"};
  return d;
}

FakeDevice FakeDevice::shutter(std::string name, std::string dhs, bool open) {
  FakeDevice d{xos::DeviceType::shutter, std::move(name), std::move(dhs)};
  d.config = {open ? "open" : "closed"};
  return d;
}

FakeDevice FakeDevice::ion_chamber(std::string name, std::string dhs, std::string channel) {
  FakeDevice d{xos::DeviceType::ion_chamber, name, std::move(dhs)};
  d.register_args = {channel, "timer0", "clock"};
  d.config = {name, channel, "timer0", "clock"};
  return d;
}

FakeDevice FakeDevice::encoder(std::string name, std::string dhs, double position) {
  FakeDevice d{xos::DeviceType::encoder, std::move(name), std::move(dhs)};
  d.config = {num(position), num(position)};
  return d;
}

FakeDevice FakeDevice::string(std::string name, std::string dhs, std::string contents) {
  FakeDevice d{xos::DeviceType::string, std::move(name), std::move(dhs)};
  d.config = xos::tokenize(contents);
  return d;
}

FakeDevice FakeDevice::object(std::string name, std::string dhs) {
  return {xos::DeviceType::object, std::move(name), std::move(dhs)};
}

// --------------------------------------------------------------- the server

struct FakeDcss::Conn {
  Socket socket;
  std::string dhs;
  std::uint64_t id = 0;
  xos::Protocol level = xos::Protocol::v2;
  std::mutex write_mutex;
  std::atomic<bool> reading{true};
};

FakeDcss::FakeDcss(FakeDcssOptions options) : options_(std::move(options)) {}

FakeDcss::~FakeDcss() {
  stop();
}

void FakeDcss::start() {
  if (running_) return;
  auto l = Listener::listen(options_.host, port_ ? port_ : options_.port);
  if (!l) throw SetupError("fake DCSS: " + l.error().message + " (choose another port)");
  listener_ = std::move(*l);
  port_ = listener_.port();
  running_ = true;
  accept_thread_ = std::thread([this] { accept_loop(); });
}

void FakeDcss::stop() {
  if (!running_.exchange(false)) return;
  {
    std::lock_guard lock(mutex_);
    for (auto& c : conns_) c->socket.shutdown();
  }
  cv_.notify_all();
  if (accept_thread_.joinable()) accept_thread_.join();
  listener_.close();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  std::lock_guard lock(mutex_);
  conns_.clear();
  online_.clear();
}

void FakeDcss::accept_loop() {
  while (running_) {
    Socket s = listener_.accept(std::chrono::milliseconds(100));
    if (!s.valid()) continue;
    if (refuse_) continue;  // closed at once
    auto c = std::make_shared<Conn>();
    c->socket = std::move(s);
    std::lock_guard lock(mutex_);
    conns_.push_back(c);
    threads_.emplace_back([this, c] { handshake(c); });
  }
}

std::string FakeDcss::frame(xos::Protocol level, const std::string& text) const {
  if (level == xos::Protocol::v1) {
    std::string f = text.substr(0, xos::kV1FrameSize);  // DCSS copies at most 200 bytes
    f.resize(xos::kV1FrameSize, '\0');
    return f;
  }
  return xos::encode_v2_as(options_.variant, text);
}

bool FakeDcss::send_on(Conn& c, const std::string& text) {
  std::lock_guard lock(c.write_mutex);
  return c.socket.write_all(frame(c.level, text), std::chrono::seconds(5)) == IoStatus::ok;
}

const FakeDcssOptions::Row* FakeDcss::row(const std::string& dhs) const {
  for (const auto& r : options_.rows) {
    if (r.name == dhs) return &r;
  }
  return nullptr;
}

void FakeDcss::handshake(std::shared_ptr<Conn> c) {
  auto reject_after = [&](Duration d, const std::string& why) {
    log::info("fake DCSS: rejecting a DHS ({})", why);
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, d, [&] { return !running_.load(); });
    c->socket.shutdown();
  };
  const std::string prompt = "stoc_send_client_type";
  const auto bytes = options_.v2_prompt ? xos::encode_v2_as(options_.variant, prompt)
                                        : frame(xos::Protocol::v1, prompt);
  if (c->socket.write_all(bytes, std::chrono::seconds(1)) != IoStatus::ok) return;
  std::string answer(xos::kV1FrameSize, '\0');
  if (c->socket.read_exact(answer.data(), answer.size(), options_.handshake_timeout) !=
      IoStatus::ok) {
    log::info("fake DCSS: no 200-byte answer within the handshake timeout");
    c->socket.shutdown();
    return;
  }
  const auto tokens = xos::tokenize(xos::clean_text(answer));
  const std::string name = tokens.size() >= 2 ? tokens[1] : std::string();  // "%*s %s"
  const auto* r = row(name);
  if (!r) {
    log::info("fake DCSS: unknown hardware name '{}'", name);
    c->socket.shutdown();
    return;
  }
  if (r->host != "*" && c->socket.peer_address() != r->host) {
    reject_after(options_.host_reject_delay, "wrong host " + c->socket.peer_address());
    return;
  }
  bool duplicate = false;
  {
    std::lock_guard lock(mutex_);
    duplicate = online_.contains(name);
    if (!duplicate) {
      c->dhs = name;
      c->level = r->level;
      c->id = ++connection_counter_;
      online_[name] = c;
    }
  }
  if (duplicate) {
    reject_after(options_.duplicate_reject_delay, name + " is already online");
    return;
  }
  cv_.notify_all();
  log::info("fake DCSS: {} online ({}, connection {})", name, xos::to_string(r->level), c->id);
  burst(*c);
  read_loop(c);
}

void FakeDcss::burst(Conn& c) {
  for (const auto& d : options_.devices) {
    if (d.dhs != c.dhs) continue;
    const std::string hw = d.hw_name.empty() ? d.name : d.hw_name;
    std::string text = "stoh_register_" + std::string(xos::to_string(d.type)) + " " + d.name;
    if (d.type == xos::DeviceType::shutter) {
      text += " " + (d.config.empty() ? std::string("closed") : d.config[0]) + " " + hw;
    } else {
      text += " " + hw;
    }
    for (const auto& a : d.register_args) text += " " + a;
    const bool motor =
        d.type == xos::DeviceType::real_motor || d.type == xos::DeviceType::pseudo_motor;
    if (!motor) text += "\n";  // get_registration_string
    send_on(c, text);
  }
  for (const auto& d : options_.devices) {
    if (d.dhs != c.dhs) continue;
    if (!d.dependencies.empty()) {
      send_on(c, "stoh_set_motor_dependency " + d.name + " " + xos::join(d.dependencies));
    }
    if (d.type == xos::DeviceType::pseudo_motor && !d.children.empty()) {
      send_on(c, "stoh_set_motor_children " + d.name + " " + xos::join(d.children));
    }
  }
}

void FakeDcss::read_loop(std::shared_ptr<Conn> c) {
  xos::StreamDecoder decoder;
  std::vector<char> buf(64 * 1024);
  while (running_) {
    if (!c->reading) {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(50));
      continue;
    }
    std::size_t got = 0;
    const auto st =
        c->socket.read_some(buf.data(), buf.size(), &got, std::chrono::milliseconds(100));
    if (st == IoStatus::timeout) continue;
    if (st != IoStatus::ok) break;
    decoder.feed(buf.data(), got);
    while (true) {
      auto f = decoder.next();
      if (!f) {
        std::lock_guard lock(mutex_);
        violations_.push_back("undecodable bytes from " + c->dhs + ": " + f.error().message);
        break;
      }
      if (!*f) break;
      on_inbound(*c, **f);
    }
    if (decoder.failed()) break;
  }
  c->socket.shutdown();
  {
    std::lock_guard lock(mutex_);
    if (auto it = online_.find(c->dhs); it != online_.end() && it->second == c) online_.erase(it);
    // DCSS's engine fails every outstanding operation of the host.
    for (auto& [h, op] : ops_) {
      if (op.connection == c->id && !op.completed()) op.status = "no_hw_host_" + c->dhs;
    }
  }
  cv_.notify_all();
  log::info("fake DCSS: {} offline (connection {})", c->dhs, c->id);
}

void FakeDcss::on_inbound(Conn& c, const xos::Frame& f) {
  Record r{Clock::now(), c.dhs, c.id, f.protocol, f.text, xos::tokenize(f.text)};
  if (r.tokens.empty()) return;
  const auto& t = r.tokens;
  const std::string& cmd = t[0];
  std::optional<std::string> reply;
  std::function<void(const Record&)> hook;
  {
    std::lock_guard lock(mutex_);
    records_.push_back(r);
    hook = hook_;
    auto motor_pos = [&](std::size_t i) {
      if (t.size() > i) {
        if (auto v = to_double(t[i])) motor_positions_[t[1]] = *v;
      }
    };
    if (cmd == "htos_send_configuration" && t.size() >= 2) {
      for (const auto& d : options_.devices) {
        if (d.name != t[1]) continue;
        reply =
            "stoh_configure_" + std::string(xos::to_string(d.type)) + " " + d.name + " " + d.dhs;
        for (const auto& field : d.config) *reply += " " + field;
        if (d.type == xos::DeviceType::real_motor || d.type == xos::DeviceType::pseudo_motor) {
          if (!motor_positions_.contains(d.name) && d.config.size() > 1) {
            if (auto v = to_double(d.config[1])) motor_positions_[d.name] = *v;
          }
        }
      }
    } else if (cmd == "htos_motor_move_started") {
      // destination, not position
    } else if (cmd == "htos_update_motor_position" || cmd == "htos_motor_move_completed") {
      motor_pos(2);
    } else if (cmd == "htos_configure_device" && t.size() >= 3) {
      motor_pos(2);
      if (t.size() == 14) {  // real motor: speed, acceleration, backlash must be integers
        for (std::size_t i : {6u, 7u, 8u}) {
          if (!is_integer_token(t[i])) {
            violations_.push_back("htos_configure_device " + t[1] + ": field " +
                                  std::to_string(i - 1) + " '" + t[i] + "' is not an integer");
          }
        }
      }
    } else if (cmd == "htos_report_shutter_state" && t.size() >= 3) {
      if (t.size() == 3 || t[3] == "normal") shutters_[t[1]] = t[2] != "closed";
    } else if (cmd == "htos_set_string_completed" && t.size() >= 3) {
      if (t[2] == "normal") {
        strings_[t[1]] = xos::join(std::vector<std::string>(t.begin() + 3, t.end()));
      }
    } else if ((cmd == "htos_operation_update" || cmd == "htos_operation_completed") &&
               t.size() >= 3) {
      const bool completion = cmd == "htos_operation_completed";
      auto it = ops_.find(t[2]);
      if (it == ops_.end()) {
        violations_.push_back(cmd + " for unknown handle " + t[2]);
      } else if (it->second.connection != c.id) {
        violations_.push_back(cmd + " " + t[1] + " " + t[2] +
                              " arrived on a later connection than its start");
      } else if (it->second.completions > 0) {
        violations_.push_back(cmd + " " + t[1] + " " + t[2] + " after its completion");
        if (completion) ++it->second.completions;
      } else if (it->second.operation != t[1]) {
        violations_.push_back(cmd + " handle " + t[2] + " names " + t[1] + ", started as " +
                              it->second.operation);
      } else if (completion) {
        it->second.completions = 1;
        it->second.status = t.size() > 3 ? t[3] : std::string();
        it->second.result = xos::join(
            std::vector<std::string>(t.begin() + std::min<std::size_t>(4, t.size()), t.end()));
      } else {
        it->second.updates.push_back(xos::join(std::vector<std::string>(t.begin() + 3, t.end())));
      }
    } else if (!cmd.starts_with("htos_")) {
      violations_.push_back("non-htos_ message from " + c.dhs + ": " + f.text);
    }
  }
  cv_.notify_all();
  if (reply) send_on(c, *reply);
  if (hook) hook(r);
}

std::shared_ptr<FakeDcss::Conn> FakeDcss::conn(const std::string& dhs) const {
  std::lock_guard lock(mutex_);
  auto it = online_.find(dhs);
  return it == online_.end() ? nullptr : it->second;
}

bool FakeDcss::online(const std::string& dhs) const {
  return conn(dhs) != nullptr;
}

bool FakeDcss::wait_online(const std::string& dhs, Duration timeout, std::uint64_t min_connection) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = online_.find(dhs);
    return it != online_.end() && it->second->id >= min_connection;
  });
}

bool FakeDcss::send(const std::string& dhs, const std::string& text) {
  auto c = conn(dhs);
  return c && send_on(*c, text);
}

bool FakeDcss::send_raw(const std::string& dhs, const std::string& bytes) {
  auto c = conn(dhs);
  if (!c) return false;
  std::lock_guard lock(c->write_mutex);
  return c->socket.write_all(bytes, std::chrono::seconds(5)) == IoStatus::ok;
}

std::string FakeDcss::start_operation(const std::string& dhs, const std::string& op,
                                      const std::vector<std::string>& args) {
  auto c = conn(dhs);
  std::string handle;
  {
    std::lock_guard lock(mutex_);
    handle = options_.client_id + "." + std::to_string(++handle_counter_);
    OpRecord rec{op, handle, dhs, c ? c->id : 0};
    if (!c) rec.status = "no_hw_host_" + dhs;
    ops_[handle] = rec;
  }
  if (c) {
    std::string text = "stoh_start_operation " + op + " " + handle;
    for (const auto& a : args) text += " " + a;
    send_on(*c, text);
  }
  return handle;
}

void FakeDcss::stop_operation(const std::string& dhs, const std::string& op,
                              const std::string& handle) {
  send(dhs, "stoh_stop_operation " + op + (handle.empty() ? "" : " " + handle));
}

void FakeDcss::abort_all(const std::string& mode) {
  std::vector<std::shared_ptr<Conn>> conns;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, c] : online_) conns.push_back(c);
  }
  for (auto& c : conns) send_on(*c, mode.empty() ? "stoh_abort_all" : "stoh_abort_all " + mode);
}

void FakeDcss::drop(const std::string& dhs) {
  if (auto c = conn(dhs)) c->socket.shutdown();
}

void FakeDcss::set_reading(const std::string& dhs, bool on) {
  if (auto c = conn(dhs)) c->reading = on;
}

void FakeDcss::refuse_connections(bool on) {
  refuse_ = on;
}

void FakeDcss::on_message(std::function<void(const Record&)> hook) {
  std::lock_guard lock(mutex_);
  hook_ = std::move(hook);
}

std::vector<FakeDcss::Record> FakeDcss::records() const {
  std::lock_guard lock(mutex_);
  return records_;
}

std::vector<FakeDcss::Record> FakeDcss::records_of(const std::string& command) const {
  std::lock_guard lock(mutex_);
  std::vector<Record> out;
  for (const auto& r : records_) {
    if (r.tokens[0] == command) out.push_back(r);
  }
  return out;
}

std::optional<FakeDcss::OpRecord> FakeDcss::operation(const std::string& handle) const {
  std::lock_guard lock(mutex_);
  auto it = ops_.find(handle);
  if (it == ops_.end()) return std::nullopt;
  return it->second;
}

std::optional<FakeDcss::OpRecord> FakeDcss::wait_completion(const std::string& handle,
                                                            Duration timeout) {
  std::unique_lock lock(mutex_);
  const bool done = cv_.wait_for(lock, timeout, [&] {
    auto it = ops_.find(handle);
    return it != ops_.end() && it->second.completed();
  });
  if (!done) return std::nullopt;
  return ops_.at(handle);
}

bool FakeDcss::wait_for(const std::function<bool(const std::vector<Record>&)>& pred,
                        Duration timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return pred(records_); });
}

std::vector<std::string> FakeDcss::violations() const {
  std::lock_guard lock(mutex_);
  return violations_;
}

std::optional<double> FakeDcss::motor_position(const std::string& motor) const {
  std::lock_guard lock(mutex_);
  auto it = motor_positions_.find(motor);
  if (it == motor_positions_.end()) return std::nullopt;
  return it->second;
}

std::optional<bool> FakeDcss::shutter_open(const std::string& shutter) const {
  std::lock_guard lock(mutex_);
  auto it = shutters_.find(shutter);
  if (it == shutters_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> FakeDcss::string_value(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = strings_.find(name);
  if (it == strings_.end()) return std::nullopt;
  return it->second;
}

void FakeDcss::clear_records() {
  std::lock_guard lock(mutex_);
  records_.clear();
}

}  // namespace acheron::dcss
