// --http ADDR: the HTTP status front (docs/dashboard.md) of a serving
// command, over a hub registry of the services the command registers.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "acheron/hub/Registry.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::app {

void add_http_option(CLI::App* cmd, std::string& address);

// Starts the front when `address` is set (nullptr otherwise); its URL goes
// into the command's ready line (add_http_endpoint). Throws SetupError.
std::unique_ptr<net::HttpFront> start_http(const std::string& address,
                                           std::shared_ptr<const hub::Registry> registry);

}  // namespace acheron::app
