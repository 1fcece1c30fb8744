#include "acheron/optics/Tables.hh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "OpticsTestSupport.hh"
#include "acheron/core/Error.hh"
#include "acheron/optics/OpticsTables.hh"
#include "acheron/optics/Reemission.hh"

namespace acheron::optics {
namespace {

using testing::constant_material;

TEST(Resample, ConstantUnsetAndPairs) {
  EXPECT_EQ(resample(Property{}, 0, 1, 3), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(resample(Property::constant(2.5), 0, 1, 3), (std::vector<double>{2.5, 2.5, 2.5}));
  // Linear between points, end values outside the input range.
  const auto p = Property::table({{1.0, 10.0}, {3.0, 30.0}});
  EXPECT_EQ(resample(p, 0, 1, 5), (std::vector<double>{10, 10, 20, 30, 30}));
  const auto q = Property::table(std::vector<double>{1.0, 3.0}, std::vector<double>{10.0, 30.0});
  EXPECT_EQ(resample(q, 0, 1, 5), resample(p, 0, 1, 5));
  EXPECT_THROW(Property::table(std::vector<double>{1.0}, std::vector<double>{1.0, 2.0}),
               SetupError);
}

TEST(WavelengthLookup, InterpolatesAndClamps) {
  std::vector<float> table(kWavelengthPoints);
  for (int i = 0; i < kWavelengthPoints; ++i) table[i] = 2.0f * (60.0f + 5.0f * i);  // 2 lambda
  EXPECT_FLOAT_EQ(interpolate_wavelength(table.data(), 60.0f), 120.0f);
  EXPECT_FLOAT_EQ(interpolate_wavelength(table.data(), 402.5f), 805.0f);
  EXPECT_FLOAT_EQ(interpolate_wavelength(table.data(), 995.0f), 1990.0f);
  EXPECT_FLOAT_EQ(interpolate_wavelength(table.data(), 10.0f), 120.0f);     // clamped below
  EXPECT_FLOAT_EQ(interpolate_wavelength(table.data(), 2000.0f), 1990.0f);  // clamped above
  EXPECT_FLOAT_EQ(interpolate_wavelength(table.data(), std::nanf("")), 120.0f);
  EXPECT_TRUE(wavelength_in_range(60.0f));
  EXPECT_TRUE(wavelength_in_range(995.0f));
  EXPECT_FALSE(wavelength_in_range(59.9f));
  EXPECT_FALSE(wavelength_in_range(995.1f));
  EXPECT_FALSE(wavelength_in_range(std::nanf("")));
}

// The spec's bisection: neighbours lo < hi with cdf[lo] <= u < cdf[hi], then
// linear inside the cell; flat stretches of the CDF are never returned.
TEST(SampleCdf, BisectsAndInterpolates) {
  const float cdf[5] = {0.0f, 0.1f, 0.1f, 0.6f, 1.0f};
  EXPECT_FLOAT_EQ(sample_cdf(cdf, 5, 0, 1, 0.05f), 0.5f);
  EXPECT_FLOAT_EQ(sample_cdf(cdf, 5, 0, 1, 0.1f), 2.0f);
  EXPECT_FLOAT_EQ(sample_cdf(cdf, 5, 0, 1, 0.35f), 2.5f);
  EXPECT_FLOAT_EQ(sample_cdf(cdf, 5, 10, 2, 0.35f), 15.0f);
  EXPECT_NEAR(sample_cdf(cdf, 5, 0, 1, 0.999f), 3.9975f, 1e-5f);
  EXPECT_FLOAT_EQ(sample_cdf(cdf, 5, 0, 1, 1.0f), 4.0f);  // at/above the last value: last point
  const float short_cdf[3] = {0.0f, 0.5f, 0.9999995f};
  EXPECT_FLOAT_EQ(sample_cdf(short_cdf, 3, 0, 1, 0.9999999f), 2.0f);
}

// Uneven points: bisect on the CDF values, linear in x between the
// neighbours; below the first value the first x, at or above the last the
// last x; flat stretches are never returned.
TEST(SamplePoints, BisectsOnUnevenPoints) {
  const float x[5] = {0.0f, 100.0f, 1000.0f, 5000.0f, 10000.0f};
  const float cdf[5] = {0.0f, 0.2f, 0.2f, 0.9f, 1.0f};
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 5, 0.1f), 50.0f);
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 5, 0.2f), 1000.0f);
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 5, 0.55f), 3000.0f);
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 5, 0.95f), 7500.0f);
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 5, 1.0f), 10000.0f);
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 2, 0.1f), 50.0f);
  EXPECT_FLOAT_EQ(sample_points(x, cdf, 2, 0.5f), 100.0f);
}

// The energy-conserving draw maps u onto [F(absorbed), F(995 nm)) of the
// continuous CDF: u -> 0 gives the absorbed wavelength itself, not the grid
// point below it. Over 4,000 absorbed wavelengths between grid points and
// the extreme draws (2^-24, 0.5, 1 - 2^-24) no result is below the absorbed
// wavelength. Absorbed below the spectrum the draw equals Chroma's for the
// same u; above it there is nothing to draw.
TEST(SampleReemissionWavelength, NeverBelowTheAbsorbedWavelength) {
  std::vector<float> cdf(kWavelengthPoints);
  for (int i = 0; i < kWavelengthPoints; ++i) {
    const double x = 60 + 5.0 * i;
    cdf[i] = static_cast<float>(std::clamp((x - 400) / 300, 0.0, 1.0));  // uniform 400..700 nm
  }
  float out = 0;
  ASSERT_TRUE(sample_reemission_wavelength(cdf.data(), 512.5f, true, 0x1p-24f, out));
  EXPECT_NEAR(out, 512.5f, 1e-3f);
  ASSERT_TRUE(sample_reemission_wavelength(cdf.data(), 512.5f, true, 0.5f, out));
  EXPECT_NEAR(out, (512.5f + 700) / 2, 1e-3f);
  for (int i = 0; i < 4000; ++i) {
    const float absorbed = 400.0f + 0.0749f * static_cast<float>(i);
    for (const float u : {0x1p-24f, 0.5f, 1 - 0x1p-24f}) {
      ASSERT_TRUE(sample_reemission_wavelength(cdf.data(), absorbed, true, u, out)) << absorbed;
      ASSERT_GE(out, absorbed) << u;
      ASSERT_LE(out, 700.0f);
    }
  }
  float chroma = 0;
  for (const float u : {0.1f, 0.5f, 0.9f}) {
    ASSERT_TRUE(sample_reemission_wavelength(cdf.data(), 300.0f, true, u, out));
    ASSERT_TRUE(sample_reemission_wavelength(cdf.data(), 300.0f, false, u, chroma));
    EXPECT_EQ(out, chroma);
    ASSERT_TRUE(sample_reemission_wavelength(cdf.data(), 600.0f, false, u, chroma));
    EXPECT_NEAR(chroma, 400 + 300 * u, 1e-3f);  // Chroma: the whole spectrum
  }
  EXPECT_FALSE(sample_reemission_wavelength(cdf.data(), 700.0f, true, 0.5f, out));
  EXPECT_FALSE(sample_reemission_wavelength(cdf.data(), 850.0f, true, 0.5f, out));
}

// n = a + b ln(lambda) has dn/dln(lambda) = b on every interval, so Geant4's
// group index is (the point's or midpoint's n) - b, placed at the first
// point, at every midpoint but the last, and at the last point (in photon
// energy order, i.e. from the longest wavelength).
TEST(GroupVelocity, FromTheUsersOwnPointsAsGeant4DerivesIt) {
  const double a = 1.2, b = -0.02;
  const std::vector<double> lambda{300, 350, 400, 500, 600};
  std::vector<std::pair<double, double>> pts;
  for (double l : lambda) pts.emplace_back(l, a + b * std::log(l));
  const Property v = group_velocity_from_index(Property::table(pts));
  ASSERT_EQ(v.kind, Property::Kind::table);
  const double c = kSpeedOfLight;
  const auto n = [&](double l) { return a + b * std::log(l); };
  // Midpoints in energy: wavelength 2/(1/l0 + 1/l1).
  const auto mid = [](double l0, double l1) { return 2 / (1 / l0 + 1 / l1); };
  const std::vector<std::pair<double, double>> expected{
      {300, c / (n(300) - b)},
      {mid(350, 400), c / ((n(350) + n(400)) / 2 - b)},
      {mid(400, 500), c / ((n(400) + n(500)) / 2 - b)},
      {mid(500, 600), c / ((n(500) + n(600)) / 2 - b)},
      {600, c / (n(600) - b)}};
  ASSERT_EQ(v.points.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(v.points[i].first, expected[i].first, 1e-9) << i;
    EXPECT_NEAR(v.points[i].second, expected[i].second, 1e-9) << i;
  }
}

TEST(GroupVelocity, ConstantAndAnomalousDispersionFallBackToThePhaseVelocity) {
  const Property flat = group_velocity_from_index(Property::constant(1.33));
  ASSERT_EQ(flat.kind, Property::Kind::constant);
  EXPECT_NEAR(flat.value, kSpeedOfLight / 1.33, 1e-9);
  // n rising with wavelength: c/n at every point, like Geant4.
  const Property v = group_velocity_from_index(Property::table({{300, 1.3}, {400, 1.4}}));
  ASSERT_EQ(v.points.size(), 2u);
  EXPECT_NEAR(v.points[0].second, kSpeedOfLight / 1.3, 1e-9);
  EXPECT_NEAR(v.points[1].second, kSpeedOfLight / 1.4, 1e-9);
  EXPECT_THROW(group_velocity_from_index(Property{}), SetupError);
}

// A material's GROUPVEL, when given, is used as given; otherwise the table
// is the one derived from the index (on the 5 nm grid).
TEST(GroupVelocity, GivenTableWinsOverTheDerivedOne) {
  OpticsInput in;
  MaterialInput m = constant_material("glass", 1.5, 1000, 1000);
  m.refractive_index = Property::table({{300, 1.52}, {600, 1.48}});
  in.materials.push_back(m);
  m.name = "glass_groupvel";
  m.group_velocity = Property::constant(150);
  in.materials.push_back(m);
  const OpticsTables t(in);
  const ParamsView view = t.params_view();
  const GridPoint g = wavelength_grid_point(450.f);
  EXPECT_NEAR(lookup(view.materials[1].group_velocity, g), 150.f, 1e-4f);
  const Property derived = group_velocity_from_index(m.refractive_index);
  ASSERT_EQ(derived.points.size(), 2u);  // 450 nm lies halfway between them
  EXPECT_NEAR(lookup(view.materials[0].group_velocity, g),
              (derived.points[0].second + derived.points[1].second) / 2, 1e-3);
  EXPECT_LT(lookup(view.materials[0].group_velocity, g), kSpeedOfLight / 1.5f);
}

OpticsInput sample_input() {
  OpticsInput in;
  in.materials.push_back(MaterialInput::vacuum());
  MaterialInput water = constant_material("water", 1.33, 1000, 500);
  water.refractive_index = Property::table({{200, 1.40}, {800, 1.30}});
  ReemissionComponentInput c;
  c.absorption_length = Property::constant(2000);
  c.reemission_prob = Property::constant(0.5);
  c.wavelength_cdf = Property::table({{400, 0}, {500, 1}});
  c.time_profile = TimeProfile::table(Property::table({{0, 0}, {10, 1}}));
  water.components.push_back(c);
  in.materials.push_back(water);
  SurfaceInput pmt;
  pmt.name = "pmt";
  pmt.detect = Property::table({{300, 0.1}, {500, 0.3}});
  pmt.absorb = Property::constant(0.5);
  in.surfaces.push_back(pmt);
  SurfaceInput mirror;
  mirror.name = "dichroic";
  mirror.model = SurfaceModel::dichroic;
  mirror.angles = {0.0, 0.5};
  mirror.reflect = {Property::constant(0.2), Property::constant(0.4)};
  mirror.transmit = {Property::constant(0.7), Property::constant(0.5)};
  in.surfaces.push_back(mirror);
  return in;
}

TEST(OpticsTables, BuildsViews) {
  const OpticsTables tables(sample_input());
  ASSERT_EQ(tables.n_materials(), 2u);
  ASSERT_EQ(tables.n_surfaces(), 2u);
  EXPECT_EQ(tables.find_material("water"), 1u);
  EXPECT_EQ(tables.find_surface("dichroic"), 1u);
  EXPECT_FALSE(tables.find_material("oil").has_value());
  EXPECT_EQ(tables.material_name(0), "vacuum");

  const ParamsView view = tables.params_view();
  ASSERT_EQ(view.n_materials, 2u);
  const MaterialData& vacuum = view.materials[0];
  EXPECT_EQ(interpolate_wavelength(vacuum.refractive_index, 400), 1.0f);
  EXPECT_EQ(interpolate_wavelength(vacuum.absorption_length, 400), 1e6f);
  EXPECT_EQ(vacuum.component_count, 0u);
  const MaterialData& water = view.materials[1];
  EXPECT_FLOAT_EQ(interpolate_wavelength(water.refractive_index, 500), 1.35f);
  EXPECT_FLOAT_EQ(interpolate_wavelength(water.refractive_index, 100), 1.40f);  // end value
  EXPECT_FLOAT_EQ(interpolate_wavelength(water.refractive_index, 900), 1.30f);  // end value
  // Geant4's group index from the two points: n - dn/dln(lambda) at each,
  // dn/dln(lambda) = -0.1 / ln 4; 500 nm is halfway between them.
  const double slope = -0.1 / std::log(4.0);
  EXPECT_NEAR(interpolate_wavelength(water.group_velocity, 500),
              (kSpeedOfLight / (1.4 - slope) + kSpeedOfLight / (1.3 - slope)) / 2, 1e-3);
  ASSERT_EQ(water.component_count, 1u);
  const ReemissionComponentData& c = view.components[water.component_begin];
  EXPECT_FLOAT_EQ(interpolate_wavelength(c.reemission_prob, 450), 0.5f);
  EXPECT_FLOAT_EQ(sample_wavelength_cdf(c.wavelength_cdf, 0.5f), 450.0f);
  // The time CDF is kept at its own points, with no grid.
  ASSERT_EQ(c.time.n_points, 2u);
  EXPECT_EQ(c.time.n_exponentials, 0u);
  EXPECT_EQ(c.time.delay, 0.0f);
  EXPECT_EQ(c.time.times[1], 10.0f);
  EXPECT_EQ(c.time.cdf[0], 0.0f);
  EXPECT_EQ(c.time.cdf[1], 1.0f);
  EXPECT_FLOAT_EQ(sample_points(c.time.times, c.time.cdf, c.time.n_points, 0.25f), 2.5f);

  const SurfaceData& pmt = view.surfaces[0];
  EXPECT_EQ(pmt.model, SurfaceModel::standard);
  EXPECT_FLOAT_EQ(interpolate_wavelength(pmt.detect, 400), 0.2f);
  EXPECT_EQ(interpolate_wavelength(pmt.reflect_specular, 400), 0.0f);  // unset reads 0
  const SurfaceData& dichroic = view.surfaces[1];
  ASSERT_EQ(dichroic.n_angles, 2u);
  EXPECT_FLOAT_EQ(dichroic.angles[1], 0.5f);
  EXPECT_FLOAT_EQ(dichroic.reflect[kWavelengthPoints + 10], 0.4f);
  EXPECT_FLOAT_EQ(dichroic.transmit[10], 0.7f);
  EXPECT_GT(tables.table_bytes(), 8 * kWavelengthPoints * sizeof(float));
}

// Time profiles are stored without a grid: exponential terms as cumulative
// normalised weight, decay and the rise's second time constant tau tau_r /
// (tau + tau_r); tables at the user's own points (here out to 10 us); a WLS
// surface's profile likewise, and none when unset.
TEST(OpticsTables, TimeProfilesAreStoredWithoutAGrid) {
  auto in = sample_input();
  auto& c = in.materials[1].components[0];
  c.time_profile = TimeProfile::mixture({TimeExponential{6, 3}, TimeExponential{1600, 7, 2}});
  c.time_profile.delay = 1.5;
  ReemissionComponentInput table = c;
  table.time_profile = TimeProfile::table(
      Property::table({{0, 0}, {100, 0.2}, {1000, 0.5}, {5000, 0.9}, {10000, 1}}));
  in.materials[1].components.push_back(table);
  SurfaceInput wls;
  wls.name = "wls";
  wls.model = SurfaceModel::wls;
  wls.reemission_cdf = Property::table({{400, 0}, {500, 1}});
  wls.reemission_time = TimeProfile::fixed(4);
  in.surfaces.push_back(wls);
  const OpticsTables tables(in);
  const ParamsView view = tables.params_view();
  const TimeProfileData& mixture = view.components[0].time;
  EXPECT_EQ(mixture.delay, 1.5f);
  ASSERT_EQ(mixture.n_exponentials, 2u);
  EXPECT_EQ(mixture.n_points, 0u);
  const float expected[6] = {0.3f, 6.f, 0.f, 1.f, 1600.f, static_cast<float>(1600.0 * 2 / 1602)};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(mixture.exponentials[i], expected[i]) << i;
  const TimeProfileData& points = view.components[1].time;
  EXPECT_EQ(points.n_exponentials, 0u);
  ASSERT_EQ(points.n_points, 5u);
  EXPECT_EQ(points.times[4], 10000.f);
  EXPECT_EQ(points.cdf[3], 0.9f);
  EXPECT_EQ(view.surfaces[2].reemission_time.delay, 4.f);
  EXPECT_EQ(view.surfaces[2].reemission_time.n_exponentials, 0u);
  EXPECT_EQ(view.surfaces[2].reemission_time.n_points, 0u);
  const TimeProfileData& none = view.surfaces[0].reemission_time;
  EXPECT_EQ(none.delay, 0.f);
  EXPECT_EQ(none.n_exponentials + none.n_points, 0u);
}

TEST(OpticsTables, ViewsSurviveAMove) {
  OpticsTables tables(sample_input());
  const ParamsView before = tables.params_view();
  const float* n = before.materials[1].refractive_index;
  const OpticsTables moved(std::move(tables));
  const ParamsView after = moved.params_view();
  EXPECT_EQ(after.materials, before.materials);
  EXPECT_EQ(after.materials[1].refractive_index, n);
  EXPECT_FLOAT_EQ(interpolate_wavelength(n, 500), 1.35f);
}

// Each load-time check throws SetupError naming the owner and the property.
void expect_setup_error(const OpticsInput& in, const std::vector<std::string>& fragments) {
  try {
    const OpticsTables tables(in);
    ADD_FAILURE() << "no SetupError";
  } catch (const SetupError& e) {
    const std::string what = e.what();
    for (const auto& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << what;
  }
}

TEST(OpticsTables, LoadTimeChecks) {
  {
    auto in = sample_input();
    in.materials[1].refractive_index = Property{};
    expect_setup_error(in, {"material 'water'", "refractive_index", "not set"});
  }
  {
    auto in = sample_input();
    in.materials[1].refractive_index = Property::table({{300, 1.3}, {400, 0.0}});
    expect_setup_error(in, {"material 'water'", "refractive_index", "400 nm"});
  }
  {
    auto in = sample_input();
    in.materials[1].absorption_length = Property::constant(0);
    expect_setup_error(in, {"material 'water'", "absorption_length", "> 0"});
  }
  {
    auto in = sample_input();
    in.materials[1].scattering_length = Property::constant(INFINITY);
    expect_setup_error(in, {"material 'water'", "scattering_length"});
  }
  {
    auto in = sample_input();
    in.materials[1].absorption_length = Property::table({{400, 1.0}, {300, 2.0}});
    expect_setup_error(in, {"material 'water'", "absorption_length", "ascending"});
  }
  {
    auto in = sample_input();
    in.materials.push_back(MaterialInput::vacuum("water"));
    expect_setup_error(in, {"material 'water'", "twice"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile = TimeProfile{};
    expect_setup_error(in, {"material 'water' reemission component 0", "time profile", "not set"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].wavelength_cdf =
        Property::table({{400, 0}, {450, 0.7}, {500, 0.6}});
    expect_setup_error(in, {"component 0", "wavelength_cdf", "non-decreasing"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].wavelength_cdf = Property::table({{400, 0.1}, {500, 1}});
    expect_setup_error(in, {"wavelength_cdf", "start at 0"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile =
        TimeProfile::table(Property::table({{0, 0}, {10, 0.99}}));
    expect_setup_error(in, {"time_cdf", "end at 1"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile =
        TimeProfile::table(Property::table({{0, 0}, {2e9, 1}}));
    expect_setup_error(in, {"component 0", "time_cdf point", "2e+09 ns", "limited to 1e+09 ns"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile =
        TimeProfile::table(Property::table({{-1, 0}, {10, 1}}));
    expect_setup_error(in, {"component 0", "time_cdf point", "-1 ns"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile = TimeProfile::exponential(0);
    expect_setup_error(in, {"component 0", "time_constant decay time", "> 0"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile =
        TimeProfile::mixture({TimeExponential{6, 0.3}, TimeExponential{1600, 0}});
    expect_setup_error(in, {"component 0", "time_constants[1]", "weight"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile = TimeProfile::exponential(5, -1);
    expect_setup_error(in, {"component 0", "rise time", ">= 0"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].time_profile = TimeProfile::fixed(-2);
    expect_setup_error(in, {"component 0", "time_delay", ">= 0"});
  }
  {
    auto in = sample_input();
    TimeProfile mixed = TimeProfile::exponential(5);
    mixed.cdf = Property::table({{0, 0}, {10, 1}});
    in.materials[1].components[0].time_profile = mixed;
    expect_setup_error(in, {"component 0", "mixes kinds"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].reemission_time = TimeProfile::exponential(5);
    expect_setup_error(in, {"surface 'pmt'", "not WLS"});
  }
  {
    auto in = sample_input();
    in.materials[1].components[0].reemission_prob = Property::constant(1.5);
    expect_setup_error(in, {"reemission_prob", "[0, 1]"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].reflect_specular = Property::constant(0.45);  // 0.5 + 0.1..0.3 + 0.45 > 1
    expect_setup_error(
        in, {"surface 'pmt'", "absorb + detect + reflect_diffuse + reflect_specular", "DEFAULT"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].reflect_specular = Property::constant(0.2);  // 0.5 + 0.3 + 0.2 = 1: allowed
    EXPECT_NO_THROW(OpticsTables{in});
    in.surfaces[0].reflect_specular = Property::constant(0.2 + 2e-6);
    expect_setup_error(in, {"surface 'pmt'", "DEFAULT"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].model = SurfaceModel::wls;
    in.surfaces[0].reemit = Property::constant(0.5);
    expect_setup_error(in, {"surface 'pmt'", "reemission_cdf"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].model = SurfaceModel::complex;
    expect_setup_error(in, {"surface 'pmt'", "eta"});
  }
  {
    auto in = sample_input();
    in.surfaces[1].transmit[1] = Property::constant(0.61);
    expect_setup_error(in, {"surface 'dichroic'", "reflect[1] + transmit[1]", "DICHROIC"});
  }
  {
    auto in = sample_input();
    in.surfaces[1].angles = {0.5, 0.0};
    expect_setup_error(in, {"surface 'dichroic'", "ascending"});
  }
  {
    auto in = sample_input();
    in.surfaces[1].transmit.pop_back();
    expect_setup_error(in, {"surface 'dichroic'", "one row per angle"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].detect = Property::constant(-0.1);
    expect_setup_error(in, {"surface 'pmt'", "detect", "[0, 1]"});
  }
  {
    auto in = sample_input();
    in.surfaces[0].thickness = -1;
    expect_setup_error(in, {"surface 'pmt'", "thickness"});
  }
  {
    auto in = sample_input();
    in.materials[0].name.clear();
    in.materials[0].absorption_length = Property::constant(-1);
    expect_setup_error(in, {"material #0", "absorption_length"});
  }
}

}  // namespace
}  // namespace acheron::optics
