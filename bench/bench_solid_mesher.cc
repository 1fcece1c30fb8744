// Times the solid mesher on one solid of each kind at a given tolerance and
// prints a table: triangles, milliseconds per call (best of N) and the mesh
// volume against the analytic one. Also times gmsh::initialize + finalize,
// the cost that initialising once per process saves on every call.
//
// Usage: bench_solid_mesher [--tolerance 0.1] [--repeat 3]
#include <gmsh.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "acheron/optics/SolidMesher.hh"

namespace so = acheron::optics::solids;
using acheron::optics::MeshingOptions;

namespace {

constexpr double kPi = std::numbers::pi;

so::SolidPtr make(std::string name, so::SolidVariant shape) {
  return std::make_shared<so::Solid>(so::Solid{std::move(name), "bench", std::move(shape)});
}

struct Case {
  std::string name;
  so::SolidPtr solid;
  double volume;  // analytic, mm^3
};

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"box", make("box", so::Box{100, 200, 300}), 100.0 * 200 * 300});
  c.push_back({"tube", make("tube", so::Tube{0, 50, 100}), kPi * 2500 * 100});
  c.push_back({"tube rmin+phi", make("tube2", so::Tube{30, 50, 100, 0.3, kPi}),
               kPi / 2 * (2500 - 900) * 100});
  c.push_back(
      {"cone", make("cone", so::Cone{0, 50, 0, 20, 100}), kPi * 100 / 3 * (2500 + 50 * 20 + 400)});
  c.push_back({"sphere", make("sphere", so::Sphere{0, 127}), 4.0 / 3 * kPi * std::pow(127, 3)});
  c.push_back({"sphere shell+cuts", make("sphere2", so::Sphere{100, 127, 0, 2 * kPi, 0, kPi / 2}),
               2.0 / 3 * kPi * (std::pow(127, 3) - std::pow(100, 3))});
  c.push_back({"orb", make("orb", so::Orb{127}), 4.0 / 3 * kPi * std::pow(127, 3)});
  c.push_back(
      {"ellipsoid", make("ell", so::Ellipsoid{127, 127, 95}), 4.0 / 3 * kPi * 127 * 127 * 95});
  c.push_back({"eltube", make("elt", so::EllipticalTube{60, 40, 50}), kPi * 60 * 40 * 100});
  c.push_back({"torus", make("torus", so::Torus{0, 20, 100}), 2 * kPi * kPi * 100 * 20 * 20});
  c.push_back({"polycone",
               make("pcon", so::Polycone{0, 2 * kPi, {{0, 50, -50}, {0, 50, 0}, {0, 30, 50}}}),
               kPi * 2500 * 50 + kPi * 50 / 3 * (2500 + 1500 + 900)});
  c.push_back(
      {"genericPolycone",
       make("gpcon", so::GenericPolycone{0, 2 * kPi, {{10, -50}, {50, -50}, {50, 50}, {10, 50}}}),
       kPi * (2500 - 100) * 100});
  const double a = kPi / 6;  // hexagon half side angle
  c.push_back({"polyhedra", make("phed", so::Polyhedra{0, 2 * kPi, 6, {{0, 50, -50}, {0, 50, 50}}}),
               6 * 50 * 50 * std::tan(a) * 100});
  c.push_back(
      {"genericPolyhedra",
       make("gphed", so::GenericPolyhedra{0, 2 * kPi, 8, {{0, -50}, {50, -50}, {50, 50}, {0, 50}}}),
       8 * 0.5 * 2500 * std::sin(2 * kPi / 8) * 100});
  c.push_back({"trd", make("trd", so::Trd{100, 50, 80, 40, 100}),
               100.0 / 6 * (100 * 80 + 4 * 75 * 60 + 50 * 40)});
  c.push_back({"trap", make("trap", so::Trap{100, 0.2, 0.5, 80, 60, 60, 0.1, 80, 60, 60, 0.1}),
               60.0 * 80 * 100});
  c.push_back({"para", make("para", so::Para{60, 80, 100, 0.2, 0.3, 0.4}), 60.0 * 80 * 100});
  {
    so::Tessellated t;
    t.vertices = {{0, 0, 0}, {100, 0, 0}, {0, 100, 0}, {0, 0, 100}};
    t.facets = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
    c.push_back({"tessellated", make("tet", t), 1e6 / 6});
  }
  c.push_back({"scaled sphere",
               make("scaled", so::ScaledSolid{make("s", so::Orb{50}), {1, 2, 0.5}}),
               4.0 / 3 * kPi * 50 * 100 * 25});
  {
    // A 10-inch PMT-like bulb: ellipsoid union a neck tube below it.
    so::Boolean b;
    b.op = so::Boolean::Op::union_;
    b.first = make("bulb", so::Ellipsoid{127, 127, 95});
    b.second = make("neck", so::Tube{0, 42, 100});
    b.second_transform.translation = {0, 0, -100};
    c.push_back({"PMT bulb (ellipsoid u tube)", make("pmt", b), std::nan("")});
  }
  {
    so::Boolean b;
    b.op = so::Boolean::Op::subtraction;
    b.first = make("block", so::Box{100, 100, 100});
    b.second = make("hole", so::Tube{0, 20, 200});
    c.push_back({"box - cylinder", make("boxhole", b), 1e6 - kPi * 400 * 100});
  }
  return c;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  MeshingOptions options;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tolerance")) options.tolerance = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
  }
  {
    const double t0 = now_ms();
    constexpr int n = 5;
    for (int i = 0; i < n; ++i) {
      gmsh::initialize(0, nullptr, false);
      gmsh::option::setNumber("General.Terminal", 0);
      gmsh::finalize();
    }
    std::printf(
        "gmsh initialize + finalize: %.2f ms per pair (saved per call by initialising "
        "once)\n\n",
        (now_ms() - t0) / n);
  }
  std::printf("tolerance %.3g mm\n%-30s %10s %10s %12s\n", options.tolerance, "solid", "triangles",
              "ms", "volume err");
  for (const auto& c : cases()) {
    double best = 1e300;
    acheron::optics::Mesh mesh;
    for (int r = 0; r < repeat; ++r) {
      const double t0 = now_ms();
      mesh = acheron::optics::tessellate(*c.solid, options);
      best = std::min(best, now_ms() - t0);
    }
    const double v = acheron::optics::mesh_volume(mesh);
    if (std::isnan(c.volume)) {
      std::printf("%-30s %10zu %10.2f %12s\n", c.name.c_str(), mesh.size(), best, "-");
    } else {
      std::printf("%-30s %10zu %10.2f %11.4f%%\n", c.name.c_str(), mesh.size(), best,
                  100 * (v - c.volume) / c.volume);
    }
  }
  return 0;
}
