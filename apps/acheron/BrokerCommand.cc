// `acheron broker`: the load-balancing ChAR0N broker (docs/broker.md).
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "Commands.hh"
#include "DetectorChoice.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "HttpChoice.hh"
#include "Ready.hh"
#include "Signals.hh"
#include "acheron/broker/Broker.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/photon/Convert.hh"

namespace acheron::app {
namespace {

Duration from_seconds(double s) {
  return saturating_duration(std::chrono::duration<double>(s));
}

// Z85 public keys, one per non-empty line ('#' starts a comment line), so
// both a list file and the .pub files written by `acheron keygen` work.
std::vector<std::string> read_key_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw SetupError("cannot read the allowed-keys file '" + path +
                     "' (missing or unreadable) check the path given to --curve-allow");
  }
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && line[0] != '#') keys.push_back(line);
  }
  return keys;
}

}  // namespace

void add_broker_command(CLI::App& app, int* exit_code) {
  struct Opts {
    broker::BrokerOptions broker;
    std::string ping_reply = "ack";
    double queue_ttl_s = 60;
    double no_worker_grace_s = 10;
    double busy_timeout_s = 600;
    double dedupe_window_s = 120;
    std::string curve_key;
    std::string curve_sockets = "both";
    std::vector<std::string> curve_allow;
    std::string outdir = ".";
    DetectorChoice detector;
    bool detector_from_first_worker = false;
    std::string http;
  };
  auto o = std::make_shared<Opts>();
  auto& r = o->broker.router;
  auto* cmd = app.add_subcommand(
      "broker", "load-balancing ChAR0N broker: clients on --bind, workers on --worker-bind");
  cmd->add_option("--bind", o->broker.frontend,
                  "endpoint ChAR0N clients connect to (one; ChAR0N's default: all interfaces, "
                  "tcp://127.0.0.1:5555 keeps it local, port * any free one)")
      ->capture_default_str();
  cmd->add_option("--worker-bind", o->broker.backend,
                  "endpoint workers connect to (one; ChAR0N's default: all interfaces, for "
                  "workers on other hosts; use CURVE there, see docs/security.md)")
      ->capture_default_str();
  add_deprecated_alias(cmd, "--frontend", "--bind", o->broker.frontend);
  add_deprecated_alias(cmd, "--backend", "--worker-bind", o->broker.backend);
  add_chroma_options(cmd, o->broker.chroma_bind, o->broker.chroma);
  cmd->add_option("--ping-reply", o->ping_reply, "reply to PING: ack (current) or pong (v1)")
      ->check(CLI::IsMember({"ack", "pong"}))
      ->capture_default_str();
  cmd->add_option("--max-queue-jobs", r.max_queue_jobs,
                  "requests waiting for a worker before NO_WORKERS")
      ->capture_default_str();
  cmd->add_option("--max-queue-jobs-per-host", r.max_queue_jobs_per_host,
                  "requests one host (client address) may have waiting before its new ones get "
                  "NO_WORKERS")
      ->capture_default_str();
  cmd->add_option("--max-queue-bytes", r.max_queue_bytes,
                  "request bytes waiting for a worker before NO_WORKERS")
      ->capture_default_str();
  add_duration_option(cmd, "--queue-ttl", o->queue_ttl_s,
                      "how long a request may wait in the queue", {}, true);
  add_duration_option(cmd, "--no-worker-grace", o->no_worker_grace_s,
                      "how long without any worker before requests get NO_WORKERS", {}, true);
  add_duration_option(cmd, "--busy-timeout", o->busy_timeout_s,
                      "how long a busy worker that does not heartbeat while busy may stay silent",
                      {}, true);
  cmd->add_option("--max-job-retries", r.max_job_retries,
                  "re-dispatches after worker deaths before SIM_FAILED")
      ->capture_default_str();
  add_duration_option(cmd, "--dedupe-window", o->dedupe_window_s,
                      "how long finished replies are kept for resends (0s: none)", {}, true);
  cmd->add_option("--worker-prefetch", r.worker_prefetch, "jobs in flight per worker")
      ->capture_default_str();
  cmd->add_option("--max-photons", r.limits.max_photons, "largest event accepted")
      ->capture_default_str();
  cmd->add_option("--max-message-size", o->broker.max_message_size,
                  "largest frame accepted from a client or worker, bytes (0: no limit); a "
                  "larger one disconnects its sender")
      ->capture_default_str();
  cmd->add_flag("--async", r.async,
                "asynchronous mode: answer PHOTONDATA SIM_COMPLETE_ASYNC and write hits per run");
  cmd->add_option("--outdir", o->outdir, "directory of the run files (asynchronous mode)")
      ->capture_default_str();
  cmd->add_option("--events-per-basket", r.async_options.events_per_basket,
                  "events per write of a run file (asynchronous mode)")
      ->capture_default_str();
  cmd->add_option("--photons-per-batch", r.photons_per_batch,
                  "asynchronous mode: whole events packed per worker up to this many photons "
                  "(0: worker-prefetch only)")
      ->capture_default_str();
  cmd->add_option("--max-async-backlog-photons", r.async_options.max_backlog_photons,
                  "unsimulated photons above which ASYNC replies are held back")
      ->capture_default_str();
  add_detector_options(cmd, o->detector);
  cmd->add_flag("--detector-from-first-worker", o->detector_from_first_worker,
                "expect whatever detector the first worker reports instead of --detector "
                "(safe only when every backend peer is trusted: loopback or CURVE with "
                "--curve-allow)")
      ->excludes("--detector")
      ->excludes("--pmts");
  cmd->add_option("--curve-key", o->curve_key,
                  "CURVE secret key file of the broker (enables CURVE; see --curve-sockets)");
  cmd->add_option("--curve-sockets", o->curve_sockets, "sockets that use CURVE")
      ->check(CLI::IsMember({"both", "frontend", "backend"}))
      ->capture_default_str();
  cmd->add_option("--curve-allow", o->curve_allow,
                  "file of allowed client/worker public keys (repeatable); default: any");
  add_http_option(cmd, o->http);
  cmd->callback([o, exit_code] {
    auto& opts = o->broker;
    auto& ro = opts.router;
    ro.ping_reply = o->ping_reply == "pong" ? charon::PingReply::pong : charon::PingReply::ack;
    ro.queue_ttl = from_seconds(o->queue_ttl_s);
    ro.no_worker_grace = from_seconds(o->no_worker_grace_s);
    ro.busy_timeout = from_seconds(o->busy_timeout_s);
    ro.dedupe_window = from_seconds(o->dedupe_window_s);
    ro.async_options.outdir = o->outdir;
    // Workers must serve the operator's detector: a peer on the backend
    // cannot choose it by answering first.
    if (!o->detector_from_first_worker) {
      ro.expected_detector = photon::detector_info(*load_detector(o->detector));
    }
    if (!o->curve_key.empty()) {
      const auto keys = net::read_curve_keys(o->curve_key);
      if (o->curve_sockets != "backend") opts.frontend_curve = keys;
      if (o->curve_sockets != "frontend") opts.backend_curve = keys;
    }
    for (const auto& file : o->curve_allow) {
      for (auto& k : read_key_list(file)) opts.curve_allowed.push_back(std::move(k));
    }
    SignalWatcher signals;  // before the broker's threads start
    broker::Broker b(opts);
    signals.set_target([&b] { b.stop(); });
    std::unique_ptr<net::HttpFront> http;
    if (!o->http.empty()) {
      auto monitor =
          broker::BrokerMonitor::create("broker", "load-balancing ChAR0N broker (acheron broker)",
                                        {{"role", "broker"}, {"async", opts.router.async}});
      b.set_monitor(monitor);
      auto registry = std::make_shared<hub::Registry>();
      registry->add(monitor->service());
      http = start_http(o->http, registry);
    }
    std::vector<ReadyEndpoint> ready = {{"client", b.endpoints().frontend},
                                        {"worker", b.endpoints().backend}};
    for (const auto& e : b.endpoints().chroma) ready.push_back({"chroma", e});
    add_http_endpoint(ready, http.get());
    print_ready("broker", ready);
    b.run();
    if (http) http->stop();
    signals.set_target({});  // b is destroyed before signals
    log::info("broker stopped");
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
