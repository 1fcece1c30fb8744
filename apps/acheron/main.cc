// acheron: the one command-line program. See docs/cli.md.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "Commands.hh"
#include "Progress.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/LogFormat.hh"
#include "acheron/core/Version.hh"

namespace {
std::string backends() {
  // Backends compiled into this build; grows as engines are added.
  return "cpu";
}

// --log-format json must hold before parsing ends: warnings about old
// spellings are written while the command line is read.
void preset_log_format(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") return;
    if ((a == "--log-format" && i + 1 < argc && std::string_view(argv[i + 1]) == "json") ||
        a == "--log-format=json") {
      acheron::log::set_format("json");
      return;
    }
  }
}

// An error that ends the program: "acheron: MESSAGE" on stderr, or a JSON
// record with --log-format json.
void report_error(const char* message) {
  if (acheron::log::format() == acheron::log::Format::json) {
    acheron::log::error("{}", message);
  } else {
    std::fprintf(stderr, "acheron: %s\n", message);
  }
}
}  // namespace

int main(int argc, char** argv) {
  using namespace acheron;
  preset_log_format(argc, argv);
  CLI::App app{"Acheron: scientific resources on the network", "acheron"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(version()));
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (default: $ACHERON_LOG or info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  // Progress lines of the long commands (docs/cli.md, "Progress"): drawn on
  // stderr when it is a terminal; these force them on or off (the long
  // commands also take them after their name, add_progress_flags).
  bool progress = false, no_progress = false;
  auto* progress_flag =
      app.add_flag("--progress", progress, "draw progress lines even when stderr is no terminal");
  app.add_flag("--no-progress", no_progress, "never draw progress lines")->excludes(progress_flag);
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text, or json: one JSON object per log line on stderr and a JSON ready line")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.parse_complete_callback([&] {
    // Runs before the subcommands' callbacks.
    if (!log_level.empty()) log::set_level(log_level);
    if (progress) app::set_progress_mode(app::ProgressMode::on);
    if (no_progress) app::set_progress_mode(app::ProgressMode::off);
    log::set_format(log_format);
  });

  int exit_code = app::kOk;
  auto* version_cmd = app.add_subcommand("version", "print version, git commit and backends");
  version_cmd->callback([] {
    std::printf("acheron %s\ncommit %s\nbackends %s\n", std::string(version()).c_str(),
                std::string(git_commit()).c_str(), backends().c_str());
  });
  app::add_demo_command(app, &exit_code);
  app::add_detector_commands(app, &exit_code);
  app::add_photon_commands(app, &exit_code);
  app::add_ping_command(app, &exit_code);
  app::add_keygen_command(app, &exit_code);
  app::add_broker_command(app, &exit_code);
  app::add_remote_commands(app, &exit_code);
  app::add_dhs_commands(app, &exit_code);
  app::add_daq_commands(app, &exit_code);
  app::add_gnss_commands(app, &exit_code);
  app::add_cluster_commands(app, &exit_code);
  app::add_config_command(app, &exit_code);
  app::add_help_command(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return app::kUsage;
  } catch (const SetupError& e) {
    report_error(e.what());
    return app::kUsage;
  } catch (const Failure& e) {
    report_error(e.what());
    return e.code() == StatusCode::unavailable || e.code() == StatusCode::deadline_exceeded
               ? app::kUnavailable
               : app::kFailure;
  } catch (const std::exception& e) {
    report_error(e.what());
    return app::kFailure;
  }
  return exit_code;
}
