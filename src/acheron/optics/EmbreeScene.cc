#include "acheron/optics/EmbreeScene.hh"

#include <embree3/rtcore.h>

#include <cstring>
#include <limits>
#include <string>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::optics {
namespace {

// Intersection context carrying the triangle to skip (Chroma's rule: a photon
// never re-hits the triangle it is sitting on).
struct ExcludeContext {
  RTCIntersectContext context;
  unsigned exclude;
  const TriangleData* prefetch;
};

void exclude_filter(const RTCFilterFunctionNArguments* args) {
  const auto* ctx = reinterpret_cast<const ExcludeContext*>(args->context);
  for (unsigned i = 0; i < args->N; ++i) {
    if (args->valid[i] == 0) continue;
    const unsigned prim = RTCHitN_primID(args->hit, args->N, i);
    const float t = RTCRayN_tfar(args->ray, args->N, i);
    if (prim == ctx->exclude || !(t > 0.f)) {
      args->valid[i] = 0;
    } else if (ctx->prefetch) {
      __builtin_prefetch(ctx->prefetch + prim);
    }
  }
}

void error_callback(void*, RTCError code, const char* message) {
  log::error("embree error {}: {}", static_cast<int>(code), message ? message : "");
}

}  // namespace

bool EmbreeTracer::intersect(Vec3 o, Vec3 d, std::int32_t exclude, RayHit& hit) const {
  ExcludeContext ctx;
  rtcInitIntersectContext(&ctx.context);
  ctx.context.filter = exclude_filter;
  ctx.exclude = exclude < 0 ? RTC_INVALID_GEOMETRY_ID : static_cast<unsigned>(exclude);
  ctx.prefetch = prefetch_;
  RTCRayHit rh;
  rh.ray.org_x = o.x;
  rh.ray.org_y = o.y;
  rh.ray.org_z = o.z;
  rh.ray.dir_x = d.x;
  rh.ray.dir_y = d.y;
  rh.ray.dir_z = d.z;
  rh.ray.tnear = 0.f;
  rh.ray.tfar = std::numeric_limits<float>::infinity();
  rh.ray.time = 0.f;
  rh.ray.mask = 0xFFFFFFFFu;
  rh.ray.id = 0;
  rh.ray.flags = 0;
  rh.hit.geomID = RTC_INVALID_GEOMETRY_ID;
  rh.hit.primID = RTC_INVALID_GEOMETRY_ID;
  rh.hit.instID[0] = RTC_INVALID_GEOMETRY_ID;
  rtcIntersect1(static_cast<RTCScene>(scene_), &ctx.context, &rh);
  if (rh.hit.geomID == RTC_INVALID_GEOMETRY_ID) return false;
  hit.distance = rh.ray.tfar;
  hit.triangle = static_cast<std::int32_t>(rh.hit.primID);
  return true;
}

EmbreeScene::EmbreeScene(const Geometry& geometry) {
  ACHERON_EXPECT(geometry.finalized(),
                 "geometry is not finalized (the ray-casting scene needs "
                 "merged vertices) call Geometry::finalize() first");
  RTCDevice device = rtcNewDevice(nullptr);
  if (!device) {
    throw SetupError("cannot create an Embree device (error " +
                     std::to_string(static_cast<int>(rtcGetDeviceError(nullptr))) +
                     ") check the Embree installation");
  }
  device_ = device;
  rtcSetDeviceErrorFunction(device, error_callback, nullptr);
  RTCScene scene = rtcNewScene(device);
  scene_ = scene;
  rtcSetSceneFlags(scene, RTC_SCENE_FLAG_ROBUST | RTC_SCENE_FLAG_CONTEXT_FILTER_FUNCTION);
  rtcSetSceneBuildQuality(scene, RTC_BUILD_QUALITY_HIGH);

  RTCGeometry mesh = rtcNewGeometry(device, RTC_GEOMETRY_TYPE_TRIANGLE);
  const auto& verts = geometry.vertices();
  const auto& tris = geometry.triangles();
  // Embree reads vertices with 16-byte loads: the buffer gets one float of padding.
  auto* vb = static_cast<float*>(rtcSetNewGeometryBuffer(
      mesh, RTC_BUFFER_TYPE_VERTEX, 0, RTC_FORMAT_FLOAT3, 3 * sizeof(float), verts.size()));
  auto* ib = static_cast<unsigned*>(rtcSetNewGeometryBuffer(
      mesh, RTC_BUFFER_TYPE_INDEX, 0, RTC_FORMAT_UINT3, 3 * sizeof(unsigned), tris.size()));
  if (!vb || !ib) {
    rtcReleaseGeometry(mesh);
    throw SetupError(
        "Embree could not allocate geometry buffers (out of memory?) reduce the "
        "detector size");
  }
  for (std::size_t i = 0; i < verts.size(); ++i) {
    vb[3 * i] = verts[i].x;
    vb[3 * i + 1] = verts[i].y;
    vb[3 * i + 2] = verts[i].z;
  }
  for (std::size_t i = 0; i < tris.size(); ++i) {
    std::memcpy(ib + 3 * i, tris[i].data(), 3 * sizeof(unsigned));
  }
  rtcCommitGeometry(mesh);
  rtcAttachGeometry(scene, mesh);
  rtcReleaseGeometry(mesh);
  rtcCommitScene(scene);
  if (auto err = rtcGetDeviceError(device); err != RTC_ERROR_NONE) {
    throw SetupError("Embree failed to build the scene (error " +
                     std::to_string(static_cast<int>(err)) + ") check the geometry");
  }
}

EmbreeScene::~EmbreeScene() {
  if (scene_) rtcReleaseScene(static_cast<RTCScene>(scene_));
  if (device_) rtcReleaseDevice(static_cast<RTCDevice>(device_));
}

}  // namespace acheron::optics
