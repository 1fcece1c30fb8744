// Ray casting on the CPU through Embree: one robust (watertight) BVH over
// every triangle of a finalized Geometry.
#pragma once

#include <cstdint>
#include <memory>

#include "acheron/optics/Geometry.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics {

// The Tracer the stepping loop calls. Cheap to copy; valid while its
// EmbreeScene lives; safe to use from many threads at once.
class EmbreeTracer final {
 public:
  // prefetch: optional per-triangle records (32 bytes each) to start loading
  // while the ray is still being traversed, hiding the cache miss the
  // stepping loop would otherwise take right after the cast.
  explicit EmbreeTracer(void* scene, const TriangleData* prefetch = nullptr)
      : scene_(scene), prefetch_(prefetch) {}
  // Nearest triangle along the ray with distance > 0, skipping
  // exclude_triangle (the surface the photon sits on; -1 for none).
  bool intersect(Vec3 origin, Vec3 direction, std::int32_t exclude_triangle, RayHit& hit) const;

 private:
  void* scene_;  // RTCScene
  const TriangleData* prefetch_;
};

class EmbreeScene final {
 public:
  explicit EmbreeScene(const Geometry& geometry);
  ~EmbreeScene();
  EmbreeScene(const EmbreeScene&) = delete;
  EmbreeScene& operator=(const EmbreeScene&) = delete;

  EmbreeTracer tracer(const TriangleData* prefetch = nullptr) const {
    return EmbreeTracer(scene_, prefetch);
  }

 private:
  void* device_ = nullptr;  // RTCDevice
  void* scene_ = nullptr;   // RTCScene
};

}  // namespace acheron::optics
