// Subcommand registration for the acheron program. Each subcommand is a thin
// main over a library component; it registers its options and a callback.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace acheron::charon {
struct ChromaOptions;
}

namespace acheron::app {

// Exit codes of the acheron program (documented in docs/cli.md).
enum ExitCode : int {
  kOk = 0,
  kFailure = 1,      // the command ran and failed (runtime error)
  kUsage = 2,        // bad command line or configuration
  kUnavailable = 3,  // a peer did not answer in time
  kInterrupted = 130,
};

// Each add_* registers one subcommand on app; the callback stores its exit
// code in *exit_code.
void add_demo_command(CLI::App& app, int* exit_code);
void add_detector_commands(CLI::App& app, int* exit_code);
void add_photon_commands(CLI::App& app, int* exit_code);
void add_ping_command(CLI::App& app, int* exit_code);
void add_keygen_command(CLI::App& app, int* exit_code);
void add_broker_command(CLI::App& app, int* exit_code);
void add_remote_commands(CLI::App& app, int* exit_code);
void add_dhs_commands(CLI::App& app, int* exit_code);
void add_daq_commands(CLI::App& app, int* exit_code);
void add_gnss_commands(CLI::App& app, int* exit_code);
void add_cluster_commands(CLI::App& app, int* exit_code);
void add_config_command(CLI::App& app, int* exit_code);
// `acheron config default KIND` (also behind the older per-module verbs,
// which warn with warn_old_default_verb).
void print_default_config(const std::string& kind, int pmts = 0);
void warn_old_default_verb(const char* old_verb, const char* kind);
// An old spelling kept for a release: on stderr, "acheron: warning: OLD is
// deprecated and will be removed; use NEW".
void warn_deprecated(const std::string& old_spelling, const std::string& new_spelling);
// `acheron help`: registered last, it lists the others.
void add_help_command(CLI::App& app, int* exit_code);

// The chroma-server front's options (--chroma-bind, --chroma-max-photons,
// --chroma-max-bytes), shared by `photon serve` and `broker`.
void add_chroma_options(CLI::App* cmd, std::vector<std::string>& binds,
                        charon::ChromaOptions& chroma);

}  // namespace acheron::app
