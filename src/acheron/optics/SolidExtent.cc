// The extent of a solid (its largest size, an estimate from its parameters
// without meshing it).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <variant>

#include "acheron/optics/SolidMesher.hh"

namespace acheron::optics {

namespace {

double extent_of(const solids::SolidVariant& v) {
  using namespace solids;
  const auto zmax = [](const auto& planes, auto r_of) {
    double r = 0, z0 = 0, z1 = 0;
    bool first = true;
    for (const auto& p : planes) {
      r = std::max(r, r_of(p));
      z0 = first ? p.z : std::min(z0, p.z);
      z1 = first ? p.z : std::max(z1, p.z);
      first = false;
    }
    return std::max(2 * r, z1 - z0);
  };
  return std::visit(
      [&](const auto& s) -> double {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, Box>) {
          return std::max({s.x, s.y, s.z});
        } else if constexpr (std::is_same_v<T, Tube>) {
          return std::max(2 * s.rmax, s.z);
        } else if constexpr (std::is_same_v<T, Cone>) {
          return std::max({2 * s.rmax1, 2 * s.rmax2, s.z});
        } else if constexpr (std::is_same_v<T, Sphere>) {
          return 2 * s.rmax;
        } else if constexpr (std::is_same_v<T, Orb>) {
          return 2 * s.r;
        } else if constexpr (std::is_same_v<T, Ellipsoid>) {
          return 2 * std::max({s.ax, s.by, s.cz});
        } else if constexpr (std::is_same_v<T, EllipticalTube>) {
          return 2 * std::max({s.dx, s.dy, s.dz});
        } else if constexpr (std::is_same_v<T, Torus>) {
          return 2 * (s.rtor + s.rmax);
        } else if constexpr (std::is_same_v<T, Polycone> || std::is_same_v<T, Polyhedra>) {
          return zmax(s.zplanes, [](const ZPlane& p) { return p.rmax; }) * 1.5;
        } else if constexpr (std::is_same_v<T, GenericPolycone> ||
                             std::is_same_v<T, GenericPolyhedra>) {
          return zmax(s.rzpoints, [](const RZPoint& p) { return p.r; }) * 1.5;
        } else if constexpr (std::is_same_v<T, Trd>) {
          return std::max({s.x1, s.x2, s.y1, s.y2, s.z});
        } else if constexpr (std::is_same_v<T, Trap>) {
          return std::max({s.z, s.y1, s.y2, s.x1, s.x2, s.x3, s.x4}) * 2;
        } else if constexpr (std::is_same_v<T, Para>) {
          return std::max({s.x, s.y, s.z}) * 2;
        } else if constexpr (std::is_same_v<T, Tessellated>) {
          double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
          bool first = true;
          for (const auto& p : s.vertices) {
            for (int k = 0; k < 3; ++k) {
              lo[k] = first ? p[k] : std::min(lo[k], p[k]);
              hi[k] = first ? p[k] : std::max(hi[k], p[k]);
            }
            first = false;
          }
          return std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
        } else if constexpr (std::is_same_v<T, ScaledSolid>) {
          const double f =
              std::max({std::fabs(s.scale[0]), std::fabs(s.scale[1]), std::fabs(s.scale[2])});
          return s.solid ? f * solid_extent(*s.solid) : 0.0;
        } else {  // Boolean
          const double a = s.first ? solid_extent(*s.first) : 0.0;
          if (s.op == Boolean::Op::intersection) return a;
          const double b = s.second ? solid_extent(*s.second) : 0.0;
          const auto& t = s.second_transform.translation;
          return std::max(a, b + 2 * std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]));
        }
      },
      v);
}

}  // namespace

double solid_extent(const solids::Solid& solid) {
  const double e = extent_of(solid.shape);
  return std::isfinite(e) && e > 0 ? e : 0.0;
}

}  // namespace acheron::optics
