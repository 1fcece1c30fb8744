// The ready line of the serving commands (core/Ready.hh; docs/cli.md, "Ready
// line"), printed once on stdout, flushed, in the --log-format in effect.
#pragma once

#include <string_view>
#include <vector>

#include "acheron/core/Ready.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::app {

// Adds {"http", URL} when the command's status front (--http) runs.
void add_http_endpoint(std::vector<ReadyEndpoint>& endpoints, const net::HttpFront* http);

void print_ready(std::string_view service, const std::vector<ReadyEndpoint>& endpoints);

}  // namespace acheron::app
