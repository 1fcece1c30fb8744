#include "acheron/optics/Geometry.hh"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <tuple>

#include "acheron/core/Error.hh"

namespace acheron::optics {
namespace {

struct ProfilePoint {
  float r;
  float z;
};

// Surface of revolution about z through profile points ordered from top to
// bottom; points with r == 0 become single pole vertices. Triangle parts are
// taken per profile segment from `parts` (or 0).
Mesh revolve(const std::vector<ProfilePoint>& profile, int segments,
             const std::vector<std::uint8_t>& parts) {
  Mesh m;
  std::vector<std::vector<std::uint32_t>> rings;
  for (const auto& p : profile) {
    std::vector<std::uint32_t> ring;
    if (p.r == 0.f) {
      ring.assign(static_cast<std::size_t>(segments),
                  static_cast<std::uint32_t>(m.vertices.size()));
      m.vertices.push_back({0.f, 0.f, p.z});
    } else {
      for (int j = 0; j < segments; ++j) {
        const double phi = 2 * std::numbers::pi * j / segments;
        ring.push_back(static_cast<std::uint32_t>(m.vertices.size()));
        m.vertices.push_back({static_cast<float>(p.r * std::cos(phi)),
                              static_cast<float>(p.r * std::sin(phi)), p.z});
      }
    }
    rings.push_back(std::move(ring));
  }
  for (std::size_t k = 0; k + 1 < profile.size(); ++k) {
    const std::uint8_t part = k < parts.size() ? parts[k] : 0;
    for (int j = 0; j < segments; ++j) {
      const int jn = (j + 1) % segments;
      const auto a = rings[k][j], b = rings[k][jn];
      const auto c = rings[k + 1][j], d = rings[k + 1][jn];
      if (profile[k + 1].r != 0.f) {
        m.triangles.push_back({a, c, d});
        m.part.push_back(part);
      }
      if (profile[k].r != 0.f) {
        m.triangles.push_back({a, d, b});
        m.part.push_back(part);
      }
    }
  }
  return m;
}

Vec3 raw_normal(const std::vector<Vec3>& v, const std::array<std::uint32_t, 3>& t) {
  return cross(v[t[1]] - v[t[0]], v[t[2]] - v[t[1]]);
}

}  // namespace

Mesh make_sphere(float radius, int segments) {
  ACHERON_EXPECT(radius > 0 && segments >= 3,
                 "sphere needs radius > 0 and segments >= 3 (degenerate otherwise) fix the solid");
  const int rings = std::max(2, segments / 2);
  std::vector<ProfilePoint> profile;
  for (int i = 0; i <= rings; ++i) {
    const double theta = std::numbers::pi * i / rings;
    float r = (i == 0 || i == rings) ? 0.f : static_cast<float>(radius * std::sin(theta));
    profile.push_back({r, static_cast<float>(radius * std::cos(theta))});
  }
  return revolve(profile, segments, {});
}

Mesh make_cylinder(float radius, float half_height, int segments) {
  ACHERON_EXPECT(radius > 0 && half_height > 0 && segments >= 3,
                 "cylinder needs radius > 0, half_height > 0 and segments >= 3 (degenerate "
                 "otherwise) fix the solid");
  return revolve(
      {{0, half_height}, {radius, half_height}, {radius, -half_height}, {0, -half_height}},
      segments, {1, 0, 2});
}

Mesh make_box(Vec3 h) {
  ACHERON_EXPECT(h.x > 0 && h.y > 0 && h.z > 0,
                 "box needs positive half extents (degenerate otherwise) fix the solid");
  Mesh m;
  for (int i = 0; i < 8; ++i) {
    m.vertices.push_back({(i & 1) ? h.x : -h.x, (i & 2) ? h.y : -h.y, (i & 4) ? h.z : -h.z});
  }
  // Each face as two triangles, wound counter-clockwise seen from outside.
  const std::uint32_t faces[6][4] = {
      {0, 2, 6, 4},  // -x
      {1, 5, 7, 3},  // +x
      {0, 4, 5, 1},  // -y
      {2, 3, 7, 6},  // +y
      {0, 1, 3, 2},  // -z
      {4, 6, 7, 5},  // +z
  };
  for (const auto& f : faces) {
    m.triangles.push_back({f[0], f[1], f[2]});
    m.triangles.push_back({f[0], f[2], f[3]});
  }
  // The box is convex and centred on the origin: make every normal point away
  // from the centre whatever order the face table lists its corners in.
  for (auto& t : m.triangles) {
    const Vec3 c = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.f;
    if (dot(raw_normal(m.vertices, t), c) < 0) std::swap(t[1], t[2]);
  }
  return m;
}

Mesh make_pmt_cap(float aperture_radius, float sphere_radius, int segments) {
  ACHERON_EXPECT(aperture_radius > 0 && sphere_radius >= aperture_radius && segments >= 3,
                 "PMT cap needs 0 < aperture_radius <= sphere_radius and segments >= 3 (the rim "
                 "must lie on the sphere) fix the solid");
  // Sphere centre below the rim plane so that the rim circle has aperture_radius.
  const double zc =
      -std::sqrt(double(sphere_radius) * sphere_radius - double(aperture_radius) * aperture_radius);
  const double theta_max = std::asin(aperture_radius / double(sphere_radius));
  const int rings = std::max(2, segments / 4);
  std::vector<ProfilePoint> profile;
  std::vector<std::uint8_t> parts;
  for (int i = 0; i <= rings; ++i) {
    const double t = theta_max * i / rings;
    float r = i == 0 ? 0.f : static_cast<float>(sphere_radius * std::sin(t));
    float z = i == rings ? 0.f : static_cast<float>(zc + sphere_radius * std::cos(t));
    profile.push_back({r, z});
    if (i < rings) parts.push_back(0);
  }
  profile.push_back({0.f, 0.f});
  parts.push_back(1);
  return revolve(profile, segments, parts);
}

Vec3 Placement::apply(Vec3 v) const {
  const auto& r = rotation;
  return {r[0] * v.x + r[1] * v.y + r[2] * v.z + translation.x,
          r[3] * v.x + r[4] * v.y + r[5] * v.z + translation.y,
          r[6] * v.x + r[7] * v.y + r[8] * v.z + translation.z};
}

Placement Placement::facing(Vec3 axis, Vec3 translation) {
  Placement p;
  p.translation = translation;
  const Vec3 a = normalize(axis);
  const Vec3 z{0, 0, 1};
  const float c = dot(z, a);
  if (c > 1 - 1e-7f) return p;
  if (c < -1 + 1e-7f) {  // half turn about x
    p.rotation = {1, 0, 0, 0, -1, 0, 0, 0, -1};
    return p;
  }
  // Rodrigues' formula for the rotation taking z to a.
  const Vec3 k = normalize(cross(z, a));
  const float s = std::sqrt(std::max(0.f, 1 - c * c));
  const float t = 1 - c;
  p.rotation = {t * k.x * k.x + c,       t * k.x * k.y - s * k.z, t * k.x * k.z + s * k.y,
                t * k.x * k.y + s * k.z, t * k.y * k.y + c,       t * k.y * k.z - s * k.x,
                t * k.x * k.z - s * k.y, t * k.y * k.z + s * k.x, t * k.z * k.z + c};
  return p;
}

Placement Placement::from_euler(Vec3 ang, Vec3 translation) {
  const float cx = std::cos(ang.x), sx = std::sin(ang.x);
  const float cy = std::cos(ang.y), sy = std::sin(ang.y);
  const float cz = std::cos(ang.z), sz = std::sin(ang.z);
  // R = Rz * Ry * Rx
  Placement p;
  p.translation = translation;
  p.rotation = {cz * cy,
                cz * sy * sx - sz * cx,
                cz * sy * cx + sz * sx,
                sz * cy,
                sz * sy * sx + cz * cx,
                sz * sy * cx - cz * sx,
                -sy,
                cy * sx,
                cy * cx};
  return p;
}

std::uint32_t Geometry::add_solid(std::string name, const Mesh& mesh,
                                  const SolidMaterials& materials, const Placement& placement) {
  ACHERON_EXPECT(!finalized_,
                 "geometry is finalized (solids are fixed after finalize()) add "
                 "solids before finalizing");
  ACHERON_EXPECT(!mesh.triangles.empty(),
                 "solid '" + name + "' has no triangles (an empty mesh) check its mesh");
  ACHERON_EXPECT(mesh.part.empty() || mesh.part.size() == mesh.triangles.size(),
                 "solid '" + name +
                     "' has a part tag list of the wrong length (one per "
                     "triangle expected) fix the mesh");
  ACHERON_EXPECT(!materials.surface_by_part.empty(),
                 "solid '" + name +
                     "' has an empty surface list (one entry at least) use -1 "
                     "for no surface");
  const auto solid = static_cast<std::uint32_t>(solids_.size());
  const auto base = static_cast<std::uint32_t>(vertices_.size());
  for (const Vec3& v : mesh.vertices) vertices_.push_back(placement.apply(v));
  SolidInfo info;
  info.name = std::move(name);
  info.first_triangle = static_cast<std::uint32_t>(triangles_.size());
  info.triangle_count = static_cast<std::uint32_t>(mesh.triangles.size());
  info.placement = placement;
  for (std::size_t i = 0; i < mesh.triangles.size(); ++i) {
    const auto& t = mesh.triangles[i];
    for (auto idx : t) {
      ACHERON_EXPECT(idx < mesh.vertices.size(),
                     "solid '" + info.name +
                         "' has a triangle with a vertex index out of range "
                         "(corrupt mesh) fix the mesh file");
    }
    triangles_.push_back({base + t[0], base + t[1], base + t[2]});
    const std::size_t part = mesh.part.empty() ? 0 : mesh.part[i];
    const auto& sp = materials.surface_by_part;
    triangle_data_.push_back({{},
                              materials.inner_material,
                              materials.outer_material,
                              sp[std::min(part, sp.size() - 1)],
                              solid});
  }
  solids_.push_back(std::move(info));
  solid_channel_.push_back(-1);
  return solid;
}

std::uint32_t Geometry::add_pmt(std::string name, const Mesh& mesh, const SolidMaterials& materials,
                                const Placement& placement, std::int32_t channel_type,
                                ChannelLabel label) {
  const std::uint32_t solid = add_solid(std::move(name), mesh, materials, placement);
  const auto channel = static_cast<std::int32_t>(channels_.size());
  solid_channel_[solid] = channel;
  solids_[solid].channel = channel;
  ChannelInfo info;
  info.solid = solid;
  info.type = channel_type < 0 ? channel : channel_type;
  info.position = placement.translation;
  const auto& r = placement.rotation;
  info.direction = label.direction ? normalize(*label.direction) : Vec3{r[2], r[5], r[8]};
  info.copy_number = label.copy_number;
  info.volume = std::move(label.volume);
  channels_.push_back(std::move(info));
  return solid;
}

void Geometry::finalize() {
  ACHERON_EXPECT(!finalized_,
                 "geometry finalized twice (finalize() merges vertices once) call "
                 "it once");
  // Merge exactly equal vertices so shared edges are watertight.
  std::map<std::tuple<float, float, float>, std::uint32_t> index;
  std::vector<Vec3> merged;
  std::vector<std::uint32_t> remap(vertices_.size());
  for (std::size_t i = 0; i < vertices_.size(); ++i) {
    const Vec3& v = vertices_[i];
    auto [it, inserted] =
        index.emplace(std::make_tuple(v.x, v.y, v.z), static_cast<std::uint32_t>(merged.size()));
    if (inserted) merged.push_back(v);
    remap[i] = it->second;
  }
  vertices_ = std::move(merged);
  normals_.clear();
  normals_.reserve(triangles_.size());
  for (std::size_t i = 0; i < triangles_.size(); ++i) {
    auto& t = triangles_[i];
    for (auto& idx : t) idx = remap[idx];
    const Vec3 n = raw_normal(vertices_, t);
    const float len = norm(n);
    const auto& solid = solids_[triangle_data_[i].solid];
    ACHERON_EXPECT(len > 0 && std::isfinite(len),
                   "solid '" + solid.name + "' has a degenerate triangle (" +
                       std::to_string(i - solid.first_triangle) +
                       ": zero area after placement) remove it from the mesh or refine the "
                       "tessellation");
    normals_.push_back(n / len);
    triangle_data_[i].normal = n / len;
  }
  const auto [lo, hi] = bounds();
  const float margin = std::max({hi.x - lo.x, hi.y - lo.y, hi.z - lo.z, 1000.0f});  // mm
  world_lo_ = {lo.x - margin, lo.y - margin, lo.z - margin};
  world_hi_ = {hi.x + margin, hi.y + margin, hi.z + margin};
  finalized_ = true;
}

void Geometry::fill(ParamsView& view) const {
  ACHERON_EXPECT(finalized_,
                 "geometry is not finalized (normals are computed by finalize()) "
                 "call finalize() first");
  view.triangles = triangle_data_.data();
  view.n_triangles = static_cast<std::uint32_t>(triangles_.size());
  view.solid_channel = solid_channel_.data();
  view.n_solids = static_cast<std::uint32_t>(solids_.size());
  view.world_lo = world_lo_;
  view.world_hi = world_hi_;
}

std::pair<Vec3, Vec3> Geometry::bounds() const {
  if (vertices_.empty()) return {};
  Vec3 lo = vertices_[0], hi = vertices_[0];
  for (const Vec3& v : vertices_) {
    lo = {std::min(lo.x, v.x), std::min(lo.y, v.y), std::min(lo.z, v.z)};
    hi = {std::max(hi.x, v.x), std::max(hi.y, v.y), std::max(hi.z, v.z)};
  }
  return {lo, hi};
}

}  // namespace acheron::optics
