#include "acheron/optics/EmbreeScene.hh"

#include <embree3/rtcore.h>

#include <algorithm>
#include <atomic>
#include <cmath>
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
  unsigned exclude_solid;  // the solid of `exclude`
  float near;              // hits on exclude_solid closer than this are the same point
  const TracerGeometry* geometries;
  bool prefetch;
};

void exclude_filter(const RTCFilterFunctionNArguments* args) {
  const auto* ctx = reinterpret_cast<const ExcludeContext*>(args->context);
  for (unsigned i = 0; i < args->N; ++i) {
    if (args->valid[i] == 0) continue;
    const unsigned prim = RTCHitN_primID(args->hit, args->N, i);
    const unsigned inst = RTCHitN_instID(args->hit, args->N, i, 0);
    // Flattened triangles are geometry 0 of the top-level scene; instance k
    // is geometry k + 1 there, and its hits carry that id as instID.
    const TracerGeometry& g = ctx->geometries[inst == RTC_INVALID_GEOMETRY_ID ? 0 : inst];
    const unsigned id = g.first_triangle + prim;
    const float t = RTCRayN_tfar(args->ray, args->N, i);
    if (id == ctx->exclude || !(t > 0.f)) {
      args->valid[i] = 0;
    } else if (t < ctx->near &&
               (g.solid == TracerGeometry::kNoSolid ? g.records[prim].solid : g.solid) ==
                   ctx->exclude_solid) {
      args->valid[i] = 0;
    } else if (ctx->prefetch) {
      __builtin_prefetch(g.records + prim);
    }
  }
}

void error_callback(void*, RTCError code, const char* message) {
  log::error("embree error {}: {}", static_cast<int>(code), message ? message : "");
}

bool memory_monitor(void* ptr, ssize_t bytes, bool) {
  reinterpret_cast<std::atomic<std::int64_t>*>(ptr)->fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void check_device(RTCDevice device, const char* what) {
  if (auto err = rtcGetDeviceError(device); err != RTC_ERROR_NONE) {
    throw SetupError(std::string("Embree failed to build ") + what + " (error " +
                     std::to_string(static_cast<int>(err)) +
                     ") check the geometry, or the memory available");
  }
}

// One triangle geometry from vertices and index triples.
RTCGeometry triangle_geometry(RTCDevice device, const Vec3* verts, std::size_t n_verts,
                              const std::array<std::uint32_t, 3>* tris, std::size_t n_tris,
                              std::uint32_t vertex_offset) {
  RTCGeometry mesh = rtcNewGeometry(device, RTC_GEOMETRY_TYPE_TRIANGLE);
  // Embree reads vertices with 16-byte loads: the buffer gets one float of padding.
  auto* vb = static_cast<float*>(rtcSetNewGeometryBuffer(
      mesh, RTC_BUFFER_TYPE_VERTEX, 0, RTC_FORMAT_FLOAT3, 3 * sizeof(float), n_verts));
  auto* ib = static_cast<unsigned*>(rtcSetNewGeometryBuffer(
      mesh, RTC_BUFFER_TYPE_INDEX, 0, RTC_FORMAT_UINT3, 3 * sizeof(unsigned), n_tris));
  if (!vb || !ib) {
    rtcReleaseGeometry(mesh);
    throw SetupError(
        "Embree could not allocate geometry buffers (out of memory?) reduce the "
        "detector size");
  }
  for (std::size_t i = 0; i < n_verts; ++i) {
    vb[3 * i] = verts[i].x;
    vb[3 * i + 1] = verts[i].y;
    vb[3 * i + 2] = verts[i].z;
  }
  for (std::size_t i = 0; i < n_tris; ++i) {
    for (int k = 0; k < 3; ++k) ib[3 * i + k] = tris[i][k] - vertex_offset;
  }
  rtcCommitGeometry(mesh);
  return mesh;
}

RTCScene new_scene(RTCDevice device) {
  RTCScene scene = rtcNewScene(device);
  rtcSetSceneFlags(scene, RTC_SCENE_FLAG_ROBUST | RTC_SCENE_FLAG_CONTEXT_FILTER_FUNCTION);
  rtcSetSceneBuildQuality(scene, RTC_BUILD_QUALITY_HIGH);
  return scene;
}

}  // namespace

std::uint32_t EmbreeTracer::solid_of(std::uint32_t id) const {
  // Geometries after the first (the flattened triangles) are instances in
  // ascending first_triangle order.
  std::size_t lo = 1, hi = n_geometries_;
  if (hi <= 1 || id < geometries_[1].first_triangle) return geometries_[0].records[id].solid;
  while (hi - lo > 1) {
    const std::size_t mid = (lo + hi) / 2;
    if (geometries_[mid].first_triangle <= id) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return geometries_[lo].solid;
}

bool EmbreeTracer::intersect(Vec3 o, Vec3 d, std::int32_t exclude, RayHit& hit) const {
  ExcludeContext ctx;
  rtcInitIntersectContext(&ctx.context);
  ctx.context.filter = exclude_filter;
  ctx.exclude = exclude < 0 ? RTC_INVALID_GEOMETRY_ID : static_cast<unsigned>(exclude);
  // Embree's distances near the origin are good to a few float ulps of the
  // coordinates; a neighbouring triangle of the surface just left, closer
  // than this, is the same point met again (an edge or vertex hit).
  ctx.exclude_solid = exclude < 0 ? TracerGeometry::kNoSolid : solid_of(ctx.exclude);
  ctx.near = 1e-6f * (std::max({std::fabs(o.x), std::fabs(o.y), std::fabs(o.z)}) + 100.f);
  ctx.geometries = geometries_;
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
  const unsigned inst = rh.hit.instID[0];
  if (inst == RTC_INVALID_GEOMETRY_ID) [[likely]] {
    hit.triangle = static_cast<std::int32_t>(rh.hit.primID);
    hit.instance = -1;
  } else {
    hit.triangle = static_cast<std::int32_t>(geometries_[inst].first_triangle + rh.hit.primID);
    hit.instance = static_cast<std::int32_t>(inst - 1);
  }
  return true;
}

EmbreeScene::EmbreeScene(const Geometry& geometry)
    : bytes_(std::make_unique<std::atomic<std::int64_t>>(0)) {
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
  rtcSetDeviceMemoryMonitorFunction(device, memory_monitor, bytes_.get());
  RTCScene scene = new_scene(device);
  scene_ = scene;

  const auto& tris = geometry.triangles();
  geometries_.push_back({0, geometry.triangle_data().data()});
  if (!tris.empty()) {
    const auto& verts = geometry.vertices();
    RTCGeometry mesh =
        triangle_geometry(device, verts.data(), verts.size(), tris.data(), tris.size(), 0);
    rtcAttachGeometryByID(scene, mesh, 0);
    rtcReleaseGeometry(mesh);
  }
  // One scene per prototype, built once.
  const auto& pverts = geometry.prototype_vertices();
  const auto& ptris = geometry.prototype_triangles();
  for (const auto& proto : geometry.prototypes()) {
    RTCScene ps = new_scene(device);
    prototype_scenes_.push_back(ps);
    RTCGeometry mesh = triangle_geometry(device, pverts.data() + proto.first_vertex,
                                         proto.vertex_count, ptris.data() + proto.first_triangle,
                                         proto.triangle_count, proto.first_vertex);
    rtcAttachGeometryByID(ps, mesh, 0);
    rtcReleaseGeometry(mesh);
    rtcCommitScene(ps);
    check_device(device, ("the scene of prototype '" + proto.name + "'").c_str());
  }
  const auto& instances = geometry.instances();
  const auto* records = geometry.prototype_triangle_data().data();
  for (std::size_t k = 0; k < instances.size(); ++k) {
    const auto& in = instances[k];
    const auto& proto = geometry.prototypes()[in.prototype];
    RTCGeometry g = rtcNewGeometry(device, RTC_GEOMETRY_TYPE_INSTANCE);
    rtcSetGeometryInstancedScene(g, static_cast<RTCScene>(prototype_scenes_[in.prototype]));
    const auto& r = in.placement.rotation;
    const Vec3 t = in.placement.translation;
    const float xfm[12] = {r[0], r[1], r[2], t.x, r[3], r[4], r[5], t.y, r[6], r[7], r[8], t.z};
    rtcSetGeometryTransform(g, 0, RTC_FORMAT_FLOAT3X4_ROW_MAJOR, xfm);
    rtcCommitGeometry(g);
    rtcAttachGeometryByID(scene, g, static_cast<unsigned>(k + 1));
    rtcReleaseGeometry(g);
    geometries_.push_back({in.first_triangle, records + proto.first_triangle, in.solid});
  }
  rtcCommitScene(scene);
  check_device(device, "the scene");
}

std::int64_t EmbreeScene::embree_bytes() const noexcept {
  return bytes_->load(std::memory_order_relaxed);
}

EmbreeScene::~EmbreeScene() {
  if (scene_) rtcReleaseScene(static_cast<RTCScene>(scene_));
  for (void* s : prototype_scenes_) rtcReleaseScene(static_cast<RTCScene>(s));
  if (device_) rtcReleaseDevice(static_cast<RTCDevice>(device_));
}

}  // namespace acheron::optics
