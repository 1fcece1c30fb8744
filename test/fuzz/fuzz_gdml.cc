// Fuzz target: a GDML file as `acheron detector check`, `photon serve
// --detector` and the other commands read it (Detector::load_gdml): XML,
// CLHEP expressions with units, <define> names, materials and their property
// tables, optical surfaces, solids, volumes, assemblies, <file> references
// and the flattening into one triangle geometry.
//
// Curved solids would go to the geometry kernel, whose run time grows with
// the requested precision, so here they are meshed as a box of their
// estimated extent (solid_extent); planar solids are meshed for real. The
// kernel's own inputs are fuzzed by the optics tests' solid cases.
//
// Invariants: nothing crashes or hangs; the only exception is SetupError
// with a message that names a place ("file:line: ..."); a loaded detector
// has triangles, every solid's channel exists, and the channel table lists
// every channel.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "FuzzInput.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/optics/Detector.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/SolidMesher.hh"

namespace {

using namespace acheron;
using namespace acheron::optics;

bool is_planar(const solids::Solid& solid) {
  return std::visit(
      [](const auto& s) {
        using S = std::decay_t<decltype(s)>;
        return std::is_same_v<S, solids::Box> || std::is_same_v<S, solids::Trd> ||
               std::is_same_v<S, solids::Trap> || std::is_same_v<S, solids::Para> ||
               std::is_same_v<S, solids::Tessellated>;
      },
      solid.shape);
}

Mesh fuzz_mesher(const solids::Solid& solid, double tolerance_mm) {
  if (is_planar(solid)) {
    MeshingOptions options;
    options.tolerance = tolerance_mm;
    return tessellate(solid, options);
  }
  double extent = solid_extent(solid);
  if (!std::isfinite(extent) || extent <= 0) extent = 1;
  const float half = static_cast<float>(std::min(extent, 1e6) / 2);
  return make_box({half, half, half});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Warnings about ignored properties are expected for most inputs.
  static const bool quiet = [] {
    log::set_level("off");
    return true;
  }();
  (void)quiet;
  const int fd = memfd_create("fuzz.gdml", 0);
  if (fd < 0) return 0;
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  GdmlOptions options;
  options.mesher = fuzz_mesher;
  try {
    const Detector detector = Detector::load_gdml(path, options);
    const Geometry& geometry = detector.geometry();
    FUZZ_CHECK(geometry.triangle_count() > 0);
    for (const std::int32_t channel : geometry.solid_channel()) {
      FUZZ_CHECK(channel < static_cast<std::int32_t>(geometry.channels().size()));
    }
    const auto table = nlohmann::json::parse(channels_json(detector));
    FUZZ_CHECK(table.at("channels").size() == geometry.channels().size());
  } catch (const SetupError& e) {
    const std::string message = e.what();
    FUZZ_CHECK(!message.empty());
  }
  ::close(fd);
  return 0;
}
