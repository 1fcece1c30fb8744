#include "acheron/optics/PmtModel.hh"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "acheron/core/Error.hh"

namespace acheron::optics {
namespace {

struct RZ {
  double r, z;
};
RZ operator-(RZ a, RZ b) {
  return {a.r - b.r, a.z - b.z};
}
RZ operator+(RZ a, RZ b) {
  return {a.r + b.r, a.z + b.z};
}
RZ operator*(double s, RZ a) {
  return {s * a.r, s * a.z};
}
double rz_cross(RZ a, RZ b) {
  return a.r * b.z - a.z * b.r;
}
double rz_dot(RZ a, RZ b) {
  return a.r * b.r + a.z * b.z;
}
double rz_length(RZ a) {
  return std::sqrt(rz_dot(a, a));
}

// Outward normal of the profile segment a -> b (the profile runs from the
// apex down, the inside on its left when r points right and z up).
RZ profile_normal(RZ a, RZ b) {
  const RZ t = (1.0 / rz_length(b - a)) * (b - a);
  return {-t.z, t.r};
}

// True if segments [a, b] and [c, d] intersect (touching included).
bool profile_segments_cross(RZ a, RZ b, RZ c, RZ d) {
  const double d1 = rz_cross(b - a, c - a), d2 = rz_cross(b - a, d - a);
  const double d3 = rz_cross(d - c, a - c), d4 = rz_cross(d - c, b - c);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) {
    return true;
  }
  auto on = [](RZ p, RZ q, RZ x, double c) {
    return c == 0 && std::min(p.r, q.r) <= x.r && x.r <= std::max(p.r, q.r) &&
           std::min(p.z, q.z) <= x.z && x.z <= std::max(p.z, q.z);
  };
  return on(a, b, c, d1) || on(a, b, d, d2) || on(c, d, a, d3) || on(c, d, b, d4);
}

// The first pair of non-adjacent segments of `poly` that cross, or -1.
long profile_self_crossing(const std::vector<RZ>& poly) {
  for (std::size_t i = 0; i + 1 < poly.size(); ++i) {
    for (std::size_t j = i + 2; j + 1 < poly.size(); ++j) {
      if (profile_segments_cross(poly[i], poly[i + 1], poly[j], poly[j + 1])) return long(i);
    }
  }
  return -1;
}

std::string profile_fix() {
  return "list the outer glass surface as [r, z] points from the apex on the axis (r = 0, top) "
         "down to the bottom on the axis (r = 0)";
}

}  // namespace

PmtProfiles pmt_profiles(const PmtModelShape& shape, const std::string& name) {
  const std::string who = "PMT model '" + name + "': ";
  const auto& pr = shape.profile;
  ACHERON_EXPECT(pr.size() >= 3, who + "its profile has " + std::to_string(pr.size()) +
                                     " points (a closed outline needs at least 3) " +
                                     profile_fix());
  ACHERON_EXPECT(shape.segments >= 3 && shape.segments <= 4096,
                 who + "segments is " + std::to_string(shape.segments) +
                     " (3 to 4096 azimuthal divisions) choose e.g. 32");
  ACHERON_EXPECT(std::isfinite(shape.glass_thickness) && shape.glass_thickness > 0,
                 who +
                     "glass_thickness must be > 0 mm (the glass separates the medium from the "
                     "vacuum) give the wall thickness");
  std::vector<RZ> outer;
  for (const auto& p : pr) {
    ACHERON_EXPECT(
        std::isfinite(p.r) && std::isfinite(p.z) && p.r >= 0,
        who + "a profile point has r < 0 or is not finite (r is a radius) " + profile_fix());
    outer.push_back({p.r, p.z});
  }
  ACHERON_EXPECT(pr.front().r == 0 && pr.back().r == 0,
                 who + "the profile must start and end on the axis (r = 0) to close the bulb " +
                     profile_fix());
  for (std::size_t i = 1; i + 1 < pr.size(); ++i) {
    ACHERON_EXPECT(pr[i].r > 0, who + "profile point " + std::to_string(i) +
                                    " lies on the axis (only the first and last may) " +
                                    profile_fix());
  }
  for (std::size_t i = 0; i + 1 < outer.size(); ++i) {
    ACHERON_EXPECT(rz_length(outer[i + 1] - outer[i]) > 1e-3,
                   who + "profile points " + std::to_string(i) + " and " + std::to_string(i + 1) +
                       " coincide (a zero-length segment) remove one");
  }
  // Clockwise in (r, z) with the axis closing it: listed from the top down.
  double area = 0;
  for (std::size_t i = 0; i + 1 < outer.size(); ++i) area += rz_cross(outer[i], outer[i + 1]);
  ACHERON_EXPECT(area < 0, who +
                               "the profile runs from the bottom up (its normals would point "
                               "inward) list it from the apex down");
  if (long k = profile_self_crossing(outer); k >= 0) {
    throw SetupError(who + "the profile crosses itself at segment " + std::to_string(k) + " " +
                     "(not a simple outline) " + profile_fix());
  }

  // The inner surface: every point moved inward along the profile's normal
  // by the thickness (the mitre of the two segments' normals, so that both
  // neighbouring segments stay `thickness` from their outer counterparts).
  // A pole is the corner between its segment and that segment's mirror
  // image across the axis: it moves along the axis by t / cos(tilt).
  const double t = shape.glass_thickness;
  auto pole = [&](RZ p, RZ q, double sign) {
    const RZ n = profile_normal(sign > 0 ? p : q, sign > 0 ? q : p);
    ACHERON_EXPECT(std::fabs(n.z) > 0.3,
                   who +
                       "the profile meets the axis at more than 72 degrees from the "
                       "perpendicular (the pole would be a spike) round the pole");
    return RZ{0, p.z - sign * t / std::fabs(n.z)};
  };
  std::vector<RZ> inner;
  inner.push_back(pole(outer[0], outer[1], 1));
  for (std::size_t i = 1; i + 1 < outer.size(); ++i) {
    const RZ n1 = profile_normal(outer[i - 1], outer[i]);
    const RZ n2 = profile_normal(outer[i], outer[i + 1]);
    const RZ m = (1.0 / rz_length(n1 + n2)) * (n1 + n2);
    const double c = rz_dot(m, n1);
    ACHERON_EXPECT(rz_length(n1 + n2) > 1e-9 && c > 0.3,
                   who + "the profile turns by more than 145 degrees at point " +
                       std::to_string(i) +
                       " (the inner surface cannot follow it) round the corner");
    const RZ q = outer[i] - (t / c) * m;
    ACHERON_EXPECT(q.r > 1e-3, who + "glass_thickness " + std::to_string(t) +
                                   " mm reaches the axis at profile point " + std::to_string(i) +
                                   " (the bulb or neck is too narrow for it) make the glass "
                                   "thinner");
    inner.push_back(q);
  }
  inner.push_back(pole(outer.back(), outer[outer.size() - 2], -1));
  ACHERON_EXPECT(inner.front().z > inner.back().z,
                 who + "glass_thickness " + std::to_string(t) +
                     " mm leaves no vacuum inside (the inner apex is below the inner bottom) "
                     "make the glass thinner");
  auto crossing_error = [&](const std::string& what) {
    throw SetupError(who + "with glass_thickness " + std::to_string(t) + " mm " + what +
                     " (the glass is too thick for the profile's curvature) make the glass "
                     "thinner or the profile smoother");
  };
  if (profile_self_crossing(inner) >= 0) crossing_error("the inner surface crosses itself");
  // Every inner segment runs the way its outer one does, and no inner point
  // comes nearer the outer surface than the thickness (to 0.1 %).
  for (std::size_t i = 1; i + 2 < inner.size(); ++i) {
    if (rz_dot(inner[i + 1] - inner[i], outer[i + 1] - outer[i]) <= 0) {
      crossing_error("an inner segment runs backwards");
    }
  }
  for (const RZ& q : inner) {
    for (std::size_t j = 0; j + 1 < outer.size(); ++j) {
      const RZ e = outer[j + 1] - outer[j];
      const double u = std::clamp(rz_dot(q - outer[j], e) / rz_dot(e, e), 0.0, 1.0);
      if (rz_length(q - (outer[j] + u * e)) < 0.999 * t) {
        crossing_error("the inner surface comes nearer the outer one than the thickness");
      }
    }
  }
  for (std::size_t i = 0; i + 1 < inner.size(); ++i) {
    for (std::size_t j = 0; j + 1 < outer.size(); ++j) {
      if (profile_segments_cross(inner[i], inner[i + 1], outer[j], outer[j + 1])) {
        crossing_error("the inner surface crosses the outer one");
      }
    }
  }

  // The photocathode: from the apex down to the first crossing of z = cut,
  // where a point is inserted (or the nearest point used if within 1 um).
  const double cut = shape.photocathode_cut;
  ACHERON_EXPECT(std::isfinite(cut) && inner.front().z > cut,
                 who + "photocathode_cut z = " + std::to_string(cut) +
                     " mm is at or above the inner apex (z = " + std::to_string(inner.front().z) +
                     " mm): there would be no photocathode; give a lower cut");
  std::size_t cathode = inner.size() - 1;  // every segment, unless the cut is crossed
  for (std::size_t i = 0; i + 1 < inner.size(); ++i) {
    if (inner[i + 1].z >= cut) continue;
    const double f = (inner[i].z - cut) / (inner[i].z - inner[i + 1].z);
    const RZ x = inner[i] + f * (inner[i + 1] - inner[i]);
    if (rz_length(x - inner[i]) < 1e-3) {
      cathode = i;
    } else if (rz_length(x - inner[i + 1]) < 1e-3) {
      cathode = i + 1;
    } else {
      inner.insert(inner.begin() + long(i) + 1, x);
      cathode = i + 1;
    }
    break;
  }
  PmtProfiles out;
  for (const RZ& p : outer) out.outer.push_back({float(p.r), float(p.z)});
  for (const RZ& p : inner) out.inner.push_back({float(p.r), float(p.z)});
  out.photocathode_segments = cathode;
  return out;
}

Mesh make_pmt_model(const PmtModelShape& shape, const std::string& name) {
  const PmtProfiles p = pmt_profiles(shape, name);
  Mesh m = make_revolution(p.outer, shape.segments,
                           std::vector<std::uint8_t>(p.outer.size(), pmt_part::envelope));
  std::vector<std::uint8_t> parts(p.inner.size() - 1, pmt_part::back);
  std::fill(parts.begin(), parts.begin() + long(p.photocathode_segments), pmt_part::photocathode);
  const Mesh in = make_revolution(p.inner, shape.segments, parts);
  const auto base = static_cast<std::uint32_t>(m.vertices.size());
  m.vertices.insert(m.vertices.end(), in.vertices.begin(), in.vertices.end());
  for (std::size_t i = 0; i < in.triangles.size(); ++i) {
    const auto& t = in.triangles[i];
    m.triangles.push_back({base + t[0], base + t[1], base + t[2]});
    m.part.push_back(in.part[i]);
  }
  return m;
}

SolidMaterials pmt_model_materials(std::uint32_t glass, std::uint32_t vacuum, std::uint32_t medium,
                                   std::int32_t photocathode, std::int32_t back,
                                   std::int32_t outer_surface) {
  SolidMaterials sm;
  sm.inner_material = glass;
  sm.outer_material = medium;
  sm.inner_by_part = {glass, vacuum, vacuum};
  sm.outer_by_part = {medium, glass, glass};
  sm.surface_by_part = {outer_surface, photocathode, back};
  return sm;
}

std::vector<ProfilePoint> r7081_profile(double max_arc_step_deg) {
  ACHERON_EXPECT(max_arc_step_deg > 0.1 && max_arc_step_deg <= 45,
                 "R7081 profile arc step must be 0.1 to 45 degrees (finer is needlessly heavy, "
                 "coarser is not a bulb) choose e.g. 6");
  // Edges (rho, z) of the bulb's segments and the z of each arc's centre
  // line (RAT-PAC's toroidal description of the R7081): each arc is a circle
  // through its two edges centred at (rho0, z_origin); equal radii at both
  // edges make the neck a straight tube.
  const double z_edge[] = {96.7, 40.0, 0.0, -40.0, -90.0, -142.0};
  const double rho_edge[] = {0.0, 111.0, 126.5, 111.0, 42.25, 42.25};
  const double z_origin[] = {-40.0, 0.0, 0.0, 40.0, -142.0};
  const double step = max_arc_step_deg * std::numbers::pi / 180;
  std::vector<ProfilePoint> out{{0.f, float(z_edge[0])}};
  for (int s = 0; s < 5; ++s) {
    const double r0 = rho_edge[s], r1 = rho_edge[s + 1], z0 = z_edge[s], z1 = z_edge[s + 1];
    if (r0 != r1) {
      const double zo = z_origin[s];
      const double rho_c =
          (r0 * r0 - r1 * r1 + (z0 - zo) * (z0 - zo) - (z1 - zo) * (z1 - zo)) / (2 * (r0 - r1));
      const double radius = std::hypot(r0 - rho_c, z0 - zo);
      const double a0 = std::atan2(z0 - zo, r0 - rho_c), a1 = std::atan2(z1 - zo, r1 - rho_c);
      const int n = std::max(1, int(std::ceil(std::fabs(a1 - a0) / step)));
      for (int k = 1; k < n; ++k) {
        const double a = a0 + (a1 - a0) * k / n;
        out.push_back({float(rho_c + radius * std::cos(a)), float(zo + radius * std::sin(a))});
      }
    }
    out.push_back({float(r1), float(z1)});
  }
  out.push_back({0.f, float(z_edge[5])});
  return out;
}

}  // namespace acheron::optics
