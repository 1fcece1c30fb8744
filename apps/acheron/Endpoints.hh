// Endpoints on the command line: a command that connects takes --connect
// (docs/cli.md, "Endpoints"); the positional spelling some commands had is
// kept for a release, with a warning.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace acheron::app {

// --connect ENDPOINT into `endpoint`; the old spelling, the endpoint as the
// command's one positional argument, still works (not shown by --help; a
// use warns). With `required`, one of them must be given (a usage error
// otherwise). The command may have no positional arguments of its own.
void add_connect_option(CLI::App* cmd, std::string& endpoint, const std::string& description,
                        bool required = true);

// An old option spelling kept for a release: --OLD VALUE sets `value` as
// --NEW would, hidden from --help, with a warning naming --NEW.
void add_deprecated_alias(CLI::App* cmd, const std::string& old_name, const std::string& new_name,
                          std::string& value);

}  // namespace acheron::app
