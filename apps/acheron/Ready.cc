#include "Ready.hh"

#include <cstdio>

namespace acheron::app {

void add_http_endpoint(std::vector<ReadyEndpoint>& endpoints, const net::HttpFront* http) {
  if (http) endpoints.push_back({"http", http->url()});
}

void print_ready(std::string_view service, const std::vector<ReadyEndpoint>& endpoints) {
  const auto line = ready_line(service, endpoints, log::format());
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace acheron::app
