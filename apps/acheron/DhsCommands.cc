// `acheron dhs`: a DCSS hardware server (docs/dcss.md), and the test doubles
// of its peers: `acheron dhs fake-dcss` (and, with the loop DHS, fake-axis and
// fake-automl).
#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "Commands.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "HttpChoice.hh"
#include "Ready.hh"
#include "Signals.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/dcss/Config.hh"
#include "acheron/dcss/FakeCamera.hh"
#include "acheron/dcss/FakeDcss.hh"
#include "acheron/dcss/LoopDhs.hh"
#include "acheron/dcss/Monitor.hh"
#include "acheron/dcss/Runner.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::app {
namespace {

namespace xos = wire::xos;
using namespace std::chrono_literals;

// HOST:PORT given to `option`; a SetupError naming the option otherwise.
std::pair<std::string, std::uint16_t> host_port(const std::string& text, const char* option,
                                                int example_port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw SetupError(
        std::string(option) + " '" + text +
        "' is not HOST:PORT (no host or port) e.g. 127.0.0.1:" + std::to_string(example_port));
  }
  const auto port_text = text.substr(colon + 1);
  std::size_t used = 0;
  int port = -1;
  try {
    port = std::stoi(port_text, &used);
  } catch (const std::exception&) {
  }
  if (used != port_text.size() || port < 1 || port > 65535) {
    throw SetupError(std::string(option) + " '" + text +
                     "' has a bad port (not 1-65535) use HOST:PORT, e.g. 127.0.0.1:" +
                     std::to_string(example_port));
  }
  return {text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// Where a test double listens: --bind HOST:PORT (port 0: any free port); the
// older --bind HOST with --port PORT still works, with a warning.
struct Listen {
  std::string bind;
  int port = -1;  // --port, deprecated; -1: not given
  int default_port = 0;

  // HOST and PORT to listen on; SetupError for a bad --bind.
  std::pair<std::string, std::uint16_t> resolve() const {
    std::string host = bind;
    int p = default_port;
    const auto colon = bind.rfind(':');
    if (colon != std::string::npos && bind.find(']', colon) == std::string::npos) {
      host = bind.substr(0, colon);
      const auto text = bind.substr(colon + 1);
      std::size_t used = 0;
      try {
        p = std::stoi(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (host.empty() || used == 0 || used != text.size() || p < 0 || p > 65535) {
        throw SetupError("--bind '" + bind +
                         "' is not HOST:PORT (bad host or port 0-65535) e.g. --bind 127.0.0.1:" +
                         std::to_string(default_port) + " (port 0: any free port)");
      }
    } else {
      warn_deprecated("--bind HOST without a port",
                      "--bind " + bind + ":" + std::to_string(port >= 0 ? port : default_port));
    }
    if (port >= 0) p = port;
    return {host, static_cast<std::uint16_t>(p)};
  }
};

void add_listen_options(CLI::App* cmd, Listen& l, int default_port) {
  l.default_port = default_port;
  l.bind = "127.0.0.1:" + std::to_string(default_port);
  cmd->add_option("--bind", l.bind, "listen address HOST:PORT (one; port 0: any free port)")
      ->capture_default_str();
  cmd->add_option_function<int>(
         "--port",
         [&l](int p) {
           warn_deprecated("--port", "--bind HOST:" + std::to_string(p));
           l.port = p;
         },
         "deprecated: --bind HOST:PORT")
      ->check(CLI::Range(0, 65535))
      ->group("");
}

void print_listening(const char* service, const char* name, const std::string& host,
                     std::uint16_t port) {
  print_ready(service, {{name, host + ":" + std::to_string(port)}});
}

// Starts a test double (start/stop/port), prints its ready line and serves
// until SIGINT/SIGTERM. `signals` is constructed before the double's threads.
template <class Fake>
void serve_until_signal(Fake& fake, const char* service, const char* name, const std::string& host,
                        SignalWatcher& signals) {
  fake.start();
  print_listening(service, name, host, fake.port());
  SignalWaiter(signals).wait();
  fake.stop();
}

void add_fake_dcss(CLI::App& dhs, int* exit_code) {
  struct Opts {
    Listen listen;
    std::vector<std::string> names;
    int protocol = 2;
    std::string variant = "xos";
    bool v2_prompt = false;
    std::string allowed_host = "*";
    bool loop = false;
    std::vector<std::string> operations, real_motors, pseudo_motors, shutters, ion_chambers,
        encoders, strings;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = dhs.add_subcommand(
      "fake-dcss",
      "a fake DCSS hardware port for testing a DHS: handshake, registrations, operations; reads "
      "commands on stdin (start OP [ARGS], stop OP [HANDLE], abort [hard|soft], drop, wait "
      "HANDLE [S], or a raw stoh_ line) and prints every message it receives");
  add_listen_options(cmd, o->listen, 14242);
  cmd->add_option("--dhs", o->names, "DHS name(s) of the database (default loopDHS)");
  cmd->add_option("--protocol", o->protocol, "protocol level of the DHS rows")
      ->check(CLI::IsMember({1, 2}))
      ->capture_default_str();
  cmd->add_option("--variant", o->variant, "how xos2 messages are framed")
      ->check(CLI::IsMember({"xos", "mx", "pydhsfw", "tcl", "java"}))
      ->capture_default_str();
  cmd->add_flag("--v2-prompt", o->v2_prompt, "frame stoc_send_client_type as xos2 (MX)");
  cmd->add_option("--allowed-host", o->allowed_host, "peer address the rows accept (* any)")
      ->capture_default_str();
  cmd->add_flag("--loop", o->loop,
                "the loop DHS's devices: its five operations, gonio_phi and video_trigger");
  cmd->add_option("--operation", o->operations, "operation device (repeatable)");
  cmd->add_option("--real-motor", o->real_motors, "real motor device (repeatable)");
  cmd->add_option("--pseudo-motor", o->pseudo_motors, "pseudo motor device (repeatable)");
  cmd->add_option("--shutter", o->shutters, "shutter device (repeatable)");
  cmd->add_option("--ion-chamber", o->ion_chambers, "ion chamber device (repeatable)");
  cmd->add_option("--encoder", o->encoders, "encoder device (repeatable)");
  cmd->add_option("--string", o->strings, "string device (repeatable)");
  cmd->callback([o, exit_code] {
    dcss::FakeDcssOptions fo;
    std::tie(fo.host, fo.port) = o->listen.resolve();
    fo.v2_prompt = o->v2_prompt;
    const std::map<std::string, xos::SenderVariant> variants = {
        {"xos", xos::SenderVariant::xos_c},
        {"mx", xos::SenderVariant::mx},
        {"pydhsfw", xos::SenderVariant::pydhsfw},
        {"tcl", xos::SenderVariant::tcl},
        {"java", xos::SenderVariant::java}};
    fo.variant = variants.at(o->variant);
    if (o->names.empty()) o->names.push_back("loopDHS");
    for (const auto& n : o->names) {
      fo.rows.push_back(
          {n, o->allowed_host, o->protocol == 1 ? xos::Protocol::v1 : xos::Protocol::v2});
    }
    const std::string owner = o->names.front();
    if (o->loop) {
      for (const char* op : {"collectLoopImages", "stopCollectLoopImages", "getLoopTip",
                             "getLoopInfo", "reboxLoopImage"}) {
        fo.devices.push_back(dcss::FakeDevice::operation(op, owner));
      }
      fo.devices.push_back(
          dcss::FakeDevice::real_motor("gonio_phi", owner, 0, 1000, -1000, 2500, 325000, 625));
      fo.devices.push_back(dcss::FakeDevice::shutter("video_trigger", owner));
    }
    for (const auto& n : o->operations) fo.devices.push_back(dcss::FakeDevice::operation(n, owner));
    for (const auto& n : o->real_motors)
      fo.devices.push_back(dcss::FakeDevice::real_motor(n, owner));
    for (const auto& n : o->pseudo_motors) {
      fo.devices.push_back(dcss::FakeDevice::pseudo_motor(n, owner));
    }
    for (const auto& n : o->shutters) fo.devices.push_back(dcss::FakeDevice::shutter(n, owner));
    for (const auto& n : o->ion_chambers) {
      fo.devices.push_back(dcss::FakeDevice::ion_chamber(n, owner));
    }
    for (const auto& n : o->encoders) fo.devices.push_back(dcss::FakeDevice::encoder(n, owner));
    for (const auto& n : o->strings) fo.devices.push_back(dcss::FakeDevice::string(n, owner));

    SignalWatcher signals;
    auto fake_ptr = std::make_shared<dcss::FakeDcss>(fo);
    auto& fake = *fake_ptr;
    fake.on_message([](const dcss::FakeDcss::Record& r) {
      std::printf("<- %s %s\n", r.dhs.c_str(), r.text.c_str());
      std::fflush(stdout);
    });
    fake.start();
    print_listening("dhs fake-dcss", "dcss", fo.host, fake.port());
    auto waiter = std::make_shared<SignalWaiter>(signals);
    std::thread input([fake_ptr, owner, waiter] {
      auto& fake = *fake_ptr;
      std::string line;
      while (std::getline(std::cin, line)) {
        const auto t = xos::tokenize(line);
        if (t.empty()) continue;
        if (t[0] == "quit" || t[0] == "exit") {
          waiter->fire();
          return;
        }
        if (t[0] == "start" && t.size() >= 2) {
          const auto h = fake.start_operation(owner, t[1], {t.begin() + 2, t.end()});
          std::printf("handle %s\n", h.c_str());
        } else if (t[0] == "stop" && t.size() >= 2) {
          fake.stop_operation(owner, t[1], t.size() > 2 ? t[2] : "");
        } else if (t[0] == "abort") {
          fake.abort_all(t.size() > 1 ? t[1] : "");
        } else if (t[0] == "drop") {
          fake.drop(owner);
        } else if (t[0] == "wait" && t.size() >= 2) {
          const double s = t.size() > 2 ? std::stod(t[2]) : 30.0;
          auto op = fake.wait_completion(
              t[1], std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)));
          std::printf("%s %s %s\n", t[1].c_str(), op ? op->status.c_str() : "timeout",
                      op ? op->result.c_str() : "");
        } else if (t[0].starts_with("stoh_") || t[0].starts_with("stoc_")) {
          fake.send(owner, xos::join(t));
        } else {
          std::printf("unknown command: %s\n", line.c_str());
        }
        std::fflush(stdout);
      }
      // End of input: keep serving until a signal.
    });
    waiter->wait();
    fake.stop();
    input.detach();  // std::getline cannot be interrupted; the process exits now
    const auto v = fake.violations();
    for (const auto& s : v) std::fprintf(stderr, "violation: %s\n", s.c_str());
    *exit_code = v.empty() ? kOk : kFailure;
  });
}

void add_fake_http(CLI::App& dhs, int* exit_code) {
  struct AxisOpts {
    dcss::FakeAxisOptions axis;
    Listen listen;
    std::string push_to;
    std::string push_token;
    int frames = 90;
    double fps = 30;
  };
  auto a = std::make_shared<AxisOpts>();
  auto* axis = dhs.add_subcommand(
      "fake-axis",
      "a fake Axis video server: snapshot (/axis-cgi/jpg/image.cgi), MJPEG "
      "(/axis-cgi/mjpg/video.cgi), and with --connect, POSTs JPEG frames to a receiver");
  add_listen_options(axis, a->listen, 8888);
  axis->add_option("--size", a->axis.width, "image width (height = 3/4 of it)")
      ->capture_default_str();
  axis->add_option("--user", a->axis.user, "require Basic auth with this user");
  axis->add_option("--password", a->axis.password, "the Basic auth password");
  axis->add_option("--connect", a->push_to, "HOST:PORT of a JPEG receiver to POST frames to");
  add_deprecated_alias(axis, "--push-to", "--connect", a->push_to);
  axis->add_option("--push-token", a->push_token,
                   "the receiver's loop.jpeg_receiver.token (sent as ?token= in the POST URL)");
  axis->add_option("--frames", a->frames, "frames to push")->capture_default_str();
  axis->add_option("--fps", a->fps, "push and MJPEG frame rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  axis->add_option("--mjpeg-frames", a->axis.mjpeg_max_frames,
                   "end each MJPEG stream after this many frames (0: never)")
      ->capture_default_str();
  axis->callback([a, exit_code] {
    std::tie(a->axis.bind, a->axis.port) = a->listen.resolve();
    a->axis.height = a->axis.width * 3 / 4;
    a->axis.mjpeg_fps = a->fps;
    SignalWatcher signals;
    dcss::FakeAxis fake(a->axis);
    if (a->push_to.empty()) {
      serve_until_signal(fake, "dhs fake-axis", "http", a->axis.bind, signals);
      *exit_code = kOk;
      return;
    }
    const auto [host, port] = host_port(a->push_to, "--connect", 7171);
    fake.start();
    print_listening("dhs fake-axis", "http", a->axis.bind, fake.port());
    fake.push(host, port, a->frames, a->fps,
              a->push_token.empty() ? "/jpeg" : "/jpeg?token=" + a->push_token);
    fake.wait_pushes(std::chrono::hours(1));
    std::printf("pushed %llu frames, %llu failed\n", static_cast<unsigned long long>(fake.pushed()),
                static_cast<unsigned long long>(fake.push_failures()));
    std::fflush(stdout);
    fake.stop();
    *exit_code = fake.push_failures() == 0 ? kOk : kFailure;
  });

  struct AutomlOpts {
    dcss::FakeAutomlOptions automl;
    Listen listen;
    double delay_s = 0;
  };
  auto m = std::make_shared<AutomlOpts>();
  auto* automl = dhs.add_subcommand(
      "fake-automl",
      "a fake AutoML (TF-Serving) classifier: POST /v1/models/default:predict with canned loop "
      "predictions, GET /v1/models/default");
  add_listen_options(automl, m->listen, 5000);
  automl->add_option("--score", m->automl.score, "score of the loop detection")
      ->capture_default_str();
  automl->add_option("--class", m->automl.loop_class, "class of the top detection")
      ->check(CLI::IsMember({"nylon", "mitegen", "pin"}))
      ->capture_default_str();
  add_duration_option(automl, "--delay", m->delay_s, "delay before each prediction");
  add_deprecated_duration(automl, "--delay-ms", "--delay", 1e-3, m->delay_s);
  automl->add_option("--status", m->automl.status, "HTTP status of predictions")
      ->capture_default_str();
  automl->add_flag("--bad-json", m->automl.bad_json, "answer predictions with a non-JSON body");
  automl->callback([m, exit_code] {
    std::tie(m->automl.bind, m->automl.port) = m->listen.resolve();
    m->automl.delay = to_duration(m->delay_s);
    SignalWatcher signals;
    dcss::FakeAutoml fake(m->automl);
    serve_until_signal(fake, "dhs fake-automl", "http", m->automl.bind, signals);
    *exit_code = kOk;
  });
}

}  // namespace

void add_dhs_commands(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string config;
    std::vector<std::string> positional;
    std::string dcss;
    std::string name;
    std::string http;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "dhs",
      "a DCSS hardware server: acheron dhs --config FILE | BEAMLINE [DHSNAME] (see docs/dcss.md)");
  cmd->add_option("--config", o->config, "DHS configuration file (TOML)")->check(CLI::ExistingFile);
  cmd->add_option("beamline", o->positional,
                  "BEAMLINE [DHSNAME]: reads BEAMLINE.toml from $ACHERON_DHS_CONFIG_DIR, ./config "
                  "or /etc/acheron/dhs; DHSNAME overrides dhs.name")
      ->expected(0, 2);
  cmd->add_option("--connect", o->dcss, "DCSS HOST:PORT (overrides the configuration)");
  add_deprecated_alias(cmd, "--dcss", "--connect", o->dcss);
  cmd->add_option("--name", o->name, "DHS name (overrides the configuration)");
  add_http_option(cmd, o->http);
  auto* def = cmd->add_subcommand("default", "print the built-in configuration as a TOML file");
  def->callback([exit_code] {
    warn_old_default_verb("dhs default", "dhs");
    print_default_config("dhs");
    *exit_code = kOk;
  });
  add_fake_dcss(*cmd, exit_code);
  add_fake_http(*cmd, exit_code);
  cmd->callback([cmd, o, exit_code] {
    if (!cmd->get_subcommands().empty()) return;  // a subcommand ran
    dcss::DhsConfig config;
    if (!o->config.empty()) {
      if (!o->positional.empty()) {
        throw SetupError("both --config and BEAMLINE given (choose one) use either form");
      }
      config = dcss::load_dhs_config(o->config);
    } else if (!o->positional.empty()) {
      config = dcss::load_dhs_config(dcss::find_beamline_config(o->positional[0]));
      if (o->positional.size() > 1) config.dhs.name = o->positional[1];
    } else {
      config = dcss::default_dhs_config();
    }
    if (!o->name.empty()) config.dhs.name = o->name;
    if (!o->dcss.empty()) {
      std::tie(config.dcss.host, config.dcss.port) = host_port(o->dcss, "--connect", 14242);
    }
    SignalWatcher signals;  // before the DHS's threads start
    dcss::DhsRunner runner(config);
    std::shared_ptr<dcss::DhsMonitor> monitor;
    std::unique_ptr<net::HttpFront> http;
    if (!o->http.empty()) {
      monitor = dcss::DhsMonitor::create(runner, "dhs");
      auto registry = std::make_shared<hub::Registry>();
      registry->add(monitor->service());
      http = start_http(o->http, registry);
    }
    runner.start();
    std::vector<ReadyEndpoint> ready = {
        {"dcss", config.dcss.host + ":" + std::to_string(config.dcss.port)}};
    if (auto* loop = runner.loop(); loop && config.loop.frame_source == "push") {
      ready.push_back(
          {"jpeg", config.loop.jpeg_receiver.bind + ":" + std::to_string(loop->receiver_port())});
      if (!config.loop.jpeg_receiver.token.empty()) {
        log::info("dhs {}: the JPEG receiver requires the token", config.dhs.name);
      }
    }
    log::info("dhs {} ({}, {}) connecting to DCSS at {}:{}", config.dhs.name, config.kind,
              config.source, config.dcss.host, config.dcss.port);
    add_http_endpoint(ready, http.get());
    print_ready("dhs", ready);
    SignalWaiter(signals).wait();
    if (http) http->stop();
    runner.stop();
    log::info("dhs {} stopped", config.dhs.name);
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
