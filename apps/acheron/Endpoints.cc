#include "Endpoints.hh"

#include "Commands.hh"

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
      warn_deprecated("the endpoint as a positional argument", "--connect " + rest[0]);
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
           warn_deprecated(old_name, new_name + " " + v);
           value = v;
         },
         "deprecated: " + new_name)
      ->group("");
}

}  // namespace acheron::app
