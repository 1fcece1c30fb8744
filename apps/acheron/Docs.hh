// The guides under docs/, compiled into the program for `acheron help TOPIC`
// (cmake/EmbedFiles.cmake writes DocsAssets.cc).
#pragma once

#include <span>

#include "acheron/core/EmbeddedFile.hh"

namespace acheron::app::docs {

using Asset = core::EmbeddedFile;  // name: the file name under docs/
std::span<const Asset> assets();

}  // namespace acheron::app::docs
