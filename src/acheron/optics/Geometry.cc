#include "acheron/optics/Geometry.hh"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <tuple>

#include "acheron/core/Error.hh"
#include "acheron/optics/Step.hh"

namespace acheron::optics {

Mesh make_revolution(const std::vector<ProfilePoint>& profile, int segments,
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

namespace {

Vec3 raw_normal(const std::vector<Vec3>& v, const std::array<std::uint32_t, 3>& t) {
  return cross(v[t[1]] - v[t[0]], v[t[2]] - v[t[1]]);
}

// A solid's or prototype's mesh and materials are usable (SetupError otherwise).
void check_solid_input(const std::string& what, const Mesh& mesh, const SolidMaterials& materials) {
  ACHERON_EXPECT(!mesh.triangles.empty(),
                 what + " has no triangles (an empty mesh) check its mesh");
  ACHERON_EXPECT(mesh.part.empty() || mesh.part.size() == mesh.triangles.size(),
                 what +
                     " has a part tag list of the wrong length (one per "
                     "triangle expected) fix the mesh");
  ACHERON_EXPECT(!materials.surface_by_part.empty(),
                 what +
                     " has an empty surface list (one entry at least) use -1 "
                     "for no surface");
  for (const auto& t : mesh.triangles) {
    for (auto idx : t) {
      ACHERON_EXPECT(idx < mesh.vertices.size(),
                     what +
                         " has a triangle with a vertex index out of range "
                         "(corrupt mesh) fix the mesh file");
    }
  }
}

// The record of a triangle of part `part` (normal left for finalize()).
TriangleData part_record(const SolidMaterials& m, std::size_t part, std::uint32_t solid) {
  auto pick = [part](const auto& by_part, auto uniform) {
    return by_part.empty() ? uniform : by_part[std::min(part, by_part.size() - 1)];
  };
  const std::int32_t outward = pick(m.surface_by_part, std::int32_t{-1});
  return {{},
          pick(m.inner_by_part, m.inner_material),
          pick(m.outer_by_part, m.outer_material),
          outward,
          solid,
          pick(m.inward_surface_by_part, outward)};
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
  return make_revolution(profile, segments, {});
}

Mesh make_cylinder(float radius, float half_height, int segments) {
  ACHERON_EXPECT(radius > 0 && half_height > 0 && segments >= 3,
                 "cylinder needs radius > 0, half_height > 0 and segments >= 3 (degenerate "
                 "otherwise) fix the solid");
  return make_revolution(
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
  return make_revolution(profile, segments, parts);
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

std::array<double, 9> rotation_zyx(double x, double y, double z) {
  const double cx = std::cos(x), sx = std::sin(x);
  const double cy = std::cos(y), sy = std::sin(y);
  const double cz = std::cos(z), sz = std::sin(z);
  return {cz * cy,
          cz * sy * sx - sz * cx,
          cz * sy * cx + sz * sx,
          sz * cy,
          sz * sy * sx + cz * cx,
          sz * sy * cx - cz * sx,
          -sy,
          cy * sx,
          cy * cx};
}

Placement Placement::from_euler(Vec3 ang, Vec3 translation) {
  const auto r = rotation_zyx(ang.x, ang.y, ang.z);
  Placement p;
  p.translation = translation;
  for (int k = 0; k < 9; ++k) p.rotation[k] = static_cast<float>(r[k]);
  return p;
}

std::uint32_t Geometry::add_solid(std::string name, const Mesh& mesh,
                                  const SolidMaterials& materials, const Placement& placement) {
  ACHERON_EXPECT(!finalized_,
                 "geometry is finalized (solids are fixed after finalize()) add "
                 "solids before finalizing");
  check_solid_input("solid '" + name + "'", mesh, materials);
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
    triangles_.push_back({base + t[0], base + t[1], base + t[2]});
    triangle_data_.push_back(part_record(materials, mesh.part.empty() ? 0 : mesh.part[i], solid));
  }
  solids_.push_back(std::move(info));
  solid_channel_.push_back(-1);
  return solid;
}

std::uint32_t Geometry::add_pmt(std::string name, const Mesh& mesh, const SolidMaterials& materials,
                                const Placement& placement, std::int32_t channel_type,
                                ChannelLabel label) {
  const std::uint32_t solid = add_solid(std::move(name), mesh, materials, placement);
  add_channel(solid, channel_type, std::move(label));
  return solid;
}

void Geometry::add_channel(std::uint32_t solid, std::int32_t channel_type, ChannelLabel label) {
  const auto channel = static_cast<std::int32_t>(channels_.size());
  solid_channel_[solid] = channel;
  solids_[solid].channel = channel;
  const Placement& placement = solids_[solid].placement;
  ChannelInfo info;
  info.solid = solid;
  info.type = channel_type < 0 ? channel : channel_type;
  info.position = placement.translation;
  const auto& r = placement.rotation;
  info.direction = label.direction ? normalize(*label.direction) : Vec3{r[2], r[5], r[8]};
  info.copy_number = label.copy_number;
  info.volume = std::move(label.volume);
  channels_.push_back(std::move(info));
}

void Geometry::join_channel(std::uint32_t solid, std::uint32_t channel) {
  ACHERON_EXPECT(!finalized_,
                 "geometry is finalized (channels are fixed after finalize()) join channels "
                 "before finalizing");
  ACHERON_EXPECT(solid < solids_.size() && channel < channels_.size(),
                 "join_channel(" + std::to_string(solid) + ", " + std::to_string(channel) +
                     ") names a solid or channel that does not exist (ids count from 0 in "
                     "order of addition) add them first");
  solid_channel_[solid] = static_cast<std::int32_t>(channel);
  solids_[solid].channel = static_cast<std::int32_t>(channel);
}

bool Placement::rigid() const {
  const auto& r = rotation;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const float d =
          r[3 * i] * r[3 * j] + r[3 * i + 1] * r[3 * j + 1] + r[3 * i + 2] * r[3 * j + 2];
      if (!(std::fabs(d - (i == j ? 1.f : 0.f)) < 1e-5f)) return false;
    }
  }
  const float det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) +
                    r[2] * (r[3] * r[7] - r[4] * r[6]);
  return det > 0 && std::isfinite(translation.x) && std::isfinite(translation.y) &&
         std::isfinite(translation.z);
}

std::uint32_t Geometry::add_prototype(std::string name, const Mesh& mesh,
                                      const SolidMaterials& materials) {
  ACHERON_EXPECT(!finalized_,
                 "geometry is finalized (prototypes are fixed after finalize()) add "
                 "prototypes before finalizing");
  check_solid_input("prototype '" + name + "'", mesh, materials);
  PrototypeInfo info;
  info.name = std::move(name);
  info.first_triangle = static_cast<std::uint32_t>(proto_triangles_.size());
  info.triangle_count = static_cast<std::uint32_t>(mesh.triangles.size());
  info.first_vertex = static_cast<std::uint32_t>(proto_vertices_.size());
  // Merge exactly equal vertices, as finalize() does for flattened solids.
  std::map<std::tuple<float, float, float>, std::uint32_t> index;
  std::vector<std::uint32_t> remap(mesh.vertices.size());
  for (std::size_t i = 0; i < mesh.vertices.size(); ++i) {
    const Vec3& v = mesh.vertices[i];
    auto [it, inserted] = index.emplace(std::make_tuple(v.x, v.y, v.z),
                                        static_cast<std::uint32_t>(proto_vertices_.size()));
    if (inserted) proto_vertices_.push_back(v);
    remap[i] = it->second;
  }
  info.vertex_count = static_cast<std::uint32_t>(proto_vertices_.size()) - info.first_vertex;
  const auto proto = static_cast<std::uint32_t>(prototypes_.size());
  for (std::size_t i = 0; i < mesh.triangles.size(); ++i) {
    const auto& t = mesh.triangles[i];
    const std::array<std::uint32_t, 3> g{remap[t[0]], remap[t[1]], remap[t[2]]};
    const Vec3 n = raw_normal(proto_vertices_, g);
    const float len = norm(n);
    ACHERON_EXPECT(len > 0 && std::isfinite(len),
                   "prototype '" + info.name + "' has a degenerate triangle (" + std::to_string(i) +
                       ": zero area) remove it from the mesh or refine the tessellation");
    proto_triangles_.push_back(g);
    TriangleData d = part_record(materials, mesh.part.empty() ? 0 : mesh.part[i], proto);
    d.normal = n / len;
    proto_data_.push_back(d);
  }
  Vec3 c{};
  for (std::uint32_t i = 0; i < info.vertex_count; ++i)
    c = c + proto_vertices_[info.first_vertex + i];
  c = c / static_cast<float>(info.vertex_count);
  float r = 0;
  for (std::uint32_t i = 0; i < info.vertex_count; ++i) {
    r = std::max(r, norm(proto_vertices_[info.first_vertex + i] - c));
  }
  info.centre = c;
  info.radius = r;
  prototypes_.push_back(std::move(info));
  return proto;
}

std::uint32_t Geometry::add_instance(std::string name, std::uint32_t prototype,
                                     const Placement& placement, bool sensor,
                                     std::int32_t channel_type, ChannelLabel label) {
  ACHERON_EXPECT(!finalized_,
                 "geometry is finalized (solids are fixed after finalize()) add "
                 "instances before finalizing");
  ACHERON_EXPECT(prototype < prototypes_.size(),
                 "instance '" + name + "' names prototype " + std::to_string(prototype) +
                     " but there are " + std::to_string(prototypes_.size()) +
                     " (ids count from 0 in order of add_prototype) add the prototype first");
  ACHERON_EXPECT(placement.rigid(),
                 "instance '" + name +
                     "' has a placement that is not a rotation (scale, shear or reflection "
                     "would need its normals and winding recomputed) use a rotation and an "
                     "offset, or add the mesh as a flattened solid");
  const auto solid = static_cast<std::uint32_t>(solids_.size());
  SolidInfo info;
  info.name = std::move(name);
  info.triangle_count = prototypes_[prototype].triangle_count;
  info.placement = placement;
  info.instance = static_cast<std::int32_t>(instances_.size());
  instances_.push_back({solid, prototype, placement, 0});
  solids_.push_back(std::move(info));
  solid_channel_.push_back(-1);
  if (sensor) add_channel(solid, channel_type, std::move(label));
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
  // Virtual triangle ids of the instances, after the flattened triangles.
  std::uint64_t next = triangles_.size();
  instance_data_.clear();
  instance_data_.reserve(instances_.size());
  for (auto& in : instances_) {
    const auto& proto = prototypes_[in.prototype];
    ACHERON_EXPECT(next + proto.triangle_count <= 0x7fffffffu,
                   "the detector has more than 2^31 - 1 triangles counting every instance (a "
                   "triangle id is a signed 32-bit number) use fewer or coarser instances");
    in.first_triangle = static_cast<std::uint32_t>(next);
    solids_[in.solid].first_triangle = in.first_triangle;
    InstanceData d{};
    std::copy(in.placement.rotation.begin(), in.placement.rotation.end(), d.rotation);
    d.first_triangle = in.first_triangle;
    d.triangle_count = proto.triangle_count;
    d.prototype_first = proto.first_triangle;
    d.solid = in.solid;
    instance_data_.push_back(d);
    next += proto.triangle_count;
  }
  // Bounds over every vertex, instances placed exactly as add_solid places a
  // mesh, so that the world box equals the flattened detector's.
  bool any = false;
  Vec3 lo{}, hi{};
  auto grow = [&](Vec3 v) {
    if (!any) {
      lo = hi = v;
      any = true;
    }
    lo = {std::min(lo.x, v.x), std::min(lo.y, v.y), std::min(lo.z, v.z)};
    hi = {std::max(hi.x, v.x), std::max(hi.y, v.y), std::max(hi.z, v.z)};
  };
  for (const Vec3& v : vertices_) grow(v);
  for (const auto& in : instances_) {
    const auto& proto = prototypes_[in.prototype];
    for (std::uint32_t i = 0; i < proto.vertex_count; ++i) {
      grow(in.placement.apply(proto_vertices_[proto.first_vertex + i]));
    }
  }
  bounds_lo_ = lo;
  bounds_hi_ = hi;
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
  view.instances = instance_data_.data();
  view.n_instances = static_cast<std::uint32_t>(instance_data_.size());
  view.prototype_triangles = proto_data_.data();
  view.world_lo = world_lo_;
  view.world_hi = world_hi_;
}

std::pair<Vec3, Vec3> Geometry::bounds() const {
  if (finalized_) return {bounds_lo_, bounds_hi_};
  if (vertices_.empty()) return {};
  Vec3 lo = vertices_[0], hi = vertices_[0];
  for (const Vec3& v : vertices_) {
    lo = {std::min(lo.x, v.x), std::min(lo.y, v.y), std::min(lo.z, v.z)};
    hi = {std::max(hi.x, v.x), std::max(hi.y, v.y), std::max(hi.z, v.z)};
  }
  return {lo, hi};
}

std::uint64_t Geometry::triangle_count() const noexcept {
  std::uint64_t n = triangles_.size();
  for (const auto& in : instances_) n += prototypes_[in.prototype].triangle_count;
  return n;
}

std::int32_t Geometry::instance_of(std::uint32_t id) const noexcept {
  if (id < triangles_.size() || instances_.empty()) return -1;
  auto it = std::upper_bound(
      instances_.begin(), instances_.end(), id,
      [](std::uint32_t v, const InstanceInfo& in) { return v < in.first_triangle; });
  if (it == instances_.begin()) return -1;
  --it;
  if (id - it->first_triangle >= prototypes_[it->prototype].triangle_count) return -1;
  return static_cast<std::int32_t>(it - instances_.begin());
}

TriangleData Geometry::triangle_record(std::uint32_t id) const {
  ACHERON_EXPECT(finalized_,
                 "geometry is not finalized (normals are computed by finalize()) "
                 "call finalize() first");
  if (id < triangle_data_.size()) return triangle_data_[id];
  ParamsView v;
  fill(v);
  TriangleData t;
  ACHERON_EXPECT(optics::triangle_record(v, static_cast<std::int32_t>(id), t),
                 "triangle id " + std::to_string(id) + " is out of range (the detector has " +
                     std::to_string(triangle_count()) + ") use an id below that");
  return t;
}

std::array<Vec3, 3> Geometry::triangle_corners(std::uint32_t id) const {
  if (id < triangles_.size()) {
    const auto& t = triangles_[id];
    return {vertices_[t[0]], vertices_[t[1]], vertices_[t[2]]};
  }
  const std::int32_t k = instance_of(id);
  ACHERON_EXPECT(k >= 0, "triangle id " + std::to_string(id) +
                             " is out of range (no flattened or instanced triangle has it) use "
                             "an id below triangle_count()");
  const auto& in = instances_[k];
  const auto& t =
      proto_triangles_[prototypes_[in.prototype].first_triangle + (id - in.first_triangle)];
  return {in.placement.apply(proto_vertices_[t[0]]), in.placement.apply(proto_vertices_[t[1]]),
          in.placement.apply(proto_vertices_[t[2]])};
}

std::uint64_t Geometry::memory_bytes() const noexcept {
  const std::uint64_t per_triangle = sizeof(std::array<std::uint32_t, 3>) + sizeof(TriangleData);
  return vertices_.size() * sizeof(Vec3) + triangles_.size() * (per_triangle + sizeof(Vec3)) +
         proto_vertices_.size() * sizeof(Vec3) + proto_triangles_.size() * per_triangle +
         instances_.size() * (sizeof(InstanceInfo) + sizeof(InstanceData)) +
         solids_.size() * sizeof(SolidInfo);
}

std::uint64_t Geometry::flattened_memory_bytes() const noexcept {
  const std::uint64_t per_triangle =
      sizeof(std::array<std::uint32_t, 3>) + sizeof(TriangleData) + sizeof(Vec3);
  std::uint64_t vertices = vertices_.size();
  for (const auto& in : instances_) vertices += prototypes_[in.prototype].vertex_count;
  return vertices * sizeof(Vec3) + triangle_count() * per_triangle +
         solids_.size() * sizeof(SolidInfo);
}

}  // namespace acheron::optics
