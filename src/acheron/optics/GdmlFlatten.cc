// GDML reader, part 5: the flattening of the volume tree into one Geometry
// with materials, surfaces and channels.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/optics/GdmlInternal.hh"

namespace acheron::optics::gdml {

namespace {

struct Instance {
  const Volume* volume = nullptr;
  const PhysVol* pv = nullptr;  // null for the world
  int parent = -1;
  Affine world;
  std::string path;
};

void expand(const Volume& container, int parent, const Affine& base, const std::string& prefix,
            std::vector<Instance>& out, int depth) {
  if (depth > 200) {
    throw SetupError(
        fmt::format("{}: volume '{}' is nested more than 200 deep (assemblies that "
                    "place each other?) check the structure",
                    container.where, container.name));
  }
  for (const PhysVol* pv : container.daughters) {
    const Affine t = base.compose(pv->transform);
    if (pv->volume->assembly) {
      // An assembly's physvols go straight into the mother, with the
      // assembly's placement composed.
      expand(*pv->volume, parent, t, prefix + pv->name + "/", out, depth + 1);
      continue;
    }
    Instance inst;
    inst.volume = pv->volume;
    inst.pv = pv;
    inst.parent = parent;
    inst.world = t;
    inst.path = prefix + pv->name;
    out.push_back(std::move(inst));
    const int me = static_cast<int>(out.size()) - 1;
    expand(*pv->volume, me, t, out[static_cast<std::size_t>(me)].path + "/", out, depth + 1);
  }
}

// Distance from p to the triangle abc (closest point by regions).
double point_triangle_distance(V3 p, V3 a, V3 b, V3 c) {
  auto sub = [](V3 u, V3 v) { return V3{u.x - v.x, u.y - v.y, u.z - v.z}; };
  auto dotp = [](V3 u, V3 v) { return u.x * v.x + u.y * v.y + u.z * v.z; };
  auto at = [](V3 o, V3 u, double s) { return V3{o.x + u.x * s, o.y + u.y * s, o.z + u.z * s}; };
  const V3 ab = sub(b, a), ac = sub(c, a), ap = sub(p, a);
  V3 q;
  const double d1 = dotp(ab, ap), d2 = dotp(ac, ap);
  const V3 bp = sub(p, b);
  const double d3 = dotp(ab, bp), d4 = dotp(ac, bp);
  const V3 cp = sub(p, c);
  const double d5 = dotp(ab, cp), d6 = dotp(ac, cp);
  const double vc = d1 * d4 - d3 * d2, vb = d5 * d2 - d1 * d6, va = d3 * d6 - d5 * d4;
  if (d1 <= 0 && d2 <= 0) {
    q = a;
  } else if (d3 >= 0 && d4 <= d3) {
    q = b;
  } else if (vc <= 0 && d1 >= 0 && d3 <= 0) {
    q = at(a, ab, d1 / (d1 - d3));
  } else if (d6 >= 0 && d5 <= d6) {
    q = c;
  } else if (vb <= 0 && d2 >= 0 && d6 <= 0) {
    q = at(a, ac, d2 / (d2 - d6));
  } else if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0) {
    q = at(b, sub(c, b), (d4 - d3) / ((d4 - d3) + (d5 - d6)));
  } else {
    const double denom = 1 / (va + vb + vc);
    q = at(at(a, ab, vb * denom), ac, vc * denom);
  }
  const V3 d = sub(p, q);
  return std::sqrt(dotp(d, d));
}

struct WorldMesh {
  std::vector<std::array<V3, 3>> triangles;
  V3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
};

WorldMesh world_mesh(const Mesh& mesh, const Affine& a) {
  WorldMesh w;
  for (const auto& t : mesh.triangles) {
    std::array<V3, 3> tri;
    for (int k = 0; k < 3; ++k) {
      const Vec3& v = mesh.vertices[t[k]];
      tri[k] = a.apply({v.x, v.y, v.z});
      w.lo = {std::min(w.lo.x, tri[k].x), std::min(w.lo.y, tri[k].y), std::min(w.lo.z, tri[k].z)};
      w.hi = {std::max(w.hi.x, tri[k].x), std::max(w.hi.y, tri[k].y), std::max(w.hi.z, tri[k].z)};
    }
    w.triangles.push_back(tri);
  }
  return w;
}

// A placed solid's triangles in the world bucketed in a uniform grid over
// its bounds (about one triangle per cell, each triangle in the cells its
// bounds grown by tol touch), so that a point is tested against the few
// triangles near it.
struct MeshGrid {
  WorldMesh mesh;
  double tol = 0;
  V3 origin;
  double cell = 1;
  int n[3] = {1, 1, 1};
  std::vector<std::vector<std::uint32_t>> cells;

  int index(double v, int k) const {
    const double o = k == 0 ? origin.x : k == 1 ? origin.y : origin.z;
    return std::clamp(static_cast<int>((v - o) / cell), 0, n[k] - 1);
  }
  std::size_t at(int x, int y, int z) const {
    return (static_cast<std::size_t>(x) * n[1] + y) * n[2] + z;
  }
  bool inside(const V3& p) const {
    return p.x >= origin.x && p.y >= origin.y && p.z >= origin.z && p.x <= mesh.hi.x + tol &&
           p.y <= mesh.hi.y + tol && p.z <= mesh.hi.z + tol;
  }
  // Within tol of a triangle.
  bool on(const V3& p) const {
    if (!inside(p)) return false;
    for (const std::uint32_t k : cells[at(index(p.x, 0), index(p.y, 1), index(p.z, 2))]) {
      const auto& u = mesh.triangles[k];
      if (point_triangle_distance(p, u[0], u[1], u[2]) <= tol) return true;
    }
    return false;
  }
  // Some triangle may lie within tol of the box [lo, hi]: a cell it touches
  // holds one.
  bool near(const V3& lo, const V3& hi) const {
    if (hi.x < origin.x || hi.y < origin.y || hi.z < origin.z || lo.x > mesh.hi.x + tol ||
        lo.y > mesh.hi.y + tol || lo.z > mesh.hi.z + tol) {
      return false;
    }
    for (int x = index(lo.x, 0); x <= index(hi.x, 0); ++x) {
      for (int y = index(lo.y, 1); y <= index(hi.y, 1); ++y) {
        for (int z = index(lo.z, 2); z <= index(hi.z, 2); ++z) {
          if (!cells[at(x, y, z)].empty()) return true;
        }
      }
    }
    return false;
  }
};

MeshGrid make_grid(WorldMesh mesh, double tol) {
  MeshGrid g;
  g.mesh = std::move(mesh);
  g.tol = tol;
  const WorldMesh& b = g.mesh;
  if (b.triangles.empty()) return g;
  g.origin = {b.lo.x - tol, b.lo.y - tol, b.lo.z - tol};
  const double size[3] = {b.hi.x - b.lo.x + 2 * tol, b.hi.y - b.lo.y + 2 * tol,
                          b.hi.z - b.lo.z + 2 * tol};
  const double volume = std::max(size[0] * size[1] * size[2], 1e-300);
  g.cell = std::max(std::cbrt(volume / static_cast<double>(b.triangles.size())),
                    std::max({size[0], size[1], size[2]}) / 256);
  for (int k = 0; k < 3; ++k) g.n[k] = std::clamp(static_cast<int>(size[k] / g.cell) + 1, 1, 256);
  g.cells.resize(static_cast<std::size_t>(g.n[0]) * g.n[1] * g.n[2]);
  for (std::size_t i = 0; i < b.triangles.size(); ++i) {
    const auto& u = b.triangles[i];
    int c0[3], c1[3];
    for (int k = 0; k < 3; ++k) {
      const auto coord = [k](const V3& v) { return k == 0 ? v.x : k == 1 ? v.y : v.z; };
      c0[k] = g.index(std::min({coord(u[0]), coord(u[1]), coord(u[2])}) - tol, k);
      c1[k] = g.index(std::max({coord(u[0]), coord(u[1]), coord(u[2])}) + tol, k);
    }
    for (int x = c0[0]; x <= c1[0]; ++x) {
      for (int y = c0[1]; y <= c1[1]; ++y) {
        for (int z = c0[2]; z <= c1[2]; ++z) {
          g.cells[g.at(x, y, z)].push_back(static_cast<std::uint32_t>(i));
        }
      }
    }
  }
  return g;
}

// Triangles of `a` that lie on `b`'s surface: their centroid and corners
// within b's tol of it (a triangle that only partly covers `b` is not on it).
std::vector<std::size_t> touching(const WorldMesh& a, const MeshGrid& b) {
  std::vector<std::size_t> out;
  if (b.mesh.triangles.empty()) return out;
  for (std::size_t i = 0; i < a.triangles.size(); ++i) {
    const auto& t = a.triangles[i];
    const V3 c{(t[0].x + t[1].x + t[2].x) / 3, (t[0].y + t[1].y + t[2].y) / 3,
               (t[0].z + t[1].z + t[2].z) / 3};
    if (b.on(c) && b.on(t[0]) && b.on(t[1]) && b.on(t[2])) out.push_back(i);
  }
  return out;
}

// A placed solid's bounds in the world: its mesh's local bounds, corners
// transformed (a bound, not tight, under rotation).
std::pair<V3, V3> world_bounds(const Mesh& mesh, const Affine& a) {
  V3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (const auto& v : mesh.vertices) {
    lo = {std::min(lo.x, double{v.x}), std::min(lo.y, double{v.y}), std::min(lo.z, double{v.z})};
    hi = {std::max(hi.x, double{v.x}), std::max(hi.y, double{v.y}), std::max(hi.z, double{v.z})};
  }
  V3 wlo{1e300, 1e300, 1e300}, whi{-1e300, -1e300, -1e300};
  for (int c = 0; c < 8; ++c) {
    const V3 w = a.apply({(c & 1) ? hi.x : lo.x, (c & 2) ? hi.y : lo.y, (c & 4) ? hi.z : lo.z});
    wlo = {std::min(wlo.x, w.x), std::min(wlo.y, w.y), std::min(wlo.z, w.z)};
    whi = {std::max(whi.x, w.x), std::max(whi.y, w.y), std::max(whi.z, w.z)};
  }
  return {wlo, whi};
}

}  // namespace

Detector flatten(Reader& reader, const Volume& world, const std::string& name) {
  std::vector<Instance> instances;
  {
    Instance w;
    w.volume = &world;
    w.path = world.name;
    instances.push_back(std::move(w));
  }
  expand(world, 0, Affine{}, world.name + "/", instances, 0);
  if (instances.size() == 1) {
    throw SetupError(
        fmt::format("{}: the world volume '{}' places nothing (the world's own box is "
                    "not traced, so there is nothing to trace against) place the "
                    "detector's volumes in it",
                    world.where, world.name));
  }

  // Meshes, once per solid.
  std::unordered_map<const solids::Solid*, Mesh> meshes;
  std::uint64_t solids_to_mesh = 0;
  if (reader.options.on_mesh_progress) {
    std::unordered_set<const solids::Solid*> distinct;
    for (std::size_t i = 1; i < instances.size(); ++i) {
      distinct.insert(instances[i].volume->solid.get());
    }
    solids_to_mesh = distinct.size();
    reader.options.on_mesh_progress(0, solids_to_mesh);
  }
  auto mesh_of = [&](const Instance& inst) -> const Mesh& {
    const solids::Solid* s = inst.volume->solid.get();
    auto it = meshes.find(s);
    if (it == meshes.end()) {
      Mesh m = reader.options.mesher(*s, reader.options.tolerance_mm);
      if (reader.options.on_mesh_progress) {
        reader.options.on_mesh_progress(meshes.size() + 1,
                                        std::max<std::uint64_t>(solids_to_mesh, meshes.size() + 1));
      }
      if (m.triangles.empty()) {
        throw SetupError(
            fmt::format("{}: solid '{}' meshed to no triangles (the mesher returned "
                        "an empty mesh) check its dimensions",
                        s->where, s->name));
      }
      m.part.clear();
      it = meshes.emplace(s, std::move(m)).first;
    }
    return it->second;
  };

  // Border surfaces, which apply to photons going from their first physvol
  // to their second (Geant4's G4LogicalBorderSurface). Mother/daughter
  // pairs cover the whole daughter (`border_out` for photons leaving it,
  // `border_in` for photons entering it); sibling pairs cover the faces
  // where the two touch (below).
  std::unordered_map<const PhysVol*, std::vector<int>> by_pv;
  for (std::size_t i = 1; i < instances.size(); ++i) {
    by_pv[instances[i].pv].push_back(static_cast<int>(i));
  }
  std::vector<const SurfaceDef*> border_out(instances.size(), nullptr);
  std::vector<const SurfaceDef*> border_in(instances.size(), nullptr);
  std::map<std::pair<const PhysVol*, const PhysVol*>, const BorderSurface*> between;
  std::unordered_map<const BorderSurface*, std::size_t> matched;
  for (const BorderSurface& b : reader.borders) {
    between[{b.first, b.second}] = &b;
    auto list = [&](const PhysVol* pv) {
      auto it = by_pv.find(pv);
      return it == by_pv.end() ? std::vector<int>{} : it->second;
    };
    const auto is_mother = [&](int daughter, const PhysVol* pv) {
      const int p = instances[static_cast<std::size_t>(daughter)].parent;
      return p > 0 && instances[static_cast<std::size_t>(p)].pv == pv;
    };
    for (int i : list(b.second)) {  // mother -> daughter
      if (is_mother(i, b.first)) {
        border_in[static_cast<std::size_t>(i)] = b.surface;
        ++matched[&b];
      }
    }
    for (int i : list(b.first)) {  // daughter -> mother
      if (is_mother(i, b.second)) {
        border_out[static_cast<std::size_t>(i)] = b.surface;
        ++matched[&b];
      }
    }
  }

  // Touching siblings. Each placed solid's triangles have its mother's
  // material outside, which is wrong where two daughters of one mother
  // touch: there the medium outside is the other daughter. For each pair
  // that touches (triangles lying on the other's surface, within
  // tolerance_mm), the faces of one (the first placed, unless only the
  // second has faces on the first) that lie on the other take the other's
  // material outside and the surfaces Geant4 would apply between them each
  // way (the border surface from the one the photon leaves to the one it
  // enters, else the skin of the one it leaves, else of the one it enters);
  // the other's faces there become transparent (its own material on both
  // sides, no surface), so a photon meets the boundary once, as in Geant4,
  // and not twice through a sliver of the mother. Where only one side has
  // faces lying wholly on the other (a small face on a large triangle), the
  // large triangle keeps the mother outside (docs/optics.md).
  struct Face {
    const MaterialDef* outer = nullptr;  // the medium outside
    const MaterialDef* inner = nullptr;  // null: the volume's own
    const SurfaceDef* out = nullptr;     // leaving the solid
    const SurfaceDef* in = nullptr;      // entering it
  };
  std::vector<std::unordered_map<std::size_t, Face>> faces(instances.size());
  {
    const double tol = reader.options.tolerance_mm;
    std::vector<std::vector<int>> children(instances.size());
    for (std::size_t i = 1; i < instances.size(); ++i) {
      children[static_cast<std::size_t>(instances[i].parent)].push_back(static_cast<int>(i));
    }
    std::vector<std::pair<V3, V3>> bounds(instances.size());
    // Solids placed many times (more than kManyCopies: PMTs) are not
    // searched against each other: a detector of 29,000 of them would take
    // minutes, and PMTs do not share faces. Such a copy is still searched
    // against every other solid (its supports, a plate, a wall), whose
    // grid is kept.
    constexpr int kManyCopies = 16;
    std::unordered_map<const solids::Solid*, int> uses;
    for (std::size_t i = 1; i < instances.size(); ++i) ++uses[instances[i].volume->solid.get()];
    const auto repeated = [&](int i) {
      return uses[instances[static_cast<std::size_t>(i)].volume->solid.get()] > kManyCopies;
    };
    std::unordered_map<int, MeshGrid> unique_grids;
    const auto grid_of = [&](int i, std::optional<MeshGrid>& scratch) -> const MeshGrid& {
      const Instance& inst = instances[static_cast<std::size_t>(i)];
      if (repeated(i)) {
        scratch = make_grid(world_mesh(mesh_of(inst), inst.world), tol);
        return *scratch;
      }
      auto it = unique_grids.find(i);
      if (it == unique_grids.end()) {
        it = unique_grids.emplace(i, make_grid(world_mesh(mesh_of(inst), inst.world), tol)).first;
      }
      return it->second;
    };
    const auto border = [&](const Instance& from, const Instance& to) -> const SurfaceDef* {
      auto it = between.find({from.pv, to.pv});
      if (it == between.end()) return nullptr;
      ++matched[it->second];
      return it->second->surface;
    };
    for (auto& kids : children) {
      if (kids.size() < 2) continue;
      for (int i : kids) {
        const Instance& inst = instances[static_cast<std::size_t>(i)];
        bounds[static_cast<std::size_t>(i)] = world_bounds(mesh_of(inst), inst.world);
      }
      // Sweep along x over the bounds.
      std::sort(kids.begin(), kids.end(), [&](int a, int b) {
        return bounds[static_cast<std::size_t>(a)].first.x <
               bounds[static_cast<std::size_t>(b)].first.x;
      });
      for (std::size_t u = 0; u < kids.size(); ++u) {
        const auto& bu = bounds[static_cast<std::size_t>(kids[u])];
        for (std::size_t v = u + 1; v < kids.size(); ++v) {
          const auto& bv = bounds[static_cast<std::size_t>(kids[v])];
          if (bv.first.x > bu.second.x + tol) break;
          if (bv.first.y > bu.second.y + tol || bu.first.y > bv.second.y + tol ||
              bv.first.z > bu.second.z + tol || bu.first.z > bv.second.z + tol) {
            continue;
          }
          int a = std::min(kids[u], kids[v]), c = std::max(kids[u], kids[v]);
          if (repeated(a) && repeated(c)) continue;
          // The solid placed fewer times first: its kept grid rejects most
          // pairs.
          const int once = repeated(a) ? c : a, other = once == a ? c : a;
          std::optional<MeshGrid> scratch_once, scratch_other;
          const MeshGrid& g_once = grid_of(once, scratch_once);
          const auto& b_other = bounds[static_cast<std::size_t>(other)];
          if (!g_once.near(b_other.first, b_other.second)) continue;
          const MeshGrid& g_other = grid_of(other, scratch_other);
          const MeshGrid& g_a = a == once ? g_once : g_other;
          const MeshGrid& g_c = c == once ? g_once : g_other;
          std::vector<std::size_t> on_c = touching(g_a.mesh, g_c);
          std::vector<std::size_t> on_a = touching(g_c.mesh, g_a);
          if (on_c.empty()) {
            if (on_a.empty()) continue;
            std::swap(a, c);
            std::swap(on_a, on_c);
          }
          const Instance& ia = instances[static_cast<std::size_t>(a)];
          const Instance& ic = instances[static_cast<std::size_t>(c)];
          const SurfaceDef* a_to_c = border(ia, ic);
          const SurfaceDef* c_to_a = border(ic, ia);
          Face f;
          f.outer = ic.volume->material;
          f.out = a_to_c ? a_to_c : (ia.volume->skin ? ia.volume->skin : ic.volume->skin);
          f.in = c_to_a ? c_to_a : (ic.volume->skin ? ic.volume->skin : ia.volume->skin);
          for (std::size_t t : on_c) faces[static_cast<std::size_t>(a)][t] = f;
          const Face transparent{ic.volume->material, ic.volume->material, nullptr, nullptr};
          for (std::size_t t : on_a) faces[static_cast<std::size_t>(c)][t] = transparent;
        }
      }
    }
  }
  for (const BorderSurface& b : reader.borders) {
    if (matched[&b] == 0) {
      log::warn(
          "{}: border surface '{}' lies on no boundary: its physvols '{}' and '{}' are "
          "neither mother and daughter nor touching siblings",
          b.where, b.name, b.first->name, b.second->name);
    }
  }

  // Engine tables: the materials and surfaces the geometry uses.
  OpticsInput input;
  std::unordered_map<const MaterialDef*, std::uint32_t> material_index;
  auto material_of = [&](const MaterialDef* m) {
    auto [it, inserted] =
        material_index.emplace(m, static_cast<std::uint32_t>(input.materials.size()));
    if (inserted) input.materials.push_back(engine_material(*m, reader.options.wls_time_profile));
    return it->second;
  };
  std::unordered_map<const SurfaceDef*, std::int32_t> surface_index;
  std::int32_t no_rindex = -1;
  // The surface a triangle gets for each direction: Geant4's precedence
  // (the border surface from the volume the photon leaves to the one it
  // enters, then the daughter's skin, then the mother's); a surface that passes on to the Fresnel
  // boundary does nothing between equal materials (Geant4's SameMaterial) and becomes the NoRINDEX
  // absorber next to a material without RINDEX.
  auto surface_of = [&](const SurfaceDef* s, const MaterialDef* in, const MaterialDef* out) {
    const bool passes = s == nullptr || s->passes_to_fresnel;
    if (passes && in == out) return std::int32_t{-1};
    if (passes && (!has_rindex(*in) || !has_rindex(*out))) {
      if (no_rindex < 0) {
        no_rindex = static_cast<std::int32_t>(input.surfaces.size());
        input.surfaces.push_back(no_rindex_surface());
      }
      return no_rindex;
    }
    if (s == nullptr) return std::int32_t{-1};
    auto [it, inserted] =
        surface_index.emplace(s, static_cast<std::int32_t>(input.surfaces.size()));
    if (inserted) input.surfaces.push_back(*s->input);
    return it->second;
  };
  material_of(world.material);

  // Channels: copy-number order when every sensitive placement has a
  // distinct copynumber, else placement order.
  std::vector<std::size_t> sensitive;
  for (std::size_t i = 1; i < instances.size(); ++i) {
    if (instances[i].volume->sensitive) sensitive.push_back(i);
  }
  bool by_copy = !sensitive.empty();
  {
    std::vector<int> copies;
    for (std::size_t i : sensitive) {
      if (!instances[i].pv->has_copynumber) by_copy = false;
      copies.push_back(instances[i].pv->copynumber);
    }
    std::sort(copies.begin(), copies.end());
    if (std::adjacent_find(copies.begin(), copies.end()) != copies.end()) by_copy = false;
  }
  if (by_copy) {
    std::stable_sort(sensitive.begin(), sensitive.end(), [&](std::size_t a, std::size_t b) {
      return instances[a].pv->copynumber < instances[b].pv->copynumber;
    });
  }
  // Sensitive placements first, so that channel k is the k-th of them.
  std::vector<std::size_t> order = sensitive;
  for (std::size_t i = 1; i < instances.size(); ++i) {
    if (!instances[i].volume->sensitive) order.push_back(i);
  }
  // How often each solid is placed with the same materials and surface: a
  // mesh placed more than once (rigidly, without per-face border surfaces)
  // is stored once and instanced.
  struct ProtoKey {
    const Mesh* mesh;
    std::uint32_t inner, outer;
    std::int32_t surface, surface_in;
    bool operator<(const ProtoKey& o) const {
      return std::tie(mesh, inner, outer, surface, surface_in) <
             std::tie(o.mesh, o.inner, o.outer, o.surface, o.surface_in);
    }
  };
  std::map<ProtoKey, std::uint32_t> proto_uses;
  std::map<ProtoKey, std::uint32_t> prototypes;
  std::vector<std::int32_t> channel_of(instances.size(), -1);  // by instance index
  std::vector<SolidMaterials> materials_of(instances.size());
  std::vector<bool> instanced(instances.size(), false);
  for (std::size_t i : order) {
    const Instance& inst = instances[i];
    const Instance& mother = instances[static_cast<std::size_t>(inst.parent)];
    SolidMaterials& sm = materials_of[i];
    sm.inner_material = material_of(inst.volume->material);
    sm.outer_material = material_of(mother.volume->material);
    const SurfaceDef* skin = inst.volume->skin ? inst.volume->skin : mother.volume->skin;
    const SurfaceDef* out = border_out[i] ? border_out[i] : skin;
    const SurfaceDef* in = border_in[i] ? border_in[i] : skin;
    sm.surface_by_part = {surface_of(out, inst.volume->material, mother.volume->material)};
    sm.inward_surface_by_part = {surface_of(in, inst.volume->material, mother.volume->material)};
    instanced[i] = faces[i].empty() && inst.world.is_rotation();
    if (instanced[i]) {
      ++proto_uses[{&mesh_of(inst), sm.inner_material, sm.outer_material, sm.surface_by_part[0],
                    sm.inward_surface_by_part[0]}];
    }
  }

  Geometry geometry;
  for (std::size_t i : order) {
    const Instance& inst = instances[i];
    const MaterialDef* in = inst.volume->material;
    SolidMaterials sm = materials_of[i];
    const Mesh* mesh = &mesh_of(inst);
    Placement placement;
    placement.translation = {static_cast<float>(inst.world.t.x), static_cast<float>(inst.world.t.y),
                             static_cast<float>(inst.world.t.z)};
    if (inst.world.is_rotation()) {
      for (int k = 0; k < 9; ++k) placement.rotation[k] = static_cast<float>(inst.world.m[k]);
    }
    ChannelLabel label;
    if (inst.volume->sensitive) {
      const V3 d = inst.world.linear({0, 0, 1});
      label.direction =
          Vec3{static_cast<float>(d.x), static_cast<float>(d.y), static_cast<float>(d.z)};
      label.copy_number = inst.pv->has_copynumber ? inst.pv->copynumber : -1;
      label.volume = inst.volume->name;
    }
    const ProtoKey key{mesh, sm.inner_material, sm.outer_material, sm.surface_by_part[0],
                       sm.inward_surface_by_part[0]};
    std::uint32_t solid;
    if (instanced[i] && proto_uses[key] > 1) {
      auto it = prototypes.find(key);
      if (it == prototypes.end()) {
        it = prototypes.emplace(key, geometry.add_prototype(inst.volume->name, *mesh, sm)).first;
      }
      solid = geometry.add_instance(inst.path, it->second, placement, inst.volume->sensitive, -1,
                                    std::move(label));
    } else {
      Mesh local;
      if (!faces[i].empty()) {
        // Faces on a touching sibling: a part for each combination of
        // materials and surfaces.
        local = *mesh;
        local.part.assign(local.triangles.size(), 0);
        sm.inner_by_part = {sm.inner_material};
        sm.outer_by_part = {sm.outer_material};
        for (const auto& [t, f] : faces[i]) {
          const MaterialDef* f_in = f.inner ? f.inner : in;
          const std::uint32_t inner = material_of(f_in), outer = material_of(f.outer);
          const std::int32_t s_out = surface_of(f.out, f_in, f.outer);
          const std::int32_t s_in = surface_of(f.in, f_in, f.outer);
          std::size_t k = 0;
          while (k < sm.surface_by_part.size() &&
                 (sm.surface_by_part[k] != s_out || sm.inward_surface_by_part[k] != s_in ||
                  sm.inner_by_part[k] != inner || sm.outer_by_part[k] != outer)) {
            ++k;
          }
          if (k == sm.surface_by_part.size()) {
            if (k == 255) {
              throw SetupError(fmt::format(
                  "{}: volume '{}' touches its siblings with more than 255 combinations of "
                  "materials and surfaces (one mesh holds at most 256) split the volume",
                  inst.volume->where, inst.volume->name));
            }
            sm.surface_by_part.push_back(s_out);
            sm.inward_surface_by_part.push_back(s_in);
            sm.inner_by_part.push_back(inner);
            sm.outer_by_part.push_back(outer);
          }
          local.part[t] = static_cast<std::uint8_t>(k);
        }
        mesh = &local;
      }
      if (!inst.world.is_rotation()) {
        // A scaled (or mirrored) placement: the linear part goes into the
        // vertices; a mirror turns the winding.
        if (mesh != &local) local = *mesh;
        for (auto& v : local.vertices) {
          const V3 w = inst.world.linear({v.x, v.y, v.z});
          v = {static_cast<float>(w.x), static_cast<float>(w.y), static_cast<float>(w.z)};
        }
        if (inst.world.det() < 0) {
          for (auto& t : local.triangles) std::swap(t[1], t[2]);
        }
        mesh = &local;
      }
      solid = inst.volume->sensitive
                  ? geometry.add_pmt(inst.path, *mesh, sm, placement, -1, std::move(label))
                  : geometry.add_solid(inst.path, *mesh, sm, placement);
    }
    if (inst.volume->sensitive) {
      channel_of[i] = geometry.solid_channel()[solid];
    } else {
      // Inside a sensitive volume: its channel (Geant4 reports the innermost
      // sensitive volume of the touchable history).
      for (int a = inst.parent; a > 0; a = instances[static_cast<std::size_t>(a)].parent) {
        if (channel_of[static_cast<std::size_t>(a)] >= 0) {
          geometry.join_channel(solid, static_cast<std::uint32_t>(channel_of[a]));
          channel_of[i] = channel_of[a];
          break;
        }
      }
    }
  }
  geometry.finalize();
  OpticsTables tables(input);
  return Detector::from_parts(name, std::move(geometry), std::move(tables),
                              reader.options.settings);
}

}  // namespace acheron::optics::gdml
