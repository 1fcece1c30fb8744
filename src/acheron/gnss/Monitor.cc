#include "acheron/gnss/Monitor.hh"

#include <algorithm>
#include <cmath>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace acheron::gnss {
namespace {

// A parsed field as a number (parsed_fields gives every number as a double).
double field(const nlohmann::json& parsed, const char* name, double fallback = 0) {
  auto it = parsed.find(name);
  return it != parsed.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string two_digits(double v) {
  const int i = static_cast<int>(v);
  return (i < 10 ? "0" : "") + std::to_string(i);
}

}  // namespace

std::shared_ptr<GnssMonitor> GnssMonitor::create(UbloxService& service, std::string name,
                                                 nlohmann::json info) {
  std::shared_ptr<GnssMonitor> m(new GnssMonitor(service, std::move(name), std::move(info)));
  std::weak_ptr<GnssMonitor> weak = m;
  m->service_->set_status([weak] {
    if (auto s = weak.lock()) return s->snapshot();
    return nlohmann::json{{"error", "the UbloxControl server has stopped"}};
  });
  m->service_->set_metrics_refresh([weak] {
    if (auto s = weak.lock()) s->refresh();
  });
  service.set_observer(
      [weak](const std::string& identity, const nlohmann::json& parsed, std::int64_t wall_ns) {
        if (auto s = weak.lock()) s->observe(identity, parsed, wall_ns);
      });
  return m;
}

GnssMonitor::GnssMonitor(UbloxService& service, std::string name, nlohmann::json info)
    : ubx_(service),
      service_(std::make_shared<hub::Service>(
          std::move(name), "u-blox ZED-F9T timing receiver: UbloxControl (acheron gnss serve)")),
      info_(std::move(info)) {
  auto& reg = *service_->metrics();
  messages_family_ = &hub::counter_family(reg, "acheron_gnss_messages_total",
                                          "UBX messages read from the receiver, by identity");
  qerr_hist_ = &prometheus::BuildHistogram()
                    .Name("acheron_gnss_tim_tp_qerr_seconds")
                    .Help("TIM-TP quantisation error of the next time pulse (qErr)")
                    .Register(reg)
                    .Add({}, [] {
                      prometheus::Histogram::BucketBoundaries b;
                      for (double ps : kQErrBoundsPs) b.push_back(ps * 1e-12);
                      return b;
                    }());
  qerr_ = &hub::add_gauge(reg, "acheron_gnss_tim_tp_qerr_seconds_last",
                          "The latest TIM-TP quantisation error (qErr)");
  t_acc_ = &hub::add_gauge(reg, "acheron_gnss_time_accuracy_seconds",
                           "The latest NAV-TIMEUTC time accuracy estimate (tAcc)");
  io_running_ =
      &hub::add_gauge(reg, "acheron_gnss_io_running",
                      "1 while the receiver is read (after a successful InitF9t), else 0");
  captures_ = &hub::add_gauge(reg, "acheron_gnss_captures", "CaptureUblox streams open");
  auto& inits = hub::counter_family(reg, "acheron_gnss_init_requests_total",
                                    "InitF9t calls by result (ok, failed)");
  inits_ok_ = &inits.Add({{"result", "ok"}});
  inits_failed_ = &inits.Add({{"result", "failed"}});
  auto& capture = hub::counter_family(
      reg, "acheron_gnss_capture_messages_total",
      "Messages of capture streams: sent to clients, or dropped (a client's queue was full)");
  capture_sent_ = &capture.Add({{"outcome", "sent"}});
  capture_dropped_ = &capture.Add({{"outcome", "dropped"}});
}

GnssMonitor::~GnssMonitor() {
  ubx_.set_observer(nullptr);
}

void GnssMonitor::observe(const std::string& identity, const nlohmann::json& parsed,
                          std::int64_t wall_ns) {
  std::lock_guard lock(mutex_);
  std::string label = identity;
  if (!identities_.contains(label) && identities_.size() >= kMaxIdentities) label = "other";
  auto& id = identities_[label];
  if (!id.counter) id.counter = &messages_family_->Add({{"identity", label}});
  id.counter->Increment();
  ++id.count;
  id.last_wall_ns = wall_ns;
  ++messages_;
  if (identity == "TIM-TP") {
    tim_tp_ = parsed;
    const double q = field(parsed, "qErr");
    if (field(parsed, "qErrInvalid") == 0) {
      qerr_hist_->Observe(q * 1e-12);
      qerr_->Set(q * 1e-12);
      const auto bucket = static_cast<std::size_t>(
          std::lower_bound(kQErrBoundsPs.begin(), kQErrBoundsPs.end(), q) - kQErrBoundsPs.begin());
      ++qerr_counts_[bucket];
    }
  } else if (identity == "NAV-TIMEUTC") {
    nav_timeutc_ = parsed;
    t_acc_->Set(field(parsed, "tAcc") * 1e-9);
  }
}

void GnssMonitor::refresh() {
  const ServiceStats s = ubx_.stats();
  std::lock_guard lock(refresh_mutex_);
  io_running_->Set(s.io_running ? 1 : 0);
  captures_->Set(static_cast<double>(s.captures.size()));
  hub::raise_to(*inits_ok_, static_cast<double>(s.inits_ok));
  hub::raise_to(*inits_failed_, static_cast<double>(s.inits_failed));
  hub::raise_to(*capture_sent_, static_cast<double>(s.capture_delivered));
  hub::raise_to(*capture_dropped_, static_cast<double>(s.capture_dropped));
}

nlohmann::json GnssMonitor::snapshot() const {
  const ServiceStats s = ubx_.stats();
  const double now = hub::unix_seconds();
  nlohmann::json j;
  j["kind"] = "gnss";
  j["time"] = now;
  nlohmann::json counters = {{"messages", 0},
                             {"inits_ok", s.inits_ok},
                             {"inits_failed", s.inits_failed},
                             {"capture_sent", s.capture_delivered},
                             {"capture_dropped", s.capture_dropped}};
  nlohmann::json rates = {{"messages", "messages/s"}};
  nlohmann::json gauges = {{"captures", s.captures.size()}, {"io_running", s.io_running ? 1 : 0}};
  nlohmann::json message_rows = nlohmann::json::array();
  nlohmann::json timing = nlohmann::json::array();
  {
    std::lock_guard lock(mutex_);
    counters["messages"] = messages_;
    for (const auto& [identity, id] : identities_) {
      counters[identity] = id.count;
      rates[identity] = identity + " messages/s";
      message_rows.push_back(
          {identity, id.count, std::round((now - id.last_wall_ns * 1e-9) * 10) / 10});
    }
    if (!nav_timeutc_.is_null()) {
      const auto& n = nav_timeutc_;
      const std::string utc = std::to_string(static_cast<int>(field(n, "year"))) + "-" +
                              two_digits(field(n, "month")) + "-" + two_digits(field(n, "day")) +
                              " " + two_digits(field(n, "hour")) + ":" +
                              two_digits(field(n, "min")) + ":" + two_digits(field(n, "sec"));
      timing.push_back({"UTC (NAV-TIMEUTC)", utc});
      timing.push_back({"UTC valid", field(n, "validUTC") != 0 ? "yes" : "no"});
      timing.push_back({"time accuracy tAcc (ns)", field(n, "tAcc")});
      timing.push_back({"nano (ns)", field(n, "nano")});
      gauges["t_acc_ns"] = field(n, "tAcc");
    }
    if (!tim_tp_.is_null()) {
      const auto& t = tim_tp_;
      timing.push_back({"next pulse: week", field(t, "week")});
      timing.push_back({"next pulse: time of week (ms)", field(t, "towMS")});
      timing.push_back({"quantisation error qErr (ps)", field(t, "qErr")});
      timing.push_back({"qErr valid", field(t, "qErrInvalid") == 0 ? "yes" : "no"});
      timing.push_back({"time base", field(t, "timeBase") != 0 ? "UTC" : "GNSS"});
      timing.push_back({"RAIM", field(t, "raim")});
      timing.push_back({"pulse locked", field(t, "TpNotLocked") == 0 ? "yes" : "no"});
      gauges["qerr_ps"] = field(t, "qErr");
    }
    std::vector<double> bounds(kQErrBoundsPs.begin(), kQErrBoundsPs.end());
    nlohmann::json labels = nlohmann::json::array();
    for (double& b : bounds) {
      labels.push_back("≤" + std::to_string(static_cast<int>(b)) + " ps");
      b *= 1e-12;
    }
    labels.push_back(">");
    j["histograms"] =
        nlohmann::json::array({{{"id", "qerr"},
                                {"title", "TIM-TP quantisation error (messages per bucket)"},
                                {"unit", "messages"},
                                {"bounds_s", bounds},
                                {"labels", labels},
                                {"counts", qerr_counts_}}});
  }
  j["counters"] = std::move(counters);
  j["rates"] = std::move(rates);
  j["plot_gauges"] =
      gauges.contains("qerr_ps") ? nlohmann::json::array({"qerr_ps"}) : nlohmann::json::array();
  j["gauges"] = std::move(gauges);

  nlohmann::json receiver = nlohmann::json::array();
  receiver.push_back({"state", s.io_running ? "running" : "stopped"});
  if (!s.device.empty()) {
    receiver.push_back({"device", s.device});
    receiver.push_back({"model", s.model});
    receiver.push_back({"unique id", s.uid});
  }
  receiver.push_back(
      {"InitF9t ok / failed", std::to_string(s.inits_ok) + " / " + std::to_string(s.inits_failed)});
  if (!s.last_failure.empty()) receiver.push_back({"last InitF9t failure", s.last_failure});
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& c : s.captures) {
    std::string patterns;
    for (const auto& p : c.patterns) patterns += (patterns.empty() ? "" : " ") + p;
    clients.push_back(
        {c.peer, patterns.empty() ? "all" : patterns, c.delivered, c.dropped, c.queued});
  }
  j["tables"] =
      nlohmann::json::array({{{"id", "receiver"},
                              {"title", "Receiver"},
                              {"columns", {"", "value"}},
                              {"rows", std::move(receiver)}},
                             {{"id", "timing"},
                              {"title", "Fix and timing (latest NAV-TIMEUTC and TIM-TP)"},
                              {"columns", {"", "value"}},
                              {"rows", std::move(timing)},
                              {"empty", "no timing message received yet"}},
                             {{"id", "messages"},
                              {"title", "Messages by identity"},
                              {"columns", {"identity", "count", "last (s ago)"}},
                              {"rows", std::move(message_rows)},
                              {"empty", "no message received yet"}},
                             {{"id", "clients"},
                              {"title", "CaptureUblox clients"},
                              {"columns", {"peer", "patterns", "sent", "dropped", "queued"}},
                              {"rows", std::move(clients)},
                              {"empty", "no client connected"}}});
  j["info"] = info_;
  return j;
}

}  // namespace acheron::gnss
