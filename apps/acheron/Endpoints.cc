#include "Endpoints.hh"

#include <cstdio>

namespace acheron::app {

void add_connect_option(CLI::App* cmd, std::string& endpoint, const std::string& description,
                        bool required) {
  cmd->add_option("--connect", endpoint, description);
  // The old spelling, ENDPOINT as the one positional argument: taken from
  // what no option claimed, so --help does not show it.
  cmd->allow_extras();
  cmd->parse_complete_callback([cmd, &endpoint, required] {
    const auto rest = cmd->remaining();
    if (rest.size() == 1 && !rest[0].starts_with("-")) {
      std::fprintf(stderr,
                   "acheron: warning: the endpoint as a positional argument is deprecated and "
                   "will be removed; use --connect %s\n",
                   rest[0].c_str());
      if (endpoint.empty()) endpoint = rest[0];
    } else if (!rest.empty()) {
      throw CLI::ExtrasError(cmd->get_name(), rest);
    }
    if (required && endpoint.empty()) throw CLI::RequiredError("--connect");
  });
}

void add_deprecated_alias(CLI::App* cmd, const std::string& old_name, const std::string& new_name,
                          std::string& value) {
  cmd->add_option_function<std::string>(
         old_name,
         [&value, old_name, new_name](const std::string& v) {
           std::fprintf(stderr,
                        "acheron: warning: %s is deprecated and will be removed; use %s %s\n",
                        old_name.c_str(), new_name.c_str(), v.c_str());
           value = v;
         },
         "deprecated: " + new_name)
      ->group("");
}

}  // namespace acheron::app
