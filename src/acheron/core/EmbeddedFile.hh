// A file compiled into the program (cmake/EmbedFiles.cmake writes the table).
#pragma once

#include <string_view>

namespace acheron::core {

struct EmbeddedFile {
  std::string_view name;  // file name, e.g. "dashboard.js"
  std::string_view body;  // its bytes
};

}  // namespace acheron::core
