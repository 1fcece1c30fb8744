// Triangle-mesh geometry: meshes and primitives, solids placed with a
// rotation and offset, per-triangle materials / surface / solid, and the
// channel (PMT) maps. Host-side; the stepping loop reads the flattened arrays
// through ParamsView.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "acheron/optics/Types.hh"

namespace acheron::optics {

// An indexed triangle mesh. Triangles wind counter-clockwise seen from the
// outside, so (v1-v0)x(v2-v1) points from inner to outer. `part` optionally
// tags each triangle (a primitive's faces, e.g. a PMT's window and back) so a
// detector can give parts different surfaces.
struct Mesh {
  std::vector<Vec3> vertices;
  std::vector<std::array<std::uint32_t, 3>> triangles;
  std::vector<std::uint8_t> part;  // empty, or one tag per triangle

  std::size_t size() const noexcept { return triangles.size(); }
};

// A point of a profile in the (r, z) half-plane (mm), for surfaces of revolution.
struct ProfilePoint {
  float r;
  float z;
};

// Surface of revolution about z through profile points ordered from top to
// bottom (so that normals point outward); points with r == 0 become single
// pole vertices. `segments` azimuthal divisions; triangle parts are taken per
// profile segment from `parts` (or 0).
Mesh make_revolution(const std::vector<ProfilePoint>& profile, int segments,
                     const std::vector<std::uint8_t>& parts);

// Primitives, centred on the origin. `segments` sets the tessellation
// (azimuthal divisions; rings scale with it).
Mesh make_sphere(float radius, int segments = 48);
// Axis along z, from -half_height to +half_height; parts: 0 side, 1 top, 2 bottom.
Mesh make_cylinder(float radius, float half_height, int segments = 48);
// Half extents along x, y, z.
Mesh make_box(Vec3 half_extent);
// A PMT-like dome: the cap of a sphere of `sphere_radius` whose rim has
// `aperture_radius`, apex at +z on the axis and the flat back closing it at
// z = 0. Parts: 0 the curved window (photocathode), 1 the flat back.
Mesh make_pmt_cap(float aperture_radius, float sphere_radius, int segments = 24);

// Reads STL (binary or ASCII), OBJ or PLY (ASCII or binary little-endian),
// chosen by extension. Throws SetupError naming the file and problem.
Mesh load_mesh(const std::filesystem::path& path);
// Parses a mesh from memory; `format` is "stl", "obj" or "ply".
Mesh parse_mesh(const std::string& bytes, const std::string& format, const std::string& name);

// The rotation R = Rz(z) Ry(y) Rx(x) (rad; about x, then y, then z),
// row-major: Placement::from_euler's, and the matrix GDML inverts.
std::array<double, 9> rotation_zyx(double x, double y, double z);

// Rotation (row-major 3x3) then translation (mm): v' = R v + t.
struct Placement {
  std::array<float, 9> rotation{1, 0, 0, 0, 1, 0, 0, 0, 1};
  Vec3 translation;

  Vec3 apply(Vec3 v) const;
  // Rotation that turns +z into `axis` (unit), about the shortest arc.
  static Placement facing(Vec3 axis, Vec3 translation);
  // Rotation from Euler angles (rad) about x, then y, then z.
  static Placement from_euler(Vec3 angles, Vec3 translation);
  // True if the rotation is a proper rotation (orthonormal, determinant +1)
  // to within float rounding: no scale, shear or reflection.
  bool rigid() const;
};

struct SolidInfo {
  std::string name;
  std::uint32_t first_triangle = 0;
  std::uint32_t triangle_count = 0;
  Placement placement;
  std::int32_t channel = -1;
  std::int32_t instance = -1;  // index into Geometry::instances(), -1 if flattened
};

// A mesh stored once and placed many times (instancing). Its triangles,
// vertices and per-triangle records sit in the prototype arrays.
struct PrototypeInfo {
  std::string name;
  std::uint32_t first_triangle = 0;  // into prototype_triangles()
  std::uint32_t triangle_count = 0;
  std::uint32_t first_vertex = 0;  // into prototype_vertices()
  std::uint32_t vertex_count = 0;
  Vec3 centre;  // bounding sphere about the vertex centroid, prototype frame
  float radius = 0;
};

// A placed copy of a prototype; a solid of its own. Its triangles have the
// virtual ids first_triangle .. first_triangle + the prototype's count - 1.
struct InstanceInfo {
  std::uint32_t solid = 0;
  std::uint32_t prototype = 0;
  Placement placement;
  std::uint32_t first_triangle = 0;
};

struct ChannelInfo {
  std::uint32_t solid = 0;
  std::int32_t type = 0;
  Vec3 position;                  // the solid's placement translation, mm
  Vec3 direction{0, 0, 1};        // unit: where the sensor faces (its placement's +z axis)
  std::int32_t copy_number = -1;  // GDML copynumber of the placement, -1 if none
  std::string volume;             // GDML logical volume name, empty otherwise
};

// What add_pmt records about a channel beyond its placement.
struct ChannelLabel {
  std::optional<Vec3> direction;  // unit; default: the placement's +z axis
  std::int32_t copy_number = -1;
  std::string volume;
};

// Materials and surface for a solid's triangles; per part when the mesh has
// parts (the last entry applies to higher tags).
struct SolidMaterials {
  std::uint32_t inner_material = 0;
  std::uint32_t outer_material = 0;
  // The surface of each part for photons going from the inner side to the
  // outer (-1: none).
  std::vector<std::int32_t> surface_by_part{-1};
  // The same for photons going from the outer side to the inner; empty:
  // surface_by_part both ways (surfaces that do not depend on direction).
  std::vector<std::int32_t> inward_surface_by_part;
  // Optional materials per part (a PMT's glass envelope and vacuum volume in
  // one mesh); empty: inner_material / outer_material for every part.
  std::vector<std::uint32_t> inner_by_part;
  std::vector<std::uint32_t> outer_by_part;
};

class Geometry final {
 public:
  // Adds a solid; returns its id (order of addition).
  std::uint32_t add_solid(std::string name, const Mesh& mesh, const SolidMaterials& materials,
                          const Placement& placement);
  // Adds a solid that is a sensor; it takes the next channel index.
  // channel_type < 0 means "the channel index".
  std::uint32_t add_pmt(std::string name, const Mesh& mesh, const SolidMaterials& materials,
                        const Placement& placement, std::int32_t channel_type = -1,
                        ChannelLabel label = {});

  // Instancing. A prototype is a mesh with its materials and surfaces, stored
  // once; add_instance places it as a new solid (a sensor with the next
  // channel if `sensor`), sharing the prototype's triangles. The placement
  // must be rigid (SetupError otherwise). Results equal those of the same
  // mesh added with add_solid / add_pmt to within float rounding
  // (docs/optics.md, "Instancing"). Instances share no vertices with other
  // solids, so an instance must not share edges with a neighbour.
  std::uint32_t add_prototype(std::string name, const Mesh& mesh, const SolidMaterials& materials);
  std::uint32_t add_instance(std::string name, std::uint32_t prototype, const Placement& placement,
                             bool sensor = false, std::int32_t channel_type = -1,
                             ChannelLabel label = {});
  // Makes a solid part of an existing channel: a photon detected on it
  // counts for that channel (a volume inside a sensitive one, as Geant4
  // reports the innermost sensitive volume of the touchable history).
  void join_channel(std::uint32_t solid, std::uint32_t channel);

  // Merges duplicate vertices (exactly equal after placement) and computes
  // normals; call once after the last solid. Throws SetupError on degenerate
  // triangles.
  void finalize();
  bool finalized() const noexcept { return finalized_; }

  const std::vector<Vec3>& vertices() const noexcept { return vertices_; }
  const std::vector<std::array<std::uint32_t, 3>>& triangles() const noexcept { return triangles_; }
  const std::vector<TriangleData>& triangle_data() const noexcept { return triangle_data_; }
  const std::vector<Vec3>& normals() const noexcept { return normals_; }
  const std::vector<SolidInfo>& solids() const noexcept { return solids_; }
  const std::vector<ChannelInfo>& channels() const noexcept { return channels_; }
  const std::vector<std::int32_t>& solid_channel() const noexcept { return solid_channel_; }

  const std::vector<PrototypeInfo>& prototypes() const noexcept { return prototypes_; }
  const std::vector<InstanceInfo>& instances() const noexcept { return instances_; }
  const std::vector<Vec3>& prototype_vertices() const noexcept { return proto_vertices_; }
  // Vertex indices are global in prototype_vertices().
  const std::vector<std::array<std::uint32_t, 3>>& prototype_triangles() const noexcept {
    return proto_triangles_;
  }
  const std::vector<TriangleData>& prototype_triangle_data() const noexcept { return proto_data_; }

  // Every triangle, flattened and instanced: the size of the virtual id space
  // (the triangle count of the same detector flattened).
  std::uint64_t triangle_count() const noexcept;
  // Instance owning virtual triangle id, or -1 for a flattened triangle (or
  // an id beyond the last).
  std::int32_t instance_of(std::uint32_t id) const noexcept;
  // Record of any virtual triangle id, normal in the world (after finalize()).
  TriangleData triangle_record(std::uint32_t id) const;
  // World-space corners of any virtual triangle id.
  std::array<Vec3, 3> triangle_corners(std::uint32_t id) const;
  // Host memory of the triangle arrays (bytes), and what the flattened
  // detector would need for them (Embree's BVH comes on top of both).
  std::uint64_t memory_bytes() const noexcept;
  std::uint64_t flattened_memory_bytes() const noexcept;

  // Fills the geometry fields of a ParamsView (valid while this lives).
  void fill(ParamsView& view) const;

  // Axis-aligned bounds of all vertices, instances included.
  std::pair<Vec3, Vec3> bounds() const;
  // The box photons may start in and travel through: the bounds widened on
  // every side by their largest extent (at least 1 m), so a source just
  // outside the outermost mesh still runs.
  std::pair<Vec3, Vec3> world() const noexcept { return {world_lo_, world_hi_}; }

 private:
  void add_channel(std::uint32_t solid, std::int32_t channel_type, ChannelLabel label);

  std::vector<Vec3> vertices_;
  std::vector<std::array<std::uint32_t, 3>> triangles_;
  std::vector<TriangleData> triangle_data_;
  std::vector<Vec3> normals_;
  std::vector<SolidInfo> solids_;
  std::vector<ChannelInfo> channels_;
  std::vector<std::int32_t> solid_channel_;
  std::vector<PrototypeInfo> prototypes_;
  std::vector<Vec3> proto_vertices_;
  std::vector<std::array<std::uint32_t, 3>> proto_triangles_;
  std::vector<TriangleData> proto_data_;
  std::vector<InstanceInfo> instances_;
  std::vector<InstanceData> instance_data_;  // built by finalize()
  Vec3 bounds_lo_{}, bounds_hi_{};
  Vec3 world_lo_{}, world_hi_{};
  bool finalized_ = false;
};

}  // namespace acheron::optics
