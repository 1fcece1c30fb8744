// Per-hit step history: counts and the Opticks-style sequence word for
// photons whose path is known, their agreement with the counts for random
// paths, and that recording changes nothing else.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "acheron/core/Error.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/optics/Sources.hh"

namespace acheron::optics {
namespace {

// A detecting sphere of water holding an index-matched slab (no Fresnel
// reflection: n1 = n2 transmits every photon) and a specular mirror.
const char* kSlabAndMirror = R"(
[[material]]
name = "water"
refractive_index = 1.33
absorption_length = 1e12
scattering_length = 1e12
[[material]]
name = "matched"
refractive_index = 1.33
absorption_length = 1e12
scattering_length = 1e12
[[material]]
name = "outside"
refractive_index = 1.0
absorption_length = 1e6
scattering_length = 1e6
[[surface]]
name = "cathode"
detect = 1.0
[[surface]]
name = "mirror"
reflect_specular = 1.0
[[solid]]
name = "sphere"
shape = "sphere"
radius = 1000
segments = 64
inner = "water"
outer = "outside"
surface = "cathode"
pmt = true
[[solid]]
name = "slab"
shape = "box"
size = [300, 300, 100]
position = [-400, 0, 0]
inner = "matched"
outer = "water"
[[solid]]
name = "mirror"
shape = "box"
size = [300, 300, 10]
position = [400, 0, 300]
inner = "water"
outer = "water"
surface = "mirror"
)";

std::shared_ptr<const Detector> slab_and_mirror() {
  return std::make_shared<const Detector>(Detector::parse(kSlabAndMirror, "steps.toml"));
}

Photon aimed(Vec3 from, Vec3 direction, std::uint32_t index) {
  Photon p;
  p.position = from;
  p.direction = direction;
  p.polarization = {1, 0, 0};
  if (direction.x != 0) p.polarization = {0, 1, 0};
  p.wavelength = 420;
  p.index = index;
  return p;
}

std::uint64_t sequence_of(std::initializer_list<std::uint32_t> codes) {
  std::uint64_t s = 0;
  int k = 0;
  for (auto c : codes) s |= std::uint64_t{c} << (4 * k++);
  return s;
}

TEST(StepHistory, ThroughASlabAndOffAMirrorGivesTheKnownSequences) {
  Engine engine(slab_and_mirror(), {.threads = 1, .step_history = 16});
  PhotonBatch batch;
  // Up through the slab (in and out), then the cathode.
  batch.push_back(aimed({-400, 0, -300}, {0, 0, 1}, 0));
  // Up onto the mirror's underside, back down to the cathode.
  batch.push_back(aimed({400, 0, 0}, {0, 0, 1}, 1));
  // Straight to the cathode.
  batch.push_back(aimed({0, 0, 0}, {0, 0, -1}, 2));
  const auto res = engine.simulate(batch, 1);
  ASSERT_EQ(res.hits.size(), 3u);
  ASSERT_EQ(res.hit_steps.size(), 3u);
  namespace c = step_code;
  const HitSteps& slab = res.hit_steps[0];
  EXPECT_EQ(slab.sequence,
            sequence_of({c::boundary_transmit, c::boundary_transmit, c::surface_detect}));
  EXPECT_EQ(slab.steps, 3u);
  EXPECT_EQ(slab.boundaries, 3u);
  EXPECT_EQ(slab.scatters, 0u);
  EXPECT_EQ(slab.reemissions, 0u);
  const HitSteps& mirror = res.hit_steps[1];
  EXPECT_EQ(mirror.sequence, sequence_of({c::specular_reflect, c::surface_detect}));
  EXPECT_EQ(mirror.boundaries, 2u);
  EXPECT_EQ(mirror.steps, 2u);
  EXPECT_LT(res.hits[1].position[2], -900.0f);  // came back down
  EXPECT_EQ(res.hit_steps[2].sequence, sequence_of({c::surface_detect}));
  EXPECT_EQ(res.hit_steps[2].boundaries, 1u);
  EXPECT_EQ(step_at(slab.sequence, 0), c::boundary_transmit);
  EXPECT_EQ(step_at(slab.sequence, 2), c::surface_detect);
  EXPECT_EQ(step_at(slab.sequence, 3), 0u);
}

TEST(StepHistory, ASequenceKeepsOnlyTheFirstNStepsButCountsAll) {
  Engine engine(slab_and_mirror(), {.threads = 1, .step_history = 2});
  PhotonBatch batch;
  batch.push_back(aimed({-400, 0, -300}, {0, 0, 1}, 0));
  const auto res = engine.simulate(batch, 1);
  ASSERT_EQ(res.hit_steps.size(), 1u);
  EXPECT_EQ(res.hit_steps[0].sequence,
            sequence_of({step_code::boundary_transmit, step_code::boundary_transmit}));
  EXPECT_EQ(res.hit_steps[0].steps, 3u);
}

TEST(StepHistory, OffRecordsCountsButNoSequence) {
  Engine engine(slab_and_mirror(), {.threads = 1});
  PhotonBatch batch;
  batch.push_back(aimed({-400, 0, -300}, {0, 0, 1}, 0));
  const auto res = engine.simulate(batch, 1);
  ASSERT_EQ(res.hit_steps.size(), 1u);
  EXPECT_EQ(res.hit_steps[0].boundaries, 3u);
  EXPECT_EQ(res.hit_steps[0].sequence, 0u);
  EXPECT_EQ(res.hit_steps[0].steps, 0u);
}

// On the default detector (water with Rayleigh scattering, glass PMTs with
// Fresnel steps): recording changes no hit, and every hit's sequence agrees
// with its counts whenever it holds all of its steps.
TEST(StepHistory, SequencesAgreeWithTheCountsAndChangeNoHit) {
  auto det = std::make_shared<const Detector>(Detector::default_detector());
  Engine off(det, {.threads = 2});
  Engine on(det, {.threads = 2, .keep_tracks = true, .step_history = 16});
  PhotonBatch batch;
  append_photons(batch, IsotropicSource{}, 20000, 0, 3);
  const auto a = off.simulate(batch, 3);
  const auto b = on.simulate(batch, 3);
  ASSERT_EQ(a.hits.size(), b.hits.size());
  ASSERT_GT(a.hits.size(), 100u);
  ASSERT_EQ(b.hit_steps.size(), b.hits.size());
  ASSERT_EQ(b.track_steps.size(), batch.size());
  std::size_t complete = 0, scattered = 0, reflected = 0;
  for (std::size_t i = 0; i < a.hits.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(&a.hits[i], &b.hits[i], sizeof(HitRecord))) << "hit " << i;
    ASSERT_EQ(a.hit_steps[i].boundaries, b.hit_steps[i].boundaries);
    ASSERT_EQ(a.hit_steps[i].scatters, b.hit_steps[i].scatters);
    const HitSteps& s = b.hit_steps[i];
    if (s.steps > kMaxStepHistory) continue;
    ++complete;
    std::uint32_t boundary = 0, scatter = 0, reemit = 0;
    for (std::uint32_t k = 0; k < s.steps; ++k) {
      const std::uint32_t code = step_at(s.sequence, k);
      ASSERT_NE(code, 0u) << "hit " << i << " step " << k;
      scatter += code == step_code::rayleigh_scatter;
      reemit += code == step_code::bulk_reemit;
      boundary += code != step_code::rayleigh_scatter && code != step_code::bulk_reemit;
      reflected += code == step_code::boundary_reflect;
    }
    EXPECT_EQ(step_at(s.sequence, s.steps), 0u);
    EXPECT_EQ(step_at(s.sequence, s.steps - 1), step_code::surface_detect) << "hit " << i;
    EXPECT_EQ(boundary, s.boundaries) << "hit " << i;
    EXPECT_EQ(scatter, s.scatters) << "hit " << i;
    EXPECT_EQ(reemit, s.reemissions) << "hit " << i;
    scattered += s.scatters > 0;
  }
  EXPECT_GT(complete, a.hits.size() * 9 / 10);
  EXPECT_GT(scattered, 0u);  // the test saw scatters ...
  EXPECT_GT(reflected, 0u);  // ... and Fresnel reflections
  // Tracks carry the same history as the hits.
  for (std::size_t i = 0, h = 0; i < b.tracks.size() && h < b.hits.size(); ++i) {
    if (b.tracks[i].channel < 0) continue;
    EXPECT_EQ(b.track_steps[i].sequence, b.hit_steps[h].sequence);
    ++h;
  }
}

TEST(StepHistory, MoreThanSixteenStepsIsRefused) {
  auto det = slab_and_mirror();
  try {
    Engine engine(det, {.step_history = 17});
    FAIL() << "a 17-step history was accepted";
  } catch (const SetupError& e) {
    EXPECT_NE(std::string(e.what()).find("use 0 to 16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace acheron::optics
