// `acheron detector ...` and `acheron photon bench`.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <numeric>

#include "Commands.hh"
#include "DetectorChoice.hh"
#include "Durations.hh"
#include "HttpChoice.hh"
#include "Progress.hh"
#include "Ready.hh"
#include "Signals.hh"
#include "acheron/core/Log.hh"
#include "acheron/optics/Bench.hh"
#include "acheron/optics/Detector.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/Sources.hh"
#include "acheron/photon/Client.hh"
#include "acheron/photon/HitFile.hh"
#include "acheron/photon/Monitor.hh"
#include "acheron/photon/Server.hh"
#include "acheron/photon/Worker.hh"

namespace acheron::app {
namespace {

struct CurveChoice {
  std::string key_file;         // own secret key (server: the server key)
  std::string server_key_file;  // clients and workers: the server's public key
};

void add_curve_options(CLI::App* cmd, CurveChoice& c, bool client) {
  cmd->add_option("--curve-key", c.key_file,
                  client ? "own CURVE secret key file (enables CURVE; needs --server-key)"
                         : "CURVE secret key file of this server (enables CURVE)");
  if (client) {
    cmd->add_option("--server-key", c.server_key_file, "the server's CURVE public key file");
  }
}

// A detector, showing the meshing of a GDML file that takes over half a
// second (where a large detector's load spends its time).
std::shared_ptr<const optics::Detector> load_with_progress(const DetectorChoice& choice) {
  Progress progress({.label = "mesh", .unit = "solids", .delay_s = 0.5});
  auto d = load_detector(choice, [&progress](std::uint64_t done, std::uint64_t total) {
    progress.set_total(total);
    progress.update(done);
  });
  progress.finish();
  return d;
}

photon::PingReply parse_ping_reply(const std::string& s) {
  return s == "pong" ? photon::PingReply::pong : photon::PingReply::ack;
}

}  // namespace

void add_chroma_options(CLI::App* cmd, std::vector<std::string>& binds,
                        charon::ChromaOptions& chroma) {
  cmd->add_option("--chroma-bind", binds,
                  "serve chroma-server clients (ROOT ChromaPhotonList over REQ) on this "
                  "endpoint, e.g. tcp://*:5024; repeatable")
      ->allow_extra_args(false);
  cmd->add_option("--chroma-max-photons", chroma.limits.max_photons,
                  "largest ChromaPhotonList accepted (larger ones get the error reply)")
      ->capture_default_str();
  cmd->add_option("--chroma-max-bytes", chroma.max_message_bytes,
                  "largest chroma message read (ZMQ_MAXMSGSIZE; a larger one closes the "
                  "sender's connection without a reply)")
      ->capture_default_str();
}

void add_detector_commands(CLI::App& app, int* exit_code) {
  auto* det = app.add_subcommand("detector", "inspect and validate detector descriptions");
  det->require_subcommand(1);

  auto info_choice = std::make_shared<DetectorChoice>();
  auto* info = det->add_subcommand("info", "print a summary of a detector");
  info->add_option("file", info_choice->file, "detector file (default: the embedded detector)");
  info->add_option("--pmts", info_choice->pmts, "PMT count of the embedded default");
  info->add_option("--pmt-pattern", info_choice->pmt_pattern,
                   "GDML only: volumes whose whole name matches this RE2 pattern are PMTs");
  info->add_option("--tolerance", info_choice->tolerance,
                   "GDML only: meshing tolerance of curved surfaces, mm (default 0.2)");
  info->callback([info_choice, exit_code] {
    std::cout << load_detector(*info_choice)->summary();
    *exit_code = kOk;
  });

  auto check_choice = std::make_shared<DetectorChoice>();
  auto* check = det->add_subcommand("check",
                                    "validate a detector: closed meshes, material "
                                    "codes, overlapping PMTs");
  check->add_option("file", check_choice->file, "detector file (default: the embedded detector)");
  check->add_option("--pmts", check_choice->pmts, "PMT count of the embedded default");
  check->add_option("--pmt-pattern", check_choice->pmt_pattern,
                    "GDML only: volumes whose whole name matches this RE2 pattern are PMTs");
  check->add_option("--tolerance", check_choice->tolerance,
                    "GDML only: meshing tolerance of curved surfaces, mm (default 0.2)");
  add_progress_flags(check);
  check->callback([check_choice, exit_code] {
    auto d = load_with_progress(*check_choice);
    Progress progress({.label = "check", .unit = "solids", .delay_s = 0.5});
    auto problems =
        d->check([&progress](std::string_view stage, std::uint64_t done, std::uint64_t total) {
          progress.set_total(total);
          progress.set_phase(std::string(stage));
          progress.update(done);
        });
    progress.finish();
    for (const auto& p : problems) std::printf("problem: %s\n", p.c_str());
    std::printf("%s: %zu solids, %zu channels, %zu problems\n", d->name().c_str(),
                d->geometry().solids().size(), d->geometry().channels().size(), problems.size());
    *exit_code = problems.empty() ? kOk : kFailure;
  });

  auto channels_choice = std::make_shared<DetectorChoice>();
  auto* channels = det->add_subcommand(
      "channels",
      "print a detector's channels as JSON (id, type, copy number, volume, position, "
      "direction), e.g. to build RAT's PMTINFO");
  channels->add_option("file", channels_choice->file,
                       "detector file, .gdml or TOML (default: the embedded detector)");
  channels->add_option("--pmts", channels_choice->pmts, "PMT count of the embedded default");
  channels->add_option("--pmt-pattern", channels_choice->pmt_pattern,
                       "GDML only: logical volumes whose whole name matches this RE2 pattern are "
                       "PMTs (besides those with auxiliary SensDet)");
  channels->add_option("--tolerance", channels_choice->tolerance,
                       "GDML only: meshing tolerance of curved surfaces, mm (default 0.2)");
  channels->callback([channels_choice, exit_code] {
    const auto d = load_detector(*channels_choice);
    std::cout << optics::channels_json(*d);
    *exit_code = kOk;
  });

  auto pmts = std::make_shared<int>(400);
  auto* def = det->add_subcommand("default", "print the embedded default detector file");
  def->add_option("--pmts", *pmts, "PMT count")->check(CLI::Range(1, 1000000));
  def->callback([pmts, exit_code] {
    warn_old_default_verb("detector default", "photon");
    print_default_config("photon", *pmts);
    *exit_code = kOk;
  });
}

void add_photon_commands(CLI::App& app, int* exit_code) {
  auto* photon = app.add_subcommand("photon", "optical photon simulation");
  photon->require_subcommand(1);

  // acheron photon serve
  {
    struct Opts {
      DetectorChoice det;
      CurveChoice curve;
      photon::ServerOptions server;
      std::string ping_reply = "ack";
      std::string outdir = ".";
      bool no_charon = false;
      std::string http;
    };
    auto o = std::make_shared<Opts>();
    auto* serve = photon->add_subcommand(
        "serve", "serve the photon simulation on one endpoint (ChAR0N SimpleWorker role)");
    add_detector_options(serve, o->det);
    auto* bind =
        serve
            ->add_option(
                "--bind", o->server.bind,
                "ChAR0N endpoint to bind (one; ChAR0N's default listens on all interfaces, for "
                "RAT-PAC jobs on other hosts; tcp://127.0.0.1:5555 keeps it local)")
            ->capture_default_str();
    add_chroma_options(serve, o->server.chroma_bind, o->server.chroma);
    serve
        ->add_flag("--no-charon", o->no_charon,
                   "no ChAR0N endpoint: serve chroma-server clients only (needs --chroma-bind)")
        ->excludes(bind);
    serve->add_option("--threads", o->server.service.threads, "engine threads (0: one per core)");
    serve->add_option("--step-history", o->server.service.step_history,
                      "record the first N steps (0-16) of each hit in the run files (--async); "
                      "boundary, scatter and reemission counts are written regardless");
    serve
        ->add_option("--max-message-size", o->server.max_message_size,
                     "largest frame accepted from a client, bytes (0: no limit); a larger one "
                     "disconnects the client")
        ->capture_default_str();
    serve->add_option("--concurrent", o->server.max_concurrent, "events simulated at once")
        ->capture_default_str();
    serve
        ->add_option("--max-queued", o->server.max_queued_jobs,
                     "requests waiting or simulating before new ones get NO_WORKERS (chroma: "
                     "the error reply)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
    serve
        ->add_option("--max-queued-per-host", o->server.max_queued_per_host,
                     "requests one host (client address) may have waiting before its new ones "
                     "get NO_WORKERS (chroma: the error reply)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
    serve
        ->add_option("--max-queued-bytes", o->server.max_queued_bytes,
                     "request bytes waiting or simulating before new ones are refused")
        ->capture_default_str();
    serve->add_option("--seed", o->server.service.seed,
                      "random seed (default: a fresh one per start, printed)");
    serve->add_option("--ping-reply", o->ping_reply, "reply to PING: ack (current) or pong (v1)")
        ->check(CLI::IsMember({"ack", "pong"}));
    serve
        ->add_option("--max-photons", o->server.service.limits.max_photons,
                     "largest event accepted")
        ->capture_default_str();
    serve->add_flag("--async", o->server.async,
                    "asynchronous mode: answer SIM_COMPLETE_ASYNC, write hits per run to HDF5");
    serve->add_option("--outdir", o->outdir, "directory of the run files (--async)")
        ->capture_default_str();
    serve
        ->add_option("--photons-per-batch", o->server.photons_per_batch,
                     "engine batch size in asynchronous mode")
        ->capture_default_str();
    serve
        ->add_option("--events-per-basket", o->server.async_options.events_per_basket,
                     "events written per flush (--async)")
        ->capture_default_str();
    add_curve_options(serve, o->curve, false);
    add_http_option(serve, o->http);
    serve->callback([o, exit_code] {
      if (o->no_charon) {
        if (o->server.chroma_bind.empty()) {
          throw SetupError(
              "--no-charon without --chroma-bind (the server would have no endpoint) give "
              "--chroma-bind tcp://*:5024");
        }
        o->server.bind.clear();
      }
      o->server.async_options.outdir = o->outdir;
      o->server.service.ping_reply = parse_ping_reply(o->ping_reply);
      if (!o->curve.key_file.empty()) o->server.curve = net::read_curve_keys(o->curve.key_file);
      SignalWatcher signals;
      photon::Server server(load_detector(o->det), o->server);
      signals.set_target([&server] { server.stop(); });
      std::unique_ptr<net::HttpFront> http;
      if (!o->http.empty()) {
        const auto& engine = server.service().engine();
        nlohmann::json info = {{"role", "photon serve"},
                               {"detector", engine.detector().name()},
                               {"channels", server.service().detector_info().size()},
                               {"seed", server.service().seed()},
                               {"concurrent", o->server.max_concurrent},
                               {"async", o->server.async}};
        if (!server.endpoint().empty()) info["charon"] = server.endpoint();
        if (!server.chroma_endpoints().empty()) info["chroma"] = server.chroma_endpoints();
        auto monitor = photon::PhotonMonitor::create(
            "photon", "photon simulation service (acheron photon serve)",
            server.service().detector_info(), info);
        server.set_monitor(monitor);
        auto registry = std::make_shared<hub::Registry>();
        registry->add(monitor->service());
        http = start_http(o->http, registry);
      }
      std::vector<ReadyEndpoint> ready;
      if (!server.endpoint().empty()) ready.push_back({"charon", server.endpoint()});
      for (const auto& e : server.chroma_endpoints()) ready.push_back({"chroma", e});
      add_http_endpoint(ready, http.get());
      print_ready("photon serve", ready);
      server.run();
      if (http) http->stop();
      log::info("photon server stopped");
      *exit_code = kOk;
    });
  }

  // acheron photon worker
  {
    struct Opts {
      DetectorChoice det;
      CurveChoice curve;
      photon::WorkerOptions worker;
      std::string ping_reply = "ack";
      double grace_s = 20;
      bool no_info = false;
      std::string http;
    };
    auto o = std::make_shared<Opts>();
    auto* worker = photon->add_subcommand("worker", "serve the photon simulation behind a broker");
    add_detector_options(worker, o->det);
    worker->add_option("--connect", o->worker.connect, "the broker's backend endpoint")
        ->capture_default_str();
    worker->add_option("--threads", o->worker.service.threads, "engine threads (0: one per core)");
    worker->add_option("--step-history", o->worker.service.step_history,
                       "record the first N steps (0-16) of each hit for an asynchronous-mode "
                       "broker's run files");
    worker->add_option("--concurrent", o->worker.max_concurrent, "engine batches simulated at once")
        ->capture_default_str();
    worker
        ->add_option("--photons-per-batch", o->worker.photons_per_batch,
                     "requests waiting together run as one engine batch up to this many photons")
        ->capture_default_str();
    worker->add_option("--seed", o->worker.service.seed,
                       "random seed (default: a fresh one per start, printed)");
    worker
        ->add_option("--max-message-size", o->worker.max_message_size,
                     "largest frame accepted from the broker, bytes (0: no limit)")
        ->capture_default_str();
    add_duration_option(worker, "--grace", o->grace_s,
                        "how long the events in hand may take after SIGTERM/SIGINT before they "
                        "are handed back to the broker (a second signal: at once)",
                        {0, 86400}, true);
    worker->add_flag("--no-worker-info", o->no_info,
                     "do not tell the broker the node and Slurm job (WORKER_INFO)");
    add_curve_options(worker, o->curve, true);
    add_http_option(worker, o->http);
    worker->callback([o, exit_code] {
      if (!o->curve.key_file.empty()) {
        o->worker.curve = net::read_curve_keys(o->curve.key_file);
        o->worker.curve_server_key = net::read_curve_public_key(o->curve.server_key_file);
      }
      o->worker.grace = std::chrono::milliseconds(static_cast<std::int64_t>(o->grace_s * 1000));
      if (!o->no_info) o->worker.info = photon::worker_info_from_environment();
      SignalWatcher signals;
      photon::Worker w(load_detector(o->det), o->worker);
      // SIGTERM (Slurm's scancel, time limit, preemption) or SIGINT: drain.
      signals.set_target([&w] { w.drain(); });
      std::unique_ptr<net::HttpFront> http;
      std::shared_ptr<photon::PhotonMonitor> monitor;
      if (!o->http.empty()) {
        // Events, hits and latency; a worker's queue lives in the broker.
        monitor = photon::PhotonMonitor::create(
            "photon", "photon simulation worker (acheron photon worker)",
            w.service().detector_info(),
            {{"role", "photon worker"},
             {"broker", o->worker.connect},
             {"detector", w.service().engine().detector().name()},
             {"seed", w.service().seed()}});
        w.service().set_observer(
            [monitor](const photon::EventObservation& ob) { monitor->record(ob); });
        auto registry = std::make_shared<hub::Registry>();
        registry->add(monitor->service());
        http = start_http(o->http, registry);
      }
      std::vector<ReadyEndpoint> ready = {{"broker", o->worker.connect}};
      add_http_endpoint(ready, http.get());
      print_ready("photon worker", ready);
      w.run();
      if (http) http->stop();
      const auto stats = w.stats();
      log::info("worker stopped: {} events simulated, {} handed back", stats.events,
                stats.handed_back);
      if (stats.abandoned) {
        // A simulation handed back is still running on a job thread; the
        // broker has it again, so do not wait for it (Slurm's SIGKILL would).
        std::fflush(nullptr);
        std::_Exit(kOk);
      }
      *exit_code = kOk;
    });
  }

  // acheron photon propagate
  {
    struct Opts {
      DetectorChoice det;
      std::string source;
      std::string out;
      std::uint64_t seed = 1;
      std::size_t threads = 0;
      std::uint32_t step_history = 0;
    };
    auto o = std::make_shared<Opts>();
    auto* prop = photon->add_subcommand(
        "propagate",
        "run a photon file through the engine in-process and write every photon's end (for "
        "photon-by-photon comparisons, e.g. with Geant4)");
    add_detector_options(prop, o->det);
    prop->add_option("--source", o->source, "photon .npy file (acheron.photon.save_photons)")
        ->required();
    prop->add_option("--out", o->out, "output .npy, one TRACK_DTYPE record per photon")->required();
    prop->add_option("--seed", o->seed, "random seed")->capture_default_str();
    prop->add_option("--threads", o->threads, "engine threads (0: one per core)");
    prop->add_option("--step-history", o->step_history,
                     "also record each photon's first N steps (0-16): adds the fields steps "
                     "and sequence to every record");
    prop->callback([o, exit_code] {
      const auto events = photon::read_photons_npy(o->source);
      optics::PhotonBatch batch;
      for (const auto& e : events) {
        for (std::size_t i = 0; i < e.size(); ++i) {
          namespace c = wire::charon;
          optics::Photon p;
          p.position = {e.f32[c::px][i], e.f32[c::py][i], e.f32[c::pz][i]};
          p.direction = {e.f32[c::dx][i], e.f32[c::dy][i], e.f32[c::dz][i]};
          p.polarization = {e.f32[c::polx][i], e.f32[c::poly][i], e.f32[c::polz][i]};
          p.wavelength = e.f32[c::wavelength][i];
          p.time = e.f32[c::time][i];
          p.history = e.flags[i] & optics::history::creator;
          p.event = e.event_id;
          p.index = static_cast<std::uint32_t>(i);
          batch.push_back(p);
        }
      }
      optics::Engine engine(
          load_detector(o->det),
          {.threads = o->threads, .keep_tracks = true, .step_history = o->step_history});
      const auto t0 = std::chrono::steady_clock::now();
      const auto result = engine.simulate(batch, o->seed);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o->step_history > 0) {
        photon::write_tracks_npy(o->out, result.tracks, result.track_steps);
      } else {
        photon::write_tracks_npy(o->out, result.tracks);
      }
      const auto& d = result.diagnostics;
      fmt::print(
          "{} photons in {:.3f} s ({:.0f} photons/s, {:.2f} casts/photon): {} hits, {} detected, "
          "{} surface-absorbed, {} bulk-absorbed, {} escaped, {} aborted, {} at max steps\n",
          d.photons, seconds, seconds > 0 ? double(d.photons) / seconds : 0.0,
          d.photons ? double(d.steps) / double(d.photons) : 0.0, result.hits.size(),
          d.surface_detect, d.surface_absorb, d.bulk_absorb, d.no_hit, d.nan_abort, d.max_steps);
      *exit_code = kOk;
    });
  }

  // acheron photon simulate
  {
    struct Opts {
      photon::ClientOptions client;
      CurveChoice curve;
      std::uint32_t photons = 10000;
      std::uint32_t events = 10;
      std::string source = "cherenkov";
      std::string out;
      std::uint64_t seed = 1;
      std::size_t in_flight = 4;
      double timeout_s = 30;
    };
    auto o = std::make_shared<Opts>();
    auto* sim = photon->add_subcommand(
        "simulate", "generate photons, send them to a server or broker, summarise the hits");
    sim->add_option("--connect", o->client.endpoint, "server or broker endpoint")
        ->capture_default_str();
    sim->add_option("--photons", o->photons, "photons per event")->capture_default_str();
    sim->add_option("--events", o->events, "number of events")->capture_default_str();
    sim->add_option(
           "--source", o->source,
           "point (isotropic at the centre, 400-800 nm), cherenkov (1 m track from the "
           "centre), or a photon .npy file (see docs/photon.md; --events/--photons ignored)")
        ->capture_default_str();
    sim->add_option("--out", o->out, "write hits to this .npy file");
    sim->add_option("--seed", o->seed, "seed of the photon generator")->capture_default_str();
    sim->add_option("--in-flight", o->in_flight, "requests outstanding at once")
        ->capture_default_str();
    add_duration_option(sim, "--timeout", o->timeout_s, "per-attempt timeout");
    add_deprecated_duration(sim, "--timeout-ms", "--timeout", 1e-3, o->timeout_s);
    add_curve_options(sim, o->curve, true);
    add_progress_flags(sim);
    sim->callback([o, exit_code] {
      o->client.timeout = to_duration(o->timeout_s);
      if (!o->curve.key_file.empty()) {
        o->client.curve = net::read_curve_keys(o->curve.key_file);
        o->client.curve_server_key = net::read_curve_public_key(o->curve.server_key_file);
      }
      photon::Client client(o->client);
      if (!client.ping()) {
        throw Failure(StatusCode::unavailable, "no answer to PING from " + o->client.endpoint);
      }
      auto info = client.detector_info();
      std::vector<photon::EventPhotons> events;
      if (o->source == "point" || o->source == "cherenkov") {
        for (std::uint32_t ev = 0; ev < o->events; ++ev) {
          optics::PhotonBatch b;
          if (o->source == "point") {
            optics::append_photons(b, optics::IsotropicSource{}, o->photons, ev, o->seed);
          } else {
            optics::append_photons(b, optics::CherenkovTrack{}, o->photons, ev, o->seed);
          }
          events.push_back(photon::EventPhotons::from_batch(b, ev, ev));
        }
      } else {
        events = photon::read_photons_npy(o->source);
        o->events = static_cast<std::uint32_t>(events.size());
      }
      std::uint64_t n_photons = 0;
      for (const auto& e : events) n_photons += e.size();
      const auto t0 = std::chrono::steady_clock::now();
      Progress progress({.label = "simulate", .unit = "events", .total = events.size()});
      auto hits =
          client.simulate_many(events, o->in_flight, [&](std::size_t d) { progress.update(d); });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress.finish();
      const auto summary = photon::summarize_hits(hits, info.size());
      const std::size_t total = summary.hits;
      const std::size_t lit = summary.channels_hit;
      const double photons = double(n_photons);
      std::printf("%u events, %.0f photons in %.3f s: %.4g photons/s, %.1f events/s\n", o->events,
                  photons, s, photons / s, o->events / s);
      std::printf("%zu hits (%.3f %% of photons), %zu of %zu channels hit, mean hit time %.2f ns\n",
                  total, 100.0 * total / std::max(1.0, photons), lit, info.size(),
                  summary.mean_time);
      if (!o->out.empty()) {
        photon::write_hits_npy(o->out, hits);
        std::printf("hits written to %s\n", o->out.c_str());
      }
      *exit_code = kOk;
    });
  }

  auto choice = std::make_shared<DetectorChoice>();
  auto opts = std::make_shared<optics::BenchOptions>();
  auto* bench = photon->add_subcommand(
      "bench", "measure the in-process engine: photons/s, steps/s, raw ray casts, scaling");
  add_detector_options(bench, *choice);
  bench->add_option("--photons", opts->photons, "isotropic photons from the centre, 400-800 nm")
      ->check(CLI::Range(1u, 100000000u));
  bench->add_option("--threads", opts->threads, "threads compared with 1 thread")
      ->check(CLI::Range(1, 256));
  bench->add_option("--seed", opts->seed, "random seed");
  bench->add_option("--step-history", opts->step_history,
                    "also time the 1-thread loop recording the first N steps of each photon "
                    "(0-16), against the loop without");
  add_progress_flags(bench);
  bench->callback([choice, opts, exit_code] {
    const auto t0 = std::chrono::steady_clock::now();
    auto d = load_with_progress(*choice);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& g = d->geometry();
    std::printf(
        "detector: %s (%zu channels, %llu triangles, %zu of them stored: %zu instances "
        "of %zu prototypes)\n",
        d->name().c_str(), g.channels().size(), static_cast<unsigned long long>(g.triangle_count()),
        g.triangles().size() + g.prototype_triangles().size(), g.instances().size(),
        g.prototypes().size());
    std::printf("detector loaded in %.2f s\n", load_s);
    Progress progress({.label = "bench", .unit = "photons"});
    optics::BenchOptions bench_options = *opts;
    bench_options.on_progress = [&progress](std::string_view phase, std::uint64_t done,
                                            std::uint64_t total) {
      progress.set_total(total);
      progress.set_phase(std::string(phase));
      progress.update(done);
    };
    auto report = optics::run_bench(d, bench_options);
    progress.finish();
    std::printf("%s", report.table().c_str());
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("peak resident memory %.0f MiB (both engines, the photons and their records)\n",
                usage.ru_maxrss / 1024.0);
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
