// `acheron gnss serve|init|capture|sim|default-config`: the UbloxControl
// server, its client commands and the simulated ZED-F9T. See docs/gnss.md.
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "Commands.hh"
#include "Durations.hh"
#include "HttpChoice.hh"
#include "Progress.hh"
#include "Ready.hh"
#include "Signals.hh"
#include "acheron/core/Log.hh"
#include "acheron/gnss/Client.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Json5.hh"
#include "acheron/gnss/Monitor.hh"
#include "acheron/gnss/Server.hh"
#include "acheron/gnss/Simulator.hh"

namespace acheron::app {
namespace {

std::set<std::uint32_t> key_ids(const std::vector<std::string>& names) {
  std::set<std::uint32_t> ids;
  for (const auto& n : names) {
    const auto* k = wire::ubx::find_key(n);
    if (!k)
      throw SetupError("unknown configuration key '" + n +
                       "' (not in the u-blox key table) check the name");
    ids.insert(k->id);
  }
  return ids;
}

std::string hex_of(const wire::ubx::Bytes& b) {
  static constexpr char d[] = "0123456789abcdef";
  std::string s;
  for (auto c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}

// --tls-ca, --tls-cert, --tls-key of the client commands.
void add_client_tls(CLI::App* cmd, gnss::ClientTls* tls) {
  cmd->add_option("--tls-ca", tls->ca_file, "connect with TLS, trusting this CA (PEM)");
  cmd->add_option("--tls-cert", tls->cert_file,
                  "client certificate (PEM) for a server that requires one; with --tls-key");
  cmd->add_option("--tls-key", tls->key_file, "private key (PEM) of --tls-cert");
}

}  // namespace

void add_gnss_commands(CLI::App& app, int* exit_code) {
  auto* gnss =
      app.add_subcommand("gnss", "GNSS timing receiver (u-blox ZED-F9T): UbloxControl over gRPC");
  gnss->require_subcommand(1);

  // acheron gnss serve
  {
    struct Opts {
      gnss::ServerOptions server;
      double grace_s = 0.5;
      std::string http;
    };
    auto o = std::make_shared<Opts>();
    auto* serve =
        gnss->add_subcommand("serve", "serve UbloxControl (InitF9t, CaptureUblox) over gRPC");
    serve
        ->add_option(
            "--bind", o->server.bind,
            "listen address, HOST:PORT (one; the default, every interface on port 50051, is "
            "what PANOSETI's clients dial; 127.0.0.1:50051 for this host only; port 0 "
            "picks a free one)")
        ->capture_default_str();
    serve
        ->add_option("--queue-size", o->server.service.max_read_queue_size,
                     "messages queued per capture client before the oldest is dropped")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    add_duration_option(serve, "--grace", o->grace_s, "shutdown grace period for open calls");
    add_deprecated_duration(serve, "--grace-ms", "--grace", 1e-3, o->grace_s);
    serve->add_option("--tls-cert", o->server.tls.cert_file,
                      "serve with TLS: the server certificate (PEM; with --tls-key)");
    serve->add_option("--tls-key", o->server.tls.key_file, "private key (PEM) of --tls-cert");
    serve->add_option("--tls-client-ca", o->server.tls.client_ca_file,
                      "require client certificates signed by this CA (PEM)");
    serve
        ->add_option("--max-threads", o->server.max_threads,
                     "gRPC threads; every call holds one while it runs (a capture stream for its "
                     "whole life), so at most this many minus one calls run at once")
        ->capture_default_str()
        ->check(CLI::Range(2, 100000));
    serve
        ->add_option("--max-streams-per-connection", o->server.max_streams_per_connection,
                     "calls one connection may have open (HTTP/2 streams; more wait in the client)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    serve
        ->add_option("--max-receive-bytes", o->server.max_receive_message_bytes,
                     "largest request accepted; a larger one gets RESOURCE_EXHAUSTED")
        ->capture_default_str()
        ->check(CLI::Range(4096, 1 << 30));
    serve
        ->add_option("--allow-device", o->server.service.allowed_devices,
                     "serial device paths InitF9t may open (glob, repeatable; replaces the "
                     "default list)")
        ->capture_default_str();
    add_http_option(serve, o->http);
    serve->callback([o, exit_code] {
      o->server.shutdown_grace = to_duration(o->grace_s);
      SignalWatcher signals;
      gnss::UbloxControlServer server(o->server);
      signals.set_target([&server] { server.shutdown(); });
      std::shared_ptr<gnss::GnssMonitor> monitor;
      std::unique_ptr<net::HttpFront> http;
      if (!o->http.empty()) {
        nlohmann::json info = {{"listening", server.bound_address()},
                               {"queue_size", o->server.service.max_read_queue_size},
                               {"max_threads", o->server.max_threads}};
        monitor = gnss::GnssMonitor::create(server.service(), "gnss", info);
        auto registry = std::make_shared<hub::Registry>();
        registry->add(monitor->service());
        http = start_http(o->http, registry);
      }
      // The address to dial first; then what is bound, when it differs.
      std::string notes;
      if (server.wildcard()) notes = "listening on " + server.bound_address() + ", every interface";
      if (!o->server.tls.cert_file.empty())
        notes +=
            std::string(notes.empty() ? "" : "; ") +
            (o->server.tls.client_ca_file.empty() ? "TLS" : "TLS, client certificates required");
      if (!notes.empty()) log::info("gnss: {}", notes);
      std::vector<ReadyEndpoint> ready = {{"tcp", server.address()}};
      add_http_endpoint(ready, http.get());
      print_ready("gnss serve", ready);
      server.wait();
      if (http) http->stop();
      log::info("gnss server stopped");
      *exit_code = kOk;
    });
  }

  // acheron gnss init
  {
    struct Opts {
      std::string connect = "localhost:50051";
      std::string config;
      int chip = 0;
      std::string uid, device;
      bool force = false;
      double timeout_s = 30;
      gnss::ClientTls tls;
    };
    auto o = std::make_shared<Opts>();
    auto* init = gnss->add_subcommand(
        "init", "initialize, configure and verify the F9T through a server (InitF9t)");
    init->add_option("--connect", o->connect, "the server (HOST:PORT)")->capture_default_str();
    init->add_option("--config", o->config, "f9t_config.json5 (default: the embedded default)");
    auto* chip = init->add_option("--chip", o->chip, "index in f9t_chips")->capture_default_str();
    init->add_option("--uid", o->uid, "pick the chip with this f9t_uid")->excludes(chip);
    init->add_option("--device", o->device, "override the chip's serial device path");
    init->add_flag("--force", o->force, "end open capture streams and initialize anyway");
    add_duration_option(init, "--timeout", o->timeout_s, "give up after this long");
    add_deprecated_duration(init, "--timeout-s", "--timeout", 1, o->timeout_s);
    add_client_tls(init, &o->tls);
    init->callback([o, exit_code] {
      const auto file = o->config.empty() ? gnss::parse_json5(gnss::default_f9t_config_json5())
                                          : gnss::load_json5_file(o->config);
      auto request = gnss::chip_request_config(file, o->chip, o->uid);
      if (!o->device.empty()) request["device"] = o->device;
      gnss::UbloxClient client(o->connect, o->tls);
      const std::string message = client.init(
          request, o->force,
          std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o->timeout_s)));
      std::printf("%s\n", message.c_str());
      *exit_code = kOk;
    });
  }

  // acheron gnss capture
  {
    struct Opts {
      std::string connect = "localhost:50051";
      std::vector<std::string> patterns;
      long count = 0;
      double seconds = 0;
      bool json = false;
      gnss::ClientTls tls;
    };
    auto o = std::make_shared<Opts>();
    auto* cap = gnss->add_subcommand("capture", "stream UBX messages from a server (CaptureUblox)");
    cap->add_option("--connect", o->connect, "the server (HOST:PORT)")->capture_default_str();
    cap->add_option(
        "--pattern,-p", o->patterns,
        "regular expression matched at the start of the message name (repeatable; default all)");
    cap->add_option("--count,-n", o->count, "stop after N messages (0: no limit)")
        ->capture_default_str();
    add_duration_option(cap, "--duration", o->seconds, "stop after this long (0s: no limit)");
    add_deprecated_duration(cap, "--seconds", "--duration", 1, o->seconds);
    cap->add_flag(
        "--json", o->json,
        "one JSON object per line: name, unix time, parsed_data, payload_hex (the whole frame)");
    add_client_tls(cap, &o->tls);
    add_progress_flags(cap);
    cap->callback([o, exit_code] {
      SignalWatcher signals;
      std::atomic<bool> stop{false};
      gnss::UbloxClient client(o->connect, o->tls);
      signals.set_target([&stop, &client] {
        stop = true;
        client.cancel();
      });
      struct Untarget {  // the client goes away before the watcher
        SignalWatcher& s;
        ~Untarget() { s.set_target({}); }
      } untarget{signals};
      long n = 0;
      const Duration limit =
          o->seconds > 0
              ? std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o->seconds))
              : Duration::max();
      // Messages: a bar to -n (or through --duration), else a running count.
      Progress progress({.label = "capture",
                         .unit = "messages",
                         .total = o->count > 0 ? static_cast<std::uint64_t>(o->count) : 0,
                         .duration_s = o->count > 0 ? 0 : o->seconds});
      const bool stdout_tty = isatty(STDOUT_FILENO);
      client.capture(
          o->patterns,
          [&](const gnss::CapturedMessage& m) {
            if (stop) return false;
            if (stdout_tty) progress.clear();
            if (o->json) {
              nlohmann::json j = {{"name", m.name},
                                  {"unix_time", static_cast<double>(m.unix_ns) * 1e-9},
                                  {"parsed_data", m.parsed},
                                  {"payload_hex", hex_of(m.frame)}};
              std::printf("%s\n", j.dump().c_str());
            } else {
              nlohmann::json fields = nlohmann::json::object();
              for (const auto& [k, v] : m.parsed.items()) {
                if (k == "payload" || k == "msg_cls" || k == "msg_id" || k == "msgmode" ||
                    k == "identity")
                  continue;
                // Struct numbers are doubles; show whole numbers as integers.
                const bool whole = v.is_number() && std::abs(v.get<double>()) < 1e15 &&
                                   v.get<double>() == std::trunc(v.get<double>());
                fields[k] = whole ? nlohmann::json(static_cast<std::int64_t>(v.get<double>())) : v;
              }
              std::printf("%.6f %-12s %s\n", static_cast<double>(m.unix_ns) * 1e-9, m.name.c_str(),
                          fields.dump().c_str());
            }
            std::fflush(stdout);
            ++n;
            progress.update(static_cast<std::uint64_t>(n));
            return !stop && (o->count <= 0 || n < o->count);
          },
          limit);
      progress.finish();
      *exit_code = signals.signalled() ? kInterrupted : kOk;
    });
  }

  // acheron gnss sim
  {
    struct Opts {
      gnss::SimOptions sim;
      double period_s = 1;
      std::string replay;
      bool lenient = false;
      std::vector<std::string> faults, nak_keys, mismatch_keys;
    };
    auto o = std::make_shared<Opts>();
    auto* sim = gnss->add_subcommand(
        "sim", "a simulated ZED-F9T on a pseudo-terminal (prints its device path)");
    sim->add_option("--uid", o->sim.unique_id, "unique id it reports (10 hex digits)")
        ->capture_default_str();
    sim->add_option("--model", o->sim.model, "model after MOD= in MON-VER")->capture_default_str();
    add_duration_option(sim, "--period", o->period_s, "wall time per simulated second",
                        {0.001, 3600});
    add_deprecated_duration(sim, "--period-ms", "--period", 1e-3, o->period_s, {0.001, 3600});
    sim->add_option("--link", o->sim.link, "also make this symlink to the pseudo-terminal");
    sim->add_option("--replay", o->replay,
                    "emit the frames of a capture .jsonl instead of generated ones");
    sim->add_flag("--lenient", o->lenient, "accept configuration keys outside the key table");
    sim->add_option("--fault", o->faults,
                    "wrong-model, nak-all, silent, corrupt or nmea (repeatable)")
        ->check(CLI::IsMember({"wrong-model", "nak-all", "silent", "corrupt", "nmea"}));
    sim->add_option("--nak-key", o->nak_keys, "NAK any CFG-VALSET that sets this key (repeatable)");
    sim->add_option("--mismatch-key", o->mismatch_keys,
                    "report this key wrongly in CFG-VALGET (repeatable)");
    sim->callback([o, exit_code] {
      o->sim.period = to_duration(o->period_s);
      o->sim.strict_keys = !o->lenient;
      if (!o->replay.empty()) o->sim.replay = gnss::load_capture_jsonl(o->replay);
      for (const auto& f : o->faults) {
        if (f == "wrong-model") o->sim.faults.wrong_model = true;
        if (f == "nak-all") o->sim.faults.nak_all = true;
        if (f == "silent") o->sim.faults.silent = true;
        if (f == "corrupt") o->sim.faults.corrupt_checksums = true;
        if (f == "nmea") o->sim.faults.nmea = true;
      }
      o->sim.faults.nak_keys = key_ids(o->nak_keys);
      o->sim.faults.mismatch_keys = key_ids(o->mismatch_keys);
      SignalWatcher signals;
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      signals.set_target([&] {
        std::lock_guard lock(m);
        done = true;
        cv.notify_all();
      });
      gnss::SimulatedF9t f9t(o->sim);
      std::printf("device %s\n", f9t.device_path().c_str());
      std::fflush(stdout);
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return done; });
      *exit_code = kOk;
    });
  }

  // acheron gnss default-config
  {
    auto* def = gnss->add_subcommand("default-config", "print the embedded f9t_config.json5");
    def->callback([exit_code] {
      warn_old_default_verb("gnss default-config", "gnss");
      print_default_config("gnss");
      *exit_code = kOk;
    });
  }
}

}  // namespace acheron::app
