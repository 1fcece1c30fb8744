// The set of services a process offers, looked up by name by every front.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "acheron/hub/Service.hh"

namespace acheron::hub {

class Registry final {
 public:
  // Creates and registers a service; throws SetupError if the name is taken.
  std::shared_ptr<Service> add(std::string name, std::string doc = {});
  void add(std::shared_ptr<Service> service);
  bool remove(const std::string& name);
  std::shared_ptr<Service> find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<Service>> services_;
};

}  // namespace acheron::hub
