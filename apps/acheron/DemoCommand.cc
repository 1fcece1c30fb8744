// `acheron demo`: the photon service end to end (broker, two workers, a
// client, hits and plots), and `acheron demo --hub`: the hub model in one
// process (a service with a method and a topic read at different rates).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "Child.hh"
#include "Commands.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/Ready.hh"
#include "acheron/hub/Registry.hh"
#include "acheron/net/HttpFront.hh"
#include "acheron/optics/Sources.hh"
#include "acheron/photon/Client.hh"
#include "acheron/photon/HitFile.hh"
#include "acheron/wire/Envelope.hh"

namespace acheron::app {
namespace {

struct PhotonDemoOptions {
  int events = 300;
  int photons = 5000;
  int workers = 2;
  std::string out = "demo-output";
  // The broker's and the first worker's status pages (docs/dashboard.md);
  // empty: none.
  std::string http = "127.0.0.1:0";
  double linger = 0;  // seconds the services stay up after the run
};

// Where the Python package lives: $ACHERON_PYTHON, next to the build tree
// (build/<preset>/apps/acheron/acheron -> python/), or the install prefix.
std::filesystem::path python_package_dir() {
  if (const char* env = std::getenv("ACHERON_PYTHON"); env && *env) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    if (std::filesystem::exists(dir / "python" / "acheron" / "plots.py")) return dir / "python";
    if (std::filesystem::exists(dir / "share" / "acheron" / "python" / "acheron" / "plots.py")) {
      return dir / "share" / "acheron" / "python";
    }
  }
  return {};
}

int run_photon_demo(const PhotonDemoOptions& o) {
  using namespace std::chrono;
  std::printf("starting a broker and %d photon workers on loopback...\n", o.workers);
  std::vector<std::string> broker_args{
      "--log-level",       "warn",          "broker",           "--bind",
      "tcp://127.0.0.1:*", "--worker-bind", "tcp://127.0.0.1:*"};
  if (!o.http.empty()) broker_args.insert(broker_args.end(), {"--http", o.http});
  Child broker_proc(broker_args, true);
  const std::string banner = broker_proc.read_line(seconds(20));
  const auto ready = parse_ready_line(banner);
  if (!ready || ready->service != "broker") {
    throw Failure(StatusCode::unavailable, "the broker did not start: '" + banner + "'");
  }
  const std::string frontend = (*ready)["client"];
  const std::string backend = (*ready)["worker"];
  const std::string broker_page = (*ready)["http"];
  std::vector<std::unique_ptr<Child>> workers;
  std::string worker_page;
  for (int i = 0; i < o.workers; ++i) {
    // The first worker serves a status page too: it has the PMT hit map.
    const bool page = i == 0 && !o.http.empty();
    std::vector<std::string> args{"--log-level", "warn",      "photon", "worker", "--connect",
                                  backend,       "--threads", "1",      "--seed", "1"};
    if (page) {
      // The broker has the given port; the worker takes any free one.
      const auto host = net::parse_host_port(o.http).host;
      args.insert(
          args.end(),
          {"--http", (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":0"});
    }
    workers.push_back(std::make_unique<Child>(args, page));
    if (page) {
      const auto line = parse_ready_line(workers.back()->read_line(seconds(20)));
      if (line) worker_page = (*line)["http"];
    }
  }
  if (!broker_page.empty()) {
    std::printf("live dashboard: %s (broker)%s%s\n", broker_page.c_str(),
                worker_page.empty() ? "" : ", ",
                worker_page.empty() ? "" : (worker_page + " (worker 1, PMT hit map)").c_str());
    std::fflush(stdout);
  }
  photon::Client client({.endpoint = frontend, .timeout = seconds(30), .attempts = 3});
  // Wait until every worker has registered and answered the geometry probe.
  const auto deadline = steady_clock::now() + seconds(60);
  for (;;) {
    auto stats = nlohmann::json::parse(client.stats_json());
    if (stats.value("workers", 0) >= o.workers && stats.value("workers_probing", 0) == 0) break;
    if (steady_clock::now() > deadline) {
      throw Failure(StatusCode::unavailable, "workers did not register with the broker");
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  auto info = client.detector_info();
  std::printf("broker %s, %d workers ready, detector with %zu PMTs\n", frontend.c_str(), o.workers,
              info.size());

  // Muon-like tracks: 1 m long, random start within 1 m of the centre and
  // random direction, Cherenkov light at 42 degrees in water.
  std::vector<photon::EventPhotons> events;
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int e = 0; e < o.events; ++e) {
    optics::CherenkovTrack track;
    track.start = {u(rng) * 600, u(rng) * 600, u(rng) * 600};
    optics::Vec3 dir{u(rng), u(rng), u(rng)};
    track.direction = optics::norm(dir) > 1e-3f ? optics::normalize(dir) : optics::Vec3{0, 0, 1};
    optics::PhotonBatch b;
    optics::append_photons(b, track, static_cast<std::uint32_t>(o.photons),
                           static_cast<std::uint32_t>(e), 7);
    events.push_back(photon::EventPhotons::from_batch(b, e, e));
  }
  const auto t0 = steady_clock::now();
  auto hits = client.simulate_many(events, 2 * o.workers, [&](std::size_t d) {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%zu/%d events", d, o.events);
  });
  const double secs = duration<double>(steady_clock::now() - t0).count();
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
  const auto summary = photon::summarize_hits(hits, info.size());
  const std::size_t total = summary.hits;
  const double photons = double(o.photons) * o.events;
  std::printf(
      "%d events x %d photons through the broker in %.2f s: %.3g photons/s, %.1f events/s\n",
      o.events, o.photons, secs, photons / secs, o.events / secs);
  std::printf(
      "%zu hits (%.2f per event, %.2f %% of photons) on %zu of %zu PMTs, mean time %.2f ns\n",
      total, double(total) / o.events, 100.0 * total / photons, summary.channels_hit, info.size(),
      summary.mean_time);
  auto stats = nlohmann::json::parse(client.stats_json());
  std::printf("broker: %s requests dispatched, %s workers\n",
              stats.contains("dispatched") ? stats["dispatched"].dump().c_str() : "?",
              stats.contains("workers") ? stats["workers"].dump().c_str() : "?");

  std::filesystem::create_directories(o.out);
  const auto hits_path = std::filesystem::path(o.out) / "hits.npy";
  photon::write_hits_npy(hits_path, hits);
  const auto det_path = std::filesystem::path(o.out) / "detinfo.npy";
  {
    // (C, 4) float32: x, y, z, type.
    std::vector<float> rows;
    for (std::size_t c = 0; c < info.size(); ++c) {
      rows.insert(rows.end(), {info.x[c], info.y[c], info.z[c], float(info.type[c])});
    }
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                         std::to_string(info.size()) + ", 4), }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header.push_back('\n');
    std::ofstream f(det_path, std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    const std::uint16_t len = static_cast<std::uint16_t>(header.size());
    f.write(reinterpret_cast<const char*>(&len), 2);
    f << header;
    f.write(reinterpret_cast<const char*>(rows.data()), rows.size() * sizeof(float));
  }
  std::printf("hits written to %s\n", hits_path.c_str());

  if (o.linger > 0 && !broker_page.empty()) {
    std::printf("keeping the broker and workers up for %.0f s for the dashboard\n", o.linger);
    std::fflush(stdout);
    std::this_thread::sleep_for(duration<double>(o.linger));
  }

  // Stop what we started before plotting; workers first, then the broker.
  int stopped_ok = 0;
  for (auto& w : workers) stopped_ok += w->stop() == 0;
  stopped_ok += broker_proc.stop() == 0;
  std::printf("stopped the broker and %d workers (%d of %d exited cleanly)\n", o.workers,
              stopped_ok, o.workers + 1);

  const auto pydir = python_package_dir();
  if (pydir.empty() || access("/usr/bin/python3", X_OK) != 0) {
    std::printf("plots skipped: the acheron Python package or /usr/bin/python3 was not found\n");
  } else {
    const std::string cmd = "PYTHONPATH='" + pydir.string() +
                            "' /usr/bin/python3 -m acheron.plots '" + hits_path.string() + "' '" +
                            det_path.string() + "' '" + o.out + "'";
    if (std::system(cmd.c_str()) != 0) {
      std::printf("plots failed (is python3-matplotlib installed?)\n");
    }
  }
  const bool ok =
      hits.size() == static_cast<std::size_t>(o.events) && total > 0 && stopped_ok == o.workers + 1;
  std::printf("demo %s\n", ok ? "ok" : "FAILED");
  return ok ? kOk : kFailure;
}

int run_hub_demo(double seconds) {
  using namespace std::chrono;
  hub::Registry registry;
  auto sensor = registry.add("sensor", "a simulated four-channel sensor");
  auto readings = sensor->add_topic("readings", {.doc = "one value per channel"});

  sensor->add_method({.name = "integrate", .doc = "integrate sin(x) on [0, pi] in steps"},
                     [](const Payload& req, hub::CallContext& ctx) {
                       const auto steps = req.meta.value("steps", 1000);
                       double sum = 0, dx = M_PI / steps;
                       for (int i = 0; i < steps; ++i) {
                         sum += std::sin((i + 0.5) * dx) * dx;
                         if (i % (steps / 4) == 0) ctx.progress(Payload{{{"done", i}}, {}});
                         ctx.throw_if_stopped();
                       }
                       Payload out;
                       out.meta["integral"] = sum;
                       return out;
                     });
  sensor->add_method({.name = "slow", .doc = "sleeps until cancelled or past its deadline"},
                     [](const Payload&, hub::CallContext& ctx) {
                       while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
                       ctx.throw_if_stopped();
                       return Payload{};
                     });

  // Method calls, through the wire codec as a front would.
  int progress = 0;
  auto reply = sensor->call("integrate", Payload{{{"steps", 100000}}, {}},
                            {.on_progress = [&](Payload) { ++progress; }});
  auto frames = wire::encode(wire::make_reply(wire::make_request("sensor", 1, "integrate", {}),
                                              wire::Command::final, reply.payload));
  auto decoded = wire::decode(frames);
  std::printf("call integrate: %d progress messages, integral = %.9f (exact 2), %zu wire frames\n",
              progress, decoded->payload.meta["integral"].get<double>(), frames.size());
  auto late = sensor->call("slow", {}, {.deadline = deadline_after(50ms)});
  std::printf("call slow with a 50 ms deadline: %s\n", std::string(to_string(late.status)).c_str());

  // Subscribers: every sample, a 10 Hz latest-value view, and a slow queue.
  auto all = readings->subscribe({.mode = hub::DeliveryMode::queue, .queue_capacity = 100000});
  auto ten_hz = readings->subscribe({.min_interval = 100ms});
  auto slow = readings->subscribe(
      {.key_regex = "ch[01]", .mode = hub::DeliveryMode::queue, .queue_capacity = 16});

  std::atomic<bool> running{true};
  std::uint64_t n_all = 0, n_ten = 0, n_slow = 0;
  std::thread fast_reader([&] {
    while (running || all->pending()) n_all += all->next(10ms).has_value();
  });
  std::thread ten_reader([&] {
    while (running) n_ten += ten_hz->next(10ms).has_value();
  });
  std::thread slow_reader([&] {
    while (running) {
      n_slow += slow->next(10ms).has_value();
      std::this_thread::sleep_for(20ms);  // a consumer that cannot keep up
    }
  });

  const auto start = Clock::now();
  const auto period = 1ms;
  std::uint64_t published = 0;
  for (int k = 0; Clock::now() - start < duration<double>(seconds); ++k) {
    std::this_thread::sleep_until(start + k * period);
    for (int ch = 0; ch < 4; ++ch) {
      Payload p;
      p.meta["channel"] = ch;
      p.arrays.push_back(Array::from_vector(std::vector<float>{float(std::sin(k * 0.01 + ch))}));
      readings->publish("ch" + std::to_string(ch), std::move(p));
      ++published;
    }
  }
  running = false;
  fast_reader.join();
  ten_reader.join();
  slow_reader.join();
  const double elapsed = duration<double>(Clock::now() - start).count();
  std::printf("topic readings: %llu samples published in %.2f s (%.0f/s)\n",
              (unsigned long long)published, elapsed, published / elapsed);
  std::printf("  queue subscriber, every key:     %llu received, %llu dropped\n",
              (unsigned long long)n_all, (unsigned long long)all->stats().dropped);
  std::printf("  cache subscriber, 100 ms/key:    %llu received, %llu superseded\n",
              (unsigned long long)n_ten, (unsigned long long)ten_hz->stats().replaced);
  std::printf("  slow queue subscriber, ch0|ch1:  %llu received, %llu dropped (capacity 16)\n",
              (unsigned long long)n_slow, (unsigned long long)slow->stats().dropped);
  const bool ok = n_all == published &&
                  std::abs(decoded->payload.meta["integral"].get<double>() - 2) < 1e-6 &&
                  late.status == StatusCode::deadline_exceeded;
  std::printf("demo %s\n", ok ? "ok" : "FAILED");
  return ok ? kOk : kFailure;
}

}  // namespace

void add_demo_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "demo", "broker + two photon workers + a client on loopback: throughput, hits, plots");
  auto o = std::make_shared<PhotonDemoOptions>();
  auto hub = std::make_shared<bool>(false);
  auto seconds = std::make_shared<double>(1.0);
  cmd->add_option("--events", o->events, "events to simulate")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--photons", o->photons, "Cherenkov photons per event")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  cmd->add_option("--workers", o->workers, "photon workers behind the broker")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  cmd->add_option("--outdir", o->out, "directory for hits.npy and the PNG plots")
      ->capture_default_str();
  add_deprecated_alias(cmd, "--out", "--outdir", o->out);
  cmd->add_option("--http", o->http,
                  "HOST:PORT of the broker's and first worker's live status pages (port 0: any "
                  "free port; \"\" turns them off)")
      ->capture_default_str();
  add_duration_option(cmd, "--linger", o->linger,
                      "how long the broker and workers stay up after the run, to look at the pages",
                      {0, 3600}, true);
  cmd->add_flag("--hub", *hub, "instead: the in-process hub demonstration");
  add_duration_option(cmd, "--duration", *seconds, "hub demonstration: how long to publish",
                      {0.05, 60});
  add_deprecated_duration(cmd, "--seconds", "--duration", 1, *seconds, {0.05, 60});
  cmd->callback([exit_code, o, hub, seconds] {
    *exit_code = *hub ? run_hub_demo(*seconds) : run_photon_demo(*o);
  });
}

}  // namespace acheron::app
