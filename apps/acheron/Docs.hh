// The guides under docs/, compiled into the program for `acheron help TOPIC`
// (cmake/EmbedFiles.cmake writes DocsAssets.cc).
#pragma once

#include <span>
#include <string_view>

namespace acheron::app::docs {

struct Asset {
  std::string_view name;  // file name under docs/, e.g. "broker.md"
  std::string_view body;
};

std::span<const Asset> assets();

}  // namespace acheron::app::docs
