// The dashboard's pages, scripts and styles, compiled into the library from
// src/acheron/net/web/ (cmake/EmbedFiles.cmake writes WebAssets.cc).
#pragma once

#include <span>
#include <string_view>

namespace acheron::net::web {

struct Asset {
  std::string_view name;  // file name under web/, e.g. "dashboard.js"
  std::string_view body;
};

std::span<const Asset> assets();

}  // namespace acheron::net::web
