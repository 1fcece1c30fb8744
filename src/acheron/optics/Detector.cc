// A detector from parts, its parameters view, summary, checks and channel
// map; reading TOML is in DetectorToml.cc, the default detector in
// DetectorDefault.cc.
#include "acheron/optics/Detector.hh"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <set>
#include <sstream>

#include "acheron/core/Config.hh"
#include "acheron/core/Error.hh"
#include "acheron/optics/EmbreeScene.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/PmtModel.hh"

namespace acheron::optics {

Detector Detector::from_parts(std::string name, Geometry geometry, OpticsTables tables,
                              const DetectorSettings& settings) {
  if (geometry.solids().empty()) {
    throw SetupError("detector '" + name +
                     "' has no solids (nothing to trace against) add the detector's solids");
  }
  if (!geometry.finalized()) geometry.finalize();
  const auto beyond_tables = [&](const TriangleData& t) {
    const auto surface_ok = [&](std::int32_t s) {
      return s < 0 || static_cast<std::uint32_t>(s) < tables.n_surfaces();
    };
    return t.inner_material >= tables.n_materials() || t.outer_material >= tables.n_materials() ||
           !surface_ok(t.surface) || !surface_ok(t.surface_in);
  };
  const auto refuse = [&](const std::string& what) {
    throw SetupError(fmt::format(
        "detector '{}': {} names material or surface indices beyond the tables ({} materials, "
        "{} surfaces) build the geometry from these tables",
        name, what, tables.n_materials(), tables.n_surfaces()));
  };
  for (const auto& t : geometry.triangle_data()) {
    if (beyond_tables(t)) refuse("solid '" + geometry.solids()[t.solid].name + "'");
  }
  for (const auto& p : geometry.prototypes()) {
    for (std::uint32_t i = p.first_triangle; i < p.first_triangle + p.triangle_count; ++i) {
      if (beyond_tables(geometry.prototype_triangle_data()[i])) {
        refuse("prototype '" + p.name + "'");
      }
    }
  }
  if (settings.max_steps < 1 || settings.max_steps > 1000000) {
    throw SetupError(fmt::format("detector '{}': max_steps is {} (out of range) give 1 to 1000000",
                                 name, settings.max_steps));
  }
  Detector d;
  d.name_ = std::move(name);
  d.geometry_ = std::make_unique<Geometry>(std::move(geometry));
  d.tables_ = std::make_unique<OpticsTables>(std::move(tables));
  d.settings_ = settings;
  return d;
}

std::string channels_json(const Detector& detector) {
  const auto& g = detector.geometry();
  // One channel per line; numbers in float's shortest form (as stored), and
  // direction components within float rounding of zero written as 0.
  auto vec = [](Vec3 v, bool snap) {
    auto c = [&](float x) { return snap && std::abs(x) < 1e-6f ? 0.f : x; };
    return fmt::format("[{}, {}, {}]", c(v.x), c(v.y), c(v.z));
  };
  // Names come from the detector file as they are; bytes that are not
  // UTF-8 become U+FFFD rather than making the JSON invalid.
  auto quoted = [](const std::string& text) {
    return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string out = "{\n \"detector\": " + quoted(detector.name()) + ",\n \"channels\": [";
  for (std::size_t i = 0; i < g.channels().size(); ++i) {
    const ChannelInfo& c = g.channels()[i];
    out += fmt::format(
        "{}\n  {{\"id\": {}, \"type\": {}, \"copynumber\": {}, \"volume\": {}, \"solid\": {}, "
        "\"position\": {}, \"direction\": {}}}",
        i ? "," : "", i, c.type, c.copy_number, quoted(c.volume), quoted(g.solids()[c.solid].name),
        vec(c.position, false), vec(c.direction, true));
  }
  out += g.channels().empty() ? "]\n}\n" : "\n ]\n}\n";
  return out;
}

ParamsView Detector::params(std::uint64_t seed) const {
  ParamsView v = tables_->params_view();
  geometry_->fill(v);
  v.max_steps = settings_.max_steps;
  v.timing = settings_.timing;
  v.chroma_compat = settings_.chroma_compat ? 1u : 0u;
  v.seed = seed;
  return v;
}

std::string Detector::summary() const {
  const auto& g = *geometry_;
  auto [lo, hi] = g.bounds();
  std::size_t proto_triangles = 0;
  for (const auto& p : g.prototypes()) proto_triangles += p.triangle_count;
  const double mib = 1024.0 * 1024.0;
  std::ostringstream os;
  os << "detector   " << name_ << "\n"
     << "solids     " << g.solids().size() << "\n"
     << "channels   " << g.channels().size() << "\n"
     << "prototypes " << g.prototypes().size();
  for (std::size_t i = 0; i < g.prototypes().size(); ++i) {
    os << (i ? ", " : " (") << g.prototypes()[i].name << ": " << g.prototypes()[i].triangle_count
       << " triangles" << (i + 1 == g.prototypes().size() ? ")" : "");
  }
  os << "\n"
     << "instances  " << g.instances().size() << "\n"
     << "triangles  " << g.triangle_count() << " (" << g.triangles().size() << " flattened + "
     << proto_triangles << " in prototypes stored)\n"
     << "vertices   " << g.vertices().size() + g.prototype_vertices().size() << " stored\n"
     << fmt::format(
            "memory     {:.1f} MiB of triangle arrays ({:.1f} MiB if flattened), "
            "before Embree's BVH\n",
            g.memory_bytes() / mib, g.flattened_memory_bytes() / mib)
     << fmt::format("bounds     [{:.1f}, {:.1f}, {:.1f}] .. [{:.1f}, {:.1f}, {:.1f}] mm\n", lo.x,
                    lo.y, lo.z, hi.x, hi.y, hi.z)
     << "materials  ";
  for (std::uint32_t i = 0; i < tables_->n_materials(); ++i) {
    os << (i ? ", " : "") << tables_->material_name(i);
  }
  os << "\nsurfaces   ";
  for (std::uint32_t i = 0; i < tables_->n_surfaces(); ++i) {
    os << (i ? ", " : "") << tables_->surface_name(i);
  }
  os << "\nmax_steps  " << settings_.max_steps << "\ntiming     "
     << (settings_.timing == TimingMode::phase ? "phase" : "group") << "\n";
  return os.str();
}

std::vector<std::string> Detector::check(const CheckProgress& on_progress) const {
  std::vector<std::string> problems;
  const auto& g = *geometry_;
  const auto& tris = g.triangles();
  // Progress in solids: the meshes of solids and prototypes, every solid's
  // materials, every channel's overlaps.
  std::uint64_t own_meshes = 0;
  for (const auto& s : g.solids()) own_meshes += s.instance < 0;
  const std::uint64_t total =
      own_meshes + g.prototypes().size() + g.solids().size() + g.channels().size();
  std::uint64_t done = 0;
  auto report = [&](std::string_view stage, bool always) {
    if (on_progress && (always || done % 64 == 0)) on_progress(stage, done, total);
  };
  report("meshes", true);
  // 1. Closed meshes: within a solid (or prototype) every edge is shared by
  //    exactly two triangles, traversed in opposite directions (consistent
  //    winding). A prototype is checked once for all its instances.
  auto check_closed = [&](const std::string& what, const std::array<std::uint32_t, 3>* first,
                          std::uint32_t count) {
    std::map<std::pair<std::uint32_t, std::uint32_t>, int> edges;
    for (std::uint32_t i = 0; i < count; ++i) {
      for (int k = 0; k < 3; ++k) edges[{first[i][k], first[i][(k + 1) % 3]}] += 1;
    }
    std::size_t open = 0, flipped = 0;
    for (const auto& [e, n] : edges) {
      auto rev = edges.find({e.second, e.first});
      if (n > 1) ++flipped;
      if (rev == edges.end()) ++open;
    }
    if (open) {
      problems.push_back(fmt::format("{}: mesh is not closed ({} boundary edges)", what, open));
    }
    if (flipped) {
      problems.push_back(
          fmt::format("{}: inconsistent winding ({} edges used twice in "
                      "the same direction)",
                      what, flipped));
    }
  };
  for (const auto& s : g.solids()) {
    if (s.instance >= 0) continue;
    check_closed("solid '" + s.name + "'", tris.data() + s.first_triangle, s.triangle_count);
    ++done;
    report("meshes", false);
  }
  for (const auto& p : g.prototypes()) {
    check_closed("prototype '" + p.name + "'", g.prototype_triangles().data() + p.first_triangle,
                 p.triangle_count);
    ++done;
    report("meshes", false);
  }
  // 2. Material codes: from a point just outside each solid (along a triangle's
  //    normal) the medium reached must be the solid's outer material.
  report("scene", true);
  EmbreeScene scene(g);
  const auto tracer = scene.tracer();
  report("materials", true);
  for (const auto& s : g.solids()) {
    ++done;
    report("materials", false);
    const std::uint32_t step = std::max<std::uint32_t>(1, s.triangle_count / 8);
    for (std::uint32_t i = s.first_triangle; i < s.first_triangle + s.triangle_count; i += step) {
      const auto corners = g.triangle_corners(i);
      const Vec3 c = (corners[0] + corners[1] + corners[2]) / 3.f;
      const TriangleData mine = g.triangle_record(i);
      // A transparent triangle (one medium on both sides, no surface: a
      // face shared with a touching sibling) changes nothing.
      if (mine.inner_material == mine.outer_material && mine.surface < 0 && mine.surface_in < 0) {
        continue;
      }
      const Vec3 n = mine.normal;
      RayHit hit;
      if (!tracer.intersect(c, n, static_cast<std::int32_t>(i), hit)) continue;  // outermost
      const TriangleData other = g.triangle_record(static_cast<std::uint32_t>(hit.triangle));
      if (other.solid == mine.solid) continue;
      const bool from_inside = dot(n, other.normal) > 0;
      const std::uint32_t medium = from_inside ? other.inner_material : other.outer_material;
      if (medium != mine.outer_material) {
        problems.push_back(fmt::format(
            "solid '{}': outer material is '{}' but the neighbouring solid '{}' says the medium "
            "there is '{}'",
            s.name, tables_->material_name(mine.outer_material), g.solids()[other.solid].name,
            tables_->material_name(medium)));
        break;
      }
    }
  }
  // 3. Overlapping PMTs: bounding spheres of sensor solids must not intersect.
  struct Ball {
    Vec3 c;
    float r;
    std::uint32_t solid;
  };
  std::vector<Ball> balls;
  float max_r = 0;
  report("overlaps", true);
  for (const auto& ch : g.channels()) {
    ++done;
    report("overlaps", false);
    const auto& s = g.solids()[ch.solid];
    if (s.instance >= 0) {  // the prototype's sphere, placed
      const auto& in = g.instances()[s.instance];
      const auto& proto = g.prototypes()[in.prototype];
      balls.push_back({in.placement.apply(proto.centre), proto.radius, ch.solid});
      max_r = std::max(max_r, proto.radius);
      continue;
    }
    // Sphere about the vertex centroid reaching the farthest vertex.
    Vec3 c{};
    std::size_t n = 0;
    for (std::uint32_t i = s.first_triangle; i < s.first_triangle + s.triangle_count; ++i) {
      for (auto v : tris[i]) c = c + g.vertices()[v], ++n;
    }
    c = c / static_cast<float>(n);
    float r = 0;
    for (std::uint32_t i = s.first_triangle; i < s.first_triangle + s.triangle_count; ++i) {
      for (auto v : tris[i]) r = std::max(r, norm(g.vertices()[v] - c));
    }
    balls.push_back({c, r, ch.solid});
    max_r = std::max(max_r, r);
  }
  // Grid hashing keeps this linear for tens of thousands of PMTs.
  const float cell = std::max(2 * max_r, 1e-3f);
  std::map<std::tuple<int, int, int>, std::vector<std::size_t>> grid;
  auto key = [&](Vec3 p) {
    return std::make_tuple(int(std::floor(p.x / cell)), int(std::floor(p.y / cell)),
                           int(std::floor(p.z / cell)));
  };
  for (std::size_t i = 0; i < balls.size(); ++i) grid[key(balls[i].c)].push_back(i);
  std::size_t overlaps = 0;
  for (std::size_t i = 0; i < balls.size(); ++i) {
    auto [kx, ky, kz] = key(balls[i].c);
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dz = -1; dz <= 1; ++dz) {
          auto it = grid.find({kx + dx, ky + dy, kz + dz});
          if (it == grid.end()) continue;
          for (std::size_t j : it->second) {
            if (j <= i) continue;
            // Conservative: flags PMTs whose bounding spheres intersect by
            // more than 0.1 % (they may only nearly touch).
            const float d = norm(balls[i].c - balls[j].c);
            if (d < 0.999f * (balls[i].r + balls[j].r)) {
              if (overlaps++ < 10) {
                problems.push_back(fmt::format("PMTs '{}' and '{}' overlap ({:.1f} mm apart)",
                                               g.solids()[balls[i].solid].name,
                                               g.solids()[balls[j].solid].name, d));
              }
            }
          }
        }
  }
  if (overlaps > 10)
    problems.push_back(fmt::format("... {} overlapping PMT pairs in all", overlaps));
  report("overlaps", true);
  return problems;
}

}  // namespace acheron::optics
