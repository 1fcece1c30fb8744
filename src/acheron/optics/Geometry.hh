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

// Rotation (row-major 3x3) then translation (mm): v' = R v + t.
struct Placement {
  std::array<float, 9> rotation{1, 0, 0, 0, 1, 0, 0, 0, 1};
  Vec3 translation;

  Vec3 apply(Vec3 v) const;
  // Rotation that turns +z into `axis` (unit), about the shortest arc.
  static Placement facing(Vec3 axis, Vec3 translation);
  // Rotation from Euler angles (rad) about x, then y, then z.
  static Placement from_euler(Vec3 angles, Vec3 translation);
};

struct SolidInfo {
  std::string name;
  std::uint32_t first_triangle = 0;
  std::uint32_t triangle_count = 0;
  Placement placement;
  std::int32_t channel = -1;
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
  std::vector<std::int32_t> surface_by_part{-1};
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

  // Fills the geometry fields of a ParamsView (valid while this lives).
  void fill(ParamsView& view) const;

  // Axis-aligned bounds of all vertices.
  std::pair<Vec3, Vec3> bounds() const;
  // The box photons may start in and travel through: the bounds widened on
  // every side by their largest extent (at least 1 m), so a source just
  // outside the outermost mesh still runs.
  std::pair<Vec3, Vec3> world() const noexcept { return {world_lo_, world_hi_}; }

 private:
  std::vector<Vec3> vertices_;
  std::vector<std::array<std::uint32_t, 3>> triangles_;
  std::vector<TriangleData> triangle_data_;
  std::vector<Vec3> normals_;
  std::vector<SolidInfo> solids_;
  std::vector<ChannelInfo> channels_;
  std::vector<std::int32_t> solid_channel_;
  Vec3 world_lo_{}, world_hi_{};
  bool finalized_ = false;
};

}  // namespace acheron::optics
