#include "acheron/hub/HttpStatus.hh"

namespace acheron::hub {

net::HttpSources http_sources(std::shared_ptr<const Registry> registry) {
  return [registry = std::move(registry)] {
    std::vector<net::HttpSource> out;
    for (const auto& name : registry->names()) {
      auto service = registry->find(name);
      if (!service) continue;  // removed meanwhile
      out.push_back({service->name(), service->doc(), [service] { return service->status(); },
                     service->metrics(), [service] { service->refresh_metrics(); }});
    }
    return out;
  };
}

std::unique_ptr<net::HttpFront> serve_http(std::shared_ptr<const Registry> registry,
                                           net::HttpOptions options) {
  return std::make_unique<net::HttpFront>(std::move(options), http_sources(std::move(registry)));
}

}  // namespace acheron::hub
