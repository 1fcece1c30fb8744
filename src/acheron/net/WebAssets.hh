// The dashboard's pages, scripts and styles, compiled into the library from
// src/acheron/net/web/ (cmake/EmbedFiles.cmake writes WebAssets.cc).
#pragma once

#include <span>

#include "acheron/core/EmbeddedFile.hh"

namespace acheron::net::web {

using Asset = core::EmbeddedFile;  // name: the file name under web/
std::span<const Asset> assets();

}  // namespace acheron::net::web
