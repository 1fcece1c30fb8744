// `acheron daq serve|ping|init|stream|default-config`: the PANOSETI DaqData
// server and its clients. See docs/daq.md.
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>

#include "Commands.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "HttpChoice.hh"
#include "Progress.hh"
#include "Ready.hh"
#include "Signals.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/daq/Client.hh"
#include "acheron/daq/Monitor.hh"
#include "acheron/daq/Server.hh"

namespace acheron::app {

namespace {

namespace fs = std::filesystem;
namespace pff = wire::pff;

// --tls-ca, --tls-cert, --tls-key of the client commands.
void add_client_tls(CLI::App* cmd, daq::ClientTls* tls) {
  cmd->add_option("--tls-ca", tls->ca_file,
                  "connect with TLS, trusting this CA (PEM); TCP targets only");
  cmd->add_option("--tls-cert", tls->cert_file,
                  "client certificate (PEM) for a server that requires one; with --tls-key");
  cmd->add_option("--tls-key", tls->key_file, "private key (PEM) of --tls-cert");
}

void add_serve(CLI::App& daq, int* exit_code) {
  struct Opts {
    std::string config;
    std::vector<std::string> binds;
    std::string tcp;
    bool no_tcp = false;
    std::string unix_socket;
    std::string tls_cert, tls_key, tls_client_ca;
    std::vector<std::string> data_roots;
    std::string http;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = daq.add_subcommand(
      "serve", "serve DaqData over gRPC (no --config: simulated images from an embedded default)");
  cmd->add_option("--config", o->config,
                  "server configuration JSON (upstream daq_data_server_config.json keys)");
  cmd->add_option("--bind", o->binds,
                  "listen on HOST:PORT (TCP; port 0 = any free) or unix:///PATH; repeatable, "
                  "at most one of each; replaces the default listeners, TCP [::]:50051 (every "
                  "interface, as PANOSETI's server) and unix:///tmp/daq_data.sock")
      ->allow_extra_args(false);
  add_deprecated_alias(cmd, "--tcp", "--bind", o->tcp);
  add_deprecated_alias(cmd, "--unix", "--bind", o->unix_socket);
  cmd->add_flag_function(
         "--no-tcp",
         [o](std::int64_t) {
           warn_deprecated("--no-tcp", "--bind unix:///PATH (only the listeners given)");
           o->no_tcp = true;
         },
         "deprecated: --bind unix:///PATH")
      ->group("");
  cmd->add_option("--tls-cert", o->tls_cert,
                  "serve TCP with TLS: the server certificate (PEM; with --tls-key)");
  cmd->add_option("--tls-key", o->tls_key, "private key (PEM) of --tls-cert");
  cmd->add_option("--tls-client-ca", o->tls_client_ca,
                  "require client certificates signed by this CA (PEM)");
  cmd->add_option("--allow-data-root", o->data_roots,
                  "directory InitHpIo may read real data from (repeatable; replaces "
                  "allowed_data_roots, default /mnt/panoseti)");
  add_http_option(cmd, o->http);
  cmd->callback([o, exit_code] {
    auto config = o->config.empty() ? daq::parse_server_config(daq::default_server_config_json())
                                    : daq::load_server_config(o->config);
    if (!o->binds.empty()) {
      config.tcp_address.clear();
      config.unix_domain_socket.clear();
      for (const auto& b : o->binds) {
        auto& slot = b.starts_with("unix:") ? config.unix_domain_socket : config.tcp_address;
        if (!slot.empty()) {
          throw SetupError("--bind " + b + ": a second " +
                           (b.starts_with("unix:") ? "unix socket" : "TCP address") +
                           " (the server listens on at most one TCP address and one unix "
                           "socket) give one HOST:PORT and one unix:///PATH at most");
        }
        slot = b.starts_with("tcp://") ? b.substr(6) : b;
      }
    }
    if (!o->tcp.empty()) config.tcp_address = o->tcp;
    if (o->no_tcp) config.tcp_address.clear();
    if (!o->unix_socket.empty()) config.unix_domain_socket = o->unix_socket;
    if (!o->tls_cert.empty()) config.tls_cert_file = o->tls_cert;
    if (!o->tls_key.empty()) config.tls_key_file = o->tls_key;
    if (!o->tls_client_ca.empty()) config.tls_client_ca_file = o->tls_client_ca;
    if (!o->data_roots.empty())
      config.allowed_data_roots.assign(o->data_roots.begin(), o->data_roots.end());
    SignalWatcher signals;  // before the server's threads start
    daq::Server server(config);
    SignalWaiter waiter(signals);
    server.start();
    std::vector<ReadyEndpoint> ready;
    std::string where;
    std::string notes;
    if (server.tcp_port() > 0) {
      auto host = config.tcp_address.substr(0, config.tcp_address.rfind(':'));
      ready.push_back({"tcp", fmt::format("{}:{}", host, server.tcp_port())});
      where = "tcp://" + ready.back().endpoint;
      if (host == "[::]" || host == "0.0.0.0" || host.empty()) notes = "TCP on every interface";
      if (!config.tls_cert_file.empty())
        notes += std::string(notes.empty() ? "" : "; ") +
                 (config.tls_client_ca_file.empty() ? "TLS" : "TLS, client certificates required");
    }
    if (!config.unix_domain_socket.empty()) {
      ready.push_back({"unix", config.unix_domain_socket});
      where += (where.empty() ? "" : " and ") + config.unix_domain_socket;
    }
    if (!notes.empty()) where += " (" + notes + ")";
    std::shared_ptr<daq::DaqMonitor> monitor;
    std::unique_ptr<net::HttpFront> http;
    if (!o->http.empty()) {
      nlohmann::json info = {{"listening", where},
                             {"max_streams", config.max_concurrent_rpcs},
                             {"max_uploads", config.max_concurrent_uploads}};
      monitor = daq::DaqMonitor::create(server, "daq", info);
      auto registry = std::make_shared<hub::Registry>();
      registry->add(monitor->service());
      http = start_http(o->http, registry);
    }
    if (!notes.empty()) log::info("daq: {}", notes);
    add_http_endpoint(ready, http.get());
    print_ready("daq serve", ready);
    waiter.wait();
    log::info("daq: shutting down");
    if (http) http->stop();
    server.shutdown();
    *exit_code = kOk;
  });
}

void add_ping(CLI::App& daq, int* exit_code) {
  struct Opts {
    std::string target;
    double timeout = 0.3;
    daq::ClientTls tls;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = daq.add_subcommand("ping", "check that a DaqData server answers");
  add_connect_option(cmd, o->target, "unix:///tmp/daq_data.sock, HOST:PORT or HOST (:50051)");
  add_duration_option(cmd, "--timeout", o->timeout, "how long to wait for the answer", {}, true);
  add_client_tls(cmd, &o->tls);
  cmd->callback([o, exit_code] {
    daq::Client client(o->target, o->tls);
    const auto t0 = std::chrono::steady_clock::now();
    if (!client.ping(o->timeout, true)) {
      std::fprintf(stderr, "acheron: no answer from %s within %.3g s\n", client.target().c_str(),
                   o->timeout);
      *exit_code = kUnavailable;
      return;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s answered in %.2f ms\n", client.target().c_str(), ms);
    *exit_code = kOk;
  });
}

void add_init(CLI::App& daq, int* exit_code) {
  struct Opts {
    std::string target, config, data_dir;
    bool simulate = false, force = false;
    double interval = -1;
    std::vector<std::uint32_t> modules;
    double timeout = 10;
    daq::ClientTls tls;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = daq.add_subcommand("init", "InitHpIo: (re)configure the server's data sources");
  add_connect_option(cmd, o->target, "the server: unix:///PATH, HOST:PORT or HOST (:50051)");
  cmd->add_option("--config", o->config, "hp_io configuration JSON (hp_io_config*.json keys)");
  cmd->add_flag("--simulate", o->simulate, "serve simulated data (simulate_daq)");
  cmd->add_option("--data-dir", o->data_dir, "run data directory on the server");
  add_duration_option(cmd, "--interval", o->interval,
                      "hp_io update interval (default: the config's, else 100ms)", {}, true)
      ->default_str("");
  cmd->add_flag("--force", o->force, "cancel active streams if needed");
  cmd->add_option("--module", o->modules, "module ids to track");
  add_duration_option(cmd, "--timeout", o->timeout, "how long to wait for the answer", {}, true);
  add_client_tls(cmd, &o->tls);
  cmd->callback([o, exit_code] {
    daq::HpIoConfig c = o->config.empty() ? daq::HpIoConfig{} : daq::load_hp_io_config(o->config);
    if (o->config.empty()) c.update_interval_seconds = 0.1;
    if (o->simulate) c.simulate_daq = true;
    if (o->force) c.force = true;
    if (!o->data_dir.empty()) c.data_dir = o->data_dir;
    if (o->interval >= 0) c.update_interval_seconds = o->interval;
    if (!o->modules.empty()) c.module_ids = o->modules;
    daq::Client client(o->target, o->tls);
    std::string message;
    if (!client.init_hp_io(c, o->timeout, &message)) {
      std::fprintf(stderr, "acheron: InitHpIo on %s did not succeed%s%s\n", client.target().c_str(),
                   message.empty() ? "" : ": ", message.c_str());
      *exit_code = kFailure;
      return;
    }
    std::printf("hp_io initialised on %s\n", client.target().c_str());
    *exit_code = kOk;
  });
}

void add_stream(CLI::App& daq, int* exit_code) {
  struct Opts {
    std::string target, outdir;
    bool movie = false, ph = false;
    double interval = 0, duration = 0;
    std::uint64_t count = 0;
    std::vector<std::uint32_t> modules;
    daq::ClientTls tls;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = daq.add_subcommand("stream",
                                 "StreamImages: print per-module rates, optionally "
                                 "write the frames to PFF files");
  add_connect_option(cmd, o->target, "the server: unix:///PATH, HOST:PORT or HOST (:50051)");
  cmd->add_flag("--movie", o->movie, "movie-mode images (default: both kinds)");
  cmd->add_flag("--ph", o->ph, "pulse-height images (default: both kinds)");
  add_duration_option(cmd, "--interval", o->interval, "update interval (0s: every frame)", {},
                      true);
  cmd->add_option("--module", o->modules, "only these module ids");
  add_duration_option(cmd, "--duration", o->duration, "stop after this long (0s: no limit)", {},
                      true);
  cmd->add_option("--count", o->count, "stop after this many images");
  cmd->add_option("--outdir", o->outdir, "write received frames to PFF files in this directory");
  add_deprecated_alias(cmd, "--out", "--outdir", o->outdir);
  add_progress_flags(cmd);
  add_client_tls(cmd, &o->tls);
  cmd->callback([o, exit_code] {
    daq::StreamOptions so;
    so.movie = o->movie || !o->ph;
    so.pulse_height = o->ph || !o->movie;
    so.update_interval_seconds = o->interval;
    so.module_ids = o->modules;
    if (!o->outdir.empty()) fs::create_directories(o->outdir);
    SignalWatcher signals;
    daq::Client client(o->target, o->tls);
    signals.set_target([&client] { client.cancel(); });
    std::thread timer;
    std::mutex m;
    std::condition_variable cv;
    bool finished = false;
    if (o->duration > 0)
      timer = std::thread([&] {
        std::unique_lock lock(m);
        if (!cv.wait_for(lock, std::chrono::duration<double>(o->duration),
                         [&] { return finished; }))
          client.cancel();
      });
    struct PerModule {
      std::uint64_t movie = 0, ph = 0, window = 0;
    };
    std::map<std::uint32_t, PerModule> modules;
    std::map<std::pair<std::uint32_t, pff::Product>, std::ofstream> files;
    std::uint64_t total = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto last_print = t0;
    std::string frame;
    // Frames: a bar to --count (or through --duration), else a running count.
    Progress progress({.label = "stream",
                       .unit = "frames",
                       .total = o->count,
                       .duration_s = o->count ? 0 : o->duration});
    const bool stdout_tty = isatty(STDOUT_FILENO);
    auto print_rates = [&](double window_s) {
      std::string line;
      for (auto& [id, pm] : modules) {
        line += fmt::format("  module {}: {:.1f} img/s (movie {}, ph {})", id, pm.window / window_s,
                            pm.movie, pm.ph);
        pm.window = 0;
      }
      if (stdout_tty) progress.clear();
      std::printf("%s\n", line.empty() ? "  (no images yet)" : line.c_str() + 2);
      std::fflush(stdout);
    };
    auto [code, message] = client.stream(so, [&](daqdata::StreamImagesResponse& r) {
      const auto& img = r.pano_image();
      auto& pm = modules[img.module_id()];
      (img.type() == daqdata::PanoImage::PULSE_HEIGHT ? pm.ph : pm.movie)++;
      pm.window++;
      ++total;
      progress.update(total);
      pff::Product product;
      if (!o->outdir.empty() && daq::image_to_pff(img, &frame, &product)) {
        auto& f = files[{img.module_id(), product}];
        if (!f.is_open())
          f.open(fs::path(o->outdir) /
                     pff::make_file_name(std::time(nullptr), product, img.module_id(), 0),
                 std::ios::binary);
        f.write(frame.data(), static_cast<std::streamsize>(frame.size()));
      }
      const auto now = std::chrono::steady_clock::now();
      if (now - last_print >= std::chrono::seconds(1)) {
        print_rates(std::chrono::duration<double>(now - last_print).count());
        last_print = now;
      }
      return o->count == 0 || total < o->count;
    });
    {
      std::lock_guard lock(m);
      finished = true;
    }
    cv.notify_all();
    if (timer.joinable()) timer.join();
    progress.finish();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("received %llu images in %.2f s (%.1f img/s)\n",
                static_cast<unsigned long long>(total), secs, total / std::max(secs, 1e-9));
    const bool ended_by_us =
        (o->count > 0 && total >= o->count) || o->duration > 0 || signals.signalled();
    if (code == 0 || code == 1 || code == 14) {
      // CANCELLED, UNAVAILABLE and OK end a stream cleanly (as PANOSETI's clients treat them)
      if (code != 0 && !ended_by_us)
        std::fprintf(stderr, "acheron: stream ended by the server: %s\n", message.c_str());
      *exit_code = kOk;
      return;
    }
    std::fprintf(stderr, "acheron: StreamImages failed: %s (status %d)\n", message.c_str(), code);
    *exit_code = code == 4 ? kUnavailable : kFailure;
  });
}

}  // namespace

void add_daq_commands(CLI::App& app, int* exit_code) {
  auto* daq = app.add_subcommand("daq", "PANOSETI DaqData: telescope image streaming over gRPC");
  daq->require_subcommand(1);
  add_serve(*daq, exit_code);
  add_ping(*daq, exit_code);
  add_init(*daq, exit_code);
  add_stream(*daq, exit_code);
  auto* def = daq->add_subcommand("default-config", "print the embedded server configuration");
  def->callback([exit_code] {
    warn_old_default_verb("daq default-config", "daq");
    print_default_config("daq");
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
