// Detector description files: parsing, errors, the default detector, checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "acheron/core/Error.hh"
#include "acheron/optics/Bench.hh"
#include "acheron/optics/Detector.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/Tables.hh"

namespace acheron::optics {
namespace {

const char* kMaterials = R"(
[[material]]
name = "water"
refractive_index = [[300, 1.35], [600, 1.33]]
absorption_length = 1e7
scattering_length = 1e7

[[material]]
name = "vacuum"
refractive_index = 1.0
absorption_length = 1e6
scattering_length = 1e6

[[surface]]
name = "cathode"
detect = 1.0

[[surface]]
name = "black"
absorb = 1.0
)";

std::string with(const std::string& solids) {
  return std::string(kMaterials) + solids;
}

std::string message_of(const std::string& toml) {
  try {
    Detector::parse(toml, "test.toml");
  } catch (const SetupError& e) {
    return e.what();
  }
  return "no error";
}

TEST(DetectorFile, ReadsSolidsPmtsAndSettings) {
  // Top-level keys come before the first [[table]] in TOML.
  auto d = Detector::parse(std::string(R"(
name = "two boxes"
[settings]
max_steps = 50
timing = "group"
chroma_compat = true
)") + with(R"(
[[solid]]
name = "tank"
shape = "box"
size = [1000, 1000, 1000]
inner = "water"
outer = "vacuum"
surface = "black"

[[solid]]
name = "pmt"
shape = "sphere"
radius = 50
segments = 12
position = [0, 0, 300]
inner = "vacuum"
outer = "water"
surface = "cathode"
pmt = true
channel_type = 3
)"),
                           "test.toml");
  EXPECT_EQ(d.name(), "two boxes");
  EXPECT_EQ(d.settings().max_steps, 50u);
  EXPECT_EQ(d.settings().timing, TimingMode::group);
  EXPECT_TRUE(d.settings().chroma_compat);
  ASSERT_EQ(d.geometry().channels().size(), 1u);
  EXPECT_EQ(d.geometry().channels()[0].type, 3);
  EXPECT_EQ(d.geometry().channels()[0].position.z, 300.f);
  ParamsView v = d.params(42);
  EXPECT_EQ(v.seed, 42u);
  EXPECT_EQ(v.max_steps, 50u);
  EXPECT_EQ(v.n_materials, 2u);
  EXPECT_EQ(v.n_solids, 2u);
  EXPECT_TRUE(d.check().empty());
  EXPECT_NE(d.summary().find("channels   1"), std::string::npos);
}

TEST(DetectorFile, ErrorsNameTheKeyAndLine) {
  std::string m =
      message_of(with("[[solid]]\nshape = \"sphere\"\nradius = 5\ninner = \"wter\"\n"
                      "outer = \"water\"\n"));
  EXPECT_NE(m.find("unknown material 'wter'"), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:"), std::string::npos) << m;
  m =
      message_of(with("[[solid]]\nshape = \"sphere\"\nradius = 5\ninner = \"water\"\n"
                      "outer = \"water\"\ncolour = \"red\"\n"));
  EXPECT_NE(m.find("solid[0].colour"), std::string::npos) << m;
  m = message_of(with("[[solid]]\nshape = \"cone\"\ninner = \"water\"\nouter = \"water\"\n"));
  EXPECT_NE(m.find("use sphere, cylinder, box, pmt, pmt_model or mesh"), std::string::npos) << m;
  m =
      message_of(with("[[solid]]\nshape = \"sphere\"\nradius = -1\ninner = \"water\"\n"
                      "outer = \"water\"\n"));
  EXPECT_NE(m.find("must be > 0"), std::string::npos) << m;
  m =
      message_of(with("[[solid]]\nshape = \"sphere\"\nradius = 5\ninner = \"water\"\n"
                      "outer = \"water\"\nsurface = \"chrome\"\n"));
  EXPECT_NE(m.find("unknown surface 'chrome'"), std::string::npos) << m;
  m = message_of("[[material]]\nname = \"x\"\nrefractive_index = [[1, 2, 3]]\n");
  EXPECT_NE(m.find("[x, value] pairs"), std::string::npos) << m;
  m = message_of("[settings]\ntiming = \"fast\"\n" +
                 with("[[solid]]\nshape = \"sphere\"\nradius = 5\ninner = \"water\"\n"
                      "outer = \"water\"\n"));
  EXPECT_NE(m.find("phase or group"), std::string::npos) << m;
  m = message_of("name = ");
  EXPECT_NE(m.find("not valid TOML"), std::string::npos) << m;
  m = message_of(kMaterials);
  EXPECT_NE(m.find("no [[solid]]"), std::string::npos) << m;
  EXPECT_THROW(Detector::load("/nonexistent/detector.toml"), SetupError);
}

// A small bulb: a sphere of radius 50 mm at 10-degree steps, 2 mm glass.
std::string bulb_model(const std::string& extra = "", const std::string& thickness = "2",
                       const std::string& cut = "0") {
  std::string profile = "[";
  for (int i = 0; i <= 18; ++i) {
    const double a = i * 10 * 3.14159265358979 / 180;
    profile += (i ? ", [" : "[") + std::to_string(i == 0 || i == 18 ? 0.0 : 50 * std::sin(a)) +
               ", " + std::to_string(50 * std::cos(a)) + "]";
  }
  return R"(
[[material]]
name = "glass"
refractive_index = 1.5
absorption_length = 1e6
scattering_length = 1e6
[[pmt_model]]
name = "bulb"
profile = )" +
         profile + "]\nglass_thickness = " + thickness + "\nphotocathode_cut = " + cut + R"(
segments = 16
glass = "glass"
vacuum = "vacuum"
medium = "water"
photocathode = "cathode"
)" + extra;
}

const char* kTank = R"(
[[solid]]
name = "tank"
shape = "sphere"
radius = 1000
inner = "water"
outer = "vacuum"
surface = "black"
)";

TEST(DetectorFile, PmtModelsAreSharedBySolidsAndArrays) {
  const std::string toml = with(bulb_model() + kTank + R"(
[[solid]]
name = "lone"
shape = "pmt_model"
model = "bulb"
pmt = true
channel_type = 7
position = [0, 0, 300]
rotation = [180, 0, 0]
[[pmt_array]]
name = "ring"
shape = "pmt_model"
model = "bulb"
layout = "list"
positions = [[400, 0, 0], [-400, 0, 0]]
)");
  auto d = Detector::parse(toml, "t.toml");
  const auto& g = d.geometry();
  ASSERT_EQ(g.channels().size(), 3u);
  EXPECT_EQ(g.channels()[0].type, 7);
  EXPECT_EQ(g.channels()[0].position.z, 300.f);
  EXPECT_EQ(g.prototypes().size(), 1u);  // one mesh for the three PMTs
  EXPECT_EQ(g.instances().size(), 3u);
  const auto& proto = g.prototypes()[0];
  EXPECT_EQ(proto.name, "bulb");
  EXPECT_EQ(g.triangle_count(), g.triangles().size() + 3 * proto.triangle_count);
  // No back surface given: the inner back absorbs.
  ASSERT_TRUE(d.tables().find_surface("pmt_back_absorber"));
  // Per part: the glass envelope, the photocathode and the back inside.
  const auto glass = *d.tables().find_material("glass");
  const auto vacuum = *d.tables().find_material("vacuum");
  const auto water = *d.tables().find_material("water");
  std::size_t cathode = 0, back = 0, envelope = 0;
  for (std::uint32_t i = 0; i < proto.triangle_count; ++i) {
    const TriangleData& t = g.prototype_triangle_data()[proto.first_triangle + i];
    if (t.inner_material == glass) {
      ++envelope;
      EXPECT_EQ(t.outer_material, water);
      EXPECT_EQ(t.surface, -1);
    } else {
      EXPECT_EQ(t.inner_material, vacuum);
      EXPECT_EQ(t.outer_material, glass);
      (t.surface == int(*d.tables().find_surface("cathode")) ? cathode : back) += 1;
    }
  }
  EXPECT_GT(envelope, 0u);
  EXPECT_GT(cathode, 0u);
  EXPECT_GT(back, 0u);
  EXPECT_TRUE(d.check().empty());
  // Flattened, the same detector has the same triangles and channels.
  auto f = Detector::parse("[settings]\ninstancing = false\n" + toml, "t.toml");
  EXPECT_TRUE(f.geometry().instances().empty());
  EXPECT_EQ(f.geometry().triangle_count(), g.triangle_count());
  EXPECT_EQ(f.geometry().channels().size(), 3u);
  EXPECT_TRUE(f.check().empty());
}

TEST(DetectorFile, PmtModelErrors) {
  const std::string array = R"(
[[pmt_array]]
shape = "pmt_model"
model = "bulb"
layout = "list"
positions = [[0, 0, 0]]
)";
  std::string m = message_of(
      with(bulb_model() + kTank + "[[solid]]\nshape = \"pmt_model\"\nmodel = \"r5912\"\n"));
  EXPECT_NE(m.find("unknown PMT model 'r5912'"), std::string::npos) << m;
  EXPECT_NE(m.find("t.toml:") == std::string::npos ? m.find("test.toml:") : 0, std::string::npos)
      << m;
  m = message_of(with(bulb_model() + kTank +
                      "[[solid]]\nshape = \"pmt_model\"\nmodel = \"bulb\"\ninner = \"water\"\n"));
  EXPECT_NE(m.find("is set by the [[pmt_model]]"), std::string::npos) << m;
  m = message_of(
      with(bulb_model() + "[[pmt_model]]\nname = \"bulb\"\nprofile = [[0, 1]]\n" + kTank));
  EXPECT_NE(m.find("repeats PMT model 'bulb'"), std::string::npos) << m;
  m = message_of(with(bulb_model("", "80") + kTank + array));
  EXPECT_NE(m.find("make the glass thinner"), std::string::npos) << m;
  EXPECT_NE(m.find("PMT model 'bulb'"), std::string::npos) << m;
  m = message_of(with(bulb_model() + kTank +
                      "[[solid]]\nshape = \"sphere\"\nradius = 5\nmodel = \"bulb\"\n"
                      "inner = \"water\"\nouter = \"water\"\n"));
  EXPECT_NE(m.find("only for shape = \"pmt_model\""), std::string::npos) << m;
  m = message_of(with(bulb_model("", "2", "60") + kTank + array));
  EXPECT_NE(m.find("no photocathode"), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:"), std::string::npos) << m;
  m = message_of(with(bulb_model("back = \"chrome\"\n") + kTank + array));
  EXPECT_NE(m.find("unknown surface 'chrome'"), std::string::npos) << m;
  m = message_of(with(bulb_model("colour = \"red\"\n") + kTank + array));
  EXPECT_NE(m.find("colour"), std::string::npos) << m;
}

TEST(DetectorFile, MeshSolidsAreFoundNextToTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / "acheron_detector_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cube.obj") << "v -1 -1 -1\nv 1 -1 -1\nv -1 1 -1\nv 1 1 -1\n"
                                     "v -1 -1 1\nv 1 -1 1\nv -1 1 1\nv 1 1 1\n"
                                     "f 1 3 4 2\nf 5 6 8 7\nf 1 2 6 5\nf 3 7 8 4\nf 1 5 7 3\n"
                                     "f 2 4 8 6\n";
  std::ofstream(dir / "det.toml") << with(
      "[[solid]]\nshape = \"mesh\"\nfile = \"cube.obj\"\nscale = 10\ninner = \"water\"\n"
      "outer = \"vacuum\"\n");
  auto d = Detector::load(dir / "det.toml");
  auto [lo, hi] = d.geometry().bounds();
  EXPECT_EQ(hi.x, 10.f);
  EXPECT_EQ(lo.z, -10.f);
  EXPECT_TRUE(d.check().empty());
  // Drop one face: the check reports an open mesh.
  std::ofstream(dir / "cube.obj") << "v -1 -1 -1\nv 1 -1 -1\nv -1 1 -1\nv 1 1 -1\n"
                                     "v -1 -1 1\nv 1 -1 1\nv -1 1 1\nv 1 1 1\n"
                                     "f 1 3 4 2\nf 5 6 8 7\nf 1 2 6 5\nf 3 7 8 4\nf 1 5 7 3\n";
  auto open = Detector::load(dir / "det.toml");
  auto problems = open.check();
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("not closed"), std::string::npos) << problems[0];
  std::filesystem::remove_all(dir);
}

TEST(DetectorCheck, FindsInconsistentMaterialsAndOverlappingPmts) {
  // A ball inside the tank claims vacuum outside it, but the tank holds water.
  auto d = Detector::parse(with(R"(
[[solid]]
name = "tank"
shape = "sphere"
radius = 1000
inner = "water"
outer = "vacuum"
[[solid]]
name = "ball"
shape = "sphere"
radius = 100
inner = "water"
outer = "vacuum"
)"),
                           "t.toml");
  auto problems = d.check();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("solid 'ball'"), std::string::npos) << problems[0];

  auto o = Detector::parse(with(R"(
[[pmt_array]]
shape = "pmt"
aperture_radius = 100
inner = "vacuum"
outer = "water"
surfaces = ["cathode", "black"]
layout = "list"
positions = [[0, 0, 500], [50, 0, 500], [0, 0, -500]]
)"),
                           "t.toml");
  problems = o.check();
  int overlaps = 0;
  for (const auto& p : problems) overlaps += p.find("overlap") != std::string::npos;
  EXPECT_EQ(overlaps, 1);
  bool named = false;
  for (const auto& p : problems)
    named |= p.find("'pmt_0' and 'pmt_1' overlap") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(DefaultDetector, HasThirtyPercentCoverageAndPassesItsChecks) {
  auto d = Detector::default_detector();
  EXPECT_EQ(d.geometry().channels().size(), 400u);
  EXPECT_TRUE(d.check().empty());
  // Coverage from the placed geometry: N pi a^2 / (4 pi R^2) with the array
  // radius and the photocathode's rim radius a = 111 mm.
  const float r = norm(d.geometry().channels()[0].position);
  const double coverage = 400 * 111.0 * 111.0 / (4 * r * r);
  EXPECT_NEAR(coverage, 0.30, 1e-3);
  // Every PMT faces the centre: the dome apex is nearer the centre than its rim.
  for (const auto& ch : d.geometry().channels()) EXPECT_NEAR(norm(ch.position), r, 1e-2);
  // The water tables came through: n(400 nm) = 1.339 (Hale & Querry).
  ParamsView v = d.params(0);
  EXPECT_NEAR(v.materials[0].refractive_index[(400 - 60) / 5], 1.339f, 1e-6);
}

TEST(DefaultDetector, ScalesToTheBenchmarkSize) {
  DefaultDetectorOptions o;
  o.pmts = 29000;
  o.pmt_segments = 8;
  auto d = Detector::default_detector(o);
  EXPECT_EQ(d.geometry().channels().size(), 29000u);
}

}  // namespace
}  // namespace acheron::optics

namespace acheron::optics {
namespace {

// Photons travel at the group velocity unless a detector asks for the phase
// velocity (Geant4 and RAT time photons at the group velocity): over 19.7 m of
// the default water at 400 nm the two differ by about 1.5 ns.
TEST(DefaultDetector, TimesPhotonsAtTheGroupVelocity) {
  const Detector d = Detector::default_detector();
  EXPECT_EQ(d.settings().timing, TimingMode::group);
  const Detector bare = Detector::parse(
      "name = \"x\"\n[[material]]\nname = \"w\"\nrefractive_index = 1.33\n"
      "absorption_length = 1e6\nscattering_length = 1e6\n"
      "[[solid]]\nname = \"s\"\nshape = \"sphere\"\nradius = 10\ninner = \"w\"\nouter = \"w\"\n",
      "bare.toml");
  EXPECT_EQ(bare.settings().timing, TimingMode::group);
  const auto water = d.tables().find_material("water");
  ASSERT_TRUE(water.has_value());
  const MaterialData& m = d.tables().materials()[*water];
  const GridPoint g = wavelength_grid_point(400.f);
  const double n = lookup(m.refractive_index, g);
  const double t_phase = 19700 * n / kSpeedOfLight;
  const double t_group = 19700 / lookup(m.group_velocity, g);
  EXPECT_NEAR(n, 1.339, 0.002);
  EXPECT_NEAR(t_group - t_phase, 1.5, 0.3) << "group index " << kSpeedOfLight * t_group / 19700;
}

}  // namespace
}  // namespace acheron::optics

namespace acheron::optics {
namespace {

// A scintillator-like material whose components carry each form of
// reemission time profile, and a WLS surface with its own delay.
std::string reemission_detector(const std::string& component_keys,
                                const std::string& surface_keys = "") {
  return std::string(R"(
[[material]]
name = "lar"
refractive_index = 1.23
absorption_length = 1000
scattering_length = 1e6
  [[material.component]]
  absorption_length = 1000
  reemission_prob = 1
  spectrum = [[120, 0], [128, 1], [136, 0]]
)") + component_keys +
         R"(
[[surface]]
name = "tpb"
model = "wls"
absorb = 1
reemit = 1
reemission_spectrum = [[400, 0], [430, 1], [500, 0]]
)" + surface_keys +
         R"(
[[solid]]
name = "s"
shape = "sphere"
radius = 10
inner = "lar"
outer = "lar"
surface = "tpb"
)";
}

const TimeProfileData& first_component_time(const Detector& d) {
  return d.tables().components()[d.tables().materials()[0].component_begin].time;
}

// The time keys: time_constant (one exponential, kept exact however long:
// 1.6 us is not cut at 1 us), time_constants with weights (normalised) and a
// rise_time (or a per-row rise), time_cdf kept at its own points out to 10
// us, time_profile (a density, integrated), time_delay (added, or alone);
// the same keys on a WLS surface.
TEST(DetectorFile, ReadsReemissionTimeProfiles) {
  {
    const Detector d = Detector::parse(
        reemission_detector("time_constant = 1600\n", "time_constant = 2.5\n"), "t.toml");
    const TimeProfileData& t = first_component_time(d);
    ASSERT_EQ(t.n_exponentials, 1u);
    EXPECT_EQ(t.exponentials[1], 1600.f);
    EXPECT_EQ(t.exponentials[2], 0.f);
    const TimeProfileData& s = d.tables().surfaces()[0].reemission_time;
    ASSERT_EQ(s.n_exponentials, 1u);
    EXPECT_EQ(s.exponentials[1], 2.5f);
  }
  {
    const Detector d = Detector::parse(
        reemission_detector("time_constants = [[6, 3], [1600, 7, 0.5]]\nrise_time = 1.5\n"),
        "t.toml");
    const TimeProfileData& t = first_component_time(d);
    ASSERT_EQ(t.n_exponentials, 2u);
    EXPECT_FLOAT_EQ(t.exponentials[0], 0.3f);
    EXPECT_EQ(t.exponentials[1], 6.f);
    EXPECT_FLOAT_EQ(t.exponentials[2], 6 * 1.5f / 7.5f);  // rise_time: the second mean
    EXPECT_EQ(t.exponentials[3], 1.f);
    EXPECT_EQ(t.exponentials[4], 1600.f);
    EXPECT_FLOAT_EQ(t.exponentials[5], static_cast<float>(1600 * 0.5 / 1600.5));  // own rise
    EXPECT_EQ(d.tables().surfaces()[0].reemission_time.n_exponentials, 0u);       // none given
  }
  {
    const Detector d = Detector::parse(
        reemission_detector(
            "time_cdf = [[0, 0], [100, 0.2], [1000, 0.5], [10000, 1]]\ntime_delay = 2\n",
            "time_delay = 3\n"),
        "t.toml");
    const TimeProfileData& t = first_component_time(d);
    ASSERT_EQ(t.n_points, 4u);
    EXPECT_EQ(t.times[3], 10000.f);
    EXPECT_EQ(t.cdf[2], 0.5f);
    EXPECT_EQ(t.delay, 2.f);
    EXPECT_EQ(d.tables().surfaces()[0].reemission_time.delay, 3.f);
  }
  {
    const Detector d = Detector::parse(
        reemission_detector("time_profile = [[0, 1], [10, 1], [30, 0]]\n"), "t.toml");
    const TimeProfileData& t = first_component_time(d);
    ASSERT_EQ(t.n_points, 3u);
    EXPECT_FLOAT_EQ(t.cdf[1], 0.5f);  // areas 10 and 10
  }
  {
    const Detector d = Detector::parse(reemission_detector("time_delay = 0\n"), "t.toml");
    const TimeProfileData& t = first_component_time(d);
    EXPECT_EQ(t.delay, 0.f);
    EXPECT_EQ(t.n_exponentials + t.n_points, 0u);
  }
}

TEST(DetectorFile, ReemissionTimeErrorsNameTheKey) {
  const auto error = [](const std::string& component, const std::string& surface = "") {
    return message_of(reemission_detector(component, surface));
  };
  EXPECT_NE(error("").find("has no reemission time profile"), std::string::npos) << error("");
  const std::string both = error("time_constant = 5\ntime_cdf = [[0, 0], [1, 1]]\n");
  EXPECT_NE(both.find("time_cdf is given together with time_constant"), std::string::npos) << both;
  const std::string rise = error("time_cdf = [[0, 0], [1, 1]]\nrise_time = 2\n");
  EXPECT_NE(rise.find("rise_time is given without"), std::string::npos) << rise;
  const std::string row = error("time_constants = [[6]]\n");
  EXPECT_NE(row.find("time_constants rows must be"), std::string::npos) << row;
  const std::string weight = error("time_constants = [[6, 0]]\n");
  EXPECT_NE(weight.find("weight <= 0"), std::string::npos) << weight;
  const std::string tau = error("time_constant = -1\n");
  EXPECT_NE(tau.find("time_constant must be > 0"), std::string::npos) << tau;
  const std::string delay = error("time_delay = -1\n");
  EXPECT_NE(delay.find("time_delay must be >= 0"), std::string::npos) << delay;
  const std::string far = error("time_cdf = [[0, 0], [2e9, 1]]\n");
  EXPECT_NE(far.find("material 'lar' reemission component 0: a time_cdf point is 2e+09 ns"),
            std::string::npos)
      << far;
  const std::string line = error("time_constant = 5\n");
  EXPECT_EQ(line, "no error");
  // Time keys belong to WLS surfaces only.
  std::string text = reemission_detector("time_constant = 5\n", "time_constant = 2\n");
  text.replace(text.find("model = \"wls\""), 13, "model = \"default\"");
  const std::string model = message_of(text);
  EXPECT_NE(model.find("time_constant is a reemission time key but the model is not wls"),
            std::string::npos)
      << model;
}

TEST(DetectorCheck, ReportsProgressThroughEveryStageUpToTheTotal) {
  DefaultDetectorOptions o;
  o.pmts = 300;
  const auto d = Detector::default_detector(o);
  std::vector<std::string> stages;
  std::uint64_t last = 0, total = 0, calls = 0;
  bool monotonic = true;
  const auto problems = d.check([&](std::string_view stage, std::uint64_t done, std::uint64_t all) {
    if (stages.empty() || stages.back() != stage) stages.emplace_back(stage);
    monotonic = monotonic && done >= last && done <= all && (total == 0 || all == total);
    last = done;
    total = all;
    ++calls;
  });
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(stages, (std::vector<std::string>{"meshes", "scene", "materials", "overlaps"}));
  EXPECT_TRUE(monotonic);
  // Each solid once for its materials, each channel once for overlaps, the
  // meshes of the solids that are not instances and of the prototypes.
  const auto& g = d.geometry();
  EXPECT_GE(total, g.solids().size() + g.channels().size());
  EXPECT_EQ(last, total);
  // Throttled to about one call per 64 solids, not one per solid.
  EXPECT_LT(calls, total / 16);
  EXPECT_GT(calls, total / 128);
}

TEST(Bench, ReportsEachTimedLoopAndEndsAtTheTotal) {
  DefaultDetectorOptions d;
  d.pmts = 20;
  BenchOptions o;
  o.photons = 200;
  o.threads = 2;
  o.repeats = 2;
  o.ray_sample = 100;
  o.step_history = 2;
  std::vector<std::pair<std::string, std::uint64_t>> calls;
  std::uint64_t total = 0;
  o.on_progress = [&](std::string_view phase, std::uint64_t done, std::uint64_t all) {
    calls.emplace_back(std::string(phase), done);
    total = all;
  };
  const auto report = run_bench(std::make_shared<const Detector>(Detector::default_detector(d)), o);
  EXPECT_EQ(report.photons, 200u);
  // Two rounds of three loops, each announced with the photons before it.
  const std::vector<std::pair<std::string, std::uint64_t>> expected = {
      {"1 thread", 0},    {"2 threads", 200},     {"step history", 400}, {"1 thread", 600},
      {"2 threads", 800}, {"step history", 1000}, {"done", 1200}};
  EXPECT_EQ(calls, expected);
  EXPECT_EQ(total, 1200u);
}

TEST(GdmlLoad, ReportsTheMeshingOfEachDistinctSolid) {
  GdmlOptions o;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  o.on_mesh_progress = [&](std::uint64_t done, std::uint64_t total) {
    calls.emplace_back(done, total);
  };
  const auto d = Detector::load_gdml("test/data/gdml/optics.gdml", o);
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls.front().first, 0u);
  const std::uint64_t total = calls.front().second;
  EXPECT_GT(total, 0u);
  EXPECT_LE(total, d.geometry().solids().size());
  for (std::size_t i = 1; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].first, i);  // one call per solid meshed
    EXPECT_EQ(calls[i].second, total);
  }
  EXPECT_EQ(calls.back().first, total);
}

}  // namespace
}  // namespace acheron::optics
