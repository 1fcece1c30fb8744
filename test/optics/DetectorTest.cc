// Detector description files: parsing, errors, the default detector, checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "acheron/core/Error.hh"
#include "acheron/optics/Detector.hh"

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
