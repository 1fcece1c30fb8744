#include "acheron/core/Ready.hh"

#include <nlohmann/json.hpp>

#include <map>

#include "acheron/core/Error.hh"
#include "acheron/core/Version.hh"

namespace acheron {
namespace {

void check_ready_word(std::string_view what, const std::string& text) {
  if (text.empty() || text.find_first_of(" ,\t\r\n") != std::string::npos) {
    throw SetupError("ready line: the " + std::string(what) + " '" + text +
                     "' is empty or holds a space or comma (the line could not be parsed) "
                     "report this as a bug");
  }
}

}  // namespace

std::string ready_line(std::string_view service, const std::vector<ReadyEndpoint>& endpoints,
                       log::Format format) {
  if (service.empty() || endpoints.empty()) {
    throw SetupError(
        "ready line: no service name or no endpoint (nothing to announce) report this as a bug");
  }
  std::vector<ReadyEndpoint> named;
  std::map<std::string, int> uses;
  for (const auto& e : endpoints) {
    check_ready_word("name", e.name);
    check_ready_word("endpoint", e.endpoint);
    const int n = ++uses[e.name];
    named.push_back({n == 1 ? e.name : e.name + "-" + std::to_string(n), e.endpoint});
  }
  const std::string ver(version());
  if (format == log::Format::json) {
    nlohmann::ordered_json eps = nlohmann::ordered_json::object();
    for (const auto& e : named) eps[e.name] = e.endpoint;
    nlohmann::ordered_json j = {
        {"ready", true}, {"service", std::string(service)}, {"version", ver}, {"endpoints", eps}};
    return j.dump();
  }
  std::string line = "acheron " + ver + " " + std::string(service) + " ready: ";
  for (std::size_t i = 0; i < named.size(); ++i) {
    if (i) line += ", ";
    line += named[i].name + " " + named[i].endpoint;
  }
  return line;
}

std::string ReadyInfo::operator[](std::string_view name) const {
  for (const auto& e : endpoints) {
    if (e.name == name) return e.endpoint;
  }
  return {};
}

std::optional<ReadyInfo> parse_ready_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  ReadyInfo info;
  if (line.starts_with("{")) {
    const auto j = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || j.value("ready", false) != true) return std::nullopt;
    if (!j.contains("service") || !j["service"].is_string() || !j.contains("endpoints") ||
        !j["endpoints"].is_object()) {
      return std::nullopt;
    }
    info.service = j["service"].get<std::string>();
    info.version = j.value("version", "");
    for (const auto& [name, where] : j["endpoints"].items()) {
      if (!where.is_string()) return std::nullopt;
      info.endpoints.push_back({name, where.get<std::string>()});
    }
    return info;
  }
  constexpr std::string_view prefix = "acheron ";
  constexpr std::string_view marker = " ready: ";
  const auto at = line.find(marker);
  if (!line.starts_with(prefix) || at == std::string_view::npos) return std::nullopt;
  const auto head = line.substr(prefix.size(), at - prefix.size());  // VERSION SERVICE
  const auto space = head.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  info.version = std::string(head.substr(0, space));
  info.service = std::string(head.substr(space + 1));
  auto rest = line.substr(at + marker.size());
  while (!rest.empty()) {
    const auto comma = rest.find(", ");
    const auto item = rest.substr(0, comma);
    const auto sep = item.find(' ');
    if (sep == std::string_view::npos || sep == 0 || sep + 1 == item.size()) return std::nullopt;
    info.endpoints.push_back({std::string(item.substr(0, sep)), std::string(item.substr(sep + 1))});
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 2);
  }
  if (info.endpoints.empty()) return std::nullopt;
  return info;
}

}  // namespace acheron
