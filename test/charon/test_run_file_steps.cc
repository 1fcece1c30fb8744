// Run files with per-hit positions and step history: written by RunFile,
// read back by read_run_file, events from workers without step data, and
// version 1 files (written before the step datasets existed).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "acheron/charon/RunFileReader.hh"
#include "acheron/core/Error.hh"

#include "RunFileTestUtil.hh"

namespace acheron::charon {
namespace {

namespace fs = std::filesystem;
using testutil::TempDir;
using wire::charon::Hits;

Hits event_hits(std::uint32_t event_id, std::size_t n, bool with_steps) {
  Hits h;
  h.event_id = event_id;
  for (std::size_t i = 0; i < n; ++i) {
    const auto f = static_cast<float>(event_id * 100 + i);
    h.channel.push_back(static_cast<std::uint32_t>(i));
    for (auto* v :
         {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z, &h.wavelength, &h.time}) {
      v->push_back(f);
    }
    h.flags.push_back(4);
  }
  if (with_steps) {
    auto& s = h.steps.emplace();
    s.history_length = 8;
    for (std::size_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::uint32_t>(event_id * 100 + i);
      s.pos_x.push_back(float(k) + 0.5f);
      s.pos_y.push_back(-float(k));
      s.pos_z.push_back(1000.0f);
      s.boundaries.push_back(k % 7 + 1);
      s.scatters.push_back(k % 3);
      s.reemissions.push_back(k % 2);
      s.steps.push_back(k % 7 + 1 + k % 3 + k % 2);
      s.sequence.push_back(0x6110000000000000ull | k);
    }
  }
  return h;
}

wire::charon::DetectorInfo steps_detector() {
  return {{1, 2}, {3, 4}, {5, 6}, {0, 1}};
}

void expect_same_hits(const Hits& got, const Hits& want) {
  EXPECT_EQ(got.event_id, want.event_id);
  EXPECT_EQ(got.channel, want.channel);
  EXPECT_EQ(got.time, want.time);
  EXPECT_EQ(got.wavelength, want.wavelength);
  EXPECT_EQ(got.dir_x, want.dir_x);
  EXPECT_EQ(got.pol_z, want.pol_z);
  EXPECT_EQ(got.flags, want.flags);
}

TEST(RunFileSteps, PositionsAndStepHistoryRoundTrip) {
  TempDir dir;
  fs::create_directories(dir.path);
  const std::vector<Hits> events{event_hits(1, 3, true), event_hits(2, 0, true),
                                 event_hits(3, 2, false), event_hits(4, 4, true)};
  fs::path path;
  {
    RunFile file(dir.path / "steps.charon.h5", steps_detector());
    file.append({events[0], events[1]});
    file.append({events[2], events[3]});
    file.close();
    path = file.path();
  }
  const RunContents run = read_run_file(path);
  EXPECT_EQ(run.version, kRunFileVersion);
  EXPECT_EQ(run.detector, steps_detector());
  ASSERT_EQ(run.events.size(), 4u);
  for (std::size_t e = 0; e < 4; ++e) {
    SCOPED_TRACE(e);
    expect_same_hits(run.events[e], events[e]);
    ASSERT_EQ(run.events[e].steps.has_value(), events[e].steps.has_value());
    if (!events[e].steps) continue;
    const auto& got = *run.events[e].steps;
    const auto& want = *events[e].steps;
    EXPECT_EQ(got.history_length, 8u);
    EXPECT_EQ(got.pos_x, want.pos_x);
    EXPECT_EQ(got.pos_y, want.pos_y);
    EXPECT_EQ(got.pos_z, want.pos_z);
    EXPECT_EQ(got.boundaries, want.boundaries);
    EXPECT_EQ(got.scatters, want.scatters);
    EXPECT_EQ(got.reemissions, want.reemissions);
    EXPECT_EQ(got.steps, want.steps);
    EXPECT_EQ(got.sequence, want.sequence);
  }
  // The hits of the event without step data hold NaN positions in the file.
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t ds = H5Dopen2(f, "/output/pos_x", H5P_DEFAULT);
  std::vector<float> pos_x(9);
  H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pos_x.data());
  H5Dclose(ds);
  H5Fclose(f);
  EXPECT_EQ(pos_x[0], 100.5f);
  EXPECT_TRUE(std::isnan(pos_x[3]) && std::isnan(pos_x[4]));
  EXPECT_EQ(pos_x[5], 400.5f);
}

// A version 1 file is the version 2 layout without the step datasets and
// with version "1": removing them from a written file makes one.
TEST(RunFileSteps, VersionOneFilesAreReadWithoutSteps) {
  TempDir dir;
  fs::create_directories(dir.path);
  fs::path path;
  {
    RunFile file(dir.path / "old.charon.h5", steps_detector());
    file.append({event_hits(7, 2, true), event_hits(8, 1, false)});
    file.close();
    path = file.path();
  }
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const char* name : {"pos_x", "pos_y", "pos_z", "boundaries", "scatters", "reemissions",
                           "steps", "sequence", "has_steps", "step_history"}) {
    ASSERT_GE(H5Ldelete(f, (std::string("/output/") + name).c_str(), H5P_DEFAULT), 0) << name;
  }
  H5Adelete(f, "version");
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(f, "version", type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* one = "1";
  H5Awrite(attr, type, &one);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(f);

  const RunContents run = read_run_file(path);
  EXPECT_EQ(run.version, 1);
  ASSERT_EQ(run.events.size(), 2u);
  expect_same_hits(run.events[0], event_hits(7, 2, false));
  expect_same_hits(run.events[1], event_hits(8, 1, false));
  EXPECT_FALSE(run.events[0].steps);
  EXPECT_FALSE(run.events[1].steps);
}

TEST(RunFileSteps, ReadingSomethingElseSaysWhatIsWrong) {
  TempDir dir;
  fs::create_directories(dir.path);
  auto message_for = [](const fs::path& p) -> std::string {
    try {
      read_run_file(p);
    } catch (const SetupError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message_for(dir.path / "missing.charon.h5").find("not an HDF5 file"),
            std::string::npos);
  { std::ofstream(dir.path / "text.charon.h5") << "not hdf5"; }
  EXPECT_NE(message_for(dir.path / "text.charon.h5").find("not an HDF5 file"), std::string::npos);
  const fs::path other = dir.path / "other.h5";
  hid_t f = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  EXPECT_NE(message_for(other).find("format attribute"), std::string::npos);
}

}  // namespace
}  // namespace acheron::charon
