// Between chroma-server lists and ChAR0N requests and replies: a list
// becomes a PHOTONDATA request the ChAR0N codec accepts with the same
// values in ChAR0N's component order, and SIM_COMPLETE hits become the list
// of detected photons with the channel positions.
#include <gtest/gtest.h>

#include <cstring>

#include "acheron/wire/ChromaCharon.hh"

namespace acheron::wire::chroma {
namespace {

PhotonList three_photons() {
  PhotonList p;
  p.resize(3);
  const auto f = p.floats();
  for (std::size_t m = 0; m < kFloatMembers; ++m) {
    for (std::size_t i = 0; i < 3; ++i) (*f[m])[i] = float(100 * m + i) + 0.5f;
  }
  p.pmtid = {7, -1, 42};
  return p;
}

TEST(ChromaCharon, ListBecomesACurrentPhotonDataRequest) {
  const PhotonList in = three_photons();
  const auto frames = to_photon_data_frames(PhotonList(in), 99);
  ASSERT_EQ(frames.size(), 14u);
  auto decoded = charon::decode_request(frames);
  ASSERT_TRUE(std::holds_alternative<charon::Request>(decoded));
  const auto& data = std::get<charon::Request>(decoded).photons;
  EXPECT_EQ(data.event_id, 99u);
  EXPECT_EQ(data.num_photons, 3u);
  EXPECT_EQ(data.version, charon::Version::current);
  // ChAR0N's order: position, direction, polarisation, wavelength, time.
  const std::vector<float>* expect[charon::kComponents] = {
      &in.x,    &in.y,    &in.z,    &in.px,         &in.py, &in.pz,
      &in.polx, &in.poly, &in.polz, &in.wavelength, &in.t};
  for (int c = 0; c < charon::kComponents; ++c) {
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(data.value(static_cast<charon::Component>(c), i), (*expect[c])[i]) << c;
    }
  }
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(data.creator_flags(i), 0u);
}

TEST(ChromaCharon, EmptyListIsAnEmptyRequest) {
  const auto frames = to_photon_data_frames(PhotonList{}, 0);
  auto decoded = charon::decode_request(frames);
  ASSERT_TRUE(std::holds_alternative<charon::Request>(decoded));
  EXPECT_EQ(std::get<charon::Request>(decoded).photons.num_photons, 0u);
}

charon::Hits two_hits() {
  charon::Hits h;
  h.event_id = 5;
  h.channel = {2, 0};
  h.dir_x = {1, 0};
  h.dir_y = {0, 1};
  h.dir_z = {0, 0};
  h.pol_x = {0, 0};
  h.pol_y = {0, 0};
  h.pol_z = {1, 1};
  h.wavelength = {420, 380};
  h.time = {12.5f, 13.25f};
  h.flags = {4, 4};
  return h;
}

charon::DetectorInfo three_channels() {
  charon::DetectorInfo d;
  d.x = {10, 20, 30};
  d.y = {-1, -2, -3};
  d.z = {100, 200, 300};
  d.type = {0, 0, 1};
  return d;
}

TEST(ChromaCharon, HitsBecomeDetectedPhotonsAtTheirChannels) {
  auto list = from_hits(two_hits(), three_channels());
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->pmtid, (std::vector<std::int32_t>{2, 0}));
  EXPECT_EQ(list->x, (std::vector<float>{30, 10}));
  EXPECT_EQ(list->y, (std::vector<float>{-3, -1}));
  EXPECT_EQ(list->z, (std::vector<float>{300, 100}));
  EXPECT_EQ(list->px, (std::vector<float>{1, 0}));
  EXPECT_EQ(list->py, (std::vector<float>{0, 1}));
  EXPECT_EQ(list->polz, (std::vector<float>{1, 1}));
  EXPECT_EQ(list->t, (std::vector<float>{12.5f, 13.25f}));
  EXPECT_EQ(list->wavelength, (std::vector<float>{420, 380}));
  // And it encodes: every value finite, every vector the same length.
  EXPECT_TRUE(encode(*list).ok());
}

TEST(ChromaCharon, HitsThatCannotBeAList) {
  auto h = two_hits();
  h.channel[1] = 3;  // the detector has channels 0..2
  auto list = from_hits(h, three_channels());
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.error().message.find("channel 3"), std::string::npos);
  h = two_hits();
  h.dir_x.clear();  // what a v1 reply decodes to
  h.dir_y.clear();
  h.dir_z.clear();
  EXPECT_FALSE(from_hits(h, three_channels()).ok());
  EXPECT_TRUE(from_hits(charon::Hits{}, charon::DetectorInfo{}).ok());  // no hits, no channels
}

}  // namespace
}  // namespace acheron::wire::chroma
