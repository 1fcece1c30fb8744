#include "acheron/dcss/Dhs.hh"

#include <algorithm>
#include <cmath>
#include <exception>
#include <type_traits>

#include "acheron/core/Log.hh"

namespace acheron::dcss {

namespace xos = wire::xos;
namespace htos = wire::xos::htos;

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

Dhs::Dhs(DhsOptions options, std::shared_ptr<Outbox> outbox)
    : options_(std::move(options)),
      outbox_(outbox ? std::move(outbox) : std::make_shared<Outbox>()),
      pool_(std::make_unique<ThreadPool>(std::max<std::size_t>(1, options_.workers))) {
  ticker_ = std::thread([this] { ticker(); });
}

Dhs::~Dhs() {
  shutdown();
}

void Dhs::shutdown() {
  std::vector<OperationPtr> ops;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !ticker_.joinable()) return;
    stopping_ = true;
    for (auto& [key, weak] : active_) {
      if (auto op = weak.lock()) ops.push_back(std::move(op));
    }
    active_.clear();
  }
  cv_.notify_all();
  for (auto& op : ops) op->abandon();
  ops.clear();
  if (ticker_.joinable()) ticker_.join();
  pool_.reset();  // drains: handlers see their operations cancelled
}

void Dhs::add_operation(const std::string& name, Handler handler) {
  std::lock_guard lock(mutex_);
  handlers_[name] = std::move(handler);
}

void Dhs::connected(std::uint64_t epoch) {
  std::lock_guard lock(mutex_);
  epoch_ = epoch;
  online_ = true;
}

void Dhs::disconnected() {
  std::vector<OperationPtr> ops;
  {
    std::lock_guard lock(mutex_);
    online_ = false;
    for (auto& [key, weak] : active_) {
      if (auto op = weak.lock()) ops.push_back(std::move(op));
    }
    active_.clear();
    // The next registration burst is authoritative: forget every device.
    motors_.clear();
    shutters_.clear();
    ion_chambers_.clear();
    ion_series_.clear();
    encoders_.clear();
    strings_.clear();
    operations_.clear();
    objects_.clear();
    timers_.clear();
  }
  if (!ops.empty())
    log::info("dcss: dropped {} active operation(s) with the connection", ops.size());
  for (auto& op : ops) op->abandon();
}

bool Dhs::send(std::string text) {
  std::lock_guard lock(mutex_);
  if (!online_) return false;
  return outbox_->send(epoch_, std::move(text));
}

void Dhs::send_locked(std::string text) {
  if (online_) outbox_->send(epoch_, std::move(text));
}

void Dhs::handle(std::string_view text) {
  if (xos::clean_text(text).empty()) return;
  messages_.fetch_add(1, std::memory_order_relaxed);
  auto parsed = xos::parse_stoh(text);
  if (!parsed) {
    log::warn("dcss: ignored malformed message '{}' ({})", text, parsed.error().message);
    return;
  }
  on_message(*parsed);
}

void Dhs::on_message(const xos::StohMessage& msg) {
  std::visit(
      Overloaded{
          [&](const xos::SendClientType&) {
            log::warn("dcss: stoc_send_client_type after the handshake ignored");
          },
          [&](const xos::Register& m) { on_register(m); },
          [&](const xos::MotorRelations& m) {
            std::lock_guard lock(mutex_);
            auto it = motors_.find(m.motor);
            if (it == motors_.end()) {
              log::warn("dcss: relations for unregistered motor {} ignored", m.motor);
              return;
            }
            (m.children ? it->second.children : it->second.dependencies) = m.others;
          },
          [&](const xos::ConfigureRealMotor& m) {
            std::lock_guard lock(mutex_);
            auto it = motors_.find(m.name);
            if (it == motors_.end()) {
              log::warn("dcss: configuration of unregistered motor {} ignored", m.name);
              return;
            }
            auto& motor = it->second;
            const double position = motor.moving ? motor.config.position : m.position;
            motor.config = m;
            motor.config.position = position;
            motor.configured = true;
          },
          [&](const xos::ConfigurePseudoMotor& m) {
            std::lock_guard lock(mutex_);
            auto it = motors_.find(m.name);
            if (it == motors_.end()) {
              log::warn("dcss: configuration of unregistered motor {} ignored", m.name);
              return;
            }
            auto& c = it->second.config;
            if (!it->second.moving) c.position = m.position;
            c.name = m.name;
            c.host = m.host;
            c.hw_name = m.hw_name;
            c.upper_limit = m.upper_limit;
            c.lower_limit = m.lower_limit;
            c.lower_limit_on = m.lower_limit_on;
            c.upper_limit_on = m.upper_limit_on;
            c.lock_on = m.lock_on;
            c.status = m.status;
            it->second.configured = true;
          },
          [&](const xos::ConfigureOther& m) {
            std::lock_guard lock(mutex_);
            // Like motors: DCSS configures what this DHS registered; a
            // configuration of any other device is not a registration. The
            // registered device's entry, or null (with a warning).
            auto registered = [&](auto& devices) -> decltype(&devices.begin()->second) {
              auto it = devices.find(m.name);
              if (it != devices.end()) return &it->second;
              log::warn("dcss: configuration of unregistered {} {} ignored", xos::to_string(m.type),
                        m.name);
              return nullptr;
            };
            switch (m.type) {
              case xos::DeviceType::shutter:
                if (auto* s = registered(shutters_); s && !m.fields.empty())
                  s->open = m.fields[0] != "closed";
                break;
              case xos::DeviceType::encoder:
                if (auto* e = registered(encoders_); e && !m.fields.empty()) {
                  try {
                    *e = std::stod(m.fields[0]);
                  } catch (const std::exception&) {
                    log::warn("dcss: bad encoder position in configuration of {}", m.name);
                  }
                }
                break;
              case xos::DeviceType::string:
                if (auto* text = registered(strings_)) *text = xos::join(m.fields);
                break;
              case xos::DeviceType::ion_chamber:
                if (auto* c = registered(ion_chambers_); c && m.fields.size() >= 4)
                  *c = {m.fields[0], m.fields[1], m.fields[2], m.fields[3]};
                break;
              default:
                break;
            }
          },
          [&](const xos::StartMotorMove& m) { on_start_move(m); },
          [&](const xos::AbortMotorMove& m) {
            std::lock_guard lock(mutex_);
            auto it = motors_.find(m.motor);
            if (it != motors_.end() && it->second.moving) it->second.abort = m.mode;
            cv_.notify_all();
          },
          [&](const xos::SetMotorPosition& m) {
            std::lock_guard lock(mutex_);
            auto it = motors_.find(m.motor);
            if (it == motors_.end() || it->second.moving) {
              log::warn("dcss: stoh_set_motor_position {} ignored (unknown or moving)", m.motor);
              return;
            }
            it->second.config.position = m.position;  // redefinition: no completion
          },
          [&](const xos::CorrectMotorPosition& m) {
            std::lock_guard lock(mutex_);
            auto it = motors_.find(m.motor);
            if (it == motors_.end()) return;
            it->second.config.position += m.correction;
            it->second.target += m.correction;
            it->second.final_target += m.correction;
          },
          [&](const xos::StartOscillation& m) { on_oscillation(m); },
          [&](const xos::StartVectorMove& m) { on_vector_move(m); },
          [&](const xos::StopVectorMove& m) {
            std::lock_guard lock(mutex_);
            for (const auto& name : {m.motor1, m.motor2}) {
              auto it = motors_.find(name);
              if (it != motors_.end() && it->second.moving) it->second.abort = xos::AbortMode::soft;
            }
            cv_.notify_all();
          },
          [&](const xos::ChangeVectorSpeed& m) {
            std::lock_guard lock(mutex_);
            std::vector<Motor*> moving;
            double total = 0;
            for (const auto& name : {m.motor1, m.motor2}) {
              auto it = motors_.find(name);
              if (it == motors_.end() || !it->second.moving) continue;
              moving.push_back(&it->second);
              const double d = it->second.target - it->second.config.position;
              total += d * d;
            }
            total = std::sqrt(total);
            if (moving.empty() || total <= 0 || m.speed <= 0) return;
            const double t = total / m.speed;
            for (auto* mm : moving) {
              mm->velocity =
                  std::min(std::fabs(mm->target - mm->config.position) / t, max_speed(*mm));
            }
          },
          [&](const xos::SetShutterState& m) {
            std::lock_guard lock(mutex_);
            auto it = shutters_.find(m.shutter);
            if (it == shutters_.end()) {
              log::warn("dcss: stoh_set_shutter_state for unregistered shutter {}", m.shutter);
              send_locked(htos::report_shutter_state(m.shutter, m.open, "unknown_shutter"));
              return;
            }
            it->second.open = m.open;
            send_locked(htos::report_shutter_state(m.shutter, m.open));
          },
          [&](const xos::ReadIonChambers& m) { on_read_ion_chambers(m); },
          [&](const xos::GetEncoder& m) {
            std::lock_guard lock(mutex_);
            auto it = encoders_.find(m.name);
            send_locked(it == encoders_.end()
                            ? htos::get_encoder_completed(m.name, 0, "unknown_encoder")
                            : htos::get_encoder_completed(m.name, it->second, "normal"));
          },
          [&](const xos::SetEncoder& m) {
            std::lock_guard lock(mutex_);
            auto it = encoders_.find(m.name);
            if (it == encoders_.end()) {
              send_locked(htos::set_encoder_completed(m.name, m.position, "unknown_encoder"));
              return;
            }
            it->second = m.position;
            send_locked(htos::set_encoder_completed(m.name, m.position, "normal"));
          },
          [&](const xos::SetString& m) {
            std::lock_guard lock(mutex_);
            auto it = strings_.find(m.name);
            if (it == strings_.end()) {
              send_locked(htos::set_string_completed(m.name, "unknown_string", m.contents));
              return;
            }
            it->second = m.contents;
            send_locked(htos::set_string_completed(m.name, "normal", m.contents));
          },
          [&](const xos::StartOperation& m) { on_start_operation(m); },
          [&](const xos::StopOperation& m) { on_stop_operation(m); },
          [&](const xos::AbortAll& m) { on_abort_all(m.mode); },
          [&](const xos::Unknown& m) {
            log::info("dcss: ignored unknown message '{}'", xos::join(m.tokens));
          },
      },
      msg);
}

void Dhs::on_register(const xos::Register& m) {
  std::lock_guard lock(mutex_);
  switch (m.type) {
    case xos::DeviceType::real_motor:
    case xos::DeviceType::pseudo_motor: {
      auto& motor = motors_[m.name];
      if (motor.moving) return;  // a repeated registration must not disturb a move
      motor.name = m.name;
      motor.hw_name = m.hw_name;
      motor.pseudo = m.type == xos::DeviceType::pseudo_motor;
      if (auto s = options_.motors.find(m.name); s != options_.motors.end()) {
        motor.settings = s->second;
      }
      send_locked(htos::send_configuration(m.name));
      break;
    }
    case xos::DeviceType::shutter: {
      const bool open = m.shutter_state != "closed";
      shutters_[m.name].open = open;
      send_locked(htos::report_shutter_state(m.name, open));
      break;
    }
    case xos::DeviceType::ion_chamber:
      ion_chambers_[m.name] = {m.hw_name, m.counter_channel, m.timer, m.timer_type};
      break;
    case xos::DeviceType::encoder:
      encoders_.try_emplace(m.name, 0.0);
      break;
    case xos::DeviceType::string:
      strings_.try_emplace(m.name);
      break;
    case xos::DeviceType::operation:
      operations_.insert(m.name);
      if (!handlers_.contains(m.name)) {
        log::warn("dcss: operation {} is registered but this DHS has no handler for it", m.name);
      }
      break;
    case xos::DeviceType::object:
      objects_.insert(m.name);
      break;
  }
  log::debug("dcss: registered {} {}", xos::to_string(m.type), m.name);
}

void Dhs::reap_operations_locked() {
  for (auto it = active_.begin(); it != active_.end();) {
    auto op = it->second.lock();
    if (!op || op->completed()) {
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
}

void Dhs::on_start_operation(const xos::StartOperation& m) {
  OperationPtr op;
  Handler handler;
  {
    std::lock_guard lock(mutex_);
    if (!online_ || stopping_) return;
    reap_operations_locked();
    const auto key = std::make_pair(m.operation, m.handle);
    if (active_.contains(key)) {
      log::warn("dcss: start of already active operation {} {} ignored", m.operation, m.handle);
      return;
    }
    op = std::make_shared<Operation>(m.operation, m.handle, m.args, epoch_, outbox_);
    log_operation_start(*op);
    active_[key] = op;
    if (auto it = handlers_.find(m.operation); it != handlers_.end()) handler = it->second;
  }
  if (!handler) {
    op->complete("error", "not_implemented");
    return;
  }
  pool_->submit([op = std::move(op), handler = std::move(handler)]() mutable {
    try {
      handler(op);
    } catch (const std::exception& e) {
      log::error("dcss: operation {} {} failed: {}", op->name(), op->handle(), e.what());
      op->complete("error", e.what());
    } catch (...) {
      op->complete("error", "unknown_exception");
    }
  });
}

void Dhs::on_stop_operation(const xos::StopOperation& m) {
  std::vector<OperationPtr> ops;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, weak] : active_) {
      if (key.first != m.operation || (!m.handle.empty() && key.second != m.handle)) continue;
      if (auto op = weak.lock()) ops.push_back(std::move(op));
    }
  }
  for (auto& op : ops) op->request_stop();
}

void Dhs::on_abort_all(xos::AbortMode mode) {
  std::vector<OperationPtr> ops;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, motor] : motors_) {
      if (motor.moving) motor.abort = mode;
    }
    ion_series_.clear();  // iterative ion chamber readings end
    for (auto& [key, weak] : active_) {
      if (auto op = weak.lock()) ops.push_back(std::move(op));
    }
    active_.clear();
  }
  cv_.notify_all();  // the ticker reports the aborted motors at once
  log::info("dcss: abort_all ({}): {} operation(s)", mode == xos::AbortMode::soft ? "soft" : "hard",
            ops.size());
  for (auto& op : ops) op->abort();
}

std::optional<Dhs::MotorView> Dhs::motor(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = motors_.find(name);
  if (it == motors_.end()) return std::nullopt;
  const auto& m = it->second;
  return MotorView{m.name,
                   m.pseudo,
                   m.configured,
                   m.moving,
                   m.config.position,
                   m.config.upper_limit,
                   m.config.lower_limit};
}

std::optional<bool> Dhs::shutter_open(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = shutters_.find(name);
  if (it == shutters_.end()) return std::nullopt;
  return it->second.open;
}

std::optional<std::string> Dhs::string_contents(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = strings_.find(name);
  if (it == strings_.end()) return std::nullopt;
  return it->second;
}

std::optional<double> Dhs::encoder_position(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = encoders_.find(name);
  if (it == encoders_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Dhs::registered(xos::DeviceType type) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  auto keys = [&](const auto& map) {
    for (const auto& kv : map) out.push_back(kv.first);
  };
  switch (type) {
    case xos::DeviceType::real_motor:
    case xos::DeviceType::pseudo_motor:
      for (const auto& [name, m] : motors_) {
        if (m.pseudo == (type == xos::DeviceType::pseudo_motor)) out.push_back(name);
      }
      break;
    case xos::DeviceType::shutter:
      keys(shutters_);
      break;
    case xos::DeviceType::ion_chamber:
      keys(ion_chambers_);
      break;
    case xos::DeviceType::encoder:
      keys(encoders_);
      break;
    case xos::DeviceType::string:
      keys(strings_);
      break;
    case xos::DeviceType::operation:
      out.assign(operations_.begin(), operations_.end());
      break;
    case xos::DeviceType::object:
      out.assign(objects_.begin(), objects_.end());
      break;
  }
  return out;
}

std::size_t Dhs::active_operations() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, weak] : active_) {
    if (auto op = weak.lock(); op && !op->completed()) ++n;
  }
  return n;
}

std::uint64_t Dhs::epoch() const {
  std::lock_guard lock(mutex_);
  return epoch_;
}

}  // namespace acheron::dcss
