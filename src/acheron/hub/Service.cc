#include "acheron/hub/Service.hh"

#include <mutex>

#include <prometheus/registry.h>

namespace acheron::hub {

Service::Service(std::string name, std::string doc)
    : name_(std::move(name)),
      doc_(std::move(doc)),
      metrics_(std::make_shared<prometheus::Registry>()) {
  ACHERON_EXPECT(!name_.empty(), "service name is empty (every service needs a name) give it one");
}

void Service::add_method(MethodInfo info, MethodHandler handler) {
  ACHERON_EXPECT(!info.name.empty(),
                 "method name is empty (calls address methods by name) give it one");
  ACHERON_EXPECT(static_cast<bool>(handler),
                 "method '" + info.name + "' has no handler (nothing would run) pass one");
  std::unique_lock lock(mutex_);
  ACHERON_EXPECT(!methods_.count(info.name),
                 "method '" + info.name + "' already exists in service '" + name_ +
                     "' (names are unique) remove it first or pick another name");
  std::string name = info.name;
  methods_.emplace(
      name, Method{std::move(info), std::make_shared<const MethodHandler>(std::move(handler))});
}

bool Service::remove_method(const std::string& name) {
  std::unique_lock lock(mutex_);
  return methods_.erase(name) > 0;
}

std::shared_ptr<Topic> Service::add_topic(const std::string& name, TopicOptions options) {
  ACHERON_EXPECT(!name.empty(),
                 "topic name is empty (subscribers address topics by name) give it one");
  std::unique_lock lock(mutex_);
  ACHERON_EXPECT(!topics_.count(name), "topic '" + name + "' already exists in service '" + name_ +
                                           "' (names are unique) pick another name");
  auto topic = std::make_shared<Topic>(name, std::move(options));
  topics_.emplace(name, topic);
  return topic;
}

bool Service::remove_topic(const std::string& name) {
  std::unique_lock lock(mutex_);
  return topics_.erase(name) > 0;
}

std::shared_ptr<const MethodHandler> Service::find_method(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : it->second.handler;
}

std::shared_ptr<Topic> Service::find_topic(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second;
}

std::vector<MethodInfo> Service::methods() const {
  std::shared_lock lock(mutex_);
  std::vector<MethodInfo> out;
  for (const auto& [n, m] : methods_) out.push_back(m.info);
  return out;
}

std::vector<std::string> Service::topics() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [n, t] : topics_) out.push_back(n);
  return out;
}

Reply Service::call(const std::string& method, const Payload& request, CallOptions options) const {
  auto handler = find_method(method);
  if (!handler) {
    return Reply::failure(StatusCode::not_found,
                          "service '" + name_ + "' has no method '" + method + "'");
  }
  Reply result;
  auto call = std::make_shared<Call>(options.deadline, std::move(options.on_progress),
                                     [&result](Reply r) { result = std::move(r); });
  call->run(*handler, request);
  return result;
}

void Service::set_status(std::function<nlohmann::json()> provider) {
  auto p = provider ? std::make_shared<const std::function<nlohmann::json()>>(std::move(provider))
                    : nullptr;
  std::unique_lock lock(mutex_);
  status_ = std::move(p);
}

nlohmann::json Service::status() const {
  std::shared_ptr<const std::function<nlohmann::json()>> p;
  {
    std::shared_lock lock(mutex_);
    p = status_;
  }
  return p ? (*p)() : nlohmann::json::object();
}

void Service::set_metrics_refresh(std::function<void()> refresh) {
  auto p = refresh ? std::make_shared<const std::function<void()>>(std::move(refresh)) : nullptr;
  std::unique_lock lock(mutex_);
  refresh_ = std::move(p);
}

void Service::refresh_metrics() const {
  std::shared_ptr<const std::function<void()>> p;
  {
    std::shared_lock lock(mutex_);
    p = refresh_;
  }
  if (p) (*p)();
}

}  // namespace acheron::hub
