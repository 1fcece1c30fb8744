// Test support for the photon physics: statistics (binomial and chi-square
// checks), analytic tracers (infinite planes, spheres, boxes) and a minimal
// scene that fills a ParamsView's geometry fields for propagate().
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "acheron/optics/OpticsTables.hh"
#include "acheron/optics/Propagate.hh"
#include "acheron/optics/Types.hh"

namespace acheron::optics::testing {

// ---------------------------------------------------------------- statistics

// Regularized upper incomplete gamma function Q(a, x) = Gamma(a, x)/Gamma(a):
// power series of P for x < a + 1, else a continued fraction (modified
// Lentz) for Q.
inline double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double log_prefactor = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a;
    double sum = term;
    for (int n = 1; n < 100000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-15) break;
    }
    return std::max(0.0, 1.0 - sum * std::exp(log_prefactor));
  }
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a;
  double c = 1 / kTiny;
  double d = 1 / b;
  double h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-15) break;
  }
  return std::exp(log_prefactor) * h;
}

// Probability that a chi-square variable with `dof` degrees of freedom
// exceeds `chi2`.
inline double chi2_p_value(double chi2, int dof) {
  return gamma_q(0.5 * dof, 0.5 * chi2);
}

struct Chi2Result {
  double chi2 = 0;
  int dof = 0;
  double p = 0;
};

// Pearson chi-square of observed counts against a fully specified
// distribution (bin probabilities, summing to 1 over the bins given) for
// `total` samples; dof = bins - 1. Neighbouring bins are merged until each
// expects at least 5 counts, where the chi-square approximation holds.
inline Chi2Result chi2_test(const std::vector<double>& observed,
                            const std::vector<double>& probabilities, double total) {
  std::vector<double> obs, expd;
  double o = 0, e = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    o += observed[i];
    e += probabilities[i] * total;
    if (e >= 5) {
      obs.push_back(o);
      expd.push_back(e);
      o = e = 0;
    }
  }
  if (e > 0 || o > 0) {
    if (expd.empty()) {
      obs.push_back(o);
      expd.push_back(e);
    } else {
      obs.back() += o;
      expd.back() += e;
    }
  }
  Chi2Result r;
  for (std::size_t i = 0; i < obs.size(); ++i) {
    r.chi2 += (obs[i] - expd[i]) * (obs[i] - expd[i]) / expd[i];
  }
  r.dof = static_cast<int>(obs.size()) - 1;
  r.p = chi2_p_value(r.chi2, r.dof);
  return r;
}

// Bin probabilities of a distribution with CDF `cdf` over equal bins on
// [lo, hi], normalised to the probability of [lo, hi] (for truncated samples).
inline std::vector<double> bin_probabilities(const std::function<double(double)>& cdf, double lo,
                                             double hi, int bins) {
  std::vector<double> p(static_cast<std::size_t>(bins));
  const double norm = cdf(hi) - cdf(lo);
  for (int i = 0; i < bins; ++i) {
    const double a = lo + (hi - lo) * i / bins;
    const double b = lo + (hi - lo) * (i + 1) / bins;
    p[static_cast<std::size_t>(i)] = (cdf(b) - cdf(a)) / norm;
  }
  return p;
}

struct Histogram {
  double lo, hi;
  std::vector<double> counts;
  double entries = 0;
  Histogram(double lo_, double hi_, int bins)
      : lo(lo_), hi(hi_), counts(static_cast<std::size_t>(bins), 0.0) {}
  void fill(double x) {
    if (!(x >= lo && x <= hi)) return;
    auto i = static_cast<std::size_t>((x - lo) / (hi - lo) * static_cast<double>(counts.size()));
    if (i >= counts.size()) i = counts.size() - 1;
    counts[i] += 1;
    entries += 1;
  }
};

// Shape test against a CDF on [lo, hi]: chi-square p > 1e-3, the threshold of
// photon-physics.md §11 (a correct implementation fails once in 1000 runs;
// the seeds are fixed, so a pass is reproducible).
inline void expect_shape(const Histogram& h, const std::function<double(double)>& cdf,
                         const std::string& what) {
  const auto p = bin_probabilities(cdf, h.lo, h.hi, static_cast<int>(h.counts.size()));
  const Chi2Result r = chi2_test(h.counts, p, h.entries);
  EXPECT_GT(r.p, 1e-3) << what << ": chi2 = " << r.chi2 << " for " << r.dof << " dof";
}

// Fraction test: k successes in n trials against probability p within 5
// binomial standard deviations (photon-physics.md §11; a false alarm has
// probability 6e-7 per check). p = 0 or 1 must hold exactly.
inline void expect_binomial(double k, double n, double p, const std::string& what) {
  const double sigma = std::sqrt(n * p * (1 - p));
  EXPECT_LE(std::abs(k - n * p), 5 * sigma + 1e-9)
      << what << ": " << k << " of " << n << " (fraction " << k / n << "), expected " << p;
}

// Mean of samples against an expected mean within 5 standard errors, given
// the population standard deviation.
inline void expect_mean(double sum, double n, double mean, double sd, const std::string& what) {
  EXPECT_LE(std::abs(sum / n - mean), 5 * sd / std::sqrt(n))
      << what << ": mean " << sum / n << ", expected " << mean;
}

// ----------------------------------------------------------------- geometry

// Analytic shapes standing in for triangle meshes. Each flat face is one
// "triangle" id with a fixed normal; a sphere is one id whose normal slot is
// rewritten with the exact normal at every hit (so the triangle records must be
// writable and the tracer used by one thread). Excluding a sphere's id skips
// roots within 1e-6 R of the origin, which stands in for the mesh rule of
// not re-hitting the triangle just left. Computed in double.
struct AnalyticTracer {
  struct Plane {
    Vec3 point;
    Vec3 normal;  // unit, inner -> outer
    std::int32_t triangle;
  };
  struct Sphere {
    Vec3 centre;
    double radius;
    std::int32_t triangle;
  };
  struct Box {
    Vec3 lo, hi;
    std::int32_t first_triangle;  // faces -x, +x, -y, +y, -z, +z
  };

  std::vector<Plane> planes;
  std::vector<Sphere> spheres;
  std::vector<Box> boxes;
  TriangleData* triangles = nullptr;

  bool intersect(Vec3 o, Vec3 d, std::int32_t exclude, RayHit& hit) const {
    double best = std::numeric_limits<double>::infinity();
    std::int32_t best_triangle = -1;
    const double ox = o.x, oy = o.y, oz = o.z, dx = d.x, dy = d.y, dz = d.z;
    for (const Plane& p : planes) {
      if (p.triangle == exclude) continue;
      const double denominator = dx * p.normal.x + dy * p.normal.y + dz * p.normal.z;
      if (denominator == 0) continue;
      const double t = ((p.point.x - ox) * p.normal.x + (p.point.y - oy) * p.normal.y +
                        (p.point.z - oz) * p.normal.z) /
                       denominator;
      if (t > 0 && t < best) {
        best = t;
        best_triangle = p.triangle;
      }
    }
    Vec3 sphere_normal;
    for (const Sphere& s : spheres) {
      const double cx = ox - s.centre.x, cy = oy - s.centre.y, cz = oz - s.centre.z;
      const double b = cx * dx + cy * dy + cz * dz;
      const double c = cx * cx + cy * cy + cz * cz - s.radius * s.radius;
      const double disc = b * b - c;
      if (disc < 0) continue;
      const double root = std::sqrt(disc);
      const double minimum = s.triangle == exclude ? 1e-6 * s.radius : 0.0;
      for (const double t : {-b - root, -b + root}) {
        if (t > minimum && t < best) {
          best = t;
          best_triangle = s.triangle;
          const double hx = cx + t * dx, hy = cy + t * dy, hz = cz + t * dz;
          const double r = std::sqrt(hx * hx + hy * hy + hz * hz);
          sphere_normal = Vec3{static_cast<float>(hx / r), static_cast<float>(hy / r),
                               static_cast<float>(hz / r)};
          break;
        }
      }
    }
    for (const Box& box : boxes) {
      const double lo[3] = {box.lo.x, box.lo.y, box.lo.z};
      const double hi[3] = {box.hi.x, box.hi.y, box.hi.z};
      const double org[3] = {ox, oy, oz};
      const double dir[3] = {dx, dy, dz};
      for (int axis = 0; axis < 3; ++axis) {
        for (int side = 0; side < 2; ++side) {
          const std::int32_t id = box.first_triangle + 2 * axis + side;
          if (id == exclude || dir[axis] == 0) continue;
          const double plane = side == 0 ? lo[axis] : hi[axis];
          const double t = (plane - org[axis]) / dir[axis];
          if (!(t > 0 && t < best)) continue;
          bool inside = true;
          for (int other = 0; other < 3; ++other) {
            if (other == axis) continue;
            const double x = org[other] + t * dir[other];
            if (x < lo[other] || x > hi[other]) inside = false;
          }
          if (inside) {
            best = t;
            best_triangle = id;
          }
        }
      }
    }
    if (best_triangle < 0) return false;
    for (const Sphere& s : spheres) {
      if (s.triangle == best_triangle) triangles[best_triangle].normal = sphere_normal;
    }
    hit.distance = static_cast<float>(best);
    hit.triangle = best_triangle;
    return true;
  }
};

// Triangles, normals and the tracer of a test scene.
struct Scene {
  std::vector<TriangleData> triangles;
  AnalyticTracer tracer;

  std::int32_t add_face(Vec3 normal, std::uint32_t inner, std::uint32_t outer,
                        std::int32_t surface) {
    triangles.push_back(TriangleData{normal, inner, outer, surface, 0, surface});
    return static_cast<std::int32_t>(triangles.size() - 1);
  }
  // Infinite plane; `inner` lies on the side opposite the normal.
  std::int32_t add_plane(Vec3 point, Vec3 normal, std::uint32_t inner, std::uint32_t outer,
                         std::int32_t surface = -1) {
    const std::int32_t id = add_face(normal, inner, outer, surface);
    tracer.planes.push_back({point, normal, id});
    return id;
  }
  std::int32_t add_sphere(Vec3 centre, double radius, std::uint32_t inner, std::uint32_t outer,
                          std::int32_t surface = -1) {
    const std::int32_t id = add_face(Vec3{0, 0, 1}, inner, outer, surface);
    tracer.spheres.push_back({centre, radius, id});
    return id;
  }
  // Axis-aligned box; returns the id of its -x face (then +x, -y, +y, -z, +z).
  std::int32_t add_box(Vec3 lo, Vec3 hi, std::uint32_t inner, std::uint32_t outer,
                       std::int32_t surface = -1) {
    const Vec3 face_normals[6] = {{-1, 0, 0}, {1, 0, 0},  {0, -1, 0},
                                  {0, 1, 0},  {0, 0, -1}, {0, 0, 1}};
    const std::int32_t first = add_face(face_normals[0], inner, outer, surface);
    for (int i = 1; i < 6; ++i) add_face(face_normals[i], inner, outer, surface);
    tracer.boxes.push_back({lo, hi, first});
    return first;
  }

  // The tables' view with this scene's geometry; call after the last add_*.
  ParamsView view(const OpticsTables& tables, std::uint64_t seed) {
    ParamsView v = tables.params_view();
    v.triangles = triangles.data();
    v.n_triangles = static_cast<std::uint32_t>(triangles.size());
    v.seed = seed;
    tracer.triangles = triangles.data();
    return v;
  }
};

inline Photon make_photon(Vec3 position, Vec3 direction, Vec3 polarization, float wavelength,
                          std::uint32_t index, std::uint32_t event = 0) {
  Photon p;
  p.position = position;
  p.direction = direction;
  p.polarization = polarization;
  p.wavelength = wavelength;
  p.index = index;
  p.event = event;
  return p;
}

// A material with constant properties.
inline MaterialInput constant_material(const std::string& name, double n, double absorption,
                                       double scattering) {
  MaterialInput m;
  m.name = name;
  m.refractive_index = Property::constant(n);
  m.absorption_length = Property::constant(absorption);
  m.scattering_length = Property::constant(scattering);
  return m;
}

// (x, cdf) pairs of `cdf` sampled at every grid point x0 + dx i, i < n, with
// the ends forced to exactly 0 and 1 after normalising to cdf(x_last).
inline Property cdf_on_grid(const std::function<double(double)>& cdf, double x0, double dx, int n) {
  std::vector<std::pair<double, double>> points;
  const double first = cdf(x0);
  const double last = cdf(x0 + dx * (n - 1));
  for (int i = 0; i < n; ++i) {
    const double x = x0 + dx * i;
    points.emplace_back(x, (cdf(x) - first) / (last - first));
  }
  return Property::table(points);
}

}  // namespace acheron::optics::testing
