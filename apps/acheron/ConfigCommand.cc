// `acheron config default KIND`: one verb for every built-in configuration, as
// a file to start from (docs/cli.md).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "Commands.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/LogFormat.hh"
#include "acheron/daq/Config.hh"
#include "acheron/dcss/Config.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/optics/Detector.hh"

namespace acheron::app {

void print_default_config(const std::string& kind, int pmts) {
  if (kind == "photon" || kind == "detector") {
    optics::DefaultDetectorOptions o;
    if (pmts > 0) o.pmts = pmts;
    std::cout << optics::Detector::default_toml(o);
  } else if (kind == "dhs") {
    std::fputs(dcss::default_dhs_config_toml().c_str(), stdout);
  } else if (kind == "daq") {
    std::printf("%s\n", daq::default_server_config_json().dump(2).c_str());
  } else if (kind == "gnss") {
    std::fputs(gnss::default_f9t_config_json5(), stdout);
  }
}

void warn_deprecated(const std::string& old_spelling, const std::string& new_spelling) {
  if (log::format() == log::Format::json) {
    log::warn("{} is deprecated and will be removed; use {}", old_spelling, new_spelling);
    return;
  }
  std::fprintf(stderr, "acheron: warning: %s is deprecated and will be removed; use %s\n",
               old_spelling.c_str(), new_spelling.c_str());
}

void warn_old_default_verb(const char* old_verb, const char* kind) {
  warn_deprecated("`acheron " + std::string(old_verb) + "`",
                  "`acheron config default " + std::string(kind) + "`");
}

void add_config_command(CLI::App& app, int* exit_code) {
  auto* config = app.add_subcommand("config", "built-in configurations");
  config->require_subcommand(1);
  struct Opts {
    std::string kind;
    int pmts = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* def = config->add_subcommand(
      "default",
      "print a built-in configuration: photon (the detector file, TOML), dhs (TOML), daq "
      "(DaqData server, JSON as PANOSETI's), gnss (f9t_config.json5 as PANOSETI's)");
  def->add_option("kind", o->kind, "photon, dhs, daq or gnss")
      ->required()
      ->check(CLI::IsMember({"photon", "detector", "dhs", "daq", "gnss"}));
  def->add_option("--pmts", o->pmts, "photon: PMT count of the default detector")
      ->check(CLI::Range(1, 1000000));
  def->callback([o, exit_code] {
    print_default_config(o->kind, o->pmts);
    *exit_code = kOk;
  });
}

}  // namespace acheron::app
