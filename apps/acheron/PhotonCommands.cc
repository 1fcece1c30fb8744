// `acheron detector ...` and `acheron photon bench`.
#include <cstdio>
#include <iostream>
#include <memory>

#include "Commands.hh"
#include "acheron/optics/Bench.hh"
#include "acheron/optics/Detector.hh"

namespace acheron::app {
namespace {

struct DetectorChoice {
  std::string file;
  int pmts = 0;
};

void add_detector_options(CLI::App* cmd, DetectorChoice& c) {
  cmd->add_option("--detector", c.file, "detector file (TOML); default: the embedded detector");
  cmd->add_option("--pmts", c.pmts, "PMT count of the embedded default (e.g. 29000)")
      ->check(CLI::Range(1, 1000000));
}

std::shared_ptr<const optics::Detector> load_detector(const DetectorChoice& c) {
  if (!c.file.empty()) {
    return std::make_shared<const optics::Detector>(optics::Detector::load(c.file));
  }
  optics::DefaultDetectorOptions o;
  if (c.pmts > 0) o.pmts = c.pmts;
  if (o.pmts > 5000) o.pmt_segments = 16;  // keep the benchmark-scale mesh to a few M triangles
  return std::make_shared<const optics::Detector>(optics::Detector::default_detector(o));
}

}  // namespace

void add_detector_commands(CLI::App& app, int* exit_code) {
  auto* det = app.add_subcommand("detector", "inspect and validate detector descriptions");
  det->require_subcommand(1);

  auto info_choice = std::make_shared<DetectorChoice>();
  auto* info = det->add_subcommand("info", "print a summary of a detector");
  info->add_option("file", info_choice->file, "detector file (default: the embedded detector)");
  info->add_option("--pmts", info_choice->pmts, "PMT count of the embedded default");
  info->callback([info_choice, exit_code] {
    std::cout << load_detector(*info_choice)->summary();
    *exit_code = kOk;
  });

  auto check_choice = std::make_shared<DetectorChoice>();
  auto* check = det->add_subcommand("check", "validate a detector: closed meshes, material "
                                             "codes, overlapping PMTs");
  check->add_option("file", check_choice->file, "detector file (default: the embedded detector)");
  check->add_option("--pmts", check_choice->pmts, "PMT count of the embedded default");
  check->callback([check_choice, exit_code] {
    auto d = load_detector(*check_choice);
    auto problems = d->check();
    for (const auto& p : problems) std::printf("problem: %s\n", p.c_str());
    std::printf("%s: %zu solids, %zu channels, %zu problems\n", d->name().c_str(),
                d->geometry().solids().size(), d->geometry().channels().size(), problems.size());
    *exit_code = problems.empty() ? kOk : kFailure;
  });

  auto pmts = std::make_shared<int>(400);
  auto* def = det->add_subcommand("default", "print the embedded default detector file");
  def->add_option("--pmts", *pmts, "PMT count")->check(CLI::Range(1, 1000000));
  def->callback([pmts, exit_code] {
    optics::DefaultDetectorOptions o;
    o.pmts = *pmts;
    std::cout << optics::Detector::default_toml(o);
    *exit_code = kOk;
  });
}

void add_photon_commands(CLI::App& app, int* exit_code) {
  auto* photon = app.add_subcommand("photon", "optical photon simulation");
  photon->require_subcommand(1);

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
  bench->callback([choice, opts, exit_code] {
    auto d = load_detector(*choice);
    std::printf("detector: %s (%zu channels, %zu triangles)\n", d->name().c_str(),
                d->geometry().channels().size(), d->geometry().triangles().size());
    auto report = optics::run_bench(d, *opts);
    std::printf("%s", report.table().c_str());
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
