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
  explicit EmbreeTracer(void* scene) : scene_(scene) {}
  // Nearest triangle along the ray with distance > 0, skipping
  // exclude_triangle (the surface the photon sits on; -1 for none).
  bool intersect(Vec3 origin, Vec3 direction, std::int32_t exclude_triangle, RayHit& hit) const;

 private:
  void* scene_;  // RTCScene
};

class EmbreeScene final {
 public:
  explicit EmbreeScene(const Geometry& geometry);
  ~EmbreeScene();
  EmbreeScene(const EmbreeScene&) = delete;
  EmbreeScene& operator=(const EmbreeScene&) = delete;

  EmbreeTracer tracer() const { return EmbreeTracer(scene_); }

 private:
  void* device_ = nullptr;  // RTCDevice
  void* scene_ = nullptr;   // RTCScene
};

}  // namespace acheron::optics
