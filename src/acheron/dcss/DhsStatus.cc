// The Dhs's introspection for status pages: the registered devices, the
// recent-operations log and the operation counts (dcss/Monitor.hh).
#include <chrono>
#include <cstdio>

#include "acheron/dcss/Dhs.hh"

namespace acheron::dcss {
namespace {

namespace xos = wire::xos;

// Completion texts and arguments are shown, not kept whole.
constexpr std::size_t kMaxLoggedText = 200;

std::string shortened(std::string_view text) {
  if (text.size() <= kMaxLoggedText) return std::string(text);
  return std::string(text.substr(0, kMaxLoggedText)) + "...";
}

std::string number_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

double wall_now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void Dhs::log_operation_start(Operation& op) {
  OperationRecord r;
  r.epoch = op.epoch();
  r.name = op.name();
  r.handle = op.handle();
  std::string args;
  for (const auto& a : op.args()) args += (args.empty() ? "" : " ") + a;
  r.args = shortened(args);
  r.started_unix_s = wall_now_s();
  r.started = Clock::now();
  {
    std::lock_guard lock(op_log_->mutex);
    ++op_log_->counts.started;
    op_log_->records.push_back(std::move(r));
    while (op_log_->records.size() > kOperationLog) op_log_->records.pop_front();
  }
  std::weak_ptr<OperationLog> weak = op_log_;
  op.set_completion_observer(
      [weak](const Operation& o, std::string_view status, std::string_view text) {
        auto log = weak.lock();
        if (!log) return;
        OperationRecord done;
        std::shared_ptr<const std::function<void(const OperationRecord&)>> observer;
        {
          std::lock_guard lock(log->mutex);
          ++log->counts.completed[std::string(status)];
          for (auto it = log->records.rbegin(); it != log->records.rend(); ++it) {
            if (it->epoch == o.epoch() && it->handle == o.handle() && it->name == o.name() &&
                it->status == "running") {
              it->status = std::string(status);
              it->text = shortened(text);
              it->duration_s = std::chrono::duration<double>(Clock::now() - it->started).count();
              done = *it;
              break;
            }
          }
          observer = log->observer;
        }
        if (observer && !done.name.empty()) (*observer)(done);
      });
}

std::vector<OperationRecord> Dhs::operation_log() const {
  std::lock_guard lock(op_log_->mutex);
  return {op_log_->records.begin(), op_log_->records.end()};
}

OperationCounts Dhs::operation_counts() const {
  OperationCounts c;
  {
    std::lock_guard lock(op_log_->mutex);
    c = op_log_->counts;
  }
  c.messages = messages_.load(std::memory_order_relaxed);
  return c;
}

void Dhs::set_operation_observer(std::function<void(const OperationRecord&)> observer) {
  auto p =
      observer
          ? std::make_shared<const std::function<void(const OperationRecord&)>>(std::move(observer))
          : nullptr;
  std::lock_guard lock(op_log_->mutex);
  op_log_->observer = std::move(p);
}

bool Dhs::online() const {
  std::lock_guard lock(mutex_);
  return online_;
}

std::vector<DeviceView> Dhs::devices() const {
  std::lock_guard lock(mutex_);
  std::vector<DeviceView> out;
  for (const auto& [name, m] : motors_) {
    DeviceView d{std::string(xos::to_string(m.pseudo ? xos::DeviceType::pseudo_motor
                                                     : xos::DeviceType::real_motor)),
                 name,
                 !m.configured ? "unconfigured"
                 : m.moving    ? "moving"
                               : "idle",
                 number_text(m.config.position)};
    if (m.configured) {
      d.value += " (" + number_text(m.config.lower_limit) + " to " +
                 number_text(m.config.upper_limit) + ")";
    }
    out.push_back(std::move(d));
  }
  for (const auto& [name, sh] : shutters_) {
    out.push_back({std::string(xos::to_string(xos::DeviceType::shutter)), name,
                   sh.open ? "open" : "closed", ""});
  }
  for (const auto& [name, ic] : ion_chambers_) {
    const bool reading = ion_series_.contains(name);
    out.push_back({std::string(xos::to_string(xos::DeviceType::ion_chamber)), name,
                   reading ? "reading" : "idle", ic.hw_name + " channel " + ic.channel});
  }
  for (const auto& [name, pos] : encoders_) {
    out.push_back(
        {std::string(xos::to_string(xos::DeviceType::encoder)), name, "idle", number_text(pos)});
  }
  for (const auto& [name, text] : strings_) {
    out.push_back(
        {std::string(xos::to_string(xos::DeviceType::string)), name, "set", shortened(text)});
  }
  std::map<std::string, int> running;
  for (const auto& [key, weak] : active_) {
    if (auto op = weak.lock(); op && !op->completed()) ++running[key.first];
  }
  for (const auto& name : operations_) {
    const int n = running.contains(name) ? running[name] : 0;
    out.push_back({std::string(xos::to_string(xos::DeviceType::operation)), name,
                   n > 0                      ? "active"
                   : handlers_.contains(name) ? "ready"
                                              : "no handler",
                   n > 0 ? std::to_string(n) + " running" : ""});
  }
  for (const auto& name : objects_) {
    out.push_back({std::string(xos::to_string(xos::DeviceType::object)), name, "registered", ""});
  }
  return out;
}

}  // namespace acheron::dcss
