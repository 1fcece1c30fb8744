#include "acheron/remote/Monitor.hh"

#include <cmath>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace acheron::remote {
namespace {

prometheus::Counter& labelled_counter(std::map<std::string, prometheus::Counter*>& cache,
                                      prometheus::Family<prometheus::Counter>& family,
                                      const std::string& label, const std::string& value) {
  auto& c = cache[value];
  if (!c) c = &family.Add({{label, value}});
  return *c;
}

double rounded_to(double v, double unit) {
  return std::round(v / unit) * unit;
}

}  // namespace

std::shared_ptr<RemoteMonitor> RemoteMonitor::create(RemoteServer& server, std::string name,
                                                     nlohmann::json info) {
  std::shared_ptr<RemoteMonitor> m(new RemoteMonitor(server, std::move(name), std::move(info)));
  std::weak_ptr<RemoteMonitor> weak = m;
  m->service_->set_status([weak] {
    if (auto s = weak.lock()) return s->snapshot();
    return nlohmann::json{{"error", "the remote server has stopped"}};
  });
  m->service_->set_metrics_refresh([weak] {
    if (auto s = weak.lock()) s->refresh();
  });
  return m;
}

RemoteMonitor::RemoteMonitor(RemoteServer& server, std::string name, nlohmann::json info)
    : server_(server),
      service_(std::make_shared<hub::Service>(
          std::move(name), "remote objects: calls and streams (acheron remote serve-demo)")),
      info_(std::move(info)) {
  auto& reg = *service_->metrics();
  requests_ = &hub::add_counter(reg, "acheron_remote_requests_total",
                                "Messages from clients (calls, built-ins, pings, cancels)");
  calls_family_ = &hub::counter_family(reg, "acheron_remote_calls_total",
                                       "Calls finished, by call (failed ones included)");
  errors_family_ = &hub::counter_family(reg, "acheron_remote_call_errors_total",
                                        "Calls answered with an error, by call");
  refused_family_ = &hub::counter_family(
      reg, "acheron_remote_refused_total",
      "Requests refused before running: busy (too many calls in flight), not_found, malformed");
  stream_messages_family_ = &hub::counter_family(reg, "acheron_remote_stream_messages_total",
                                                 "Stream messages published, by stream");
  stream_dropped_family_ = &hub::counter_family(
      reg, "acheron_remote_stream_dropped_total",
      "Stream messages dropped because a subscriber's queue stayed full, by stream");
  stream_subscribed_family_ = &hub::gauge_family(reg, "acheron_remote_stream_subscribed",
                                                 "1 while a stream has subscribers, else 0");
  durations_ = &prometheus::BuildHistogram()
                    .Name("acheron_remote_call_duration_seconds")
                    .Help("Time a call ran, from its start on a call thread to its reply")
                    .Register(reg)
                    .Add({}, prometheus::Histogram::BucketBoundaries(kCallDurationBoundsS.begin(),
                                                                     kCallDurationBoundsS.end()));
  clients_ = &hub::add_gauge(reg, "acheron_remote_clients",
                             "Clients seen (remembered up to 256, least recent forgotten)");
  in_flight_ = &hub::add_gauge(reg, "acheron_remote_in_flight",
                               "Calls running on call threads or waiting for one");
}

void RemoteMonitor::refresh() {
  const ServerStats s = server_.stats();
  const auto streams = server_.streams();
  std::lock_guard lock(refresh_mutex_);
  hub::raise_to(*requests_, static_cast<double>(s.requests));
  for (const auto& c : s.calls) {
    hub::raise_to(labelled_counter(calls_, *calls_family_, "call", c.name),
                  static_cast<double>(c.calls));
    hub::raise_to(labelled_counter(errors_, *errors_family_, "call", c.name),
                  static_cast<double>(c.errors));
  }
  hub::raise_to(labelled_counter(refused_, *refused_family_, "reason", "busy"),
                static_cast<double>(s.refused_busy));
  hub::raise_to(labelled_counter(refused_, *refused_family_, "reason", "not_found"),
                static_cast<double>(s.not_found));
  hub::raise_to(labelled_counter(refused_, *refused_family_, "reason", "malformed"),
                static_cast<double>(s.malformed));
  for (const auto& st : streams) {
    hub::raise_to(labelled_counter(stream_messages_, *stream_messages_family_, "stream", st.name),
                  static_cast<double>(st.published));
    hub::raise_to(labelled_counter(stream_dropped_, *stream_dropped_family_, "stream", st.name),
                  static_cast<double>(st.dropped));
    auto& g = stream_subscribed_[st.name];
    if (!g) g = &stream_subscribed_family_->Add({{"stream", st.name}});
    g->Set(st.subscribed ? 1 : 0);
  }
  // The server counts durations in the same buckets: hand over what is new.
  durations_seen_.resize(s.duration_counts.size(), 0);
  std::vector<double> increments(s.duration_counts.size(), 0);
  bool any = false;
  for (std::size_t i = 0; i < s.duration_counts.size(); ++i) {
    if (s.duration_counts[i] > durations_seen_[i]) {
      increments[i] = static_cast<double>(s.duration_counts[i] - durations_seen_[i]);
      durations_seen_[i] = s.duration_counts[i];
      any = true;
    }
  }
  if (any) {
    durations_->ObserveMultiple(increments, std::max(0.0, s.duration_sum_s - duration_sum_seen_));
    duration_sum_seen_ = s.duration_sum_s;
  }
  clients_->Set(static_cast<double>(s.clients.size()));
  in_flight_->Set(static_cast<double>(s.in_flight));
}

nlohmann::json RemoteMonitor::snapshot() const {
  const ServerStats s = server_.stats();
  const auto streams = server_.streams();
  nlohmann::json j;
  j["kind"] = "remote";
  j["time"] = hub::unix_seconds();
  std::uint64_t calls = 0, errors = 0, messages = 0, dropped = 0, subscribed = 0;
  nlohmann::json call_rows = nlohmann::json::array();
  for (const auto& c : s.calls) {
    calls += c.calls;
    errors += c.errors;
    call_rows.push_back({c.name, c.calls, c.errors,
                         c.calls ? rounded_to(1e3 * c.busy_s / c.calls, 1e-3) : 0.0,
                         c.mutating ? "yes" : ""});
  }
  nlohmann::json stream_rows = nlohmann::json::array();
  for (const auto& st : streams) {
    messages += st.published;
    dropped += st.dropped;
    subscribed += st.subscribed ? 1 : 0;
    stream_rows.push_back(
        {st.name, std::string(to_string(st.kind)), st.enabled ? "enabled" : "disabled",
         st.kind == StreamKind::periodic ? nlohmann::json(st.rate_hz) : nlohmann::json(""),
         rounded_to(st.achieved_hz, 0.01), st.published, st.dropped, st.subscribed ? "yes" : "no",
         st.errors});
  }
  nlohmann::json client_rows = nlohmann::json::array();
  for (const auto& c : s.clients) {
    if (client_rows.size() >= kMaxClientRows) break;
    client_rows.push_back({c.identity, c.requests, rounded_to(c.last_seen_s, 0.1)});
  }
  j["counters"] = {{"requests", s.requests},      {"calls", calls},
                   {"call_errors", errors},       {"refused_busy", s.refused_busy},
                   {"not_found", s.not_found},    {"malformed", s.malformed},
                   {"stream_messages", messages}, {"stream_dropped", dropped}};
  j["rates"] = {
      {"calls", "calls/s"}, {"call_errors", "errors/s"}, {"stream_messages", "stream messages/s"}};
  j["gauges"] = {{"clients", s.clients.size()},
                 {"in_flight", s.in_flight},
                 {"streams_subscribed", subscribed}};
  j["plot_gauges"] = nlohmann::json::array({"in_flight"});
  j["latency"] = {{"title", "call durations (calls per bucket)"},
                  {"unit", "calls"},
                  {"bounds_s", s.duration_bounds_s},
                  {"counts", s.duration_counts}};
  j["tables"] = nlohmann::json::array(
      {{{"id", "calls"},
        {"title", "Calls served"},
        {"columns", {"call", "calls", "errors", "mean time (ms)", "mutating"}},
        {"rows", std::move(call_rows)},
        {"empty", "no call registered"}},
       {{"id", "streams"},
        {"title", "Streams"},
        {"columns",
         {"stream", "kind", "state", "rate (Hz)", "achieved (Hz)", "published", "dropped",
          "subscribed", "producer errors"}},
        {"rows", std::move(stream_rows)},
        {"empty", "no stream"}},
       {{"id", "clients"},
        {"title", "Clients (most recent first)"},
        {"columns", {"identity", "requests", "last seen (s ago)"}},
        {"rows", std::move(client_rows)},
        {"empty", "no client yet"}}});
  nlohmann::json info = info_;
  info["calls endpoint"] = server_.rpc_endpoint();
  info["streams endpoint"] = server_.stream_endpoint();
  j["info"] = std::move(info);
  return j;
}

}  // namespace acheron::remote
