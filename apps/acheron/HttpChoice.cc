#include "HttpChoice.hh"

#include "acheron/hub/HttpStatus.hh"

namespace acheron::app {

void add_http_option(CLI::App* cmd, std::string& address) {
  cmd->add_option("--http", address,
                  "serve live status pages and Prometheus /metrics on HOST:PORT (port 0: any "
                  "free port; loopback keeps them local; default: off)");
}

std::unique_ptr<net::HttpFront> start_http(const std::string& address,
                                           std::shared_ptr<const hub::Registry> registry) {
  if (address.empty()) return nullptr;
  net::HttpOptions options;
  options.bind = address;
  return hub::serve_http(std::move(registry), options);
}

}  // namespace acheron::app
