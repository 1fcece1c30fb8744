// Internal to the TOML detector reader (DetectorToml.cc, DetectorMaterials.cc):
// the message helper and the material and surface readers the parser calls.
// Not for clients.
#pragma once

#include <numbers>
#include <string>
#include <string_view>

#include "acheron/core/Config.hh"
#include "acheron/optics/OpticsTables.hh"

namespace acheron::optics::detector_toml {

inline constexpr double kDeg = std::numbers::pi / 180.0;

[[noreturn]] void fail(const TomlTable& t, std::string_view key, const std::string& what,
                       const std::string& fix);
MaterialInput read_material(const TomlTable& t);
SurfaceInput read_surface(const TomlTable& t);

}  // namespace acheron::optics::detector_toml
