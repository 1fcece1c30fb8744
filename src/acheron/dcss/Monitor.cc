#include "acheron/dcss/Monitor.hh"

#include <cmath>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "acheron/dcss/LoopDhs.hh"

namespace acheron::dcss {

std::shared_ptr<DhsMonitor> DhsMonitor::create(DhsRunner& runner, std::string name,
                                               nlohmann::json info) {
  std::shared_ptr<DhsMonitor> m(new DhsMonitor(runner, std::move(name), std::move(info)));
  std::weak_ptr<DhsMonitor> weak = m;
  m->service_->set_status([weak] {
    if (auto s = weak.lock()) return s->snapshot();
    return nlohmann::json{{"error", "the DHS has stopped"}};
  });
  m->service_->set_metrics_refresh([weak] {
    if (auto s = weak.lock()) s->refresh();
  });
  runner.dhs().set_operation_observer([weak](const OperationRecord& r) {
    if (auto s = weak.lock()) s->observe(r);
  });
  return m;
}

DhsMonitor::DhsMonitor(DhsRunner& runner, std::string name, nlohmann::json info)
    : runner_(runner),
      service_(std::make_shared<hub::Service>(
          std::move(name), "DCSS hardware server " + runner.config().dhs.name + " (acheron dhs)")),
      info_(std::move(info)),
      durations_(*service_->metrics(), "acheron_dhs_operation_duration_seconds",
                 "Operation start to completion", kDurationBoundsS) {
  auto& reg = *service_->metrics();
  completed_family_ = &hub::counter_family(
      reg, "acheron_dhs_operations_completed_total",
      "Operations completed, by status (normal, error, aborted, abandoned, ...)");
  devices_family_ =
      &hub::gauge_family(reg, "acheron_dhs_devices", "Devices registered by DCSS, by type");
  started_ = &hub::add_counter(reg, "acheron_dhs_operations_started_total",
                               "Operations started by DCSS (stoh_start_operation)");
  messages_ = &hub::add_counter(reg, "acheron_dhs_messages_total", "Messages received from DCSS");
  connections_ = &hub::add_counter(reg, "acheron_dhs_connections_total",
                                   "Connections to DCSS made (reconnections included)");
  truncated_ = &hub::add_counter(reg, "acheron_dhs_truncated_messages_total",
                                 "Messages from DCSS over the size limit, truncated");
  connected_ = &hub::add_gauge(reg, "acheron_dhs_connected", "1 while connected to DCSS, else 0");
  active_ = &hub::add_gauge(reg, "acheron_dhs_operations_active", "Operations running now");
}

DhsMonitor::~DhsMonitor() {
  runner_.dhs().set_operation_observer(nullptr);
}

void DhsMonitor::observe(const OperationRecord& done) {
  durations_.observe(done.duration_s);
}

void DhsMonitor::refresh() {
  auto& dhs = runner_.dhs();
  const OperationCounts c = dhs.operation_counts();
  const auto devices = dhs.devices();
  std::lock_guard lock(refresh_mutex_);
  hub::raise_to(*started_, static_cast<double>(c.started));
  hub::raise_to(*messages_, static_cast<double>(c.messages));
  hub::raise_to(*connections_, static_cast<double>(runner_.session().connections()));
  hub::raise_to(*truncated_, static_cast<double>(runner_.session().truncated_messages()));
  connected_->Set(runner_.session().online() ? 1 : 0);
  active_->Set(static_cast<double>(dhs.active_operations()));
  for (const auto& [status, n] : c.completed) {
    auto& counter = completed_[status];
    if (!counter) counter = &completed_family_->Add({{"status", status}});
    hub::raise_to(*counter, static_cast<double>(n));
  }
  std::map<std::string, double> by_type;
  for (auto& [type, gauge] : devices_) by_type[type] = 0;
  for (const auto& d : devices) by_type[d.type] += 1;
  for (const auto& [type, n] : by_type) {
    auto& gauge = devices_[type];
    if (!gauge) gauge = &devices_family_->Add({{"type", type}});
    gauge->Set(n);
  }
}

nlohmann::json DhsMonitor::snapshot() const {
  auto& dhs = runner_.dhs();
  auto& session = runner_.session();
  const auto& config = runner_.config();
  const OperationCounts c = dhs.operation_counts();
  const auto devices = dhs.devices();
  const bool online = session.online();
  nlohmann::json j;
  j["kind"] = "dhs";
  j["time"] = hub::unix_seconds();
  std::uint64_t completed = 0, errors = 0;
  for (const auto& [status, n] : c.completed) {
    completed += n;
    if (status != "normal") errors += n;
  }
  j["counters"] = {{"messages", c.messages},
                   {"operations_started", c.started},
                   {"operations_completed", completed},
                   {"operations_not_normal", errors},
                   {"connections", session.connections()}};
  j["rates"] = {{"messages", "messages/s from DCSS"},
                {"operations_started", "operations/s started"}};
  j["gauges"] = {{"connected", online ? 1 : 0},
                 {"operations_active", dhs.active_operations()},
                 {"devices", devices.size()}};
  j["plot_gauges"] = nlohmann::json::array({"operations_active"});
  auto latency = durations_.json();
  latency["title"] = "operation durations (operations per bucket)";
  latency["unit"] = "operations";
  j["latency"] = std::move(latency);

  const std::string dcss = config.dcss.host + ":" + std::to_string(config.dcss.port);
  nlohmann::json connection = nlohmann::json::array(
      {nlohmann::json::array({"state", online ? "connected" : "disconnected"}),
       nlohmann::json::array({"DCSS", dcss}), nlohmann::json::array({"DHS name", config.dhs.name}),
       nlohmann::json::array({"connections made", session.connections()}),
       nlohmann::json::array(
           {"protocol", session.last_received() == wire::xos::Protocol::v1 ? "xos v1" : "xos v2"}),
       nlohmann::json::array({"truncated messages", session.truncated_messages()})});
  nlohmann::json device_rows = nlohmann::json::array();
  for (const auto& d : devices) {
    if (device_rows.size() >= kMaxDeviceRows) break;
    device_rows.push_back({d.type, d.name, d.state, d.value});
  }
  nlohmann::json log_rows = nlohmann::json::array();
  const auto log = dhs.operation_log();
  for (auto it = log.rbegin(); it != log.rend(); ++it) {  // newest first
    const double started = std::round(it->started_unix_s * 1000) / 1000;
    log_rows.push_back({it->name, it->handle, it->args, it->status,
                        it->status == "running"
                            ? nlohmann::json("")
                            : nlohmann::json(std::round(it->duration_s * 1e4) / 1e4),
                        it->text, started});
  }
  j["tables"] =
      nlohmann::json::array({{{"id", "connection"},
                              {"title", "DCSS connection"},
                              {"columns", {"", "value"}},
                              {"rows", std::move(connection)}},
                             {{"id", "devices"},
                              {"title", "Registered devices"},
                              {"columns", {"type", "name", "state", "value"}},
                              {"rows", std::move(device_rows)},
                              {"empty", "none registered (DCSS registers them after connecting)"}},
                             {{"id", "operations"},
                              {"title", "Operation log (newest first)"},
                              {"columns",
                               {"operation", "handle", "arguments", "state", "duration (s)",
                                "result", "started (Unix s)"}},
                              {"rows", std::move(log_rows)},
                              {"empty", "no operation yet"}}});
  nlohmann::json info = info_;
  info["kind"] = config.kind;
  info["configuration"] = config.source;
  if (auto* loop = runner_.loop()) {
    (void)loop;
    info["loop frame source"] = config.loop.frame_source;
  }
  j["info"] = std::move(info);
  return j;
}

}  // namespace acheron::dcss
