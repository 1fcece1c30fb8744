#include "acheron/hub/Registry.hh"

#include <mutex>

namespace acheron::hub {

std::shared_ptr<Service> Registry::add(std::string name, std::string doc) {
  auto s = std::make_shared<Service>(std::move(name), std::move(doc));
  add(s);
  return s;
}

void Registry::add(std::shared_ptr<Service> service) {
  ACHERON_EXPECT(service != nullptr, "null service (nothing to register) pass a service");
  std::unique_lock lock(mutex_);
  ACHERON_EXPECT(
      !services_.count(service->name()),
      "service '" + service->name() + "' is already registered (names are unique) remove it first");
  services_.emplace(service->name(), std::move(service));
}

bool Registry::remove(const std::string& name) {
  std::unique_lock lock(mutex_);
  return services_.erase(name) > 0;
}

std::shared_ptr<Service> Registry::find(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = services_.find(name);
  return it == services_.end() ? nullptr : it->second;
}

std::vector<std::string> Registry::names() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [n, s] : services_) out.push_back(n);
  return out;
}

}  // namespace acheron::hub
