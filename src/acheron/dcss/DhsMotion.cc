// The DHS's simulated motion: motor moves, oscillations and vector moves,
// ion chamber readings, and the ticker that advances them; the session,
// messages and operations are in Dhs.cc.
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

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

double Dhs::max_speed(const Motor& m) const {
  if (m.settings.speed > 0) return m.settings.speed;
  if (!m.pseudo && m.config.speed > 0 && m.config.scale_factor != 0) {
    return static_cast<double>(m.config.speed) / std::fabs(m.config.scale_factor);
  }
  return std::numeric_limits<double>::infinity();  // arrives in one tick
}

void Dhs::start_leg(Motor& m, double destination, double velocity) {
  m.moving = true;
  m.target = destination;
  m.velocity = velocity;
  m.abort.reset();
}

void Dhs::on_start_move(const xos::StartMotorMove& msg) {
  std::lock_guard lock(mutex_);
  auto it = motors_.find(msg.motor);
  if (it == motors_.end()) {
    log::warn("dcss: move of unregistered motor {}", msg.motor);
    send_locked(htos::motor_move_completed(msg.motor, 0, "unknown"));
    return;
  }
  auto& m = it->second;
  auto& c = m.config;
  if (m.moving) {
    send_locked(htos::motor_move_completed(m.name, c.position, "moving"));
    return;
  }
  if (c.lock_on) {
    send_locked(htos::motor_move_completed(m.name, c.position, "locked"));
    return;
  }
  if ((c.upper_limit_on && msg.destination > c.upper_limit) ||
      (c.lower_limit_on && msg.destination < c.lower_limit)) {
    send_locked(htos::motor_move_completed(m.name, c.position, "sw_limit"));
    return;
  }
  send_locked(htos::motor_move_started(m.name, msg.destination));
  if (msg.destination == c.position) {
    send_locked(htos::motor_move_completed(m.name, c.position, "normal"));
    return;
  }
  double leg = msg.destination;
  if (!m.pseudo && c.backlash_on && c.backlash != 0 && c.scale_factor != 0) {
    // Final approach always in the direction of the backlash sign: overshoot, then return.
    const double b = static_cast<double>(c.backlash) / std::fabs(c.scale_factor);
    if ((msg.destination - c.position) * b < 0) leg = msg.destination - b;
  }
  m.final_target = msg.destination;
  m.oscillation_shutter.clear();
  start_leg(m, leg, max_speed(m));
}

void Dhs::on_oscillation(const xos::StartOscillation& msg) {
  std::lock_guard lock(mutex_);
  auto it = motors_.find(msg.motor);
  if (it == motors_.end()) {
    send_locked(htos::motor_move_completed(msg.motor, 0, "unknown"));
    return;
  }
  auto& m = it->second;
  const double pos = m.config.position;
  if (m.moving) {
    send_locked(htos::motor_move_completed(m.name, pos, "moving"));
    return;
  }
  if (m.config.lock_on) {
    send_locked(htos::motor_move_completed(m.name, pos, "locked"));
    return;
  }
  const double needed =
      msg.time > 0 ? std::fabs(msg.delta) / msg.time : std::numeric_limits<double>::infinity();
  if (needed > max_speed(m)) {
    send_locked(htos::motor_move_completed(m.name, pos, "too_fast"));
    return;
  }
  if (!m.pseudo && m.config.scale_factor != 0 &&
      needed * seconds(options_.motor_tick) < 1.0 / std::fabs(m.config.scale_factor)) {
    send_locked(htos::note("oscillation_too_slow " + m.name));
  }
  m.oscillation_shutter.clear();
  if (!msg.shutter.empty()) {
    if (auto s = shutters_.find(msg.shutter); s != shutters_.end()) {
      s->second.open = true;
      send_locked(htos::report_shutter_state(msg.shutter, true));
      m.oscillation_shutter = msg.shutter;
    } else {
      log::warn("dcss: oscillation shutter {} is not registered here", msg.shutter);
    }
  }
  const double dest = pos + msg.delta;
  send_locked(htos::motor_move_started(m.name, dest));
  m.final_target = dest;
  start_leg(m, dest, needed > 0 ? needed : max_speed(m));
  if (msg.delta == 0) m.velocity = std::numeric_limits<double>::infinity();
}

void Dhs::on_vector_move(const xos::StartVectorMove& msg) {
  std::lock_guard lock(mutex_);
  struct Leg {
    Motor* motor;
    double destination;
  };
  std::vector<Leg> legs;
  const std::pair<std::string, double> parts[] = {{msg.motor1, msg.destination1},
                                                  {msg.motor2, msg.destination2}};
  for (const auto& [name, dest] : parts) {
    if (name == "NULL" || name.empty()) continue;
    auto it = motors_.find(name);
    if (it == motors_.end()) {
      send_locked(htos::motor_move_completed(name, 0, "unknown"));
      return;
    }
    if (it->second.moving) {
      send_locked(htos::motor_move_completed(name, it->second.config.position, "moving"));
      return;
    }
    legs.push_back({&it->second, dest});
  }
  double dist2 = 0;
  for (const auto& l : legs) {
    const double d = l.destination - l.motor->config.position;
    dist2 += d * d;
  }
  const double dist = std::sqrt(dist2);
  double t = msg.speed > 0 ? dist / msg.speed : 0;
  for (const auto& l : legs) {  // no motor faster than it can go
    const double d = std::fabs(l.destination - l.motor->config.position);
    t = std::max(t, d / max_speed(*l.motor));
  }
  for (const auto& l : legs) {
    const double d = std::fabs(l.destination - l.motor->config.position);
    send_locked(htos::motor_move_started(l.motor->name, l.destination));
    if (d == 0) {
      send_locked(htos::motor_move_completed(l.motor->name, l.destination, "normal"));
      continue;
    }
    l.motor->final_target = l.destination;
    l.motor->oscillation_shutter.clear();
    start_leg(*l.motor, l.destination, t > 0 ? d / t : std::numeric_limits<double>::infinity());
  }
}

// stoh_read_ion_chambers time repeat ch1 [ch2...] (DCS Administrator's Guide:
// repeat is a boolean, "read iteratively"). repeat = 0: one report after
// `time` s. repeat != 0: a report every `time` s, each a new integration of
// `time` s, until stoh_abort_all, another read naming one of the chambers
// (it replaces the series), or the connection closes.
void Dhs::on_read_ion_chambers(const xos::ReadIonChambers& msg) {
  std::lock_guard lock(mutex_);
  for (const auto& ch : msg.channels) {
    if (!ion_chambers_.contains(ch)) {
      send_locked(htos::report_ion_chambers_failed(msg.channels, "unknown_ion_chamber_" + ch));
      return;
    }
  }
  const bool repeat = msg.repeat != 0;
  if (repeat && !(msg.time >= options_.min_repeat_time_s && std::isfinite(msg.time))) {
    log::warn("dcss: iterative ion chamber reading with time {} refused (at least {} s)", msg.time,
              options_.min_repeat_time_s);
    send_locked(htos::report_ion_chambers_failed(msg.channels, "invalid_time"));
    return;
  }
  // A new read of a chamber ends the series reading it (all its chambers:
  // they share one clock).
  const std::uint64_t series = repeat ? ++next_ion_series_ : 0;
  for (const auto& ch : msg.channels) {
    if (repeat) {
      ion_series_[ch] = series;
    } else {
      ion_series_.erase(ch);
    }
  }
  schedule_ion_reading_locked(msg.channels, msg.time, series);
}

void Dhs::schedule_ion_reading_locked(std::vector<std::string> channels, double time,
                                      std::uint64_t series) {
  const auto epoch = epoch_;
  // Saturating: a reading of 1e300 s is never due (a plain cast is undefined).
  schedule_locked(saturating_duration(std::chrono::duration<double>(time)),
                  [this, epoch, channels = std::move(channels), time, series]() mutable {
                    if (epoch != epoch_) return;
                    if (series != 0) {
                      for (const auto& ch : channels) {
                        auto it = ion_series_.find(ch);
                        if (it == ion_series_.end() || it->second != series)
                          return;  // ended or replaced
                      }
                    }
                    std::vector<std::pair<std::string, double>> counts;
                    for (const auto& ch : channels) {
                      auto r = options_.ion_chamber_rates.find(ch);
                      const double rate = r != options_.ion_chamber_rates.end()
                                              ? r->second
                                              : options_.default_counts_per_s;
                      counts.emplace_back(ch, std::round(rate * time));
                    }
                    send_locked(htos::report_ion_chambers(time, counts));
                    if (series != 0) schedule_ion_reading_locked(std::move(channels), time, series);
                  });
}

void Dhs::schedule_locked(Duration delay, std::function<void()> fn) {
  timers_.push_back({deadline_after(delay), std::move(fn)});
  cv_.notify_all();
}

void Dhs::finish_locked(Motor& m, std::string_view status) {
  m.moving = false;
  m.abort.reset();
  if (!m.oscillation_shutter.empty()) {
    if (auto s = shutters_.find(m.oscillation_shutter); s != shutters_.end()) {
      s->second.open = false;
      send_locked(htos::report_shutter_state(m.oscillation_shutter, false));
    }
    m.oscillation_shutter.clear();
  }
  send_locked(htos::motor_move_completed(m.name, m.config.position, status));
}

void Dhs::report_aborts_locked() {
  for (auto& [name, m] : motors_) {
    if (m.moving && m.abort) finish_locked(m, "aborted");
  }
}

void Dhs::tick_locked(double dt) {
  for (auto& [name, m] : motors_) {
    if (!m.moving) continue;
    if (m.abort) {
      finish_locked(m, "aborted");
      continue;
    }
    auto& pos = m.config.position;
    const double remaining = m.target - pos;
    const double step = m.velocity * dt;
    const bool arrives = std::fabs(remaining) <= step;
    pos = arrives ? m.target : pos + (remaining > 0 ? step : -step);
    if (pos > m.settings.hw_upper && remaining > 0) {
      pos = m.settings.hw_upper;
      send_locked(htos::limit_hit(m.name));
      finish_locked(m, "cw_hw_limit");
      continue;
    }
    if (pos < m.settings.hw_lower && remaining < 0) {
      pos = m.settings.hw_lower;
      send_locked(htos::limit_hit(m.name));
      finish_locked(m, "ccw_hw_limit");
      continue;
    }
    if (arrives && m.target == m.final_target) {
      finish_locked(m, "normal");
      continue;
    }
    if (arrives) m.target = m.final_target;  // backlash: return leg
    send_locked(htos::update_motor_position(m.name, pos, "normal"));
  }
}

void Dhs::ticker() {
  std::unique_lock lock(mutex_);
  auto next = Clock::now() + options_.motor_tick;
  while (!stopping_) {
    auto wake = next;
    for (const auto& t : timers_) wake = std::min(wake, t.when);
    cv_.wait_until(lock, wake);
    if (stopping_) break;
    const auto now = Clock::now();
    std::vector<Timed> due;
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->when <= now) {
        due.push_back(std::move(*it));
        it = timers_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& t : due) t.fn();
    report_aborts_locked();  // aborts are reported at once, other motion on the tick
    if (now >= next) {
      tick_locked(seconds(options_.motor_tick));
      next += options_.motor_tick;
      if (next < now) next = now + options_.motor_tick;
    }
  }
}

}  // namespace acheron::dcss
