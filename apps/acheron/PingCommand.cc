// `acheron ping --connect ENDPOINT [--stats]`: is a photon server or broker answering?
#include <cstdio>

#include "Commands.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "acheron/photon/Client.hh"

namespace acheron::app {

void add_ping_command(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string endpoint;
    bool stats = false;
    double timeout_s = 2.5;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("ping", "check that a photon server or broker answers");
  add_connect_option(cmd, o->endpoint, "the photon server or broker, e.g. tcp://127.0.0.1:5555");
  cmd->add_flag("--stats", o->stats, "print the peer's metrics (JSON)");
  add_duration_option(cmd, "--timeout", o->timeout_s, "how long to wait for the answer");
  add_deprecated_duration(cmd, "--timeout-ms", "--timeout", 1e-3, o->timeout_s);
  cmd->callback([o, exit_code] {
    photon::Client client(
        {.endpoint = o->endpoint, .timeout = to_duration(o->timeout_s), .attempts = 1});
    const auto t0 = std::chrono::steady_clock::now();
    if (!client.ping()) {
      std::fprintf(stderr, "acheron: no answer from %s within %s\n", o->endpoint.c_str(),
                   format_duration(o->timeout_s).c_str());
      *exit_code = kUnavailable;
      return;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s answered in %.2f ms\n", o->endpoint.c_str(), ms);
    if (o->stats) std::printf("%s\n", client.stats_json().c_str());
    *exit_code = kOk;
  });
}

}  // namespace acheron::app

namespace acheron::app {

void add_keygen_command(CLI::App& app, int* exit_code) {
  auto stem = std::make_shared<std::string>();
  auto* cmd =
      app.add_subcommand("keygen", "write a CURVE key pair: STEM.key (secret) and STEM.pub");
  cmd->add_option("stem", *stem, "path without extension, e.g. keys/broker")->required();
  cmd->callback([stem, exit_code] {
    const auto keys = net::generate_curve_keys();
    net::write_curve_keys(keys, *stem);
    std::printf("wrote %s.key (keep it secret) and %s.pub\n", stem->c_str(), stem->c_str());
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
