// The GDML reader: expressions and units, defines and matrices, optical
// tables (energy -> wavelength), the surface mapping and its refusals,
// multi-file geometries, assemblies, rotations, channels and their JSON,
// errors with file:line, photons through a GDML detector, and the load
// time of a large Geant4-written file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <set>
#include <sstream>

#include "acheron/core/Error.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/Sources.hh"

namespace acheron::optics {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kData = "test/data/gdml";
constexpr double kHc = 1239.84198;  // eV nm

Detector load(const std::string& name, const GdmlOptions& options = {}) {
  return Detector::load_gdml(kData / name, options);
}

const SolidInfo& solid_named(const Detector& d, const std::string& name) {
  for (const auto& s : d.geometry().solids()) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no solid " + name);
}

std::pair<Vec3, Vec3> solid_bounds(const Detector& d, const std::string& name) {
  const auto& g = d.geometry();
  const SolidInfo& s = solid_named(d, name);
  Vec3 lo{1e30f, 1e30f, 1e30f}, hi{-1e30f, -1e30f, -1e30f};
  for (std::uint32_t t = s.first_triangle; t < s.first_triangle + s.triangle_count; ++t) {
    for (const Vec3 p : g.triangle_corners(t)) {
      lo = {std::min(lo.x, p.x), std::min(lo.y, p.y), std::min(lo.z, p.z)};
      hi = {std::max(hi.x, p.x), std::max(hi.y, p.y), std::max(hi.z, p.z)};
    }
  }
  return {lo, hi};
}

void expect_bounds(const Detector& d, const std::string& name, Vec3 center, Vec3 half) {
  const auto [lo, hi] = solid_bounds(d, name);
  SCOPED_TRACE(name);
  EXPECT_NEAR(lo.x, center.x - half.x, 1e-3);
  EXPECT_NEAR(lo.y, center.y - half.y, 1e-3);
  EXPECT_NEAR(lo.z, center.z - half.z, 1e-3);
  EXPECT_NEAR(hi.x, center.x + half.x, 1e-3);
  EXPECT_NEAR(hi.y, center.y + half.y, 1e-3);
  EXPECT_NEAR(hi.z, center.z + half.z, 1e-3);
}

// Every triangle of a convex solid faces away from its centre.
void expect_outward(const Detector& d, const std::string& name) {
  const auto& g = d.geometry();
  const auto [lo, hi] = solid_bounds(d, name);
  const Vec3 c = (lo + hi) / 2.f;
  const SolidInfo& s = solid_named(d, name);
  for (std::uint32_t t = s.first_triangle; t < s.first_triangle + s.triangle_count; ++t) {
    const auto corners = g.triangle_corners(t);
    const Vec3 m = (corners[0] + corners[1] + corners[2]) / 3.f;
    EXPECT_GT(dot(g.triangle_record(t).normal, m - c), 0) << name << " triangle " << t;
  }
}

// A grid table's value at a grid wavelength.
float at_nm(const float* table, double nm) {
  const double i = (nm - kWavelengthMin) / kWavelengthStep;
  EXPECT_EQ(i, std::round(i)) << nm << " nm is not a grid point";
  return table[static_cast<int>(std::round(i))];
}

// Linear interpolation in x through (x, y) points sorted by x, clamped.
double interpolate(const std::vector<std::pair<double, double>>& pts, double x) {
  if (x <= pts.front().first) return pts.front().second;
  if (x >= pts.back().first) return pts.back().second;
  for (std::size_t i = 1; i < pts.size(); ++i) {
    if (x <= pts[i].first) {
      const auto [x0, y0] = pts[i - 1];
      const auto [x1, y1] = pts[i];
      return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    }
  }
  return pts.back().second;
}

// The surface of a solid's first triangle for photons leaving the solid, or
// (`inward`) entering it.
const SurfaceData* surface_of(const Detector& d, const std::string& solid, bool inward = false) {
  const SolidInfo& s = solid_named(d, solid);
  const TriangleData t = d.geometry().triangle_record(s.first_triangle);
  const std::int32_t idx = inward ? t.surface_in : t.surface;
  if (idx < 0) return nullptr;
  return &d.tables().surfaces()[static_cast<std::size_t>(idx)];
}

const MaterialData& material(const Detector& d, const std::string& name) {
  return d.tables().materials()[*d.tables().find_material(name)];
}

// ----------------------------------------------------------------- rotations

TEST(Gdml, PlacementRotationIsTheInverseOfRzRyRx) {
  // Known case: a quarter turn about z places the daughter's +x along the
  // mother's -y (Geant4 places with the inverse of the GDML rotation).
  const auto q = gdml_placement_rotation(0, 0, std::numbers::pi / 2);
  EXPECT_NEAR(q[0], 0, 1e-15);
  EXPECT_NEAR(q[3], -1, 1e-15);  // column 0 = image of +x
  EXPECT_NEAR(q[1], 1, 1e-15);   // +y goes to +x
  EXPECT_NEAR(q[8], 1, 1e-15);
  // General case against R = Rz Ry Rx multiplied out here, transposed.
  const double x = 0.3, y = -1.1, z = 2.0;
  auto mul = [](const std::array<double, 9>& a, const std::array<double, 9>& b) {
    std::array<double, 9> c{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) c[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
    return c;
  };
  const std::array<double, 9> rx = {1, 0,           0,          0, std::cos(x), -std::sin(x),
                                    0, std::sin(x), std::cos(x)};
  const std::array<double, 9> ry = {std::cos(y),  0, std::sin(y), 0, 1, 0,
                                    -std::sin(y), 0, std::cos(y)};
  const std::array<double, 9> rz = {
      std::cos(z), -std::sin(z), 0, std::sin(z), std::cos(z), 0, 0, 0, 1};
  const auto r = mul(rz, mul(ry, rx));
  const auto m = gdml_placement_rotation(x, y, z);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(m[i * 3 + j], r[j * 3 + i], 1e-14);
}

// ------------------------------------------------------ expressions, placements

TEST(Gdml, ExpressionsUnitsAndPlacementsGiveTheBricksVertices) {
  const Detector d = load("expressions.gdml");
  ASSERT_EQ(d.geometry().solids().size(), 4u);  // the world's own box is not traced
  // Brick: x = side/cm cm = 20 mm, y = twice/cm cm = 40 mm, z = 3*n*half cm = 60 mm.
  // rotated: z by 90 deg placed inverted, local (x, y, z) -> (y, -x, z), at
  // shift = (10, 0, -1) cm.
  expect_bounds(d, "World0x4/rotated", {100, 0, -10}, {20, 10, 30});
  // inline: x by pi/2 -> local (x, y, z) -> (x, z, -y), at (-100, sin(pi/2)*50, 0).
  expect_bounds(d, "World0x4/inline", {-100, 50, 0}, {10, 30, 20});
  // scaled: y doubled (baked into the vertices).
  expect_bounds(d, "World0x4/scaled", {0, 0, 300}, {10, 40, 30});
  // mirrored in x: same box, winding turned so the normals still face out.
  expect_bounds(d, "World0x4/mirrored", {0, 0, -300}, {10, 20, 30});
  for (const char* n :
       {"World0x4/rotated", "World0x4/inline", "World0x4/scaled", "World0x4/mirrored"}) {
    expect_outward(d, n);
  }
  // A rotated box's corner, exactly: local (10, 20, 30) -> (20, -10, 30) + t.
  const auto& g = d.geometry();
  const SolidInfo& s = solid_named(d, "World0x4/rotated");
  bool found = false;
  for (std::uint32_t t = s.first_triangle; t < s.first_triangle + s.triangle_count; ++t) {
    for (const Vec3 p : g.triangle_corners(t)) {
      found = found || (std::abs(p.x - 120) < 1e-4 && std::abs(p.y + 10) < 1e-4 &&
                        std::abs(p.z - 20) < 1e-4);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_THAT(d.check(), ::testing::IsEmpty());
}

// ---------------------------------------------------------------- solids

TEST(Gdml, EverySolidIsReadInMillimetresAndRadians) {
  std::map<std::string, solids::Solid> seen;
  GdmlOptions o;
  o.mesher = [&](const solids::Solid& s, double tolerance) {
    EXPECT_EQ(tolerance, o.tolerance_mm);
    seen[s.name] = s;
    return make_box({1, 1, 1});
  };
  const Detector d = load("solids.gdml", o);
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_EQ(d.geometry().solids()[0].name,
            "World/v_box_PV");  // Geant4's name for an unnamed physvol
  const double deg = std::numbers::pi / 180, pi = std::numbers::pi;
  auto get = [&](const char* name) -> const solids::SolidVariant& { return seen.at(name).shape; };
  const auto& box = std::get<solids::Box>(get("box"));
  EXPECT_DOUBLE_EQ(box.x, 10);
  EXPECT_DOUBLE_EQ(box.y, 20);
  EXPECT_DOUBLE_EQ(box.z, 30);
  EXPECT_THAT(seen.at("box").where, HasSubstr("solids.gdml:19"));
  const auto& tube = std::get<solids::Tube>(get("tube"));
  EXPECT_DOUBLE_EQ(tube.rmin, 5);
  EXPECT_DOUBLE_EQ(tube.rmax, 10);
  EXPECT_DOUBLE_EQ(tube.z, 30);
  EXPECT_NEAR(tube.startphi, 10 * deg, 1e-15);
  EXPECT_NEAR(tube.deltaphi, 350 * deg, 1e-15);
  const auto& cone = std::get<solids::Cone>(get("cone"));
  EXPECT_DOUBLE_EQ(cone.rmin1, 1);
  EXPECT_DOUBLE_EQ(cone.rmax2, 4);
  EXPECT_DOUBLE_EQ(cone.z, 5);
  EXPECT_NEAR(cone.deltaphi, 2 * pi, 1e-15);
  const auto& sphere = std::get<solids::Sphere>(get("sphere"));
  EXPECT_DOUBLE_EQ(sphere.rmax, 1000);
  EXPECT_NEAR(sphere.deltatheta, pi / 2, 1e-15);
  EXPECT_DOUBLE_EQ(std::get<solids::Orb>(get("orb")).r, 50);
  const auto& ell = std::get<solids::Ellipsoid>(get("ellipsoid"));
  EXPECT_DOUBLE_EQ(ell.cz, 3);
  EXPECT_DOUBLE_EQ(ell.zcut1, -1);
  EXPECT_DOUBLE_EQ(ell.zcut2, 2);
  EXPECT_DOUBLE_EQ(std::get<solids::EllipticalTube>(get("eltube")).dz, 3);
  const auto& torus = std::get<solids::Torus>(get("torus"));
  EXPECT_DOUBLE_EQ(torus.rtor, 10);
  EXPECT_NEAR(torus.deltaphi, pi, 1e-15);
  const auto& pc = std::get<solids::Polycone>(get("polycone"));
  ASSERT_EQ(pc.zplanes.size(), 2u);
  EXPECT_DOUBLE_EQ(pc.zplanes[1].rmax, 20);  // lunit cm
  EXPECT_DOUBLE_EQ(pc.zplanes[0].z, -10);
  EXPECT_EQ(std::get<solids::GenericPolycone>(get("gpolycone")).rzpoints.size(), 3u);
  const auto& ph = std::get<solids::Polyhedra>(get("polyhedra"));
  EXPECT_EQ(ph.numsides, 6);
  EXPECT_DOUBLE_EQ(ph.zplanes[0].rmax, 4);
  EXPECT_EQ(std::get<solids::GenericPolyhedra>(get("gpolyhedra")).numsides, 8);
  const auto& trd = std::get<solids::Trd>(get("trd"));
  EXPECT_DOUBLE_EQ(trd.y2, 4);
  const auto& trap = std::get<solids::Trap>(get("trap"));
  EXPECT_NEAR(trap.theta, 10 * deg, 1e-15);
  EXPECT_NEAR(trap.alpha2, 9 * deg, 1e-15);
  EXPECT_DOUBLE_EQ(trap.x4, 8);
  EXPECT_NEAR(std::get<solids::Para>(get("para")).alpha, 30 * deg, 1e-15);
  const auto& tet = std::get<solids::Tessellated>(get("tet"));
  EXPECT_EQ(tet.vertices.size(), 4u);
  EXPECT_EQ(tet.facets.size(), 4u);
  const auto& scaled = std::get<solids::ScaledSolid>(get("scaled"));
  EXPECT_EQ(scaled.solid->name, "box");
  EXPECT_EQ(scaled.scale, (std::array<double, 3>{1, 1, 0.5}));
  const auto& u = std::get<solids::Boolean>(get("union"));
  EXPECT_EQ(u.op, solids::Boolean::Op::union_);
  EXPECT_EQ(u.first->name, "box");
  EXPECT_EQ(u.second->name, "orb");
  EXPECT_EQ(u.second_transform.translation, (std::array<double, 3>{10, 20, 30}));
  EXPECT_EQ(u.second_transform.rotation, gdml_placement_rotation(0, 0, pi / 2));
  const auto& sub = std::get<solids::Boolean>(get("subtraction"));
  EXPECT_EQ(sub.op, solids::Boolean::Op::subtraction);
  EXPECT_EQ(sub.second_transform.translation, (std::array<double, 3>{1, 0, 0}));
  EXPECT_EQ(sub.first_transform.rotation, gdml_placement_rotation(pi, 0, 0));
  EXPECT_EQ(std::get<solids::Boolean>(get("intersection")).op, solids::Boolean::Op::intersection);
}

TEST(Gdml, DetectorLoadReadsGdmlByExtension) {
  const Detector d = Detector::load(kData / "channels.gdml");
  EXPECT_EQ(d.name(), "channels.gdml");
  EXPECT_EQ(d.geometry().channels().size(), 4u);
}

// Every validation set-up (hand-written for the Geant4 comparison, each
// loading in Geant4 without warnings) loads: curved solids through the solid
// mesher, G4_ NIST materials, surfaces, channels; and passes the detector
// checks (closed meshes, consistent materials).
TEST(Gdml, TheGeant4ValidationSetUpsLoadAndPassTheirChecks) {
  const std::filesystem::path dir = kData / "validation";
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gdml") continue;
    SCOPED_TRACE(entry.path().filename().string());
    try {
      const Detector d = Detector::load(entry.path());
      EXPECT_GT(d.geometry().triangle_count(), 0u);
      auto problems = d.check();
      if (entry.path().filename() == "integrating_sphere.gdml") {
        // The detecting cap and the wall touch along a cone: each solid's
        // face there says "mother outside" while the sibling is. A known
        // limit of flattening touching siblings (docs/optics.md); the face
        // lies inside opaque aluminium and no photon reaches it.
        std::erase_if(problems, [](const std::string& p) {
          return p.find("says the medium there is 'aluminium'") != std::string::npos;
        });
      }
      EXPECT_THAT(problems, ::testing::IsEmpty());
      ++loaded;
    } catch (const SetupError& e) {
      // The one set-up with a surface model the engine cannot map yet.
      EXPECT_THAT(e.what(), HasSubstr("unified"));
    }
  }
  EXPECT_GE(loaded, 6);
}

// ------------------------------------------------------------- optical tables

TEST(Gdml, RefractiveIndexAndLengthsConvertFromEnergyToWavelength) {
  const Detector d = load("optics.gdml");
  // RINDEX rows at 2, 3, 4 eV -> 619.92, 413.28, 309.96 nm, ascending after
  // reversal; the engine then interpolates linearly on its 5 nm grid.
  const std::vector<std::pair<double, double>> n = {
      {kHc / 4, 1.35}, {kHc / 3, 1.34}, {kHc / 2, 1.33}};
  const std::vector<std::pair<double, double>> abs = {{kHc / 4, 1000}, {kHc / 2, 10000}};
  const MaterialData& water = material(d, "Water");
  for (double nm : {300.0, 310.0, 400.0, 415.0, 500.0, 620.0, 700.0}) {
    EXPECT_NEAR(at_nm(water.refractive_index, nm), interpolate(n, nm), 2e-6) << nm;
    EXPECT_NEAR(at_nm(water.absorption_length, nm), interpolate(abs, nm), 1e-3) << nm;
    EXPECT_FLOAT_EQ(at_nm(water.scattering_length, nm), 50000.f);
  }
  // GROUPVEL, given in mm/ns, is used as given (not derived from RINDEX).
  EXPECT_NEAR(at_nm(water.group_velocity, 620), 220.0, 0.05);
  EXPECT_NEAR(at_nm(water.group_velocity, 310), 210.0, 0.05);
  // Exactly at a converted point the engine's value is the user's.
  EXPECT_NEAR(kHc / 2, 619.92099, 1e-5);
  const MaterialData& glass = material(d, "Glass");
  EXPECT_FLOAT_EQ(at_nm(glass.refractive_index, 450), 1.5f);
  EXPECT_FLOAT_EQ(at_nm(glass.absorption_length, 450), 1e12f);  // no ABSLENGTH: never
  EXPECT_EQ(glass.component_count, 0u);
}

TEST(Gdml, WavelengthShifterBecomesAReemissionComponent) {
  const Detector d = load("optics.gdml", {.wls_time_profile = WlsTimeProfile::exponential});
  const MaterialData& m = material(d, "Shifter");
  ASSERT_EQ(m.component_count, 2u);  // WLS, then plain absorption (never reemits)
  const auto& wls = d.tables().components()[m.component_begin];
  const auto& plain = d.tables().components()[m.component_begin + 1];
  // WLSABSLENGTH rows (2 eV, 1000 mm), (4 eV, 10 mm), read linearly in
  // wavelength between the converted points.
  const std::vector<std::pair<double, double>> wls_length = {{kHc / 4, 10}, {kHc / 2, 1000}};
  for (double nm : {350.0, 400.0, 450.0, 550.0}) {
    const double l_wls = interpolate(wls_length, nm);
    EXPECT_NEAR(at_nm(wls.absorption_length, nm), l_wls, 1e-3 * l_wls) << nm;
    EXPECT_NEAR(at_nm(m.absorption_length, nm), 1 / (1 / l_wls + 1 / 5000.0), 1e-3) << nm;
    EXPECT_FLOAT_EQ(at_nm(wls.reemission_prob, nm), 1.f);
    EXPECT_FLOAT_EQ(at_nm(plain.reemission_prob, nm), 0.f);
    EXPECT_FLOAT_EQ(at_nm(plain.absorption_length, nm), 5000.f);
  }
  // WLSCOMPONENT: a triangle in energy over 2..3 eV peaked at 2.5 eV, so the
  // energy CDF is 0, 1/2, 1 there; over wavelength 1 - F at each point.
  const std::vector<std::pair<double, double>> cdf = {
      {kHc / 3, 0.0}, {kHc / 2.5, 0.5}, {kHc / 2, 1.0}};
  for (double nm : {400.0, 420.0, 495.0, 500.0, 600.0, 650.0}) {
    EXPECT_NEAR(at_nm(wls.wavelength_cdf, nm), interpolate(cdf, nm), 1e-6) << nm;
  }
  // WLSTIMECONSTANT 3 ns, exponential: CDF(3 ns) = 1 - 1/e.
  ASSERT_EQ(wls.time.n_exponentials, 1u);
  EXPECT_EQ(wls.time.exponentials[1], 3.f);  // decay time
  EXPECT_EQ(wls.time.exponentials[2], 0.f);  // no rise
  EXPECT_EQ(wls.time.delay, 0.f);
  EXPECT_EQ(plain.time.n_exponentials + plain.time.n_points, 0u);  // never reemits: no delay
  // Geant4's default profile "delta": exactly WLSTIMECONSTANT.
  const Detector delta = load("optics.gdml", {.wls_time_profile = WlsTimeProfile::delta});
  const auto& dw = delta.tables().components()[material(delta, "Shifter").component_begin];
  EXPECT_EQ(dw.time.delay, 3.f);
  EXPECT_EQ(dw.time.n_exponentials + dw.time.n_points, 0u);
}

// ------------------------------------------------------------------ surfaces

TEST(Gdml, SupportedSurfacesMapOntoTheStandardAndUnifiedModels) {
  const Detector d = load("optics.gdml");
  struct Expect {
    const char* solid;
    float absorb, detect, diffuse, specular;
  };
  // R reflect, (1 - R) absorbed, of which E detected.
  const Expect cases[] = {
      {"World/Tank/metal_polished", 0.7f * 0.5f, 0.7f * 0.5f, 0, 0.3f},
      {"World/Tank/metal_ground_glisur", 0.2f, 0, 0, 0.8f},    // polish 1: specular
      {"World/Tank/dielectric_polished", 0.08f, 0.02f, 0, 0},  // rest: Fresnel
      {"World/Tank/front_polished", 0.05f, 0, 0, 0.95f},
      {"World/Tank/front_ground", 0.05f, 0, 0.95f, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.solid);
    const SurfaceData* s = surface_of(d, c.solid);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->model, SurfaceModel::standard);
    for (double nm : {300.0, 450.0, 700.0}) {
      EXPECT_NEAR(at_nm(s->absorb, nm), c.absorb, 1e-6);
      EXPECT_NEAR(at_nm(s->detect, nm), c.detect, 1e-6);
      EXPECT_NEAR(at_nm(s->reflect_diffuse, nm), c.diffuse, 1e-6);
      EXPECT_NEAR(at_nm(s->reflect_specular, nm), c.specular, 1e-6);
    }
  }
  // A REFLECTIVITY table (border surface Tank -> metal_table, met by
  // photons entering metal_table), combined with EFFICIENCY at each grid
  // wavelength.
  const SurfaceData* t = surface_of(d, "World/Tank/metal_table", true);
  ASSERT_NE(t, nullptr);
  const std::vector<std::pair<double, double>> refl = {{kHc / 4, 0.6}, {kHc / 2, 0.2}};
  for (double nm : {300.0, 320.0, 400.0, 500.0, 600.0, 650.0}) {
    const double r = interpolate(refl, nm);
    EXPECT_NEAR(at_nm(t->detect, nm), (1 - r) * 0.5, 1e-6) << nm;
    EXPECT_NEAR(at_nm(t->absorb, nm), (1 - r) * 0.5, 1e-6) << nm;
    EXPECT_NEAR(at_nm(t->reflect_specular, nm), r, 1e-6) << nm;
  }
  // Unified ground finishes and TRANSMITTANCE: the UNIFIED model with
  // Geant4's properties as given (REFLECTIVITY default 1, the rest 0).
  struct Unified {
    const char* solid;
    SurfaceType type;
    SurfaceFinish finish;
    float sigma_alpha, efficiency, transmittance, spike, lobe, back;
  };
  const auto metal = SurfaceType::dielectric_metal;
  const auto dielectric = SurfaceType::dielectric_dielectric;
  const auto ground = SurfaceFinish::ground;
  const Unified unified[] = {
      {"World/Tank/metal_ground_unified", metal, ground, 0.2f, 0, 0, 0, 0, 0},  // Lambertian
      {"World/Tank/metal_ground_spike", metal, ground, 0.1f, 0, 0, 0.25f, 0, 0},
      {"World/Tank/metal_lobe_back", metal, ground, 0.3f, 0, 0, 0, 0.5f, 0.1f},
      {"World/Tank/dielectric_ground", dielectric, ground, 0.15f, 0.2f, 0, 0.25f, 0.5f, 0.1f},
      {"World/Tank/dielectric_transmit", dielectric, SurfaceFinish::polished, 0, 0, 0.4f, 0, 0, 0},
  };
  for (const auto& c : unified) {
    SCOPED_TRACE(c.solid);
    const SurfaceData* s = surface_of(d, c.solid);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->model, SurfaceModel::unified);
    EXPECT_EQ(s->type, c.type);
    EXPECT_EQ(s->finish, c.finish);
    EXPECT_FLOAT_EQ(s->sigma_alpha, c.sigma_alpha);
    for (double nm : {300.0, 450.0, 700.0}) {
      EXPECT_NEAR(at_nm(s->efficiency, nm), c.efficiency, 1e-6);
      EXPECT_NEAR(at_nm(s->transmittance, nm), c.transmittance, 1e-6);
      EXPECT_NEAR(at_nm(s->specular_spike, nm), c.spike, 1e-6);
      EXPECT_NEAR(at_nm(s->specular_lobe, nm), c.lobe, 1e-6);
      EXPECT_NEAR(at_nm(s->backscatter, nm), c.back, 1e-6);
    }
  }
  EXPECT_NEAR(at_nm(surface_of(d, "World/Tank/metal_ground_unified")->reflectivity, 450), 0.8,
              1e-6);
  EXPECT_NEAR(at_nm(surface_of(d, "World/Tank/dielectric_ground")->reflectivity, 450), 0.9, 1e-6);
  EXPECT_NEAR(at_nm(surface_of(d, "World/Tank/dielectric_transmit")->reflectivity, 450), 0.5, 1e-6);
  const SurfaceData* lobe_back = surface_of(d, "World/Tank/metal_lobe_back");
  for (double nm : {300.0, 320.0, 400.0, 500.0, 600.0, 650.0}) {
    EXPECT_NEAR(at_nm(lobe_back->reflectivity, nm),
                interpolate({{kHc / 4, 0.6}, {kHc / 2, 0.2}}, nm), 1e-6)
        << nm;
  }
  // Water cube in water: a polished or ground dielectric surface between
  // equal materials does nothing (Geant4's SameMaterial).
  EXPECT_EQ(surface_of(d, "World/Tank/water"), nullptr);
  EXPECT_EQ(surface_of(d, "World/Tank/water_ground"), nullptr);
  // No surface where both sides have RINDEX.
  EXPECT_EQ(surface_of(d, "World/Tank/shifter"), nullptr);
  EXPECT_EQ(surface_of(d, "World/Tank"), nullptr);
  // A material without RINDEX: Geant4 kills photons at its boundary.
  const SurfaceData* black = surface_of(d, "World/Tank/black");
  ASSERT_NE(black, nullptr);
  EXPECT_FLOAT_EQ(at_nm(black->absorb, 450), 1.f);
  // One engine surface per optical surface, shared by its users.
  EXPECT_EQ(d.tables().n_surfaces(), 12u);
}

std::string error_of(const fs::path& path, const GdmlOptions& options = {}) {
  try {
    (void)Detector::load_gdml(path, options);
  } catch (const SetupError& e) {
    return e.what();
  }
  return "(no error)";
}

int line_of(const std::string& text, const std::string& marker) {
  const auto pos = text.find(marker);
  EXPECT_NE(pos, std::string::npos) << marker;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

// A small valid file with places to put more.
std::string make_gdml(std::map<std::string, std::string> parts) {
  std::string t = R"(<?xml version="1.0" encoding="UTF-8"?>
<gdml>
  <define>
    <matrix name="RI" coldim="1" values="1.33"/>
    <matrix name="RI_glass" coldim="1" values="1.5"/>
@DEFINES@
  </define>
  <materials>
    <material name="Water" Z="1"><D value="1"/><atom value="18"/>
      <property name="RINDEX" ref="RI"/>
    </material>
    <material name="Glass" Z="14"><D value="2.2"/><atom value="28"/>
      <property name="RINDEX" ref="RI_glass"/>
    </material>
@MATERIALS@
  </materials>
  <solids>
    <box name="WorldBox" x="1000" y="1000" z="1000"/>
    <box name="B" x="10" y="10" z="10"/>
@SOLIDS@
  </solids>
  <structure>
    <volume name="V"><materialref ref="Glass"/><solidref ref="B"/></volume>
@STRUCTURE@
    <volume name="World"><materialref ref="Water"/><solidref ref="WorldBox"/>
      <physvol name="pv"><volumeref ref="V"/></physvol>
@PLACEMENTS@
    </volume>
@SURFACES@
  </structure>
  <setup name="Default" version="1.0"><world ref="World"/></setup>
</gdml>
)";
  for (const char* key :
       {"DEFINES", "MATERIALS", "SOLIDS", "STRUCTURE", "PLACEMENTS", "SURFACES"}) {
    const std::string k = std::string("@") + key + "@";
    t.replace(t.find(k), k.size(), parts.count(key) ? parts[key] : "");
  }
  return t;
}

class GdmlFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("acheron_gdml_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  fs::path dir_;
};

TEST_F(GdmlFiles, TheTemplateIsValid) {
  const Detector d = Detector::load_gdml(write("ok.gdml", make_gdml({})), {});
  EXPECT_EQ(d.geometry().solids().size(), 1u);
}

TEST_F(GdmlFiles, UnmappableSurfacesAreRefusedNamingTheSurfaceAndReason) {
  struct Case {
    const char* attributes;
    const char* properties;
    const char* reason;
  };
  const Case cases[] = {
      {R"(model="unified" finish="polishedbackpainted" type="dielectric_dielectric")", "",
       "polishedbackpainted"},
      {R"(model="unified" finish="groundbackpainted" type="dielectric_dielectric")", "",
       "groundbackpainted"},
      {R"(model="glisur" finish="ground" type="dielectric_metal" value="0.5")", "", "polish 0.5"},
      {R"(model="unified" finish="ground" type="dielectric_dielectric" value="-0.1")", "",
       "sigma_alpha (value) -0.1"},
      {R"(model="glisur" finish="polished" type="dielectric_dielectric")",
       R"(<property name="TRANSMITTANCE" ref="P"/><property name="REFLECTIVITY" ref="Q"/>)",
       "REFLECTIVITY + TRANSMITTANCE = 1.1"},
      {R"(model="glisur" finish="polished" type="dielectric_metal")",
       R"(<property name="TRANSMITTANCE" ref="P"/>)", "REFLECTIVITY + TRANSMITTANCE = 1.3"},
      {R"(model="unified" finish="ground" type="dielectric_metal" value="0.1")",
       R"(<property name="SPECULARLOBECONSTANT" ref="Q"/><property name="BACKSCATTERCONSTANT" ref="P"/>)",
       "BACKSCATTERCONSTANT = 1.1"},
      {R"(model="glisur" finish="polished" type="dielectric_LUT")", "", "dielectric_LUT"},
      {R"(model="LUT" finish="polished" type="dielectric_metal")", "", "model LUT"},
      {R"(model="DAVIS" finish="polished" type="dielectric_metal")", "", "model DAVIS"},
      {R"(model="glisur" finish="polished" type="dielectric_dichroic")", "", "dielectric_dichroic"},
      {R"(model="glisur" finish="polished" type="dielectric_metal")",
       R"(<property name="REALRINDEX" ref="P"/>)", "REALRINDEX"},
      {R"(model="glisur" finish="groundfrontpainted" type="dielectric_metal")", "",
       "painted finishes"},
      {R"(model="glisur" finish="polishedlumirrorair" type="dielectric_metal")", "",
       "LUT finishes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.attributes);
    const std::string text = make_gdml(
        {{"DEFINES", R"(<matrix name="P" coldim="1" values="0.3"/>
<matrix name="Q" coldim="1" values="0.8"/>)"},
         {"SOLIDS", std::string(R"(<opticalsurface name="Refused" )") + c.attributes + ">" +
                        c.properties + "</opticalsurface>"},
         {"SURFACES",
          R"(<skinsurface name="skin" surfaceproperty="Refused"><volumeref ref="V"/></skinsurface>)"}});
    const std::string e = error_of(write("s.gdml", text));
    EXPECT_THAT(e, HasSubstr("s.gdml:" + std::to_string(line_of(text, "<skinsurface")) +
                             ": <skinsurface name=\"skin\"> uses the optical surface 'Refused' "
                             "(s.gdml:" +
                             std::to_string(line_of(text, "<opticalsurface")) + ")"));
    EXPECT_THAT(e, HasSubstr(c.reason));
  }
}

TEST_F(GdmlFiles, ReemissionProbabilityFollowsTheDayaBayConvention) {
  const std::string text = make_gdml(
      {{"DEFINES",
        R"(<matrix name="ABS" coldim="1" values="2*m"/>
<matrix name="RP" coldim="2" values="2*eV 0.5 4*eV 0.8"/>
<matrix name="SPEC" coldim="2" values="2.5*eV 0 3*eV 1 3.5*eV 0"/>
<constant name="TAU1" value="5*ns"/>)"},
       {"MATERIALS", R"(<material name="LS" Z="6"><D value="0.86"/><atom value="12"/>
<property name="RINDEX" ref="RI_glass"/><property name="ABSLENGTH" ref="ABS"/>
<property name="REEMISSIONPROB" ref="RP"/><property name="FASTCOMPONENT" ref="SPEC"/>
<constproperty name="FASTTIMECONSTANT" ref="TAU1"/></material>)"},
       {"STRUCTURE", R"(<volume name="LSV"><materialref ref="LS"/><solidref ref="B"/></volume>)"},
       {"PLACEMENTS",
        R"(<physvol name="ls"><volumeref ref="LSV"/><position name="lp" x="100"/></physvol>)"}});
  const Detector d = Detector::load_gdml(write("ls.gdml", text), {});
  const MaterialData& m = material(d, "LS");
  ASSERT_EQ(m.component_count, 1u);
  const auto& c = d.tables().components()[m.component_begin];
  EXPECT_FLOAT_EQ(at_nm(m.absorption_length, 450), 2000.f);
  EXPECT_FLOAT_EQ(at_nm(c.absorption_length, 450), 2000.f);
  const std::vector<std::pair<double, double>> rp = {{kHc / 4, 0.8}, {kHc / 2, 0.5}};
  EXPECT_NEAR(at_nm(c.reemission_prob, 450), interpolate(rp, 450), 1e-6);
  EXPECT_NEAR(at_nm(c.wavelength_cdf, 410), 0.5 * (410 - kHc / 3.5) / (kHc / 3 - kHc / 3.5), 1e-6);
  ASSERT_EQ(c.time.n_exponentials, 1u);  // FASTTIMECONSTANT, exponential
  EXPECT_EQ(c.time.exponentials[1], 5.f);
  // A wavelength shifter without its emission spectrum is refused.
  const std::string bad = make_gdml(
      {{"MATERIALS", R"(<material name="WLS" Z="6"><D value="1"/><atom value="12"/>
<property name="RINDEX" ref="RI_glass"/><property name="WLSABSLENGTH" ref="RI"/></material>)"},
       {"STRUCTURE", R"(<volume name="WV"><materialref ref="WLS"/><solidref ref="B"/></volume>)"},
       {"PLACEMENTS",
        R"(<physvol name="w"><volumeref ref="WV"/><position name="wp" x="100"/></physvol>)"}});
  EXPECT_THAT(error_of(write("wls.gdml", bad)),
              HasSubstr("wls.gdml:" + std::to_string(line_of(bad, "name=\"WLS\"")) +
                        ": <material name=\"WLS\"> has WLSABSLENGTH but no WLSCOMPONENT"));
}

// ------------------------------------------------------------ errors, file:line

TEST_F(GdmlFiles, BadInputIsRefusedWithFileAndLine) {
  struct Case {
    std::map<std::string, std::string> parts;
    const char* marker;  // the offending line
    const char* message;
  };
  const Case cases[] = {
      {{{"STRUCTURE",
         R"(<volume name="X"><materialref ref="Wtaer"/><solidref ref="B"/></volume>)"}},
       "Wtaer",
       "<materialref ref=\"Wtaer\"> refers to the unknown material 'Wtaer'"},
      {{{"SOLIDS", R"(<box name="B" x="1" y="1" z="1"/>)"}},
       "<box name=\"B\" x=\"1\"",
       "redefines the solid 'B' first defined at bad.gdml:"},
      {{{"SOLIDS", R"(<box name="C" x="1" y="1"/>)"}}, "name=\"C\"", "has no z attribute"},
      {{{"SOLIDS", R"(<box name="C" x="2*cmm" y="1" z="1"/>)"}},
       "name=\"C\"",
       "x=\"2*cmm\" cannot be evaluated (unknown name"},
      {{{"SOLIDS", R"(<box name="C" lunit="deg" x="1" y="1" z="1"/>)"}},
       "name=\"C\"",
       "lunit=\"deg\" is not a length unit"},
      {{{"STRUCTURE",
         R"(<volume name="X"><materialref ref="Water"/><solidref ref="B"/><colour/></volume>)"}},
       "<colour/>",
       "<colour> is not allowed in <volume>"},
      {{{"DEFINES", R"(<matrix name="M" coldim="2" values="1 2 3"/>)"}},
       "name=\"M\"",
       "has 3 values, not a multiple of coldim 2"},
      {{{"DEFINES", R"(<matrix name="M" coldim="2" values="3*eV 1.3 2*eV 1.4"/>)"},
        {"MATERIALS",
         "<material name=\"W2\" Z=\"1\"><D value=\"1\"/><atom value=\"1\"/>\n"
         "<property name=\"RINDEX\" ref=\"M\"/></material>"}},
       "ref=\"M\"",
       "whose energies do not ascend"},
      {{{"DEFINES", R"(<matrix name="M" coldim="2" values="2*eV -1 3*eV 5"/>)"},
        {"MATERIALS",
         "<material name=\"W2\" Z=\"1\"><D value=\"1\"/><atom value=\"1\"/>\n"
         "<property name=\"ABSLENGTH\" ref=\"M\"/></material>"}},
       "ref=\"M\"",
       "ABSLENGTH must be > 0"},
      {{{"SOLIDS",
         R"(<opticalsurface name="S" model="glisur" finish="polished" type="dielectric_metal"/>)"},
        {"SURFACES",
         "<bordersurface name=\"bs\" surfaceproperty=\"S\"><physvolref ref=\"pv\"/>\n"
         "<physvolref ref=\"nope\"/></bordersurface>"}},
       "ref=\"nope\"",
       "refers to the unknown physvol 'nope'"},
      {{{"DEFINES", R"(<constant name="m" value="3"/>)"}}, "name=\"m\"", "redefines 'm', a unit"},
      {{{"MATERIALS",
         "<material name=\"W2\" Z=\"1\"><D value=\"1\"/><atom value=\"1\"/>\n"
         "<property name=\"MIEHG\" ref=\"RI\"/></material>"}},
       "MIEHG",
       "Mie scattering"},
      {{{"SOLIDS", R"(<tube name="T" rmin="6" rmax="5" z="10" deltaphi="360" aunit="deg"/>)"},
        {"STRUCTURE",
         R"(<volume name="TV"><materialref ref="Glass"/><solidref ref="T"/></volume>)"},
        {"PLACEMENTS",
         R"(<physvol name="tube"><volumeref ref="TV"/><position name="tp" x="100"/></physvol>)"}},
       "<tube",
       "has rmax = 5 (need rmax > rmin >= 0)"},
      {{{"PLACEMENTS", R"(<physvol name="sub"><file name="missing.gdml"/></physvol>)"}},
       "missing.gdml",
       "does not exist"},
      {{{"STRUCTURE", R"(<loop for="i" from="0" to="3" step="1"></loop>)"}},
       "<loop",
       "<loop> is not supported"},
  };
  for (const auto& c : cases) {
    const std::string text = make_gdml(c.parts);
    SCOPED_TRACE(c.message);
    const std::string e = error_of(write("bad.gdml", text));
    EXPECT_THAT(e, HasSubstr("bad.gdml:" + std::to_string(line_of(text, c.marker)) + ":"));
    EXPECT_THAT(e, HasSubstr(c.message));
  }
  // Not well-formed XML: the line of the fault.
  const std::string broken = "<?xml version=\"1.0\"?>\n<gdml>\n  <define>\n</gdml>\n";
  EXPECT_THAT(error_of(write("bad.gdml", broken)), HasSubstr("bad.gdml:4: not well-formed XML"));
  // No setup.
  std::string no_setup = make_gdml({});
  no_setup.erase(no_setup.find("  <setup"), no_setup.find("</gdml>") - no_setup.find("  <setup"));
  EXPECT_THAT(error_of(write("bad.gdml", no_setup)), HasSubstr("bad.gdml: no <setup>"));
  // A second definition of a material with other optical properties.
  EXPECT_THAT(
      error_of(write("bad.gdml", make_gdml({{"MATERIALS", R"(<material name="Glass" Z="1"/>)"}}))),
      HasSubstr("redefines the material 'Glass'"));
}

// --------------------------------------------------------------- multi-file

TEST(Gdml, MultiFileGeometryPlacesModulesRelativeToTheIncludingFile) {
  const Detector d = load("multi/main.gdml");
  // modA: the module's world (60 mm, its own size = 30) with its cell and the
  // leaf of parts/cell.gdml (10 mm, that file's size); cellB: volume Cell.
  expect_bounds(d, "World/modA", {-200, 0, 0}, {30, 30, 30});
  expect_bounds(d, "World/modA/cell", {-200, 0, 0}, {15, 15, 15});
  expect_bounds(d, "World/modA/leaf", {-200, 0, 20}, {5, 5, 5});
  expect_bounds(d, "World/cellB", {200, 0, 0}, {15, 15, 15});
  EXPECT_EQ(d.geometry().solids().size(), 4u);
  // Water is defined in two files with equal properties: one material.
  EXPECT_EQ(d.tables().n_materials(), 3u);  // Water, Glass, G4_Pb
  // The leaf is G4_Pb (no RINDEX): Geant4 kills photons at its boundary.
  EXPECT_NE(surface_of(d, "World/modA/leaf"), nullptr);
}

TEST(Gdml, IncludeCyclesAreRefused) {
  const std::string e = error_of(kData / "multi/cycle_a.gdml");
  EXPECT_THAT(e, HasSubstr("cycle_b.gdml:13: <file name=\"cycle_a.gdml\"> includes a file that "
                           "is being read"));
  EXPECT_THAT(e, HasSubstr("cycle_a.gdml -> cycle_b.gdml -> cycle_a.gdml"));
}

// ------------------------------------------------------- assemblies, channels

TEST(Gdml, SensitiveVolumesBecomeChannelsInCopyNumberOrder) {
  const Detector d = load("channels.gdml");
  const auto& ch = d.geometry().channels();
  ASSERT_EQ(ch.size(), 4u);
  struct Expect {
    const char* solid;
    Vec3 position, direction;
  };
  // pair: rotated 180 deg about x, so its PMTs face -z and left/right keep x.
  const Expect e[] = {{"World/zero", {300, 0, 0}, {-1, 0, 0}},
                      {"World/pair/p_right", {50, 0, 500}, {0, 0, -1}},
                      {"World/solo", {0, 0, -500}, {0, 0, 1}},
                      {"World/pair/p_left", {-50, 0, 500}, {0, 0, -1}}};
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(d.geometry().solids()[ch[i].solid].name, e[i].solid);
    EXPECT_EQ(ch[i].copy_number, i);
    EXPECT_EQ(ch[i].volume, "PMT");
    EXPECT_NEAR(ch[i].position.x, e[i].position.x, 1e-4);
    EXPECT_NEAR(ch[i].position.y, e[i].position.y, 1e-4);
    EXPECT_NEAR(ch[i].position.z, e[i].position.z, 1e-4);
    EXPECT_NEAR(ch[i].direction.x, e[i].direction.x, 1e-6);
    EXPECT_NEAR(ch[i].direction.y, e[i].direction.y, 1e-6);
    EXPECT_NEAR(ch[i].direction.z, e[i].direction.z, 1e-6);
  }
  // The assembly's PMTs sit where its transform puts them.
  expect_bounds(d, "World/pair/p_left", {-50, 0, 500}, {10, 10, 5});
  // JSON for RAT's PMTINFO.
  const auto j = nlohmann::json::parse(channels_json(d));
  EXPECT_EQ(j["detector"], "channels.gdml");
  ASSERT_EQ(j["channels"].size(), 4u);
  EXPECT_EQ(j["channels"][1]["id"], 1);
  EXPECT_EQ(j["channels"][1]["copynumber"], 1);
  EXPECT_EQ(j["channels"][1]["volume"], "PMT");
  EXPECT_EQ(j["channels"][1]["solid"], "World/pair/p_right");
  EXPECT_NEAR(j["channels"][1]["position"][0].get<double>(), 50, 1e-4);
  EXPECT_NEAR(j["channels"][1]["direction"][2].get<double>(), -1, 1e-6);
  EXPECT_EQ(j["channels"][0]["type"], 0);
}

TEST(Gdml, PmtPatternAddsChannelsAndMissingCopyNumbersKeepPlacementOrder) {
  const Detector d = load("channels.gdml", {.pmt_pattern = "Fr.*"});
  const auto& ch = d.geometry().channels();
  ASSERT_EQ(ch.size(), 5u);
  // The frame has no copynumber: placement order (pair's two, solo, zero, frame).
  const char* order[] = {"World/pair/p_left", "World/pair/p_right", "World/solo", "World/zero",
                         "World/frame"};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d.geometry().solids()[ch[i].solid].name, order[i]);
  EXPECT_EQ(ch[4].copy_number, -1);
  EXPECT_THAT(error_of(kData / "channels.gdml", {.pmt_pattern = "(unclosed"}),
              HasSubstr("pmt_pattern is invalid"));
}

TEST_F(GdmlFiles, BorderSurfaceBetweenTouchingSiblingsCoversTheSharedFace) {
  const std::string text = make_gdml(
      {{"DEFINES", R"(<matrix name="R" coldim="1" values="0.5"/>)"},
       {"SOLIDS",
        R"(<opticalsurface name="Mirror" model="glisur" finish="polished" type="dielectric_metal"><property name="REFLECTIVITY" ref="R"/></opticalsurface>)"},
       {"PLACEMENTS",
        R"(<physvol name="right"><volumeref ref="V"/><position name="rp" x="10"/></physvol>)"},
       {"SURFACES",
        R"(<bordersurface name="between" surfaceproperty="Mirror"><physvolref ref="pv"/><physvolref ref="right"/></bordersurface>)"}});
  const Detector d = Detector::load_gdml(write("touch.gdml", text), {});
  // Boxes of 10 mm at x = 0 and x = 10 share the face x = 5. The surface
  // applies from the first physvol to the second: on the two triangles of
  // pv's face, for photons leaving pv; right's triangles and the way back
  // carry none.
  const auto count = [&](const char* name, bool inward) {
    const SolidInfo& s = solid_named(d, name);
    int with = 0;
    for (std::uint32_t t = s.first_triangle; t < s.first_triangle + s.triangle_count; ++t) {
      const TriangleData td = d.geometry().triangle_record(t);
      const std::int32_t surface = inward ? td.surface_in : td.surface;
      if (surface >= 0) {
        ++with;
        EXPECT_NEAR(td.normal.x, 1, 1e-6);
        EXPECT_EQ(d.tables().surface_name(static_cast<std::uint32_t>(surface)), "Mirror");
      }
    }
    return with;
  };
  EXPECT_EQ(count("World/pv", false), 2);
  EXPECT_EQ(count("World/pv", true), 0);
  EXPECT_EQ(count("World/right", false), 0);
  EXPECT_EQ(count("World/right", true), 0);
}

// n photons at 420 nm from (0, 0.5, 0.25) mm along +x, polarised along y.
PhotonBatch beam_along_x(std::uint32_t n) {
  PhotonBatch batch;
  for (std::uint32_t i = 0; i < n; ++i) {
    Photon p;
    p.position = {0, 0.5f, 0.25f};
    p.direction = {1, 0, 0};
    p.polarization = {0, 1, 0};
    p.wavelength = 420;
    p.index = i;
    batch.push_back(p);
  }
  return batch;
}

// A glass box (n = 1.5, 10 mm, at the origin) touching a box of a dense,
// black medium (n = 1.6, absorption length 1 um, at x = 10), both in water.
TEST_F(GdmlFiles, TouchingSiblingsMeetAtOneInterfaceWithoutTheMotherBetween) {
  const std::string text = make_gdml(
      {{"DEFINES", R"(<matrix name="RI_dense" coldim="1" values="1.6"/>
<matrix name="ABS_dense" coldim="1" values="0.001"/>)"},
       {"MATERIALS", R"(<material name="Dense" Z="1"><D value="1"/><atom value="1"/>
  <property name="RINDEX" ref="RI_dense"/><property name="ABSLENGTH" ref="ABS_dense"/>
</material>)"},
       {"STRUCTURE", R"(<volume name="D"><materialref ref="Dense"/><solidref ref="B"/></volume>)"},
       {"PLACEMENTS",
        R"(<physvol name="right"><volumeref ref="D"/><position name="rp" x="10"/></physvol>)"}});
  auto det = std::make_shared<const Detector>(Detector::load_gdml(write("touch.gdml", text), {}));
  const Detector& d = *det;
  // The glass box's face x = 5 has the dense medium outside; the dense
  // box's face there is transparent (dense on both sides, no surface).
  const auto faces = [&](const char* name, auto&& pred) {
    const SolidInfo& s = solid_named(d, name);
    int n = 0;
    for (std::uint32_t t = s.first_triangle; t < s.first_triangle + s.triangle_count; ++t) {
      const TriangleData td = d.geometry().triangle_record(t);
      if (pred(td)) {
        ++n;
        EXPECT_NEAR(std::abs(td.normal.x), 1, 1e-6) << name;
      }
    }
    return n;
  };
  EXPECT_EQ(faces("World/pv",
                  [&](const TriangleData& t) {
                    return d.tables().material_name(t.outer_material) == "Dense";
                  }),
            2);
  EXPECT_EQ(faces("World/right",
                  [&](const TriangleData& t) {
                    return t.inner_material == t.outer_material && t.surface < 0 &&
                           t.surface_in < 0;
                  }),
            2);
  EXPECT_THAT(d.check(), ::testing::IsEmpty());

  // Photons from inside the glass along +x: they cross glass -> dense once
  // (reflected with R = ((1.6 - 1.5) / 3.1)^2 = 0.00104 at normal
  // incidence) and die in the dense box, or reflect and leave through the
  // glass into the water. Through a sliver of water between the boxes two
  // interfaces would reflect 0.0120.
  Engine engine(det, {.threads = 1});
  const std::uint32_t n = 20000;
  const PhotonBatch batch = beam_along_x(n);
  const auto res = engine.simulate(batch, 5);
  const double r = std::pow(0.1 / 3.1, 2);
  const double escaped = static_cast<double>(res.diagnostics.no_hit);
  EXPECT_NEAR(escaped, n * r, 5 * std::sqrt(n * r * (1 - r)));
  EXPECT_EQ(res.diagnostics.bulk_absorb + res.diagnostics.no_hit, n);
}

// A glass holder (100 mm) in the water world holds a water core (10 mm);
// the border surface named in `surfaces` is a black absorber.
std::string holder_gdml(const std::string& surfaces) {
  return make_gdml(
      {{"DEFINES", R"(<matrix name="R0" coldim="1" values="0"/>)"},
       {"SOLIDS", R"(<box name="H" x="100" y="100" z="100"/>
<opticalsurface name="Black" model="glisur" finish="polished" type="dielectric_metal"><property name="REFLECTIVITY" ref="R0"/></opticalsurface>)"},
       {"STRUCTURE", R"(<volume name="Core"><materialref ref="Water"/><solidref ref="B"/></volume>
<volume name="Holder"><materialref ref="Glass"/><solidref ref="H"/>
  <physvol name="core"><volumeref ref="Core"/></physvol></volume>)"},
       {"PLACEMENTS",
        R"(<physvol name="holder"><volumeref ref="Holder"/><position name="hp" x="300"/></physvol>)"},
       {"SURFACES", surfaces}});
}

TEST_F(GdmlFiles, BorderSurfacesApplyOnlyFromTheFirstPhysvolToTheSecond) {
  const char* kOut =
      R"(<bordersurface name="out" surfaceproperty="Black"><physvolref ref="core"/><physvolref ref="holder"/></bordersurface>)";
  const char* kIn =
      R"(<bordersurface name="in" surfaceproperty="Black"><physvolref ref="holder"/><physvolref ref="core"/></bordersurface>)";
  // The surface each way on every triangle of the core.
  const auto surfaces = [&](const fs::path& file) {
    const Detector d = Detector::load_gdml(file, {});
    const SolidInfo& s = solid_named(d, "World/holder/core");
    std::set<std::pair<std::int32_t, std::int32_t>> seen;
    for (std::uint32_t t = s.first_triangle; t < s.first_triangle + s.triangle_count; ++t) {
      const TriangleData td = d.geometry().triangle_record(t);
      seen.insert({td.surface, td.surface_in});
    }
    EXPECT_EQ(d.tables().n_surfaces(), 1u);
    return seen;
  };
  using Set = std::set<std::pair<std::int32_t, std::int32_t>>;
  EXPECT_EQ(surfaces(write("out.gdml", holder_gdml(kOut))), (Set{{0, -1}}));
  EXPECT_EQ(surfaces(write("in.gdml", holder_gdml(kIn))), (Set{{-1, 0}}));
  EXPECT_EQ(surfaces(write("both.gdml", holder_gdml(std::string(kOut) + kIn))), (Set{{0, 0}}));

  // Photons through the middle of the holder along +x: with the surface
  // only on the way out of the core, they enter the core through the
  // Fresnel interface and are absorbed where they leave it, at x = 305.
  auto det = std::make_shared<const Detector>(
      Detector::load_gdml(write("beam.gdml", holder_gdml(kOut)), {}));
  Engine engine(det, {.threads = 1, .keep_tracks = true});
  const std::uint32_t n = 2000;
  const PhotonBatch batch = beam_along_x(n);
  const auto res = engine.simulate(batch, 3);
  ASSERT_EQ(res.tracks.size(), n);
  std::uint32_t absorbed = 0;
  for (const auto& t : res.tracks) {
    if (!(t.history & history::surface_absorb)) continue;
    ++absorbed;
    ASSERT_NEAR(t.position[0], 305, 1e-3);
  }
  // Fresnel at normal incidence: water/glass and glass/water transmit
  // T = 1 - ((1.5 - 1.33) / 2.83)^2 = 0.9964 each; the few photons
  // reflected at the first two interfaces escape or bounce in the holder.
  EXPECT_GT(absorbed, n * 0.97);
}

// --------------------------------------------------------- photons end to end

TEST(Gdml, PhotonsThroughAGdmlDetectorHitAtTheExpectedRate) {
  auto det = std::make_shared<const Detector>(load("engine.gdml"));
  ASSERT_EQ(det->geometry().channels().size(), 1u);
  Engine engine(det, {.threads = 2});
  PhotonBatch batch;
  const std::uint32_t n = 200000;
  append_photons(batch, IsotropicSource{{0, 0, 0}, 350, 550, 0.0f}, n, 0, 11);
  const auto res = engine.simulate(batch, 11);
  // The tessellated absorber (cube of half side a = 100 at z = 400) hides
  // from the origin exactly its near face, a square at h = 300: solid angle
  // 4 atan(a^2 / (h sqrt(h^2 + 2 a^2))). Every other photon reaches the tank
  // wall, where it is detected with (1 - R) E = 0.25.
  const double a = 100, h = 300;
  const double omega = 4 * std::atan(a * a / (h * std::sqrt(h * h + 2 * a * a)));
  const double p = (1 - omega / (4 * std::numbers::pi)) * 0.25;
  const double mean = n * p, sigma = std::sqrt(n * p * (1 - p));
  // 5 binomial standard deviations (the suite's tolerance for fractions).
  EXPECT_NEAR(static_cast<double>(res.hits.size()), mean, 5 * sigma);
  const double blocked = n * omega / (4 * std::numbers::pi);
  const double sb = std::sqrt(blocked * (1 - omega / (4 * std::numbers::pi)));
  // Absorbed: at the absorber (NoRINDEX surface) plus 75 % at the wall.
  EXPECT_NEAR(static_cast<double>(res.diagnostics.surface_absorb), blocked + (n - blocked) * 0.75,
              5 * (sb + sigma));
  // Every detection is on the tank wall, the channel.
  EXPECT_EQ(res.diagnostics.surface_detect, res.hits.size());
  for (const auto& hit : res.hits) {
    ASSERT_EQ(hit.channel, 0u);
    ASSERT_NEAR(
        std::max({std::abs(hit.position[0]), std::abs(hit.position[1]), std::abs(hit.position[2])}),
        1000, 1e-2);
  }
  EXPECT_EQ(res.diagnostics.nan_abort, 0u);
}

// ------------------------------------------------------------- performance

// A file as G4GDMLParser::Write produces it: names with 0x pointer suffixes,
// values in mm / deg / MeV, every placement with its own position and
// rotation; here 40,000 PMTs (tessellated) around a tank, ~200,000 lines.
std::string geant4_style_file(int pmts) {
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\" ?>\n"
        "<gdml xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:noNamespaceSchemaLocation=\"http://service-spi.web.cern.ch/service-spi/app/"
        "releases/GDML/schema/gdml.xsd\">\n\n  <define>\n";
  const double h = 40, w = 60;
  const char* corner[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
  for (int i = 0; i < 8; ++i) {
    os << "    <position name=\"PmtShape_v" << corner[i] << "0x55d0c8f1a0" << i
       << "\" unit=\"mm\" x=\"" << ((i & 1) ? w : -w) << "\" y=\"" << ((i & 2) ? w : -w)
       << "\" z=\"" << ((i & 4) ? h : -h) << "\"/>\n";
  }
  os << "    <matrix coldim=\"2\" name=\"RINDEX0x55d0c8e3b0\" values=\"";
  for (int i = 0; i < 200; ++i) os << (1.5e-06 + i * 2.5e-08) << " " << 1.33 + i * 1e-4 << " ";
  os << "\"/>\n    <matrix coldim=\"2\" name=\"EFFICIENCY0x55d0c8e5f0\" values=\"1.5e-06 0.2 "
        "6.2e-06 0.2\"/>\n    <matrix coldim=\"2\" name=\"REFLECTIVITY0x55d0c8e700\" "
        "values=\"1.5e-06 0 6.2e-06 0\"/>\n  </define>\n\n  <materials>\n"
        "    <isotope N=\"1\" Z=\"1\" name=\"H10x55d0c8a1b0\">\n      <atom unit=\"g/mole\" "
        "value=\"1.00782503081372\"/>\n    </isotope>\n"
        "    <element name=\"H0x55d0c8a2c0\">\n      <fraction n=\"1\" "
        "ref=\"H10x55d0c8a1b0\"/>\n    </element>\n"
        "    <material name=\"G4_WATER0x55d0c8b3d0\" state=\"solid\">\n"
        "      <property name=\"RINDEX\" ref=\"RINDEX0x55d0c8e3b0\"/>\n"
        "      <T unit=\"K\" value=\"293.15\"/>\n      <MEE unit=\"eV\" value=\"78\"/>\n"
        "      <D unit=\"g/cm3\" value=\"1\"/>\n      <fraction n=\"1\" "
        "ref=\"H0x55d0c8a2c0\"/>\n    </material>\n  </materials>\n\n  <solids>\n"
        "    <box lunit=\"mm\" name=\"World0x55d0c8c4e0\" x=\"100000\" y=\"100000\" "
        "z=\"100000\"/>\n"
        "    <tessellated aunit=\"deg\" lunit=\"mm\" name=\"PmtShape0x55d0c8d5f0\">\n";
  const int faces[6][4] = {{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4},
                           {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}};
  for (const auto& f : faces) {
    for (int t = 0; t < 2; ++t) {
      const int a = f[0], b = f[1 + t], c = f[2 + t];
      os << "      <triangular type=\"ABSOLUTE\" vertex1=\"PmtShape_v" << corner[a]
         << "0x55d0c8f1a0" << a << "\" vertex2=\"PmtShape_v" << corner[b] << "0x55d0c8f1a0" << b
         << "\" vertex3=\"PmtShape_v" << corner[c] << "0x55d0c8f1a0" << c << "\"/>\n";
    }
  }
  os << "    </tessellated>\n    <opticalsurface finish=\"0\" model=\"0\" "
        "name=\"Cathode0x55d0c8e800\" type=\"0\" value=\"1\">\n"
        "      <property name=\"EFFICIENCY\" ref=\"EFFICIENCY0x55d0c8e5f0\"/>\n"
        "      <property name=\"REFLECTIVITY\" ref=\"REFLECTIVITY0x55d0c8e700\"/>\n"
        "    </opticalsurface>\n  </solids>\n\n  <structure>\n"
        "    <volume name=\"Pmt0x55d0c8f900\">\n"
        "      <materialref ref=\"G4_WATER0x55d0c8b3d0\"/>\n"
        "      <solidref ref=\"PmtShape0x55d0c8d5f0\"/>\n"
        "      <auxiliary auxtype=\"SensDet\" auxvalue=\"PmtSD\"/>\n    </volume>\n"
        "    <volume name=\"World0x55d0c8fa10\">\n"
        "      <materialref ref=\"G4_WATER0x55d0c8b3d0\"/>\n"
        "      <solidref ref=\"World0x55d0c8c4e0\"/>\n";
  const double r = 30000, golden = std::numbers::pi * (3 - std::sqrt(5.0));
  for (int i = 0; i < pmts; ++i) {
    const double z = 1 - (2.0 * i + 1) / pmts, rho = std::sqrt(1 - z * z), phi = golden * i;
    char buf[600];
    std::snprintf(buf, sizeof buf,
                  "      <physvol copynumber=\"%d\" name=\"Pmt_PV0x55d0%07x\">\n"
                  "        <volumeref ref=\"Pmt0x55d0c8f900\"/>\n"
                  "        <position name=\"Pmt_PV0x55d0%07x_pos\" unit=\"mm\" x=\"%.9g\" "
                  "y=\"%.9g\" z=\"%.9g\"/>\n"
                  "        <rotation name=\"Pmt_PV0x55d0%07x_rot\" unit=\"deg\" x=\"%.9g\" "
                  "y=\"%.9g\" z=\"0\"/>\n      </physvol>\n",
                  i, i, i, r * rho * std::cos(phi), r * rho * std::sin(phi), r * z, i,
                  std::atan2(rho * std::sin(phi), z) * 180 / std::numbers::pi,
                  -std::asin(rho * std::cos(phi)) * 180 / std::numbers::pi);
    os << buf;
  }
  os << "    </volume>\n    <skinsurface name=\"CathodeSkin0x55d0c8fb20\" "
        "surfaceproperty=\"Cathode0x55d0c8e800\">\n      <volumeref ref=\"Pmt0x55d0c8f900\"/>\n"
        "    </skinsurface>\n  </structure>\n\n  <setup name=\"Default\" version=\"1.0\">\n"
        "    <world ref=\"World0x55d0c8fa10\"/>\n  </setup>\n\n</gdml>\n";
  return os.str();
}

TEST_F(GdmlFiles, AGeant4WrittenFileOf200kLinesLoadsInSeconds) {
  const std::string text = geant4_style_file(40000);
  const auto lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_GT(lines, 200000);
  const fs::path p = write("big.gdml", text);
  const auto t0 = std::chrono::steady_clock::now();
  const Detector d = Detector::load_gdml(p, {});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "[ timing ] %ld-line GDML file (40000 PMT placements, %zu triangles) loaded in "
      "%.2f s\n",
      static_cast<long>(lines), static_cast<std::size_t>(d.geometry().triangle_count()), s);
  RecordProperty("load_seconds", std::to_string(s));
  ASSERT_EQ(d.geometry().channels().size(), 40000u);
  EXPECT_EQ(d.geometry().channels()[123].copy_number, 123);
  // Each PMT faces the centre: its placement's +z axis points outward along
  // the position (the rotation sends +z to the radial direction).
  for (std::size_t i : {0u, 777u, 39999u}) {
    const auto& c = d.geometry().channels()[i];
    EXPECT_NEAR(dot(c.direction, normalize(c.position)), 1, 1e-4) << i;
  }
  EXPECT_LT(s, 30.0);  // seconds in a release build; generous for sanitizer builds
}

}  // namespace
}  // namespace acheron::optics
