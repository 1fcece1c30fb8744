// The services of a Registry as the HTTP status front shows them: each one's
// status snapshot and metrics (Service::set_status, Service::metrics).
#pragma once

#include <memory>

#include "acheron/hub/Registry.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::hub {

// Lists the registry's services on every call (services may come and go);
// the registry is kept alive by the returned function.
net::HttpSources http_sources(std::shared_ptr<const Registry> registry);

// Starts an HTTP front over the registry. Throws SetupError (bad or busy
// address).
std::unique_ptr<net::HttpFront> serve_http(std::shared_ptr<const Registry> registry,
                                           net::HttpOptions options);

}  // namespace acheron::hub
