// Ray casting on the CPU through Embree: a robust (watertight) two-level BVH.
// The flattened triangles of a finalized Geometry form one geometry of the
// top-level scene; each prototype is a scene of its own, and each instance
// places it with its transform.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "acheron/optics/Geometry.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// Per top-level geometry (0: the flattened triangles, k + 1: instance k):
// the virtual id of its triangle 0 and its per-triangle records.
struct TracerGeometry {
  std::uint32_t first_triangle = 0;
  const TriangleData* records = nullptr;
  // An instance's solid; kNoSolid for the flattened triangles (whose records
  // carry their solids).
  std::uint32_t solid = kNoSolid;
  static constexpr std::uint32_t kNoSolid = 0xFFFFFFFFu;
};

// The Tracer the stepping loop calls. Cheap to copy; valid while its
// EmbreeScene lives; safe to use from many threads at once.
class EmbreeTracer final {
 public:
  // prefetch: start loading the hit triangle's 32-byte record while the ray
  // is still being traversed, hiding the cache miss the stepping loop would
  // otherwise take right after the cast.
  EmbreeTracer(void* scene, const TracerGeometry* geometries, std::size_t n_geometries,
               bool prefetch)
      : scene_(scene), geometries_(geometries), n_geometries_(n_geometries), prefetch_(prefetch) {}
  // Nearest triangle along the ray with distance > 0, skipping
  // exclude_triangle (the surface the photon sits on; -1 for none) and any
  // other triangle of the same solid closer than a rounding distance (a
  // photon that met its surface on an edge or vertex would otherwise meet
  // the neighbouring triangle again at once). Triangle ids are virtual
  // (flattened and instanced in one space); hit.instance names the instance
  // hit (-1 for a flattened triangle).
  bool intersect(Vec3 origin, Vec3 direction, std::int32_t exclude_triangle, RayHit& hit) const;

 private:
  // The solid of a virtual triangle id.
  std::uint32_t solid_of(std::uint32_t id) const;

  void* scene_;  // RTCScene
  const TracerGeometry* geometries_;
  std::size_t n_geometries_;
  bool prefetch_;
};

class EmbreeScene final {
 public:
  explicit EmbreeScene(const Geometry& geometry);
  ~EmbreeScene();
  EmbreeScene(const EmbreeScene&) = delete;
  EmbreeScene& operator=(const EmbreeScene&) = delete;

  EmbreeTracer tracer(bool prefetch = false) const {
    return EmbreeTracer(scene_, geometries_.data(), geometries_.size(), prefetch);
  }
  // Bytes Embree holds for this scene (BVHs and buffers), as its memory
  // monitor reported them after the build.
  std::int64_t embree_bytes() const noexcept;

 private:
  void* device_ = nullptr;  // RTCDevice
  void* scene_ = nullptr;   // RTCScene
  std::vector<void*> prototype_scenes_;
  std::vector<TracerGeometry> geometries_;
  std::unique_ptr<std::atomic<std::int64_t>> bytes_;  // updated by Embree's memory monitor
};

}  // namespace acheron::optics
